package framer

// vp8 depacketizes VP8 (RFC 7741). The payload descriptor is parsed here
// rather than with codecs.VP8Packet only to keep the per-packet path free of
// interface calls and state; the logic is the same.
type vp8 struct {
	first bool
	key   bool
}

// vp8Descriptor returns the length of the VP8 payload descriptor and
// whether the packet begins a frame (S=1 and partition index 0).
func vp8Descriptor(b []byte) (int, bool, error) {
	if len(b) < 1 {
		return 0, false, errShort
	}
	n := 1
	if b[0]&0x80 != 0 { // X: extension byte follows
		if len(b) < 2 {
			return 0, false, errShort
		}
		x := b[1]
		n = 2
		if x&0x80 != 0 { // I: picture id, 7 or 15 bits
			if len(b) <= n {
				return 0, false, errShort
			}
			if b[n]&0x80 != 0 {
				n += 2
			} else {
				n++
			}
		}
		if x&0x40 != 0 { // L: TL0PICIDX
			n++
		}
		if x&0x30 != 0 { // T or K: TID/Y/KEYIDX byte
			n++
		}
	}
	if n > len(b) {
		return 0, false, errShort
	}
	return n, b[0]&0x10 != 0 && b[0]&0x07 == 0, nil
}

func (d *vp8) start(payload []byte, _ bool) bool {
	_, s, err := vp8Descriptor(payload)
	return err == nil && s
}

func (d *vp8) begin() { d.first, d.key = true, false }

func (d *vp8) add(buf, payload []byte) ([]byte, error) {
	n, s, err := vp8Descriptor(payload)
	if err != nil {
		return buf, err
	}
	data := payload[n:]
	if d.first {
		if !s {
			return buf, errNotStart
		}
		d.first = false
		// VP8 payload header (RFC 6386 9.1): P bit 0 = key frame, whose
		// 3-byte frame tag is followed by the start code 9d 01 2a.
		d.key = len(data) >= 6 && data[0]&0x01 == 0 &&
			data[3] == 0x9d && data[4] == 0x01 && data[5] == 0x2a
	}
	return append(buf, data...), nil
}

func (d *vp8) finish(buf []byte) ([]byte, bool, error) {
	if len(buf) == 0 {
		return nil, false, errEmpty
	}
	return buf, d.key, nil
}
