package framer

import (
	"encoding/base64"
	"strings"
)

// H.264 NAL unit types used here.
const (
	nalSlice  = 1
	nalIDR    = 5
	nalSEI    = 6
	nalSPS    = 7
	nalPPS    = 8
	nalAUD    = 9
	nalPrefix = 14
	nalSubset = 15
	nalSTAPA  = 24
	nalFUA    = 28
)

var startCode = [4]byte{0, 0, 0, 1}

// h264 depacketizes H.264 (RFC 6184, packetization-mode 0 and 1: single NAL
// unit, STAP-A, FU-A) into an Annex-B access unit with 4-byte start codes.
// Parameter sets are kept where they arrived; the last SPS and PPS are also
// remembered and put in front of an IDR access unit that lacks them, so
// that every keyframe can start a decoder (a file segment).
//
// codecs.H264Packet is not used: it allocates per packet and returns the
// FU-A reassembly only at the end of the NAL unit.
type h264 struct {
	inFU   bool
	nals   []int // offset of each NAL unit (after its start code) in buf
	idr    bool
	sps    []byte // last SPS / PPS seen, NAL unit without start code
	pps    []byte
	out    []byte
	sawSPS bool
	sawPPS bool
}

// h264NALStarts reports whether a NAL unit of type typ, whose first byte
// after the NAL header is first, can only be the first NAL unit of an
// access unit, the ones that may precede the first slice and slices with
// first_mb_in_slice == 0 (ue(v) 0 is the single bit 1).
func h264NALStarts(typ byte, first []byte) bool {
	switch typ {
	case nalAUD, nalSPS, nalPPS, nalSEI, nalPrefix, nalSubset:
		return true
	case nalSlice, nalIDR:
		return len(first) > 0 && first[0]&0x80 != 0
	}
	return false
}

func (d *h264) start(payload []byte, _ bool) bool {
	if len(payload) < 2 {
		return false
	}
	switch typ := payload[0] & 0x1f; {
	case typ >= 1 && typ <= 23:
		return h264NALStarts(typ, payload[1:])
	case typ == nalSTAPA:
		if len(payload) < 4 {
			return false
		}
		return h264NALStarts(payload[3]&0x1f, payload[4:])
	case typ == nalFUA:
		return payload[1]&0x80 != 0 && h264NALStarts(payload[1]&0x1f, payload[2:])
	}
	return false
}

func (d *h264) begin() {
	d.inFU, d.idr, d.sawSPS, d.sawPPS = false, false, false, false
	d.nals = d.nals[:0]
}

func (d *h264) nal(buf []byte, typ byte) []byte {
	buf = append(buf, startCode[:]...)
	d.nals = append(d.nals, len(buf))
	switch typ {
	case nalIDR:
		d.idr = true
	case nalSPS:
		d.sawSPS = true
	case nalPPS:
		d.sawPPS = true
	}
	return buf
}

func (d *h264) add(buf, payload []byte) ([]byte, error) {
	if len(payload) < 1 {
		return buf, errShort
	}
	if payload[0]&0x80 != 0 { // forbidden_zero_bit
		return buf, errMalformed
	}
	typ := payload[0] & 0x1f
	if d.inFU && typ != nalFUA {
		return buf, errIncomplete
	}
	switch {
	case typ >= 1 && typ <= 23:
		buf = d.nal(buf, typ)
		return append(buf, payload...), nil
	case typ == nalSTAPA:
		p := payload[1:]
		if len(p) == 0 {
			return buf, errShort
		}
		for len(p) > 0 {
			if len(p) < 2 {
				return buf, errShort
			}
			n := int(p[0])<<8 | int(p[1])
			p = p[2:]
			if n == 0 || n > len(p) {
				return buf, errMalformed
			}
			buf = d.nal(buf, p[0]&0x1f)
			buf = append(buf, p[:n]...)
			p = p[n:]
		}
		return buf, nil
	case typ == nalFUA:
		if len(payload) < 2 {
			return buf, errShort
		}
		fu := payload[1]
		if fu&0x80 != 0 { // S
			if d.inFU {
				return buf, errIncomplete
			}
			buf = d.nal(buf, fu&0x1f)
			buf = append(buf, payload[0]&0xe0|fu&0x1f)
			d.inFU = true
		} else if !d.inFU {
			return buf, errFragment
		}
		buf = append(buf, payload[2:]...)
		if fu&0x40 != 0 { // E
			d.inFU = false
		}
		return buf, nil
	}
	return buf, errUnsupport // STAP-B, MTAP, FU-B (interleaved mode) or reserved
}

