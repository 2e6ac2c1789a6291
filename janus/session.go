package janus

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// Options configure a Session.
type Options struct {
	// Servers are tried in order, on connect and on every reconnect:
	// ws://, wss://, http:// or https:// URLs.
	Servers []string
	// APISecret is sent in every request when set (Janus api_secret).
	APISecret string
	// Token is sent in every request when set (Janus token auth).
	Token string
	// RequestTimeout bounds each request that the caller's context does not
	// bound more tightly. It never applies to the HTTP long poll. Default 10s.
	RequestTimeout time.Duration
	// LongPollTimeout bounds one long-poll GET of an HTTP transport: Janus
	// answers each within 30 s (a keepalive when idle), so one still open
	// after this is stalled and the transport is replaced. Default 60s.
	LongPollTimeout time.Duration
	// KeepAlive is the interval of session keepalives. Default 25s.
	KeepAlive time.Duration
	// ReconnectMin and ReconnectMax bound the backoff between reconnect
	// rounds over Servers. Defaults 1s and 30s.
	ReconnectMin, ReconnectMax time.Duration
	// HTTPClient is used by HTTP transports instead of a client of their own.
	HTTPClient *http.Client
	// Logger receives the session's log lines; nil discards them.
	Logger *slog.Logger
}

func (o *Options) setDefaults() {
	if o.RequestTimeout <= 0 {
		o.RequestTimeout = 10 * time.Second
	}
	if o.LongPollTimeout <= 0 {
		o.LongPollTimeout = 60 * time.Second
	}
	if o.KeepAlive <= 0 {
		o.KeepAlive = 25 * time.Second
	}
	if o.ReconnectMin <= 0 {
		o.ReconnectMin = time.Second
	}
	if o.ReconnectMax < o.ReconnectMin {
		o.ReconnectMax = max(30*time.Second, o.ReconnectMin)
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
}

// SessionEventKind says what happened to a session's connection.
type SessionEventKind int

const (
	// Disconnected: the transport was lost; the session is reconnecting and
	// calls wait (within their context) until it is back.
	Disconnected SessionEventKind = iota + 1
	// Claimed: a new transport claimed the same session; handles and
	// PeerConnections are intact.
	Claimed
	// Recreated: the session was gone (Janus restarted or timed it out) and
	// a new one was created. Every handle of the old session is lost: attach
	// new handles and negotiate again.
	Recreated
)

func (k SessionEventKind) String() string {
	switch k {
	case Disconnected:
		return "disconnected"
	case Claimed:
		return "claimed"
	case Recreated:
		return "recreated"
	}
	return "unknown(" + strconv.Itoa(int(k)) + ")"
}

// SessionEvent reports a change of a session's connection.
type SessionEvent struct {
	Kind SessionEventKind
	// Server is the server now in use (Claimed, Recreated) or lost
	// (Disconnected).
	Server string
	// SessionID is the session id after the event.
	SessionID uint64
	// Err is why the transport was lost (Disconnected).
	Err error
}

// Session is a Janus session over one of the configured servers. It keeps
// itself alive, reconnects with backoff when its transport drops, claims the
// session on the new transport when Janus still has it and re-creates it
// otherwise. It is safe for concurrent use.
type Session struct {
	opts   Options
	log    *slog.Logger
	events *mailbox[SessionEvent]

	txPrefix string
	txSeq    atomic.Uint64

	badMessages, unrouted, overflow atomic.Uint64
	// heard is when the last message from Janus arrived (unix ns).
	heard atomic.Int64

	mu      sync.Mutex
	t       transport
	id      uint64
	up      chan struct{} // closed while connected; replaced on disconnect
	handles map[uint64]*Handle
	waiters map[string]chan *Message // async events awaited, by transaction

	sessionLost chan struct{}   // Janus said the session timed out
	ctx         context.Context // cancelled by Close
	cancel      context.CancelFunc
	closeOnce   sync.Once
	wg          sync.WaitGroup
}

// Connect opens a transport to the first server in opts.Servers that
// answers and creates a session on it.
func Connect(ctx context.Context, opts Options) (*Session, error) {
	if len(opts.Servers) == 0 {
		return nil, errors.New("janus: no servers")
	}
	opts.setDefaults()
	var b [6]byte
	rand.Read(b[:])
	s := &Session{
		opts:        opts,
		log:         opts.Logger,
		txPrefix:    hex.EncodeToString(b[:]) + "-",
		handles:     make(map[uint64]*Handle),
		waiters:     make(map[string]chan *Message),
		up:          make(chan struct{}),
		sessionLost: make(chan struct{}, 1),
	}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	s.events = newMailbox[SessionEvent](&s.wg, s.ctx.Done(), 0)
	var errs []error
	for _, server := range opts.Servers {
		t, id, err := s.open(ctx, server, 0)
		if err == nil {
			s.t, s.id = t, id
			close(s.up)
			s.wg.Add(1)
			go s.supervise(t)
			s.log.Info("janus session created", "server", server, "session", id)
			return s, nil
		}
		errs = append(errs, err)
		if ctx.Err() != nil {
			break
		}
	}
	s.cancel()
	s.events.end()
	s.wg.Wait()
	return nil, errors.Join(errs...)
}

// open dials server and claims session claimID on it, or creates a new
// session when claimID is 0. A claim that Janus refuses with "no such
// session" returns ErrSessionNotFound with the transport still open.
func (s *Session) open(ctx context.Context, server string, claimID uint64) (transport, uint64, error) {
	ctx, cancel := context.WithTimeout(ctx, s.opts.RequestTimeout)
	defer cancel()
	t, err := dialTransport(ctx, server, &s.opts, s.dispatch, s.badMessage)
	if err != nil {
		return nil, 0, err
	}
	id := claimID
	if claimID != 0 {
		_, err = s.roundTrip(ctx, t, claimID, 0, map[string]any{"janus": "claim"})
		if errors.Is(err, ErrSessionNotFound) {
			id = 0
		} else if err != nil {
			t.close()
			return nil, 0, fmt.Errorf("janus: %s: claim: %w", server, err)
		}
	}
	if id == 0 {
		reply, err := s.roundTrip(ctx, t, 0, 0, map[string]any{"janus": "create"})
		if err != nil {
			t.close()
			return nil, 0, fmt.Errorf("janus: %s: create session: %w", server, err)
		}
		if reply.Data == nil || reply.Data.ID == 0 {
			t.close()
			return nil, 0, fmt.Errorf("janus: %s: create session: reply without id", server)
		}
		id = reply.Data.ID
	}
	t.listen(id)
	return t, id, nil
}

// roundTrip sends one request over t with a fresh transaction and the
// credentials, and turns a Janus error reply into an error.
func (s *Session) roundTrip(ctx context.Context, t transport, sessionID, handleID uint64, req map[string]any) (*Message, error) {
	if _, ok := req["transaction"]; !ok {
		req["transaction"] = s.newTransaction()
	}
	if s.opts.APISecret != "" {
		req["apisecret"] = s.opts.APISecret
	}
	if s.opts.Token != "" {
		req["token"] = s.opts.Token
	}
	reply, err := t.roundTrip(ctx, sessionID, handleID, req)
	if err != nil {
		return nil, err
	}
	s.heard.Store(time.Now().UnixNano())
	if reply.Janus == "error" {
		if reply.Error == nil {
			return nil, &Error{Reason: "error reply without details"}
		}
		return nil, reply.Error
	}
	return reply, nil
}

func (s *Session) newTransaction() string {
	return s.txPrefix + strconv.FormatUint(s.txSeq.Add(1), 36)
}

// SessionStats are the counters of a Session about what Janus sent.
type SessionStats struct {
	// BadMessages counts messages that could not be decoded (not JSON,
	// the wrong shape, nested too deep, no "janus" field): dropped, or
	// returned as the error of the request they answer. A message larger
	// than 8 MiB is not counted here: it breaks the connection, which is
	// re-established (a Disconnected event says why).
	BadMessages uint64
	// Unrouted counts messages about no session, handle or request of
	// ours (dropped): late replies and events, or a confused server.
	Unrouted uint64
	// Overflow counts events dropped because their handle already held
	// 4096 that its reader had not taken (a stuck reader or a flooding
	// server).
	Overflow uint64
}

// handleEventLimit bounds the events a handle holds for its reader.
const handleEventLimit = 4096

// Stats returns the session's counters.
func (s *Session) Stats() SessionStats {
	return SessionStats{BadMessages: s.badMessages.Load(), Unrouted: s.unrouted.Load(), Overflow: s.overflow.Load()}
}

// badMessage counts a message a transport could not decode.
func (s *Session) badMessage(error) { s.badMessages.Add(1) }

// ID returns the current session id (it changes when the session is
// re-created).
func (s *Session) ID() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.id
}

