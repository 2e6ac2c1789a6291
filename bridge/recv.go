package bridge

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"sync"
	"time"

	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"

	"github.com/janusbridge/janusbridge/config"
	"github.com/janusbridge/janusbridge/janus"
	"github.com/janusbridge/janusbridge/media"
)

// keyframeRequestGap rate-limits keyframe requests from the sinks.
const keyframeRequestGap = 500 * time.Millisecond

// recv is the receiving side of a bridge: the Janus sessions that come and
// go, and the outputs (one per publisher) that outlive them.
type recv struct {
	b *Bridge

	mu      sync.Mutex
	outputs map[string]*output    // by feed id; "" for a single output
	byMID   map[string]*recvTrack // current negotiation's mids
	pc      *webrtc.PeerConnection
	lastPLI time.Time
	readers sync.WaitGroup
}

func newRecv(b *Bridge) (*recv, error) {
	r := &recv{b: b, outputs: map[string]*output{}, byMID: map[string]*recvTrack{}}
	if b.cfg.Plugin != config.PluginVideoRoom { // one output, from the start
		out, err := r.newOutput(feedInfo{})
		if err != nil {
			return nil, err
		}
		r.outputs[""] = out
	}
	return r, nil
}

// newPlugin returns the plugin-specific part of the bridge.
func (r *recv) newPlugin() recvPlugin {
	switch r.b.cfg.Plugin {
	case config.PluginVideoRoom:
		return newVideoRoomPlugin(r.b.cfg, r.b.env.OwnFeeds)
	case config.PluginAudioBridge:
		return audioBridgePlugin{cfg: r.b.cfg}
	}
	return streamingPlugin{cfg: r.b.cfg}
}

// session runs one Janus negotiation until the handle or the connection
// fails, or ctx ends.
func (r *recv) session(ctx context.Context) error {
	b := r.b
	b.setState(StateNegotiating, nil)
	h, err := b.attach(ctx, "janus.plugin."+b.cfg.Plugin)
	if err != nil {
		return err
	}
	defer b.detach(h, nil)
	p, err := janus.NewPeer(b.env.API, h, janus.PeerConfig{ICEServers: b.env.ICEServers, Logger: b.log})
	if err != nil {
		return err
	}
	defer func() {
		p.Close()
		r.readers.Wait() // the readers end with the PeerConnection
	}()
	iceFailed := make(chan struct{}, 1)
	b.mu.Lock()
	b.iceRestart = iceFailed
	b.mu.Unlock()
	defer func() {
		b.mu.Lock()
		b.iceRestart = nil
		b.mu.Unlock()
	}()
	p.PC().OnICEConnectionStateChange(func(s webrtc.ICEConnectionState) {
		if s == webrtc.ICEConnectionStateFailed {
			select {
			case iceFailed <- struct{}{}:
			default:
			}
		}
	})
	p.PC().OnTrack(r.onTrack)
	r.mu.Lock()
	r.pc = p.PC()
	r.mu.Unlock()

	plugin := r.newPlugin()
	offer, err := plugin.offer(ctx, h)
	if err != nil {
		return err
	}
	if err := r.answer(ctx, p, h, plugin, offer); err != nil {
		return err
	}
	b.setState(StateUp, nil)

	var keyframes <-chan time.Time
	if d := time.Duration(b.cfg.KeyframeInterval); d > 0 {
		t := time.NewTicker(d)
		defer t.Stop()
		keyframes = t.C
	}
	poll := time.NewTicker(followPoll)
	defer poll.Stop()
	idle := time.NewTicker(idleCheckEvery)
	defer idle.Stop()
	var media idleWatch
	for {
		select {
		case <-ctx.Done():
			return nil
		case m, ok := <-h.Events():
			if !ok {
				return fmt.Errorf("handle gone: %w", h.Err())
			}
			switch {
			case m.Janus == "trickle":
				if err := p.AddRemoteCandidate(m.Candidate); err != nil {
					b.log.Debug("bad remote candidate", "err", err)
				}
			case m.Janus == "hangup":
				return fmt.Errorf("janus hung up: %s", m.Reason)
			case m.Janus == "event":
				plugin.event(m)
				if m.JSEP != nil && m.JSEP.Type == "offer" {
					// Janus renegotiates (streams changed, or its own ICE
					// restart).
					b.renegotiations.Add(1)
					if err := r.answer(ctx, p, h, plugin, m.JSEP); err != nil {
						return fmt.Errorf("renegotiation: %w", err)
					}
				}
			}
		case <-poll.C:
			offer, err := plugin.poll(ctx, h)
			if err != nil {
				return err
			}
			if offer != nil {
				b.renegotiations.Add(1)
				if err := r.answer(ctx, p, h, plugin, offer); err != nil {
					return fmt.Errorf("subscription update: %w", err)
				}
			}
		case <-iceFailed:
			b.iceRestarts.Add(1)
			b.log.Warn("ICE restart: asking Janus for a restart offer")
			offer, err := plugin.restart(ctx, h)
			if err != nil {
				return fmt.Errorf("ICE restart: %w", err)
			}
			if err := r.answer(ctx, p, h, plugin, offer); err != nil {
				return fmt.Errorf("ICE restart: %w", err)
			}
		case <-keyframes:
			r.requestKeyframe(true)
		case now := <-idle.C:
			r.checkIdle(&media, now)
		}
	}
}

