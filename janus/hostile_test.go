package janus

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// The fake Janus of these tests is the hostile peer: it speaks enough of
// the Janus API (create, claim, attach, keepalive, a plugin request) for a
// Session, over WebSocket (/ws) and HTTP long poll (/janus), and sends
// what the test pushes: garbage, messages for nobody, huge, endless and
// stalled messages.
const (
	fakeSession = 4242
	fakeHandle  = 77
)

type fakeJanus struct {
	t   *testing.T
	srv *httptest.Server
	ctx context.Context // ends at the test's end: every connection closes
	wg  sync.WaitGroup  // the WebSocket connections' goroutines

	mu     sync.Mutex
	ws     *websocket.Conn // the newest WebSocket connection
	wsConn chan struct{}   // closed and replaced at each new WebSocket connection
	claims int
	// deafToKeepalives leaves keepalives unanswered (a Janus too busy).
	deafToKeepalives bool
	// readDelay is how long the fake waits before reading each request
	// from the WebSocket (a slow reader: the client's writes block).
	readDelay time.Duration
	polls     chan func(http.ResponseWriter, *http.Request) // the next long-poll answers
}

func newFakeJanus(t *testing.T) *fakeJanus {
	ctx, cancel := context.WithCancel(context.Background())
	f := &fakeJanus{t: t, ctx: ctx, wsConn: make(chan struct{}), polls: make(chan func(http.ResponseWriter, *http.Request), 64)}
	f.srv = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(func() {
		cancel()
		f.mu.Lock()
		if f.ws != nil {
			f.ws.CloseNow()
		}
		f.mu.Unlock()
		f.srv.Close()
		f.wg.Wait()
	})
	return f
}

func (f *fakeJanus) wsURL() string   { return "ws" + strings.TrimPrefix(f.srv.URL, "http") + "/ws" }
func (f *fakeJanus) httpURL() string { return f.srv.URL + "/janus" }

func (f *fakeJanus) serve(w http.ResponseWriter, r *http.Request) {
	switch {
	case r.URL.Path == "/ws":
		c, err := websocket.Accept(w, r, &websocket.AcceptOptions{Subprotocols: []string{"janus-protocol"}})
		if err != nil {
			return
		}
		c.SetReadLimit(64 << 20)
		f.mu.Lock()
		f.ws = c
		close(f.wsConn)
		f.wsConn = make(chan struct{})
		f.mu.Unlock()
		f.wg.Add(1)
		go f.readWS(c)
	case r.Method == http.MethodPost:
		var req map[string]any
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
			http.Error(w, "bad request", http.StatusBadRequest)
			return
		}
		w.Write(f.answer(req))
	case r.Method == http.MethodGet:
		select {
		case answer := <-f.polls:
			answer(w, r)
		case <-time.After(300 * time.Millisecond):
			io.WriteString(w, `[{"janus":"keepalive"}]`)
		case <-f.ctx.Done():
		}
	}
}

// readWS answers the requests of one WebSocket connection until it closes.
func (f *fakeJanus) readWS(c *websocket.Conn) {
	defer f.wg.Done()
	defer c.CloseNow()
	for {
		f.mu.Lock()
		delay := f.readDelay
		f.mu.Unlock()
		select {
		case <-time.After(delay):
		case <-f.ctx.Done():
			return
		}
		_, data, err := c.Read(f.ctx)
		if err != nil {
			return
		}
		var req map[string]any
		if json.Unmarshal(data, &req) != nil {
			return
		}
		if reply := f.answer(req); reply != nil {
			if c.Write(f.ctx, websocket.MessageText, reply) != nil {
				return
			}
		}
	}
}

