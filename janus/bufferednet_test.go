package janus

import (
	"net"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

// ICE sockets get the larger receive buffer: all of it as root, else up to
// net.core.rmem_max.
func TestBufferedNetReadBuffer(t *testing.T) {
	c, err := (&bufferedNet{}).ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	raw, err := c.(*net.UDPConn).SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var got int
	var serr error
	if err := raw.Control(func(fd uintptr) {
		got, serr = syscall.GetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF)
	}); err != nil || serr != nil {
		t.Fatal(err, serr)
	}
	want := udpReadBuffer
	if os.Geteuid() != 0 { // root may go past net.core.rmem_max (SO_RCVBUFFORCE)
		if b, err := os.ReadFile("/proc/sys/net/core/rmem_max"); err == nil {
			if limit, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil {
				want = min(want, limit)
			}
		}
	}
	// Linux reports twice the size asked for (bookkeeping overhead).
	if got < 2*want {
		t.Errorf("SO_RCVBUF %d, want at least %d", got, 2*want)
	}
}
