package sinks

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/janusbridge/janusbridge/media"
)

// Fragmented MP4 (ISO/IEC 14496-12), written box by box.
//
// Layout: ftyp + moov (with mvex, empty sample tables) once every video track
// has its first keyframe, then one moof+mdat per fragment, then at Close an
// mfra and the durations patched into mvhd/tkhd/mdhd/mehd. A file cut off at
// any fragment boundary is a complete fragmented MP4.
//
// Timing: each track has its own timescale (90 kHz video, 48 kHz Opus); a
// sample's decode time is its PTS in that timescale (no B-frames in WebRTC,
// so DTS = PTS), its duration the difference to the next sample of the track.
// To know that difference each track holds its newest sample back until the
// next one arrives (Flush writes everything else; Close gives the held samples
// the track's typical duration). A pause longer than mp4GapThreshold ends the
// fragment: the sample before it keeps its typical duration and the next
// fragment's tfdt jumps, so gaps stay gaps in time (ffmpeg takes tfdt as the
// decode time).

const (
	mp4MovieTimescale = 1000
	mp4VideoTimescale = 90000
	mp4AudioTimescale = 48000
	// mp4FragmentDuration is how much media a fragment holds at most (besides
	// ending at each video keyframe): a SIGKILL loses at most this much even
	// when nobody calls Flush.
	mp4FragmentDuration = time.Second
	// mp4GapThreshold: a pause between two samples of a track longer than
	// this is written as a gap (tfdt jump) rather than as a long sample.
	mp4GapThreshold = 500 * time.Millisecond
	// mp4InitWait bounds how long frames are queued while a video track has
	// not yet delivered its first keyframe; after that the init segment is
	// written without the video tracks still missing, whose frames are then
	// dropped for the rest of the file.
	mp4InitWait = 5 * time.Second
	// mp4EpochOffset is the number of seconds from 1904-01-01 (the MP4 epoch)
	// to 1970-01-01.
	mp4EpochOffset = 2082844800
)

// trun sample flags (ISO/IEC 14496-12 8.8.3.1).
const (
	mp4SyncSampleFlags    = 0x02000000 // sample_depends_on = 2 (does not depend on others)
	mp4NonSyncSampleFlags = 0x01010000 // sample_depends_on = 1, sample_is_non_sync_sample
)

var _ muxer = (*mp4Muxer)(nil)

// mp4Muxer is the fragmented MP4 muxer; see newMP4.
type mp4Muxer struct {
	w   io.WriteSeeker
	off int64 // file offset of the next byte written
	err error // sticky write error: the file is broken after it

	tracks  []*mp4Track
	byIndex map[int]*mp4Track

	initDone bool
	queue    []*media.Frame // frames waiting for the init segment
	created  time.Time      // wall clock of the first frame, for mvhd/tkhd/mdhd

	seq       uint32        // mfhd sequence number of the last fragment
	fragOpen  bool          // the pending fragment holds samples
	fragStart time.Duration // newest PTS when the pending fragment began
	now       time.Duration // newest PTS written
	buf       []byte        // reused fragment buffer

	// Offsets of the duration fields patched at Close.
	mvhdDur, mehdDur int64
	closed           bool
}

type mp4Track struct {
	t         media.Track
	id        uint32 // track_ID, 1-based
	video     bool
	timescale uint32

	// Codec configuration: the sample entry's configuration box (avcC, vpcC,
	// av1C, dOps) and the picture size; nil until known (video: first keyframe).
	cfg           []byte
	width, height uint16
	excluded      bool // left out of the init segment: frames are dropped
	// H.264: the newest SPS and PPS seen while cfg is unknown, in case the
	// keyframe comes without them (copies: frame data is shared).
	sps, pps []byte

	held     *mp4Sample // newest sample, waiting for its duration
	heldPTS  time.Duration
	samples  []mp4Sample // pending fragment
	lastDur  uint32      // typical sample duration: the last regular PTS difference
	end      int64       // decode time after the last written sample
	tfra     []mp4TfraEntry
	tkhdDur  int64 // offsets of the duration fields patched at Close
	mdhdDur  int64
	dataSize int // bytes of sample data in the pending fragment
}

type mp4Sample struct {
	dts  int64
	dur  uint32
	key  bool
	data []byte
}

type mp4TfraEntry struct {
	time    int64
	moofOff int64
	trafNum uint32
}

// newMP4 returns a fragmented MP4 muxer writing to w, which must be positioned
// where the file starts (usually an empty file). Tracks may be H.264, VP9, AV1
// or Opus; any other codec is an error.
func newMP4(w io.WriteSeeker, tracks []media.Track) (muxer, error) {
	if len(tracks) == 0 {
		return nil, errors.New("mp4: no tracks")
	}
	off, err := w.Seek(0, io.SeekCurrent)
	if err != nil {
		return nil, fmt.Errorf("mp4: %w", err)
	}
	m := &mp4Muxer{w: w, off: off, byIndex: make(map[int]*mp4Track, len(tracks))}
	for i, t := range tracks {
		tr := &mp4Track{t: t, id: uint32(i + 1)}
		switch t.Codec {
		case media.H264, media.VP9, media.AV1:
			tr.video, tr.timescale = true, mp4VideoTimescale
		case media.Opus:
			tr.timescale = mp4AudioTimescale
			tr.cfg = mp4DOps(t.Channels)
		default:
			return nil, fmt.Errorf("mp4: codec %q of track %d is not supported by mp4 (takes %v)",
				t.Codec, t.Index, media.SinkCodecs("mp4"))
		}
		if _, dup := m.byIndex[t.Index]; dup {
			return nil, fmt.Errorf("mp4: two tracks with index %d", t.Index)
		}
		m.tracks = append(m.tracks, tr)
		m.byIndex[t.Index] = tr
	}
	return m, nil
}

