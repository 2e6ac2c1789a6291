package bridge

import (
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/pion/rtcp"

	"github.com/janusbridge/janusbridge/config"
	"github.com/janusbridge/janusbridge/framer"
	"github.com/janusbridge/janusbridge/media"
	"github.com/janusbridge/janusbridge/sinks"
)

// feedInfo names the publisher a track comes from: "" for the single output
// of a Streaming or AudioBridge bridge.
type feedInfo struct {
	id      string
	display string
}

// output is what one publisher's media goes to: the bridge's sinks for
// that publisher, its tracks (indices never reused) and its clock. An
// output outlives the sessions and PeerConnections that feed it, so a
// recording goes on in the same file (gap kept) after a reconnect.
type output struct {
	feed    feedInfo
	clock   *framer.Clock
	files   []*sinkQueue
	rtps    []*packetSink
	tracks  []*recvTrack  // by index
	current []media.Track // the set last told to the sinks
}

// recvTrack is one track of an output. Its framer is used by one reader
// goroutine at a time (one PeerConnection at a time feeds it).
type recvTrack struct {
	out    *output
	desc   media.Track
	framer *framer.Framer
	stats  TrackStats
	ssrc   uint32
	srs    chan rtcp.SenderReport // from the RTCP reader to the RTP reader
}

// gapThreshold is the framer's Options.GapThreshold for Janus streams.
const gapThreshold = 5 * time.Second

// newOutput creates the sinks of the bridge for one publisher.
func (r *recv) newOutput(feed feedInfo) (*output, error) {
	out := &output{feed: feed, clock: framer.NewClock(time.Now())}
	for i := range r.b.cfg.Sinks {
		sc := &r.b.cfg.Sinks[i]
		if err := r.addSink(out, sc); err != nil {
			out.close()
			return nil, fmt.Errorf("sink[%d] %q: %w", i, sc.Name, err)
		}
	}
	return out, nil
}

// addSink creates the sink of configuration sc for out.
func (r *recv) addSink(out *output, sc *config.Sink) error {
	log := r.b.log // the sinks add their own name
	if out.feed.id != "" {
		log = log.With("feed", out.feed.id)
	}
	if sc.Type == config.SinkRTP {
		s, err := sinks.NewRTP(sinks.RTPConfig{Name: sc.Name, Host: sc.Host, Port: sc.Port, SDP: sc.SDP, Logger: log.With("sink", sc.Name)})
		if err != nil {
			return err
		}
		out.rtps = append(out.rtps, &packetSink{sink: s})
		return nil
	}
	if sc.Type == config.SinkRTMP {
		s, err := sinks.NewRTMP(sinks.RTMPConfig{Name: sc.Name, URL: sc.URL, AudioBitrate: sc.AudioBitrate, Kinds: sc.Kinds,
			RequestKeyframe: func() { go r.requestKeyframe(false) }, Logger: log})
		if err != nil {
			return err
		}
		out.files = append(out.files, newSinkQueue(sc.Name, s, &SinkStats{}, log, takesVideo(sc)))
		return nil
	}
	if !sc.IsFile() {
		return fmt.Errorf("%s sinks are not supported yet", sc.Type)
	}
	fc := sinks.NewFileConfig(r.b.cfg, sc)
	fc.Feed, fc.Display = out.feed.id, out.feed.display
	fc.RequestKeyframe = func() { go r.requestKeyframe(false) } // never block the sink
	fc.Logger = log
	s, err := sinks.NewFile(fc)
	if err != nil {
		return err
	}
	out.files = append(out.files, newSinkQueue(sc.Name, s, &SinkStats{}, log, takesVideo(sc)))
	return nil
}

// takesVideo returns whether a sink of configuration sc writes a track
// that is video.
func takesVideo(sc *config.Sink) func(media.Track) bool {
	return func(t media.Track) bool {
		return t.Kind == "video" && (len(sc.Kinds) == 0 || slices.Contains(sc.Kinds, "video")) &&
			media.SinkAccepts(sc.Type, t.Codec)
	}
}

// track returns the output's track for an offered stream, creating it
// (with the next index) when the output has none for that mid and codec.
func (out *output) track(o sdpTrack, r *recv) (*recvTrack, error) {
	for _, t := range out.tracks {
		if t.desc.MID == o.mid && t.desc.Codec == o.codec {
			return t, nil
		}
	}
	desc := media.Track{Index: len(out.tracks), MID: o.mid, Kind: o.kind, Codec: o.codec,
		ClockRate: o.clockRate, Channels: o.channels, PayloadType: o.payloadType, Fmtp: o.fmtp}
	t := &recvTrack{out: out, desc: desc, srs: make(chan rtcp.SenderReport, 4)}
	f, err := framer.New(desc, out.clock, framer.Options{
		OnFrame:          t.onFrame,
		OnKeyframeNeeded: func() { r.requestKeyframe(false) },
		// Janus's timestamps keep real pauses (and its sender reports
		// correct them within a second), while our own reader may stall
		// on a loaded machine and read a backlog: trust arrival times
		// only for much longer departures.
		GapThreshold: gapThreshold,
		// Janus resends a packet within its 200 ms NACK queue; under load
		// the resent packet may still be on its way (or our reader late)
		// past that: files can wait, rtp sinks get packets on arrival.
		MaxDelay: 400 * time.Millisecond,
		// Recordings go on through a packet that NACKs could not recover
		// (artefacts until the keyframe asked for) rather than freeze for
		// up to a GOP.
		KeepAfterLoss: true,
		// Reorder slots for MaxDelay of packets at high rates: 128 is 1.3 s
		// of 10 ms audio; video keeps the default (512: 400 ms of 10 Mbit/s).
		RingSize: ringSize(o.kind),
	})
	if err != nil {
		return nil, err
	}
	t.framer = f
	out.tracks = append(out.tracks, t)
	return t, nil
}

// ringSize is the framer's reorder ring for a track of kind.
func ringSize(kind string) int {
	if kind == "audio" {
		return 128
	}
	return framer.DefaultRingSize
}

// setTracks tells the sinks the output's new track set.
func (out *output) setTracks(descs []media.Track) error {
	var errs []error
	for _, q := range out.files {
		q.setTracks(descs)
	}
	for _, s := range out.rtps {
		errs = append(errs, s.setTracks(descs))
	}
	return errors.Join(errs...)
}

// onFrame takes a frame of the track from its framer, noting the first
// video keyframe's arrival.
func (t *recvTrack) onFrame(f *media.Frame) {
	if f.Keyframe && t.desc.Kind == "video" && t.stats.FirstKeyframe.Load() == nil {
		at := t.framer.Stats().FirstKeyframe
		t.stats.FirstKeyframe.Store(&at)
	}
	t.out.fanOut(f)
}

// fanOut hands a frame to every file sink's queue. Each sink gets its own
// Frame (sinks rebase its PTS); the data is shared, read-only.
func (out *output) fanOut(f *media.Frame) {
	for i, q := range out.files {
		if i < len(out.files)-1 {
			c := *f
			q.push(&c)
		} else {
			q.push(f)
		}
	}
}

// close finalises the output's files and closes its forwards.
func (out *output) close() error {
	var errs []error
	for _, q := range out.files {
		errs = append(errs, q.close())
	}
	for _, s := range out.rtps {
		errs = append(errs, s.close())
	}
	return errors.Join(errs...)
}

func sameTracks(a, b []media.Track) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
