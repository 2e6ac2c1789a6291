package bridge

import (
	"context"
	"errors"
	"fmt"

	"github.com/janusbridge/janusbridge/config"
)

// Track change actions of a TrackChange.
const (
	TrackAdd     = "add"
	TrackRemove  = "remove"
	TrackReplace = "replace"
)

// TrackSpec is one source track given through the control API (SPEC §7):
// an RTP listener, e.g. {"kind":"video","codec":"h264",
// "listen":"127.0.0.1:7010","payload_type":96}, or a media file, e.g.
// {"kind":"video","file":"/srv/media/b.webm","loop":true}.
type TrackSpec struct {
	Kind        string `json:"kind"`
	Codec       string `json:"codec,omitempty"`
	Listen      string `json:"listen,omitempty"`
	PayloadType uint8  `json:"payload_type,omitempty"`
	File        string `json:"file,omitempty"`
	Loop        bool   `json:"loop,omitempty"`
}

// TrackChange is the body of POST /api/v1/bridges/{name}/tracks: add a
// track (renegotiated), remove the track of MID (renegotiated), or replace
// the source of MID's track (no renegotiation).
type TrackChange struct {
	Action string     `json:"action"`
	MID    string     `json:"mid,omitempty"`
	Track  *TrackSpec `json:"track,omitempty"`
}

// ErrNotRunning is returned by a control action on a bridge that has no
// live PeerConnection to act on (starting, waiting, stopped).
var ErrNotRunning = errors.New("bridge has no live connection")

// RestartICE restarts ICE on the bridge's PeerConnection: for a recv bridge
// by asking the plugin for a restart offer, for a send bridge with an offer
// of ours with new ICE credentials. It returns once the request is queued
// to the bridge's negotiation loop.
func (b *Bridge) RestartICE(ctx context.Context) error {
	if b.cfg.Plugin == config.PluginStreaming && b.cfg.Direction() == "send" {
		return fmt.Errorf("bridge %q feeds its mountpoint with plain RTP: there is no ICE to restart", b.cfg.Name)
	}
	b.mu.Lock()
	ch := b.iceRestart
	b.mu.Unlock()
	if ch == nil {
		return ErrNotRunning
	}
	select {
	case ch <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// ChangeTracks adds, removes or replaces a source track of a bridge that
// sends. A replace switches the track's source at once, its RTP stream
// continuing without renegotiation; an add or a remove changes the track
// set at once and queues a renegotiation with the plugin (counted in
// BridgeStats.Renegotiations when done).
func (b *Bridge) ChangeTracks(ctx context.Context, c TrackChange) error {
	if b.cfg.Source == nil {
		return fmt.Errorf("bridge %q receives: it has no source tracks to change", b.cfg.Name)
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	s := b.tx.Load()
	if s == nil {
		return ErrNotRunning
	}
	if err := s.change(c); err != nil {
		return fmt.Errorf("bridge %q: %s track: %w", b.cfg.Name, c.Action, err)
	}
	return nil
}
