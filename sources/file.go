package sources

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/janusbridge/janusbridge/config"
	"github.com/janusbridge/janusbridge/media"
	"github.com/janusbridge/janusbridge/transcode"
	"github.com/pion/rtp"
	"github.com/pion/rtp/codecs"
)

// fileMTU is the largest RTP payload a file source produces.
const fileMTU = 1200

// Payload types of a file source's tracks (pion's defaults, which Janus's
// plugins accept; the send bridge negotiates its own anyway).
const (
	ptOpus = 111
	ptVP8  = 96
	ptVP9  = 98
	ptH264 = 102
	ptAV1  = 45
)

// fileTrack is a track a demuxer found: its codec and what the codec
// needs from the container.
type fileTrack struct {
	codec    string // a media codec name
	channels int    // audio
	// sps, pps are an H.264 track's parameter sets from the container
	// (avcC); nalLen is the length-prefix size of its samples, 0 for
	// Annex-B samples.
	sps, pps [][]byte
	nalLen   int
	// av1Config is an AV1 track's configuration OBUs (sequence header),
	// put in front of a keyframe that lacks them.
	av1Config []byte
	// asc is an AAC track's AudioSpecificConfig (raw AAC frames are
	// given ADTS headers from it for the transcoder).
	asc []byte
}

// frame is one access unit a demuxer read: a video picture or an audio
// packet, its times relative to the file's start. data stays valid until
// the next call to next.
type frame struct {
	track    int
	dts, pts time.Duration
	keyframe bool
	data     []byte
}

// demuxer reads the frames of one file in decoding order. Errors name the
// file and the offset where it went wrong.
type demuxer interface {
	tracks() []fileTrack
	// next returns the next frame, io.EOF after the last.
	next() (frame, error)
	// rewind goes back to the first frame.
	rewind() error
}

// openDemuxer opens the file at path as format (config.Source.FileFormat).
func openDemuxer(f *os.File, path, format string, fps float64) (demuxer, error) {
	switch format {
	case "ivf":
		return newIVF(f, path)
	case "h264":
		return newAnnexB(f, path, fps)
	case "ogg":
		return newOgg(f, path)
	case "webm", "mkv":
		return newMatroska(f, path)
	case "mp4":
		return newMP4(f, path)
	}
	return nil, fmt.Errorf("%s: unsupported file format %q", path, format)
}

// FileStats are the counters of a [File] source.
type FileStats struct {
	// Frames and Packets count what was sent; Loops the completed passes
	// through the file.
	Frames, Packets, Loops uint64
	// Late counts frames sent more than 100 ms after their time (a slow
	// writer or a loaded machine).
	Late uint64
	// Dropped counts Opus packets of a transcoded AAC track that were
	// dropped (the queue to the sender full); the transcoder counts its
	// own drops in Transcoder.
	Dropped uint64
	// Transcoder holds the counters of the AAC transcoder of the current
	// or last Run, zero without one.
	Transcoder transcode.Stats
}

// fileOut is the packetizing state of a track the source sends.
type fileOut struct {
	in        int // the demuxer's track
	track     media.Track
	conv      fileTrack
	payloader rtp.Payloader
	ssrc      uint32
	seq       uint16
	tsBase    uint32
	aac       bool     // AAC in the file, sent as Opus through a transcoder
	buf       []byte   // conversion buffer (Annex-B, OBUs, ADTS), reused
	nals      [][]byte // NAL units of an Annex-B frame, reused
	pkt       rtp.Packet
}

// File is a [media.Source] that plays a media file: WebM/Matroska (VP8,
// VP9, H.264, AV1, Opus, AAC), Ogg Opus, IVF (VP8, VP9, AV1), MP4 (H.264,
// VP9, AV1, Opus, AAC; progressive or fragmented) or an Annex-B H.264
// stream at a given frame rate. Its frames are packetized with pion's payloaders (MTU
// 1200) and paced in real time against one monotonic clock for all tracks,
// so audio and video stay together. With loop the file starts again after
// its end, RTP timestamps and sequence numbers going on: each pass is
// placed one file duration (its last frame's end) after the previous one.
// AAC audio is sent as Opus, re-encoded by an ffmpeg child (package
// transcode) that is fed ahead of time so that its output leaves on time.
// Tracks of other codecs are left out with a warning.
type File struct {
	path   string
	format string
	loop   bool
	fps    float64
	log    *slog.Logger
	outs   []*fileOut
	byIn   map[int]*fileOut // the demuxer's track -> what it becomes

	// pace is false only in tests that check the packets, not the timing.
	pace bool
	// timeline is where the next Run starts on the media timeline, so a
	// Run after a Run goes on with later timestamps.
	timeline time.Duration
	// tc is the AAC transcoder of the current or last Run.
	tc atomic.Pointer[transcode.Transcoder]

	frames, packets, loops, late, dropped atomic.Uint64
}

