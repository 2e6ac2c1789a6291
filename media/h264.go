package media

import (
	"bytes"
	"errors"
	"fmt"
)

// H.264 NAL unit types that muxers care about (ITU-T H.264 table 7-1).
const (
	// H264NALSlice is a coded slice of a non-IDR picture.
	H264NALSlice = 1
	// H264NALIDR is a coded slice of an IDR picture (a keyframe).
	H264NALIDR = 5
	// H264NALSEI is supplemental enhancement information.
	H264NALSEI = 6
	// H264NALSPS is a sequence parameter set.
	H264NALSPS = 7
	// H264NALPPS is a picture parameter set.
	H264NALPPS = 8
	// H264NALAUD is an access unit delimiter.
	H264NALAUD = 9
)

// H264NALType returns the nal_unit_type of a NAL unit (the low five bits of
// its header byte), 0 for an empty one.
func H264NALType(nal []byte) uint8 {
	if len(nal) == 0 {
		return 0
	}
	return nal[0] & 0x1f
}

// nextNAL returns the first NAL unit of an Annex-B byte stream b, without
// its start code and trailing zero bytes, and the rest of b after it. Bytes
// before the first start code count as a NAL unit, so a bare NAL unit is
// returned whole. nal is nil when b holds no more NAL units.
func nextNAL(b []byte) (nal, rest []byte) {
	for {
		// Skip a start code (any number of zeros, then 0x01).
		i := 0
		for i < len(b) && b[i] == 0 {
			i++
		}
		if i >= 2 && i < len(b) && b[i] == 1 {
			b = b[i+1:]
		} else if i == len(b) {
			return nil, nil
		}
		end := bytes.Index(b, []byte{0, 0, 1})
		if end < 0 {
			end = len(b)
			rest = nil
		} else {
			rest = b[end:]
		}
		nal = b[:end]
		for len(nal) > 0 && nal[len(nal)-1] == 0 {
			nal = nal[:len(nal)-1]
		}
		if len(nal) > 0 {
			return nal, rest
		}
		b = rest
	}
}

// SplitAnnexB appends the NAL units of au, an Annex-B access unit, to dst
// and returns the extended slice. The NAL units are sub-slices of au without
// start codes; bytes before the first start code count as a NAL unit.
func SplitAnnexB(dst [][]byte, au []byte) [][]byte {
	for nal, rest := nextNAL(au); nal != nil; nal, rest = nextNAL(rest) {
		dst = append(dst, nal)
	}
	return dst
}

// H264ParamSets returns the first SPS and the first PPS of au, an Annex-B
// access unit, as sub-slices of au; either is nil when au holds none.
func H264ParamSets(au []byte) (sps, pps []byte) {
	for nal, rest := nextNAL(au); nal != nil; nal, rest = nextNAL(rest) {
		switch H264NALType(nal) {
		case H264NALSPS:
			if sps == nil {
				sps = nal
			}
		case H264NALPPS:
			if pps == nil {
				pps = nal
			}
		}
		if sps != nil && pps != nil {
			break
		}
	}
	return sps, pps
}

// H264HasIDR reports whether au, an Annex-B access unit, holds a slice of
// an IDR picture.
func H264HasIDR(au []byte) bool {
	for nal, rest := nextNAL(au); nal != nil; nal, rest = nextNAL(rest) {
		if H264NALType(nal) == H264NALIDR {
			return true
		}
	}
	return false
}

// AppendAVCC appends au, an Annex-B access unit, to dst as NAL units each
// preceded by its length in four big-endian bytes (the "AVCC" form of MP4
// and Matroska samples with an avcC lengthSizeMinusOne of 3) and returns
// the extended slice. With dropParams, SPS, PPS and access unit delimiter
// NAL units are left out: the parameter sets are in the avcC then.
func AppendAVCC(dst, au []byte, dropParams bool) []byte {
	for nal, rest := nextNAL(au); nal != nil; nal, rest = nextNAL(rest) {
		if dropParams {
			switch H264NALType(nal) {
			case H264NALSPS, H264NALPPS, H264NALAUD:
				continue
			}
		}
		n := len(nal)
		dst = append(dst, byte(n>>24), byte(n>>16), byte(n>>8), byte(n))
		dst = append(dst, nal...)
	}
	return dst
}

