package transcode

import (
	"errors"
	"fmt"
)

// OpusSamples returns the number of 48 kHz samples of an Opus packet, from
// its TOC byte and frame count (RFC 6716 §3.1).
func OpusSamples(pkt []byte) (int, error) {
	if len(pkt) == 0 {
		return 0, errors.New("opus: empty packet")
	}
	toc := pkt[0]
	cfg := toc >> 3
	var frame int // samples per frame at 48 kHz
	switch {
	case cfg < 12: // SILK: 10, 20, 40, 60 ms
		frame = []int{480, 960, 1920, 2880}[cfg&3]
	case cfg < 16: // hybrid: 10, 20 ms
		frame = []int{480, 960}[cfg&1]
	default: // CELT: 2.5, 5, 10, 20 ms
		frame = []int{120, 240, 480, 960}[cfg&3]
	}
	frames := 1
	switch toc & 3 {
	case 1, 2:
		frames = 2
	case 3:
		if len(pkt) < 2 {
			return 0, errors.New("opus: code 3 packet without a frame count")
		}
		frames = int(pkt[1] & 0x3f)
		if frames == 0 {
			return 0, errors.New("opus: code 3 packet with no frames")
		}
	}
	if n := frames * frame; n <= 5760 { // at most 120 ms
		return n, nil
	}
	return 0, fmt.Errorf("opus: packet of %d frames of %d samples is longer than 120 ms", frames, frame)
}

// aacRates are the sampling frequencies of AAC's sampling_frequency_index.
var aacRates = [...]int{96000, 88200, 64000, 48000, 44100, 32000, 24000, 22050, 16000, 12000, 11025, 8000, 7350}

// ADTS is the header of an ADTS frame (ISO/IEC 13818-7 / 14496-3 §1.A.2).
type ADTS struct {
	// ObjectType is the MPEG-4 audio object type: 2 for AAC-LC.
	ObjectType int
	// RateIndex is the sampling_frequency_index; Rate is its frequency.
	RateIndex int
	Rate      int
	// Channels is the channel_configuration (0: described in-band).
	Channels int
	// HeaderLen is 7, or 9 with a CRC; FrameLen counts the header too.
	HeaderLen int
	FrameLen  int
	// Blocks is the number of raw data blocks (1024 samples each).
	Blocks int
}

// ParseADTS parses the ADTS header at the start of b.
func ParseADTS(b []byte) (ADTS, error) {
	var h ADTS
	if len(b) < 7 {
		return h, errors.New("adts: short header")
	}
	if b[0] != 0xff || b[1]&0xf6 != 0xf0 {
		return h, errors.New("adts: no sync word")
	}
	h.HeaderLen = 7
	if b[1]&1 == 0 {
		h.HeaderLen = 9
	}
	h.ObjectType = int(b[2]>>6) + 1
	h.RateIndex = int(b[2]>>2) & 0xf
	if h.RateIndex >= len(aacRates) {
		return h, fmt.Errorf("adts: sampling frequency index %d is reserved", h.RateIndex)
	}
	h.Rate = aacRates[h.RateIndex]
	h.Channels = int(b[2]&1)<<2 | int(b[3]>>6)
	h.FrameLen = int(b[3]&3)<<11 | int(b[4])<<3 | int(b[5]>>5)
	h.Blocks = int(b[6]&3) + 1
	if h.FrameLen < h.HeaderLen {
		return h, fmt.Errorf("adts: frame length %d is shorter than its header", h.FrameLen)
	}
	return h, nil
}

// Samples returns the number of samples of the frame.
func (h ADTS) Samples() int { return 1024 * h.Blocks }

// AudioSpecificConfig returns the two-byte AudioSpecificConfig of the
// frame's stream (ISO/IEC 14496-3 §1.6.2.1), as an FLV AAC sequence header
// or an MP4 esds carries it.
func (h ADTS) AudioSpecificConfig() [2]byte {
	return [2]byte{
		byte(h.ObjectType<<3 | h.RateIndex>>1),
		byte(h.RateIndex&1<<7 | h.Channels<<3),
	}
}

// AppendADTS appends an ADTS header for a raw AAC frame of n bytes of the
// stream described by asc (an AudioSpecificConfig) to dst.
func AppendADTS(dst, asc []byte, n int) ([]byte, error) {
	if len(asc) < 2 {
		return dst, errors.New("aac: AudioSpecificConfig shorter than 2 bytes")
	}
	obj := int(asc[0] >> 3)
	rate := int(asc[0]&7)<<1 | int(asc[1]>>7)
	ch := int(asc[1]>>3) & 0xf
	if obj < 1 || obj > 4 {
		return dst, fmt.Errorf("aac: object type %d cannot go in ADTS", obj)
	}
	if rate >= len(aacRates) {
		return dst, fmt.Errorf("aac: sampling frequency index %d is not supported", rate)
	}
	if ch > 7 {
		return dst, fmt.Errorf("aac: channel configuration %d is not supported", ch)
	}
	l := n + 7
	if l > 0x1fff {
		return dst, fmt.Errorf("aac: frame of %d bytes is too long for ADTS", n)
	}
	return append(dst,
		0xff, 0xf1, // MPEG-4, layer 0, no CRC
		byte((obj-1)<<6|rate<<2|ch>>2),
		byte(ch&3<<6|l>>11),
		byte(l>>3),
		byte(l&7<<5|0x1f),
		0xfc), nil // buffer fullness 0x7ff (VBR), one raw data block
}