var _ media.Source = (*File)(nil)

// NewFile returns the file source of cfg (type "file"). It reads the
// file's header to describe its tracks; Run opens the file again.
func NewFile(cfg *config.Source, log *slog.Logger) (*File, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &File{path: cfg.Path, format: cfg.FileFormat(), loop: cfg.Loop, fps: cfg.FPS, log: log, pace: true,
		byIn: map[int]*fileOut{}}
	f, err := os.Open(s.path)
	if err != nil {
		return nil, fmt.Errorf("file source: %w", err)
	}
	defer f.Close()
	d, err := openDemuxer(f, s.path, s.format, s.fps)
	if err != nil {
		return nil, fmt.Errorf("file source: %w", err)
	}
	for i, t := range d.tracks() {
		out := s.newOut(i, t)
		if out == nil {
			continue
		}
		out.track.Index = len(s.outs)
		s.outs = append(s.outs, out)
		s.byIn[i] = out
	}
	if len(s.outs) == 0 {
		return nil, fmt.Errorf("file source: %s: no track with a codec we can send (%s, %s, %s, %s, %s)",
			s.path, media.Opus, media.VP8, media.VP9, media.H264, media.AV1)
	}
	return s, nil
}

// newOut sets up the sending of the demuxer's track i, or returns nil
// (with a warning) for a codec we cannot send.
func (s *File) newOut(i int, t fileTrack) *fileOut {
	out := &fileOut{in: i, conv: t, ssrc: rand.Uint32(), seq: uint16(rand.Uint32()), tsBase: rand.Uint32()}
	tr := media.Track{Codec: t.codec, Kind: media.KindOf(t.codec), ClockRate: 90000}
	switch t.codec {
	case media.Opus:
		tr.ClockRate, tr.PayloadType, tr.Channels = 48000, ptOpus, 2
		tr.Fmtp = "minptime=10;useinbandfec=1"
		if t.channels == 2 {
			tr.Fmtp += ";stereo=1;sprop-stereo=1"
		}
		out.payloader = &codecs.OpusPayloader{}
	case media.VP8:
		tr.PayloadType = ptVP8
		out.payloader = &codecs.VP8Payloader{EnablePictureID: true}
	case media.VP9:
		tr.PayloadType, tr.Fmtp = ptVP9, "profile-id=0"
		out.payloader = &codecs.VP9Payloader{}
	case media.H264:
		tr.PayloadType = ptH264
		profile := "42e01f"
		if len(t.sps) > 0 && len(t.sps[0]) >= 4 {
			profile = hex.EncodeToString(t.sps[0][1:4])
		}
		tr.Fmtp = "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=" + profile
		out.payloader = &codecs.H264Payloader{}
	case media.AV1:
		tr.PayloadType = ptAV1
		out.payloader = &codecs.AV1Payloader{}
	case "aac":
		if len(t.asc) < 2 {
			s.log.Warn("AAC track without its AudioSpecificConfig: left out", "file", s.path, "track", i)
			return nil
		}
		tr.Codec, tr.Kind, tr.ClockRate, tr.PayloadType, tr.Channels = media.Opus, "audio", 48000, ptOpus, 2
		tr.Fmtp = "minptime=10;useinbandfec=1;stereo=1;sprop-stereo=1"
		out.payloader, out.aac = &codecs.OpusPayloader{}, true
	default:
		s.log.Warn("codec not supported by a file source: track left out", "file", s.path, "track", i, "codec", t.codec)
		return nil
	}
	out.track = tr
	return out
}

