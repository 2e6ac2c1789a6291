package framer

import (
	"bytes"
	"encoding/hex"
	"testing"
	"time"

	"github.com/pion/rtp"
	"github.com/pion/rtp/codecs"

	"github.com/janusbridge/janusbridge/media"
)

// t0 is the epoch of the tests' clocks.
var t0 = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

// collector gathers a Framer's output.
type collector struct {
	frames  []*media.Frame
	keyReqs int
}

func newFramer(t testing.TB, c *Clock, tr media.Track, o Options) (*Framer, *collector) {
	t.Helper()
	col := &collector{}
	o.OnFrame = func(fr *media.Frame) { col.frames = append(col.frames, fr) }
	o.OnKeyframeNeeded = func() { col.keyReqs++ }
	f, err := New(tr, c, o)
	if err != nil {
		t.Fatal(err)
	}
	return f, col
}

// stream numbers packets like a sender.
type stream struct {
	ssrc uint32
	seq  uint16
	ts   uint32
	pt   uint8
}

// packets turns the payloads of one frame into packets at the current
// timestamp (marker on the last) and advances the timestamp by step.
func (s *stream) packets(payloads [][]byte, step uint32) []*rtp.Packet {
	out := make([]*rtp.Packet, 0, len(payloads))
	for i, pl := range payloads {
		out = append(out, &rtp.Packet{
			Header: rtp.Header{
				Version: 2, PayloadType: s.pt, SequenceNumber: s.seq, Timestamp: s.ts,
				SSRC: s.ssrc, Marker: i == len(payloads)-1,
			},
			Payload: pl,
		})
		s.seq++
	}
	s.ts += step
	return out
}

// timed is a packet and its arrival.
type timed struct {
	p  *rtp.Packet
	at time.Time
}

func mustHex(s string) []byte {
	b, err := hex.DecodeString(s)
	if err != nil {
		panic(err)
	}
	return b
}

// Real libvpx output (64x48): the start of a key frame and a whole inter
// frame.
var (
	vp8KeyPrefix = mustHex("1025009d012a4000300000470885858885848802020275ba")
	vp8Inter     = mustHex("d101000510ac00180018582ff40024470000")
)

// filler returns n deterministic bytes depending on seed.
func filler(seed, n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(seed*31 + i*7 + 1)
	}
	return b
}

// codecCase describes how to make frames of one codec for table tests.
type codecCase struct {
	name  string
	track media.Track
	step  uint32 // timestamp step per frame
	// frame returns the RTP payloads of frame i and the frame the Framer
	// must output for them.
	frame func(i int, key bool) (payloads [][]byte, want []byte)
}

func (c codecCase) audio() bool { return media.KindOf(c.track.Codec) == "audio" }

const testMTU = 120

func vp8Frame(i int, key bool) []byte {
	if key {
		return append(append([]byte(nil), vp8KeyPrefix...), filler(i, 300)...)
	}
	return append(append([]byte(nil), vp8Inter...), filler(i, 200)...)
}

func annexB(nals ...[]byte) []byte {
	var b []byte
	for _, n := range nals {
		b = append(b, 0, 0, 0, 1)
		b = append(b, n...)
	}
	return b
}

var (
	testSPS = mustHex("6742c00dd90141fb0110000003001000000303")
	testPPS = mustHex("68cb83cb20")
)

func h264Slice(i int, key bool) []byte {
	if key {
		return append([]byte{0x65, 0x88}, filler(i, 300)...)
	}
	return append([]byte{0x41, 0x9a}, filler(i, 200)...)
}

// vp9 frame: an uncompressed header byte for key / inter frames.
func vp9Frame(i int, key bool) []byte {
	if key {
		return append([]byte{0x82, 0x49, 0x83, 0x42}, filler(i, 300)...)
	}
	return append([]byte{0x86}, filler(i, 200)...)
}

// vp9Payloads packetizes a frame in non-flexible mode, one spatial layer.
func vp9Payloads(frame []byte, key bool, pid uint16, mtu int) [][]byte {
	var out [][]byte
	for off := 0; off < len(frame); {
		n := min(mtu-5, len(frame)-off)
		h := byte(0x80 | 0x20) // I, L
		if !key {
			h |= 0x40
		}
		if off == 0 {
			h |= 0x08
		}
		if off+n == len(frame) {
			h |= 0x04
		}
		pl := []byte{h, 0x80 | byte(pid>>8), byte(pid), 0x00, 0x00}
		out = append(out, append(pl, frame[off:off+n]...))
		off += n
	}
	return out
}

// av1 OBUs in the low-overhead format.
func av1OBU(typ byte, payload []byte) []byte {
	var leb [10]byte
	n := putLeb128(leb[:], uint64(len(payload)))
	o := []byte{typ<<3 | 0x02}
	o = append(o, leb[:n]...)
	return append(o, payload...)
}

var av1SeqHeader = av1OBU(1, mustHex("000000024fff6bf38c0080"))

