package janus

import (
	"net"

	"golang.org/x/sys/unix"
)

// setReadBuffer sets c's receive buffer to size: beyond net.core.rmem_max
// when the process may (CAP_NET_ADMIN), else up to it.
func setReadBuffer(c *net.UDPConn, size int) {
	raw, err := c.SyscallConn()
	if err == nil {
		var serr error
		err = raw.Control(func(fd uintptr) {
			serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, size)
		})
		if err == nil && serr == nil {
			return
		}
	}
	_ = c.SetReadBuffer(size)
}