// WriteFrame implements muxer.
func (m *mp4Muxer) WriteFrame(f *media.Frame) error {
	if m.closed {
		return errors.New("mp4: write after close")
	}
	if m.err != nil {
		return m.err
	}
	tr := m.byIndex[f.Track]
	if tr == nil {
		return fmt.Errorf("mp4: frame for unknown track %d", f.Track)
	}
	if tr.excluded || len(f.Data) == 0 {
		return nil
	}
	if tr.cfg == nil {
		// A video track starts at its first keyframe whose configuration is
		// known (H.264: SPS and PPS, in the keyframe or before it; VP9: the
		// keyframe's header; AV1: the sequence header in the keyframe).
		if tr.t.Codec == media.H264 {
			sps, pps := media.H264ParamSets(f.Data)
			if sps != nil {
				tr.sps = append(tr.sps[:0], sps...)
			}
			if pps != nil {
				tr.pps = append(tr.pps[:0], pps...)
			}
		}
		if !f.Keyframe || !tr.configure(f.Data) {
			return nil
		}
	}
	if m.created.IsZero() {
		m.created = f.Wall
	}
	if !m.initDone {
		m.queue = append(m.queue, f)
		return m.maybeInit(f.PTS, false)
	}
	return m.add(tr, f)
}

// Flush implements muxer: it writes every sample but the newest of each track
// (whose duration is not known yet) as a fragment.
func (m *mp4Muxer) Flush() error {
	if m.closed || !m.initDone {
		return m.err
	}
	return m.cut()
}

// Close implements muxer: it writes the held samples, an mfra and the
// durations. A file whose video never started and that has no other track
// stays empty.
func (m *mp4Muxer) Close() error {
	if m.closed {
		return m.err
	}
	m.closed = true
	if m.err != nil {
		return m.err
	}
	if !m.initDone {
		if err := m.maybeInit(0, true); err != nil || !m.initDone {
			return err
		}
	}
	for _, tr := range m.tracks {
		if tr.held != nil {
			s := *tr.held
			s.dur = tr.typicalDur(s.data)
			m.appendSample(tr, s)
			tr.held = nil
		}
	}
	if err := m.cut(); err != nil {
		return err
	}
	if err := m.write(m.mfra()); err != nil {
		return err
	}
	return m.patchDurations()
}

// maybeInit writes the init segment once every video track is configured,
// or when forced (Close) or after mp4InitWait, with the tracks configured so
// far; then it writes the queued frames.
func (m *mp4Muxer) maybeInit(now time.Duration, force bool) error {
	configured, all := 0, true
	for _, tr := range m.tracks {
		if tr.cfg != nil {
			configured++
		} else {
			all = false
		}
	}
	waited := len(m.queue) > 0 && now-m.queue[0].PTS >= mp4InitWait
	if !all && (configured == 0 || !(force || waited)) {
		return nil
	}
	for _, tr := range m.tracks {
		tr.excluded = tr.cfg == nil
	}
	m.initDone = true
	if err := m.write(m.initSegment()); err != nil {
		return err
	}
	queue := m.queue
	m.queue = nil
	for _, f := range queue {
		if err := m.add(m.byIndex[f.Track], f); err != nil {
			return err
		}
	}
	return nil
}

// add places a frame of an included track after the init segment.
func (m *mp4Muxer) add(tr *mp4Track, f *media.Frame) error {
	data := f.Data
	switch tr.t.Codec {
	case media.H264:
		// Parameter sets stay in-band too, so a mid-stream change (a new
		// resolution) still decodes.
		data = media.AppendAVCC(make([]byte, 0, len(data)+16), data, false)
	case media.AV1:
		data = mp4AV1Sample(data)
	}
	if len(data) == 0 {
		return nil
	}
	pts := max(f.PTS, 0) // the contract says >= 0; a negative tfdt would be huge
	if !m.fragOpen && m.seq == 0 {
		m.fragStart = pts
	}
	m.now = max(m.now, pts)
	dts := mp4Ticks(pts, tr.timescale)
	if tr.held != nil {
		if dts <= tr.held.dts {
			dts = tr.held.dts + 1 // equal PTS: keep decode times increasing
		}
		s := *tr.held
		gap := pts-tr.heldPTS > mp4GapThreshold || dts-s.dts > 1<<31
		if gap {
			s.dur = tr.typicalDur(s.data)
		} else {
			s.dur = uint32(dts - s.dts)
			tr.lastDur = s.dur
		}
		m.appendSample(tr, s)
		if gap {
			if err := m.cut(); err != nil {
				return err
			}
		}
	}
	switch {
	case tr.video && f.Keyframe:
		// A fragment starts at each video keyframe: it is where a player can
		// start, and what the mfra lists.
		if err := m.cut(); err != nil {
			return err
		}
	case m.fragOpen && pts-m.fragStart >= mp4FragmentDuration:
		if err := m.cut(); err != nil {
			return err
		}
	}
	tr.held = &mp4Sample{dts: dts, key: f.Keyframe || !tr.video, data: data}
	tr.heldPTS = pts
	return nil
}