// errJanusIdle: Janus sends nothing on the bridge's tracks.
var errJanusIdle = errors.New("janus sends no media (its source is silent)")

// checkIdle follows the media of a session: while Janus sends nothing on
// the bridge's tracks, the state turns to waiting (the mountpoint's or the
// publisher's source stopped: SPEC §6, source stops), or to reconnecting
// when the PeerConnection's ICE is not connected (a network fault, healed
// by ICE restarts); up again when media comes. Other states are left to the
// session. A bridge without tracks (a VideoRoom without publishers yet) is
// left alone.
func (r *recv) checkIdle(w *idleWatch, now time.Time) {
	r.mu.Lock()
	var n uint64
	for _, t := range r.byMID {
		n += t.stats.Packets.Load()
	}
	tracks := len(r.byMID)
	ice := r.pc.ICEConnectionState()
	r.mu.Unlock()
	state := r.b.Status().State
	if n != w.last || w.since.IsZero() || tracks == 0 {
		w.last, w.since = n, now
		if state == StateWaiting || state == StateReconnecting {
			r.b.setState(StateUp, nil)
		}
		return
	}
	if state != StateUp && state != StateWaiting || now.Sub(w.since) < sourceIdle {
		return
	}
	if ice == webrtc.ICEConnectionStateConnected || ice == webrtc.ICEConnectionStateCompleted {
		r.b.setState(StateWaiting, errJanusIdle)
	} else {
		r.b.setState(StateReconnecting, fmt.Errorf("ICE %s", ice))
	}
}

// answer answers an offer of the plugin and describes its tracks to the
// outputs before their media arrives.
func (r *recv) answer(ctx context.Context, p *janus.Peer, h *janus.Handle, plugin recvPlugin, offer *janus.JSEP) error {
	tracks, err := offerTracks(offer.SDP)
	if err != nil {
		return err
	}
	answer, err := p.CreateAnswer(ctx, offer)
	if err != nil {
		return err
	}
	if err := r.setTracks(tracks, plugin.feedOf); err != nil {
		return err
	}
	return plugin.start(ctx, h, answer)
}