// Tracks describes the tracks the source sends.
func (s *File) Tracks() []media.Track {
	ts := make([]media.Track, len(s.outs))
	for i, o := range s.outs {
		ts[i] = o.track
	}
	return ts
}

// RequestKeyframe does nothing: a file has its keyframes where they are.
func (s *File) RequestKeyframe(int) {}

// Stats returns the source's counters.
func (s *File) Stats() FileStats {
	st := FileStats{Frames: s.frames.Load(), Packets: s.packets.Load(), Loops: s.loops.Load(), Late: s.late.Load(),
		Dropped: s.dropped.Load()}
	if tc := s.tc.Load(); tc != nil {
		st.Transcoder = (*tc).Stats()
	}
	return st
}

// aacLead is how far ahead of their time AAC frames go to the transcoder:
// more than its latency (an ffmpeg child's start included), so that the
// Opus packets are there when they are due.
const aacLead = 600 * time.Millisecond

// Run opens the file and sends its frames, paced in real time, until ctx
// ends (nil), w fails (its error), the file fails (an error naming the file
// and offset) or, without loop, the file ends (io.EOF after the last
// packet). w is never called by two goroutines at once.
func (s *File) Run(ctx context.Context, w media.PacketWriter) error {
	d, f, err := s.open()
	if err != nil {
		return err
	}
	defer f.Close()
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var wmu sync.Mutex
	write := func(track int, p *rtp.Packet) error {
		wmu.Lock()
		defer wmu.Unlock()
		return w(track, p)
	}
	start := time.Now()
	base := s.timeline

	var wg sync.WaitGroup
	wg.Go(func() { s.report(ctx) })
	audioDone := make(chan struct{})
	if aac := s.aacOut(); aac != nil {
		if err := s.startAAC(ctx, cancel, &wg, aac, start, base, write, audioDone); err != nil {
			return err
		}
	} else {
		close(audioDone)
	}
	end, err := s.play(ctx, d, start, base, 0, func(o *fileOut) bool { return !o.aac },
		func(o *fileOut, fr *frame, t time.Duration) error { return s.send(o, fr, t, write) })
	s.timeline = end
	if err == io.EOF { // the last packets of the transcoded audio
		select {
		case <-audioDone:
		case <-ctx.Done():
		}
	}
	if err != nil && err != io.EOF {
		cancel(err)
	} else if cause := context.Cause(ctx); cause != nil && !errors.Is(cause, context.Canceled) && !errors.Is(cause, context.DeadlineExceeded) {
		err = cause // the audio pipeline failed
	}
	cancel(nil)
	wg.Wait()
	return err
}

// report logs, once a second while ctx lasts, the late frames and
// dropped packets counted in that second, if any.
func (s *File) report(ctx context.Context) {
	t := time.NewTicker(reportInterval)
	defer t.Stop()
	var prev FileStats
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		st := s.Stats()
		if st.Late != prev.Late || st.Dropped != prev.Dropped || st.Transcoder.Dropped != prev.Transcoder.Dropped {
			s.log.Warn("file source: behind in the last second", "late_frames", st.Late-prev.Late,
				"opus_dropped", st.Dropped-prev.Dropped, "transcoder_dropped", st.Transcoder.Dropped-prev.Transcoder.Dropped)
		}
		prev = st
	}
}

// open opens the file and its demuxer, checking that it still has the
// tracks NewFile found.
func (s *File) open() (demuxer, *os.File, error) {
	f, err := os.Open(s.path)
	if err != nil {
		return nil, nil, fmt.Errorf("file source: %w", err)
	}
	d, err := openDemuxer(f, s.path, s.format, s.fps)
	if err != nil {
		f.Close()
		return nil, nil, fmt.Errorf("file source: %w", err)
	}
	for in, o := range s.byIn {
		ts := d.tracks()
		if in >= len(ts) || ts[in].codec != o.conv.codec {
			f.Close()
			return nil, nil, fmt.Errorf("file source: %s: its tracks changed since it was opened", s.path)
		}
	}
	return d, f, nil
}

// aacOut returns the AAC track the source sends, nil when none.
func (s *File) aacOut() *fileOut {
	for _, o := range s.outs {
		if o.aac {
			return o
		}
	}
	return nil
}

// minPassSpan is the least a pass advances the timeline, for a file too
// short to tell its duration (a single frame): a loop never spins.
const minPassSpan = 40 * time.Millisecond

