package sinks

// A Matroska (mkv) and WebM muxer written for live recording.
//
// File layout, in the order written:
//
//	EBML header (DocType "webm" or "matroska", DocTypeVersion 4)
//	Segment, size unknown (8-byte size field, patched on Close)
//	  Void (mkvSeekHeadSpace bytes): SeekHead(Info, Tracks) + Void; rewritten
//	      on Close as SeekHead(Info, Tracks, Cues) + Void
//	  Info: TimecodeScale 1 ms, MuxingApp, WritingApp, Void(11) that
//	      Close overwrites with Duration (same size, so nothing moves)
//	  Tracks
//	  Cluster, size unknown (8-byte size field, patched when the next
//	      cluster starts), Timecode, SimpleBlocks ...
//	  ...
//	  Cues (written by Close)
//
// Every element is appended to an in-memory buffer that goes to the file on
// Flush, when it holds mkvFlushBytes, or when a second of media has been
// buffered, so a killed file ends at most a second (or the last Flush)
// before the kill and still decodes: unknown-size Segment and Cluster
// elements need no patching to be read. A killed file has no Duration and
// no Cues; players take the duration from the last block.
//
// at-wat/ebml-go is not used: its SimpleBlockWriter writes the track header
// when it is created (H.264's avcC is not known before the first
// keyframe), runs a goroutine per file, can't Flush on demand, and with
// cues a killed file says duration 0 (a placeholder written up front).

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"strings"
	"time"

	"github.com/janusbridge/janusbridge/media"
)

// Matroska element IDs (RFC 9559), with their marker bits.
const (
	mkvIDEBML               = 0x1A45DFA3
	mkvIDEBMLVersion        = 0x4286
	mkvIDEBMLReadVersion    = 0x42F7
	mkvIDEBMLMaxIDLength    = 0x42F2
	mkvIDEBMLMaxSizeLength  = 0x42F3
	mkvIDDocType            = 0x4282
	mkvIDDocTypeVersion     = 0x4287
	mkvIDDocTypeReadVersion = 0x4285
	mkvIDVoid               = 0xEC
	mkvIDSegment            = 0x18538067
	mkvIDSeekHead           = 0x114D9B74
	mkvIDSeek               = 0x4DBB
	mkvIDSeekID             = 0x53AB
	mkvIDSeekPosition       = 0x53AC
	mkvIDInfo               = 0x1549A966
	mkvIDTimestampScale     = 0x2AD7B1
	mkvIDDuration           = 0x4489
	mkvIDMuxingApp          = 0x4D80
	mkvIDWritingApp         = 0x5741
	mkvIDTracks             = 0x1654AE6B
	mkvIDTrackEntry         = 0xAE
	mkvIDTrackNumber        = 0xD7
	mkvIDTrackUID           = 0x73C5
	mkvIDTrackType          = 0x83
	mkvIDFlagLacing         = 0x9C
	mkvIDLanguage           = 0x22B59C
	mkvIDCodecID            = 0x86
	mkvIDCodecPrivate       = 0x63A2
	mkvIDCodecDelay         = 0x56AA
	mkvIDSeekPreRoll        = 0x56BB
	mkvIDVideo              = 0xE0
	mkvIDPixelWidth         = 0xB0
	mkvIDPixelHeight        = 0xBA
	mkvIDAudio              = 0xE1
	mkvIDSamplingFrequency  = 0xB5
	mkvIDChannels           = 0x9F
	mkvIDBitDepth           = 0x6264
	mkvIDCluster            = 0x1F43B675
	mkvIDTimestamp          = 0xE7
	mkvIDSimpleBlock        = 0xA3
	mkvIDCues               = 0x1C53BB6B
	mkvIDCuePoint           = 0xBB
	mkvIDCueTime            = 0xB3
	mkvIDCueTrackPositions  = 0xB7
	mkvIDCueTrack           = 0xF7
	mkvIDCueClusterPosition = 0xF1
	mkvIDCueRelativePos     = 0xF0
)

const (
	// mkvUnknownSize is an 8-byte EBML size field meaning "unknown"; patched
	// sizes keep the 8 bytes (0x01 then 7 bytes of size).
	mkvUnknownSize = 0x01FFFFFFFFFFFFFF
	// mkvSeekHeadSpace is reserved for the SeekHead: three Seek entries with
	// 8-byte positions take 68 bytes, the rest is Void.
	mkvSeekHeadSpace = 96
	// mkvDurationSpace is a Duration element: 2-byte ID, 1-byte size, float64.
	mkvDurationSpace = 11
	// mkvMaxClusterSpan: a new cluster starts when a block would be this far
	// after its cluster's timestamp (block offsets are int16 ms).
	mkvMaxClusterSpan = 5000
	// mkvFlushBytes and mkvFlushSpan bound what Flush-less writing buffers.
	mkvFlushBytes = 256 << 10
	mkvFlushSpan  = time.Second
	// mkvHoldSpan bounds how long frames wait for every video track's first
	// keyframe before the track header is written without what is missing.
	mkvHoldSpan = 2 * time.Second
	// mkvOpusSeekPreRoll is the 80 ms Matroska asks for Opus.
	mkvOpusSeekPreRoll = 80 * time.Millisecond
	// mkvMuxingApp is the file's MuxingApp and WritingApp.
	mkvMuxingApp = "janusbridge"
)

