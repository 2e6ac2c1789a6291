package bridge

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"

	"github.com/janusbridge/janusbridge/config"
	"github.com/janusbridge/janusbridge/framer"
	"github.com/janusbridge/janusbridge/janus"
	"github.com/janusbridge/janusbridge/media"
)

// keyframeRequestGap rate-limits keyframe requests from the sinks.
const keyframeRequestGap = 500 * time.Millisecond

// recv is the receiving side of a bridge: its outputs outlive the Janus
// sessions and PeerConnections that feed them, so a recording goes on in the
// same file (gap kept) after a reconnect.
type recv struct {
	b     *Bridge
	clock *framer.Clock

	files []*sinkQueue
	rtps  []*packetSink

	mu      sync.Mutex
	tracks  []*recvTrack          // by index
	byMID   map[string]*recvTrack // current negotiation's mids
	pc      *webrtc.PeerConnection
	lastPLI time.Time
	readers sync.WaitGroup
}

// recvTrack is one track of the bridge's output. Its framer is used by one
// reader goroutine at a time (one PeerConnection at a time feeds it).
type recvTrack struct {
	desc   media.Track
	framer *framer.Framer
	stats  TrackStats
	ssrc   uint32
	srs    chan rtcp.SenderReport // from the RTCP reader to the RTP reader
}

func newRecv(b *Bridge) (*recv, error) {
	r := &recv{b: b, clock: framer.NewClock(time.Now()), byMID: map[string]*recvTrack{}}
	for i, sc := range b.cfg.Sinks {
		if err := r.addSink(sc); err != nil {
			r.close()
			return nil, fmt.Errorf("sink[%d] %q: %w", i, sc.Name, err)
		}
	}
	return r, nil
}

// session runs one Janus negotiation until the handle or the connection
// fails, or ctx ends.
func (r *recv) session(ctx context.Context) error {
	b := r.b
	b.setState(StateNegotiating, nil)
	h, err := b.env.Session.Attach(ctx, "janus.plugin."+b.cfg.Plugin, "janusbridge-"+b.cfg.Name)
	if err != nil {
		return err
	}
	b.mu.Lock()
	b.handleID = h.ID()
	b.mu.Unlock()
	defer func() {
		dctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		h.Detach(dctx)
		cancel()
	}()
	p, err := janus.NewPeer(b.env.API, h, janus.PeerConfig{ICEServers: b.env.ICEServers, Logger: b.log})
	if err != nil {
		return err
	}
	defer func() {
		p.Close()
		r.readers.Wait() // the readers end with the PeerConnection
	}()
	iceFailed := make(chan struct{}, 1)
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

	plugin := streamingPlugin{cfg: b.cfg}
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
			case m.JSEP != nil && m.JSEP.Type == "offer":
				// Janus renegotiates (new streams, or its own ICE restart).
				if err := r.answer(ctx, p, h, plugin, m.JSEP); err != nil {
					return fmt.Errorf("renegotiation: %w", err)
				}
			}
		case <-iceFailed:
			b.log.Warn("ICE failed, asking Janus for an ICE restart")
			offer, err := plugin.restart(ctx, h)
			if err != nil {
				return fmt.Errorf("ICE restart: %w", err)
			}
			if err := r.answer(ctx, p, h, plugin, offer); err != nil {
				return fmt.Errorf("ICE restart: %w", err)
			}
		case <-keyframes:
			r.requestKeyframe(true)
		}
	}
}

// answer answers an offer of the plugin and describes its tracks to the
// sinks before their media arrives.
func (r *recv) answer(ctx context.Context, p *janus.Peer, h *janus.Handle, plugin recvPlugin, offer *janus.JSEP) error {
	tracks, err := offerTracks(offer.SDP)
	if err != nil {
		return err
	}
	answer, err := p.CreateAnswer(ctx, offer)
	if err != nil {
		return err
	}
	if err := r.setTracks(tracks); err != nil {
		return err
	}
	return plugin.start(ctx, h, answer)
}

