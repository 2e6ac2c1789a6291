package sources

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/bits"
	"time"

	"github.com/janusbridge/janusbridge/media"
)

// maxFrameSize bounds one frame or sample read from a file: a larger size
// field is taken as corruption, not as a reason to allocate.
const maxFrameSize = 64 << 20

// ivfDemuxer reads an IVF file: a 32-byte header (DKIF, codec FourCC, time
// base) and frames of a 12-byte header (size, timestamp) and the frame.
type ivfDemuxer struct {
	r        io.ReadSeeker
	path     string
	track    fileTrack
	num, den uint64 // time base: seconds = pts * num / den
	hdrLen   int64
	size     int64 // of the file
	off      int64
	hdr      [12]byte
	buf      []byte
}

func newIVF(r io.ReadSeeker, path string) (*ivfDemuxer, error) {
	var h [32]byte
	if _, err := io.ReadFull(r, h[:]); err != nil {
		return nil, errAt(path, 0, "IVF header: %v", truncated(err))
	}
	if string(h[:4]) != "DKIF" {
		return nil, errAt(path, 0, "not an IVF file")
	}
	size, err := r.Seek(0, io.SeekEnd)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	d := &ivfDemuxer{r: r, path: path, size: size}
	d.hdrLen = int64(binary.LittleEndian.Uint16(h[6:]))
	switch string(h[8:12]) {
	case "VP80":
		d.track.codec = media.VP8
	case "VP90":
		d.track.codec = media.VP9
	case "AV01":
		d.track.codec = media.AV1
	default:
		return nil, errAt(path, 8, "IVF codec %q not supported (VP80, VP90, AV01)", h[8:12])
	}
	d.den = uint64(binary.LittleEndian.Uint32(h[16:]))
	d.num = uint64(binary.LittleEndian.Uint32(h[20:]))
	if d.den == 0 || d.num == 0 {
		return nil, errAt(path, 16, "IVF time base %d/%d", d.num, d.den)
	}
	if d.hdrLen < 32 {
		return nil, errAt(path, 6, "IVF header length %d", d.hdrLen)
	}
	if err := d.rewind(); err != nil {
		return nil, err
	}
	return d, nil
}

func (d *ivfDemuxer) tracks() []fileTrack { return []fileTrack{d.track} }

func (d *ivfDemuxer) rewind() error {
	if _, err := d.r.Seek(d.hdrLen, io.SeekStart); err != nil {
		return fmt.Errorf("%s: %w", d.path, err)
	}
	d.off = d.hdrLen
	return nil
}

func (d *ivfDemuxer) next() (frame, error) {
	n, err := io.ReadFull(d.r, d.hdr[:])
	if n == 0 && err == io.EOF {
		return frame{}, io.EOF
	}
	if err != nil {
		return frame{}, errAt(d.path, d.off, "IVF frame header: %v", truncated(err))
	}
	size := binary.LittleEndian.Uint32(d.hdr[:])
	if size > maxFrameSize {
		return frame{}, errAt(d.path, d.off, "IVF frame size %d too large", size)
	}
	if int64(size) > d.size-d.off-12 {
		return frame{}, errAt(d.path, d.off+12, "IVF frame of %d bytes, %d left in the file: %v", size, d.size-d.off-12, errTruncated)
	}
	pts := binary.LittleEndian.Uint64(d.hdr[4:])
	if cap(d.buf) < int(size) {
		d.buf = make([]byte, size)
	}
	d.buf = d.buf[:size]
	if _, err := io.ReadFull(d.r, d.buf); err != nil {
		return frame{}, errAt(d.path, d.off+12, "IVF frame of %d bytes: %v", size, truncated(err))
	}
	d.off += 12 + int64(size)
	t := scaleTime(pts, d.num, d.den)
	return frame{track: 0, dts: t, pts: t, keyframe: ivfKeyframe(d.track.codec, d.buf), data: d.buf}, nil
}

// ivfKeyframe tells a VP8 or VP9 keyframe from its first bytes, and an AV1
// one by its sequence header.
func ivfKeyframe(codec string, b []byte) bool {
	if len(b) == 0 {
		return false
	}
	switch codec {
	case media.VP8:
		return b[0]&1 == 0
	case media.VP9:
		// frame_marker(2) profile_low(1) profile_high(1) [reserved(1) if
		// profile 3] show_existing_frame(1) frame_type(1: 0 = key).
		bit := 4
		if b[0]>>4&3 == 3 {
			bit = 5
		}
		if b[0]>>(7-bit)&1 == 1 {
			return false
		}
		return b[0]>>(6-bit)&1 == 0
	case media.AV1:
		return av1HasSequenceHeader(b)
	}
	return false
}

// scaleTime returns v * num / den seconds, saturating instead of
// overflowing.
func scaleTime(v, num, den uint64) time.Duration {
	if den == 0 {
		return 0
	}
	hi, lo := bits.Mul64(v, num)
	if hi >= den {
		return time.Duration(1<<63 - 1)
	}
	sec, rem := bits.Div64(hi, lo, den)
	if sec >= uint64(1<<63-1)/uint64(time.Second) {
		return time.Duration(1<<63 - 1)
	}
	hi, lo = bits.Mul64(rem, uint64(time.Second))
	frac, _ := bits.Div64(hi, lo, den)
	return time.Duration(sec)*time.Second + time.Duration(frac)
}

// truncated turns an unexpected end of file into errTruncated.
func truncated(err error) error {
	if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
		return errTruncated
	}
	return err
}