// errMkvFrameTooOld is returned for a frame more than 32.767 s behind the
// cluster being written (another track ran that far ahead of it).
var errMkvFrameTooOld = errors.New("frame is too far behind the other tracks")

// mkvTrack is one track of a Matroska file.
type mkvTrack struct {
	media.Track
	number  uint64 // TrackNumber and TrackUID: Index+1
	video   bool
	codecID string
	private []byte // CodecPrivate
	width   int    // PixelWidth, PixelHeight; 0 when unknown
	height  int
	// started: a video track's first keyframe was seen; frames before it
	// can't be decoded and are dropped.
	started bool
	// H.264: the avcC's parameter sets (dropped from samples that repeat
	// them), or annexB when the header went out without an avcC (samples
	// are written as they come, in Annex-B, which ffmpeg decodes).
	sps, pps []byte
	annexB   bool
	lastPTS  time.Duration
	written  bool
}

// mkvHeldFrame is a frame waiting for the track header.
type mkvHeldFrame struct {
	t   *mkvTrack
	pts time.Duration
	key bool
	b   []byte
}

// mkvCuePoint indexes a keyframe: its time and where its cluster and block are.
type mkvCuePoint struct {
	ms       int64
	track    uint64
	cluster  int64 // relative to the Segment's data
	relative int64 // relative to the Cluster's data
}

// matroska is the muxer of the webm and mkv sinks.
type matroska struct {
	w       io.WriteSeeker
	docType string // the EBML DocType
	name    string // the sink type, for errors: webm or mkv
	tracks  []*mkvTrack
	err     error // sticky: the file is broken after a write error
	closed  bool

	buf     []byte // not yet written to w
	off     int64  // file offset of buf[0]
	scratch []byte // a converted H.264 sample

	headerDone bool
	held       []mkvHeldFrame
	segSizeAt  int64 // the Segment's size field
	segData    int64 // the Segment's first child
	seekHeadAt int64
	infoAt     int64
	tracksAt   int64
	durationAt int64

	clusterAt   int64 // the current Cluster's ID, -1 before the first
	clusterData int64 // the current Cluster's first child
	clusterMS   int64
	hasVideo    bool
	cues        []mkvCuePoint
	end         time.Duration // the end of the latest frame of any track
	written     time.Duration // the latest PTS in buf or the file
	flushed     time.Duration // written at the last flush
}

var _ muxer = (*matroska)(nil)

// matroskaCodecs maps codec names to Matroska CodecIDs.
var matroskaCodecs = map[string]string{
	media.VP8:  "V_VP8",
	media.VP9:  "V_VP9",
	media.AV1:  "V_AV1",
	media.H264: "V_MPEG4/ISO/AVC",
	media.Opus: "A_OPUS",
	// G.711 has no Matroska CodecID of its own: like ffmpeg's muxer we
	// use A_MS/ACM with a WAVEFORMATEX (format tag 7 or 6), which
	// ffmpeg's demuxer reads back as pcm_mulaw / pcm_alaw.
	media.PCMU: "A_MS/ACM",
	media.PCMA: "A_MS/ACM",
}

// newMatroska starts a Matroska file on w (at its current offset) holding
// tracks; docType is "webm" or "matroska". Frames of a video track before
// its first keyframe are dropped. The track header needs each video
// track's first keyframe (H.264's SPS and PPS for the avcC, every codec's
// picture size), so frames are held in memory until all video tracks have
// had one, or for at most mkvHoldSpan of media; an audio-only file is started
// at once.
func newMatroska(w io.WriteSeeker, tracks []media.Track, docType string) (muxer, error) {
	sinkType := "mkv"
	switch docType {
	case "matroska":
	case "webm":
		sinkType = "webm"
	default:
		return nil, fmt.Errorf("matroska: unknown DocType %q (want webm or matroska)", docType)
	}
	if len(tracks) == 0 {
		return nil, fmt.Errorf("%s: no tracks", sinkType)
	}
	m := &matroska{w: w, docType: docType, name: sinkType, clusterAt: -1}
	for _, tr := range tracks {
		codec := strings.ToLower(tr.Codec)
		if !media.SinkAccepts(sinkType, codec) {
			return nil, fmt.Errorf("%s: codec %q (track %d) cannot go in a %s file; it takes %s",
				sinkType, tr.Codec, tr.Index, sinkType, strings.Join(media.SinkCodecs(sinkType), ", "))
		}
		if tr.Index < 0 {
			return nil, fmt.Errorf("%s: track index %d is negative", sinkType, tr.Index)
		}
		if m.track(tr.Index) != nil {
			return nil, fmt.Errorf("%s: two tracks with index %d", sinkType, tr.Index)
		}
		t := &mkvTrack{Track: tr, number: uint64(tr.Index) + 1, codecID: matroskaCodecs[codec]}
		t.Codec = codec
		t.video = media.KindOf(codec) == "video"
		m.hasVideo = m.hasVideo || t.video
		switch codec {
		case media.Opus:
			if t.Channels == 0 {
				t.Channels = 2
			}
			if t.Channels > 2 {
				return nil, fmt.Errorf("%s: opus track %d has %d channels; at most 2 are supported", sinkType, tr.Index, t.Channels)
			}
			t.ClockRate = 48000
			t.private = mkvOpusHead(t.Channels)
		case media.PCMU, media.PCMA:
			if t.Channels == 0 {
				t.Channels = 1
			}
			if t.ClockRate == 0 {
				t.ClockRate = 8000
			}
			t.private = mkvWaveFormatEx(codec, t.Channels, t.ClockRate)
		}
		m.tracks = append(m.tracks, t)
	}
	pos, err := w.Seek(0, io.SeekCurrent)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", sinkType, err)
	}
	m.off = pos
	if !m.hasVideo {
		m.writeHeader()
	}
	return m, nil
}