// H264SPS is what a muxer needs from an H.264 sequence parameter set.
type H264SPS struct {
	// ProfileIDC, Constraints (the constraint_set flags byte) and LevelIDC
	// are the SPS's first three bytes after the NAL header.
	ProfileIDC  uint8
	Constraints uint8
	LevelIDC    uint8
	// ChromaFormatIDC is 0 (monochrome), 1 (4:2:0), 2 (4:2:2) or 3 (4:4:4).
	ChromaFormatIDC uint8
	// BitDepthLuma and BitDepthChroma are the sample bit depths (8 to 14).
	BitDepthLuma   uint8
	BitDepthChroma uint8
	// Width and Height are the picture size in pixels after cropping.
	Width, Height int
}

// errShortSPS is returned for an SPS that ends before its picture size.
var errShortSPS = errors.New("h264: SPS is truncated")

// highProfile reports whether an H.264 profile carries chroma_format_idc
// and bit depths in its SPS (and extra fields in its avcC).
func highProfile(profile uint8) bool {
	switch profile {
	case 100, 110, 122, 244, 44, 83, 86, 118, 128, 138, 139, 134, 135:
		return true
	}
	return false
}

// ParseH264SPS parses an SPS NAL unit (starting with its header byte) far
// enough to know its profile, chroma format, bit depths and picture size.
func ParseH264SPS(nal []byte) (H264SPS, error) {
	var s H264SPS
	if H264NALType(nal) != H264NALSPS {
		return s, fmt.Errorf("h264: NAL unit type %d is not an SPS", H264NALType(nal))
	}
	if len(nal) < 4 {
		return s, errShortSPS
	}
	s.ProfileIDC, s.Constraints, s.LevelIDC = nal[1], nal[2], nal[3]
	s.ChromaFormatIDC, s.BitDepthLuma, s.BitDepthChroma = 1, 8, 8
	r := bitReader{b: unescapeRBSP(nal[4:])}
	r.ue() // seq_parameter_set_id
	separateColourPlanes := false
	if highProfile(s.ProfileIDC) {
		cf := r.ue()
		if cf > 3 {
			return s, fmt.Errorf("h264: SPS chroma_format_idc %d is out of range", cf)
		}
		s.ChromaFormatIDC = uint8(cf)
		if cf == 3 {
			separateColourPlanes = r.bit() == 1
		}
		bl, bc := r.ue(), r.ue()
		if bl > 6 || bc > 6 {
			return s, fmt.Errorf("h264: SPS bit depth %d/%d is out of range", bl+8, bc+8)
		}
		s.BitDepthLuma, s.BitDepthChroma = uint8(bl+8), uint8(bc+8)
		r.bit()           // qpprime_y_zero_transform_bypass_flag
		if r.bit() == 1 { // seq_scaling_matrix_present_flag
			n := 8
			if cf == 3 {
				n = 12
			}
			for i := 0; i < n; i++ {
				if r.bit() == 1 { // seq_scaling_list_present_flag[i]
					size := 16
					if i >= 6 {
						size = 64
					}
					skipScalingList(&r, size)
				}
			}
		}
	}
	r.ue() // log2_max_frame_num_minus4
	switch pocType := r.ue(); pocType {
	case 0:
		r.ue() // log2_max_pic_order_cnt_lsb_minus4
	case 1:
		r.bit() // delta_pic_order_always_zero_flag
		r.se()  // offset_for_non_ref_pic
		r.se()  // offset_for_top_to_bottom_field
		n := r.ue()
		if n > 255 {
			return s, fmt.Errorf("h264: SPS num_ref_frames_in_pic_order_cnt_cycle %d is out of range", n)
		}
		for i := uint32(0); i < n; i++ {
			r.se()
		}
	case 2:
	default:
		return s, fmt.Errorf("h264: SPS pic_order_cnt_type %d is out of range", pocType)
	}
	r.ue()  // max_num_ref_frames
	r.bit() // gaps_in_frame_num_value_allowed_flag
	wMbs := r.ue() + 1
	hMapUnits := r.ue() + 1
	frameMbsOnly := r.bit()
	if frameMbsOnly == 0 {
		r.bit() // mb_adaptive_frame_field_flag
	}
	r.bit() // direct_8x8_inference_flag
	var cl, cr, ct, cb uint32
	if r.bit() == 1 { // frame_cropping_flag
		cl, cr, ct, cb = r.ue(), r.ue(), r.ue(), r.ue()
	}
	if r.err {
		return s, errShortSPS
	}
	if wMbs > 1024 || hMapUnits > 1024 {
		return s, fmt.Errorf("h264: SPS picture size %dx%d macroblocks is out of range", wMbs, hMapUnits)
	}
	// Crop units (H.264 equations 7-19 to 7-22).
	cropX, cropY := uint32(1), 2-frameMbsOnly
	if !separateColourPlanes && s.ChromaFormatIDC != 0 {
		subW, subH := uint32(2), uint32(2)
		switch s.ChromaFormatIDC {
		case 2:
			subH = 1
		case 3:
			subW, subH = 1, 1
		}
		cropX, cropY = subW, subH*(2-frameMbsOnly)
	}
	w := wMbs * 16
	h := (2 - frameMbsOnly) * hMapUnits * 16
	if cropX*(cl+cr) >= w || cropY*(ct+cb) >= h {
		return s, fmt.Errorf("h264: SPS cropping %d,%d,%d,%d exceeds the picture", cl, cr, ct, cb)
	}
	s.Width = int(w - cropX*(cl+cr))
	s.Height = int(h - cropY*(ct+cb))
	return s, nil
}

