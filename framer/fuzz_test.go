package framer

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/pion/rtp"

	"github.com/janusbridge/janusbridge/media"
)

var updateCorpus = flag.Bool("update-corpus", false, "rewrite the seed corpus in testdata/fuzz/FuzzFramer")

// Fuzz input: byte 0 picks the codec (testCodecs), then operations, each
// starting with a byte whose low 3 bits say what it is:
//
//	0-4 packet: seq delta int8, timestamp delta int16 (big-endian), payload
//	    length, payload; op bit 3 = marker, bit 4 = other SSRC, bit 5 =
//	    other payload type, bits 6-7 = arrival step (x7 ms)
//	5   Tick after next byte x4 ms
//	6   sender report: NTP = now + int8 x10 ms, RTP = last timestamp + int8 x100
//	7   time jump of next byte x100 ms
const (
	opPacket = 0
	opTick   = 5
	opSR     = 6
	opJump   = 7
)

// encodeOps turns a packet sequence into a fuzz input (for seeds).
func encodeOps(codec int, pkts []*rtp.Packet) []byte {
	out := []byte{byte(codec)}
	var seq uint16
	var ts uint32
	for i, p := range pkts {
		if i == 0 {
			seq, ts = p.SequenceNumber-1, p.Timestamp
		}
		op := byte(opPacket) | 1<<6
		if p.Marker {
			op |= 1 << 3
		}
		ds, dt := int8(p.SequenceNumber-seq), int16(p.Timestamp-ts)
		seq, ts = p.SequenceNumber, p.Timestamp
		out = append(out, op, byte(ds), byte(uint16(dt)>>8), byte(dt), byte(len(p.Payload)))
		out = append(out, p.Payload...)
		if i%7 == 3 {
			out = append(out, opTick, 10)
		}
		if i == 5 {
			out = append(out, opSR, 3, 0)
		}
	}
	return out
}

func fuzzOne(t *testing.T, data []byte) {
	if len(data) < 1 {
		return
	}
	if len(data) > 1<<13 { // longer inputs add nothing but minimization time
		data = data[:1<<13]
	}
	c := testCodecs[int(data[0])%len(testCodecs)]
	data = data[1:]
	clock := NewClock(t0)
	var last time.Duration
	frames := 0
	f, err := New(c.track, clock, Options{
		OnFrame: func(fr *media.Frame) {
			frames++
			if frames > 1 && fr.PTS < last {
				t.Fatalf("PTS went backwards: %v after %v", fr.PTS, last)
			}
			last = fr.PTS
			if len(fr.Data) == 0 {
				t.Fatal("empty frame")
			}
			if c.track.Codec == media.H264 && !bytes.HasPrefix(fr.Data, []byte{0, 0, 0, 1}) {
				t.Fatalf("H.264 frame without a start code: %x", head(fr.Data))
			}
		},
		OnKeyframeNeeded: func() {},
		RingSize:         64,
	})
	if err != nil {
		t.Fatal(err)
	}
	now := t0
	var seq uint16 = 1000
	var ts uint32 = 0xfffff000
	next := func() byte {
		if len(data) == 0 {
			return 0
		}
		b := data[0]
		data = data[1:]
		return b
	}
	for len(data) > 0 {
		op := next()
		switch op & 7 {
		case opTick:
			now = now.Add(time.Duration(next()) * 4 * time.Millisecond)
			f.Tick(now)
		case opSR:
			ntp := now.Add(time.Duration(int8(next())) * 10 * time.Millisecond)
			f.SenderReport(ntpOf(ntp), ts+uint32(int32(int8(next()))*100))
		case opJump:
			now = now.Add(time.Duration(next()) * 100 * time.Millisecond)
		default:
			seq += uint16(int16(int8(next())))
			ts += uint32(int32(int16(uint16(next())<<8 | uint16(next()))))
			n := int(next())
			n = min(n, len(data))
			payload := append([]byte(nil), data[:n]...)
			data = data[n:]
			p := &rtp.Packet{Header: rtp.Header{
				Version: 2, SequenceNumber: seq, Timestamp: ts, SSRC: 1,
				Marker: op&(1<<3) != 0, PayloadType: c.track.PayloadType,
			}, Payload: payload}
			if op&(1<<4) != 0 {
				p.SSRC = 2
			}
			if op&(1<<5) != 0 {
				p.PayloadType++
			}
			now = now.Add(time.Duration(op>>6) * 7 * time.Millisecond)
			f.Push(p, now)
			// The caller may reuse the payload: the framer must not keep it.
			for i := range payload {
				payload[i] = 0xa5
			}
		}
	}
	f.Flush()
	if st := f.Stats(); st.Frames != uint64(frames) {
		t.Fatalf("stats count %d frames, %d emitted", st.Frames, frames)
	}
}

func FuzzFramer(f *testing.F) {
	f.Fuzz(fuzzOne)
}

// seedInputs are the inputs of the committed corpus: a clean, a
// reordered and a lossy stream of every codec.
func seedInputs() map[string][]byte {
	seeds := map[string][]byte{}
	for ci, c := range testCodecs {
		s := &stream{ssrc: 1, seq: 1000, ts: 0xfffff000, pt: c.track.PayloadType}
		frames, _ := genStream(c, s, 8, 4)
		var pk []*rtp.Packet
		for _, fr := range frames {
			pk = append(pk, fr...)
		}
		seeds[c.name+"-clean"] = encodeOps(ci, pk)
		re := append([]*rtp.Packet(nil), pk...)
		for i := 1; i+1 < len(re); i += 4 {
			re[i], re[i+1] = re[i+1], re[i]
		}
		seeds[c.name+"-reordered"] = encodeOps(ci, re)
		lossy := append(append([]*rtp.Packet(nil), pk[:len(pk)/3]...), pk[len(pk)/3+1:]...)
		seeds[c.name+"-lossy"] = encodeOps(ci, lossy)
	}
	return seeds
}

// TestFuzzSeeds runs the seeds (and rewrites the committed corpus with
// -update-corpus).
func TestFuzzSeeds(t *testing.T) {
	seeds := seedInputs()
	for name, data := range seeds {
		t.Run(name, func(t *testing.T) { fuzzOne(t, data) })
	}
	if !*updateCorpus {
		return
	}
	dir := filepath.Join("testdata", "fuzz", "FuzzFramer")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, data := range seeds {
		body := fmt.Sprintf("go test fuzz v1\n[]byte(%q)\n", data)
		if err := os.WriteFile(filepath.Join(dir, "seed-"+name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
