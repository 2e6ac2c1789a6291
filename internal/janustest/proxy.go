package janustest

import (
	"fmt"
	"io"
	"net"
	"sync"
	"testing"
	"time"
)

// Proxy is a TCP proxy on 127.0.0.1 in front of a target address (e.g. Janus's HTTP or
// WebSocket transport). A test cuts the connections going through it (Cut) to simulate a lost
// transport while the server lives on, which is how Janus's `claim` is tested, or takes it down
// (SetDown) to make reconnection attempts fail for a while.
type Proxy struct {
	target string
	ln     net.Listener
	wg     sync.WaitGroup

	mu       sync.Mutex
	pairs    map[*proxyPair]struct{}
	down     bool
	closed   bool
	accepted int
}

type proxyPair struct {
	client, upstream net.Conn
}

func (p *proxyPair) close() {
	p.client.Close()
	p.upstream.Close()
}

// NewProxy starts a proxy to target (host:port) on a free 127.0.0.1 port. It is closed in
// t.Cleanup.
func NewProxy(t testing.TB, target string) *Proxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("janustest: NewProxy: %v", err)
	}
	p := &Proxy{target: target, ln: ln, pairs: map[*proxyPair]struct{}{}}
	p.wg.Add(1)
	go p.acceptLoop()
	t.Cleanup(p.Close)
	return p
}

// Addr is the proxy's host:port.
func (p *Proxy) Addr() string { return p.ln.Addr().String() }

// URL is scheme://Addr()path, e.g. p.URL("http", "/janus") or p.URL("ws", "/").
func (p *Proxy) URL(scheme, path string) string {
	return fmt.Sprintf("%s://%s%s", scheme, p.Addr(), path)
}

// Target is the address the proxy forwards to.
func (p *Proxy) Target() string { return p.target }

// Cut closes every connection currently going through the proxy, on both sides (the client and
// the target each see the connection end), and returns how many it closed. The proxy keeps
// listening: a client that reconnects gets through, unless the proxy is down.
func (p *Proxy) Cut() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := len(p.pairs)
	for pair := range p.pairs {
		pair.close()
	}
	return n
}

// SetDown takes the proxy down (true: current connections are cut and new ones are accepted
// and closed at once, before reaching the target) or up again (false).
func (p *Proxy) SetDown(down bool) {
	p.mu.Lock()
	p.down = down
	p.mu.Unlock()
	if down {
		p.Cut()
	}
}

// Active is the number of connections currently going through the proxy.
func (p *Proxy) Active() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.pairs)
}

// Accepted is the number of connections let through so far (not counting those refused
// while down).
func (p *Proxy) Accepted() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.accepted
}

// Close stops listening, cuts every connection and waits for the proxy's goroutines to end.
// Closing twice is harmless.
func (p *Proxy) Close() {
	p.mu.Lock()
	if !p.closed {
		p.closed = true
		p.ln.Close()
		for pair := range p.pairs {
			pair.close()
		}
	}
	p.mu.Unlock()
	p.wg.Wait()
}

func (p *Proxy) acceptLoop() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			p.mu.Lock()
			closed := p.closed
			p.mu.Unlock()
			if closed {
				return
			}
			if ne, ok := err.(net.Error); ok && ne.Timeout() {
				continue
			}
			return
		}
		p.mu.Lock()
		if p.closed || p.down {
			p.mu.Unlock()
			c.Close()
			continue
		}
		p.wg.Add(1)
		p.mu.Unlock()
		go p.serve(c)
	}
}

func (p *Proxy) serve(c net.Conn) {
	defer p.wg.Done()
	up, err := net.DialTimeout("tcp", p.target, 5*time.Second)
	if err != nil {
		c.Close()
		return
	}
	pair := &proxyPair{client: c, upstream: up}
	p.mu.Lock()
	if p.closed || p.down {
		p.mu.Unlock()
		pair.close()
		return
	}
	p.pairs[pair] = struct{}{}
	p.accepted++
	p.mu.Unlock()

	var copies sync.WaitGroup
	copies.Add(2)
	pipe := func(dst, src net.Conn) {
		defer copies.Done()
		_, _ = io.Copy(dst, src)
		pair.close() // either side ending ends both
	}
	go pipe(up, c)
	go pipe(c, up)
	copies.Wait()
	p.mu.Lock()
	delete(p.pairs, pair)
	p.mu.Unlock()
}