// setTracks maps the offer's mids to the tracks of the publishers' outputs
// (creating outputs for new publishers), tells the outputs whose track set
// changed, and finalises the outputs of publishers that are gone.
func (r *recv) setTracks(offered []sdpTrack, feedOf func(mid string) feedInfo) error {
	r.mu.Lock()
	byMID := make(map[string]*recvTrack, len(offered))
	sets := map[*output][]media.Track{}
	var order []*output
	for _, o := range offered {
		feed := feedOf(o.mid)
		if feed.id == "" && r.b.cfg.Plugin == config.PluginVideoRoom {
			continue // no publisher behind it (yet)
		}
		out := r.outputs[feed.id]
		if out == nil {
			var err error
			if out, err = r.newOutput(feed); err != nil {
				r.mu.Unlock()
				return err
			}
			r.outputs[feed.id] = out
			r.b.log.Info("recording publisher", "feed", feed.id, "display", feed.display)
		}
		t, err := out.track(o, r)
		if err != nil {
			r.mu.Unlock()
			return err
		}
		byMID[o.mid] = t
		if _, ok := sets[out]; !ok {
			order = append(order, out)
		}
		sets[out] = append(sets[out], t.desc)
	}
	r.byMID = byMID
	var changed, gone []*output
	for _, out := range order {
		if !sameTracks(sets[out], out.current) {
			out.current = sets[out]
			changed = append(changed, out)
		}
	}
	for id, out := range r.outputs {
		if _, ok := sets[out]; !ok && id != "" {
			delete(r.outputs, id)
			gone = append(gone, out)
		}
	}
	r.mu.Unlock()
	for _, out := range changed {
		if err := out.setTracks(out.current); err != nil {
			r.b.log.Warn("rtp sink", "err", err)
		}
	}
	for _, out := range gone {
		r.b.log.Info("publisher gone, finalising its files", "feed", out.feed.id)
		if err := out.close(); err != nil {
			r.b.log.Warn("finalising", "feed", out.feed.id, "err", err)
		}
	}
	return nil
}

// onTrack starts the readers of a track that pion announces.
func (r *recv) onTrack(tr *webrtc.TrackRemote, recvr *webrtc.RTPReceiver) {
	r.mu.Lock()
	var t *recvTrack
	for _, tc := range r.pc.GetTransceivers() {
		if tc.Receiver() == recvr {
			t = r.byMID[tc.Mid()]
		}
	}
	if t != nil {
		t.ssrc = uint32(tr.SSRC())
		if fb := r.b.env.Feedback; fb != nil {
			fb.CountNACKs(r.pc, t.ssrc, &t.stats.NACKs)
		}
	}
	r.mu.Unlock()
	if t == nil {
		r.b.log.Warn("track for an unknown mid, ignored", "ssrc", tr.SSRC())
		return
	}
	r.readers.Add(2)
	go r.readRTCP(t, recvr)
	go r.readRTP(t, tr)
}

