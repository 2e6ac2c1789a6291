package sources

import (
	"bytes"
	"fmt"
	"io"
	"time"

	"github.com/janusbridge/janusbridge/media"
)

// annexBReadSize is how much an Annex-B demuxer reads at a time.
const annexBReadSize = 256 << 10

// annexBDemuxer reads a raw H.264 stream (Annex-B start codes), cuts it
// into access units (at an access unit delimiter, parameter sets or SEI
// after a picture, or a slice whose first_mb_in_slice is 0 after a
// picture) and times them at a constant frame rate.
type annexBDemuxer struct {
	r     io.ReadSeeker
	path  string
	fps   float64
	track fileTrack

	buf     []byte // unread bytes are buf[pos:]
	pos     int
	bufOff  int64 // file offset of buf[0]
	eof     bool
	pending []byte // a NAL unit that starts the next access unit
	au      []byte // the access unit being built, Annex-B
	count   int64  // access units returned this pass
}

func newAnnexB(r io.ReadSeeker, path string, fps float64) (*annexBDemuxer, error) {
	if fps <= 0 {
		return nil, fmt.Errorf("%s: an Annex-B H.264 file needs fps", path)
	}
	d := &annexBDemuxer{r: r, path: path, fps: fps, track: fileTrack{codec: media.H264}}
	// The first access unit tells the profile (for the SDP).
	fr, err := d.next()
	if err == io.EOF {
		return nil, errAt(path, 0, "no H.264 access unit")
	}
	if err != nil {
		return nil, err
	}
	if sps, pps := media.H264ParamSets(fr.data); sps != nil {
		d.track.sps = [][]byte{append([]byte(nil), sps...)}
		if pps != nil {
			d.track.pps = [][]byte{append([]byte(nil), pps...)}
		}
	}
	if err := d.rewind(); err != nil {
		return nil, err
	}
	return d, nil
}

func (d *annexBDemuxer) tracks() []fileTrack { return []fileTrack{d.track} }

func (d *annexBDemuxer) rewind() error {
	if _, err := d.r.Seek(0, io.SeekStart); err != nil {
		return fmt.Errorf("%s: %w", d.path, err)
	}
	d.buf, d.pos, d.bufOff, d.eof = d.buf[:0], 0, 0, false
	d.pending, d.au, d.count = d.pending[:0], d.au[:0], 0
	return nil
}

// fill reads more of the file, keeping buf[pos:]; false at the end.
func (d *annexBDemuxer) fill() (bool, error) {
	if d.eof {
		return false, nil
	}
	if d.pos > 0 {
		n := copy(d.buf, d.buf[d.pos:])
		d.bufOff += int64(d.pos)
		d.buf, d.pos = d.buf[:n], 0
	}
	if len(d.buf)-d.pos > maxFrameSize {
		return false, errAt(d.path, d.bufOff, "NAL unit larger than %d bytes", maxFrameSize)
	}
	if cap(d.buf)-len(d.buf) < annexBReadSize {
		nb := make([]byte, len(d.buf), 2*cap(d.buf)+annexBReadSize)
		copy(nb, d.buf)
		d.buf = nb
	}
	n, err := d.r.Read(d.buf[len(d.buf):cap(d.buf)])
	d.buf = d.buf[:len(d.buf)+n]
	if err == io.EOF || (err == nil && n == 0) {
		d.eof = true
		return n > 0, nil
	}
	if err != nil {
		return false, fmt.Errorf("%s: %w", d.path, err)
	}
	return true, nil
}

// nal returns the next NAL unit (without start code), valid until the
// next call; nil at the end of the file.
func (d *annexBDemuxer) nal() ([]byte, error) {
	for {
		rest := d.buf[d.pos:]
		start := bytes.Index(rest, []byte{0, 0, 1})
		if start >= 0 {
			end := bytes.Index(rest[start+3:], []byte{0, 0, 1})
			if end >= 0 || d.eof {
				var nal []byte
				if end >= 0 {
					nal = rest[start+3 : start+3+end]
					d.pos += start + 3 + end
				} else {
					nal = rest[start+3:]
					d.pos = len(d.buf)
				}
				nal = bytes.TrimRight(nal, "\x00")
				if len(nal) == 0 {
					continue
				}
				return nal, nil
			}
		} else if d.eof {
			d.pos = len(d.buf)
			return nil, nil
		}
		more, err := d.fill()
		if err != nil {
			return nil, err
		}
		if !more && !d.eof {
			return nil, nil
		}
	}
}

func (d *annexBDemuxer) next() (frame, error) {
	d.au = d.au[:0]
	picture := false
	add := func(nal []byte) {
		d.au = append(d.au, 0, 0, 0, 1)
		d.au = append(d.au, nal...)
		if t := media.H264NALType(nal); t >= 1 && t <= 5 {
			picture = true
		}
	}
	if len(d.pending) > 0 {
		add(d.pending)
		d.pending = d.pending[:0]
	}
	for {
		nal, err := d.nal()
		if err != nil {
			return frame{}, err
		}
		if nal == nil {
			break
		}
		if picture && startsAU(nal) {
			d.pending = append(d.pending[:0], nal...)
			break
		}
		add(nal)
	}
	if len(d.au) == 0 {
		return frame{}, io.EOF
	}
	t := time.Duration(float64(d.count) * float64(time.Second) / d.fps)
	d.count++
	return frame{track: 0, dts: t, pts: t, keyframe: media.H264HasIDR(d.au), data: d.au}, nil
}

// startsAU reports whether a NAL unit that follows a picture starts a new
// access unit (H.264 §7.4.1.2.3, without comparing slice headers).
func startsAU(nal []byte) bool {
	switch t := media.H264NALType(nal); {
	case t == media.H264NALAUD, t == media.H264NALSPS, t == media.H264NALPPS, t == media.H264NALSEI, t >= 14 && t <= 18:
		return true
	case t >= 1 && t <= 5:
		return len(nal) > 1 && nal[1]&0x80 != 0 // first_mb_in_slice == 0
	}
	return false
}
