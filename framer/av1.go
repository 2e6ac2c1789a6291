package framer

import "github.com/pion/rtp/codecs/av1/obu"

// av1 depacketizes AV1 (AV1 RTP payload format, aomediacodec.github.io/
// av1-rtp-spec) into a temporal unit in the low-overhead bitstream format:
// every OBU with obu_has_size_field = 1, as Matroska and ISOBMFF store AV1.
// Temporal delimiters, tile lists and padding are dropped (the containers
// want no temporal delimiter in a sample). The last sequence header is
// remembered and put in front of a key frame that lacks one.
//
// codecs.AV1Depacketizer is not used: it allocates per packet.
type av1 struct {
	first    bool
	inOBU    bool // an OBU continues in the next packet
	obuStart int  // offset in buf of the OBU being assembled
	seqStart int  // this TU's sequence header, when sawSeq
	seqEnd   int
	sawSeq   bool
	sawFrame bool // a frame header was seen (the first decides key)
	key      bool
	reduced  bool   // reduced_still_picture_header of the last sequence header
	seq      []byte // last sequence header OBU (with size field)
	out      []byte
}

// AV1 aggregation header bits.
const (
	av1Z = 0x80 // first OBU element continues the previous packet's
	av1Y = 0x40 // last OBU element continues in the next packet
	av1N = 0x08 // first packet of a coded video sequence
)

func (d *av1) start(payload []byte, afterLoss bool) bool {
	if len(payload) < 2 || payload[0]&av1Z != 0 {
		return false
	}
	if !afterLoss || payload[0]&av1N != 0 {
		return true
	}
	// After a loss only a packet opening with a sequence header is surely
	// the start of a temporal unit.
	first := payload[1:]
	if (payload[0]>>4)&3 != 1 { // the first element has a length field
		_, n, err := obu.ReadLeb128(first)
		if err != nil || int(n) >= len(first) {
			return false
		}
		first = first[n:]
	}
	return obu.Type(first[0]>>3&0x0f) == obu.OBUSequenceHeader
}

func (d *av1) begin() {
	d.first, d.inOBU, d.sawSeq, d.sawFrame, d.key = true, false, false, false, false
}

func (d *av1) add(buf, payload []byte) ([]byte, error) {
	if len(payload) < 2 {
		return buf, errShort
	}
	agg := payload[0]
	z, y, w := agg&av1Z != 0, agg&av1Y != 0, int(agg>>4&3)
	if d.first {
		if z {
			return buf, errNotStart
		}
		d.first = false
	}
	if z != d.inOBU {
		return buf, errFragment
	}
	p := payload[1:]
	for i := 1; len(p) > 0; i++ {
		var elem []byte
		if w == 0 || i < w {
			size, n, err := obu.ReadLeb128(p)
			if err != nil || n > 8 || size > uint(len(p)-int(n)) {
				return buf, errMalformed
			}
			elem, p = p[n:int(n)+int(size)], p[int(n)+int(size):]
		} else if i == w {
			elem, p = p, nil
		} else {
			return buf, errMalformed // more elements than W says
		}
		if !(i == 1 && z) { // a new OBU
			d.obuStart = len(buf)
			d.inOBU = true
		}
		buf = append(buf, elem...)
		if len(p) == 0 && y {
			break // continues in the next packet
		}
		var err error
		if buf, err = d.closeOBU(buf); err != nil {
			return buf, err
		}
	}
	if d.inOBU != y {
		return buf, errFragment
	}
	return buf, nil
}

// closeOBU turns the OBU at d.obuStart into its low-overhead form and notes
// what it is.
func (d *av1) closeOBU(buf []byte) ([]byte, error) {
	d.inOBU = false
	o := buf[d.obuStart:]
	if len(o) == 0 {
		return buf, nil // empty element: nothing to keep
	}
	h := o[0]
	if h&0x80 != 0 { // obu_forbidden_bit
		return buf, errMalformed
	}
	typ := obu.Type(h >> 3 & 0x0f)
	hdr := 1
	if h&0x04 != 0 { // obu_extension_flag
		hdr = 2
	}
	if len(o) < hdr {
		return buf, errMalformed
	}
	var payloadAt int // offset of the OBU payload from d.obuStart
	if h&0x02 != 0 {
		// It has a size field already: trust it, drop what follows.
		size, n, err := obu.ReadLeb128(o[hdr:])
		if err != nil || n > 8 || size > uint(len(o)-hdr-int(n)) {
			return buf, errMalformed
		}
		payloadAt = hdr + int(n)
		buf = buf[:d.obuStart+payloadAt+int(size)]
	} else {
		var leb [10]byte
		k := putLeb128(leb[:], uint64(len(o)-hdr))
		at := d.obuStart + hdr
		buf = append(buf, leb[:k]...)
		copy(buf[at+k:], buf[at:len(buf)-k])
		copy(buf[at:], leb[:k])
		buf[d.obuStart] |= 0x02
		payloadAt = hdr + k
	}
	body := buf[d.obuStart+payloadAt:]
	switch typ {
	case obu.OBUTemporalDelimiter, obu.OBUTileList, obu.OBUPadding:
		return buf[:d.obuStart], nil
	case obu.OBUSequenceHeader:
		if len(body) < 1 {
			return buf, errMalformed
		}
		// seq_profile f(3), still_picture f(1), reduced_still_picture_header f(1)
		d.reduced = body[0]&0x08 != 0
		d.sawSeq, d.seqStart, d.seqEnd = true, d.obuStart, len(buf)
	case obu.OBUFrameHeader, obu.OBUFrame:
		if !d.sawFrame {
			d.sawFrame = true
			switch {
			case d.reduced:
				d.key = true // a still picture: always a key frame
			case len(body) < 1:
				return buf, errMalformed
			default:
				// show_existing_frame f(1), frame_type f(2): 0 = KEY_FRAME
				d.key = body[0]&0x80 == 0 && body[0]>>5&3 == 0
			}
		}
	}
	return buf, nil
}

// putLeb128 writes v as LEB128 into b and returns its length.
func putLeb128(b []byte, v uint64) int {
	n := 0
	for {
		c := byte(v & 0x7f)
		v >>= 7
		if v != 0 {
			b[n] = c | 0x80
			n++
			continue
		}
		b[n] = c
		return n + 1
	}
}

func (d *av1) finish(buf []byte) ([]byte, bool, error) {
	if d.inOBU {
		return nil, false, errIncomplete
	}
	if len(buf) == 0 {
		return nil, false, errEmpty
	}
	if d.sawSeq {
		d.seq = append(d.seq[:0], buf[d.seqStart:d.seqEnd]...)
	}
	if !d.key || d.sawSeq {
		return buf, d.key, nil
	}
	if len(d.seq) == 0 {
		return buf, false, nil // a key frame no decoder can start from
	}
	d.out = append(append(d.out[:0], d.seq...), buf...)
	return d.out, true, nil
}
