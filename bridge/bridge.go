// Package bridge runs the bridges of a configuration: for each, the Janus
// side (a plugin handle and a PeerConnection, renegotiated and re-created
// through faults) and the media side (tracks read, framed and fanned out to
// the sinks, each behind its own bounded queue).
package bridge

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/webrtc/v4"

	"github.com/janusbridge/janusbridge/config"
	"github.com/janusbridge/janusbridge/janus"
)

// States of a bridge (SPEC §7).
const (
	StateStarting     = "starting"
	StateNegotiating  = "negotiating"
	StateUp           = "up"
	StateWaiting      = "waiting"
	StateReconnecting = "reconnecting"
	StateFailed       = "failed"
	StateDone         = "done"
	StateStopped      = "stopped"
)

// Env is what every bridge of a daemon shares.
type Env struct {
	Session *janus.Session
	API     *webrtc.API
	// ICEServers go to every PeerConnection.
	ICEServers []webrtc.ICEServer
	Logger     *slog.Logger
	// OwnFeeds are the VideoRoom publishers of this daemon's send bridges,
	// which recv bridges following a whole room skip; nil is empty.
	OwnFeeds *OwnFeeds
	// Feedback is the NACK counter given to the API (WebRTCOptions.Feedback);
	// nil: TrackStats.NACKs stays 0.
	Feedback *janus.FeedbackCounter

	link *linkState // the session's connection, followed by a Daemon; nil: not followed
}

// Status is a snapshot of a bridge for the API and the logs.
type Status struct {
	Name      string    `json:"name"`
	Plugin    string    `json:"plugin"`
	Direction string    `json:"direction"`
	State     string    `json:"state"`
	Since     time.Time `json:"since"`
	LastError string    `json:"last_error,omitempty"`
	Server    string    `json:"server,omitempty"`
	SessionID uint64    `json:"session_id,omitempty"`
	HandleID  uint64    `json:"handle_id,omitempty"`
}

// Bridge is one configured bridge.
type Bridge struct {
	cfg *config.Bridge
	env *Env
	log *slog.Logger

	mu        sync.Mutex
	state     string
	since     time.Time
	lastError string
	lastUp    time.Time // when the bridge was last up
	handleID  uint64
	// iceRestart asks the running negotiation loop for an ICE restart
	// (RestartICE); nil while no loop runs.
	iceRestart chan struct{}

	rx atomic.Pointer[recv] // the outputs, once Run has built them (Stats)
	// running is set when Run begins: from then on Status reads the
	// session (a Daemon sets Env.Session before it runs any bridge).
	running atomic.Bool
	tx      atomic.Pointer[send] // the outgoing tracks of a send bridge (Stats, ChangeTracks)

	// iceRestarts and renegotiations count the bridge's ICE restarts and
	// its renegotiations after the first negotiation (Stats).
	iceRestarts, renegotiations atomic.Uint64
}

// New checks that this build can run cfg and prepares it; Run starts it.
func New(cfg *config.Bridge, env *Env) (*Bridge, error) {
	if err := Supported(cfg); err != nil {
		return nil, err
	}
	return &Bridge{
		cfg:   cfg,
		env:   env,
		log:   env.Logger.With("bridge", cfg.Name),
		state: StateStarting,
		since: time.Now(),
	}, nil
}

// Supported says whether this build can run cfg, naming what it cannot.
func Supported(cfg *config.Bridge) error {
	switch cfg.Direction() {
	case "send":
		return sendSupported(cfg)
	case "both": // the EchoTest self-test loop
		if err := sendSupported(cfg); err != nil {
			return err
		}
	case "recv":
		if cfg.Plugin == config.PluginEchoTest {
			return fmt.Errorf("%s %s bridges are not supported yet", cfg.Plugin, cfg.Direction())
		}
	default:
		return fmt.Errorf("%s %s bridges are not supported yet", cfg.Plugin, cfg.Direction())
	}
	for i, s := range cfg.Sinks {
		if !sinkSupported(s.Type) {
			return fmt.Errorf("sink[%d]: %s sinks are not supported yet", i, s.Type)
		}
	}
	return nil
}

// Name returns the bridge's configured name.
func (b *Bridge) Name() string { return b.cfg.Name }

// Config returns a copy of the bridge's configuration.
func (b *Bridge) Config() config.Bridge { return *b.cfg }

