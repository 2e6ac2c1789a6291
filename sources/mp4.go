package sources

import (
	"cmp"
	"encoding/binary"
	"fmt"
	"io"
	"slices"
	"time"

	"github.com/janusbridge/janusbridge/media"
)

const (
	// maxMP4Box bounds the boxes read whole (moov, moof).
	maxMP4Box = 64 << 20
	// maxMP4Samples bounds the samples of a file.
	maxMP4Samples = 1 << 24
)

// readSeekerAt is a file: MP4 samples are read where the tables say.
type readSeekerAt interface {
	io.ReadSeeker
	io.ReaderAt
}

// mp4Sample is one sample of an MP4 file, timed on the file's clock.
type mp4Sample struct {
	off      int64
	dts, pts time.Duration
	size     uint32
	track    uint16
	key      bool
}

// mp4Track is a track of the moov box.
type mp4Track struct {
	id        uint32
	timescale uint32
	ft        fileTrack
	// trex defaults, for fragments.
	defDuration, defSize, defFlags uint32
	nextDTS                        uint64 // in timescale units: where the next fragment goes on
	// shift moves the track's samples as its edit list says: the delay of
	// leading empty edits less the media time where the first edit starts.
	shift time.Duration
}

// mp4Demuxer reads an MP4 file, progressive (sample tables in moov) or
// fragmented (moof/traf/trun), into one list of samples ordered by their
// decoding time across tracks. Edit lists are not applied.
type mp4Demuxer struct {
	r       readSeekerAt
	path    string
	size    int64
	tracks_ []*mp4Track
	movieTS uint32 // mvhd timescale, for edit lists
	ftracks []fileTrack
	samples []mp4Sample
	i       int
	buf     []byte
}

func newMP4(r readSeekerAt, path string) (*mp4Demuxer, error) {
	d := &mp4Demuxer{r: r, path: path}
	size, err := r.Seek(0, io.SeekEnd)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	d.size = size
	moov := false
	var hdr [16]byte
	for off := int64(0); off < size; {
		if size-off < 8 {
			return nil, errAt(path, off, "box header: %v", errTruncated)
		}
		if _, err := r.ReadAt(hdr[:8], off); err != nil {
			return nil, errAt(path, off, "box header: %v", truncated(err))
		}
		boxSize := int64(binary.BigEndian.Uint32(hdr[:]))
		typ := string(hdr[4:8])
		head := int64(8)
		switch boxSize {
		case 0:
			boxSize = size - off
		case 1:
			if _, err := r.ReadAt(hdr[8:16], off+8); err != nil {
				return nil, errAt(path, off, "box header: %v", truncated(err))
			}
			boxSize, head = int64(binary.BigEndian.Uint64(hdr[8:])), 16
		}
		if boxSize < head || boxSize > size-off {
			return nil, errAt(path, off, "box %q of size %d (%d bytes left): %v", typ, boxSize, size-off, errTruncated)
		}
		if typ == "moov" || typ == "moof" {
			if boxSize > maxMP4Box {
				return nil, errAt(path, off, "box %q of %d bytes", typ, boxSize)
			}
			b := make([]byte, boxSize-head)
			if _, err := r.ReadAt(b, off+head); err != nil {
				return nil, errAt(path, off, "box %q: %v", typ, truncated(err))
			}
			if typ == "moov" {
				if moov {
					return nil, errAt(path, off, "a second moov")
				}
				moov = true
				err = d.parseMoov(b, off+head)
			} else {
				if !moov {
					return nil, errAt(path, off, "moof before moov")
				}
				err = d.parseMoof(b, off, off+head)
			}
			if err != nil {
				return nil, err
			}
		}
		off += boxSize
	}
	if !moov {
		return nil, errAt(path, 0, "no moov box (not an MP4 file?)")
	}
	slices.SortStableFunc(d.samples, func(a, b mp4Sample) int {
		if c := cmp.Compare(a.dts, b.dts); c != 0 {
			return c
		}
		return cmp.Compare(a.off, b.off)
	})
	for _, t := range d.tracks_ {
		d.ftracks = append(d.ftracks, t.ft)
	}
	return d, nil
}

func (d *mp4Demuxer) tracks() []fileTrack { return d.ftracks }

func (d *mp4Demuxer) rewind() error { d.i = 0; return nil }

