package sources

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/janusbridge/janusbridge/media"
)

// Matroska element IDs (with their length marker bits, as written).
const (
	mkvEBML           = 0x1A45DFA3
	mkvSegment        = 0x18538067
	mkvInfo           = 0x1549A966
	mkvTimecodeScale  = 0x2AD7B1
	mkvTracks         = 0x1654AE6B
	mkvTrackEntry     = 0xAE
	mkvTrackNumber    = 0xD7
	mkvCodecID        = 0x86
	mkvCodecPrivate   = 0x63A2
	mkvAudio          = 0xE1
	mkvChannels       = 0x9F
	mkvContentEncs    = 0x6D80
	mkvCluster        = 0x1F43B675
	mkvTimecode       = 0xE7
	mkvSimpleBlock    = 0xA3
	mkvBlockGroup     = 0xA0
	mkvBlock          = 0xA1
	mkvReferenceBlock = 0xFB
)

// mkvUnknownSize marks an element of unknown size (a live or crashed
// recording's Segment and Clusters).
const mkvUnknownSize = ^uint64(0)

// maxHeaderElement bounds the header elements (Info, Tracks) read whole.
const maxHeaderElement = 16 << 20

// mkvDemuxer reads WebM and Matroska files: the Segment's Info and Tracks,
// then the blocks (SimpleBlock, BlockGroup) of its Clusters, of known or
// unknown size, with all lacing modes.
type mkvDemuxer struct {
	r       io.ReadSeeker
	br      *bufio.Reader
	path    string
	size    int64 // of the file
	off     int64 // file offset of the next byte of br
	scale   time.Duration
	ftracks []fileTrack
	byNum   map[uint64]int // Matroska track number -> index

	firstCluster int64
	clusterTC    int64
	buf          []byte
	lace         [][]byte // frames of a laced block still to return
	laceTrack    int
	laceT        time.Duration
	laceKey      bool
}