// spanner follows one pass through the file to find its end: the latest
// end (PTS plus the track's frame duration) of a frame of any track.
type spanner struct {
	last, dur []time.Duration
	seen      []bool
	end       time.Duration
}

func newSpanner(tracks int) *spanner {
	return &spanner{last: make([]time.Duration, tracks), dur: make([]time.Duration, tracks), seen: make([]bool, tracks)}
}

func (sp *spanner) reset() {
	clear(sp.seen)
	sp.end = 0
}

// add takes a frame of a track of codec, its times relative to the file's
// origin.
func (sp *spanner) add(track int, codec string, data []byte, dts, pts time.Duration) {
	if sp.seen[track] && dts > sp.last[track] {
		sp.dur[track] = dts - sp.last[track]
	}
	if codec == media.Opus {
		if d := opusDuration(data); d > 0 {
			sp.dur[track] = d
		}
	}
	sp.last[track], sp.seen[track] = dts, true
	sp.end = max(sp.end, pts+sp.dur[track])
}

// play runs the passes through the file: each frame of a track that want
// takes is handed to send at its due time (less lead) with its media time.
// Every pipeline playing the same file computes the same passes (origin
// and span from all tracks' frames), so tracks played by different
// pipelines stay together. It returns where the last pass ended on the
// media timeline and nil (ctx ended), io.EOF (the end without loop) or an
// error.
func (s *File) play(ctx context.Context, d demuxer, start time.Time, base, lead time.Duration,
	want func(*fileOut) bool, send func(o *fileOut, fr *frame, t time.Duration) error) (time.Duration, error) {
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	defer timer.Stop()
	sp := newSpanner(len(d.tracks()))
	offset := base // media time of this pass's start
	var origin time.Duration
	originSet, reordered := false, false
	for {
		frames := 0
		sp.reset()
		for {
			if ctx.Err() != nil {
				return offset + sp.end, nil
			}
			fr, err := d.next()
			if err == io.EOF {
				break
			}
			if err != nil {
				return offset + sp.end, fmt.Errorf("file source: %w", err)
			}
			if !originSet {
				origin, originSet = fr.dts, true
			}
			dts, pts := fr.dts-origin, fr.pts-origin
			if pts != dts && lead == 0 && !reordered && d.tracks()[fr.track].codec != "aac" {
				reordered = true
				s.log.Warn("file source: the video has frames out of order (B-frames), which WebRTC receivers may not play",
					"file", s.path, "track", fr.track)
			}
			sp.add(fr.track, d.tracks()[fr.track].codec, fr.data, dts, pts)
			frames++
			o := s.byIn[fr.track]
			if o == nil || !want(o) {
				continue
			}
			if s.pace {
				due := start.Add(offset - base + dts - lead)
				if wait := time.Until(due); wait > 0 {
					timer.Reset(wait)
					select {
					case <-ctx.Done():
						timer.Stop()
						return offset + sp.end, nil
					case <-timer.C:
					}
				} else if wait < -100*time.Millisecond && lead == 0 {
					s.late.Add(1)
				}
			}
			if err := send(o, &fr, offset+pts); err != nil {
				return offset + sp.end, err
			}
		}
		if frames == 0 {
			return offset, fmt.Errorf("file source: %s: no frames", s.path)
		}
		offset += max(sp.end, minPassSpan)
		if lead == 0 { // the main pipeline counts the passes
			s.loops.Add(1)
		}
		if !s.loop {
			return offset, io.EOF
		}
		if err := d.rewind(); err != nil {
			return offset, fmt.Errorf("file source: %w", err)
		}
	}
}

// opusItem is an Opus packet of the transcoder waiting for its time.
type opusItem struct {
	pts  time.Duration
	data []byte
}