// track returns the track with the given Index, nil if none.
func (m *matroska) track(index int) *mkvTrack {
	for _, t := range m.tracks {
		if t.Index == index {
			return t
		}
	}
	return nil
}

// pos is the file offset of the next byte written.
func (m *matroska) pos() int64 { return m.off + int64(len(m.buf)) }

// WriteFrame appends a frame; see muxer.
func (m *matroska) WriteFrame(f *media.Frame) error {
	if m.err != nil {
		return m.err
	}
	if m.closed {
		return fmt.Errorf("%s: write after Close", m.name)
	}
	t := m.track(f.Track)
	if t == nil {
		return fmt.Errorf("%s: frame for unknown track %d", m.name, f.Track)
	}
	if f.PTS < 0 {
		return fmt.Errorf("%s: track %d: negative PTS %v", m.name, f.Track, f.PTS)
	}
	if len(f.Data) == 0 {
		return nil
	}
	if t.video && !t.started {
		if !f.Keyframe || !m.startVideo(t, f.Data) {
			return nil
		}
	}
	if !m.headerDone {
		m.held = append(m.held, mkvHeldFrame{t: t, pts: f.PTS, key: f.Keyframe, b: bytes.Clone(f.Data)})
		ready := true
		for _, t := range m.tracks {
			ready = ready && (!t.video || t.started)
		}
		if !ready && f.PTS-m.held[0].pts < mkvHoldSpan {
			return nil
		}
		m.writeHeader()
	} else if err := m.writeBlock(t, f.PTS, f.Keyframe, f.Data); err != nil {
		return err
	}
	if len(m.buf) >= mkvFlushBytes || m.written-m.flushed >= mkvFlushSpan {
		m.flush()
	}
	return m.err
}

// startVideo takes what the header needs from a video track's first
// keyframe and reports whether the track can start with it: H.264 needs
// its SPS and PPS (unless the header is out already: then the track is
// written in Annex-B); for the other codecs a picture size that can't be
// parsed is left out of the header.
func (m *matroska) startVideo(t *mkvTrack, b []byte) bool {
	switch t.Codec {
	case media.H264:
		if m.headerDone {
			t.annexB = true
			break
		}
		sps, pps := media.H264ParamSets(b)
		if sps == nil || pps == nil {
			return false
		}
		avcC, err := media.AppendAVCDecoderConfig(nil, sps, pps)
		if err != nil {
			t.annexB = true // an SPS we can't parse: leave it to the decoder
			break
		}
		s, _ := media.ParseH264SPS(sps)
		t.private, t.sps, t.pps = avcC, bytes.Clone(sps), bytes.Clone(pps)
		t.width, t.height = s.Width, s.Height
	case media.VP8:
		t.width, t.height, _ = mkvVP8Size(b)
	case media.VP9:
		t.width, t.height, _ = mkvVP9Size(b)
	case media.AV1:
		if c, ok := mkvParseAV1Config(b); ok {
			t.private, t.width, t.height = c.av1C, c.width, c.height
		}
	}
	t.started = true
	return true
}

// writeHeader writes everything before the first Cluster, then the held
// frames. Video tracks that have not started yet go without a picture size
// and CodecPrivate, and an H.264 one is then written in Annex-B.
func (m *matroska) writeHeader() {
	m.headerDone = true
	b := m.buf
	b = mkvAppendMaster(b, mkvIDEBML, func(b []byte) []byte {
		b = mkvAppendUint(b, mkvIDEBMLVersion, 1)
		b = mkvAppendUint(b, mkvIDEBMLReadVersion, 1)
		b = mkvAppendUint(b, mkvIDEBMLMaxIDLength, 4)
		b = mkvAppendUint(b, mkvIDEBMLMaxSizeLength, 8)
		b = mkvAppendString(b, mkvIDDocType, m.docType)
		b = mkvAppendUint(b, mkvIDDocTypeVersion, 4)
		return mkvAppendUint(b, mkvIDDocTypeReadVersion, 2)
	})
	b = mkvAppendID(b, mkvIDSegment)
	m.segSizeAt = m.off + int64(len(b))
	b = binary.BigEndian.AppendUint64(b, mkvUnknownSize)
	m.segData = m.off + int64(len(b))

	m.seekHeadAt = m.off + int64(len(b))
	b = append(b, make([]byte, mkvSeekHeadSpace)...) // filled in below
	m.infoAt = m.off + int64(len(b))
	b = mkvAppendMaster(b, mkvIDInfo, func(b []byte) []byte {
		b = mkvAppendUint(b, mkvIDTimestampScale, uint64(time.Millisecond))
		b = mkvAppendString(b, mkvIDMuxingApp, mkvMuxingApp)
		b = mkvAppendString(b, mkvIDWritingApp, mkvMuxingApp)
		return mkvAppendVoid(b, mkvDurationSpace) // Duration's place
	})
	m.durationAt = m.off + int64(len(b)) - mkvDurationSpace
	m.tracksAt = m.off + int64(len(b))
	b = mkvAppendMaster(b, mkvIDTracks, func(b []byte) []byte {
		for _, t := range m.tracks {
			if t.Codec == media.H264 && t.private == nil {
				t.annexB = true
			}
			b = mkvAppendMaster(b, mkvIDTrackEntry, t.appendEntry)
		}
		return b
	})
	copy(b[m.seekHeadAt-m.off:], m.seekHead(-1))
	m.buf = b

	held := m.held
	m.held = nil
	for _, h := range held {
		_ = m.writeBlock(h.t, h.pts, h.key, h.b) // only a frame 32 s late fails
	}
}