func (d *mp4Demuxer) next() (frame, error) {
	if d.i >= len(d.samples) {
		return frame{}, io.EOF
	}
	s := &d.samples[d.i]
	d.i++
	if int64(s.size) > maxFrameSize {
		return frame{}, errAt(d.path, s.off, "sample of %d bytes", s.size)
	}
	if s.off < 0 || int64(s.size) > d.size-s.off {
		return frame{}, errAt(d.path, s.off, "sample of %d bytes past the end of the file (%d bytes): %v", s.size, d.size, errTruncated)
	}
	if cap(d.buf) < int(s.size) {
		d.buf = make([]byte, s.size)
	}
	b := d.buf[:s.size]
	if _, err := d.r.ReadAt(b, s.off); err != nil {
		return frame{}, errAt(d.path, s.off, "sample of %d bytes: %v", s.size, truncated(err))
	}
	return frame{track: int(s.track), dts: s.dts, pts: s.pts, keyframe: s.key, data: b}, nil
}

// mp4Boxes calls fn for each box in b; base is b's file offset.
func mp4Boxes(path string, b []byte, base int64, fn func(typ string, data []byte, off int64) error) error {
	for i := 0; i < len(b); {
		if len(b)-i < 8 {
			return errAt(path, base+int64(i), "box header: %v", errTruncated)
		}
		size := uint64(binary.BigEndian.Uint32(b[i:]))
		typ := string(b[i+4 : i+8])
		head := 8
		switch size {
		case 0:
			size = uint64(len(b) - i)
		case 1:
			if len(b)-i < 16 {
				return errAt(path, base+int64(i), "box header: %v", errTruncated)
			}
			size, head = binary.BigEndian.Uint64(b[i+8:]), 16
		}
		if size < uint64(head) || size > uint64(len(b)-i) {
			return errAt(path, base+int64(i), "box %q of size %d: %v", typ, size, errTruncated)
		}
		if err := fn(typ, b[i+head:i+int(size)], base+int64(i+head)); err != nil {
			return err
		}
		i += int(size)
	}
	return nil
}

// mp4Reader reads big-endian fields of a box, remembering a short read.
type mp4Reader struct {
	b   []byte
	bad bool
}

func (r *mp4Reader) skip(n int) {
	if n > len(r.b) || n < 0 {
		r.bad, r.b = true, nil
		return
	}
	r.b = r.b[n:]
}

func (r *mp4Reader) u8() uint8 {
	if len(r.b) < 1 {
		r.bad = true
		return 0
	}
	v := r.b[0]
	r.b = r.b[1:]
	return v
}

func (r *mp4Reader) u32() uint32 {
	if len(r.b) < 4 {
		r.bad, r.b = true, nil
		return 0
	}
	v := binary.BigEndian.Uint32(r.b)
	r.b = r.b[4:]
	return v
}

func (r *mp4Reader) u64() uint64 {
	if len(r.b) < 8 {
		r.bad, r.b = true, nil
		return 0
	}
	v := binary.BigEndian.Uint64(r.b)
	r.b = r.b[8:]
	return v
}

// count reads an entry count and checks that the entries fit.
func (r *mp4Reader) count(entrySize int) int {
	n := int(r.u32())
	if n < 0 || entrySize > 0 && n > len(r.b)/entrySize {
		r.bad = true
		return 0
	}
	return n
}

func (d *mp4Demuxer) parseMoov(b []byte, base int64) error {
	return mp4Boxes(d.path, b, base, func(typ string, data []byte, off int64) error {
		switch typ {
		case "mvhd":
			r := mp4Reader{b: data}
			if r.u8() == 1 {
				r.skip(3 + 16)
			} else {
				r.skip(3 + 8)
			}
			d.movieTS = r.u32()
			if r.bad {
				return errAt(d.path, off, "mvhd: %v", errTruncated)
			}
		case "trak":
			return d.parseTrak(data, off)
		case "mvex":
			return mp4Boxes(d.path, data, off, func(typ string, data []byte, off int64) error {
				if typ != "trex" {
					return nil
				}
				r := mp4Reader{b: data}
				r.skip(4)
				id := r.u32()
				r.skip(4)
				dur, size, flags := r.u32(), r.u32(), r.u32()
				if r.bad {
					return errAt(d.path, off, "trex: %v", errTruncated)
				}
				if t := d.track(id); t != nil {
					t.defDuration, t.defSize, t.defFlags = dur, size, flags
				}
				return nil
			})
		}
		return nil
	})
}

// track returns the track with that ID, nil when unknown.
func (d *mp4Demuxer) track(id uint32) *mp4Track {
	for _, t := range d.tracks_ {
		if t.id == id {
			return t
		}
	}
	return nil
}