// Server returns the URL of the server in use.
func (s *Session) Server() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.t.server()
}

// Events delivers the session's connection changes. It is closed by Close.
// Reading it is optional.
func (s *Session) Events() <-chan SessionEvent { return s.events.out }

// current waits until the session is connected and returns its transport
// and id.
func (s *Session) current(ctx context.Context) (transport, uint64, error) {
	for {
		s.mu.Lock()
		t, id, up := s.t, s.id, s.up
		s.mu.Unlock()
		select {
		case <-s.ctx.Done():
			return nil, 0, ErrClosed
		default:
		}
		select {
		case <-up:
			return t, id, nil
		case <-s.ctx.Done():
			return nil, 0, ErrClosed
		case <-ctx.Done():
			return nil, 0, fmt.Errorf("janus: waiting for reconnect: %w", ctx.Err())
		}
	}
}

// do sends a request within the session (to handle handleID when not 0).
func (s *Session) do(ctx context.Context, handleID uint64, req map[string]any) (*Message, error) {
	ctx, cancel := context.WithTimeout(ctx, s.opts.RequestTimeout)
	defer cancel()
	t, id, err := s.current(ctx)
	if err != nil {
		return nil, err
	}
	return s.roundTrip(ctx, t, id, handleID, req)
}

// doAsync sends a request that Janus acknowledges first and answers later
// with an event of the same transaction, and returns that event. A
// synchronous "success" reply is returned as it is.
func (s *Session) doAsync(ctx context.Context, h *Handle, req map[string]any) (*Message, error) {
	ctx, cancel := context.WithTimeout(ctx, s.opts.RequestTimeout)
	defer cancel()
	tx := s.newTransaction()
	req["transaction"] = tx
	ch := make(chan *Message, 1)
	s.mu.Lock()
	s.waiters[tx] = ch
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.waiters, tx)
		s.mu.Unlock()
	}()
	t, id, err := s.current(ctx)
	if err != nil {
		return nil, err
	}
	reply, err := s.roundTrip(ctx, t, id, h.id, req)
	if err != nil {
		return nil, err
	}
	if reply.Janus != "ack" {
		return reply, nil
	}
	select {
	case m := <-ch:
		return m, nil
	case <-h.gone:
		return nil, h.err
	case <-ctx.Done():
		return nil, fmt.Errorf("janus: waiting for the event after ack: %w", ctx.Err())
	}
}

