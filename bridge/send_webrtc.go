package bridge

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/pion/rtcp"
	"github.com/pion/webrtc/v4"

	"github.com/janusbridge/janusbridge/config"
	"github.com/janusbridge/janusbridge/janus"
)

// sendPlugin is the plugin-specific part of a send bridge over WebRTC.
type sendPlugin interface {
	// join prepares the handle for our first offer (VideoRoom and
	// AudioBridge: join the room).
	join(ctx context.Context, h *janus.Handle) error
	// offer sends an offer of ours (the first one, a renegotiation or an ICE
	// restart) and returns the plugin's answer.
	offer(ctx context.Context, h *janus.Handle, offer *janus.JSEP, first bool) (*janus.JSEP, error)
	// leave says goodbye before the handle is detached.
	leave(ctx context.Context, h *janus.Handle)
}

func (s *send) newPlugin() sendPlugin {
	switch s.b.cfg.Plugin {
	case config.PluginVideoRoom:
		return &publisherPlugin{b: s.b}
	case config.PluginAudioBridge:
		codec := ""
		if ts := s.activeTracks(); len(ts) > 0 {
			codec = ts[0].desc.Codec
		}
		return &audioBridgeSender{b: s.b, codec: codec}
	}
	return echoTestSender{}
}

// restartsFor is how long ICE restarts may go on failing (an outage)
// before the session is dropped for a full renegotiation (a new
// PeerConnection, published again). Each restart that does not connect
// ends in ICE failed after the ICE timeouts and is followed by another, so
// media comes back within about one restart of the network's return; a new
// PeerConnection costs the subscribers a new subscription, so it is the
// last resort.
const restartsFor = 30 * time.Second

// webrtcSession runs one Janus negotiation of a send bridge over WebRTC
// until the handle or the connection fails, or ctx ends.
func (s *send) webrtcSession(ctx context.Context) error {
	b := s.b
	b.setState(StateNegotiating, nil)
	h, err := b.attach(ctx, "janus.plugin."+b.cfg.Plugin)
	if err != nil {
		return err
	}
	plugin := s.newPlugin()
	defer b.detach(h, plugin.leave)
	p, err := janus.NewPeer(b.env.API, h, janus.PeerConfig{ICEServers: b.env.ICEServers, Logger: b.log, OnRTCP: s.onRTCP})
	if err != nil {
		return err
	}
	if r := s.rx; r != nil {
		p.PC().OnTrack(r.onTrack)
		r.mu.Lock()
		r.pc = p.PC()
		r.mu.Unlock()
	}
	defer func() {
		p.Close()
		if s.rx != nil {
			s.rx.readers.Wait() // the echo's readers end with the PeerConnection
		}
		for _, t := range s.activeTracks() {
			t.mu.Lock()
			t.sender, t.mid = nil, ""
			t.mu.Unlock()
		}
	}()

	iceState := make(chan webrtc.ICEConnectionState, 8)
	p.PC().OnICEConnectionStateChange(func(st webrtc.ICEConnectionState) {
		if st == webrtc.ICEConnectionStateFailed || st == webrtc.ICEConnectionStateConnected {
			select {
			case iceState <- st:
			default:
			}
		}
	})
	restart := make(chan struct{}, 1)
	reneg := make(chan struct{}, 1)
	b.mu.Lock()
	b.iceRestart = restart
	b.mu.Unlock()
	s.mu.Lock()
	s.renegotiate = reneg
	s.mu.Unlock()
	defer func() {
		b.mu.Lock()
		b.iceRestart = nil
		b.mu.Unlock()
		s.mu.Lock()
		s.renegotiate = nil
		s.mu.Unlock()
	}()

	if err := plugin.join(ctx, h); err != nil {
		return err
	}
	if err := s.syncTracks(p); err != nil {
		return err
	}
	if err := s.negotiate(ctx, p, h, plugin, janus.OfferOptions{}, true); err != nil {
		return err
	}
	b.setState(StateUp, nil)
	s.requestKeyframes()

	failedRestarts := 0
	var failingSince time.Time
	idle := time.NewTicker(idleCheckEvery)
	defer idle.Stop()
	var watch idleWatch
	for {
		select {
		case now := <-idle.C:
			s.checkIdle(&watch, now)
		case <-ctx.Done():
			return nil
		case <-s.done:
			return nil
		case m, ok := <-h.Events():
			if !ok {
				return fmt.Errorf("handle gone: %w", h.Err())
			}
			switch m.Janus {
			case "trickle":
				if err := p.AddRemoteCandidate(m.Candidate); err != nil {
					b.log.Debug("bad remote candidate", "err", err)
				}
			case "hangup":
				return fmt.Errorf("janus hung up: %s", m.Reason)
			}
		case <-reneg:
			if err := s.syncTracks(p); err != nil {
				return fmt.Errorf("renegotiation: %w", err)
			}
			if err := s.negotiate(ctx, p, h, plugin, janus.OfferOptions{}, false); err != nil {
				return fmt.Errorf("renegotiation: %w", err)
			}
			b.renegotiations.Add(1)
			b.log.Info("renegotiated", "tracks", len(s.activeTracks()))
		case <-restart:
			b.log.Info("ICE restart on request")
			if err := s.negotiate(ctx, p, h, plugin, janus.OfferOptions{ICERestart: true}, false); err != nil {
				return fmt.Errorf("ICE restart: %w", err)
			}
			b.iceRestarts.Add(1)
		case st := <-iceState:
			if st == webrtc.ICEConnectionStateConnected {
				if failedRestarts > 0 {
					b.log.Info("ICE connected again", "restarts", failedRestarts)
					s.requestKeyframes()
				}
				failedRestarts, failingSince = 0, time.Time{}
				b.setState(StateUp, nil)
				continue
			}
			if failingSince.IsZero() {
				failingSince = time.Now()
			} else if time.Since(failingSince) > restartsFor {
				return fmt.Errorf("ICE failed after %d restarts: renegotiating from scratch", failedRestarts)
			}
			failedRestarts++
			b.setState(StateReconnecting, errors.New("ICE failed"))
			b.log.Warn("ICE failed: restarting ICE", "attempt", failedRestarts)
			if err := s.negotiate(ctx, p, h, plugin, janus.OfferOptions{ICERestart: true}, false); err != nil {
				return fmt.Errorf("ICE restart: %w", err)
			}
			b.iceRestarts.Add(1)
		}
	}
}

