package bridge

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"

	"github.com/janusbridge/janusbridge/config"
	"github.com/janusbridge/janusbridge/media"
	"github.com/janusbridge/janusbridge/sources"
)

// send is the sending side of a bridge: its inputs (the running sources)
// and its long-lived outgoing tracks, which outlive the Janus sessions and
// PeerConnections that carry them and the sources that feed them.
type send struct {
	b *Bridge
	// rx receives the echo of an EchoTest self-test loop into the sinks;
	// nil for a bridge that only sends.
	rx *recv
	// ownsMountpoint: a Streaming bridge created its mountpoint and has not
	// destroyed it yet. Used by the sessions, one at a time.
	ownsMountpoint bool
	// open makes a source from its configuration.
	open func(*config.Source) (media.Source, error)

	ctx context.Context // the bridge's; inputs started later live in it
	wg  sync.WaitGroup  // the inputs' goroutines

	mu     sync.Mutex
	tracks []*sendTrack // by index, never reused; removed ones stay
	inputs []*input
	// renegotiate asks the running session to negotiate the track set
	// again (capacity 1); nil while no session runs.
	renegotiate chan struct{}
	// done is closed when every input has ended for good (files without
	// loop): the bridge is done.
	done     chan struct{}
	doneOnce sync.Once
}

// sendTrack is one outgoing track: a stable index, a codec fixed at
// creation, the rewriter that keeps its sequence numbers and timestamps
// continuous whatever feeds it, and where its packets go in the current
// session (a pion track bound to the PeerConnections, or plain RTP).
type sendTrack struct {
	desc  media.Track // Index, Kind, Codec, ClockRate, Channels, Fmtp; PayloadType of the source
	local *webrtc.TrackLocalStaticRTP
	stats TrackStats // Packets, Bytes sent; NACKs, PLIs received

	mu      sync.Mutex
	removed bool
	owner   *input // the input whose packets the track takes
	ownerIx int    // the owner's track index
	rw      rewriter
	pkt     rtp.Packet // reused: the rewritten copy of a source packet
	plain   *plainOut  // the plain RTP output of a Streaming session, or nil
	mid     string     // in the current negotiation
	sender  *webrtc.RTPSender
}

// input is one running source and where each of its tracks goes.
type input struct {
	src    media.Source
	cancel context.CancelFunc
	// routes maps the source's track index to its outgoing track, nil for
	// a source track nobody takes (replaced, removed).
	routes atomic.Pointer[[]*sendTrack]
	ended  bool // for good (io.EOF); guarded by send.mu
}

// errNoSource: a send bridge with nothing left to send.
var errNoSource = errors.New("no source track to send")

// errSourceIdle: the sources send nothing (camera off, feed stopped).
var errSourceIdle = errors.New("the source sends nothing")

// sourceIdle is how long the sources may send nothing before the bridge
// says it waits for them. The packet counters are compared every
// idleCheckEvery, so the state changes sourceIdle to sourceIdle + 2 *
// idleCheckEvery after the last packet (with 1 s checks, a 5 s silence
// could show as waiting for under a second).
const (
	sourceIdle     = 3 * time.Second
	idleCheckEvery = 250 * time.Millisecond
)

// idleWatch follows the packets a session sends, for checkIdle.
type idleWatch struct {
	last  uint64
	since time.Time
}

// checkIdle turns the bridge's state to waiting while its sources send
// nothing, and back to up when they send again; other states are left to
// the session.
func (s *send) checkIdle(w *idleWatch, now time.Time) {
	var n uint64
	for _, t := range s.activeTracks() {
		n += t.stats.Packets.Load()
	}
	state := s.b.Status().State
	if n != w.last || w.since.IsZero() {
		w.last, w.since = n, now
		if state == StateWaiting {
			s.b.setState(StateUp, nil)
		}
		return
	}
	if state == StateUp && now.Sub(w.since) >= sourceIdle {
		s.b.setState(StateWaiting, errSourceIdle)
	}
}

func newSend(b *Bridge, open func(*config.Source) (media.Source, error)) *send {
	return &send{b: b, open: open, done: make(chan struct{})}
}

// start opens the configured source and creates one outgoing track per
// source track.
func (s *send) start(ctx context.Context) error {
	s.ctx = ctx
	src, err := s.open(s.b.cfg.Source)
	if err != nil {
		return fmt.Errorf("source: %w", err)
	}
	in := &input{src: src}
	routes := make([]*sendTrack, len(src.Tracks()))
	s.mu.Lock()
	for i, st := range src.Tracks() {
		t, err := s.newTrackLocked(st)
		if err != nil {
			s.mu.Unlock()
			return fmt.Errorf("source track %d: %w", i, err)
		}
		t.owner, t.ownerIx = in, i
		routes[i] = t
	}
	in.routes.Store(&routes)
	s.startInputLocked(in)
	s.mu.Unlock()
	return nil
}