// readRTP is the media path of one track: read, count, forward to the rtp
// sinks at once, frame for the file sinks. It reuses one buffer and one
// packet. A track of an output without file sinks is not framed: loss is
// then counted from sequence numbers.
func (r *recv) readRTP(t *recvTrack, tr *webrtc.TrackRemote) {
	defer r.readers.Done()
	buf := make([]byte, 1500)
	var pkt rtp.Packet
	var loss seqLoss
	frame := len(t.out.files) > 0
	lost := func() uint64 {
		if frame {
			return t.framer.Stats().Lost // the framer is this goroutine's
		}
		return loss.lost()
	}
	const idle = 250 * time.Millisecond
	tr.SetReadDeadline(time.Now().Add(idle))
	// Janus does not keep its timestamps running while it relays nothing
	// to a viewer (during an ICE restart): the pause must come from the
	// arrivals. The first packet after a pause that follows an ICE
	// restart is placed by its arrival when it comes later than its
	// timestamp says (Framer.Resume; see resumePause). (A new
	// PeerConnection after a re-created session brings a new SSRC: the
	// framer starts over on it.)
	restarts, restartAt := r.b.iceRestarts.Load(), time.Time{}
	var last time.Time
	for n := 0; ; n++ {
		size, _, err := tr.Read(buf)
		now := time.Now()
		if isTimeout(err) {
			t.framer.Tick(now) // nothing arrives: release what waited for it
			tr.SetReadDeadline(now.Add(idle))
			continue
		}
		if err != nil {
			t.framer.Flush() // the PeerConnection is gone: release what is held
			t.stats.Lost.Store(lost())
			if !frame {
				r.b.log.Info("track reader ended", "mid", t.desc.MID, "codec", t.desc.Codec,
					"packets", t.stats.Packets.Load(), "lost", t.stats.Lost.Load())
				return
			}
			fs := t.framer.Stats()
			r.b.log.Info("track reader ended", "mid", t.desc.MID, "codec", t.desc.Codec, "packets", fs.Packets,
				"lost", fs.Lost, "late", fs.Late, "duplicates", fs.Duplicates, "frames", fs.Frames,
				"dropped_frames", fs.DroppedFrames, "skipped_frames", fs.SkippedFrames, "clamped", fs.Clamped,
				"time_jumps", fs.TimeJumps)
			return
		}
		if n%64 == 0 {
			tr.SetReadDeadline(now.Add(idle))
			l := lost()
			if !frame && l > t.stats.Lost.Load() && t.desc.Kind == "video" {
				// More packets missing than at the last check: the
				// forwards' receivers cannot ask us for a keyframe, so we
				// ask Janus for them, as the framer does on loss.
				r.requestKeyframe(false)
			}
			t.stats.Lost.Store(l)
		}
		if pkt.Unmarshal(buf[:size]) != nil {
			continue
		}
		if c := r.b.iceRestarts.Load(); c != restarts {
			restarts, restartAt = c, now
		}
		switch {
		case !restartAt.IsZero() && !last.IsZero() && now.Sub(last) > resumePause:
			t.framer.Resume()
			restartAt = time.Time{}
		case !restartAt.IsZero() && now.Sub(restartAt) > resumeWait:
			restartAt = time.Time{} // the restart went through without a pause
		}
		last = now
		t.stats.Packets.Add(1)
		t.stats.Bytes.Add(uint64(size))
		for _, s := range t.out.rtps {
			s.write(t.desc.Index, &pkt)
		}
		if !frame {
			loss.add(pkt.SequenceNumber)
			continue
		}
		select {
		case sr := <-t.srs:
			t.framer.SenderReport(sr.NTPTime, sr.RTPTime)
		default:
		}
		t.framer.Push(&pkt, now)
	}
}

// After an ICE restart, a pause of the packets longer than resumePause,
// within resumeWait of the restart, is taken from the arrivals, not from
// Janus's timestamps (which it kept still while it relayed nothing). Shorter pauses are
// jitter; a restart that saw no pause for resumeWait needed none.
const (
	resumePause = time.Second
	resumeWait  = 10 * time.Second
)

// isTimeout tells a read deadline that passed: pion returns its own
// timeout error, not always os.ErrDeadlineExceeded.
func isTimeout(err error) bool {
	var ne net.Error
	return errors.Is(err, os.ErrDeadlineExceeded) || errors.As(err, &ne) && ne.Timeout()
}

// readRTCP takes the sender reports of a track for A/V alignment.
func (r *recv) readRTCP(t *recvTrack, recvr *webrtc.RTPReceiver) {
	defer r.readers.Done()
	for {
		pkts, _, err := recvr.ReadRTCP()
		if err != nil {
			return
		}
		for _, p := range pkts {
			if sr, ok := p.(*rtcp.SenderReport); ok {
				select {
				case t.srs <- *sr:
				default:
				}
			}
		}
	}
}