func av1TU(i int, key bool) []byte {
	if key {
		return append(append([]byte(nil), av1SeqHeader...), av1OBU(6, append([]byte{0x10}, filler(i, 300)...))...)
	}
	return av1OBU(6, append([]byte{0x30}, filler(i, 200)...))
}

var testCodecs = []codecCase{
	{
		name:  "vp8",
		track: media.Track{Kind: "video", Codec: media.VP8, ClockRate: 90000, PayloadType: 96},
		step:  3600,
		frame: func(i int, key bool) ([][]byte, []byte) {
			f := vp8Frame(i, key)
			pl := (&codecs.VP8Payloader{EnablePictureID: true}).Payload(testMTU, f)
			return pl, f
		},
	},
	{
		name:  "vp9",
		track: media.Track{Kind: "video", Codec: media.VP9, ClockRate: 90000, PayloadType: 98},
		step:  3600,
		frame: func(i int, key bool) ([][]byte, []byte) {
			f := vp9Frame(i, key)
			return vp9Payloads(f, key, uint16(i), testMTU), f
		},
	},
	{
		name:  "h264",
		track: media.Track{Kind: "video", Codec: media.H264, ClockRate: 90000, PayloadType: 102},
		step:  3600,
		frame: func(i int, key bool) ([][]byte, []byte) {
			var au []byte
			if key {
				au = annexB(testSPS, testPPS, h264Slice(i, true))
			} else {
				au = annexB(h264Slice(i, false))
			}
			return (&codecs.H264Payloader{}).Payload(testMTU, au), au
		},
	},
	{
		name:  "av1",
		track: media.Track{Kind: "video", Codec: media.AV1, ClockRate: 90000, PayloadType: 45},
		step:  3600,
		frame: func(i int, key bool) ([][]byte, []byte) {
			tu := av1TU(i, key)
			return (&codecs.AV1Payloader{}).Payload(testMTU, tu), tu
		},
	},
	{
		name:  "opus",
		track: media.Track{Kind: "audio", Codec: media.Opus, ClockRate: 48000, Channels: 2, PayloadType: 111},
		step:  960,
		frame: func(i int, _ bool) ([][]byte, []byte) {
			f := append([]byte{0xfc}, filler(i, 60)...)
			return [][]byte{f}, f
		},
	},
	{
		name:  "pcmu",
		track: media.Track{Kind: "audio", Codec: media.PCMU, ClockRate: 8000, PayloadType: 0},
		step:  160,
		frame: func(i int, _ bool) ([][]byte, []byte) {
			f := filler(i, 160)
			return [][]byte{f}, f
		},
	},
	{
		name:  "pcma",
		track: media.Track{Kind: "audio", Codec: media.PCMA, ClockRate: 8000, PayloadType: 8},
		step:  160,
		frame: func(i int, _ bool) ([][]byte, []byte) {
			f := filler(i, 160)
			return [][]byte{f}, f
		},
	},
}

// genStream makes n frames of a codec (keyframes at 0, keyEvery, ...),
// returning the packets per frame and the expected frames.
func genStream(c codecCase, s *stream, n, keyEvery int) (frames [][]*rtp.Packet, want [][]byte) {
	for i := 0; i < n; i++ {
		pl, w := c.frame(i, i%keyEvery == 0)
		frames = append(frames, s.packets(pl, c.step))
		want = append(want, w)
	}
	return frames, want
}

// schedule gives the packets of the frames arrival times: frame i arrives at
// start + i*frameDur, its packets 100 µs apart.
func schedule(frames [][]*rtp.Packet, start time.Time, frameDur time.Duration) []timed {
	var out []timed
	for i, fr := range frames {
		for j, p := range fr {
			out = append(out, timed{p, start.Add(time.Duration(i)*frameDur + time.Duration(j)*100*time.Microsecond)})
		}
	}
	return out
}

func frameDur(c codecCase) time.Duration {
	return time.Duration(int64(c.step) * int64(time.Second) / int64(c.track.ClockRate))
}

// checkFrames compares the output with the expected frames, by index.
func checkFrames(t *testing.T, got []*media.Frame, want [][]byte, idx []int) {
	t.Helper()
	if len(got) != len(idx) {
		t.Fatalf("got %d frames, want %d (%v)", len(got), len(idx), idx)
	}
	for k, i := range idx {
		if !bytes.Equal(got[k].Data, want[i]) {
			t.Fatalf("frame %d (input %d): data differs:\n got %x\nwant %x", k, i, head(got[k].Data), head(want[i]))
		}
		if k > 0 && got[k].PTS < got[k-1].PTS {
			t.Fatalf("frame %d: PTS %v before %v", k, got[k].PTS, got[k-1].PTS)
		}
	}
}

func head(b []byte) []byte {
	if len(b) > 48 {
		return b[:48]
	}
	return b
}

func seqRange(from, to int) []int {
	var r []int
	for i := from; i < to; i++ {
		r = append(r, i)
	}
	return r
}