// startAAC starts the pipeline of a transcoded AAC track: a goroutine that
// plays the file (its own reader) and writes the AAC frames, as ADTS,
// aacLead ahead of their time into an AAC-to-Opus transcoder, and one that
// sends the transcoder's Opus packets when they are due. audioDone is
// closed once the last packet is sent (the file ended without loop) or the
// pipeline stopped; a failure cancels ctx with its cause.
func (s *File) startAAC(ctx context.Context, cancel context.CancelCauseFunc, wg *sync.WaitGroup, o *fileOut,
	start time.Time, base time.Duration, write media.PacketWriter, audioDone chan struct{}) error {
	d, f, err := s.open()
	if err != nil {
		return err
	}
	queue := make(chan opusItem, 256)
	tc, err := transcode.NewAACToOpus(transcode.Config{Logger: s.log, Output: func(p transcode.Packet) {
		select {
		case queue <- opusItem{pts: p.PTS, data: append([]byte(nil), p.Data...)}:
		default:
			s.dropped.Add(1)
		}
	}})
	if err != nil {
		f.Close()
		return fmt.Errorf("file source: %s: AAC transcoder: %w", s.path, err)
	}
	var iface transcode.Transcoder = tc
	s.tc.Store(&iface)
	wg.Add(2)
	go func() { // the reader: AAC frames into the transcoder
		defer wg.Done()
		defer f.Close()
		_, err := s.play(ctx, d, start, base, aacLead, func(x *fileOut) bool { return x == o },
			func(o *fileOut, fr *frame, t time.Duration) error {
				adts, err := transcode.AppendADTS(o.buf[:0], o.conv.asc, len(fr.data))
				if err != nil {
					return fmt.Errorf("file source: %s: AAC: %w", s.path, err)
				}
				o.buf = append(adts, fr.data...)
				tc.Write(t, o.buf)
				return nil
			})
		if err != nil && err != io.EOF {
			cancel(err)
		}
		tc.Close() // flushes: the last packets reach the queue
		close(queue)
	}()
	go func() { // the sender: Opus packets when they are due
		defer wg.Done()
		defer close(audioDone)
		timer := time.NewTimer(time.Hour)
		timer.Stop()
		defer timer.Stop()
		var pkt rtp.Packet
		for it := range queue {
			if s.pace {
				if wait := time.Until(start.Add(it.pts - base)); wait > 0 {
					timer.Reset(wait)
					select {
					case <-ctx.Done():
						timer.Stop()
						return
					case <-timer.C:
					}
				} else if wait < -100*time.Millisecond {
					s.late.Add(1)
				}
			}
			if ctx.Err() != nil {
				return
			}
			s.packets.Add(1)
			s.frames.Add(1)
			pkt.Header = rtp.Header{Version: 2, PayloadType: o.track.PayloadType, SequenceNumber: o.seq,
				Timestamp: o.tsBase + toClock(it.pts, 48000), SSRC: o.ssrc}
			pkt.Payload = it.data
			o.seq++
			if err := write(o.track.Index, &pkt); err != nil {
				cancel(err)
				return
			}
		}
	}()
	return nil
}

// send packetizes one frame of track o at media time t and hands the
// packets to w.
func (s *File) send(o *fileOut, fr *frame, t time.Duration, w media.PacketWriter) error {
	pkt := &o.pkt
	data := s.convert(o, fr)
	if len(data) == 0 {
		return nil
	}
	payloads := o.payloader.Payload(fileMTU, data)
	ts := o.tsBase + toClock(t, o.track.ClockRate)
	for i, p := range payloads {
		pkt.Header = rtp.Header{
			Version:        2,
			Marker:         i == len(payloads)-1 && o.track.Kind == "video",
			PayloadType:    o.track.PayloadType,
			SequenceNumber: o.seq,
			Timestamp:      ts,
			SSRC:           o.ssrc,
		}
		pkt.Payload = p
		o.seq++
		s.packets.Add(1)
		if err := w(o.track.Index, pkt); err != nil {
			return err
		}
	}
	s.frames.Add(1)
	return nil
}