func (m *mp4Muxer) appendSample(tr *mp4Track, s mp4Sample) {
	m.fragOpen = true
	tr.samples = append(tr.samples, s)
	tr.dataSize += len(s.data)
}

// typicalDur is the duration given to a sample whose successor is unknown
// (the last one) or far away (before a gap).
func (tr *mp4Track) typicalDur(data []byte) uint32 {
	if !tr.video {
		if d := mp4OpusSamples(data); d > 0 {
			return d
		}
	}
	if tr.lastDur > 0 {
		return tr.lastDur
	}
	if tr.video {
		return mp4VideoTimescale / 30
	}
	return mp4AudioTimescale / 50
}

// cut writes the pending fragment, if any; the next one begins now.
func (m *mp4Muxer) cut() error {
	m.fragStart = m.now
	if !m.fragOpen {
		return nil
	}
	m.fragOpen = false
	m.seq++
	moofOff := m.off
	b := m.buf[:0]
	moof := len(b)
	b = mp4Open(b, "moof")
	mfhd := len(b)
	b = mp4FullBox(b, "mfhd", 0, 0)
	b = binary.BigEndian.AppendUint32(b, m.seq)
	b = mp4Close(b, mfhd)

	type patch struct{ at, dataOff int }
	var patches [8]patch
	pl := patches[:0]
	dataOff, trafNum := 0, uint32(0)
	for _, tr := range m.tracks {
		if len(tr.samples) == 0 {
			continue
		}
		trafNum++
		first := tr.samples[0]
		if first.key {
			tr.tfra = append(tr.tfra, mp4TfraEntry{time: first.dts, moofOff: moofOff, trafNum: trafNum})
		}
		traf := len(b)
		b = mp4Open(b, "traf")
		tfhd := len(b)
		b = mp4FullBox(b, "tfhd", 0, 0x020000) // default-base-is-moof
		b = binary.BigEndian.AppendUint32(b, tr.id)
		b = mp4Close(b, tfhd)
		tfdt := len(b)
		b = mp4FullBox(b, "tfdt", 1, 0)
		b = binary.BigEndian.AppendUint64(b, uint64(first.dts))
		b = mp4Close(b, tfdt)
		trun := len(b)
		// data-offset, sample-duration, sample-size and sample-flags present
		b = mp4FullBox(b, "trun", 0, 0x000001|0x000100|0x000200|0x000400)
		b = binary.BigEndian.AppendUint32(b, uint32(len(tr.samples)))
		pl = append(pl, patch{at: len(b), dataOff: dataOff})
		b = binary.BigEndian.AppendUint32(b, 0)
		for _, s := range tr.samples {
			flags := uint32(mp4NonSyncSampleFlags)
			if s.key {
				flags = mp4SyncSampleFlags
			}
			b = binary.BigEndian.AppendUint32(b, s.dur)
			b = binary.BigEndian.AppendUint32(b, uint32(len(s.data)))
			b = binary.BigEndian.AppendUint32(b, flags)
		}
		b = mp4Close(b, trun)
		b = mp4Close(b, traf)
		dataOff += tr.dataSize
	}
	b = mp4Close(b, moof)
	moofSize := len(b) - moof
	for _, p := range pl {
		binary.BigEndian.PutUint32(b[p.at:], uint32(moofSize+8+p.dataOff))
	}
	b = binary.BigEndian.AppendUint32(b, uint32(8+dataOff))
	b = append(b, "mdat"...)
	for _, tr := range m.tracks {
		for i, s := range tr.samples {
			b = append(b, s.data...)
			tr.samples[i].data = nil
		}
		if n := len(tr.samples); n > 0 {
			last := tr.samples[n-1]
			tr.end = last.dts + int64(last.dur)
		}
		tr.samples, tr.dataSize = tr.samples[:0], 0
	}
	m.buf = b
	return m.write(b)
}

func (m *mp4Muxer) write(b []byte) error {
	if m.err != nil {
		return m.err
	}
	n, err := m.w.Write(b)
	m.off += int64(n)
	if err != nil {
		m.err = fmt.Errorf("mp4: %w", err)
	}
	return m.err
}

// patchDurations writes the final durations into mvhd, mehd, tkhd and mdhd.
func (m *mp4Muxer) patchDurations() error {
	var movie int64
	for _, tr := range m.tracks {
		if d := tr.end * mp4MovieTimescale / int64(tr.timescale); d > movie {
			movie = d
		}
	}
	var p [8]byte
	put := func(at, v int64) error {
		binary.BigEndian.PutUint64(p[:], uint64(v))
		if _, err := m.w.Seek(at, io.SeekStart); err != nil {
			return err
		}
		_, err := m.w.Write(p[:])
		return err
	}
	var errs []error
	errs = append(errs, put(m.mvhdDur, movie), put(m.mehdDur, movie))
	for _, tr := range m.tracks {
		if tr.excluded {
			continue
		}
		errs = append(errs, put(tr.tkhdDur, tr.end*mp4MovieTimescale/int64(tr.timescale)), put(tr.mdhdDur, tr.end))
	}
	_, err := m.w.Seek(m.off, io.SeekStart)
	errs = append(errs, err)
	if err := errors.Join(errs...); err != nil {
		m.err = fmt.Errorf("mp4: patching durations: %w", err)
	}
	return m.err
}