// skipScalingList reads past a scaling_list() of size coefficients.
func skipScalingList(r *bitReader, size int) {
	last, next := int32(8), int32(8)
	for j := 0; j < size && !r.err; j++ {
		if next != 0 {
			next = (last + r.se() + 256) % 256
		}
		if next != 0 {
			last = next
		}
	}
}

// AppendAVCDecoderConfig appends an AVCDecoderConfigurationRecord (the
// avcC of ISO/IEC 14496-15 §5.3.3.1, the CodecPrivate of Matroska's
// V_MPEG4/ISO/AVC) holding one SPS and one PPS (NAL units with their header
// bytes, without start codes) to dst, with 4-byte NAL lengths, and returns
// the extended slice. Profile, compatibility and level come from the SPS;
// high profiles get the chroma format and bit depth fields too.
func AppendAVCDecoderConfig(dst, sps, pps []byte) ([]byte, error) {
	s, err := ParseH264SPS(sps)
	if err != nil {
		return dst, err
	}
	if H264NALType(pps) != H264NALPPS {
		return dst, fmt.Errorf("h264: NAL unit type %d is not a PPS", H264NALType(pps))
	}
	if len(sps) > 0xffff || len(pps) > 0xffff {
		return dst, errors.New("h264: parameter set longer than 65535 bytes")
	}
	dst = append(dst,
		1, // configurationVersion
		s.ProfileIDC, s.Constraints, s.LevelIDC,
		0xfc|3, // reserved, lengthSizeMinusOne
		0xe0|1, // reserved, numOfSequenceParameterSets
		byte(len(sps)>>8), byte(len(sps)))
	dst = append(dst, sps...)
	dst = append(dst, 1, byte(len(pps)>>8), byte(len(pps)))
	dst = append(dst, pps...)
	if highProfile(s.ProfileIDC) {
		dst = append(dst,
			0xfc|s.ChromaFormatIDC,
			0xf8|(s.BitDepthLuma-8),
			0xf8|(s.BitDepthChroma-8),
			0) // numOfSequenceParameterSetExt
	}
	return dst, nil
}

// unescapeRBSP returns b without its emulation prevention bytes (the 0x03
// of each 0x000003), copying only when there are some.
func unescapeRBSP(b []byte) []byte {
	i := bytes.Index(b, []byte{0, 0, 3})
	if i < 0 {
		return b
	}
	out := make([]byte, 0, len(b))
	zeros := 0
	for _, c := range b {
		if zeros >= 2 && c == 3 {
			zeros = 0
			continue
		}
		if c == 0 {
			zeros++
		} else {
			zeros = 0
		}
		out = append(out, c)
	}
	return out
}

// bitReader reads big-endian bits and Exp-Golomb codes; reading past the
// end yields zeros and sets err.
type bitReader struct {
	b   []byte
	pos int // in bits
	err bool
}

func (r *bitReader) bit() uint32 {
	if r.pos >= len(r.b)*8 {
		r.err = true
		return 0
	}
	v := uint32(r.b[r.pos/8]>>(7-r.pos%8)) & 1
	r.pos++
	return v
}

// ue reads an unsigned Exp-Golomb code, at most 32 bits of value.
func (r *bitReader) ue() uint32 {
	zeros := 0
	for r.bit() == 0 {
		if r.err || zeros == 31 {
			r.err = true
			return 0
		}
		zeros++
	}
	v := uint32(1)
	for i := 0; i < zeros; i++ {
		v = v<<1 | r.bit()
	}
	return v - 1
}

// se reads a signed Exp-Golomb code.
func (r *bitReader) se() int32 {
	v := r.ue()
	if v&1 == 1 {
		return int32(v/2 + 1)
	}
	return -int32(v / 2)
}
