package janus

import (
	"context"
	"fmt"
	"sync"

	"github.com/pion/webrtc/v4"
)

// Handle is a plugin handle: the session's link to one plugin instance
// (janus.js's pluginHandle). It is safe for concurrent use.
type Handle struct {
	s      *Session
	id     uint64
	plugin string
	events *mailbox[*Message]

	dropOnce sync.Once
	gone     chan struct{}
	err      error // why the handle is gone, set before gone is closed
}

// Attach attaches a handle to plugin (e.g. "janus.plugin.streaming").
// opaqueID is optional; Janus passes it to event handlers.
func (s *Session) Attach(ctx context.Context, plugin, opaqueID string) (*Handle, error) {
	req := map[string]any{"janus": "attach", "plugin": plugin}
	if opaqueID != "" {
		req["opaque_id"] = opaqueID
	}
	reply, err := s.do(ctx, 0, req)
	if err != nil {
		return nil, fmt.Errorf("janus: attach %s: %w", plugin, err)
	}
	if reply.Data == nil || reply.Data.ID == 0 {
		return nil, fmt.Errorf("janus: attach %s: reply without id", plugin)
	}
	h := &Handle{s: s, id: reply.Data.ID, plugin: plugin, gone: make(chan struct{})}
	h.events = newMailbox[*Message](&s.wg, s.ctx.Done(), handleEventLimit)
	s.mu.Lock()
	s.handles[h.id] = h
	s.mu.Unlock()
	return h, nil
}

// ID returns the handle id.
func (h *Handle) ID() uint64 { return h.id }

// Plugin returns the plugin package name.
func (h *Handle) Plugin() string { return h.plugin }

// Session returns the session the handle belongs to.
func (h *Handle) Session() *Session { return h.s }

// Events delivers the handle's asynchronous messages: plugin "event"s that
// answer no pending Message call (with PluginData and maybe a JSEP, e.g. a
// renegotiation offer), and the core's "webrtcup", "media", "slowlink",
// "hangup", "detached" and "trickle". It is closed when the handle is gone
// (Detach, a "detached" from Janus, session re-created or closed); Err then
// says why.
func (h *Handle) Events() <-chan *Message { return h.events.out }

// Done is closed when the handle is gone.
func (h *Handle) Done() <-chan struct{} { return h.gone }

// Err returns why the handle is gone, or nil while it lives.
func (h *Handle) Err() error {
	select {
	case <-h.gone:
		return h.err
	default:
		return nil
	}
}

// drop marks the handle gone with err and ends its events.
func (h *Handle) drop(err error) {
	h.dropOnce.Do(func() {
		h.err = err
		close(h.gone)
		h.s.mu.Lock()
		if h.s.handles[h.id] == h {
			delete(h.s.handles, h.id)
		}
		h.s.mu.Unlock()
		h.events.end()
	})
}

func (h *Handle) check() error {
	select {
	case <-h.gone:
		return h.err
	default:
		return nil
	}
}

// Request sends a synchronous plugin request (list, info, create,
// exists...) and returns the plugin's answer. A plugin error is returned as
// a *PluginError.
func (h *Handle) Request(ctx context.Context, body any) (*PluginData, error) {
	if err := h.check(); err != nil {
		return nil, err
	}
	reply, err := h.s.do(ctx, h.id, map[string]any{"janus": "message", "body": body})
	if err != nil {
		return nil, fmt.Errorf("janus: %s request: %w", h.plugin, err)
	}
	if reply.Janus != "success" || reply.PluginData == nil {
		return nil, fmt.Errorf("janus: %s request: unexpected %q reply", h.plugin, reply.Janus)
	}
	if err := pluginError(reply.PluginData); err != nil {
		return nil, err
	}
	return reply.PluginData, nil
}

// Message sends an asynchronous plugin request (watch, join, publish,
// configure, start...) with an optional JSEP, waits for the "ack" and then
// for the plugin's event with the same transaction, and returns that event
// (its PluginData, and its JSEP when the plugin offers or answers). A
// plugin error is returned as a *PluginError.
func (h *Handle) Message(ctx context.Context, body any, jsep *JSEP) (*Message, error) {
	if err := h.check(); err != nil {
		return nil, err
	}
	req := map[string]any{"janus": "message", "body": body}
	if jsep != nil {
		req["jsep"] = jsep
	}
	m, err := h.s.doAsync(ctx, h, req)
	if err != nil {
		return nil, fmt.Errorf("janus: %s message: %w", h.plugin, err)
	}
	if err := pluginError(m.PluginData); err != nil {
		return nil, err
	}
	return m, nil
}

// Trickle sends local ICE candidates to Janus.
func (h *Handle) Trickle(ctx context.Context, candidates ...webrtc.ICECandidateInit) error {
	if len(candidates) == 0 {
		return nil
	}
	req := map[string]any{"janus": "trickle"}
	if len(candidates) == 1 {
		req["candidate"] = candidates[0]
	} else {
		req["candidates"] = candidates
	}
	return h.simple(ctx, "trickle", req)
}

// TrickleComplete tells Janus that no more local candidates follow.
func (h *Handle) TrickleComplete(ctx context.Context) error {
	return h.simple(ctx, "trickle", map[string]any{"janus": "trickle", "candidate": map[string]bool{"completed": true}})
}

// Hangup closes the handle's PeerConnection on the Janus side; the handle
// stays attached.
func (h *Handle) Hangup(ctx context.Context) error {
	return h.simple(ctx, "hangup", map[string]any{"janus": "hangup"})
}

// Detach detaches the handle from its plugin and ends its events. A handle
// that is already gone detaches without error.
func (h *Handle) Detach(ctx context.Context) error {
	if h.check() != nil {
		return nil
	}
	err := h.simple(ctx, "detach", map[string]any{"janus": "detach"})
	h.drop(ErrClosed)
	return err
}

func (h *Handle) simple(ctx context.Context, what string, req map[string]any) error {
	if err := h.check(); err != nil {
		return err
	}
	if _, err := h.s.do(ctx, h.id, req); err != nil {
		return fmt.Errorf("janus: %s %s: %w", h.plugin, what, err)
	}
	return nil
}