// stbl holds the sample tables of a track.
type stbl struct {
	stsd, stts, ctts, stsc, stsz, stz2, stco, co64, stss []byte
	stssSeen                                             bool
	off                                                  int64 // of stbl, for errors
}

func (d *mp4Demuxer) parseTrak(b []byte, base int64) error {
	t := &mp4Track{}
	var tables stbl
	var handler string
	var elst []byte
	err := mp4Boxes(d.path, b, base, func(typ string, data []byte, off int64) error {
		switch typ {
		case "edts":
			return mp4Boxes(d.path, data, off, func(typ string, data []byte, _ int64) error {
				if typ == "elst" {
					elst = data
				}
				return nil
			})
		case "tkhd":
			r := mp4Reader{b: data}
			v := r.u8()
			r.skip(3)
			if v == 1 {
				r.skip(16)
			} else {
				r.skip(8)
			}
			t.id = r.u32()
			if r.bad {
				return errAt(d.path, off, "tkhd: %v", errTruncated)
			}
		case "mdia":
			return mp4Boxes(d.path, data, off, func(typ string, data []byte, off int64) error {
				switch typ {
				case "mdhd":
					r := mp4Reader{b: data}
					v := r.u8()
					r.skip(3)
					if v == 1 {
						r.skip(16)
					} else {
						r.skip(8)
					}
					t.timescale = r.u32()
					if r.bad || t.timescale == 0 {
						return errAt(d.path, off, "mdhd: invalid timescale")
					}
				case "hdlr":
					if len(data) >= 12 {
						handler = string(data[8:12])
					}
				case "minf":
					return mp4Boxes(d.path, data, off, func(typ string, data []byte, off int64) error {
						if typ != "stbl" {
							return nil
						}
						tables.off = off
						return mp4Boxes(d.path, data, off, func(typ string, data []byte, _ int64) error {
							switch typ {
							case "stsd":
								tables.stsd = data
							case "stts":
								tables.stts = data
							case "ctts":
								tables.ctts = data
							case "stsc":
								tables.stsc = data
							case "stsz":
								tables.stsz = data
							case "stz2":
								tables.stz2 = data
							case "stco":
								tables.stco = data
							case "co64":
								tables.co64 = data
							case "stss":
								tables.stss, tables.stssSeen = data, true
							}
							return nil
						})
					})
				}
				return nil
			})
		}
		return nil
	})
	if err != nil {
		return err
	}
	if handler != "vide" && handler != "soun" {
		return nil // hints, subtitles, metadata: not media we send
	}
	if t.timescale == 0 || tables.stsd == nil {
		return errAt(d.path, base, "track %d without mdhd or stsd", t.id)
	}
	if d.track(t.id) != nil {
		return errAt(d.path, base, "track ID %d twice", t.id)
	}
	if len(d.tracks_) >= 1<<15 {
		return errAt(d.path, base, "too many tracks")
	}
	if t.ft, err = d.sampleEntry(tables.stsd, tables.off); err != nil {
		return err
	}
	t.shift = d.editShift(elst, t.timescale)
	d.tracks_ = append(d.tracks_, t)
	return d.sampleTable(t, uint16(len(d.tracks_)-1), &tables)
}

// editShift returns how far an edit list (elst box) moves a track's
// samples on the movie's timeline: leading empty edits delay it, and the
// first edit's media time is where its presentation starts (B-frame
// delay, audio priming). Later edits are not applied. A missing or
// unreadable list moves nothing.
func (d *mp4Demuxer) editShift(elst []byte, timescale uint32) time.Duration {
	if elst == nil || d.movieTS == 0 {
		return 0
	}
	r := mp4Reader{b: elst}
	v := r.u8()
	r.skip(3)
	size := 12
	if v == 1 {
		size = 20
	}
	n := r.count(size)
	var delay time.Duration
	for range n {
		var dur uint64
		var media int64
		if v == 1 {
			dur, media = r.u64(), int64(r.u64())
		} else {
			dur, media = uint64(r.u32()), int64(int32(r.u32()))
		}
		r.skip(4)
		if r.bad {
			return 0
		}
		if media == -1 { // an empty edit
			delay += scaleTime(dur, 1, uint64(d.movieTS))
			continue
		}
		if media < 0 {
			return 0
		}
		return delay - scaleTime(uint64(media), 1, uint64(timescale))
	}
	return delay
}

