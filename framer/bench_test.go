package framer

import (
	"runtime"
	"testing"
	"time"

	"github.com/pion/rtp"
	"github.com/pion/rtp/codecs"

	"github.com/janusbridge/janusbridge/media"
)

// benchGOP makes one group of pictures (25 frames, the first a keyframe) of
// a codec with realistic sizes at a 1200-byte MTU: video frames of 6 KB
// (keyframe 30 KB), i.e. 6 and 26 packets.
func benchGOP(codec string) (media.Track, [][]*rtp.Packet, uint32) {
	var c codecCase
	for _, cc := range testCodecs {
		if cc.track.Codec == codec {
			c = cc
		}
	}
	s := &stream{ssrc: 1, seq: 1, ts: 1, pt: c.track.PayloadType}
	var frames [][]*rtp.Packet
	for i := 0; i < 25; i++ {
		key := i == 0
		size := 6000
		if key {
			size = 30000
		}
		var pl [][]byte
		switch codec {
		case media.VP8:
			f := vp8Frame(i, key)
			f = append(f, filler(i, size-len(f))...)
			pl = (&codecs.VP8Payloader{EnablePictureID: true}).Payload(1200, f)
		case media.VP9:
			f := vp9Frame(i, key)
			f = append(f, filler(i, size-len(f))...)
			pl = vp9Payloads(f, key, uint16(i), 1200)
		case media.H264:
			slice := h264Slice(i, key)
			slice = append(slice, filler(i, size-len(slice))...)
			au := annexB(slice)
			if key {
				au = annexB(testSPS, testPPS, slice)
			}
			pl = (&codecs.H264Payloader{}).Payload(1200, au)
		case media.AV1:
			tu := av1OBU(6, append([]byte{0x30}, filler(i, size)...))
			if key {
				tu = append(append([]byte(nil), av1SeqHeader...), av1OBU(6, append([]byte{0x10}, filler(i, size)...))...)
			}
			pl = (&codecs.AV1Payloader{}).Payload(1200, tu)
		default:
			pl, _ = c.frame(i, key)
		}
		frames = append(frames, s.packets(pl, c.step))
	}
	return c.track, frames, c.step
}

func benchPush(b *testing.B, codec string, reorder bool) {
	tr, gop, step := benchGOP(codec)
	var pk []*rtp.Packet
	var frameOf []int
	for i, fr := range gop {
		pk = append(pk, fr...)
		for range fr {
			frameOf = append(frameOf, i)
		}
	}
	if reorder { // swap every other pair
		for i := 0; i+1 < len(pk); i += 4 {
			pk[i], pk[i+1] = pk[i+1], pk[i]
			frameOf[i], frameOf[i+1] = frameOf[i+1], frameOf[i]
		}
	}
	frames := 0
	f, err := New(tr, NewClock(t0), Options{OnFrame: func(*media.Frame) { frames++ }})
	if err != nil {
		b.Fatal(err)
	}
	// Originals: each lap rewrites sequence numbers and timestamps.
	seq0 := make([]uint16, len(pk))
	ts0 := make([]uint32, len(pk))
	for i, p := range pk {
		seq0[i], ts0[i] = p.SequenceNumber, p.Timestamp
	}
	frameDur := time.Duration(int64(step) * int64(time.Second) / int64(tr.ClockRate))
	n := len(pk)
	push := func(i int) {
		lap, k := i/n, i%n
		p := pk[k]
		p.SequenceNumber = seq0[k] + uint16(lap*n)
		p.Timestamp = ts0[k] + uint32(lap*25)*step
		f.Push(p, t0.Add(time.Duration(lap*25+frameOf[k])*frameDur))
	}
	for i := 0; i < 2*n; i++ { // warm the buffers
		push(i)
	}
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	frames = 0
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		push(2*n + i)
	}
	b.StopTimer()
	runtime.ReadMemStats(&after)
	if frames > 0 {
		b.ReportMetric(float64(after.Mallocs-before.Mallocs)/float64(frames), "allocs/frame")
		b.ReportMetric(float64(b.N)/float64(frames), "packets/frame")
	}
}

func BenchmarkPushVP8(b *testing.B)          { benchPush(b, media.VP8, false) }
func BenchmarkPushVP8Reordered(b *testing.B) { benchPush(b, media.VP8, true) }
func BenchmarkPushVP9(b *testing.B)          { benchPush(b, media.VP9, false) }
func BenchmarkPushH264(b *testing.B)         { benchPush(b, media.H264, false) }
func BenchmarkPushAV1(b *testing.B)          { benchPush(b, media.AV1, false) }
func BenchmarkPushOpus(b *testing.B)         { benchPush(b, media.Opus, false) }

// TestPushAllocs: steady state costs the two allocations of an emitted
// frame (the Frame and its Data) and nothing per packet, reordered or not.
func TestPushAllocs(t *testing.T) {
	if testing.Short() {
		t.Skip("allocation counting")
	}
	for _, codec := range []string{media.VP8, media.VP9, media.H264, media.AV1, media.Opus} {
		for _, reorder := range []bool{false, true} {
			tr, gop, step := benchGOP(codec)
			frames := 0
			f, _ := New(tr, NewClock(t0), Options{OnFrame: func(*media.Frame) { frames++ }})
			n := 0
			seq0 := map[*rtp.Packet]uint16{}
			ts0 := map[*rtp.Packet]uint32{}
			for _, fr := range gop {
				for _, p := range fr {
					seq0[p], ts0[p] = p.SequenceNumber, p.Timestamp
					n++
				}
			}
			// Packets are reused lap after lap with new numbers, as a
			// reader reusing its packet would.
			order := make([][]*rtp.Packet, len(gop))
			for i, fr := range gop {
				order[i] = fr
				if reorder && len(fr) > 2 {
					order[i] = append([]*rtp.Packet{fr[1], fr[0]}, fr[2:]...)
				}
			}
			lap := 0
			run := func() {
				for i, pk := range order {
					for _, p := range pk {
						p.SequenceNumber = seq0[p] + uint16(lap*n)
						p.Timestamp = ts0[p] + uint32(lap*25)*step
						f.Push(p, t0.Add(time.Duration(lap*25+i)*40*time.Millisecond))
					}
				}
				lap++
			}
			run()
			run()
			frames = 0
			allocs := testing.AllocsPerRun(5, run)
			perFrame := allocs / 25
			t.Logf("%s reorder=%v: %.2f allocations per frame, %d frames", codec, reorder, perFrame, frames)
			if perFrame > 2 {
				t.Errorf("%s reorder=%v: %.2f allocations per frame, want 2", codec, reorder, perFrame)
			}
		}
	}
}
