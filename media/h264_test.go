package media

import (
	"bytes"
	"encoding/hex"
	"testing"
)

// Parameter sets and the avcC ffmpeg 5.1 writes for them (ffprobe
// -show_data of an MP4 remux), from libx264 encodes of testsrc2:
//
//	ffmpeg -f lavfi -i testsrc2=s=320x240 -c:v libx264 -profile:v baseline -f h264 base.h264
//	ffmpeg -f lavfi -i testsrc2=s=1920x1080 -c:v libx264 -profile:v high -f h264 high.h264
//	ffmpeg -f lavfi -i testsrc2=s=352x288 -c:v libx264 -profile:v high444 -pix_fmt yuv444p10le -f h264 h444.h264
//	ffmpeg -f lavfi -i testsrc2=s=640x360 -c:v libx264 -flags +ildct+ilme -x264-params interlaced=1 -f h264 intl.h264
var h264Vectors = []struct {
	name     string
	sps, pps string
	want     H264SPS
	avcC     string
}{
	{
		name: "constrained baseline 320x240",
		sps:  "6742c00dd90141fb011000000300100000030320f142a480",
		pps:  "68cb83cb20",
		want: H264SPS{ProfileIDC: 66, Constraints: 0xc0, LevelIDC: 13, ChromaFormatIDC: 1, BitDepthLuma: 8, BitDepthChroma: 8, Width: 320, Height: 240},
		avcC: "0142c00dffe100186742c00dd90141fb011000000300100000030320f142a480010005" + "68cb83cb20",
	},
	{
		name: "high 1920x1080 cropped from 1088",
		sps:  "67640028acd940780227e5c044000003000400000300c83c60c658",
		pps:  "68ebe3cb22c0",
		want: H264SPS{ProfileIDC: 100, LevelIDC: 40, ChromaFormatIDC: 1, BitDepthLuma: 8, BitDepthChroma: 8, Width: 1920, Height: 1080},
		avcC: "01640028ffe1001b67640028acd940780227e5c044000003000400000300c83c60c658010006" + "68ebe3cb22c0" + "fdf8f800",
	},
	{
		name: "high 4:4:4 10-bit 352x288",
		sps:  "67f4000d90d9b282c12d80880000030008000003019078a14cb0",
		pps:  "68ebe3c44844",
		want: H264SPS{ProfileIDC: 244, LevelIDC: 13, ChromaFormatIDC: 3, BitDepthLuma: 10, BitDepthChroma: 10, Width: 352, Height: 288},
		avcC: "01f4000dffe1001a67f4000d90d9b282c12d80880000030008000003019078a14cb0010006" + "68ebe3c44844" + "fffafa00",
	},
	{
		name: "high interlaced 640x360",
		sps:  "6764001eacd940a063f3e022000003000200000300643e28532c",
		pps:  "68fba3cb22c0",
		want: H264SPS{ProfileIDC: 100, LevelIDC: 30, ChromaFormatIDC: 1, BitDepthLuma: 8, BitDepthChroma: 8, Width: 640, Height: 360},
		avcC: "0164001effe1001a6764001eacd940a063f3e022000003000200000300643e28532c010006" + "68fba3cb22c0" + "fdf8f800",
	},
}

func unhex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestParseH264SPS(t *testing.T) {
	for _, v := range h264Vectors {
		t.Run(v.name, func(t *testing.T) {
			got, err := ParseH264SPS(unhex(t, v.sps))
			if err != nil {
				t.Fatal(err)
			}
			if got != v.want {
				t.Errorf("got %+v, want %+v", got, v.want)
			}
		})
	}
}

func TestParseH264SPSErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		nal  string
	}{
		{"empty", ""},
		{"not an SPS", "68cb83cb20"},
		{"header only", "6742c0"},
		{"truncated", "6742c00dd901"},
		{"pic_order_cnt_type 3", "6742c00dc8ff"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if s, err := ParseH264SPS(unhex(t, tc.nal)); err == nil {
				t.Errorf("no error, got %+v", s)
			}
		})
	}
}

func TestAppendAVCDecoderConfig(t *testing.T) {
	for _, v := range h264Vectors {
		t.Run(v.name, func(t *testing.T) {
			prefix := []byte("keep")
			got, err := AppendAVCDecoderConfig(prefix, unhex(t, v.sps), unhex(t, v.pps))
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.HasPrefix(got, []byte("keep")) {
				t.Fatalf("dst prefix lost: %x", got)
			}
			if want := unhex(t, v.avcC); !bytes.Equal(got[4:], want) {
				t.Errorf("avcC\n got %x\nwant %x", got[4:], want)
			}
		})
	}
	if _, err := AppendAVCDecoderConfig(nil, unhex(t, h264Vectors[0].sps), unhex(t, h264Vectors[0].sps)); err == nil {
		t.Error("an SPS as PPS: no error")
	}
}

// annexB joins NAL units with the given start codes (4-byte when long).
func annexB(long []bool, nals ...[]byte) []byte {
	var b []byte
	for i, n := range nals {
		if long[i%len(long)] {
			b = append(b, 0)
		}
		b = append(b, 0, 0, 1)
		b = append(b, n...)
	}
	return b
}