// initSegment returns ftyp and moov for the tracks not excluded, and notes
// where the duration fields are.
func (m *mp4Muxer) initSegment() []byte {
	var created uint64
	if !m.created.IsZero() {
		created = uint64(m.created.Unix() + mp4EpochOffset)
	}
	b := mp4Open(nil, "ftyp")
	b = append(b, "iso6"...)
	b = binary.BigEndian.AppendUint32(b, 0)
	b = append(b, "iso6isomiso5mp41"...)
	for _, tr := range m.tracks {
		switch {
		case tr.excluded:
		case tr.t.Codec == media.H264:
			b = append(b, "avc1"...)
		case tr.t.Codec == media.AV1:
			b = append(b, "av01"...)
		case tr.t.Codec == media.Opus:
			b = append(b, "Opus"...)
		}
	}
	b = mp4Close(b, 0)

	moov := len(b)
	b = mp4Open(b, "moov")
	mvhd := len(b)
	b = mp4FullBox(b, "mvhd", 1, 0)
	b = binary.BigEndian.AppendUint64(b, created) // creation_time
	b = binary.BigEndian.AppendUint64(b, created) // modification_time
	b = binary.BigEndian.AppendUint32(b, mp4MovieTimescale)
	m.mvhdDur = m.off + int64(len(b))
	b = binary.BigEndian.AppendUint64(b, 0)          // duration, patched at Close
	b = binary.BigEndian.AppendUint32(b, 0x00010000) // rate 1.0
	b = binary.BigEndian.AppendUint16(b, 0x0100)     // volume 1.0
	b = append(b, make([]byte, 10)...)               // reserved
	b = mp4Matrix(b)
	b = append(b, make([]byte, 24)...) // pre_defined
	b = binary.BigEndian.AppendUint32(b, uint32(len(m.tracks)+1))
	b = mp4Close(b, mvhd)
	for _, tr := range m.tracks {
		if !tr.excluded {
			b = m.trak(b, tr, created)
		}
	}
	mvex := len(b)
	b = mp4Open(b, "mvex")
	mehd := len(b)
	b = mp4FullBox(b, "mehd", 1, 0)
	m.mehdDur = m.off + int64(len(b))
	b = binary.BigEndian.AppendUint64(b, 0) // fragment_duration, patched at Close
	b = mp4Close(b, mehd)
	for _, tr := range m.tracks {
		if tr.excluded {
			continue
		}
		trex := len(b)
		b = mp4FullBox(b, "trex", 0, 0)
		b = binary.BigEndian.AppendUint32(b, tr.id)
		b = binary.BigEndian.AppendUint32(b, 1) // default_sample_description_index
		b = binary.BigEndian.AppendUint32(b, 0) // default_sample_duration
		b = binary.BigEndian.AppendUint32(b, 0) // default_sample_size
		b = binary.BigEndian.AppendUint32(b, 0) // default_sample_flags
		b = mp4Close(b, trex)
	}
	b = mp4Close(b, mvex)
	return mp4Close(b, moov)
}

func (m *mp4Muxer) trak(b []byte, tr *mp4Track, created uint64) []byte {
	trak := len(b)
	b = mp4Open(b, "trak")
	tkhd := len(b)
	b = mp4FullBox(b, "tkhd", 1, 3) // enabled, in movie
	b = binary.BigEndian.AppendUint64(b, created)
	b = binary.BigEndian.AppendUint64(b, created)
	b = binary.BigEndian.AppendUint32(b, tr.id)
	b = binary.BigEndian.AppendUint32(b, 0) // reserved
	tr.tkhdDur = m.off + int64(len(b))
	b = binary.BigEndian.AppendUint64(b, 0) // duration, patched at Close
	b = append(b, make([]byte, 8)...)       // reserved
	b = binary.BigEndian.AppendUint16(b, 0) // layer
	if tr.video {
		b = binary.BigEndian.AppendUint16(b, 0) // alternate_group
		b = binary.BigEndian.AppendUint16(b, 0) // volume
	} else {
		b = binary.BigEndian.AppendUint16(b, 1)
		b = binary.BigEndian.AppendUint16(b, 0x0100)
	}
	b = binary.BigEndian.AppendUint16(b, 0) // reserved
	b = mp4Matrix(b)
	b = binary.BigEndian.AppendUint32(b, uint32(tr.width)<<16)
	b = binary.BigEndian.AppendUint32(b, uint32(tr.height)<<16)
	b = mp4Close(b, tkhd)

	mdia := len(b)
	b = mp4Open(b, "mdia")
	mdhd := len(b)
	b = mp4FullBox(b, "mdhd", 1, 0)
	b = binary.BigEndian.AppendUint64(b, created)
	b = binary.BigEndian.AppendUint64(b, created)
	b = binary.BigEndian.AppendUint32(b, tr.timescale)
	tr.mdhdDur = m.off + int64(len(b))
	b = binary.BigEndian.AppendUint64(b, 0)      // duration, patched at Close
	b = binary.BigEndian.AppendUint16(b, 0x55c4) // language "und"
	b = binary.BigEndian.AppendUint16(b, 0)
	b = mp4Close(b, mdhd)
	hdlr := len(b)
	b = mp4FullBox(b, "hdlr", 0, 0)
	b = binary.BigEndian.AppendUint32(b, 0) // pre_defined
	if tr.video {
		b = append(b, "vide"...)
	} else {
		b = append(b, "soun"...)
	}
	b = append(b, make([]byte, 12)...) // reserved
	if tr.video {
		b = append(b, "VideoHandler\x00"...)
	} else {
		b = append(b, "SoundHandler\x00"...)
	}
	b = mp4Close(b, hdlr)

	minf := len(b)
	b = mp4Open(b, "minf")
	if tr.video {
		vmhd := len(b)
		b = mp4FullBox(b, "vmhd", 0, 1)
		b = append(b, make([]byte, 8)...) // graphicsmode, opcolor
		b = mp4Close(b, vmhd)
	} else {
		smhd := len(b)
		b = mp4FullBox(b, "smhd", 0, 0)
		b = append(b, make([]byte, 4)...) // balance, reserved
		b = mp4Close(b, smhd)
	}
	dinf := len(b)
	b = mp4Open(b, "dinf")
	dref := len(b)
	b = mp4FullBox(b, "dref", 0, 0)
	b = binary.BigEndian.AppendUint32(b, 1)
	url := len(b)
	b = mp4FullBox(b, "url ", 0, 1) // media in this file
	b = mp4Close(b, url)
	b = mp4Close(b, dref)
	b = mp4Close(b, dinf)

	stbl := len(b)
	b = mp4Open(b, "stbl")
	stsd := len(b)
	b = mp4FullBox(b, "stsd", 0, 0)
	b = binary.BigEndian.AppendUint32(b, 1)
	b = tr.sampleEntry(b)
	b = mp4Close(b, stsd)
	for _, name := range []string{"stts", "stsc", "stco"} {
		at := len(b)
		b = mp4FullBox(b, name, 0, 0)
		b = binary.BigEndian.AppendUint32(b, 0) // entry_count
		b = mp4Close(b, at)
	}
	stsz := len(b)
	b = mp4FullBox(b, "stsz", 0, 0)
	b = binary.BigEndian.AppendUint64(b, 0) // sample_size, sample_count
	b = mp4Close(b, stsz)
	b = mp4Close(b, stbl)
	b = mp4Close(b, minf)
	b = mp4Close(b, mdia)
	return mp4Close(b, trak)
}