// Status returns a snapshot of the bridge's state. While the Janus
// session's transport is lost (followed by a Daemon), a bridge that was up
// or negotiating reports reconnecting.
func (b *Bridge) Status() Status {
	b.mu.Lock()
	st := Status{
		Name: b.cfg.Name, Plugin: b.cfg.Plugin, Direction: b.cfg.Direction(),
		State: b.state, Since: b.since, LastError: b.lastError, HandleID: b.handleID,
	}
	b.mu.Unlock()
	if b.running.Load() {
		st.Server, st.SessionID = b.env.Session.Server(), b.env.Session.ID()
	}
	if b.env.link != nil && (st.State == StateUp || st.State == StateNegotiating) {
		if lost := b.env.link.lostAt.Load(); lost != 0 {
			st.State, st.LastError = StateReconnecting, "janus transport lost"
			if t := time.Unix(0, lost); t.After(st.Since) {
				st.Since = t
			}
		}
	}
	return st
}

// attach attaches a handle of plugin for one session of the bridge and
// makes it the bridge's current handle (Status).
func (b *Bridge) attach(ctx context.Context, plugin string) (*janus.Handle, error) {
	h, err := b.env.Session.Attach(ctx, plugin, "janusbridge-"+b.cfg.Name)
	if err != nil {
		return nil, err
	}
	b.mu.Lock()
	b.handleID = h.ID()
	b.mu.Unlock()
	return h, nil
}

// detach says goodbye to the plugin (leave, if given) and detaches h,
// within 2 s whatever the state of the session.
func (b *Bridge) detach(h *janus.Handle, leave func(context.Context, *janus.Handle)) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if leave != nil {
		leave(ctx, h)
	}
	h.Detach(ctx)
}

func (b *Bridge) setState(state string, err error) {
	b.mu.Lock()
	changed := b.state != state
	if changed {
		b.state, b.since = state, time.Now()
	}
	if state == StateUp {
		b.lastUp = time.Now()
	}
	if err != nil {
		b.lastError = err.Error()
	}
	b.mu.Unlock()
	if changed {
		if err != nil {
			b.log.Warn("bridge "+state, "err", err)
		} else {
			b.log.Info("bridge " + state)
		}
	}
}

// Run runs the bridge until ctx ends, retrying with backoff through faults,
// then finalises its outputs. It returns the error that stopped it for
// good, or nil after a clean stop.
func (b *Bridge) Run(ctx context.Context) error {
	b.running.Store(true)
	if d := b.cfg.Direction(); d == "send" || d == "both" {
		return b.runSend(ctx)
	}
	r, err := newRecv(b)
	if err != nil {
		b.setState(StateFailed, err)
		return err
	}
	b.rx.Store(r)
	defer func() {
		if err := r.close(); err != nil {
			b.log.Error("closing outputs", "err", err)
		}
		b.setState(StateStopped, nil)
	}()
	b.retry(ctx, nil, r.session)
	return nil
}

// retry runs session again and again, with backoff, until ctx ends or done
// is closed.
func (b *Bridge) retry(ctx context.Context, done <-chan struct{}, session func(context.Context) error) {
	const minBackoff, maxBackoff = 500 * time.Millisecond, 30 * time.Second
	backoff := minBackoff
	for ctx.Err() == nil {
		started := time.Now()
		err := session(ctx)
		if ctx.Err() != nil {
			break
		}
		select {
		case <-done:
			return
		default:
		}
		state, wait := StateReconnecting, backoff
		switch {
		case isMissing(err):
			state = StateWaiting
		case isUnauthorized(err), errors.Is(err, errMismatch):
			state, wait = StateFailed, maxBackoff
		}
		b.setState(state, err)
		b.mu.Lock()
		wasUp := b.lastUp.After(started)
		b.mu.Unlock()
		if wasUp || time.Since(started) > maxBackoff { // it ran: a fresh fault
			backoff, wait = minBackoff, minBackoff
		}
		select {
		case <-ctx.Done():
		case <-done:
			return
		case <-time.After(wait):
		}
		backoff = min(2*backoff, maxBackoff)
	}
}

// isMissing tells a room or mountpoint that does not exist (yet).
func isMissing(err error) bool {
	var pe *janus.PluginError
	return errors.Is(err, errNoPublisher) || errors.As(err, &pe) && (pe.Code == janus.StreamingErrNoSuchMountpoint ||
		pe.Code == janus.VideoRoomErrNoSuchRoom || pe.Code == janus.VideoRoomErrNoSuchFeed ||
		pe.Code == janus.AudioBridgeErrNoSuchRoom)
}

// isUnauthorized tells a wrong pin, secret or token.
func isUnauthorized(err error) bool {
	var pe *janus.PluginError
	return errors.Is(err, janus.ErrUnauthorized) || errors.As(err, &pe) &&
		(pe.Code == janus.StreamingErrUnauthorized || pe.Code == janus.VideoRoomErrUnauthorized ||
			pe.Code == janus.AudioBridgeErrUnauthorized)
}

// sinkSupported says whether this build has the sink type.
func sinkSupported(typ string) bool {
	switch typ {
	case config.SinkWebM, config.SinkMKV, config.SinkOgg, config.SinkMP4, config.SinkRTP, config.SinkRTMP:
		return true
	}
	return false
}