// appendEntry appends a TrackEntry's children.
func (t *mkvTrack) appendEntry(b []byte) []byte {
	b = mkvAppendUint(b, mkvIDTrackNumber, t.number)
	b = mkvAppendUint(b, mkvIDTrackUID, t.number)
	typ := uint64(2)
	if t.video {
		typ = 1
	}
	b = mkvAppendUint(b, mkvIDTrackType, typ)
	b = mkvAppendUint(b, mkvIDFlagLacing, 0)
	b = mkvAppendString(b, mkvIDLanguage, "und")
	b = mkvAppendString(b, mkvIDCodecID, t.codecID)
	if t.private != nil {
		b = mkvAppendBytes(b, mkvIDCodecPrivate, t.private)
	}
	if t.Codec == media.Opus {
		b = mkvAppendUint(b, mkvIDCodecDelay, 0) // = the OpusHead's pre-skip
		b = mkvAppendUint(b, mkvIDSeekPreRoll, uint64(mkvOpusSeekPreRoll))
	}
	if t.video && t.width > 0 && t.height > 0 {
		b = mkvAppendMaster(b, mkvIDVideo, func(b []byte) []byte {
			b = mkvAppendUint(b, mkvIDPixelWidth, uint64(t.width))
			return mkvAppendUint(b, mkvIDPixelHeight, uint64(t.height))
		})
	}
	if !t.video {
		b = mkvAppendMaster(b, mkvIDAudio, func(b []byte) []byte {
			b = mkvAppendFloat(b, mkvIDSamplingFrequency, float64(t.ClockRate))
			b = mkvAppendUint(b, mkvIDChannels, uint64(t.Channels))
			if t.Codec != media.Opus {
				b = mkvAppendUint(b, mkvIDBitDepth, 8)
			}
			return b
		})
	}
	return b
}

// seekHead returns the reserved SeekHead space's content: a SeekHead to
// Info, Tracks and (when cues >= 0) the Cues, then Void.
func (m *matroska) seekHead(cues int64) []byte {
	b := make([]byte, 0, mkvSeekHeadSpace)
	seek := func(b []byte, id uint32, at int64) []byte {
		return mkvAppendMaster(b, mkvIDSeek, func(b []byte) []byte {
			b = mkvAppendBytes(b, mkvIDSeekID, mkvAppendID(nil, id))
			b = mkvAppendID(b, mkvIDSeekPosition)
			b = append(b, 0x88)
			return binary.BigEndian.AppendUint64(b, uint64(at-m.segData))
		})
	}
	b = mkvAppendMaster(b, mkvIDSeekHead, func(b []byte) []byte {
		b = seek(b, mkvIDInfo, m.infoAt)
		b = seek(b, mkvIDTracks, m.tracksAt)
		if cues >= 0 {
			b = seek(b, mkvIDCues, cues)
		}
		return b
	})
	return mkvAppendVoid(b, mkvSeekHeadSpace-len(b))
}

// writeBlock appends a SimpleBlock, starting a Cluster first when needed.
func (m *matroska) writeBlock(t *mkvTrack, pts time.Duration, key bool, data []byte) error {
	ms := int64((pts + time.Millisecond/2) / time.Millisecond)
	clusterMS := m.clusterMS
	rel := ms - clusterMS
	newCluster := m.clusterAt < 0 || rel > mkvMaxClusterSpan || t.video && key && rel != 0
	if newCluster {
		// A block may be a little before its cluster (another track ran
		// ahead), but cluster timestamps never go back.
		if m.clusterAt >= 0 {
			clusterMS = max(ms, clusterMS)
		} else {
			clusterMS = ms
		}
		rel = ms - clusterMS
	}
	if rel < math.MinInt16 {
		return fmt.Errorf("%s: track %d at %v: %w", m.name, t.Index, pts, errMkvFrameTooOld)
	}
	if newCluster {
		m.startCluster(clusterMS)
	}
	// Cues point at video keyframes, or at each cluster of an audio-only
	// file.
	if t.video && key || !m.hasVideo && newCluster {
		m.cues = append(m.cues, mkvCuePoint{ms: ms, track: t.number, cluster: m.clusterAt - m.segData, relative: m.pos() - m.clusterData})
	}
	if t.Codec == media.H264 && !t.annexB {
		sps, pps := media.H264ParamSets(data)
		// Parameter sets that differ from the avcC's (a new resolution)
		// stay in the sample, where decoders pick them up.
		same := (sps == nil || bytes.Equal(sps, t.sps)) && (pps == nil || bytes.Equal(pps, t.pps))
		m.scratch = media.AppendAVCC(m.scratch[:0], data, same)
		data = m.scratch
	} else if t.Codec == media.AV1 {
		m.scratch = mkvAV1Sample(m.scratch[:0], data)
		data = m.scratch
	}

	b := mkvAppendID(m.buf, mkvIDSimpleBlock)
	b = mkvAppendVint(b, uint64(mkvVintLen(t.number)+3+len(data)))
	b = mkvAppendVint(b, t.number)
	b = binary.BigEndian.AppendUint16(b, uint16(int16(rel)))
	flags := byte(0)
	if key || !t.video {
		flags = 0x80
	}
	b = append(b, flags)
	m.buf = append(b, data...)

	var dur time.Duration
	switch t.Codec {
	case media.Opus:
		dur = mkvOpusDuration(data)
	case media.PCMU, media.PCMA:
		dur = time.Duration(len(data)) * time.Second / time.Duration(int(t.ClockRate)*int(t.Channels))
	default:
		if t.written {
			dur = pts - t.lastPTS
		}
	}
	t.lastPTS, t.written = pts, true
	m.end = max(m.end, pts+dur)
	m.written = max(m.written, pts)
	return nil
}