// sampleEntry reads the codec of a track from its first sample entry.
func (d *mp4Demuxer) sampleEntry(b []byte, off int64) (fileTrack, error) {
	r := mp4Reader{b: b}
	r.skip(4)
	if r.count(8) < 1 || r.bad {
		return fileTrack{}, errAt(d.path, off, "stsd without a sample entry")
	}
	size := int(r.u32())
	typ := string(r.b[:min(4, len(r.b))])
	r.skip(4)
	if size < 8 || size-8 > len(r.b) {
		return fileTrack{}, errAt(d.path, off, "stsd entry: %v", errTruncated)
	}
	entry := r.b[:size-8]
	var ft fileTrack
	children := func(skip int) (map[string][]byte, error) {
		boxes := map[string][]byte{}
		if skip > len(entry) {
			return nil, errAt(d.path, off, "%s entry: %v", typ, errTruncated)
		}
		err := mp4Boxes(d.path, entry[skip:], off, func(typ string, data []byte, _ int64) error {
			boxes[typ] = data
			return nil
		})
		return boxes, err
	}
	switch typ {
	case "avc1", "avc3":
		ft.codec = media.H264
		boxes, err := children(78)
		if err != nil {
			return ft, err
		}
		avcC, ok := boxes["avcC"]
		if !ok {
			return ft, errAt(d.path, off, "%s without avcC", typ)
		}
		if ft.sps, ft.pps, ft.nalLen, err = parseAVCC(avcC); err != nil {
			return ft, errAt(d.path, off, "%v", err)
		}
	case "vp09":
		ft.codec = media.VP9
	case "av01":
		ft.codec = media.AV1
		boxes, err := children(78)
		if err != nil {
			return ft, err
		}
		if av1C := boxes["av1C"]; len(av1C) > 4 {
			ft.av1Config = append([]byte(nil), av1C[4:]...)
		}
	case "Opus", "opus":
		ft.codec = media.Opus
		if len(entry) >= 18 {
			ft.channels = int(binary.BigEndian.Uint16(entry[16:]))
		}
	case "mp4a":
		ft.codec = "aac"
		boxes, err := children(28)
		if err != nil {
			return ft, err
		}
		if esds, ok := boxes["esds"]; ok && len(esds) > 4 {
			ft.asc = esdsASC(esds[4:])
		}
	default:
		ft.codec = typ
	}
	return ft, nil
}