// dispatch routes an unsolicited message from a transport. It never blocks.
func (s *Session) dispatch(m *Message) {
	s.heard.Store(time.Now().UnixNano())
	s.mu.Lock()
	if m.Transaction != "" {
		if ch, ok := s.waiters[m.Transaction]; ok && m.Janus == "event" {
			delete(s.waiters, m.Transaction)
			s.mu.Unlock()
			ch <- m
			return
		}
	}
	if m.SessionID != 0 && m.SessionID != s.id {
		s.mu.Unlock()
		s.unrouted.Add(1)
		return // a late message of a session we no longer have
	}
	h := s.handles[m.Sender]
	s.mu.Unlock()
	switch {
	case m.Janus == "timeout":
		select {
		case s.sessionLost <- struct{}{}:
		default:
		}
	case h != nil:
		if !h.events.post(m) {
			s.overflow.Add(1)
		}
		if m.Janus == "detached" {
			h.drop(fmt.Errorf("janus: handle %d detached by Janus: %w", h.id, ErrClosed))
		}
	default:
		s.unrouted.Add(1)
	}
}

// supervise owns the connection: keepalives, and reconnects when the
// transport fails or Janus times the session out.
func (s *Session) supervise(t transport) {
	defer s.wg.Done()
	tick := time.NewTicker(s.opts.KeepAlive)
	defer tick.Stop()
	for {
		select {
		case <-s.ctx.Done():
			return
		case <-tick.C:
			if _, err := s.do(context.Background(), 0, map[string]any{"janus": "keepalive"}); err != nil {
				s.log.Warn("janus keepalive failed", "err", err)
				switch {
				case errors.Is(err, ErrSessionNotFound):
					t = s.reconnect(t, err, true)
				case errors.Is(err, context.DeadlineExceeded) && time.Since(time.Unix(0, s.heard.Load())) >= s.opts.RequestTimeout:
					// A connection that brought nothing while the keepalive
					// waited (a stalled or never-ending message) is as good
					// as lost. One that still brings other messages is a
					// Janus too busy to answer in time: replacing its
					// transport would only add to its load.
					t = s.reconnect(t, fmt.Errorf("janus: keepalive not answered: %w", err), false)
				}
			}
		case <-t.done():
			t = s.reconnect(t, t.err(), false)
		case <-s.sessionLost:
			t = s.reconnect(t, errors.New("janus: session timed out"), true)
		}
		if t == nil {
			return
		}
	}
}

