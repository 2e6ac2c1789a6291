package sdnotify

import (
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// listen opens a notify socket of the test's own and points NOTIFY_SOCKET
// at it.
func listen(t *testing.T, name string) *net.UnixConn {
	t.Helper()
	c, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: name, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	t.Setenv("NOTIFY_SOCKET", name)
	return c
}

func recv(t *testing.T, c *net.UnixConn) string {
	t.Helper()
	buf := make([]byte, 4096)
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	n, err := c.Read(buf)
	if err != nil {
		t.Fatal(err)
	}
	return string(buf[:n])
}

func TestMessages(t *testing.T) {
	for _, name := range []string{filepath.Join(t.TempDir(), "notify"), "@janusbridge-test-" + strconv.Itoa(os.Getpid())} {
		c := listen(t, name)
		n := FromEnv()
		before := Monotonic()
		steps := []struct {
			send func() error
			want string
		}{
			{func() error { return n.Ready("2/3 bridges\nup") }, "READY=1\nSTATUS=2/3 bridges up"},
			{func() error { return n.Status("3/3 bridges up") }, "STATUS=3/3 bridges up"},
			{n.Watchdog, "WATCHDOG=1"},
			{n.Reloading, "RELOADING=1\nMONOTONIC_USEC="},
			{n.Stopping, "STOPPING=1"},
		}
		for _, s := range steps {
			if err := s.send(); err != nil {
				t.Fatal(err)
			}
			got := recv(t, c)
			if !strings.HasPrefix(got, s.want) {
				t.Errorf("%s: got %q, want %q", name, got, s.want)
			}
			if rest, ok := strings.CutPrefix(got, "RELOADING=1\nMONOTONIC_USEC="); ok {
				us, err := strconv.ParseInt(rest, 10, 64)
				if err != nil || us < before.Microseconds() || us > Monotonic().Microseconds() {
					t.Errorf("MONOTONIC_USEC=%q is not the monotonic clock now (%v)", rest, err)
				}
			}
		}
	}
}

func TestUnset(t *testing.T) {
	t.Setenv("NOTIFY_SOCKET", "")
	n := FromEnv()
	if n != nil {
		t.Fatal("a notifier without NOTIFY_SOCKET")
	}
	if err := n.Ready("x"); err != nil {
		t.Fatal(err)
	}
}

func TestWatchdogInterval(t *testing.T) {
	for _, c := range []struct {
		usec, pid string
		want      time.Duration
	}{
		{"", "", 0},
		{"garbage", "", 0},
		{"2000000", "", time.Second},
		{"2000000", strconv.Itoa(os.Getpid()), time.Second},
		{"2000000", "1", 0},
	} {
		t.Setenv("WATCHDOG_USEC", c.usec)
		t.Setenv("WATCHDOG_PID", c.pid)
		if got := WatchdogInterval(); got != c.want {
			t.Errorf("WATCHDOG_USEC=%q WATCHDOG_PID=%q: %v, want %v", c.usec, c.pid, got, c.want)
		}
	}
}