// sampleTable adds the samples of a progressive track's tables.
func (d *mp4Demuxer) sampleTable(t *mp4Track, idx uint16, s *stbl) error {
	bad := func(box string) error { return errAt(d.path, s.off, "%s: invalid or truncated", box) }
	// Sizes.
	var sizes []uint32
	var fixed uint32
	count := 0
	switch {
	case s.stsz != nil:
		r := mp4Reader{b: s.stsz}
		r.skip(4)
		fixed = r.u32()
		if fixed == 0 {
			count = r.count(4)
			sizes = make([]uint32, count)
			for i := range sizes {
				sizes[i] = r.u32()
			}
		} else {
			count = int(r.u32())
		}
		if r.bad {
			return bad("stsz")
		}
	case s.stz2 != nil:
		r := mp4Reader{b: s.stz2}
		r.skip(7)
		field := int(r.u8())
		count = int(r.u32())
		if r.bad || (field != 4 && field != 8 && field != 16) || uint64(count)*uint64(field) > uint64(len(r.b))*8 {
			return bad("stz2")
		}
		sizes = make([]uint32, count)
		for i := range sizes {
			switch field {
			case 4:
				sizes[i] = uint32(r.b[i/2]>>(4*(1-i%2))) & 0xf
			case 8:
				sizes[i] = uint32(r.b[i])
			case 16:
				sizes[i] = uint32(binary.BigEndian.Uint16(r.b[2*i:]))
			}
		}
	default:
		if s.stts == nil {
			return nil // an empty track of a fragmented file
		}
		return bad("stsz")
	}
	if count == 0 {
		return nil
	}
	if len(d.samples)+count > maxMP4Samples || int64(len(d.samples)+count) > d.size {
		return errAt(d.path, s.off, "%d samples", count)
	}
	// Chunk offsets.
	var chunks []int64
	if s.co64 != nil {
		r := mp4Reader{b: s.co64}
		r.skip(4)
		n := r.count(8)
		for range n {
			chunks = append(chunks, int64(r.u64()))
		}
		if r.bad {
			return bad("co64")
		}
	} else {
		r := mp4Reader{b: s.stco}
		r.skip(4)
		n := r.count(4)
		for range n {
			chunks = append(chunks, int64(r.u32()))
		}
		if r.bad {
			return bad("stco")
		}
	}
	// Sample to chunk.
	type stscEntry struct{ first, perChunk uint32 }
	var stsc []stscEntry
	{
		r := mp4Reader{b: s.stsc}
		r.skip(4)
		n := r.count(12)
		for range n {
			e := stscEntry{r.u32(), r.u32()}
			r.skip(4)
			if e.first == 0 || (len(stsc) > 0 && e.first <= stsc[len(stsc)-1].first) {
				return bad("stsc")
			}
			stsc = append(stsc, e)
		}
		if r.bad || len(stsc) == 0 {
			return bad("stsc")
		}
	}
	// Sync samples.
	var sync map[uint32]bool
	if s.stssSeen {
		r := mp4Reader{b: s.stss}
		r.skip(4)
		n := r.count(4)
		sync = make(map[uint32]bool, n)
		for range n {
			sync[r.u32()] = true
		}
		if r.bad {
			return bad("stss")
		}
	}
	// Decoding times and composition offsets, as run-length readers.
	stts := mp4Reader{b: s.stts}
	stts.skip(4)
	sttsN := stts.count(8)
	ctts := mp4Reader{b: s.ctts}
	cttsN := 0
	if s.ctts != nil {
		ctts.skip(4)
		cttsN = ctts.count(8)
	}
	if stts.bad || ctts.bad {
		return bad("stts/ctts")
	}
	var sttsLeft, delta, cttsLeft uint32
	var cto int32
	var dts uint64

	sample := 0
	for c := range chunks {
		k := 0
		for k+1 < len(stsc) && uint32(c+1) >= stsc[k+1].first {
			k++
		}
		off := chunks[c]
		for range stsc[k].perChunk {
			if sample >= count {
				break
			}
			size := fixed
			if sizes != nil {
				size = sizes[sample]
			}
			for sttsLeft == 0 && sttsN > 0 {
				sttsLeft, delta = stts.u32(), stts.u32()
				sttsN--
			}
			if sttsLeft > 0 {
				sttsLeft--
			}
			for cttsLeft == 0 && cttsN > 0 {
				cttsLeft, cto = ctts.u32(), int32(ctts.u32())
				cttsN--
			}
			if cttsLeft > 0 {
				cttsLeft--
			}
			pts := int64(dts) + int64(cto)
			d.samples = append(d.samples, mp4Sample{
				off: off, size: size, track: idx,
				dts: scaleTime(dts, 1, uint64(t.timescale)) + t.shift,
				pts: scaleTime(uint64(max(pts, 0)), 1, uint64(t.timescale)) + t.shift,
				key: sync == nil || sync[uint32(sample+1)],
			})
			off += int64(size)
			dts += uint64(delta)
			sample++
		}
	}
	if sample < count {
		return errAt(d.path, s.off, "sample tables describe %d of %d samples", sample, count)
	}
	t.nextDTS = dts
	return nil
}