// sampleEntry appends the stsd entry: avc1/vp09/av01 (VisualSampleEntry) or
// Opus (AudioSampleEntry) with its configuration box.
func (tr *mp4Track) sampleEntry(b []byte) []byte {
	at := len(b)
	var typ, cfgType string
	switch tr.t.Codec {
	case media.H264:
		typ, cfgType = "avc1", "avcC"
	case media.VP9:
		typ, cfgType = "vp09", "vpcC"
	case media.AV1:
		typ, cfgType = "av01", "av1C"
	default:
		typ, cfgType = "Opus", "dOps"
	}
	b = mp4Open(b, typ)
	b = append(b, 0, 0, 0, 0, 0, 0)         // reserved
	b = binary.BigEndian.AppendUint16(b, 1) // data_reference_index
	if tr.video {
		b = append(b, make([]byte, 16)...) // pre_defined, reserved
		b = binary.BigEndian.AppendUint16(b, tr.width)
		b = binary.BigEndian.AppendUint16(b, tr.height)
		b = binary.BigEndian.AppendUint32(b, 0x00480000) // 72 dpi
		b = binary.BigEndian.AppendUint32(b, 0x00480000)
		b = binary.BigEndian.AppendUint32(b, 0) // reserved
		b = binary.BigEndian.AppendUint16(b, 1) // frame_count
		b = append(b, make([]byte, 32)...)      // compressorname
		b = binary.BigEndian.AppendUint16(b, 0x0018)
		b = binary.BigEndian.AppendUint16(b, 0xffff) // pre_defined = -1
	} else {
		ch := tr.t.Channels
		if ch == 0 {
			ch = 2
		}
		b = append(b, make([]byte, 8)...) // reserved
		b = binary.BigEndian.AppendUint16(b, ch)
		b = binary.BigEndian.AppendUint16(b, 16) // samplesize
		b = binary.BigEndian.AppendUint32(b, 0)  // pre_defined, reserved
		b = binary.BigEndian.AppendUint32(b, mp4AudioTimescale<<16)
	}
	cfg := len(b)
	b = mp4Open(b, cfgType)
	b = append(b, tr.cfg...)
	b = mp4Close(b, cfg)
	return mp4Close(b, at)
}

// mp4AVCConfig returns the avcC body for an SPS and a PPS.
func mp4AVCConfig(sps, pps []byte) (cfg []byte, width, height uint16, ok bool) {
	if sps == nil || pps == nil {
		return nil, 0, 0, false
	}
	s, err := media.ParseH264SPS(sps)
	if err != nil {
		return nil, 0, 0, false
	}
	cfg, err = media.AppendAVCDecoderConfig(nil, sps, pps)
	return cfg, uint16(s.Width), uint16(s.Height), err == nil
}

// configure reads the codec configuration from a video keyframe; false when
// the frame does not carry it.
func (tr *mp4Track) configure(data []byte) bool {
	var ok bool
	switch tr.t.Codec {
	case media.H264:
		if tr.cfg, tr.width, tr.height, ok = mp4AVCConfig(tr.sps, tr.pps); ok {
			tr.sps, tr.pps = nil, nil
		}
	case media.VP9:
		tr.cfg, tr.width, tr.height, ok = mp4VPCConfig(data)
	case media.AV1:
		tr.cfg, tr.width, tr.height, ok = mp4AV1Config(data)
	}
	if !ok {
		tr.cfg = nil
	}
	return ok
}

