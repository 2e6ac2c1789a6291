package transcode

import (
	"bytes"
	"testing"
)

// FuzzADTS feeds arbitrary bytes to the ADTS header parser (AAC from an
// RTMP publisher or a file goes through it): a header it accepts has a
// known rate, a frame length that holds the header, and an
// AudioSpecificConfig that AppendADTS takes back to the same stream.
func FuzzADTS(f *testing.F) {
	f.Add([]byte{0xff, 0xf1, 0x50, 0x80, 0x2e, 0x7f, 0xfc})
	f.Add([]byte{0xff, 0xf0, 0x4c, 0x80, 0x01, 0x3f, 0xfc, 0, 0})
	f.Add([]byte{0xff, 0xf1, 0xbc, 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		h, err := ParseADTS(b)
		if err != nil {
			return
		}
		if h.Rate == 0 || h.FrameLen < h.HeaderLen || h.Samples() < 1024 || h.Samples() > 4096 {
			t.Fatalf("header %+v", h)
		}
		asc := h.AudioSpecificConfig()
		out, err := AppendADTS(nil, asc[:], 10)
		if err != nil {
			if h.ObjectType > 4 || h.Channels > 7 {
				return
			}
			t.Fatalf("AppendADTS of %+v: %v", h, err)
		}
		h2, err := ParseADTS(out)
		if err != nil || h2.Rate != h.Rate || h2.Channels != h.Channels || h2.ObjectType != h.ObjectType {
			t.Fatalf("round trip %+v -> %+v (%v)", h, h2, err)
		}
	})
}

// FuzzChildOutput feeds arbitrary bytes, as a broken ffmpeg child could
// write them, to both legs' output readers (ADTS for Opus to AAC, Ogg
// Opus for AAC to Opus): they emit packets with a sample count and a
// rate, or stop with an error, never panic or loop on a finite input.
func FuzzChildOutput(f *testing.F) {
	adts := []byte{0xff, 0xf1, 0x50, 0x80, 0x01, 0x1f, 0xfc, 1}
	f.Add(adts)
	var ogg bytes.Buffer
	o := oggWriter{w: &ogg, serial: 7}
	if err := o.opusHeaders(2); err != nil {
		f.Fatal(err)
	}
	if err := o.page([]byte{0xfc, 1, 2, 3}, 960, 0); err != nil {
		f.Fatal(err)
	}
	f.Add(ogg.Bytes())
	f.Add(ogg.Bytes()[:40])
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, l := range []leg{&opusToAAC{}, &aacToOpus{}} {
			emitted := 0
			err := l.read(bytes.NewReader(data), func(pkt []byte, samples, rate, delay int) {
				if len(pkt) == 0 || samples <= 0 || rate <= 0 || delay < 0 {
					t.Fatalf("%T emitted %d bytes, %d samples at %d Hz, delay %d", l, len(pkt), samples, rate, delay)
				}
				emitted++
				if emitted > len(data) {
					t.Fatalf("%T emitted %d packets from %d bytes", l, emitted, len(data))
				}
			})
			if err == nil {
				t.Fatalf("%T returned no error at the end of its input", l)
			}
		}
	})
}