// startCluster ends the current Cluster and starts one at ms.
func (m *matroska) startCluster(ms int64) {
	m.endCluster()
	m.clusterAt = m.pos()
	m.clusterMS = ms
	b := mkvAppendID(m.buf, mkvIDCluster)
	b = binary.BigEndian.AppendUint64(b, mkvUnknownSize)
	m.clusterData = m.off + int64(len(b))
	m.buf = mkvAppendUint(b, mkvIDTimestamp, uint64(ms))
}

// endCluster patches the current Cluster's size.
func (m *matroska) endCluster() {
	if m.clusterAt < 0 {
		return
	}
	m.patchAt(m.clusterAt+4, binary.BigEndian.AppendUint64(nil, 0x01<<56|uint64(m.pos()-m.clusterData)))
}

// patchAt overwrites bytes at a file offset, in buf if they are there.
func (m *matroska) patchAt(at int64, b []byte) {
	if m.err != nil {
		return
	}
	if at >= m.off {
		copy(m.buf[at-m.off:], b)
		return
	}
	if at+int64(len(b)) > m.off { // straddles buf: never, elements are flushed whole
		m.flush()
	}
	if _, err := m.w.Seek(at, io.SeekStart); err != nil {
		m.err = fmt.Errorf("%s: %w", m.name, err)
		return
	}
	if _, err := m.w.Write(b); err != nil {
		m.err = fmt.Errorf("%s: %w", m.name, err)
		return
	}
	if _, err := m.w.Seek(m.off, io.SeekStart); err != nil {
		m.err = fmt.Errorf("%s: %w", m.name, err)
	}
}

// flush writes buf to w.
func (m *matroska) flush() {
	if m.err != nil || len(m.buf) == 0 {
		return
	}
	n, err := m.w.Write(m.buf)
	m.off += int64(n)
	if err != nil {
		m.err = fmt.Errorf("%s: %w", m.name, err)
		return
	}
	m.buf = m.buf[:0]
	m.flushed = m.written
}

// Flush writes what is buffered; frames still held for the header (before
// every video track's first keyframe) stay held.
func (m *matroska) Flush() error {
	m.flush()
	return m.err
}

// Close writes what is buffered or held, the Cues, and patches the sizes,
// the Duration and the SeekHead. It leaves w at the end of the file and
// does not close it. Calls after the first return nil.
func (m *matroska) Close() error {
	if m.closed {
		return nil
	}
	m.closed = true
	if m.err != nil {
		return m.err
	}
	if !m.headerDone {
		m.writeHeader()
	}
	m.endCluster()
	cuesAt := int64(-1)
	if len(m.cues) > 0 {
		cuesAt = m.pos()
		m.buf = mkvAppendMaster(m.buf, mkvIDCues, func(b []byte) []byte {
			for _, c := range m.cues {
				b = mkvAppendMaster(b, mkvIDCuePoint, func(b []byte) []byte {
					b = mkvAppendUint(b, mkvIDCueTime, uint64(c.ms))
					return mkvAppendMaster(b, mkvIDCueTrackPositions, func(b []byte) []byte {
						b = mkvAppendUint(b, mkvIDCueTrack, c.track)
						b = mkvAppendUint(b, mkvIDCueClusterPosition, uint64(c.cluster))
						return mkvAppendUint(b, mkvIDCueRelativePos, uint64(c.relative))
					})
				})
			}
			return b
		})
	}
	end := m.pos()
	m.flush()
	m.patchAt(m.segSizeAt, binary.BigEndian.AppendUint64(nil, 0x01<<56|uint64(end-m.segData)))
	dur := mkvAppendID(nil, mkvIDDuration)
	dur = append(dur, 0x88)
	dur = binary.BigEndian.AppendUint64(dur, math.Float64bits(float64(m.end)/float64(time.Millisecond)))
	m.patchAt(m.durationAt, dur)
	m.patchAt(m.seekHeadAt, m.seekHead(cuesAt))
	return m.err
}

// EBML writing. Sizes are written in as few bytes as they need, except
// the patched ones.

