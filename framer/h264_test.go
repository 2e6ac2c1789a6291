package framer

import (
	"bytes"
	"encoding/base64"
	"testing"
	"time"

	"github.com/janusbridge/janusbridge/media"
)

// runPayloads pushes frames (each a list of RTP payloads, marker on the
// last) 40 ms apart into a new Framer and returns its output.
func runPayloads(t *testing.T, tr media.Track, frames [][][]byte) ([]*media.Frame, Stats) {
	t.Helper()
	f, col := newFramer(t, NewClock(t0), tr, Options{})
	s := &stream{ssrc: 9, seq: 65534, ts: 4000000000, pt: tr.PayloadType}
	at := t0
	for _, pl := range frames {
		for _, p := range s.packets(pl, 3600) {
			f.Push(p, at)
		}
		at = at.Add(40 * time.Millisecond)
	}
	f.Tick(at.Add(time.Second))
	return col.frames, f.Stats()
}

var h264Track = media.Track{Kind: "video", Codec: media.H264, ClockRate: 90000, PayloadType: 102}

func stapA(nals ...[]byte) []byte {
	b := []byte{0x18}
	for _, n := range nals {
		b = append(b, byte(len(n)>>8), byte(len(n)))
		b = append(b, n...)
	}
	return b
}

// fuA splits a NAL unit into n FU-A payloads.
func fuA(nal []byte, n int) [][]byte {
	body := nal[1:]
	var out [][]byte
	for i := 0; i < n; i++ {
		part := body[i*len(body)/n : (i+1)*len(body)/n]
		h := nal[0] & 0x1f
		if i == 0 {
			h |= 0x80
		}
		if i == n-1 {
			h |= 0x40
		}
		out = append(out, append([]byte{nal[0]&0xe0 | 28, h}, part...))
	}
	return out
}