// newTrackLocked creates the outgoing track for a source track, with the
// next index.
func (s *send) newTrackLocked(st media.Track) (*sendTrack, error) {
	desc := st
	desc.Index = len(s.tracks)
	desc.Codec = strings.ToLower(desc.Codec)
	desc.Kind = media.KindOf(desc.Codec)
	if desc.Kind == "" {
		return nil, fmt.Errorf("codec %q cannot be sent", st.Codec)
	}
	if s.b.cfg.Plugin == config.PluginAudioBridge && desc.Kind != "audio" {
		return nil, fmt.Errorf("an AudioBridge room takes audio only, not %s", desc.Codec)
	}
	capability, err := codecCapability(desc)
	if err != nil {
		return nil, err
	}
	name := fmt.Sprintf("%s%d", desc.Kind, desc.Index)
	local, err := webrtc.NewTrackLocalStaticRTP(capability, name, "janusbridge-"+s.b.cfg.Name)
	if err != nil {
		return nil, err
	}
	t := &sendTrack{desc: desc, local: local}
	s.tracks = append(s.tracks, t)
	return t, nil
}

// codecCapability is the pion codec of an outgoing track.
func codecCapability(t media.Track) (webrtc.RTPCodecCapability, error) {
	c := webrtc.RTPCodecCapability{ClockRate: t.ClockRate, Channels: t.Channels}
	switch t.Codec {
	case media.Opus:
		c.MimeType, c.ClockRate, c.Channels = webrtc.MimeTypeOpus, 48000, 2
	case media.PCMU:
		c.MimeType, c.ClockRate, c.Channels = webrtc.MimeTypePCMU, 8000, 0
	case media.PCMA:
		c.MimeType, c.ClockRate, c.Channels = webrtc.MimeTypePCMA, 8000, 0
	case media.VP8:
		c.MimeType, c.ClockRate, c.Channels = webrtc.MimeTypeVP8, 90000, 0
	case media.VP9:
		c.MimeType, c.ClockRate, c.Channels, c.SDPFmtpLine = webrtc.MimeTypeVP9, 90000, 0, "profile-id=0"
	case media.AV1:
		c.MimeType, c.ClockRate, c.Channels = webrtc.MimeTypeAV1, 90000, 0
	case media.H264:
		c.MimeType, c.ClockRate, c.Channels = webrtc.MimeTypeH264, 90000, 0
		c.SDPFmtpLine = "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=" + h264Profile(t.Fmtp)
	default:
		return c, fmt.Errorf("codec %q cannot be sent", t.Codec)
	}
	return c, nil
}

// h264Profile is the profile-level-id of an H.264 fmtp, constrained
// baseline 3.1 when it has none.
func h264Profile(fmtp string) string {
	for _, p := range strings.Split(fmtp, ";") {
		if k, v, ok := strings.Cut(strings.TrimSpace(p), "="); ok && strings.EqualFold(k, "profile-level-id") && len(v) == 6 {
			return strings.ToLower(v)
		}
	}
	return "42e01f"
}

// startInputLocked runs an input until the bridge stops or the input is
// cancelled; a failing source is restarted with backoff, a finished one
// (io.EOF) ends.
func (s *send) startInputLocked(in *input) {
	ctx, cancel := context.WithCancel(s.ctx)
	in.cancel = cancel
	s.inputs = append(s.inputs, in)
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		defer cancel()
		write := func(i int, p *rtp.Packet) error {
			routes := *in.routes.Load()
			if i >= 0 && i < len(routes) && routes[i] != nil {
				routes[i].write(in, i, p)
			}
			return nil
		}
		backoff := 500 * time.Millisecond
		for ctx.Err() == nil {
			started := time.Now()
			err := in.src.Run(ctx, write)
			if ctx.Err() != nil {
				return
			}
			if errors.Is(err, io.EOF) {
				s.b.log.Info("source ended")
				s.inputEnded(in)
				return
			}
			if time.Since(started) > 30*time.Second {
				backoff = 500 * time.Millisecond
			}
			s.b.log.Warn("source failed, restarting", "in", backoff, "err", err)
			select {
			case <-ctx.Done():
				return
			case <-time.After(backoff):
			}
			backoff = min(2*backoff, 30*time.Second)
		}
	}()
}

