package framer

import (
	"bytes"
	"testing"

	"github.com/janusbridge/janusbridge/media"
)

var vp9Track = media.Track{Kind: "video", Codec: media.VP9, ClockRate: 90000, PayloadType: 98}

func TestVP9Descriptor(t *testing.T) {
	for _, tc := range []struct {
		name string
		b    []byte
		want vp9Desc
		err  bool
	}{
		{"minimal", []byte{0x0c}, vp9Desc{n: 1, b: true, e: true}, false},
		{"7-bit picture id", []byte{0x88, 0x05}, vp9Desc{n: 2, b: true}, false},
		{"15-bit picture id, layers, non-flexible", []byte{0xe8, 0x80, 0x01, 0x02, 0x33}, vp9Desc{n: 5, p: true, l: true, b: true, sid: 1}, false},
		{"flexible, two reference indices", []byte{0xd8, 0x05, 0x03, 0x04}, vp9Desc{n: 4, p: true, b: true}, false},
		{"flexible, four reference indices", []byte{0xd8, 0x05, 0x03, 0x03, 0x03, 0x02}, vp9Desc{}, true},
		{"scalability structure with sizes and groups", []byte{0x8a, 0x05,
			0x38,                   // N_S=1 (2 layers), Y, G
			0x01, 0x40, 0x00, 0xf0, // 320x240
			0x02, 0x80, 0x01, 0xe0, // 640x480
			0x02,       // N_G=2
			0x04, 0x01, // T=0 U=0 R=1, one P_DIFF
			0x28, 0x01, 0x02, // T=1 U=0 R=2, two P_DIFFs
		}, vp9Desc{n: 17, b: true}, false},
		{"scalability structure cut short", []byte{0x8a, 0x05, 0x38, 0x01}, vp9Desc{}, true},
		{"empty", nil, vp9Desc{}, true},
	} {
		got, err := parseVP9(tc.b)
		if (err != nil) != tc.err || (!tc.err && got != tc.want) {
			t.Errorf("%s: got %+v, %v; want %+v", tc.name, got, err, tc.want)
		}
	}
}

func TestVP9KeyHeader(t *testing.T) {
	for _, tc := range []struct {
		b    byte
		want bool
	}{
		{0x82, true},  // profile 0 key frame
		{0x86, false}, // profile 0 inter frame
		{0x88, false}, // show_existing_frame
		{0xb1, true},  // profile 3: reserved bit, then show_existing 0, key
		{0xb3, false}, // profile 3 inter
		{0x42, false}, // bad frame marker
	} {
		if got := vp9KeyHeader([]byte{tc.b}); got != tc.want {
			t.Errorf("%#x: %v", tc.b, got)
		}
	}
}

// TestVP9Superframe: two spatial layers of one picture become a superframe.
func TestVP9Superframe(t *testing.T) {
	l0 := vp9Frame(1, true)
	l1 := append([]byte{0x82}, filler(2, 300)...)
	// L=1 non-flexible: TID/U/SID/D then TL0PICIDX.
	pkt := func(h byte, sid byte, data []byte) []byte {
		return append([]byte{h | 0x20, sid << 1, 0}, data...)
	}
	frames := [][][]byte{{
		pkt(0x08, 0, l0[:100]), pkt(0x04, 0, l0[100:]), // B, E of layer 0
		pkt(0x08, 1, l1[:150]), pkt(0x04, 1, l1[150:]), // layer 1
	}}
	got, st := runPayloads(t, vp9Track, frames)
	if len(got) != 1 {
		t.Fatalf("%d frames, stats %+v", len(got), st)
	}
	want := append(append(append([]byte(nil), l0...), l1...),
		0xc9, byte(len(l0)), byte(len(l0)>>8), byte(len(l1)), byte(len(l1)>>8), 0xc9)
	if !bytes.Equal(got[0].Data, want) || !got[0].Keyframe {
		t.Errorf("got key=%v %x", got[0].Keyframe, got[0].Data[len(got[0].Data)-8:])
	}
	// A picture starting at layer 1 (layer 0 not sent) is not a start.
	got, _ = runPayloads(t, vp9Track, [][][]byte{frames[0][2:]})
	if len(got) != 0 {
		t.Error("a picture without its base layer was taken")
	}
}