// answer is the fake's reply to one request; nil for none.
func (f *fakeJanus) answer(req map[string]any) []byte {
	tx, _ := req["transaction"].(string)
	reply := func(s string, args ...any) []byte {
		return []byte(fmt.Sprintf(`{"janus":%q,"transaction":%q,"session_id":%d%s}`, s, tx, fakeSession, fmt.Sprint(args...)))
	}
	switch req["janus"] {
	case "ping":
		return reply("pong")
	case "create":
		return reply("success", fmt.Sprintf(`,"data":{"id":%d}`, fakeSession))
	case "claim":
		f.mu.Lock()
		f.claims++
		f.mu.Unlock()
		return reply("success")
	case "attach":
		return reply("success", fmt.Sprintf(`,"data":{"id":%d}`, fakeHandle))
	case "keepalive":
		f.mu.Lock()
		deaf := f.deafToKeepalives
		f.mu.Unlock()
		if deaf {
			return nil
		}
		return reply("ack")
	case "destroy", "detach":
		return reply("success")
	case "message":
		body, _ := req["body"].(map[string]any)
		switch body["request"] {
		case "list":
			return reply("success", fmt.Sprintf(`,"sender":%d,"plugindata":{"plugin":"janus.plugin.streaming","data":{"streaming":"list","list":[]}}`, fakeHandle))
		case "badreply": // the reply of the wrong shape
			return reply("success", `,"plugindata":"not an object"`)
		}
	}
	return reply("error", `,"error":{"code":490,"reason":"unknown request"}`)
}

// push sends one message to the client: on the WebSocket connection, or as
// the body of the next long-poll answer.
func (f *fakeJanus) push(ws bool, msg []byte) {
	if ws {
		f.mu.Lock()
		c := f.ws
		f.mu.Unlock()
		if err := c.Write(f.ctx, websocket.MessageText, msg); err != nil {
			f.t.Fatalf("push: %v", err)
		}
		return
	}
	f.polls <- func(w http.ResponseWriter, _ *http.Request) { w.Write(msg) }
}

// pushAll sends msgs: one by one on the WebSocket connection, as one
// long-poll answer (an array) over HTTP.
func (f *fakeJanus) pushAll(ws bool, msgs [][]byte) {
	if ws {
		for _, m := range msgs {
			f.push(true, m)
		}
		return
	}
	f.push(false, append(append([]byte("["), bytes.Join(msgs, []byte(","))...), ']'))
}

// pushStream sends a message of size bytes (endless when size < 0) in
// pieces of 1 MiB, without holding it in memory, until the client gives up
// on it.
func (f *fakeJanus) pushStream(ws bool, size int64) {
	write := func(w io.Writer) {
		piece := []byte(`[{"janus":"event","x":"` + strings.Repeat("x", 1<<20))
		for sent := int64(0); size < 0 || sent < size; sent += int64(len(piece)) {
			if _, err := w.Write(piece); err != nil {
				return
			}
			piece = piece[23:] // the rest: only x
		}
	}
	if !ws {
		f.polls <- func(w http.ResponseWriter, _ *http.Request) { write(w) }
		return
	}
	f.mu.Lock()
	c := f.ws
	f.mu.Unlock()
	f.wg.Add(1)
	go func() {
		defer f.wg.Done()
		w, err := c.Writer(f.ctx, websocket.MessageText)
		if err != nil {
			return
		}
		write(w)
		w.Close()
	}()
}

// stallWS starts a message on the WebSocket connection and never finishes
// it: the connection answers nothing more. The connection is closed once
// the client has opened a new one.
func (f *fakeJanus) stallWS() {
	f.mu.Lock()
	c, next := f.ws, f.wsConn
	f.mu.Unlock()
	f.wg.Add(1)
	go func() {
		defer f.wg.Done()
		w, err := c.Writer(f.ctx, websocket.MessageText)
		if err != nil {
			return
		}
		w.Write([]byte(`{"janus":"eve`))
		select {
		case <-next:
		case <-f.ctx.Done():
		}
		c.CloseNow()
	}()
}

// stallPoll answers the next long poll with the start of a body, and
// nothing more until the client gives up on it.
func (f *fakeJanus) stallPoll() {
	f.polls <- func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, `[{"janus":"eve`)
		w.(http.Flusher).Flush()
		select {
		case <-r.Context().Done():
		case <-f.ctx.Done():
		}
	}
}

func (f *fakeJanus) claimCount() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.claims
}