// mfra lists, per track, the fragments that start with a sync sample.
func (m *mp4Muxer) mfra() []byte {
	b := mp4Open(nil, "mfra")
	for _, tr := range m.tracks {
		if tr.excluded {
			continue
		}
		at := len(b)
		b = mp4FullBox(b, "tfra", 1, 0)
		b = binary.BigEndian.AppendUint32(b, tr.id)
		b = binary.BigEndian.AppendUint32(b, 0) // 1-byte traf, trun and sample numbers
		b = binary.BigEndian.AppendUint32(b, uint32(len(tr.tfra)))
		for _, e := range tr.tfra {
			b = binary.BigEndian.AppendUint64(b, uint64(e.time))
			b = binary.BigEndian.AppendUint64(b, uint64(e.moofOff))
			b = append(b, byte(e.trafNum), 1, 1)
		}
		b = mp4Close(b, at)
	}
	mfro := len(b)
	b = mp4FullBox(b, "mfro", 0, 0)
	b = binary.BigEndian.AppendUint32(b, uint32(mfro+16)) // size of the whole mfra
	b = mp4Close(b, mfro)
	return mp4Close(b, 0)
}

// mp4Ticks converts d to units of timescale, without overflow for long files.
func mp4Ticks(d time.Duration, timescale uint32) int64 {
	ts := int64(timescale)
	sec, rem := int64(d/time.Second), int64(d%time.Second)
	return sec*ts + (rem*ts+int64(time.Second)/2)/int64(time.Second)
}

// mp4Open appends a box header whose size mp4Close fills in.
func mp4Open(b []byte, typ string) []byte {
	return append(binary.BigEndian.AppendUint32(b, 0), typ...)
}

// mp4FullBox appends a full box header (version and flags).
func mp4FullBox(b []byte, typ string, version uint8, flags uint32) []byte {
	return binary.BigEndian.AppendUint32(mp4Open(b, typ), uint32(version)<<24|flags)
}

// mp4Close sets the size of the box that starts at b[at:].
func mp4Close(b []byte, at int) []byte {
	binary.BigEndian.PutUint32(b[at:], uint32(len(b)-at))
	return b
}

func mp4Matrix(b []byte) []byte {
	for _, v := range [9]uint32{0x00010000, 0, 0, 0, 0x00010000, 0, 0, 0, 0x40000000} {
		b = binary.BigEndian.AppendUint32(b, v)
	}
	return b
}

// mp4DOps returns the body of the Opus-in-ISOBMFF dOps box. Pre-skip is 0:
// the encoder's value does not travel in RTP, and 0 keeps audio aligned with
// the RTP timeline.
func mp4DOps(channels uint16) []byte {
	if channels == 0 {
		channels = 2
	}
	b := []byte{0, byte(channels)}              // Version, OutputChannelCount
	b = binary.BigEndian.AppendUint16(b, 0)     // PreSkip
	b = binary.BigEndian.AppendUint32(b, 48000) // InputSampleRate
	b = binary.BigEndian.AppendUint16(b, 0)     // OutputGain
	return append(b, 0)                         // ChannelMappingFamily
}

// mp4OpusSamples returns the duration of an Opus packet in 48 kHz samples
// (RFC 6716 3.1), 0 when malformed.
func mp4OpusSamples(p []byte) uint32 {
	if len(p) == 0 {
		return 0
	}
	config := p[0] >> 3
	var frame uint32 // samples per frame
	switch {
	case config < 12: // SILK: 10, 20, 40, 60 ms
		frame = [4]uint32{480, 960, 1920, 2880}[config&3]
	case config < 16: // hybrid: 10, 20 ms
		frame = [2]uint32{480, 960}[config&1]
	default: // CELT: 2.5, 5, 10, 20 ms
		frame = [4]uint32{120, 240, 480, 960}[config&3]
	}
	switch p[0] & 3 {
	case 0:
		return frame
	case 1, 2:
		return 2 * frame
	}
	if len(p) < 2 {
		return 0
	}
	return frame * uint32(p[1]&0x3f)
}

// mp4Bits reads a bit string MSB first; reading past the end yields zeros
// and sets short.
type mp4Bits struct {
	b     []byte
	pos   int
	short bool
}

func (r *mp4Bits) u(n int) uint64 {
	var v uint64
	for range n {
		if r.pos >= len(r.b)*8 {
			r.short = true
			return v << 1
		}
		v = v<<1 | uint64(r.b[r.pos/8]>>(7-r.pos%8)&1)
		r.pos++
	}
	return v
}

func (r *mp4Bits) flag() bool { return r.u(1) == 1 }

// uvlc reads an AV1 uvlc().
func (r *mp4Bits) uvlc() uint64 {
	zeros := 0
	for !r.flag() {
		if r.short || zeros >= 32 {
			r.short = true
			return 0
		}
		zeros++
	}
	return r.u(zeros) + 1<<zeros - 1
}

// VP9