// mkvAppendID appends an element ID (its length is in its marker bits).
func mkvAppendID(b []byte, id uint32) []byte {
	switch {
	case id >= 1<<24:
		return append(b, byte(id>>24), byte(id>>16), byte(id>>8), byte(id))
	case id >= 1<<16:
		return append(b, byte(id>>16), byte(id>>8), byte(id))
	case id >= 1<<8:
		return append(b, byte(id>>8), byte(id))
	}
	return append(b, byte(id))
}

// mkvAppendVint appends v as an EBML variable-size integer (a size or a
// track number) of the fewest bytes; all-ones values are reserved, so a
// value of 127 takes two bytes.
func mkvAppendVint(b []byte, v uint64) []byte {
	n := mkvVintLen(v)
	v |= 1 << (7 * n)
	for i := n - 1; i >= 0; i-- {
		b = append(b, byte(v>>(8*i)))
	}
	return b
}

// mkvVintLen is the length mkvAppendVint writes v in.
func mkvVintLen(v uint64) int {
	n := 1
	for n < 8 && v >= 1<<(7*n)-1 {
		n++
	}
	return n
}

func mkvAppendUint(b []byte, id uint32, v uint64) []byte {
	n := 1
	for n < 8 && v>>(8*n) != 0 {
		n++
	}
	b = mkvAppendID(b, id)
	b = append(b, 0x80|byte(n))
	for i := n - 1; i >= 0; i-- {
		b = append(b, byte(v>>(8*i)))
	}
	return b
}

func mkvAppendFloat(b []byte, id uint32, f float64) []byte {
	b = mkvAppendID(b, id)
	b = append(b, 0x88)
	return binary.BigEndian.AppendUint64(b, math.Float64bits(f))
}

func mkvAppendString(b []byte, id uint32, s string) []byte {
	b = mkvAppendID(b, id)
	b = mkvAppendVint(b, uint64(len(s)))
	return append(b, s...)
}

func mkvAppendBytes(b []byte, id uint32, data []byte) []byte {
	b = mkvAppendID(b, id)
	b = mkvAppendVint(b, uint64(len(data)))
	return append(b, data...)
}

// mkvAppendMaster appends a master element whose children body appends.
func mkvAppendMaster(b []byte, id uint32, body func([]byte) []byte) []byte {
	children := body(nil)
	b = mkvAppendID(b, id)
	b = mkvAppendVint(b, uint64(len(children)))
	return append(b, children...)
}

// mkvAppendVoid appends a Void element of exactly n >= 2 bytes.
func mkvAppendVoid(b []byte, n int) []byte {
	l := 1
	for l < 8 && n-1-l >= 1<<(7*l)-1 {
		l++
	}
	b = append(b, mkvIDVoid)
	v := uint64(n-1-l) | 1<<(7*l)
	for i := l - 1; i >= 0; i-- {
		b = append(b, byte(v>>(8*i)))
	}
	return append(b, make([]byte, n-1-l)...)
}

// Codec specifics.

// mkvOpusHead is the CodecPrivate of A_OPUS: an OpusHead (RFC 7845 §5.1)
// with pre-skip 0, as the frames come from the middle of a stream and the
// first has no encoder delay to skip; CodecDelay is 0 to match.
func mkvOpusHead(channels uint16) []byte {
	b := []byte("OpusHead")
	b = append(b, 1, byte(channels))
	b = binary.LittleEndian.AppendUint16(b, 0) // pre-skip
	b = binary.LittleEndian.AppendUint32(b, 48000)
	b = binary.LittleEndian.AppendUint16(b, 0) // output gain
	return append(b, 0)                        // channel mapping family
}

// mkvWaveFormatEx is the CodecPrivate of A_MS/ACM for G.711: a WAVEFORMATEX
// with format tag 7 (mu-law) or 6 (A-law), 8 bits a sample.
func mkvWaveFormatEx(codec string, channels uint16, rate uint32) []byte {
	tag := uint16(7)
	if codec == media.PCMA {
		tag = 6
	}
	b := binary.LittleEndian.AppendUint16(nil, tag)
	b = binary.LittleEndian.AppendUint16(b, channels)
	b = binary.LittleEndian.AppendUint32(b, rate)
	b = binary.LittleEndian.AppendUint32(b, rate*uint32(channels)) // bytes a second
	b = binary.LittleEndian.AppendUint16(b, channels)              // block align
	b = binary.LittleEndian.AppendUint16(b, 8)                     // bits a sample
	return binary.LittleEndian.AppendUint16(b, 0)                  // extra bytes
}