// negotiate makes an offer, has the plugin answer it and applies the answer.
func (s *send) negotiate(ctx context.Context, p *janus.Peer, h *janus.Handle, plugin sendPlugin, o janus.OfferOptions, first bool) error {
	offer, err := p.CreateOffer(ctx, o)
	if err != nil {
		return err
	}
	answer, err := plugin.offer(ctx, h, offer, first)
	if err != nil {
		return err
	}
	if s.rx != nil {
		// The echoed tracks, described to the sinks before their media.
		tracks, err := offerTracks(answer.SDP)
		if err != nil {
			return err
		}
		if err := s.rx.setTracks(tracks, func(string) feedInfo { return feedInfo{} }); err != nil {
			return err
		}
	}
	if err := p.HandleRemoteJSEP(ctx, answer); err != nil {
		return err
	}
	s.noteMIDs(p)
	return nil
}

// syncTracks makes the PeerConnection's senders match the track set:
// removed tracks stop sending, new ones get a transceiver.
func (s *send) syncTracks(p *janus.Peer) error {
	s.mu.Lock()
	tracks := append([]*sendTrack(nil), s.tracks...)
	s.mu.Unlock()
	dir := webrtc.RTPTransceiverDirectionSendonly
	if s.b.cfg.Plugin == config.PluginEchoTest && len(s.b.cfg.Sinks) > 0 {
		dir = webrtc.RTPTransceiverDirectionSendrecv
	}
	active := 0
	for _, t := range tracks {
		t.mu.Lock()
		removed, sender := t.removed, t.sender
		t.mu.Unlock()
		switch {
		case removed && sender != nil:
			if err := p.PC().RemoveTrack(sender); err != nil {
				return fmt.Errorf("track %d: %w", t.desc.Index, err)
			}
			t.mu.Lock()
			t.sender, t.mid = nil, ""
			t.mu.Unlock()
		case !removed && sender == nil:
			tr, err := p.AddTrack(t.local, dir)
			if err != nil {
				return fmt.Errorf("track %d: %w", t.desc.Index, err)
			}
			t.mu.Lock()
			t.sender = tr.Sender()
			t.mu.Unlock()
		}
		if !removed {
			active++
		}
	}
	if active == 0 {
		return errNoSource
	}
	return nil
}

// noteMIDs records the mid of each track's transceiver after a
// negotiation.
func (s *send) noteMIDs(p *janus.Peer) {
	trs := p.PC().GetTransceivers()
	for _, t := range s.activeTracks() {
		t.mu.Lock()
		for _, tr := range trs {
			if t.sender != nil && tr.Sender() == t.sender {
				t.mid = tr.Mid()
			}
		}
		t.mu.Unlock()
	}
}

