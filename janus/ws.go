package janus

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"time"

	"github.com/coder/websocket"
)

// maxMessageSize bounds one message read from Janus, on either transport:
// a larger one (or one that never ends) breaks the connection, which is
// then re-established, instead of exhausting memory. coder/websocket's
// default of 32 KiB is too small for real replies (a Streaming or
// VideoRoom list of a busy server); 8 MiB holds thousands of entries.
const maxMessageSize = 8 << 20

// wsWriteTimeout bounds one write of a request on the WebSocket.
const wsWriteTimeout = 10 * time.Second

// wsTransport speaks the janus-protocol WebSocket subprotocol: requests and
// replies share one socket with the session's events.
type wsTransport struct {
	url     string
	conn    *websocket.Conn
	deliver func(*Message)
	bad     func(error)
	ctx     context.Context // cancelled by close
	cancel  context.CancelFunc

	mu      sync.Mutex
	pending map[string]chan wsReply

	wg      sync.WaitGroup
	doneCh  chan struct{}
	errOnce sync.Once
	failErr error
}

// wsReply answers a pending request: its reply, or why the reply could not
// be decoded.
type wsReply struct {
	m   *Message
	err error
}

func dialWS(ctx context.Context, server string, _ *Options, deliver func(*Message), bad func(error)) (*wsTransport, error) {
	conn, _, err := websocket.Dial(ctx, server, &websocket.DialOptions{Subprotocols: []string{"janus-protocol"}})
	if err != nil {
		return nil, fmt.Errorf("janus: connect %s: %w", server, err)
	}
	if conn.Subprotocol() != "janus-protocol" {
		conn.CloseNow()
		return nil, fmt.Errorf("janus: connect %s: server did not accept the janus-protocol subprotocol", server)
	}
	conn.SetReadLimit(maxMessageSize)
	t := &wsTransport{
		url:     server,
		conn:    conn,
		deliver: deliver,
		bad:     bad,
		pending: make(map[string]chan wsReply),
		doneCh:  make(chan struct{}),
	}
	t.ctx, t.cancel = context.WithCancel(context.Background())
	t.wg.Add(1)
	go t.readLoop()
	return t, nil
}

func (t *wsTransport) readLoop() {
	defer t.wg.Done()
	for {
		_, data, err := t.conn.Read(t.ctx)
		if err != nil {
			t.fail(fmt.Errorf("janus: %s: read: %w", t.url, err))
			return
		}
		msgs, err := decodeMessages(data)
		if err != nil {
			// A message we cannot parse is dropped; the connection stays.
			// If it names the transaction of a request, that request
			// fails with the reason rather than waiting for its timeout.
			t.bad(err)
			t.failRequest(data, err)
			continue
		}
		for _, m := range msgs {
			t.route(m)
		}
	}
}

// failRequest hands err to the request waiting for the transaction of the
// undecodable message data, if data is a JSON object that names one.
func (t *wsTransport) failRequest(data []byte, err error) {
	var head struct {
		Transaction string `json:"transaction"`
	}
	if json.Unmarshal(data, &head) != nil || head.Transaction == "" {
		return
	}
	t.mu.Lock()
	ch, ok := t.pending[head.Transaction]
	delete(t.pending, head.Transaction)
	t.mu.Unlock()
	if ok {
		ch <- wsReply{err: fmt.Errorf("janus: %s: reply to %s: %w", t.url, head.Transaction, err)}
	}
}

// route hands m to the request waiting for its transaction, if any. An
// "event" never answers a request: it follows the "ack" of an async request
// and goes to deliver like every other unsolicited message.
func (t *wsTransport) route(m *Message) {
	if m.Transaction != "" && m.Janus != "event" {
		t.mu.Lock()
		ch, ok := t.pending[m.Transaction]
		delete(t.pending, m.Transaction)
		t.mu.Unlock()
		if ok {
			ch <- wsReply{m: m}
			return
		}
	}
	t.deliver(m)
}

func (t *wsTransport) fail(err error) {
	t.errOnce.Do(func() {
		t.failErr = err
		close(t.doneCh)
	})
}

func (t *wsTransport) roundTrip(ctx context.Context, sessionID, handleID uint64, req map[string]any) (*Message, error) {
	if sessionID != 0 {
		req["session_id"] = sessionID
	}
	if handleID != 0 {
		req["handle_id"] = handleID
	}
	data, err := json.Marshal(req)
	if err != nil {
		return nil, fmt.Errorf("janus: encode request: %w", err)
	}
	tx, _ := req["transaction"].(string)
	ch := make(chan wsReply, 1)
	t.mu.Lock()
	t.pending[tx] = ch
	t.mu.Unlock()
	defer func() {
		t.mu.Lock()
		delete(t.pending, tx)
		t.mu.Unlock()
	}()
	// The write does not get the request's ctx: coder/websocket closes the
	// connection when a write's context ends during the write, and a
	// request given up (a bridge stopping) must not take down the
	// connection every other handle shares. A write stuck that long means
	// the connection is broken anyway.
	wctx, cancel := context.WithTimeout(t.ctx, wsWriteTimeout)
	err = t.conn.Write(wctx, websocket.MessageText, data)
	cancel()
	if err != nil {
		err = fmt.Errorf("janus: %s: write: %w", t.url, err)
		t.fail(err)
		return nil, err
	}
	select {
	case r := <-ch:
		return r.m, r.err
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-t.doneCh:
		return nil, t.failErr
	}
}

func (t *wsTransport) listen(uint64) {}

func (t *wsTransport) done() <-chan struct{} { return t.doneCh }

func (t *wsTransport) err() error {
	select {
	case <-t.doneCh:
		return t.failErr
	default:
		return nil
	}
}

func (t *wsTransport) server() string { return t.url }

func (t *wsTransport) close() error {
	t.fail(ErrClosed)
	t.cancel()
	t.conn.CloseNow() // the error only says it was already closed
	t.wg.Wait()
	return nil
}