// mp4VPCConfig reads a VP9 keyframe's uncompressed header (VP9 bitstream
// spec 6.2) into the body of a vpcC box (VP codec ISO-BMFF binding, version 1).
func mp4VPCConfig(frame []byte) (cfg []byte, width, height uint16, ok bool) {
	r := &mp4Bits{b: frame}
	if r.u(2) != 2 { // frame_marker
		return nil, 0, 0, false
	}
	profile := r.u(1) | r.u(1)<<1
	if profile == 3 {
		r.u(1)
	}
	showExisting, interFrame := r.flag(), r.flag() // show_existing_frame, frame_type
	if showExisting || interFrame {
		return nil, 0, 0, false
	}
	r.u(2) // show_frame, error_resilient_mode
	if r.u(24) != 0x498342 {
		return nil, 0, 0, false
	}
	bitDepth := uint8(8)
	if profile >= 2 {
		bitDepth = 10
		if r.flag() {
			bitDepth = 12
		}
	}
	colorSpace := r.u(3)
	var fullRange uint8
	chroma := uint8(1)   // 4:2:0, co-located with luma
	if colorSpace != 7 { // not CS_RGB
		fullRange = uint8(r.u(1))
		if profile == 1 || profile == 3 {
			ssx, ssy := r.u(1), r.u(1)
			r.u(1)
			switch {
			case ssx == 1 && ssy == 0:
				chroma = 2 // 4:2:2
			case ssx == 0 && ssy == 0:
				chroma = 3 // 4:4:4
			}
		}
	} else {
		fullRange, chroma = 1, 3
		if profile == 1 || profile == 3 {
			r.u(1)
		}
	}
	w, h := r.u(16)+1, r.u(16)+1
	if r.short {
		return nil, 0, 0, false
	}
	// colour_primaries, transfer_characteristics, matrix_coefficients
	// (ISO/IEC 23091-2) of VP9's color_space.
	cicp := [8][3]uint8{{2, 2, 2}, {6, 6, 6}, {1, 1, 1}, {6, 6, 6}, {7, 7, 7}, {9, 1, 9}, {2, 2, 2}, {1, 13, 0}}[colorSpace]
	cfg = []byte{1, 0, 0, 0, // version 1, flags
		byte(profile), mp4VP9Level(w * h),
		bitDepth<<4 | chroma<<1 | fullRange,
		cicp[0], cicp[1], cicp[2],
		0, 0} // codecIntializationDataSize
	return cfg, uint16(w), uint16(h), true
}

// mp4VP9Level returns the lowest VP9 level (times ten) whose picture size
// limit holds a picture of this many luma samples.
func mp4VP9Level(samples uint64) uint8 {
	for _, l := range []struct {
		max   uint64
		level uint8
	}{{36864, 10}, {73728, 11}, {122880, 20}, {245760, 21}, {552960, 30}, {983040, 31},
		{2228224, 40}, {8912896, 50}, {35651584, 60}} {
		if samples <= l.max {
			return l.level
		}
	}
	return 62
}

// AV1

const (
	mp4OBUSequenceHeader            = 1
	mp4OBUTemporalDelimiter         = 2
	mp4OBUPadding                   = 15
	mp4OBUHasSizeField              = 0x02
	mp4OBUHasExtensionField         = 0x04
	mp4OBUTypeShift, mp4OBUTypeMask = 3, 0x0f
)

// mp4OBUs calls fn for each OBU of a temporal unit in the low-overhead
// bitstream format (an OBU without a size field runs to the end); header is
// the OBU header (1 or 2 bytes), payload what follows the size. It stops at
// the first malformed OBU and returns false.
func mp4OBUs(tu []byte, fn func(header, payload []byte)) bool {
	for len(tu) > 0 {
		hl := 1
		if tu[0]&mp4OBUHasExtensionField != 0 {
			hl = 2
		}
		if len(tu) < hl {
			return false
		}
		header, rest := tu[:hl], tu[hl:]
		size := uint64(len(rest))
		if header[0]&mp4OBUHasSizeField != 0 {
			v, n := mp4LEB128(rest)
			if n == 0 || v > uint64(len(rest)-n) {
				return false
			}
			size, rest = v, rest[n:]
		}
		fn(header, rest[:size])
		tu = rest[size:]
	}
	return true
}

func mp4LEB128(b []byte) (v uint64, n int) {
	for i := 0; i < 8 && i < len(b); i++ {
		v |= uint64(b[i]&0x7f) << (7 * i)
		if b[i]&0x80 == 0 {
			return v, i + 1
		}
	}
	return 0, 0
}

func mp4AppendLEB128(b []byte, v uint64) []byte {
	for v >= 0x80 {
		b = append(b, byte(v)|0x80)
		v >>= 7
	}
	return append(b, byte(v))
}

// mp4AV1Sample returns a temporal unit as an MP4 sample (AV1-ISOBMFF 2.4):
// every OBU with a size field, without temporal delimiters and padding. The
// frame data is shared, so a changed unit is a copy.
func mp4AV1Sample(tu []byte) []byte {
	clean := true
	valid := mp4OBUs(tu, func(h, _ []byte) {
		typ := h[0] >> mp4OBUTypeShift & mp4OBUTypeMask
		if h[0]&mp4OBUHasSizeField == 0 || typ == mp4OBUTemporalDelimiter || typ == mp4OBUPadding {
			clean = false
		}
	})
	if clean || !valid {
		return tu
	}
	out := make([]byte, 0, len(tu)+8)
	mp4OBUs(tu, func(h, p []byte) {
		typ := h[0] >> mp4OBUTypeShift & mp4OBUTypeMask
		if typ == mp4OBUTemporalDelimiter || typ == mp4OBUPadding {
			return
		}
		out = append(out, h[0]|mp4OBUHasSizeField)
		out = append(out, h[1:]...)
		out = mp4AppendLEB128(out, uint64(len(p)))
		out = append(out, p...)
	})
	return out
}