// mkvOpusDuration is the duration of an Opus packet from its TOC (RFC 6716
// §3.1), 0 when malformed.
func mkvOpusDuration(p []byte) time.Duration {
	if len(p) == 0 {
		return 0
	}
	config := p[0] >> 3
	var frame time.Duration
	switch {
	case config < 12: // SILK: 10, 20, 40, 60 ms
		frame = [4]time.Duration{10, 20, 40, 60}[config&3] * time.Millisecond
	case config < 16: // hybrid: 10, 20 ms
		frame = [2]time.Duration{10, 20}[config&1] * time.Millisecond
	default: // CELT: 2.5, 5, 10, 20 ms
		frame = [4]time.Duration{2500, 5000, 10000, 20000}[config&3] * time.Microsecond
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
	return time.Duration(p[1]&0x3f) * frame
}

// mkvVP8Size returns the picture size of a VP8 keyframe (RFC 6386
// §9.1).
func mkvVP8Size(b []byte) (w, h int, ok bool) {
	if len(b) < 10 || b[0]&1 != 0 || b[3] != 0x9d || b[4] != 0x01 || b[5] != 0x2a {
		return 0, 0, false
	}
	w = int(binary.LittleEndian.Uint16(b[6:]) & 0x3fff)
	h = int(binary.LittleEndian.Uint16(b[8:]) & 0x3fff)
	return w, h, w > 0 && h > 0
}

// mkvVP9Size returns the frame size of a VP9 keyframe from its
// uncompressed header (VP9 bitstream spec §6.2).
func mkvVP9Size(b []byte) (w, h int, ok bool) {
	r := mkvBits{b: b}
	if r.f(2) != 2 { // frame_marker
		return 0, 0, false
	}
	profile := r.f(1)
	profile |= r.f(1) << 1
	if profile == 3 {
		r.f(1) // reserved_zero
	}
	if r.f(1) == 1 || r.f(1) != 0 { // show_existing_frame, frame_type (0: key)
		return 0, 0, false
	}
	r.f(2)                   // show_frame, error_resilient_mode
	if r.f(24) != 0x498342 { // frame_sync_code
		return 0, 0, false
	}
	if profile >= 2 {
		r.f(1) // ten_or_twelve_bit
	}
	if r.f(3) != 7 { // color_space != CS_RGB
		r.f(1) // color_range
		if profile == 1 || profile == 3 {
			r.f(3) // subsampling_x, subsampling_y, reserved_zero
		}
	} else if profile == 1 || profile == 3 {
		r.f(1) // reserved_zero
	}
	w, h = int(r.f(16))+1, int(r.f(16))+1
	return w, h, !r.err
}

// AV1 OBU types (AV1 spec §6.2.2).
const (
	mkvOBUSequenceHeader    = 1
	mkvOBUTemporalDelimiter = 2
)

// mkvNextOBU splits the first OBU off a low-overhead bitstream (AV1 spec
// §5.2): its header length, its whole length, ok false when malformed. An
// OBU without obu_size runs to the end.
func mkvNextOBU(b []byte) (typ byte, hdr, n int, ok bool) {
	if len(b) == 0 || b[0]&0x80 != 0 {
		return 0, 0, 0, false
	}
	typ = b[0] >> 3 & 0xf
	hdr = 1
	if b[0]&4 != 0 { // obu_extension_flag
		hdr++
	}
	if len(b) < hdr {
		return 0, 0, 0, false
	}
	if b[0]&2 == 0 { // no obu_has_size_field
		return typ, hdr, len(b), true
	}
	var size uint64
	for i := 0; ; i++ {
		if i == 8 || hdr >= len(b) {
			return 0, 0, 0, false
		}
		c := b[hdr]
		hdr++
		size |= uint64(c&0x7f) << (7 * i)
		if c&0x80 == 0 {
			break
		}
	}
	if size > uint64(len(b)-hdr) {
		return 0, 0, 0, false
	}
	return typ, hdr, hdr + int(size), true
}

// mkvAV1Sample appends a temporal unit without its temporal delimiter,
// as Matroska's AV1 mapping wants; a TU that does not parse goes as is.
func mkvAV1Sample(dst, tu []byte) []byte {
	start := len(dst)
	for b := tu; len(b) > 0; {
		typ, _, n, ok := mkvNextOBU(b)
		if !ok {
			return append(dst[:start], tu...)
		}
		if typ != mkvOBUTemporalDelimiter {
			dst = append(dst, b[:n]...)
		}
		b = b[n:]
	}
	return dst
}

// mkvAV1Config is what the track header needs from an AV1 sequence header.
type mkvAV1Config struct {
	av1C          []byte // AV1CodecConfigurationRecord with the sequence header OBU
	width, height int    // max_frame_width, max_frame_height
}

// mkvParseAV1Config finds the sequence header OBU of a temporal unit and
// builds the av1C (AV1 ISOBMFF binding §2.3) Matroska's V_AV1 carries.
func mkvParseAV1Config(tu []byte) (mkvAV1Config, bool) {
	var c mkvAV1Config
	for b := tu; len(b) > 0; {
		typ, hdr, n, ok := mkvNextOBU(b)
		if !ok {
			return c, false
		}
		if typ != mkvOBUSequenceHeader {
			b = b[n:]
			continue
		}
		r := mkvBits{b: b[hdr:n]}
		var sh mkvAV1SequenceHeader
		if !sh.parse(&r) {
			return c, false
		}
		c.width, c.height = sh.width, sh.height
		c.av1C = []byte{
			0x81, // marker, version 1
			sh.profile<<5 | sh.level,
			sh.tier<<7 | sh.highBitDepth<<6 | sh.twelveBit<<5 | sh.mono<<4 | sh.subX<<3 | sh.subY<<2 | sh.chromaPos,
			0, // no initial_presentation_delay
		}
		// configOBUs: the sequence header, with obu_size.
		c.av1C = append(c.av1C, b[0]|2)
		if b[0]&4 != 0 {
			c.av1C = append(c.av1C, b[1])
		}
		payload := b[hdr:n]
		for v := uint64(len(payload)); ; v >>= 7 {
			if v < 0x80 {
				c.av1C = append(c.av1C, byte(v))
				break
			}
			c.av1C = append(c.av1C, byte(v)|0x80)
		}
		c.av1C = append(c.av1C, payload...)
		return c, true
	}
	return c, false
}

// mkvAV1SequenceHeader holds the fields of sequence_header_obu() (AV1 spec
// §5.5) that the av1C and the track header need.
type mkvAV1SequenceHeader struct {
	profile, level, tier          byte
	highBitDepth, twelveBit, mono byte
	subX, subY, chromaPos         byte
	width, height                 int
}

func (s *mkvAV1SequenceHeader) parse(r *mkvBits) bool {
	s.profile = byte(r.f(3))
	r.f(1) // still_picture
	reduced := r.f(1) == 1
	if reduced {
		s.level = byte(r.f(5))
	} else {
		decoderModel := false
		var bufferDelayLen uint32
		if r.f(1) == 1 { // timing_info_present_flag
			r.f(32)          // num_units_in_display_tick
			r.f(32)          // time_scale
			if r.f(1) == 1 { // equal_picture_interval
				r.uvlc() // num_ticks_per_picture_minus_1
			}
			if r.f(1) == 1 { // decoder_model_info_present_flag
				decoderModel = true
				bufferDelayLen = r.f(5) + 1
				r.f(32) // num_units_in_decoding_tick
				r.f(10) // buffer_removal_time_length_minus_1, frame_presentation_time_length_minus_1
			}
		}
		initialDisplayDelay := r.f(1) == 1
		ops := int(r.f(5)) + 1
		for i := 0; i < ops; i++ {
			r.f(12) // operating_point_idc
			level := byte(r.f(5))
			var tier byte
			if level > 7 {
				tier = byte(r.f(1))
			}
			if i == 0 {
				s.level, s.tier = level, tier
			}
			if decoderModel && r.f(1) == 1 { // decoder_model_present_for_this_op
				r.f(bufferDelayLen) // decoder_buffer_delay
				r.f(bufferDelayLen) // encoder_buffer_delay
				r.f(1)              // low_delay_mode_flag
			}
			if initialDisplayDelay && r.f(1) == 1 {
				r.f(4) // initial_display_delay_minus_1
			}
		}
	}
	wBits, hBits := r.f(4)+1, r.f(4)+1
	s.width, s.height = int(r.f(wBits))+1, int(r.f(hBits))+1
	if !reduced && r.f(1) == 1 { // frame_id_numbers_present_flag
		r.f(7) // delta_frame_id_length_minus_2, additional_frame_id_length_minus_1
	}
	r.f(3) // use_128x128_superblock, enable_filter_intra, enable_intra_edge_filter
	if !reduced {
		r.f(4) // enable_interintra_compound, masked_compound, warped_motion, dual_filter
		orderHint := r.f(1) == 1
		if orderHint {
			r.f(2) // enable_jnt_comp, enable_ref_frame_mvs
		}
		forceScreenContent := uint32(2)
		if r.f(1) == 0 { // seq_choose_screen_content_tools
			forceScreenContent = r.f(1)
		}
		if forceScreenContent > 0 && r.f(1) == 0 { // seq_choose_integer_mv
			r.f(1) // seq_force_integer_mv
		}
		if orderHint {
			r.f(3) // order_hint_bits_minus_1
		}
	}
	r.f(3) // enable_superres, enable_cdef, enable_restoration
	// color_config()
	s.highBitDepth = byte(r.f(1))
	if s.profile == 2 && s.highBitDepth == 1 {
		s.twelveBit = byte(r.f(1))
	}
	if s.profile != 1 {
		s.mono = byte(r.f(1))
	}
	cp, tc, mc := uint32(2), uint32(2), uint32(2)
	if r.f(1) == 1 { // color_description_present_flag
		cp, tc, mc = r.f(8), r.f(8), r.f(8)
	}
	switch {
	case s.mono == 1:
		s.subX, s.subY = 1, 1
	case cp == 1 && tc == 13 && mc == 0: // sRGB
	default:
		r.f(1) // color_range
		switch s.profile {
		case 0:
			s.subX, s.subY = 1, 1
		case 1:
		default:
			if s.twelveBit == 1 {
				s.subX = byte(r.f(1))
				if s.subX == 1 {
					s.subY = byte(r.f(1))
				}
			} else {
				s.subX = 1
			}
		}
		if s.subX == 1 && s.subY == 1 {
			s.chromaPos = byte(r.f(2))
		}
	}
	return !r.err
}

// mkvBits reads big-endian bit fields; reading past the end yields zeros and
// sets err.
type mkvBits struct {
	b   []byte
	pos int
	err bool
}

// f reads an n-bit unsigned field, n <= 32.
func (r *mkvBits) f(n uint32) uint32 {
	var v uint32
	for ; n > 0; n-- {
		if r.pos >= len(r.b)*8 {
			r.err = true
			return 0
		}
		v = v<<1 | uint32(r.b[r.pos/8]>>(7-r.pos%8))&1
		r.pos++
	}
	return v
}

// uvlc reads an AV1 uvlc() code.
func (r *mkvBits) uvlc() uint32 {
	zeros := uint32(0)
	for r.f(1) == 0 && !r.err {
		zeros++
	}
	if zeros >= 32 {
		return math.MaxUint32
	}
	return r.f(zeros) + 1<<zeros - 1
}