// requestKeyframe sends a PLI on the video tracks, at most every
// keyframeRequestGap unless forced (keyframe_interval).
func (r *recv) requestKeyframe(force bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.pc == nil || !force && time.Since(r.lastPLI) < keyframeRequestGap {
		return
	}
	r.lastPLI = time.Now()
	var pkts []rtcp.Packet
	for _, t := range r.byMID {
		if t.desc.Kind == "video" && t.ssrc != 0 {
			pkts = append(pkts, &rtcp.PictureLossIndication{MediaSSRC: t.ssrc})
			t.stats.PLIs.Add(1)
		}
	}
	if len(pkts) > 0 {
		if err := r.pc.WriteRTCP(pkts); err != nil {
			r.b.log.Debug("keyframe request failed", "err", err)
		}
	}
}

// close finalises every output.
func (r *recv) close() error {
	r.mu.Lock()
	outputs := r.outputs
	r.outputs = map[string]*output{}
	r.mu.Unlock()
	var errs []error
	for _, out := range outputs {
		errs = append(errs, out.close())
	}
	return errors.Join(errs...)
}

// followPoll is how often a bridge following a VideoRoom checks for
// publishers to subscribe to (leaving ones are seen at once: Janus
// re-offers without them).
const followPoll = 2 * time.Second

// recvPlugin is the plugin-specific part of a recv bridge.
type recvPlugin interface {
	// offer asks the plugin for its offer.
	offer(ctx context.Context, h *janus.Handle) (*janus.JSEP, error)
	// start sends our answer.
	start(ctx context.Context, h *janus.Handle, answer *janus.JSEP) error
	// restart asks the plugin for an ICE restart offer.
	restart(ctx context.Context, h *janus.Handle) (*janus.JSEP, error)
	// feedOf names the publisher of a mid of the current offer.
	feedOf(mid string) feedInfo
	// event lets the plugin learn from an event of its handle (before an
	// offer it carries is answered).
	event(m *janus.Message)
	// poll lets the plugin change its subscription; it returns the new
	// offer to answer, or nil.
	poll(ctx context.Context, h *janus.Handle) (*janus.JSEP, error)
}

// streamingPlugin watches a Streaming mountpoint.
type streamingPlugin struct{ cfg *config.Bridge }

func (s streamingPlugin) watch() janus.StreamingWatchRequest {
	return janus.StreamingWatchRequest{ID: JanusID(s.cfg.Mountpoint), Pin: s.cfg.Pin}
}

func (s streamingPlugin) offer(ctx context.Context, h *janus.Handle) (*janus.JSEP, error) {
	return janus.StreamingWatch(ctx, h, s.watch())
}

func (s streamingPlugin) start(ctx context.Context, h *janus.Handle, answer *janus.JSEP) error {
	if err := janus.StreamingStart(ctx, h, answer); err != nil {
		return err
	}
	if c := s.configure(); c != nil {
		// Janus 1.1.2's watch takes no substream: a configure picks it.
		if err := janus.StreamingConfigure(ctx, h, *c); err != nil {
			return fmt.Errorf("substream: %w", err)
		}
	}
	return nil
}

// configure is the configure request that picks the configured simulcast
// substream on every stream of the mountpoint (Janus ignores it on streams
// without simulcast); nil without substream.
func (s streamingPlugin) configure() *janus.StreamingConfigureRequest {
	if s.cfg.Substream == nil {
		return nil
	}
	return &janus.StreamingConfigureRequest{Substream: s.cfg.Substream}
}

func (s streamingPlugin) restart(ctx context.Context, h *janus.Handle) (*janus.JSEP, error) {
	return janus.StreamingWatchRestart(ctx, h, s.watch())
}

func (streamingPlugin) feedOf(string) feedInfo { return feedInfo{} }

func (streamingPlugin) event(*janus.Message) {}

func (streamingPlugin) poll(context.Context, *janus.Handle) (*janus.JSEP, error) { return nil, nil }

// JanusID converts a configured room or mountpoint id.
func JanusID(id config.ID) janus.ID {
	if id.Str != "" {
		return janus.StrID(id.Str)
	}
	return janus.NumID(id.Num)
}