// convert turns a frame into what the track's payloader takes: Annex-B
// with the parameter sets in front of keyframes for H.264, OBUs with the
// sequence header in front of keyframes for AV1, the frame as it is
// otherwise.
func (s *File) convert(o *fileOut, fr *frame) []byte {
	switch o.track.Codec {
	case media.H264:
		b := o.buf[:0]
		idr, sps := false, false
		forEachNAL(fr.data, o.conv.nalLen, &o.nals, func(nal []byte) {
			switch media.H264NALType(nal) {
			case media.H264NALIDR:
				idr = true
			case media.H264NALSPS:
				sps = true
			}
		})
		if idr && !sps {
			for _, ps := range append(append([][]byte(nil), o.conv.sps...), o.conv.pps...) {
				b = append(b, 0, 0, 0, 1)
				b = append(b, ps...)
			}
		}
		forEachNAL(fr.data, o.conv.nalLen, &o.nals, func(nal []byte) {
			b = append(b, 0, 0, 0, 1)
			b = append(b, nal...)
		})
		o.buf = b
		return b
	case media.AV1:
		if !fr.keyframe || len(o.conv.av1Config) == 0 || av1HasSequenceHeader(fr.data) {
			return fr.data
		}
		o.buf = append(append(o.buf[:0], o.conv.av1Config...), fr.data...)
		return o.buf
	}
	return fr.data
}

// forEachNAL calls fn with each NAL unit of an H.264 sample: length
// prefixed with nalLen bytes, or Annex-B when nalLen is 0 (split into
// *scratch). A length that runs past the end ends the sample.
func forEachNAL(b []byte, nalLen int, scratch *[][]byte, fn func(nal []byte)) {
	if nalLen == 0 {
		*scratch = media.SplitAnnexB((*scratch)[:0], b)
		for _, nal := range *scratch {
			fn(nal)
		}
		return
	}
	for len(b) >= nalLen {
		n := 0
		for _, c := range b[:nalLen] {
			n = n<<8 | int(c)
		}
		b = b[nalLen:]
		if n > len(b) {
			return
		}
		if n > 0 {
			fn(b[:n])
		}
		b = b[n:]
	}
}

// toClock converts a media time to RTP clock ticks (mod 2^32), without
// overflowing for long runs.
func toClock(d time.Duration, rate uint32) uint32 {
	sec, frac := d/time.Second, d%time.Second
	return uint32(int64(sec)*int64(rate) + int64(frac)*int64(rate)/int64(time.Second))
}

// opusDuration returns the duration of an Opus packet from its TOC byte
// (RFC 6716 §3.1), 0 when it is malformed.
func opusDuration(b []byte) time.Duration {
	if len(b) == 0 {
		return 0
	}
	config := b[0] >> 3
	var frame time.Duration // per frame
	switch {
	case config < 12: // SILK: 10, 20, 40, 60 ms
		frame = []time.Duration{10, 20, 40, 60}[config%4] * time.Millisecond
	case config < 16: // hybrid: 10, 20 ms
		frame = []time.Duration{10, 20}[config%2] * time.Millisecond
	default: // CELT: 2.5, 5, 10, 20 ms
		frame = []time.Duration{2500, 5000, 10000, 20000}[config%4] * time.Microsecond
	}
	n := 1
	switch b[0] & 3 {
	case 1, 2:
		n = 2
	case 3:
		if len(b) < 2 {
			return 0
		}
		n = int(b[1] & 0x3f)
	}
	return time.Duration(n) * frame
}

// av1HasSequenceHeader reports whether an AV1 temporal unit (OBUs with
// size fields) holds a sequence header OBU.
func av1HasSequenceHeader(b []byte) bool {
	for len(b) > 0 {
		h := b[0]
		typ := (h >> 3) & 0xf
		if typ == 1 {
			return true
		}
		i := 1
		if h&0x04 != 0 { // extension
			i++
		}
		if h&0x02 == 0 || i > len(b) { // no size field: the rest is this OBU
			return false
		}
		size, n := leb128(b[i:])
		if n == 0 || uint64(len(b)-i-n) < size {
			return false
		}
		b = b[i+n+int(size):]
	}
	return false
}

// leb128 decodes an unsigned LEB128 number; n is 0 when it is malformed.
func leb128(b []byte) (v uint64, n int) {
	for i := 0; i < 8 && i < len(b); i++ {
		v |= uint64(b[i]&0x7f) << (7 * i)
		if b[i]&0x80 == 0 {
			return v, i + 1
		}
	}
	return 0, 0
}

// errAt is a demuxer error naming the file and the offset.
func errAt(path string, off int64, format string, args ...any) error {
	return fmt.Errorf("%s: offset %d: %s", path, off, fmt.Sprintf(format, args...))
}

// errTruncated is wrapped by errors for files that end in the middle of
// something.
var errTruncated = errors.New("truncated")
