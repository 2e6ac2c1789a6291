package framer

import (
	"bytes"
	"testing"

	"github.com/janusbridge/janusbridge/media"
)

var vp8Track = media.Track{Kind: "video", Codec: media.VP8, ClockRate: 90000, PayloadType: 96}

// TestVP8Keyframe: keyframe detection on libvpx output behind every form of
// payload descriptor.
func TestVP8Keyframe(t *testing.T) {
	key := append(append([]byte(nil), vp8KeyPrefix...), filler(1, 50)...)
	for _, tc := range []struct {
		name string
		desc []byte // descriptor of the first packet (S=1, PID=0)
		cont []byte // of the others
	}{
		{"minimal", []byte{0x10}, []byte{0x00}},
		{"7-bit picture id", []byte{0x90, 0x80, 0x05}, []byte{0x80, 0x80, 0x05}},
		{"15-bit picture id, TL0PICIDX, TID/KEYIDX", []byte{0x90, 0xf0, 0x81, 0x23, 0x07, 0x40}, []byte{0x80, 0xf0, 0x81, 0x23, 0x07, 0x40}},
		{"non-reference, TID only", []byte{0xb0, 0x20, 0x40}, []byte{0xa0, 0x20, 0x40}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			split := func(frame []byte) [][]byte {
				return [][]byte{
					append(append([]byte(nil), tc.desc...), frame[:10]...),
					append(append([]byte(nil), tc.cont...), frame[10:]...),
				}
			}
			got, st := runPayloads(t, vp8Track, [][][]byte{split(key), split(vp8Inter), split(key)})
			if len(got) != 3 || st.Invalid != 0 {
				t.Fatalf("%d frames, stats %+v", len(got), st)
			}
			for i, want := range [][]byte{key, vp8Inter, key} {
				if !bytes.Equal(got[i].Data, want) {
					t.Errorf("frame %d: got %x", i, head(got[i].Data))
				}
				if got[i].Keyframe != (i != 1) {
					t.Errorf("frame %d: keyframe %v", i, got[i].Keyframe)
				}
			}
		})
	}
}

// TestVP8Start: a frame must begin with S=1 and partition 0.
func TestVP8Start(t *testing.T) {
	key := append(append([]byte(nil), vp8KeyPrefix...), filler(1, 50)...)
	for _, tc := range []struct {
		name  string
		first []byte
	}{
		{"S=0", append([]byte{0x00}, vp8Inter...)},
		{"partition 1", append([]byte{0x11}, vp8Inter...)},
		{"truncated descriptor", []byte{0x90, 0x80}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, st := runPayloads(t, vp8Track, [][][]byte{
				{append([]byte{0x10}, key...)},
				{tc.first},
			})
			if len(got) != 1 || st.DroppedFrames != 1 {
				t.Errorf("%d frames, stats %+v", len(got), st)
			}
		})
	}
	// A P bit of 0 without the start code is no keyframe.
	got, _ := runPayloads(t, vp8Track, [][][]byte{{{0x10, 0x10, 0x02, 0x00, 0x00, 0x00, 0x00}}})
	if len(got) != 0 {
		t.Error("a bogus keyframe was taken")
	}
}
