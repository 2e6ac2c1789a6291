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
	"sync/atomic"
	"time"

	"github.com/janusbridge/janusbridge/config"
	"github.com/janusbridge/janusbridge/media"
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
	lastDTS   time.Duration // of the track's previous frame in this pass
	frameDur  time.Duration // the track's last frame duration
	seen      bool
	buf       []byte   // conversion buffer (Annex-B, OBUs), reused
	nals      [][]byte // NAL units of an Annex-B frame, reused
}

// File is a [media.Source] that plays a media file: WebM/Matroska (VP8,
// VP9, H.264, AV1, Opus), Ogg Opus, IVF (VP8, VP9, AV1), MP4 (H.264, VP9,
// AV1, Opus; progressive or fragmented) or an Annex-B H.264 stream at a
// given frame rate. Its frames are packetized with pion's payloaders (MTU
// 1200) and paced in real time against one monotonic clock for all tracks,
// so audio and video stay together. With loop the file starts again after
// its end, RTP timestamps and sequence numbers going on: each pass is
// placed one file duration (its last frame's end) after the previous one.
// Tracks of other codecs (AAC, which needs the RTMP transcoder) are left
// out with a warning.
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

	frames, packets, loops, late atomic.Uint64
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
	default:
		msg := "codec not supported by a file source: track left out"
		if t.codec == "aac" {
			msg = "AAC audio needs the transcoder of the RTMP source, not available to file sources yet: track left out"
		}
		s.log.Warn(msg, "file", s.path, "track", i, "codec", t.codec)
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
	return FileStats{Frames: s.frames.Load(), Packets: s.packets.Load(), Loops: s.loops.Load(), Late: s.late.Load()}
}

// Run opens the file and sends its frames, paced in real time, until ctx
// ends (nil), w fails (its error), the file fails (an error naming the file
// and offset) or, without loop, the file ends (io.EOF after the last
// packet). w is called from Run's goroutine only.
func (s *File) Run(ctx context.Context, w media.PacketWriter) error {
	f, err := os.Open(s.path)
	if err != nil {
		return fmt.Errorf("file source: %w", err)
	}
	defer f.Close()
	d, err := openDemuxer(f, s.path, s.format, s.fps)
	if err != nil {
		return fmt.Errorf("file source: %w", err)
	}
	if len(d.tracks()) < len(s.byIn) {
		return fmt.Errorf("file source: %s: its tracks changed since it was opened", s.path)
	}
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	defer timer.Stop()

	start := time.Now()
	offset := s.timeline // media time of this pass's start
	var origin time.Duration
	originSet := false
	var end time.Duration // the end of the last frame so far, this pass
	var pkt rtp.Packet
	for {
		frames := 0
		for _, o := range s.outs {
			o.seen = false
		}
		for {
			if err := ctx.Err(); err != nil {
				s.timeline = offset + end
				return nil
			}
			fr, err := d.next()
			if err == io.EOF {
				break
			}
			if err != nil {
				return fmt.Errorf("file source: %w", err)
			}
			o := s.byIn[fr.track]
			if o == nil {
				continue
			}
			if !originSet {
				origin, originSet = fr.dts, true
			}
			dts, pts := fr.dts-origin, fr.pts-origin
			if o.seen && dts > o.lastDTS {
				o.frameDur = dts - o.lastDTS
			}
			if o.track.Codec == media.Opus {
				if d := opusDuration(fr.data); d > 0 {
					o.frameDur = d
				}
			}
			o.lastDTS, o.seen = dts, true
			end = max(end, pts+o.frameDur)
			frames++

			if s.pace {
				due := start.Add(offset - s.timeline + dts)
				if wait := time.Until(due); wait > 0 {
					timer.Reset(wait)
					select {
					case <-ctx.Done():
						timer.Stop()
						s.timeline = offset + end
						return nil
					case <-timer.C:
					}
				} else if wait < -100*time.Millisecond {
					s.late.Add(1)
				}
			}
			if err := s.send(o, &fr, offset+pts, &pkt, w); err != nil {
				return err
			}
		}
		if frames == 0 {
			return fmt.Errorf("file source: %s: no frames", s.path)
		}
		s.loops.Add(1)
		offset += end
		if !s.loop {
			s.timeline = offset
			return io.EOF
		}
		if err := d.rewind(); err != nil {
			return fmt.Errorf("file source: %w", err)
		}
		end = 0
	}
}

// send packetizes one frame of track o at media time t and hands the
// packets to w.
func (s *File) send(o *fileOut, fr *frame, t time.Duration, pkt *rtp.Packet, w media.PacketWriter) error {
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