func TestSplitAnnexB(t *testing.T) {
	aud := []byte{0x09, 0x10}
	sps := unhex(t, h264Vectors[0].sps)
	pps := unhex(t, h264Vectors[0].pps)
	idr := []byte{0x65, 0x88, 0x84, 0x00, 0x00, 0x03, 0x01, 0x42}
	slice := []byte{0x41, 0x9a, 0x00, 0x10}
	for _, tc := range []struct {
		name string
		au   []byte
		want [][]byte
	}{
		{"empty", nil, nil},
		{"zeros", []byte{0, 0, 0, 0}, nil},
		{"start code only", []byte{0, 0, 0, 1}, nil},
		{"4-byte start codes", annexB([]bool{true}, aud, sps, pps, idr), [][]byte{aud, sps, pps, idr}},
		{"3-byte start codes", annexB([]bool{false}, sps, pps, idr), [][]byte{sps, pps, idr}},
		{"mixed start codes", annexB([]bool{true, false}, sps, pps, idr, slice), [][]byte{sps, pps, idr, slice}},
		{"bare NAL unit", slice, [][]byte{slice}},
		{"trailing zeros", append(annexB([]bool{false}, slice), 0, 0), [][]byte{slice}},
		{"empty NAL units", annexB([]bool{true}, nil, slice, nil), [][]byte{slice}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := SplitAnnexB(nil, tc.au)
			if len(got) != len(tc.want) {
				t.Fatalf("got %d NAL units %x, want %d", len(got), got, len(tc.want))
			}
			for i := range got {
				if !bytes.Equal(got[i], tc.want[i]) {
					t.Errorf("NAL %d: got %x, want %x", i, got[i], tc.want[i])
				}
			}
		})
	}
}

func TestH264AccessUnit(t *testing.T) {
	aud := []byte{0x09, 0x10}
	sps := unhex(t, h264Vectors[1].sps)
	pps := unhex(t, h264Vectors[1].pps)
	sei := []byte{0x06, 0x05, 0x01, 0x00, 0x80}
	idr := []byte{0x65, 0x88, 0x84, 0x00, 0x00, 0x03, 0x01, 0x42}
	slice := []byte{0x41, 0x9a, 0x00, 0x10}
	key := annexB([]bool{true, false}, aud, sps, pps, sei, idr)
	delta := annexB([]bool{true}, aud, slice)

	gotSPS, gotPPS := H264ParamSets(key)
	if !bytes.Equal(gotSPS, sps) || !bytes.Equal(gotPPS, pps) {
		t.Errorf("H264ParamSets = %x, %x", gotSPS, gotPPS)
	}
	if s, p := H264ParamSets(delta); s != nil || p != nil {
		t.Errorf("H264ParamSets(delta) = %x, %x", s, p)
	}
	if !H264HasIDR(key) || H264HasIDR(delta) {
		t.Error("H264HasIDR wrong")
	}
	if got := H264NALType(sps); got != H264NALSPS {
		t.Errorf("H264NALType(sps) = %d", got)
	}
	if got := H264NALType(nil); got != 0 {
		t.Errorf("H264NALType(nil) = %d", got)
	}

	lp := func(nals ...[]byte) []byte {
		var b []byte
		for _, n := range nals {
			b = append(b, byte(len(n)>>24), byte(len(n)>>16), byte(len(n)>>8), byte(len(n)))
			b = append(b, n...)
		}
		return b
	}
	for _, tc := range []struct {
		name string
		au   []byte
		drop bool
		want []byte
	}{
		{"keyframe kept whole", key, false, lp(aud, sps, pps, sei, idr)},
		{"keyframe without parameter sets", key, true, lp(sei, idr)},
		{"delta", delta, true, lp(slice)},
		{"empty", nil, true, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := AppendAVCC([]byte{0xaa}, tc.au, tc.drop)
			if want := append([]byte{0xaa}, tc.want...); !bytes.Equal(got, want) {
				t.Errorf("got %x\nwant %x", got, want)
			}
		})
	}

	// The append-style API reuses the destination's storage.
	buf := make([]byte, 0, 1024)
	if n := testing.AllocsPerRun(100, func() {
		buf = AppendAVCC(buf[:0], key, true)
	}); n != 0 {
		t.Errorf("AppendAVCC allocates %v times per call", n)
	}
	nals := make([][]byte, 0, 8)
	if n := testing.AllocsPerRun(100, func() {
		nals = SplitAnnexB(nals[:0], key)
	}); n != 0 {
		t.Errorf("SplitAnnexB allocates %v times per call", n)
	}
}

func FuzzParseH264SPS(f *testing.F) {
	for _, v := range h264Vectors {
		b, _ := hex.DecodeString(v.sps)
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, nal []byte) {
		s, err := ParseH264SPS(nal)
		if err != nil {
			return
		}
		if s.Width <= 0 || s.Height <= 0 {
			t.Errorf("parsed a %dx%d picture", s.Width, s.Height)
		}
		if _, err := AppendAVCDecoderConfig(nil, nal, []byte{0x68, 0xce}); err != nil {
			t.Errorf("AppendAVCDecoderConfig of a parsable SPS: %v", err)
		}
	})
}

func FuzzAnnexB(f *testing.F) {
	f.Add(annexB([]bool{true, false}, []byte{0x67, 1}, []byte{0x68, 2}, []byte{0x65, 0, 0, 3, 1}))
	f.Add([]byte{0, 0, 0, 1, 0, 0, 1, 0})
	f.Fuzz(func(t *testing.T, au []byte) {
		nals := SplitAnnexB(nil, au)
		total := 0
		for _, n := range nals {
			if len(n) == 0 || n[len(n)-1] == 0 {
				t.Fatalf("bad NAL unit %x", n)
			}
			total += 4 + len(n)
		}
		if got := AppendAVCC(nil, au, false); len(got) != total {
			t.Fatalf("AppendAVCC wrote %d bytes, want %d", len(got), total)
		}
	})
}