func newMatroska(r io.ReadSeeker, path string) (*mkvDemuxer, error) {
	d := &mkvDemuxer{r: r, path: path, scale: time.Millisecond, byNum: map[uint64]int{}}
	fileSize, err := r.Seek(0, io.SeekEnd)
	if err == nil {
		_, err = r.Seek(0, io.SeekStart)
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	d.size, d.br = fileSize, bufio.NewReaderSize(r, 64<<10)
	id, size, err := d.header()
	if err != nil {
		return nil, err
	}
	if id != mkvEBML || size == mkvUnknownSize {
		return nil, errAt(path, 0, "not a Matroska/WebM file")
	}
	if err := d.skip(size); err != nil {
		return nil, err
	}
	if id, _, err = d.header(); err != nil {
		return nil, err
	}
	if id != mkvSegment {
		return nil, errAt(path, d.off, "no Segment after the EBML header")
	}
	tracksSeen := false
	for {
		start := d.off
		id, size, err := d.header()
		if err == io.EOF {
			return nil, errAt(path, d.off, "no Cluster")
		}
		if err != nil {
			return nil, err
		}
		switch id {
		case mkvCluster:
			if !tracksSeen {
				return nil, errAt(path, start, "Cluster before Tracks")
			}
			d.firstCluster = start
			return d, d.rewind()
		case mkvInfo, mkvTracks:
			if size == mkvUnknownSize || size > maxHeaderElement || size > uint64(d.size-d.off) {
				return nil, errAt(path, start, "element 0x%X of size %d: invalid or truncated", id, size)
			}
			b := make([]byte, size)
			if _, err := io.ReadFull(d.br, b); err != nil {
				return nil, errAt(path, d.off, "element 0x%X: %v", id, truncated(err))
			}
			d.off += int64(size)
			if id == mkvInfo {
				err = d.parseInfo(b, start)
			} else {
				err, tracksSeen = d.parseTracks(b, start), true
			}
			if err != nil {
				return nil, err
			}
		default:
			if size == mkvUnknownSize {
				return nil, errAt(path, start, "element 0x%X of unknown size", id)
			}
			if err := d.skip(size); err != nil {
				return nil, err
			}
		}
	}
}

func (d *mkvDemuxer) tracks() []fileTrack { return d.ftracks }

func (d *mkvDemuxer) rewind() error {
	if _, err := d.r.Seek(d.firstCluster, io.SeekStart); err != nil {
		return fmt.Errorf("%s: %w", d.path, err)
	}
	d.br.Reset(d.r)
	d.off, d.clusterTC, d.lace = d.firstCluster, 0, d.lace[:0]
	return nil
}

// header reads an element's ID and size.
func (d *mkvDemuxer) header() (id uint32, size uint64, err error) {
	start := d.off
	b, err := d.br.ReadByte()
	if err != nil {
		if err == io.EOF {
			return 0, 0, io.EOF
		}
		return 0, 0, fmt.Errorf("%s: %w", d.path, err)
	}
	n := 1
	for n <= 4 && b&(0x80>>(n-1)) == 0 {
		n++
	}
	if n > 4 {
		return 0, 0, errAt(d.path, start, "invalid element ID")
	}
	id = uint32(b)
	for range n - 1 {
		c, err := d.br.ReadByte()
		if err != nil {
			return 0, 0, errAt(d.path, start, "element ID: %v", truncated(err))
		}
		id = id<<8 | uint32(c)
	}
	d.off += int64(n)
	b, err = d.br.ReadByte()
	if err != nil {
		return 0, 0, errAt(d.path, start, "element size: %v", truncated(err))
	}
	n = 1
	for n <= 8 && b&(0x80>>(n-1)) == 0 {
		n++
	}
	if n > 8 {
		return 0, 0, errAt(d.path, start, "invalid element size")
	}
	size = uint64(b & (0xff >> n))
	ones := size == uint64(0xff>>n)
	for range n - 1 {
		c, err := d.br.ReadByte()
		if err != nil {
			return 0, 0, errAt(d.path, start, "element size: %v", truncated(err))
		}
		size = size<<8 | uint64(c)
		ones = ones && c == 0xff
	}
	d.off += int64(n)
	if ones {
		size = mkvUnknownSize
	}
	return id, size, nil
}

// skip skips size bytes.
func (d *mkvDemuxer) skip(size uint64) error {
	if size > uint64(d.size-d.off) {
		return errAt(d.path, d.off, "element of %d bytes, %d left in the file: %v", size, d.size-d.off, errTruncated)
	}
	if size <= uint64(d.br.Buffered()) {
		_, _ = d.br.Discard(int(size))
		d.off += int64(size)
		return nil
	}
	to := d.off + int64(size)
	if _, err := d.r.Seek(to, io.SeekStart); err != nil {
		return fmt.Errorf("%s: %w", d.path, err)
	}
	d.br.Reset(d.r)
	d.off = to
	return nil
}

// mkvChildren calls fn for each child element of b (all of known size);
// base is b's file offset, for errors.
func mkvChildren(path string, b []byte, base int64, fn func(id uint32, data []byte, off int64) error) error {
	for i := 0; i < len(b); {
		start := i
		id, n := mkvVint(b[i:], true)
		if n == 0 {
			return errAt(path, base+int64(start), "invalid element ID")
		}
		i += n
		size, n := mkvVint(b[i:], false)
		if n == 0 || size == mkvUnknownSize || size > uint64(len(b)-i-n) {
			return errAt(path, base+int64(start), "element 0x%X: invalid or truncated size", id)
		}
		i += n
		if err := fn(uint32(id), b[i:i+int(size)], base+int64(i)); err != nil {
			return err
		}
		i += int(size)
	}
	return nil
}

// mkvVint decodes an EBML variable-size integer: an ID (marker kept) or a
// size (marker removed; all ones is mkvUnknownSize). n is 0 when invalid.
func mkvVint(b []byte, isID bool) (v uint64, n int) {
	if len(b) == 0 {
		return 0, 0
	}
	n = 1
	for n <= 8 && b[0]&(0x80>>(n-1)) == 0 {
		n++
	}
	if n > 8 || (isID && n > 4) || n > len(b) {
		return 0, 0
	}
	if isID {
		v = uint64(b[0])
	} else {
		v = uint64(b[0] & (0xff >> n))
	}
	ones := v == uint64(0xff>>n)
	for _, c := range b[1:n] {
		v = v<<8 | uint64(c)
		ones = ones && c == 0xff
	}
	if !isID && ones {
		v = mkvUnknownSize
	}
	return v, n
}

// mkvUint decodes an unsigned integer element.
func mkvUint(b []byte) uint64 {
	var v uint64
	for _, c := range b {
		v = v<<8 | uint64(c)
	}
	return v
}

func (d *mkvDemuxer) parseInfo(b []byte, base int64) error {
	return mkvChildren(d.path, b, base, func(id uint32, data []byte, off int64) error {
		if id == mkvTimecodeScale {
			v := mkvUint(data)
			if v == 0 || v > uint64(time.Second) {
				return errAt(d.path, off, "TimecodeScale %d", v)
			}
			d.scale = time.Duration(v)
		}
		return nil
	})
}

func (d *mkvDemuxer) parseTracks(b []byte, base int64) error {
	return mkvChildren(d.path, b, base, func(id uint32, data []byte, off int64) error {
		if id != mkvTrackEntry {
			return nil
		}
		var num uint64
		var codecID string
		var private []byte
		var t fileTrack
		encoded := false
		err := mkvChildren(d.path, data, off, func(id uint32, data []byte, off int64) error {
			switch id {
			case mkvTrackNumber:
				num = mkvUint(data)
			case mkvCodecID:
				codecID = string(data)
			case mkvCodecPrivate:
				private = data
			case mkvContentEncs:
				encoded = true
			case mkvAudio:
				return mkvChildren(d.path, data, off, func(id uint32, data []byte, _ int64) error {
					if id == mkvChannels {
						t.channels = int(mkvUint(data))
					}
					return nil
				})
			}
			return nil
		})
		if err != nil {
			return err
		}
		switch codecID {
		case "V_VP8":
			t.codec = media.VP8
		case "V_VP9":
			t.codec = media.VP9
		case "V_AV1":
			t.codec = media.AV1
			if len(private) > 4 {
				t.av1Config = append([]byte(nil), private[4:]...)
			}
		case "V_MPEG4/ISO/AVC":
			t.codec = media.H264
			if t.sps, t.pps, t.nalLen, err = parseAVCC(private); err != nil {
				return errAt(d.path, off, "track %d: %v", num, err)
			}
		case "A_OPUS":
			t.codec = media.Opus
		case "A_AAC":
			t.codec = "aac"
			t.asc = append([]byte(nil), private...)
		default:
			t.codec = strings.ToLower(codecID)
		}
		if encoded {
			t.codec += " (with content encoding)" // compressed or encrypted: not sent
		}
		if _, dup := d.byNum[num]; dup {
			return errAt(d.path, off, "track number %d twice", num)
		}
		d.byNum[num] = len(d.ftracks)
		d.ftracks = append(d.ftracks, t)
		return nil
	})
}

// parseAVCC reads an AVCDecoderConfigurationRecord: the parameter sets and
// the size of the samples' NAL unit length fields.
func parseAVCC(b []byte) (sps, pps [][]byte, nalLen int, err error) {
	if len(b) < 7 || b[0] != 1 {
		return nil, nil, 0, errors.New("invalid avcC")
	}
	nalLen = int(b[4]&3) + 1
	if nalLen == 3 {
		return nil, nil, 0, errors.New("avcC: NAL length size 3")
	}
	i := 6
	read := func(count int) ([][]byte, error) {
		var out [][]byte
		for range count {
			if i+2 > len(b) {
				return nil, errors.New("avcC truncated")
			}
			n := int(binary.BigEndian.Uint16(b[i:]))
			i += 2
			if i+n > len(b) || n == 0 {
				return nil, errors.New("avcC truncated")
			}
			out = append(out, append([]byte(nil), b[i:i+n]...))
			i += n
		}
		return out, nil
	}
	if sps, err = read(int(b[5] & 0x1f)); err != nil {
		return nil, nil, 0, err
	}
	if i >= len(b) {
		return nil, nil, 0, errors.New("avcC truncated")
	}
	count := int(b[i])
	i++
	if pps, err = read(count); err != nil {
		return nil, nil, 0, err
	}
	return sps, pps, nalLen, nil
}

func (d *mkvDemuxer) next() (frame, error) {
	if len(d.lace) > 0 {
		return d.nextLaced(), nil
	}
	for {
		start := d.off
		id, size, err := d.header()
		if err != nil {
			return frame{}, err
		}
		switch id {
		case mkvSegment, mkvCluster: // enter: their children follow
			continue
		case mkvEBML: // a chained segment: the end of this one
			return frame{}, io.EOF
		}
		if size == mkvUnknownSize {
			return frame{}, errAt(d.path, start, "element 0x%X of unknown size", id)
		}
		switch id {
		case mkvTimecode, mkvSimpleBlock, mkvBlockGroup:
		default:
			if err := d.skip(size); err != nil {
				return frame{}, err
			}
			continue
		}
		if size > maxFrameSize {
			return frame{}, errAt(d.path, start, "element 0x%X of %d bytes", id, size)
		}
		if size > uint64(d.size-d.off) {
			return frame{}, errAt(d.path, d.off, "element 0x%X of %d bytes, %d left in the file: %v", id, size, d.size-d.off, errTruncated)
		}
		if cap(d.buf) < int(size) {
			d.buf = make([]byte, size)
		}
		b := d.buf[:size]
		if _, err := io.ReadFull(d.br, b); err != nil {
			return frame{}, errAt(d.path, d.off, "element 0x%X of %d bytes: %v", id, size, truncated(err))
		}
		d.off += int64(size)
		switch id {
		case mkvTimecode:
			d.clusterTC = int64(mkvUint(b))
			continue
		case mkvSimpleBlock:
			ok, err := d.block(b, start, true, false)
			if err != nil {
				return frame{}, err
			}
			if ok {
				return d.nextLaced(), nil
			}
		case mkvBlockGroup:
			var block []byte
			var blockOff int64
			key := true
			err := mkvChildren(d.path, b, start, func(id uint32, data []byte, off int64) error {
				switch id {
				case mkvBlock:
					block, blockOff = data, off
				case mkvReferenceBlock:
					key = false
				}
				return nil
			})
			if err != nil {
				return frame{}, err
			}
			if block != nil {
				ok, err := d.block(block, blockOff, false, key)
				if err != nil {
					return frame{}, err
				}
				if ok {
					return d.nextLaced(), nil
				}
			}
		}
	}
}

// block parses a Block or SimpleBlock into d.lace; ok is false for a block
// of a track we do not know. A SimpleBlock says itself whether it is a
// keyframe; a Block is one when key (its group has no ReferenceBlock).
func (d *mkvDemuxer) block(b []byte, off int64, simple, key bool) (ok bool, err error) {
	num, n := mkvVint(b, false)
	if n == 0 || len(b) < n+3 {
		return false, errAt(d.path, off, "invalid block header")
	}
	idx, known := d.byNum[num]
	if !known {
		return false, nil
	}
	tc := int64(int16(binary.BigEndian.Uint16(b[n:])))
	flags := b[n+2]
	if simple {
		key = flags&0x80 != 0
	}
	data := b[n+3:]
	d.lace = d.lace[:0]
	switch flags >> 1 & 3 {
	case 0:
		d.lace = append(d.lace, data)
	default:
		if d.lace, err = mkvLaces(d.lace, data, flags>>1&3); err != nil {
			return false, errAt(d.path, off, "block lacing: %v", err)
		}
	}
	d.laceTrack, d.laceKey = idx, key
	d.laceT = time.Duration(d.clusterTC+tc) * d.scale
	return true, nil
}

// nextLaced returns the next frame of the current block.
func (d *mkvDemuxer) nextLaced() frame {
	data := d.lace[0]
	d.lace = d.lace[1:]
	t := d.laceT
	if d.ftracks[d.laceTrack].codec == media.Opus {
		d.laceT += opusDuration(data)
	}
	return frame{track: d.laceTrack, dts: t, pts: t, keyframe: d.laceKey, data: data}
}

// mkvLaces splits laced block data (Xiph 1, fixed 2, EBML 3) into frames.
func mkvLaces(dst [][]byte, b []byte, mode byte) ([][]byte, error) {
	if len(b) < 1 {
		return nil, errTruncated
	}
	count := int(b[0]) + 1
	b = b[1:]
	sizes := make([]int, 0, count)
	switch mode {
	case 1: // Xiph
		for range count - 1 {
			size := 0
			for {
				if len(b) == 0 {
					return nil, errTruncated
				}
				c := b[0]
				b = b[1:]
				size += int(c)
				if c < 255 {
					break
				}
			}
			sizes = append(sizes, size)
		}
	case 2: // fixed
		if len(b)%count != 0 {
			return nil, errors.New("fixed lacing does not divide the block")
		}
		for range count - 1 {
			sizes = append(sizes, len(b)/count)
		}
	case 3: // EBML
		first, n := mkvVint(b, false)
		if n == 0 || first > uint64(len(b)) {
			return nil, errTruncated
		}
		b = b[n:]
		size := int64(first)
		sizes = append(sizes, int(size))
		for range count - 2 {
			raw, n := mkvVint(b, false)
			if n == 0 {
				return nil, errTruncated
			}
			b = b[n:]
			delta := int64(raw) - (int64(1)<<(7*n-1) - 1) // signed: bias removed
			size += delta
			if size < 0 || size > int64(len(b)) {
				return nil, errors.New("invalid EBML lace size")
			}
			sizes = append(sizes, int(size))
		}
	}
	for _, s := range sizes {
		if s > len(b) {
			return nil, errTruncated
		}
		dst = append(dst, b[:s])
		b = b[s:]
	}
	return append(dst, b), nil
}