// inputEnded notes an input that ended for good; when none is left
// running, the bridge is done.
func (s *send) inputEnded(in *input) {
	s.mu.Lock()
	in.ended = true
	running := 0
	for _, x := range s.inputs {
		if !x.ended {
			running++
		}
	}
	s.mu.Unlock()
	if running == 0 {
		s.doneOnce.Do(func() { close(s.done) })
	}
}

// dropInputLocked stops an input whose tracks all went elsewhere.
func (s *send) dropInputLocked(in *input) {
	for _, t := range *in.routes.Load() {
		if t != nil {
			return
		}
	}
	in.cancel()
	for i, x := range s.inputs {
		if x == in {
			s.inputs = append(s.inputs[:i], s.inputs[i+1:]...)
			break
		}
	}
}

// setRoute points track i of in at t (nil: dropped).
func setRoute(in *input, i int, t *sendTrack) {
	old := *in.routes.Load()
	routes := append([]*sendTrack(nil), old...)
	routes[i] = t
	in.routes.Store(&routes)
}

// write rewrites a source packet onto the track and sends it.
func (t *sendTrack) write(from *input, ix int, p *rtp.Packet) {
	now := time.Now()
	t.mu.Lock()
	if t.removed || t.owner != from || t.ownerIx != ix {
		t.mu.Unlock()
		return
	}
	t.pkt = *p
	t.rw.rewrite(from, &t.pkt, now, t.desc.ClockRate)
	var err error
	if t.plain != nil {
		err = t.plain.write(&t.pkt, now)
	} else {
		err = t.local.WriteRTP(&t.pkt)
	}
	size := t.pkt.MarshalSize()
	t.mu.Unlock()
	if err == nil {
		t.stats.Packets.Add(1)
		t.stats.Bytes.Add(uint64(size))
	}
}

// requestKeyframe relays a keyframe request to the track's source.
func (t *sendTrack) requestKeyframe() {
	t.mu.Lock()
	in, ix := t.owner, t.ownerIx
	t.mu.Unlock()
	if in != nil {
		in.src.RequestKeyframe(ix)
	}
}

// activeTracks returns the tracks not removed, in index order.
func (s *send) activeTracks() []*sendTrack {
	s.mu.Lock()
	defer s.mu.Unlock()
	var ts []*sendTrack
	for _, t := range s.tracks {
		t.mu.Lock()
		if !t.removed {
			ts = append(ts, t)
		}
		t.mu.Unlock()
	}
	return ts
}

// requestKeyframes asks every video source for a keyframe (a new
// PeerConnection or mountpoint starts).
func (s *send) requestKeyframes() {
	for _, t := range s.activeTracks() {
		if t.desc.Kind == "video" {
			t.requestKeyframe()
		}
	}
}

// stop ends the inputs and waits for them.
func (s *send) stop() {
	s.mu.Lock()
	for _, in := range s.inputs {
		in.cancel()
	}
	s.mu.Unlock()
	s.wg.Wait()
}