// hostileMessages are messages that cannot be decoded, each counted once
// in SessionStats.BadMessages.
func hostileMessages() [][]byte {
	deep := strings.Repeat("[", 100000) + strings.Repeat("]", 100000)
	deepObj := strings.Repeat(`{"a":`, 20000) + "1" + strings.Repeat("}", 20000)
	return [][]byte{
		[]byte(`{not json`),
		[]byte(``),
		[]byte(`"a string"`),
		[]byte(`[1,2,3]`),
		[]byte(`{"janus":42}`),
		[]byte(`{"transaction":"x"}`),
		[]byte(`{}`),
		[]byte(fmt.Sprintf(`{"janus":"event","sender":"%d"}`, fakeHandle)),
		[]byte(fmt.Sprintf(`{"janus":"event","session_id":-1,"sender":%d}`, fakeHandle)),
		[]byte(fmt.Sprintf(`{"janus":"success","data":{"id":"x"},"sender":%d}`, fakeHandle)),
		[]byte(deep),
		[]byte(fmt.Sprintf(`{"janus":"event","sender":%d,"plugindata":{"plugin":"p","data":%s}}`, fakeHandle, deepObj)),
		[]byte("\xff\xfe{\"janus\":\"event\"}"),
	}
}

// unroutedMessages are well-formed messages about nobody of ours, each
// counted once in SessionStats.Unrouted.
func unroutedMessages() [][]byte {
	return [][]byte{
		[]byte(fmt.Sprintf(`{"janus":"frobnicate","session_id":%d}`, fakeSession)),
		[]byte(fmt.Sprintf(`{"janus":"event","session_id":999,"sender":%d}`, fakeHandle)),
		[]byte(fmt.Sprintf(`{"janus":"event","session_id":%d,"sender":12345}`, fakeSession)),
		[]byte(fmt.Sprintf(`{"janus":"success","session_id":%d,"transaction":"nobody's"}`, fakeSession)),
		[]byte(fmt.Sprintf(`{"janus":"webrtcup","session_id":%d,"sender":1}`, fakeSession)),
	}
}

// TestHostileJanus runs a Session against the fake Janus over both
// transports: bad messages are counted and dropped without disturbing the
// session, a reply of the wrong shape fails its request at once with
// ErrBadMessage, an unknown event kind reaches the handle, a flood of
// events nobody reads is bounded per handle (counted); a huge message
// (64 MiB) and an endless one break the connection, which the session
// re-establishes (claim), without ever holding them in memory; a
// WebSocket connection stalled in the middle of a message is given up
// when a keepalive goes unanswered, a stalled long poll after
// LongPollTimeout.
func TestHostileJanus(t *testing.T) {
	for _, ws := range []bool{true, false} {
		name := map[bool]string{true: "ws", false: "http"}[ws]
		t.Run(name, func(t *testing.T) { testHostileJanus(t, ws) })
	}
}

// connectAttach connects a session with opts (closed when the test ends)
// and attaches a Streaming handle.
func connectAttach(t *testing.T, opts Options) (*Session, *Handle) {
	t.Helper()
	ctx := context.Background()
	s, err := Connect(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close(ctx) })
	h, err := s.Attach(ctx, PluginStreaming, "")
	if err != nil {
		t.Fatal(err)
	}
	return s, h
}

