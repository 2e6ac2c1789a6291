package framer

import (
	"bytes"
	"testing"

	"github.com/janusbridge/janusbridge/media"
)

var av1Track = media.Track{Kind: "video", Codec: media.AV1, ClockRate: 90000, PayloadType: 45}

// elem is an OBU element as RTP carries it: header and payload, no size.
func elem(hdr []byte, payload []byte) []byte { return append(append([]byte(nil), hdr...), payload...) }

// withLen prefixes an element with its LEB128 length.
func withLen(e []byte) []byte {
	var leb [10]byte
	n := putLeb128(leb[:], uint64(len(e)))
	return append(leb[:n:n], e...)
}

func cat(bs ...[]byte) []byte {
	var out []byte
	for _, b := range bs {
		out = append(out, b...)
	}
	return out
}

func TestAV1Depacketize(t *testing.T) {
	seqPayload := mustHex("000000024fff6bf38c0080")
	keyPayload := append([]byte{0x10}, filler(1, 400)...) // KEY_FRAME, shown
	interPayload := append([]byte{0x30}, filler(2, 90)...)
	keyOBU := elem([]byte{0x30}, keyPayload)         // OBU_FRAME
	seqOBU := elem([]byte{0x08}, seqPayload)         // OBU_SEQUENCE_HEADER
	tdOBU := []byte{0x10}                            // OBU_TEMPORAL_DELIMITER
	padOBU := elem([]byte{0x78}, []byte{0, 0})       // OBU_PADDING
	extOBU := elem([]byte{0x34, 0x48}, interPayload) // OBU_FRAME with extension (temporal 2, spatial 1)

	wantSeq := av1OBU(1, seqPayload)
	wantKey := av1OBU(6, keyPayload)
	wantInter := av1OBU(6, interPayload)
	wantExt := cat([]byte{0x36, 0x48}, []byte{byte(len(interPayload))}, interPayload)

	for _, tc := range []struct {
		name    string
		frames  [][][]byte
		want    [][]byte
		key     []bool
		invalid bool
		skipped uint64
	}{
		{
			name: "fragmented key frame, then inter frames",
			frames: [][][]byte{
				{
					// N, Y, W=0: TD, sequence header, start of the frame
					cat([]byte{0x48}, withLen(tdOBU), withLen(seqOBU), withLen(keyOBU[:100])),
					cat([]byte{0xd0}, keyOBU[100:300]), // Z, Y, W=1
					cat([]byte{0x90}, keyOBU[300:]),    // Z, W=1
				},
				{cat([]byte{0x10}, elem([]byte{0x30}, interPayload))},                  // W=1
				{cat([]byte{0x20}, withLen(padOBU), elem([]byte{0x30}, interPayload))}, // W=2
			},
			want: [][]byte{cat(wantSeq, wantKey), wantInter, wantInter},
			key:  []bool{true, false, false},
		},
		{
			name: "sizes kept, extension headers",
			frames: [][][]byte{
				{cat([]byte{0x08}, withLen(seqOBU), withLen(keyOBU))},
				// an OBU that carries its own size (and bytes after it)
				{cat([]byte{0x10}, wantInter, []byte{0xee, 0xee})},
				{cat([]byte{0x10}, extOBU)},
			},
			want: [][]byte{cat(wantSeq, wantKey), wantInter, wantExt},
			key:  []bool{true, false, false},
		},
		{
			name: "sequence header remembered for a later key frame",
			frames: [][][]byte{
				{cat([]byte{0x08}, withLen(seqOBU), withLen(keyOBU))},
				{cat([]byte{0x10}, keyOBU)},
			},
			want: [][]byte{cat(wantSeq, wantKey), cat(wantSeq, wantKey)},
			key:  []bool{true, true},
		},
		{
			name: "key frame with no sequence header ever",
			// (The first TU is dropped: a stream's first packet must prove
			// that it starts a TU. The key frame then cannot be decoded.)
			frames: [][][]byte{
				{cat([]byte{0x10}, elem([]byte{0x30}, interPayload))},
				{cat([]byte{0x10}, keyOBU)},
				{cat([]byte{0x10}, elem([]byte{0x30}, interPayload))},
			},
			skipped: 2,
		},
		{
			name: "still picture",
			frames: [][][]byte{
				{cat([]byte{0x08}, withLen(elem([]byte{0x08}, []byte{0x18, 0x00})), withLen(elem([]byte{0x30}, []byte{0xff, 0x01})))},
			},
			want: [][]byte{cat(av1OBU(1, []byte{0x18, 0x00}), av1OBU(6, []byte{0xff, 0x01}))},
			key:  []bool{true},
		},
		{
			name: "continuation without a start",
			frames: [][][]byte{
				{cat([]byte{0x08}, withLen(seqOBU), withLen(keyOBU))},
				{cat([]byte{0x10}, elem([]byte{0x30}, interPayload))},
				{cat([]byte{0x90}, keyOBU[300:])},
			},
			want:    [][]byte{cat(wantSeq, wantKey), wantInter},
			key:     []bool{true, false},
			invalid: true, // Z on the first packet: not a frame start
		},
		{
			name: "fragment that never ends",
			frames: [][][]byte{
				{cat([]byte{0x08}, withLen(seqOBU), withLen(keyOBU))},
				{cat([]byte{0x50}, keyOBU[:100]), cat([]byte{0x10}, keyOBU)},
			},
			want:    [][]byte{cat(wantSeq, wantKey)},
			key:     []bool{true},
			invalid: true,
		},
		{
			name: "length past the end",
			frames: [][][]byte{
				{cat([]byte{0x08}, withLen(seqOBU), withLen(keyOBU))},
				{cat([]byte{0x00}, []byte{0x7f, 0x30, 0x01})},
			},
			want:    [][]byte{cat(wantSeq, wantKey)},
			key:     []bool{true},
			invalid: true,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, st := runPayloads(t, av1Track, tc.frames)
			if len(got) != len(tc.want) {
				t.Fatalf("%d frames, want %d; stats %+v", len(got), len(tc.want), st)
			}
			for i := range got {
				if !bytes.Equal(got[i].Data, tc.want[i]) {
					t.Errorf("frame %d:\n got %x\nwant %x", i, head(got[i].Data), head(tc.want[i]))
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

func TestAV1Start(t *testing.T) {
	d := &av1{}
	seq := elem([]byte{0x08}, []byte{0, 0})
	frame := elem([]byte{0x30}, []byte{0x30, 1})
	for _, tc := range []struct {
		payload   []byte
		afterLoss bool
		want      bool
	}{
		{cat([]byte{0x10}, frame), false, true},
		{cat([]byte{0x10}, frame), true, false},       // could be mid-TU
		{cat([]byte{0x18}, frame), true, true},        // N
		{cat([]byte{0x00}, withLen(seq)), true, true}, // W=0, sequence header first
		{cat([]byte{0x10}, seq), true, true},          // W=1
		{cat([]byte{0x90}, frame), false, false},      // Z
		{[]byte{0x00, 0x85}, true, false},             // unterminated length
		{[]byte{0x10}, false, false},
	} {
		if got := d.start(tc.payload, tc.afterLoss); got != tc.want {
			t.Errorf("start(%x, %v) = %v", tc.payload, tc.afterLoss, got)
		}
	}
}
