package sinks

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"strings"
	"time"

	"github.com/janusbridge/janusbridge/media"
)

// Ogg Opus (RFC 7845) written by hand: pion's oggwriter derives granule
// positions from the packets' sample counts, so loss and DTX would shrink
// the timeline. Here a page's granule position comes from the PTS of its
// last packet, and gaps stay gaps: a gap of whole 20 ms frames (up to
// oggMaxFill) is also filled with Opus silence frames, because demuxers
// that place packets by summing their durations (ffmpeg puts the first
// packet of a page at the previous page's granule) and tools that convert
// to PCM would otherwise close it; a longer gap (or the part of a gap
// shorter than a frame) is carried by the granule positions alone.

const (
	// oggPreSkip is the OpusHead pre-skip: 312 samples (6.5 ms at 48 kHz),
	// the look-ahead of libopus, which WebRTC senders use. Granules are the
	// packets' PTS (their capture time, like an RTP timestamp) plus their
	// duration, as opusenc writes them; a decoder then shows decoded sample
	// k of a packet at PTS + k - 312 (RFC 7845: PCM position = granule -
	// pre-skip), which undoes the encoder's delay and keeps the audio on the
	// capture clock of the video. The file starts mid-stream, so the 312
	// discarded samples are also the cold decoder's converging output.
	oggPreSkip = 312
	// oggRate is Opus's granule rate, whatever the input rate.
	oggRate = 48000
	// oggPageSpan is how much audio a page holds at most before it is
	// written, so that a killed process loses at most this much even when
	// Flush is not called.
	oggPageSpan = time.Second
	// oggGapSamples: a packet starting this far (2.5 ms) or more after the
	// end of the previous one follows a gap; the page is cut there so that
	// each page's granule places its packets exactly.
	oggGapSamples = 120
	// oggMaxFill is the longest gap filled with silence: 10 minutes are
	// 30,000 four-byte packets (120 kB).
	oggMaxFill = 10 * time.Minute
	// oggMaxSegments is the size of a page's segment table.
	oggMaxSegments = 255
	// oggMaxPacket is the largest packet one page can hold (255 lacing
	// values of 255); a valid Opus packet (at most 120 ms of 1275-byte
	// frames, 61,440 bytes) always fits.
	oggMaxPacket = oggMaxSegments*255 - 1
)

// oggSilence is a 20 ms CELT fullband mono frame that decodes to silence
// (TOC 0xf8, then the range coder's silence flag).
var oggSilence = []byte{0xf8, 0xff, 0xfe}

// Ogg page header flags.
const (
	oggBOS = 0x02
	oggEOS = 0x04
)

// oggMuxer is the muxer of the ogg sink: one Opus track in an Ogg stream.
type oggMuxer struct {
	w      io.Writer
	track  int // Index of the Opus track
	serial uint32
	seq    uint32 // next page sequence number

	// The page being filled.
	segs    []byte // segment table
	body    []byte
	first   int64 // start granule (sample position) of its first packet
	granule int64 // end granule of its last packet

	end     int64 // end sample position (without pre-skip) of the last packet, -1 before any
	closed  bool
	dropped int // packets that are not Opus (empty, bad TOC, too large)
	page    []byte
}

// newOgg starts an Ogg Opus file on w: tracks must be exactly one Opus track.
// The headers (OpusHead, OpusTags) are written at once.
func newOgg(w io.WriteSeeker, tracks []media.Track) (muxer, error) {
	if len(tracks) != 1 || !strings.EqualFold(tracks[0].Codec, media.Opus) {
		codecs := make([]string, len(tracks))
		for i, t := range tracks {
			codecs[i] = t.Codec
		}
		return nil, fmt.Errorf("ogg: holds exactly one opus track, not [%s]", strings.Join(codecs, ", "))
	}
	channels := tracks[0].Channels
	if channels < 1 || channels > 2 {
		channels = 2 // WebRTC's opus/48000/2; a decoder takes mono and stereo packets either way
	}
	m := &oggMuxer{
		w:      w,
		track:  tracks[0].Index,
		serial: rand.Uint32(),
		end:    -1,
	}
	head := make([]byte, 19)
	copy(head, "OpusHead")
	head[8] = 1 // version
	head[9] = byte(channels)
	binary.LittleEndian.PutUint16(head[10:], oggPreSkip)
	binary.LittleEndian.PutUint32(head[12:], oggRate) // input sample rate (informative)
	// head[16:18] output gain 0, head[18] channel mapping family 0 (mono/stereo)
	if err := m.writePage(oggBOS, 0, [][]byte{head}); err != nil {
		return nil, err
	}
	const vendor = "janusbridge"
	tags := make([]byte, 0, 8+4+len(vendor)+4)
	tags = append(tags, "OpusTags"...)
	tags = binary.LittleEndian.AppendUint32(tags, uint32(len(vendor)))
	tags = append(tags, vendor...)
	tags = binary.LittleEndian.AppendUint32(tags, 0) // no user comments
	if err := m.writePage(0, 0, [][]byte{tags}); err != nil {
		return nil, err
	}
	return m, nil
}