func testHostileJanus(t *testing.T, ws bool) {
	f := newFakeJanus(t)
	server := f.httpURL()
	if ws {
		server = f.wsURL()
	}
	const timeout = 2 * time.Second
	ctx := context.Background()
	s, h := connectAttach(t, Options{Servers: []string{server}, RequestTimeout: timeout, KeepAlive: 500 * time.Millisecond,
		LongPollTimeout: time.Second,
		ReconnectMin:    50 * time.Millisecond, ReconnectMax: 200 * time.Millisecond})

	// Garbage and messages for nobody, then one of an unknown kind for our
	// handle: when that one arrives, the others have been handled.
	bad, unrouted := hostileMessages(), unroutedMessages()
	for _, m := range append(append([][]byte(nil), bad...), unrouted...) {
		f.push(ws, m)
	}
	f.push(ws, []byte(fmt.Sprintf(`{"janus":"frobnicate","session_id":%d,"sender":%d,"x":1}`, fakeSession, fakeHandle)))
	select {
	case m := <-h.Events():
		if m.Janus != "frobnicate" {
			t.Fatalf("handle got %q, want the unknown kind passed on", m.Janus)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the event after the garbage did not arrive")
	}
	if st := s.Stats(); st.BadMessages != uint64(len(bad)) || st.Unrouted != uint64(len(unrouted)) {
		t.Errorf("stats %+v, want %d bad, %d unrouted", st, len(bad), len(unrouted))
	}
	if _, err := h.Request(ctx, map[string]any{"request": "list"}); err != nil {
		t.Fatalf("request after the garbage: %v", err)
	}
	start := time.Now()
	_, err := h.Request(ctx, map[string]any{"request": "badreply"})
	if !errors.Is(err, ErrBadMessage) || time.Since(start) > timeout/2 {
		t.Errorf("request answered with a reply of the wrong shape: %v after %v, want ErrBadMessage at once", err, time.Since(start))
	}
	t.Logf("after the garbage: %+v; bad reply: %v", s.Stats(), err)

	// A flood of events nobody reads: the handle holds handleEventLimit of
	// them, the rest are counted and dropped; once read, events flow.
	const extra = 1000
	flood := make([][]byte, handleEventLimit+extra)
	for i := range flood {
		flood[i] = []byte(fmt.Sprintf(`{"janus":"event","session_id":%d,"sender":%d,"n":%d}`, fakeSession, fakeHandle, i))
	}
	unroutedBefore := s.Stats().Unrouted
	f.pushAll(ws, append(flood, unroutedMessages()[0]))
	deadline := time.Now().Add(20 * time.Second)
	for s.Stats().Unrouted == unroutedBefore && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if st := s.Stats(); st.Overflow != extra {
		t.Errorf("flood of %d events: %+v, want %d overflowed", len(flood), st, extra)
	}
	for i := range handleEventLimit {
		m := <-h.Events()
		if want := fmt.Sprintf(`"n":%d}`, i); !bytes.HasSuffix(m.Raw, []byte(want)) {
			t.Fatalf("event %d of the flood: %s", i, m.Raw)
		}
	}
	f.push(ws, []byte(fmt.Sprintf(`{"janus":"event","session_id":%d,"sender":%d,"after":1}`, fakeSession, fakeHandle)))
	select {
	case m := <-h.Events():
		if !bytes.Contains(m.Raw, []byte(`"after"`)) {
			t.Fatalf("after the flood: %s", m.Raw)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no event after the flood was read")
	}

	// Huge and endless messages: the transport is dropped at the read
	// limit and the session claimed on a new one. Memory: reading up to the
	// 8 MiB limit costs a few times that in allocations (18 MiB measured
	// for client and fake server together, 35 MiB under -race); reading
	// the 64 MiB message whole would cost more than 64 MiB.
	for _, size := range []int64{64 << 20, -1} {
		claims := f.claimCount()
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		f.pushStream(ws, size)
		ev := waitSessionEvent(t, s, Claimed, 20*time.Second)
		runtime.ReadMemStats(&after)
		if f.claimCount() != claims+1 || ev.SessionID != fakeSession {
			t.Errorf("message of %d bytes: %+v after %d claims, want the session claimed", size, ev, f.claimCount()-claims)
		}
		if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 48<<20 {
			t.Errorf("message of %d bytes: %d MiB allocated", size, alloc>>20)
		} else {
			t.Logf("message of %d bytes: %.1f MiB allocated", size, float64(alloc)/(1<<20))
		}
		if _, err := h.Request(ctx, map[string]any{"request": "list"}); err != nil {
			t.Fatalf("request after the claim: %v", err)
		}
	}

	if !ws {
		f.stallPoll()
		start := time.Now()
		waitSessionEvent(t, s, Claimed, 20*time.Second)
		t.Logf("stalled long poll replaced after %v", time.Since(start).Round(time.Millisecond))
		f.push(false, []byte(fmt.Sprintf(`{"janus":"event","session_id":%d,"sender":%d,"after":2}`, fakeSession, fakeHandle)))
		select {
		case m := <-h.Events():
			if !bytes.Contains(m.Raw, []byte(`"after":2`)) {
				t.Fatalf("after the stalled poll: %s", m.Raw)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("no event after the stalled poll")
		}
	}
	if ws {
		f.stallWS()
		start := time.Now()
		waitSessionEvent(t, s, Claimed, 20*time.Second)
		t.Logf("stalled connection replaced after %v", time.Since(start).Round(time.Millisecond))
		if _, err := h.Request(ctx, map[string]any{"request": "list"}); err != nil {
			t.Fatalf("request after the stall: %v", err)
		}
	}
}

// waitSessionEvent waits for an event of kind on s, after a Disconnected
// one whose error it logs.
func waitSessionEvent(t *testing.T, s *Session, kind SessionEventKind, within time.Duration) SessionEvent {
	t.Helper()
	deadline := time.After(within)
	for {
		select {
		case ev := <-s.Events():
			if ev.Kind == Disconnected {
				t.Logf("disconnected: %v", ev.Err)
			}
			if ev.Kind == kind {
				return ev
			}
		case <-deadline:
			t.Fatalf("no %v event within %v", kind, within)
		}
	}
}

// A Janus that answers keepalives late but still sends other messages is
// busy, not gone: its connection is kept (replacing it would add to its
// load), where one that sends nothing at all is replaced (TestHostileJanus).
func TestBusyJanusKeepsItsConnection(t *testing.T) {
	f := newFakeJanus(t)
	s, h := connectAttach(t, Options{Servers: []string{f.wsURL()}, RequestTimeout: time.Second, KeepAlive: 300 * time.Millisecond,
		ReconnectMin: 50 * time.Millisecond, ReconnectMax: 200 * time.Millisecond})
	f.mu.Lock()
	f.deafToKeepalives = true
	f.mu.Unlock()
	end := time.Now().Add(4 * time.Second) // four keepalive timeouts
	for time.Now().Before(end) {
		f.push(true, []byte(fmt.Sprintf(`{"janus":"event","session_id":%d,"sender":%d,"plugindata":{"plugin":"janus.plugin.streaming","data":{}}}`, fakeSession, fakeHandle)))
		select {
		case <-h.Events():
		case <-time.After(2 * time.Second):
			t.Fatal("an event did not arrive")
		}
		select {
		case ev := <-s.Events():
			t.Fatalf("session event %v (%v): a busy Janus lost its connection", ev.Kind, ev.Err)
		case <-time.After(200 * time.Millisecond):
		}
	}
	if n := f.claimCount(); n != 0 {
		t.Errorf("%d claims, want 0", n)
	}
}

// A request given up while its message is being written (its context ends:
// a bridge stopping) fails alone: the WebSocket that every handle shares
// stays up (coder/websocket closes a connection whose write's context
// ends during the write).
func TestCancelledWriteKeepsConnection(t *testing.T) {
	f := newFakeJanus(t)
	ctx := context.Background()
	s, h := connectAttach(t, Options{Servers: []string{f.wsURL()}, RequestTimeout: 5 * time.Second, KeepAlive: time.Minute})
	f.mu.Lock()
	f.readDelay = 500 * time.Millisecond
	f.mu.Unlock()
	// 16 MiB do not fit the loopback socket buffers: the write blocks until
	// the fake reads, and the request's context ends meanwhile.
	short, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
	defer cancel()
	if _, err := h.Request(short, map[string]any{"request": "list", "pad": strings.Repeat("x", 16<<20)}); err == nil {
		t.Fatal("the request with the expired context succeeded")
	}
	f.mu.Lock()
	f.readDelay = 0
	f.mu.Unlock()
	if _, err := h.Request(ctx, map[string]any{"request": "list"}); err != nil {
		t.Fatalf("request after the given-up one: %v", err)
	}
	select {
	case ev := <-s.Events():
		t.Fatalf("session event %v (%v): the connection was lost", ev.Kind, ev.Err)
	default:
	}
}