func (d *h264) finish(buf []byte) ([]byte, bool, error) {
	if d.inFU {
		return nil, false, errIncomplete
	}
	if len(d.nals) == 0 {
		return nil, false, errEmpty
	}
	// Remember this access unit's parameter sets for later keyframes.
	for i := range d.nals {
		switch nal := d.nalAt(buf, i); nal[0] & 0x1f {
		case nalSPS:
			d.sps = append(d.sps[:0], nal...)
		case nalPPS:
			d.pps = append(d.pps[:0], nal...)
		}
	}
	if !d.idr {
		return buf, false, nil
	}
	if d.sawSPS && d.sawPPS {
		return buf, true, nil
	}
	if len(d.sps) == 0 || len(d.pps) == 0 {
		return buf, false, nil // an IDR no decoder can start from
	}
	// Rebuild: leading AUDs, the remembered parameter sets, then the rest.
	d.out = d.out[:0]
	i := 0
	for ; i < len(d.nals) && d.nalAt(buf, i)[0]&0x1f == nalAUD; i++ {
		d.out = append(d.out, startCode[:]...)
		d.out = append(d.out, d.nalAt(buf, i)...)
	}
	if !d.sawSPS {
		d.out = append(d.out, startCode[:]...)
		d.out = append(d.out, d.sps...)
	}
	if !d.sawPPS {
		if d.sawSPS { // keep the order SPS, PPS: move the AU's SPS first
			for j := i; j < len(d.nals); j++ {
				if nal := d.nalAt(buf, j); nal[0]&0x1f == nalSPS {
					d.out = append(d.out, startCode[:]...)
					d.out = append(d.out, nal...)
				}
			}
		}
		d.out = append(d.out, startCode[:]...)
		d.out = append(d.out, d.pps...)
	}
	for ; i < len(d.nals); i++ {
		nal := d.nalAt(buf, i)
		if !d.sawPPS && nal[0]&0x1f == nalSPS {
			continue // moved above
		}
		d.out = append(d.out, startCode[:]...)
		d.out = append(d.out, nal...)
	}
	return d.out, true, nil
}

// nalAt returns the i-th NAL unit of the access unit in buf.
func (d *h264) nalAt(buf []byte, i int) []byte {
	end := len(buf)
	if i+1 < len(d.nals) {
		end = d.nals[i+1] - len(startCode)
	}
	return buf[d.nals[i]:end]
}

// seed takes the parameter sets of an SDP fmtp line's sprop-parameter-sets
// (RFC 6184 8.1), for senders that announce them only there.
func (d *h264) seed(fmtp string) {
	for _, kv := range strings.Split(fmtp, ";") {
		k, v, ok := strings.Cut(strings.TrimSpace(kv), "=")
		if !ok || !strings.EqualFold(k, "sprop-parameter-sets") {
			continue
		}
		for _, b64 := range strings.Split(v, ",") {
			b64 = strings.TrimRight(strings.TrimSpace(b64), "=")
			nal, err := base64.RawStdEncoding.DecodeString(b64)
			if err != nil || len(nal) == 0 {
				continue
			}
			switch nal[0] & 0x1f {
			case nalSPS:
				d.sps = nal
			case nalPPS:
				d.pps = nal
			}
		}
	}
}