// onRTCP takes the RTCP Janus sends about a track: keyframe requests go
// to the track's source, NACKs are counted (the NACK responder resends).
func (s *send) onRTCP(sender *webrtc.RTPSender, pkts []rtcp.Packet) {
	var t *sendTrack
	s.mu.Lock()
	for _, x := range s.tracks {
		x.mu.Lock()
		if x.sender == sender {
			t = x
		}
		x.mu.Unlock()
	}
	s.mu.Unlock()
	if t == nil {
		return
	}
	t.onRTCP(pkts)
}

// onRTCP handles the feedback about the track.
func (t *sendTrack) onRTCP(pkts []rtcp.Packet) {
	keyframe := false
	for _, pkt := range pkts {
		switch pkt := pkt.(type) {
		case *rtcp.PictureLossIndication, *rtcp.FullIntraRequest:
			keyframe = true
		case *rtcp.TransportLayerNack:
			n := 0
			for _, pair := range pkt.Nacks {
				n += len(pair.PacketList())
			}
			t.stats.NACKs.Add(uint64(n))
		}
	}
	if keyframe {
		t.stats.PLIs.Add(1)
		t.requestKeyframe()
	}
}

// publisherPlugin publishes in a VideoRoom, registered in Env.OwnFeeds
// while it is in the room.
type publisherPlugin struct {
	b  *Bridge
	id janus.ID
}

func (v *publisherPlugin) join(ctx context.Context, h *janus.Handle) error {
	cfg := v.b.cfg
	joined, err := janus.VideoRoomJoinPublisher(ctx, h, JanusID(cfg.Room), cfg.Display, cfg.Pin)
	if err != nil {
		return err
	}
	if own := v.b.env.OwnFeeds; own != nil {
		v.id = joined.ID
		own.Add(JanusID(cfg.Room), joined.ID)
	}
	v.b.log.Info("joined as publisher", "room", cfg.Room.String(), "id", joined.ID.String())
	return nil
}

func (v *publisherPlugin) offer(ctx context.Context, h *janus.Handle, offer *janus.JSEP, first bool) (*janus.JSEP, error) {
	if first {
		return janus.VideoRoomPublish(ctx, h, janus.VideoRoomPublishRequest{Display: v.b.cfg.Display}, offer)
	}
	return janus.VideoRoomConfigure(ctx, h, janus.VideoRoomConfigureRequest{}, offer)
}

func (v *publisherPlugin) leave(ctx context.Context, h *janus.Handle) {
	if err := janus.VideoRoomLeave(ctx, h); err != nil {
		v.b.log.Debug("leaving the room", "err", err)
	}
	if own := v.b.env.OwnFeeds; own != nil && !v.id.IsZero() {
		own.Remove(JanusID(v.b.cfg.Room), v.id)
		v.id = janus.ID{}
	}
}

// audioBridgeSender joins an AudioBridge room.
type audioBridgeSender struct {
	b     *Bridge
	codec string // opus, pcmu or pcma
}

func (a *audioBridgeSender) join(ctx context.Context, h *janus.Handle) error {
	cfg := a.b.cfg
	joined, err := janus.AudioBridgeJoin(ctx, h, JanusID(cfg.Room), janus.AudioBridgeJoinRequest{Display: cfg.Display, Pin: cfg.Pin, Codec: a.codec})
	if err != nil {
		return err
	}
	a.b.log.Info("joined the audio room", "room", cfg.Room.String(), "id", joined.ID.String())
	return nil
}

func (a *audioBridgeSender) offer(ctx context.Context, h *janus.Handle, offer *janus.JSEP, _ bool) (*janus.JSEP, error) {
	return janus.AudioBridgeConfigure(ctx, h, janus.AudioBridgeConfigureRequest{}, offer)
}

func (a *audioBridgeSender) leave(ctx context.Context, h *janus.Handle) {
	if err := janus.AudioBridgeLeave(ctx, h); err != nil {
		a.b.log.Debug("leaving the room", "err", err)
	}
}

// echoTestSender sends to the EchoTest plugin.
type echoTestSender struct{}

func (echoTestSender) join(context.Context, *janus.Handle) error { return nil }

func (echoTestSender) offer(ctx context.Context, h *janus.Handle, offer *janus.JSEP, _ bool) (*janus.JSEP, error) {
	return janus.EchoTestOffer(ctx, h, janus.EchoTestRequest{}, offer)
}

func (echoTestSender) leave(context.Context, *janus.Handle) {}