// mp4AV1Config finds the sequence header OBU of a keyframe's temporal unit
// and returns the body of an av1C box (AV1-ISOBMFF 2.3) carrying it.
func mp4AV1Config(tu []byte) (cfg []byte, width, height uint16, ok bool) {
	var seq []byte
	var ext []byte
	mp4OBUs(tu, func(h, p []byte) {
		if seq == nil && h[0]>>mp4OBUTypeShift&mp4OBUTypeMask == mp4OBUSequenceHeader {
			seq, ext = p, h[1:]
		}
	})
	if seq == nil {
		return nil, 0, 0, false
	}
	s, ok := mp4ParseAV1Sequence(seq)
	if !ok {
		return nil, 0, 0, false
	}
	cfg = []byte{
		0x81, // marker, version 1
		s.profile<<5 | s.level,
		s.tier<<7 | mp4Bit(s.bitDepth > 8)<<6 | mp4Bit(s.bitDepth == 12)<<5 | mp4Bit(s.mono)<<4 |
			s.ssx<<3 | s.ssy<<2 | s.chromaPos,
		0, // no initial_presentation_delay
	}
	// configOBUs: the sequence header, with its size field
	cfg = append(cfg, mp4OBUSequenceHeader<<mp4OBUTypeShift|mp4OBUHasSizeField|(byte(len(ext))<<2))
	cfg = append(cfg, ext...)
	cfg = mp4AppendLEB128(cfg, uint64(len(seq)))
	cfg = append(cfg, seq...)
	return cfg, s.width, s.height, true
}

func mp4Bit(b bool) uint8 {
	if b {
		return 1
	}
	return 0
}

type mp4AV1Seq struct {
	profile, level, tier uint8
	bitDepth             uint8
	mono                 bool
	ssx, ssy, chromaPos  uint8
	width, height        uint16
}

// mp4ParseAV1Sequence reads what av1C needs from a sequence header OBU's
// payload (AV1 spec 5.5).
func mp4ParseAV1Sequence(p []byte) (s mp4AV1Seq, ok bool) {
	r := &mp4Bits{b: p}
	s.profile = uint8(r.u(3))
	r.u(1) // still_picture
	reduced := r.flag()
	decoderModelInfo := false
	bufferDelayLen := 0
	if reduced {
		s.level = uint8(r.u(5))
	} else {
		if r.flag() { // timing_info_present_flag
			r.u(32) // num_units_in_display_tick
			r.u(32) // time_scale
			if r.flag() {
				r.uvlc() // num_ticks_per_picture_minus_1
			}
			decoderModelInfo = r.flag()
			if decoderModelInfo {
				bufferDelayLen = int(r.u(5)) + 1
				r.u(32) // num_units_in_decoding_tick
				r.u(10) // buffer_removal_time_length_minus_1, frame_presentation_time_length_minus_1
			}
		}
		initialDisplayDelay := r.flag()
		ops := int(r.u(5)) + 1
		for i := range ops {
			r.u(12) // operating_point_idc
			level := uint8(r.u(5))
			var tier uint8
			if level > 7 {
				tier = uint8(r.u(1))
			}
			if i == 0 {
				s.level, s.tier = level, tier
			}
			if decoderModelInfo && r.flag() {
				r.u(2*bufferDelayLen + 1)
			}
			if initialDisplayDelay && r.flag() {
				r.u(4)
			}
		}
	}
	wBits, hBits := int(r.u(4))+1, int(r.u(4))+1
	s.width, s.height = uint16(r.u(wBits)+1), uint16(r.u(hBits)+1)
	if !reduced && r.flag() { // frame_id_numbers_present_flag
		r.u(7)
	}
	r.u(3) // use_128x128_superblock, enable_filter_intra, enable_intra_edge_filter
	if !reduced {
		r.u(4) // enable_interintra_compound, masked_compound, warped_motion, dual_filter
		orderHint := r.flag()
		if orderHint {
			r.u(2) // enable_jnt_comp, enable_ref_frame_mvs
		}
		forceScreenContent := uint64(2)
		if !r.flag() { // seq_choose_screen_content_tools
			forceScreenContent = r.u(1)
		}
		if forceScreenContent > 0 && !r.flag() { // seq_choose_integer_mv
			r.u(1) // seq_force_integer_mv
		}
		if orderHint {
			r.u(3)
		}
	}
	r.u(3) // enable_superres, enable_cdef, enable_restoration
	// color_config()
	s.bitDepth = 8
	if r.flag() { // high_bitdepth
		s.bitDepth = 10
		if s.profile == 2 && r.flag() {
			s.bitDepth = 12
		}
	}
	if s.profile != 1 {
		s.mono = r.flag()
	}
	cp, tc, mc := uint64(2), uint64(2), uint64(2)
	if r.flag() { // color_description_present_flag
		cp, tc, mc = r.u(8), r.u(8), r.u(8)
	}
	switch {
	case s.mono:
		r.u(1)
		s.ssx, s.ssy = 1, 1
	case cp == 1 && tc == 13 && mc == 0: // sRGB
	default:
		r.u(1) // color_range
		switch s.profile {
		case 0:
			s.ssx, s.ssy = 1, 1
		case 1:
		default:
			s.ssx = 1
			if s.bitDepth == 12 {
				s.ssx = uint8(r.u(1))
				if s.ssx == 1 {
					s.ssy = uint8(r.u(1))
				}
			}
		}
		if s.ssx == 1 && s.ssy == 1 {
			s.chromaPos = uint8(r.u(2))
		}
	}
	return s, !r.short
}
