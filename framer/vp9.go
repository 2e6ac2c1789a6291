package framer

// vp9 depacketizes VP9 (RFC 9628, draft-ietf-payload-vp9). One RTP frame
// (one timestamp, ended by the marker bit) is one picture: one layer frame
// per spatial layer, each from a packet with B=1 to one with E=1. A single
// layer frame is output as is; several are joined into a superframe
// (VP9 bitstream Annex B) as the containers expect.
//
// codecs.VP9Packet is not used: its Unmarshal appends the reference indices
// to the previous call's slice (so a reused packet errors after a few
// inter frames) and allocates for the scalability structure.
type vp9 struct {
	first   bool
	key     bool
	inLayer bool
	layers  []int // start offset of each layer frame in buf
	ends    []int // end offset of each closed layer frame
	scratch []byte
}

// vp9Desc is what the framer needs of a VP9 payload descriptor.
type vp9Desc struct {
	n          int // descriptor length
	p, b, e, l bool
	sid        uint8
}

func parseVP9(b []byte) (vp9Desc, error) {
	var d vp9Desc
	if len(b) < 1 {
		return d, errShort
	}
	h := b[0]
	d.p, d.l, d.b, d.e = h&0x40 != 0, h&0x20 != 0, h&0x08 != 0, h&0x04 != 0
	flex, ss := h&0x10 != 0, h&0x02 != 0
	n := 1
	if h&0x80 != 0 { // I: picture id
		if len(b) <= n {
			return d, errShort
		}
		if b[n]&0x80 != 0 {
			n += 2
		} else {
			n++
		}
	}
	if d.l { // layer indices
		if len(b) <= n {
			return d, errShort
		}
		d.sid = (b[n] >> 1) & 0x07
		n++
		if !flex {
			n++ // TL0PICIDX
		}
	}
	if flex && d.p { // reference indices, up to 3
		for i := 0; ; i++ {
			if len(b) <= n || i == 3 {
				return d, errShort
			}
			more := b[n]&0x01 != 0
			n++
			if !more {
				break
			}
		}
	}
	if ss { // scalability structure
		if len(b) <= n {
			return d, errShort
		}
		nS := int(b[n]>>5) + 1
		y, g := b[n]&0x10 != 0, b[n]&0x08 != 0
		n++
		if y {
			n += 4 * nS
		}
		if g {
			if len(b) <= n {
				return d, errShort
			}
			nG := int(b[n])
			n++
			for i := 0; i < nG; i++ {
				if len(b) <= n {
					return d, errShort
				}
				n += 1 + int(b[n]>>2&0x03)
			}
		}
	}
	if n > len(b) {
		return d, errShort
	}
	d.n = n
	return d, nil
}

// vp9KeyHeader reports whether a VP9 frame's uncompressed header says
// KEY_FRAME (and not show_existing_frame).
func vp9KeyHeader(f []byte) bool {
	if len(f) < 1 || f[0]>>6 != 2 { // frame_marker
		return false
	}
	profile := f[0]>>5&1 | f[0]>>3&2
	bit := 3 // next bit, counted from the most significant (7)
	if profile == 3 {
		bit-- // reserved_zero
	}
	showExisting := f[0]>>bit&1 == 1
	frameType := f[0] >> (bit - 1) & 1
	return !showExisting && frameType == 0
}

func (d *vp9) start(payload []byte, _ bool) bool {
	h, err := parseVP9(payload)
	return err == nil && h.b && (!h.l || h.sid == 0)
}

func (d *vp9) begin() {
	d.first, d.key, d.inLayer = true, false, false
	d.layers, d.ends = d.layers[:0], d.ends[:0]
}

func (d *vp9) add(buf, payload []byte) ([]byte, error) {
	h, err := parseVP9(payload)
	if err != nil {
		return buf, err
	}
	data := payload[h.n:]
	if d.first {
		if !h.b || (h.l && h.sid != 0) {
			return buf, errNotStart
		}
		d.first = false
		d.key = !h.p && vp9KeyHeader(data)
	}
	switch {
	case h.b:
		if d.inLayer { // previous layer frame without E: it ended here
			d.ends = append(d.ends, len(buf))
		}
		d.layers = append(d.layers, len(buf))
		d.inLayer = true
	case !d.inLayer:
		return buf, errFragment
	}
	buf = append(buf, data...)
	if h.e {
		d.ends = append(d.ends, len(buf))
		d.inLayer = false
	}
	return buf, nil
}

func (d *vp9) finish(buf []byte) ([]byte, bool, error) {
	if d.inLayer {
		d.ends = append(d.ends, len(buf))
		d.inLayer = false
	}
	if len(buf) == 0 {
		return nil, false, errEmpty
	}
	n := len(d.layers)
	if n <= 1 {
		return buf, d.key, nil
	}
	if n > 8 {
		return nil, false, errUnsupport
	}
	maxSize := 0
	for i := range d.layers {
		size := d.ends[i] - d.layers[i]
		if size == 0 || vp9HasIndex(buf[d.layers[i]:d.ends[i]]) {
			return nil, false, errUnsupport // cannot nest superframes
		}
		maxSize = max(maxSize, size)
	}
	mag := 1
	for maxSize >= 1<<(8*mag) {
		mag++
	}
	if mag > 4 {
		return nil, false, errUnsupport
	}
	marker := byte(0xc0 | (mag-1)<<3 | (n - 1))
	d.scratch = append(d.scratch[:0], buf...)
	d.scratch = append(d.scratch, marker)
	for i := range d.layers {
		size := d.ends[i] - d.layers[i]
		for j := 0; j < mag; j++ {
			d.scratch = append(d.scratch, byte(size>>(8*j)))
		}
	}
	d.scratch = append(d.scratch, marker)
	return d.scratch, d.key, nil
}

// vp9HasIndex reports whether frame ends with a superframe index.
func vp9HasIndex(frame []byte) bool {
	last := frame[len(frame)-1]
	if last&0xe0 != 0xc0 {
		return false
	}
	size := 2 + int((last>>3)&3+1)*int(last&7+1)
	return len(frame) >= size && frame[len(frame)-size] == last
}
