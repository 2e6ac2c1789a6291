//go:build !linux

package janus

import "net"

// setReadBuffer sets c's receive buffer to size, as far as the system
// allows.
func setReadBuffer(c *net.UDPConn, size int) { _ = c.SetReadBuffer(size) }
