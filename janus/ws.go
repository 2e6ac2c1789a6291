package janus

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"

	"github.com/coder/websocket"
)

// maxMessageSize bounds one message read from Janus; larger ones break the
// connection instead of exhausting memory.
const maxMessageSize = 8 << 20

// wsTransport speaks the janus-protocol WebSocket subprotocol: requests and
// replies share one socket with the session's events.
type wsTransport struct {
	url     string
	conn    *websocket.Conn
	deliver func(*Message)
	ctx     context.Context // cancelled by close
	cancel  context.CancelFunc

	mu      sync.Mutex
	pending map[string]chan *Message

	wg      sync.WaitGroup
	doneCh  chan struct{}
	errOnce sync.Once
	failErr error
}

func dialWS(ctx context.Context, server string, _ *Options, deliver func(*Message)) (*wsTransport, error) {
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
		pending: make(map[string]chan *Message),
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
			continue
		}
		for _, m := range msgs {
			t.route(m)
		}
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
			ch <- m
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
	ch := make(chan *Message, 1)
	t.mu.Lock()
	t.pending[tx] = ch
	t.mu.Unlock()
	defer func() {
		t.mu.Lock()
		delete(t.pending, tx)
		t.mu.Unlock()
	}()
	if err := t.conn.Write(ctx, websocket.MessageText, data); err != nil {
		err = fmt.Errorf("janus: %s: write: %w", t.url, err)
		if ctx.Err() == nil {
			t.fail(err)
		}
		return nil, err
	}
	select {
	case m := <-ch:
		return m, nil
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