// askRenegotiation wakes the running session to negotiate the track set.
func (s *send) askRenegotiation() {
	s.mu.Lock()
	ch := s.renegotiate
	s.mu.Unlock()
	if ch != nil {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
}

// rewriter maps the sequence numbers and timestamps of whatever feeds a
// track onto one continuous outgoing stream: when the input changes (a
// replaced source), its SSRC changes, or its numbering jumps (a looping
// file starting over), the next packet continues from the last one sent,
// its timestamp advanced by the wall-clock time elapsed since. Older
// packets of the same stream (reordered, retransmitted) keep their
// mapping.
type rewriter struct {
	started bool
	from    *input
	ssrc    uint32
	seqOff  uint16
	tsOff   uint32
	inSeq   uint16    // newest input sequence number
	inTS    uint32    // and its timestamp
	outSeq  uint16    // newest output sequence number
	outTS   uint32    // and its timestamp
	at      time.Time // when the newest packet was sent
}

// maxTSDrift is how far (in seconds) a source's timestamps may run ahead
// of the wall clock between two packets, and maxTSBack how far back they
// may go (B-frames), before the rewriter takes it as a discontinuity.
const (
	maxTSDrift = 2
	maxTSBack  = 0.5
)

func (r *rewriter) rewrite(from *input, p *rtp.Packet, now time.Time, clock uint32) {
	if clock == 0 {
		clock = 90000
	}
	switch {
	case !r.started:
		r.started = true
		r.seqOff, r.tsOff = 0, 0
	case from != r.from || p.SSRC != r.ssrc || r.jumped(p, now, clock):
		inc := uint32(now.Sub(r.at).Seconds() * float64(clock))
		if inc == 0 {
			inc = 1
		}
		r.seqOff = r.outSeq + 1 - p.SequenceNumber
		r.tsOff = r.outTS + inc - p.Timestamp
	default:
		if int16(p.SequenceNumber-r.inSeq) <= 0 { // older: same mapping
			p.SequenceNumber += r.seqOff
			p.Timestamp += r.tsOff
			return
		}
	}
	r.from, r.ssrc = from, p.SSRC
	r.inSeq, r.inTS = p.SequenceNumber, p.Timestamp
	p.SequenceNumber += r.seqOff
	p.Timestamp += r.tsOff
	r.outSeq, r.outTS, r.at = p.SequenceNumber, p.Timestamp, now
}

// jumped tells a packet that does not continue the stream: its sequence
// number far from the last one, or its timestamp far from where the wall
// clock says it should be.
func (r *rewriter) jumped(p *rtp.Packet, now time.Time, clock uint32) bool {
	ds := int16(p.SequenceNumber - r.inSeq)
	if ds < -512 || ds > 1024 {
		return true
	}
	if ds <= 0 {
		return false
	}
	dt := float64(int32(p.Timestamp-r.inTS)) / float64(clock)
	return dt < -maxTSBack || dt-now.Sub(r.at).Seconds() > maxTSDrift
}

// runSend runs a send bridge: its sources for the bridge's whole life, and
// the Janus sessions that carry their tracks, retried with backoff. It
// ends when ctx ends, or, state done, when every source has ended.
func (b *Bridge) runSend(ctx context.Context) error {
	s := newSend(b, func(c *config.Source) (media.Source, error) { return openSource(c, b.log) })
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	if err := s.start(ctx); err != nil {
		b.setState(StateFailed, err)
		s.stop()
		return err
	}
	if b.cfg.Direction() == "both" {
		r, err := newRecv(b)
		if err != nil {
			b.setState(StateFailed, err)
			s.stop()
			return err
		}
		s.rx = r
		b.rx.Store(r)
		defer func() {
			if err := r.close(); err != nil {
				b.log.Error("closing outputs", "err", err)
			}
		}()
	}
	b.tx.Store(s)
	session := s.webrtcSession
	if b.cfg.Plugin == config.PluginStreaming {
		session = s.streamingSession
	}
	b.retry(ctx, s.done, session)
	cancel()
	s.stop()
	select {
	case <-s.done:
		b.setState(StateDone, nil)
	default:
		b.setState(StateStopped, nil)
	}
	return nil
}

// sendSupported says whether this build can run the send bridge cfg.
func sendSupported(cfg *config.Bridge) error {
	switch cfg.Plugin {
	case config.PluginVideoRoom, config.PluginStreaming, config.PluginAudioBridge, config.PluginEchoTest:
	default:
		return fmt.Errorf("%s send bridges are not supported", cfg.Plugin)
	}
	return sourceSupported(cfg.Source)
}

// stats is the snapshot of a send bridge: its tracks, removed ones
// included (their counters stop).
func (s *send) stats() BridgeStats {
	var st BridgeStats
	if s.rx != nil { // the echo's tracks and sinks
		st = s.b.recvStats(s.rx)
	}
	st.ICERestarts, st.Renegotiations = s.b.iceRestarts.Load(), s.b.renegotiations.Load()
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, t := range s.tracks {
		t.mu.Lock()
		mid := t.mid
		t.mu.Unlock()
		st.Tracks = append(st.Tracks, TrackSnapshot{
			Index: t.desc.Index, MID: mid, Kind: t.desc.Kind, Codec: t.desc.Codec, Direction: "out",
			Packets: t.stats.Packets.Load(), Bytes: t.stats.Bytes.Load(),
			NACKs: t.stats.NACKs.Load(), PLIs: t.stats.PLIs.Load(),
		})
	}
	for _, in := range s.inputs {
		if src, ok := in.src.(*sources.RTP); ok {
			if st.SourceDropped == nil {
				st.SourceDropped = &SourceDropped{}
			}
			rs, d := src.Stats(), st.SourceDropped
			d.Malformed += rs.Malformed
			d.WrongPayloadType += rs.WrongPayloadType
			d.ForeignSSRC += rs.ForeignSSRC
			d.RTCPMalformed += rs.RTCPMalformed
		}
	}
	return st
}