func TestH264Reassembly(t *testing.T) {
	idr := h264Slice(1, true)
	idr2 := append([]byte{0x65, 0x88}, filler(9, 40)...)
	inter := h264Slice(2, false)
	sei := mustHex("0605ff0102")
	aud := []byte{0x09, 0xf0}
	for _, tc := range []struct {
		name     string
		frames   [][][]byte
		want     [][]byte // output frames
		key      []bool
		invalid  bool
		skipped  uint64
		requests bool
	}{
		{
			name:   "STAP-A parameter sets, FU-A IDR, single NAL inter",
			frames: [][][]byte{append([][]byte{stapA(testSPS, testPPS)}, fuA(idr, 3)...), {inter}},
			want:   [][]byte{annexB(testSPS, testPPS, idr), annexB(inter)},
			key:    []bool{true, false},
		},
		{
			name:   "everything in one STAP-A",
			frames: [][][]byte{{stapA(aud, testSPS, testPPS, sei, idr2)}},
			want:   [][]byte{annexB(aud, testSPS, testPPS, sei, idr2)},
			key:    []bool{true},
		},
		{
			name: "IDR without parameter sets gets the last ones",
			frames: [][][]byte{
				{stapA(testSPS, testPPS), idr2}, {inter}, fuA(idr, 2),
			},
			want: [][]byte{annexB(testSPS, testPPS, idr2), annexB(inter), annexB(testSPS, testPPS, idr)},
			key:  []bool{true, false, true},
		},
		{
			name: "behind an AUD, and only the missing PPS",
			frames: [][][]byte{
				{stapA(testSPS, testPPS), idr2}, {aud, idr2}, {testSPS, sei, idr2},
			},
			want: [][]byte{
				annexB(testSPS, testPPS, idr2),
				annexB(aud, testSPS, testPPS, idr2),
				annexB(testSPS, testPPS, sei, idr2),
			},
			key: []bool{true, true, true},
		},
		{
			name:     "IDR no decoder can start from",
			frames:   [][][]byte{{idr2}, {inter}},
			skipped:  2,
			requests: true,
		},
		{
			name:    "FU-A without its start",
			frames:  [][][]byte{{stapA(testSPS, testPPS), idr2}, fuA(idr, 3)[1:]},
			want:    [][]byte{annexB(testSPS, testPPS, idr2)},
			key:     []bool{true},
			invalid: true,
		},
		{
			name:    "FU-A without its end",
			frames:  [][][]byte{{stapA(testSPS, testPPS), idr2}, fuA(idr, 3)[:2]},
			want:    [][]byte{annexB(testSPS, testPPS, idr2)},
			key:     []bool{true},
			invalid: true,
		},
		{
			name:    "FU-A start inside an FU-A",
			frames:  [][][]byte{{stapA(testSPS, testPPS), idr2}, append(fuA(idr, 3)[:1], fuA(idr, 3)...)},
			want:    [][]byte{annexB(testSPS, testPPS, idr2)},
			key:     []bool{true},
			invalid: true,
		},
		{
			name:    "STAP-A length past the end",
			frames:  [][][]byte{{stapA(testSPS, testPPS), idr2}, {append(stapA(inter), 0, 9, 1)}},
			want:    [][]byte{annexB(testSPS, testPPS, idr2)},
			key:     []bool{true},
			invalid: true,
		},
		{
			name:    "interleaved mode types",
			frames:  [][][]byte{{stapA(testSPS, testPPS), idr2}, {{0x19, 0, 1, 2}}, {{0x1a, 0, 1}}, {{0x1d, 0x85, 1}}},
			want:    [][]byte{annexB(testSPS, testPPS, idr2)},
			key:     []bool{true},
			invalid: true,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, st := runPayloads(t, h264Track, tc.frames)
			if len(got) != len(tc.want) {
				t.Fatalf("%d frames, want %d; stats %+v", len(got), len(tc.want), st)
			}
			for i := range got {
				if !bytes.Equal(got[i].Data, tc.want[i]) {
					t.Errorf("frame %d:\n got %x\nwant %x", i, got[i].Data, tc.want[i])
				}
				if got[i].Keyframe != tc.key[i] {
					t.Errorf("frame %d: keyframe %v", i, got[i].Keyframe)
				}
			}
			if (st.Invalid > 0) != tc.invalid || st.SkippedFrames != tc.skipped {
				t.Errorf("stats %+v", st)
			}
		})
	}
}

// TestH264Sprop: parameter sets announced only in the SDP.
func TestH264Sprop(t *testing.T) {
	tr := h264Track
	tr.Fmtp = "profile-level-id=42e01f;packetization-mode=1;sprop-parameter-sets=" +
		base64.StdEncoding.EncodeToString(testSPS) + "," + base64.StdEncoding.EncodeToString(testPPS)
	idr := h264Slice(1, true)
	got, _ := runPayloads(t, tr, [][][]byte{fuA(idr, 2)})
	if len(got) != 1 || !got[0].Keyframe || !bytes.Equal(got[0].Data, annexB(testSPS, testPPS, idr)) {
		t.Fatalf("got %d frames %+v", len(got), got)
	}
}

func TestH264Start(t *testing.T) {
	d := &h264{}
	for _, tc := range []struct {
		payload []byte
		want    bool
	}{
		{[]byte{0x65, 0x88}, true},  // IDR, first_mb_in_slice 0
		{[]byte{0x65, 0x48}, false}, // IDR, a later slice
		{[]byte{0x41, 0x9a}, true},
		{[]byte{0x67, 0x42}, true},
		{[]byte{0x09, 0xf0}, true},
		{[]byte{0x0c, 0xff}, false}, // filler data
		{stapA(testSPS, testPPS), true},
		{fuA(h264Slice(1, true), 2)[0], true},
		{fuA(h264Slice(1, true), 2)[1], false},
		{[]byte{0x7c, 0x85}, false}, // FU-A start with no data
		{[]byte{0x18, 0x00}, false},
		{[]byte{0x19, 0x00, 0x01}, false},
	} {
		if got := d.start(tc.payload, true); got != tc.want {
			t.Errorf("start(%x) = %v", tc.payload, got)
		}
	}
}
