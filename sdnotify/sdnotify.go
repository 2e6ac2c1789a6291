// Package sdnotify speaks systemd's service notification protocol
// (sd_notify(3)): READY, STATUS, WATCHDOG, RELOADING with MONOTONIC_USEC and
// STOPPING, sent as datagrams to $NOTIFY_SOCKET.
//
// It is the few lines the protocol needs, written here rather than taken
// from go-systemd: that module is not among the versions this project's
// module proxy serves, and the daemon needs nothing else of it.
package sdnotify

import (
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// Notifier sends state changes to the service manager. The zero value and
// nil send nothing (not started by systemd).
type Notifier struct {
	addr *net.UnixAddr
}

// FromEnv returns a Notifier for $NOTIFY_SOCKET, or nil when it is unset.
// A name starting with "@" is an abstract socket.
func FromEnv() *Notifier {
	path := os.Getenv("NOTIFY_SOCKET")
	if path == "" {
		return nil
	}
	return &Notifier{addr: &net.UnixAddr{Name: path, Net: "unixgram"}}
}

// Send sends one notification: newline-separated VAR=value assignments.
func (n *Notifier) Send(state string) error {
	if n == nil || n.addr == nil {
		return nil
	}
	c, err := net.DialUnix("unixgram", nil, n.addr)
	if err != nil {
		return fmt.Errorf("sdnotify: %w", err)
	}
	defer c.Close()
	if _, err := c.Write([]byte(state)); err != nil {
		return fmt.Errorf("sdnotify: %w", err)
	}
	return nil
}

// Ready says the service is up, with a status line.
func (n *Notifier) Ready(status string) error {
	return n.Send("READY=1\nSTATUS=" + oneLine(status))
}

// Status sets the status line systemctl status shows.
func (n *Notifier) Status(status string) error { return n.Send("STATUS=" + oneLine(status)) }

// Reloading says a reload starts; Ready ends it.
func (n *Notifier) Reloading() error {
	return n.Send("RELOADING=1\nMONOTONIC_USEC=" + strconv.FormatInt(Monotonic().Microseconds(), 10))
}

// Stopping says the service is stopping.
func (n *Notifier) Stopping() error { return n.Send("STOPPING=1") }

// Watchdog keeps the watchdog from firing.
func (n *Notifier) Watchdog() error { return n.Send("WATCHDOG=1") }

// Monotonic returns CLOCK_MONOTONIC, the clock of MONOTONIC_USEC.
func Monotonic() time.Duration {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts); err != nil {
		return 0
	}
	return time.Duration(ts.Nano())
}

// WatchdogInterval returns how often to send WATCHDOG=1: half of
// $WATCHDOG_USEC, when it is set and $WATCHDOG_PID (if set) is this process.
// It returns 0 when no watchdog is expected.
func WatchdogInterval() time.Duration {
	usec, err := strconv.ParseInt(os.Getenv("WATCHDOG_USEC"), 10, 64)
	if err != nil || usec <= 0 {
		return 0
	}
	if pid := os.Getenv("WATCHDOG_PID"); pid != "" && pid != strconv.Itoa(os.Getpid()) {
		return 0
	}
	return time.Duration(usec) * time.Microsecond / 2
}

func oneLine(s string) string { return strings.ReplaceAll(s, "\n", " ") }