// setTracks maps the offer's mids to output tracks (a new mid takes the
// next index) and tells the sinks when the set changed.
func (r *recv) setTracks(offered []sdpTrack) error {
	r.mu.Lock()
	byMID := make(map[string]*recvTrack, len(offered))
	changed := len(offered) != len(r.byMID)
	for _, o := range offered {
		t := r.byMID[o.mid]
		if t == nil || t.desc.Codec != o.codec {
			changed = true
			t = nil
			for _, old := range r.tracks { // a mid seen before keeps its index
				if old.desc.MID == o.mid && old.desc.Codec == o.codec {
					t = old
				}
			}
		}
		if t == nil {
			desc := media.Track{Index: len(r.tracks), MID: o.mid, Kind: o.kind, Codec: o.codec,
				ClockRate: o.clockRate, Channels: o.channels, PayloadType: o.payloadType, Fmtp: o.fmtp}
			t = &recvTrack{desc: desc, srs: make(chan rtcp.SenderReport, 4)}
			f, err := framer.New(desc, r.clock, framer.Options{
				OnFrame:          r.fanOut,
				OnKeyframeNeeded: func() { r.requestKeyframe(false) },
			})
			if err != nil {
				r.mu.Unlock()
				return err
			}
			t.framer = f
			r.tracks = append(r.tracks, t)
		}
		byMID[o.mid] = t
	}
	r.byMID = byMID
	var descs []media.Track
	for _, o := range offered {
		descs = append(descs, byMID[o.mid].desc)
	}
	r.mu.Unlock()
	if !changed {
		return nil
	}
	for _, q := range r.files {
		q.setTracks(descs)
	}
	for _, s := range r.rtps {
		if err := s.setTracks(descs); err != nil {
			r.b.log.Warn("rtp sink", "err", err)
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
// packet.
func (r *recv) readRTP(t *recvTrack, tr *webrtc.TrackRemote) {
	defer r.readers.Done()
	buf := make([]byte, 1500)
	var pkt rtp.Packet
	const idle = 250 * time.Millisecond
	tr.SetReadDeadline(time.Now().Add(idle))
	for n := 0; ; n++ {
		size, _, err := tr.Read(buf)
		now := time.Now()
		if errors.Is(err, os.ErrDeadlineExceeded) {
			t.framer.Tick(now) // nothing arrives: release what waited for it
			tr.SetReadDeadline(now.Add(idle))
			continue
		}
		if err != nil {
			t.framer.Flush() // the PeerConnection is gone: release what is held
			return
		}
		if n%64 == 0 {
			tr.SetReadDeadline(now.Add(idle))
		}
		if pkt.Unmarshal(buf[:size]) != nil {
			continue
		}
		t.stats.Packets.Add(1)
		t.stats.Bytes.Add(uint64(size))
		for _, s := range r.rtps {
			s.write(t.desc.Index, &pkt)
		}
		select {
		case sr := <-t.srs:
			t.framer.SenderReport(sr.NTPTime, sr.RTPTime)
		default:
		}
		t.framer.Push(&pkt, now)
	}
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

// fanOut hands a frame to every file sink's queue. Each sink gets its own
// Frame (sinks rebase its PTS); the data is shared, read-only.
func (r *recv) fanOut(f *media.Frame) {
	for i, q := range r.files {
		if i < len(r.files)-1 {
			c := *f
			q.push(&c)
		} else {
			q.push(f)
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
	var errs []error
	for _, q := range r.files {
		errs = append(errs, q.close())
	}
	for _, s := range r.rtps {
		errs = append(errs, s.sink.Close())
	}
	return errors.Join(errs...)
}

// recvPlugin is the plugin-specific part of a recv bridge.
type recvPlugin interface {
	// offer asks the plugin for its offer.
	offer(ctx context.Context, h *janus.Handle) (*janus.JSEP, error)
	// start sends our answer.
	start(ctx context.Context, h *janus.Handle, answer *janus.JSEP) error
	// restart asks the plugin for an ICE restart offer.
	restart(ctx context.Context, h *janus.Handle) (*janus.JSEP, error)
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
	return janus.StreamingStart(ctx, h, answer)
}

func (s streamingPlugin) restart(ctx context.Context, h *janus.Handle) (*janus.JSEP, error) {
	return janus.StreamingWatchRestart(ctx, h, s.watch())
}

// JanusID converts a configured room or mountpoint id.
func JanusID(id config.ID) janus.ID {
	if id.Str != "" {
		return janus.StrID(id.Str)
	}
	return janus.NumID(id.Num)
}