// reconnect replaces the lost transport old. With recreate it does not try
// to claim the old session. It returns nil when the session is closing.
func (s *Session) reconnect(old transport, cause error, recreate bool) transport {
	s.mu.Lock()
	oldID := s.id
	s.up = make(chan struct{})
	s.mu.Unlock()
	old.close()
	s.log.Warn("janus transport lost, reconnecting", "server", old.server(), "session", oldID, "err", cause)
	s.events.post(SessionEvent{Kind: Disconnected, Server: old.server(), SessionID: oldID, Err: cause})

	claimID := oldID
	if recreate {
		claimID = 0
	}
	delay := s.opts.ReconnectMin
	for {
		for _, server := range s.opts.Servers {
			if s.ctx.Err() != nil {
				return nil
			}
			t, id, err := s.open(s.ctx, server, claimID)
			if err != nil {
				s.log.Debug("janus reconnect attempt failed", "server", server, "err", err)
				continue
			}
			kind := Claimed
			if id != oldID {
				kind = Recreated
			}
			s.mu.Lock()
			if s.ctx.Err() != nil { // Close ran meanwhile
				s.mu.Unlock()
				t.close()
				return nil
			}
			s.t, s.id = t, id
			var lost []*Handle
			if kind == Recreated {
				for hid, h := range s.handles {
					lost = append(lost, h)
					delete(s.handles, hid)
				}
			}
			close(s.up)
			s.mu.Unlock()
			for _, h := range lost {
				h.drop(ErrSessionRecreated)
			}
			s.log.Info("janus session "+kind.String(), "server", server, "session", id, "old_session", oldID)
			s.events.post(SessionEvent{Kind: kind, Server: server, SessionID: id})
			return t
		}
		select {
		case <-s.ctx.Done():
			return nil
		case <-time.After(delay):
		}
		delay = min(2*delay, s.opts.ReconnectMax)
	}
}

// Close destroys the session on Janus (best effort, within ctx), closes the
// transport and waits for every goroutine of the session to end. Handles
// are dropped without detaching (destroying the session detaches them).
func (s *Session) Close(ctx context.Context) error {
	var err error
	s.closeOnce.Do(func() {
		s.mu.Lock()
		t, id := s.t, s.id
		select {
		case <-s.up:
		default:
			t = nil // reconnecting: nothing to destroy
		}
		s.mu.Unlock()
		if t != nil {
			ctx, cancel := context.WithTimeout(ctx, s.opts.RequestTimeout)
			_, err = s.roundTrip(ctx, t, id, 0, map[string]any{"janus": "destroy"})
			cancel()
			if err != nil {
				err = fmt.Errorf("janus: destroy session %d: %w", id, err)
			}
		}
		s.mu.Lock()
		s.cancel()
		handles := s.handles
		s.handles = map[uint64]*Handle{}
		t = s.t
		s.mu.Unlock()
		for _, h := range handles {
			h.drop(ErrClosed)
		}
		t.close()
		s.events.end()
		s.wg.Wait()
	})
	return err
}