// parseMoof adds the samples of a movie fragment; moofOff is the box's
// start, the default base of its data offsets.
func (d *mp4Demuxer) parseMoof(b []byte, moofOff, base int64) error {
	return mp4Boxes(d.path, b, base, func(typ string, data []byte, off int64) error {
		if typ != "traf" {
			return nil
		}
		var t *mp4Track
		var idx uint16
		var baseOff int64 = moofOff
		var defDur, defSize, defFlags uint32
		next := int64(-1) // where the next trun's data starts when it gives no offset
		return mp4Boxes(d.path, data, off, func(typ string, data []byte, off int64) error {
			r := mp4Reader{b: data}
			switch typ {
			case "tfhd":
				flags := r.u32() & 0xffffff
				id := r.u32()
				t = d.track(id)
				if t == nil {
					return nil
				}
				for i, tt := range d.tracks_ {
					if tt == t {
						idx = uint16(i)
					}
				}
				defDur, defSize, defFlags = t.defDuration, t.defSize, t.defFlags
				if flags&0x1 != 0 {
					baseOff = int64(r.u64())
				}
				if flags&0x2 != 0 {
					r.skip(4)
				}
				if flags&0x8 != 0 {
					defDur = r.u32()
				}
				if flags&0x10 != 0 {
					defSize = r.u32()
				}
				if flags&0x20 != 0 {
					defFlags = r.u32()
				}
			case "tfdt":
				if t == nil {
					return nil
				}
				if r.u8() == 1 {
					r.skip(3)
					t.nextDTS = r.u64()
				} else {
					r.skip(3)
					t.nextDTS = uint64(r.u32())
				}
			case "trun":
				if t == nil {
					return nil
				}
				flags := r.u32() & 0xffffff
				per := 0
				for _, f := range []uint32{0x100, 0x200, 0x400, 0x800} {
					if flags&f != 0 {
						per += 4
					}
				}
				n := int(r.u32())
				dataOff := next
				if flags&0x1 != 0 {
					dataOff = baseOff + int64(int32(r.u32()))
				} else if dataOff < 0 {
					dataOff = baseOff
				}
				firstFlags, hasFirst := defFlags, false
				if flags&0x4 != 0 {
					firstFlags, hasFirst = r.u32(), true
				}
				if r.bad || n < 0 || (per > 0 && n > len(r.b)/per) {
					return errAt(d.path, off, "trun: invalid or truncated")
				}
				if len(d.samples)+n > maxMP4Samples || int64(len(d.samples)+n) > d.size {
					return errAt(d.path, off, "trun: %d more samples than the file can hold", n)
				}
				for i := range n {
					dur, size, sflags, cto := defDur, defSize, defFlags, int32(0)
					if i == 0 && hasFirst {
						sflags = firstFlags
					}
					if flags&0x100 != 0 {
						dur = r.u32()
					}
					if flags&0x200 != 0 {
						size = r.u32()
					}
					if flags&0x400 != 0 {
						sflags = r.u32()
					}
					if flags&0x800 != 0 {
						cto = int32(r.u32())
					}
					if dataOff < 0 || dataOff+int64(size) > d.size {
						return errAt(d.path, off, "trun: sample %d at %d+%d is past the end of the file (%d bytes): %v",
							i, dataOff, size, d.size, errTruncated)
					}
					pts := int64(t.nextDTS) + int64(cto)
					d.samples = append(d.samples, mp4Sample{
						off: dataOff, size: size, track: idx,
						dts: scaleTime(t.nextDTS, 1, uint64(t.timescale)) + t.shift,
						pts: scaleTime(uint64(max(pts, 0)), 1, uint64(t.timescale)) + t.shift,
						key: sflags&0x10000 == 0,
					})
					dataOff += int64(size)
					t.nextDTS += uint64(dur)
				}
				next = dataOff
			}
			if r.bad {
				return errAt(d.path, off, "%s: %v", typ, errTruncated)
			}
			return nil
		})
	})
}

// esdsASC returns the AudioSpecificConfig (the DecoderSpecificInfo) of an
// esds box's ES descriptor, nil when it has none of MPEG-4 audio.
func esdsASC(b []byte) []byte {
	// desc reads a descriptor's tag and body.
	desc := func(b []byte) (tag byte, body, rest []byte, ok bool) {
		if len(b) < 2 {
			return 0, nil, nil, false
		}
		tag, b = b[0], b[1:]
		n := 0
		for i := 0; i < 4; i++ {
			if len(b) == 0 {
				return 0, nil, nil, false
			}
			c := b[0]
			b = b[1:]
			n = n<<7 | int(c&0x7f)
			if c&0x80 == 0 {
				break
			}
		}
		if n > len(b) {
			return 0, nil, nil, false
		}
		return tag, b[:n], b[n:], true
	}
	tag, es, _, ok := desc(b)
	if !ok || tag != 0x03 || len(es) < 3 {
		return nil
	}
	flags := es[2]
	es = es[3:]
	if flags&0x80 != 0 { // streamDependenceFlag
		if len(es) < 2 {
			return nil
		}
		es = es[2:]
	}
	if flags&0x40 != 0 { // URL_Flag
		if len(es) < 1 || int(es[0])+1 > len(es) {
			return nil
		}
		es = es[1+int(es[0]):]
	}
	if flags&0x20 != 0 { // OCRstreamFlag
		if len(es) < 2 {
			return nil
		}
		es = es[2:]
	}
	tag, dc, _, ok := desc(es)
	if !ok || tag != 0x04 || len(dc) < 13 || dc[0] != 0x40 { // DecoderConfigDescriptor of MPEG-4 audio
		return nil
	}
	tag, asc, _, ok := desc(dc[13:])
	if !ok || tag != 0x05 {
		return nil
	}
	return append([]byte(nil), asc...)
}