// WriteFrame adds one Opus packet. Its granule comes from f.PTS; a packet
// that overlaps the previous one is moved to its end (granules never go
// back); a gap before it is filled with silence frames up to oggMaxFill.
// Frames of other tracks and packets that are not Opus are skipped.
func (m *oggMuxer) WriteFrame(f *media.Frame) error {
	if m.closed {
		return errors.New("ogg: write after close")
	}
	if f.Track != m.track {
		return nil
	}
	n := opusSamples(f.Data)
	if n <= 0 || len(f.Data) > oggMaxPacket {
		m.dropped++
		return nil
	}
	start := max(durationToSamples(f.PTS), 0)
	if m.end >= 0 && start < m.end {
		start = m.end
	}
	if m.end >= 0 && start-m.end <= durationToSamples(oggMaxFill) {
		for start-m.end >= 960 {
			if err := m.add(m.end, oggSilence, 960); err != nil {
				return err
			}
		}
	}
	return m.add(start, f.Data, n)
}

// add puts a packet of n samples starting at sample position start on the
// page, writing the page first when the packet follows a gap or does not
// fit, and after it when the page holds oggPageSpan.
func (m *oggMuxer) add(start int64, p []byte, n int) error {
	gap := m.end >= 0 && start-m.end >= oggGapSamples
	segs := len(p)/255 + 1
	if len(m.segs) > 0 && (gap || len(m.segs)+segs > oggMaxSegments) {
		if err := m.flushPage(0); err != nil {
			return err
		}
	}
	if len(m.segs) == 0 {
		m.first = start
	}
	for range segs - 1 {
		m.segs = append(m.segs, 255)
	}
	m.segs = append(m.segs, byte(len(p)%255))
	m.body = append(m.body, p...)
	m.end = start + int64(n)
	m.granule = m.end
	if m.end-m.first >= durationToSamples(oggPageSpan) {
		return m.flushPage(0)
	}
	return nil
}

// Flush writes the page being filled.
func (m *oggMuxer) Flush() error {
	if m.closed || len(m.segs) == 0 {
		return nil
	}
	return m.flushPage(0)
}

// Close writes the last page with the end-of-stream flag (an empty one when
// no packet is pending).
func (m *oggMuxer) Close() error {
	if m.closed {
		return nil
	}
	m.closed = true
	if m.end < 0 {
		m.granule = 0
	}
	return m.flushPage(oggEOS)
}

// flushPage writes the pending packets as one page.
func (m *oggMuxer) flushPage(flags byte) error {
	err := m.writeRaw(flags, m.granule, m.segs, m.body)
	m.segs, m.body = m.segs[:0], m.body[:0]
	return err
}

// writePage writes packets (each fitting one page) as one page.
func (m *oggMuxer) writePage(flags byte, granule int64, packets [][]byte) error {
	var segs, body []byte
	for _, p := range packets {
		for range len(p) / 255 {
			segs = append(segs, 255)
		}
		segs = append(segs, byte(len(p)%255))
		body = append(body, p...)
	}
	return m.writeRaw(flags, granule, segs, body)
}

// writeRaw writes one page: header, segment table, body, with its CRC.
func (m *oggMuxer) writeRaw(flags byte, granule int64, segs, body []byte) error {
	p := m.page[:0]
	p = append(p, "OggS"...)
	p = append(p, 0, flags) // version 0, header type
	p = binary.LittleEndian.AppendUint64(p, uint64(granule))
	p = binary.LittleEndian.AppendUint32(p, m.serial)
	p = binary.LittleEndian.AppendUint32(p, m.seq)
	p = binary.LittleEndian.AppendUint32(p, 0) // CRC, filled below
	p = append(p, byte(len(segs)))
	p = append(p, segs...)
	p = append(p, body...)
	binary.LittleEndian.PutUint32(p[22:], media.OggChecksum(p))
	m.page = p
	m.seq++
	if _, err := m.w.Write(p); err != nil {
		return fmt.Errorf("ogg: %w", err)
	}
	return nil
}

// durationToSamples converts a duration to 48 kHz samples, rounded.
func durationToSamples(d time.Duration) int64 {
	const ns = int64(time.Second)
	v := int64(d)
	q, r := v/ns, v%ns
	return q*oggRate + (r*oggRate+ns/2)/ns
}

// opusSamples returns the number of 48 kHz samples an Opus packet decodes
// to (RFC 6716 §3.1), or 0 for a packet that is not valid Opus.
func opusSamples(p []byte) int {
	if len(p) == 0 {
		return 0
	}
	toc := p[0]
	var frame int // samples per frame at 48 kHz
	switch cfg := toc >> 3; {
	case cfg < 12: // SILK: 10, 20, 40, 60 ms
		frame = [4]int{480, 960, 1920, 2880}[cfg&3]
	case cfg < 16: // hybrid: 10, 20 ms
		frame = [2]int{480, 960}[cfg&1]
	default: // CELT: 2.5, 5, 10, 20 ms
		frame = [4]int{120, 240, 480, 960}[cfg&3]
	}
	var frames int
	switch toc & 3 {
	case 0:
		frames = 1
	case 1, 2:
		frames = 2
	case 3:
		if len(p) < 2 {
			return 0
		}
		frames = int(p[1] & 0x3f)
	}
	n := frames * frame
	if n == 0 || n > 5760 { // at most 120 ms
		return 0
	}
	return n
}
