package sinks

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/janusbridge/janusbridge/internal/janustest"
	"github.com/janusbridge/janusbridge/media"
)

// The Matroska muxer is judged by ffmpeg: frames come from real encodes
// (ffmpeg writes VP8/VP9/AV1 in IVF, H.264 in Annex-B, Opus in Ogg, G.711
// raw to a pipe; minimal readers below turn them into media.Frames), are
// muxed into a file, and ffprobe/ffmpeg read the file back.

// mkvNeedTools skips the test (fails it when CI=true) unless ffmpeg and
// ffprobe are installed.
func mkvNeedTools(t *testing.T) {
	t.Helper()
	janustest.RequirePrograms(t, "ffmpeg", "ffprobe")
}

const (
	mkvTestSeconds = 3
	mkvTestFPS     = 25
)

// mkvEncodeArgs are the ffmpeg arguments making a 3 s test stream of each
// codec on stdout.
var mkvEncodeArgs = map[string][]string{
	media.VP8: {"-f", "lavfi", "-i", "testsrc2=s=320x240:r=25", "-t", "3",
		"-c:v", "libvpx", "-deadline", "realtime", "-cpu-used", "8", "-g", "50", "-b:v", "300k", "-f", "ivf"},
	media.VP9: {"-f", "lavfi", "-i", "testsrc2=s=320x240:r=25", "-t", "3",
		"-c:v", "libvpx-vp9", "-deadline", "realtime", "-cpu-used", "8", "-g", "50", "-b:v", "300k", "-f", "ivf"},
	media.AV1: {"-f", "lavfi", "-i", "testsrc2=s=320x240:r=25", "-t", "3",
		"-c:v", "libaom-av1", "-usage", "realtime", "-cpu-used", "8", "-g", "50", "-b:v", "300k", "-f", "ivf"},
	// Baseline without B-frames like WebRTC's; x264 repeats SPS/PPS before
	// each IDR; the AUDs mark the access units for the reader.
	media.H264: {"-f", "lavfi", "-i", "testsrc2=s=320x240:r=25", "-t", "3",
		"-c:v", "libx264", "-profile:v", "baseline", "-pix_fmt", "yuv420p", "-bf", "0", "-g", "50",
		"-bsf:v", "h264_metadata=aud=insert", "-f", "h264"},
	// The same at another size, to change resolution mid-stream.
	media.H264 + "@640x480": {"-f", "lavfi", "-i", "testsrc2=s=640x480:r=25", "-t", "3",
		"-c:v", "libx264", "-profile:v", "baseline", "-pix_fmt", "yuv420p", "-bf", "0", "-g", "50",
		"-bsf:v", "h264_metadata=aud=insert", "-f", "h264"},
	media.Opus: {"-f", "lavfi", "-i", "sine=f=440:r=48000", "-t", "3", "-ac", "2",
		"-c:a", "libopus", "-b:a", "32k", "-frame_duration", "20", "-f", "ogg"},
	media.PCMU: {"-f", "lavfi", "-i", "sine=f=440:r=8000", "-t", "3", "-ac", "1", "-f", "mulaw"},
	media.PCMA: {"-f", "lavfi", "-i", "sine=f=440:r=8000", "-t", "3", "-ac", "1", "-f", "alaw"},
}

// mkvSource is one encoded test track.
type mkvSource struct {
	codec  string
	frames []mkvSourceFrame
}

type mkvSourceFrame struct {
	pts  time.Duration
	key  bool
	data []byte
}

var (
	mkvSourcesMu sync.Mutex
	mkvSources   = map[string]*mkvSource{}
)

// mkvEncode returns the frames of a 3 s encode of a key of mkvEncodeArgs,
// a codec name (made once per test binary).
func mkvEncode(t *testing.T, key string) *mkvSource {
	t.Helper()
	mkvSourcesMu.Lock()
	defer mkvSourcesMu.Unlock()
	if s := mkvSources[key]; s != nil {
		return s
	}
	codec, _, _ := strings.Cut(key, "@")
	args := append([]string{"-v", "error", "-nostdin"}, mkvEncodeArgs[key]...)
	out := mkvRun(t, nil, "ffmpeg", append(args, "pipe:1")...)
	s := &mkvSource{codec: codec}
	switch codec {
	case media.VP8, media.VP9, media.AV1:
		s.frames = mkvReadIVF(t, out)
		// Keyframe flags from ffprobe, not from the muxer's own parsers.
		flags := strings.Fields(string(mkvRun(t, out, "ffprobe", "-v", "error", "-show_entries", "packet=flags", "-of", "csv=p=0", "-i", "pipe:0")))
		if len(flags) != len(s.frames) {
			t.Fatalf("%s: ffprobe sees %d packets, the IVF reader %d", codec, len(flags), len(s.frames))
		}
		for i := range s.frames {
			s.frames[i].key = strings.HasPrefix(flags[i], "K")
		}
	case media.H264:
		s.frames = mkvReadAnnexB(t, out)
	case media.Opus:
		s.frames = mkvReadOggOpus(t, out)
	case media.PCMU, media.PCMA:
		for i := 0; len(out) > 0; i++ {
			n := min(160, len(out)) // 20 ms
			s.frames = append(s.frames, mkvSourceFrame{pts: time.Duration(i) * 20 * time.Millisecond, key: true, data: out[:n]})
			out = out[n:]
		}
	}
	if len(s.frames) == 0 || !s.frames[0].key {
		t.Fatalf("%s: encode gave %d frames, the first a keyframe: %v", codec, len(s.frames), len(s.frames) > 0 && s.frames[0].key)
	}
	mkvSources[key] = s
	return s
}

// mkvRun runs a program with stdin and returns its stdout, failing the test
// on an error.
func mkvRun(t *testing.T, stdin []byte, name string, args ...string) []byte {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Stdin = bytes.NewReader(stdin)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, stderr.String())
	}
	return out
}

// mkvReadIVF splits an IVF file into frames.
func mkvReadIVF(t *testing.T, b []byte) []mkvSourceFrame {
	t.Helper()
	if len(b) < 32 || string(b[:4]) != "DKIF" {
		t.Fatal("not an IVF file")
	}
	den := int64(binary.LittleEndian.Uint32(b[16:])) // time base: num/den
	num := int64(binary.LittleEndian.Uint32(b[20:]))
	b = b[binary.LittleEndian.Uint16(b[6:]):]
	var frames []mkvSourceFrame
	for len(b) >= 12 {
		n := int(binary.LittleEndian.Uint32(b))
		pts := int64(binary.LittleEndian.Uint64(b[4:]))
		if len(b) < 12+n {
			t.Fatal("truncated IVF frame")
		}
		frames = append(frames, mkvSourceFrame{pts: time.Duration(pts * num * int64(time.Second) / den), data: b[12 : 12+n]})
		b = b[12+n:]
	}
	return frames
}

// mkvReadAnnexB splits an H.264 Annex-B stream into access units at its
// AUDs; frames are 1/25 s apart (no B-frames).
func mkvReadAnnexB(t *testing.T, b []byte) []mkvSourceFrame {
	t.Helper()
	var frames []mkvSourceFrame
	start := -1
	cut := func(end int) {
		if start >= 0 {
			au := b[start:end]
			frames = append(frames, mkvSourceFrame{
				pts:  time.Duration(len(frames)) * time.Second / mkvTestFPS,
				key:  media.H264HasIDR(au),
				data: au,
			})
		}
		start = end
	}
	for i := 0; i+4 <= len(b); i++ {
		if b[i] == 0 && b[i+1] == 0 && b[i+2] == 1 && b[i+3]&0x1f == media.H264NALAUD {
			s := i
			if s > 0 && b[s-1] == 0 {
				s--
			}
			cut(s)
		}
	}
	cut(len(b))
	return frames
}

// mkvReadOggOpus returns the Opus packets of an Ogg Opus stream, 20 ms
// apart (as encoded), without the two header packets.
func mkvReadOggOpus(t *testing.T, b []byte) []mkvSourceFrame {
	t.Helper()
	var packets [][]byte
	var partial []byte
	for len(b) > 0 {
		if len(b) < 27 || string(b[:4]) != "OggS" {
			t.Fatal("bad Ogg page")
		}
		nsegs := int(b[26])
		segs := b[27 : 27+nsegs]
		body := b[27+nsegs:]
		for _, s := range segs {
			partial = append(partial, body[:s]...)
			body = body[s:]
			if s < 255 {
				packets = append(packets, partial)
				partial = nil
			}
		}
		b = body
	}
	if len(packets) < 3 || !bytes.HasPrefix(packets[0], []byte("OpusHead")) {
		t.Fatal("not an Ogg Opus stream")
	}
	var frames []mkvSourceFrame
	for i, p := range packets[2:] {
		frames = append(frames, mkvSourceFrame{pts: time.Duration(i) * 20 * time.Millisecond, key: true, data: p})
	}
	return frames
}

// mkvTracks returns tracks for codecs, in order, with indices 0, 1...
func mkvTracks(codecs ...string) []media.Track {
	var tracks []media.Track
	for i, c := range codecs {
		tr := media.Track{Index: i, MID: strconv.Itoa(i), Kind: media.KindOf(c), Codec: c, ClockRate: 90000}
		switch c {
		case media.Opus:
			tr.ClockRate, tr.Channels = 48000, 2
		case media.PCMU, media.PCMA:
			tr.ClockRate, tr.Channels = 8000, 1
		}
		tracks = append(tracks, tr)
	}
	return tracks
}

// mkvInterleave returns the frames of the sources as one stream ordered by
// PTS (ties: in track order), each source being track i. shift moves each
// frame's PTS (a gap); keep drops frames.
func mkvInterleave(sources []*mkvSource, shift func(time.Duration) time.Duration) []*media.Frame {
	var frames []*media.Frame
	for i, s := range sources {
		for _, f := range s.frames {
			pts := f.pts
			if shift != nil {
				pts = shift(pts)
			}
			frames = append(frames, &media.Frame{Track: i, PTS: pts, Keyframe: f.key, Data: bytes.Clone(f.data)})
		}
	}
	slices.SortStableFunc(frames, func(a, b *media.Frame) int {
		if a.PTS != b.PTS {
			return int(a.PTS - b.PTS)
		}
		return a.Track - b.Track
	})
	return frames
}

// mkvEnd returns where the last frame of each track ends, the latest of
// them: the duration a file of frames should have.
func mkvEnd(t *testing.T, tracks []media.Track, frames []*media.Frame) time.Duration {
	t.Helper()
	var end time.Duration
	last := map[int]*media.Frame{}
	prev := map[int]time.Duration{}
	for _, f := range frames {
		if l := last[f.Track]; l != nil {
			prev[f.Track] = f.PTS - l.PTS
		}
		last[f.Track] = f
	}
	for _, tr := range tracks {
		l := last[tr.Index]
		if l == nil {
			continue
		}
		d := prev[tr.Index]
		switch tr.Codec {
		case media.Opus:
			d = 20 * time.Millisecond
		case media.PCMU, media.PCMA:
			d = time.Duration(len(l.Data)) * time.Second / 8000
		}
		end = max(end, l.PTS+d)
	}
	return end
}

// mkvFile muxes frames into a new file in dir, calling Flush every
// flushEvery frames (0: never), and returns the open muxer and file.
func mkvFile(t *testing.T, path string, tracks []media.Track, docType string, frames []*media.Frame, flushEvery int) (muxer, *os.File) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	m, err := newMatroska(f, tracks, docType)
	if err != nil {
		t.Fatal(err)
	}
	for i, fr := range frames {
		if err := m.WriteFrame(fr); err != nil {
			t.Fatalf("frame %d (track %d at %v): %v", i, fr.Track, fr.PTS, err)
		}
		if flushEvery > 0 && (i+1)%flushEvery == 0 {
			if err := m.Flush(); err != nil {
				t.Fatal(err)
			}
		}
	}
	return m, f
}

// mkvProbe is what ffprobe -count_frames -count_packets says of a file.
type mkvProbe struct {
	Streams []struct {
		Index         int    `json:"index"`
		CodecName     string `json:"codec_name"`
		CodecType     string `json:"codec_type"`
		Width         int    `json:"width"`
		Height        int    `json:"height"`
		SampleRate    string `json:"sample_rate"`
		Channels      int    `json:"channels"`
		NbReadFrames  string `json:"nb_read_frames"`
		NbReadPackets string `json:"nb_read_packets"`
		ExtradataSize int    `json:"extradata_size"`
	} `json:"streams"`
	Format struct {
		FormatName string `json:"format_name"`
		Duration   string `json:"duration"`
	} `json:"format"`
}

func mkvFFprobe(t *testing.T, path string) mkvProbe {
	t.Helper()
	out := mkvRun(t, nil, "ffprobe", "-v", "error", "-count_frames", "-count_packets", "-show_streams", "-show_format", "-of", "json", path)
	var p mkvProbe
	if err := json.Unmarshal(out, &p); err != nil {
		t.Fatalf("ffprobe output: %v\n%s", err, out)
	}
	return p
}

// mkvDecode decodes a whole file with ffmpeg and returns what it printed
// at level error.
func mkvDecode(t *testing.T, path string) string {
	t.Helper()
	cmd := exec.Command("ffmpeg", "-nostdin", "-v", "error", "-i", path, "-f", "null", "-")
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Sprintf("%v: %s", err, out)
	}
	return string(out)
}

// mkvPacketTimes returns each stream's packet PTSes in seconds, in file order.
func mkvPacketTimes(t *testing.T, path string) map[int][]float64 {
	t.Helper()
	out := mkvRun(t, nil, "ffprobe", "-v", "error", "-show_entries", "packet=stream_index,pts_time", "-of", "csv=p=0", path)
	times := map[int][]float64{}
	for _, line := range strings.Fields(string(out)) {
		f := strings.Split(line, ",")
		if len(f) != 2 {
			t.Fatalf("ffprobe packet line %q", line)
		}
		s, _ := strconv.Atoi(f[0])
		v, err := strconv.ParseFloat(f[1], 64)
		if err != nil {
			t.Fatalf("ffprobe packet line %q: %v", line, err)
		}
		times[s] = append(times[s], v)
	}
	return times
}

var mkvFFmpegCodec = map[string]string{
	media.VP8: "vp8", media.VP9: "vp9", media.AV1: "av1", media.H264: "h264",
	media.Opus: "opus", media.PCMU: "pcm_mulaw", media.PCMA: "pcm_alaw",
}

func TestMatroskaFiles(t *testing.T) {
	mkvNeedTools(t)
	for _, tc := range []struct {
		docType string
		codecs  []string
	}{
		{"webm", []string{media.VP8, media.Opus}},
		{"webm", []string{media.VP9, media.Opus}},
		{"webm", []string{media.AV1, media.Opus}},
		{"webm", []string{media.Opus}},
		{"webm", []string{media.VP8}},
		{"matroska", []string{media.H264, media.Opus}},
		{"matroska", []string{media.H264, media.PCMU}},
		{"matroska", []string{media.VP8, media.PCMA}},
		{"matroska", []string{media.Opus, media.VP9}},
	} {
		t.Run(tc.docType+" "+strings.Join(tc.codecs, "+"), func(t *testing.T) {
			var sources []*mkvSource
			for _, c := range tc.codecs {
				sources = append(sources, mkvEncode(t, c))
			}
			tracks := mkvTracks(tc.codecs...)
			frames := mkvInterleave(sources, nil)
			path := filepath.Join(t.TempDir(), "out."+map[string]string{"webm": "webm", "matroska": "mkv"}[tc.docType])
			m, _ := mkvFile(t, path, tracks, tc.docType, frames, 50)
			if err := m.Close(); err != nil {
				t.Fatal(err)
			}
			if err := m.Close(); err != nil {
				t.Errorf("second Close: %v", err)
			}

			p := mkvFFprobe(t, path)
			if len(p.Streams) != len(tc.codecs) {
				t.Fatalf("%d streams, want %d", len(p.Streams), len(tc.codecs))
			}
			for i, s := range p.Streams {
				src := sources[i]
				if want := mkvFFmpegCodec[src.codec]; s.CodecName != want {
					t.Errorf("stream %d: codec %q, want %q", i, s.CodecName, want)
				}
				n := strconv.Itoa(len(src.frames))
				if s.NbReadPackets != n || s.NbReadFrames != n {
					t.Errorf("stream %d (%s): %s packets, %s frames decoded; %s written", i, s.CodecName, s.NbReadPackets, s.NbReadFrames, n)
				}
				switch s.CodecType {
				case "video":
					if s.Width != 320 || s.Height != 240 {
						t.Errorf("stream %d: %dx%d", i, s.Width, s.Height)
					}
				case "audio":
					want := map[string]string{media.Opus: "48000", media.PCMU: "8000", media.PCMA: "8000"}[src.codec]
					if s.SampleRate != want || s.Channels != int(tracks[i].Channels) {
						t.Errorf("stream %d: %s Hz, %d channels", i, s.SampleRate, s.Channels)
					}
				}
			}
			want := mkvEnd(t, tracks, frames).Seconds()
			if d, _ := strconv.ParseFloat(p.Format.Duration, 64); math.Abs(d-want) > 0.1 {
				t.Errorf("duration %s s, want %.3f s", p.Format.Duration, want)
			}
			if out := mkvDecode(t, path); out != "" {
				t.Errorf("ffmpeg decode: %s", out)
			}
			b, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			mkvCheckLayout(t, b, tc.docType, tracks)
		})
	}
}

// mkvElement is an EBML element read back by mkvChildren.
type mkvElement struct {
	id   uint32
	at   int64 // offset of the ID
	data []byte
	size int64 // -1: unknown
}

// mkvChildren reads the elements of b (at offset base in the file). An
// unknown-size element runs to the next element of one of the ids in ends,
// or to the end.
func mkvChildren(t *testing.T, b []byte, base int64, ends ...uint32) []mkvElement {
	t.Helper()
	var out []mkvElement
	pos := 0
	for pos < len(b) {
		start := pos
		l := 1
		for l <= 4 && b[pos]&(0x80>>(l-1)) == 0 {
			l++
		}
		if l > 4 || pos+l > len(b) {
			t.Fatalf("bad element ID at %d", base+int64(pos))
		}
		var id uint32
		for _, c := range b[pos : pos+l] {
			id = id<<8 | uint32(c)
		}
		pos += l
		n := 1
		for n <= 8 && b[pos]&(0x80>>(n-1)) == 0 {
			n++
		}
		if n > 8 || pos+n > len(b) {
			t.Fatalf("bad size of element %x at %d", id, base+int64(start))
		}
		size := uint64(b[pos] & (0xff >> n))
		allOnes := size == uint64(0xff>>n)
		for _, c := range b[pos+1 : pos+n] {
			size = size<<8 | uint64(c)
			allOnes = allOnes && c == 0xff
		}
		pos += n
		e := mkvElement{id: id, at: base + int64(start), size: int64(size)}
		if allOnes {
			e.size = -1
			end := len(b)
			for _, c := range mkvChildren(t, b[pos:], base+int64(pos), ends...) {
				if slices.Contains(ends, c.id) {
					end = int(c.at - base)
					break
				}
			}
			size = uint64(end - pos)
		}
		if pos+int(size) > len(b) {
			t.Fatalf("element %x at %d runs past its parent", id, base+int64(start))
		}
		e.data = b[pos : pos+int(size)]
		pos += int(size)
		out = append(out, e)
	}
	return out
}

func mkvFind(es []mkvElement, id uint32) []mkvElement {
	var out []mkvElement
	for _, e := range es {
		if e.id == id {
			out = append(out, e)
		}
	}
	return out
}

func mkvUintOf(t *testing.T, es []mkvElement, id uint32) uint64 {
	t.Helper()
	f := mkvFind(es, id)
	if len(f) != 1 {
		t.Fatalf("%d elements %x, want 1", len(f), id)
	}
	var v uint64
	for _, c := range f[0].data {
		v = v<<8 | uint64(c)
	}
	return v
}

// mkvTrackEntries returns the children of each TrackEntry of a file.
func mkvTrackEntries(t *testing.T, b []byte) [][]mkvElement {
	t.Helper()
	top := mkvChildren(t, b, 0)
	seg := mkvChildren(t, top[1].data, 0, mkvIDCluster)
	var out [][]mkvElement
	for _, e := range mkvFind(mkvChildren(t, mkvFind(seg, mkvIDTracks)[0].data, 0), mkvIDTrackEntry) {
		out = append(out, mkvChildren(t, e.data, 0))
	}
	return out
}

// mkvCheckLayout checks a finalised file's structure: DocType, known sizes,
// Duration, a SeekHead pointing at Info, Tracks and Cues, and Cues pointing
// at Clusters whose referenced block is a keyframe of the cue's track.
func mkvCheckLayout(t *testing.T, b []byte, docType string, tracks []media.Track) {
	t.Helper()
	top := mkvChildren(t, b, 0)
	if len(top) != 2 || top[0].id != mkvIDEBML || top[1].id != mkvIDSegment {
		t.Fatalf("top level: %+v", top)
	}
	header := mkvChildren(t, top[0].data, 0)
	if got := string(mkvFind(header, mkvIDDocType)[0].data); got != docType {
		t.Errorf("DocType %q", got)
	}
	seg := top[1]
	if seg.size < 0 {
		t.Error("Segment size not patched")
	}
	segData := seg.at + 12
	children := mkvChildren(t, seg.data, segData)
	byPos := map[int64]mkvElement{}
	for _, c := range children {
		byPos[c.at-segData] = c
		if c.id == mkvIDCluster && c.size < 0 {
			t.Errorf("Cluster at %d: size not patched", c.at)
		}
	}
	heads := mkvFind(children, mkvIDSeekHead)
	if len(heads) != 1 {
		t.Fatalf("%d SeekHeads", len(heads))
	}
	seen := map[uint32]bool{}
	for _, s := range mkvFind(mkvChildren(t, heads[0].data, 0), mkvIDSeek) {
		sc := mkvChildren(t, s.data, 0)
		id := uint32(binary.BigEndian.Uint32(mkvFind(sc, mkvIDSeekID)[0].data))
		pos := int64(mkvUintOf(t, sc, mkvIDSeekPosition))
		if e, ok := byPos[pos]; !ok || e.id != id {
			t.Errorf("Seek to %x points at %d: no such element", id, pos)
		}
		seen[id] = true
	}
	if !seen[mkvIDInfo] || !seen[mkvIDTracks] || !seen[mkvIDCues] {
		t.Errorf("SeekHead has %v", seen)
	}
	info := mkvChildren(t, mkvFind(children, mkvIDInfo)[0].data, 0)
	if len(mkvFind(info, mkvIDDuration)) != 1 || mkvUintOf(t, info, mkvIDTimestampScale) != 1000000 {
		t.Errorf("Info: %+v", info)
	}
	entries := mkvFind(mkvChildren(t, mkvFind(children, mkvIDTracks)[0].data, 0), mkvIDTrackEntry)
	if len(entries) != len(tracks) {
		t.Errorf("%d TrackEntries", len(entries))
	}
	cues := mkvFind(children, mkvIDCues)
	if len(cues) != 1 {
		t.Fatalf("%d Cues", len(cues))
	}
	points := mkvFind(mkvChildren(t, cues[0].data, 0), mkvIDCuePoint)
	if len(points) == 0 {
		t.Fatal("no CuePoints")
	}
	for _, p := range points {
		pc := mkvChildren(t, p.data, 0)
		ctp := mkvChildren(t, mkvFind(pc, mkvIDCueTrackPositions)[0].data, 0)
		cl := int64(mkvUintOf(t, ctp, mkvIDCueClusterPosition))
		rel := int64(mkvUintOf(t, ctp, mkvIDCueRelativePos))
		track := mkvUintOf(t, ctp, mkvIDCueTrack)
		cluster, ok := byPos[cl]
		if !ok || cluster.id != mkvIDCluster {
			t.Fatalf("CuePoint to %d: not a Cluster", cl)
		}
		if rel >= int64(len(cluster.data)) {
			t.Fatalf("CuePoint relative position %d past its cluster", rel)
		}
		block := mkvChildren(t, cluster.data[rel:], 0)[0]
		if block.id != mkvIDSimpleBlock || uint64(block.data[0]&0x7f) != track || block.data[3]&0x80 == 0 {
			t.Errorf("CuePoint at %d ms: block %x track %d flags %x", mkvUintOf(t, pc, mkvIDCueTime), block.id, block.data[0]&0x7f, block.data[3])
		}
		ms := int64(mkvUintOf(t, mkvChildren(t, cluster.data, 0), mkvIDTimestamp)) + int64(int16(binary.BigEndian.Uint16(block.data[1:])))
		if uint64(ms) != mkvUintOf(t, pc, mkvIDCueTime) {
			t.Errorf("CueTime %d, block at %d ms", mkvUintOf(t, pc, mkvIDCueTime), ms)
		}
	}
}

// A killed recorder leaves a file that was flushed but never closed: it
// decodes fully, up to the last flushed frame.
func TestMatroskaKilled(t *testing.T) {
	mkvNeedTools(t)
	for _, tc := range []struct {
		docType string
		codecs  []string
	}{
		{"webm", []string{media.VP8, media.Opus}},
		{"matroska", []string{media.H264, media.Opus}},
		{"webm", []string{media.Opus}},
	} {
		t.Run(tc.docType+" "+strings.Join(tc.codecs, "+"), func(t *testing.T) {
			var sources []*mkvSource
			for _, c := range tc.codecs {
				sources = append(sources, mkvEncode(t, c))
			}
			tracks := mkvTracks(tc.codecs...)
			frames := mkvInterleave(sources, nil)
			// Flush after the frames of the first 2 s, then write 0.5 s
			// more that stay buffered when the process "dies".
			var flushed, more []*media.Frame
			for _, f := range frames {
				switch {
				case f.PTS < 2*time.Second:
					flushed = append(flushed, f)
				case f.PTS < 2500*time.Millisecond:
					more = append(more, f)
				}
			}
			dir := t.TempDir()
			path := filepath.Join(dir, "live.mkv")
			m, f := mkvFile(t, path, tracks, tc.docType, flushed, 0)
			if err := m.Flush(); err != nil {
				t.Fatal(err)
			}
			for _, fr := range more {
				if err := m.WriteFrame(fr); err != nil {
					t.Fatal(err)
				}
			}
			b, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			killed := filepath.Join(dir, "killed.mkv")
			if err := os.WriteFile(killed, b, 0o644); err != nil {
				t.Fatal(err)
			}
			if out := mkvDecode(t, killed); out != "" {
				t.Errorf("ffmpeg decode of the killed file: %s", out)
			}
			lastFlushed := flushed[len(flushed)-1].PTS.Seconds()
			times := mkvPacketTimes(t, killed)
			if len(times) != len(tracks) {
				t.Fatalf("killed file has packets of %d streams", len(times))
			}
			for s, ts := range times {
				n := 0
				for _, f := range flushed {
					n += btoi(f.Track == s)
				}
				if last := ts[len(ts)-1]; last < lastFlushed-1 || last > lastFlushed+0.001 || len(ts) != n {
					t.Errorf("stream %d: %d packets, the last at %.3f s; flushed %d, the last at %.3f s", s, len(ts), last, n, lastFlushed)
				}
			}

			// A kill in the middle of a write: a file cut anywhere in its
			// last second still opens and holds what was before the cut.
			for _, cut := range []int{len(b) - 1, len(b) - 37, len(b) - 1000, len(b) * 3 / 4} {
				cutPath := filepath.Join(dir, fmt.Sprintf("cut%d.mkv", cut))
				if err := os.WriteFile(cutPath, b[:cut], 0o644); err != nil {
					t.Fatal(err)
				}
				times := mkvPacketTimes(t, cutPath)
				var last float64
				for _, ts := range times {
					last = max(last, ts[len(ts)-1])
				}
				if want := float64(cut) / float64(len(b)) * lastFlushed; last < want-1 {
					t.Errorf("cut at %d of %d bytes: last packet at %.3f s", cut, len(b), last)
				}
			}

			// The same muxer still finalises the file.
			if err := m.Close(); err != nil {
				t.Fatal(err)
			}
			if err := f.Close(); err != nil {
				t.Fatal(err)
			}
			p := mkvFFprobe(t, path)
			if d, _ := strconv.ParseFloat(p.Format.Duration, 64); math.Abs(d-2.5) > 0.1 {
				t.Errorf("closed file: duration %s", p.Format.Duration)
			}
		})
	}
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

// A gap in the media (loss, mute, a Janus reconnect) stays a gap in time.
func TestMatroskaGap(t *testing.T) {
	mkvNeedTools(t)
	for _, tc := range []struct {
		docType string
		codecs  []string
	}{
		{"webm", []string{media.VP8, media.Opus}},
		{"matroska", []string{media.H264, media.PCMU}},
	} {
		t.Run(tc.docType+" "+strings.Join(tc.codecs, "+"), func(t *testing.T) {
			var sources []*mkvSource
			for _, c := range tc.codecs {
				sources = append(sources, mkvEncode(t, c))
			}
			tracks := mkvTracks(tc.codecs...)
			const gapAt, gap = time.Second, 2 * time.Second
			frames := mkvInterleave(sources, func(pts time.Duration) time.Duration {
				if pts >= gapAt {
					return pts + gap
				}
				return pts
			})
			path := filepath.Join(t.TempDir(), "gap.mkv")
			m, _ := mkvFile(t, path, tracks, tc.docType, frames, 25)
			if err := m.Close(); err != nil {
				t.Fatal(err)
			}
			times := mkvPacketTimes(t, path)
			for s, ts := range times {
				var maxStep float64
				var at float64
				for i := 1; i < len(ts); i++ {
					if d := ts[i] - ts[i-1]; d > maxStep {
						maxStep, at = d, ts[i]
					}
				}
				if maxStep < gap.Seconds() || maxStep > gap.Seconds()+0.1 || math.Abs(at-(gapAt+gap).Seconds()) > 0.05 {
					t.Errorf("stream %d: largest step %.3f s, to %.3f s", s, maxStep, at)
				}
			}
			p := mkvFFprobe(t, path)
			want := mkvEnd(t, tracks, frames).Seconds()
			if d, _ := strconv.ParseFloat(p.Format.Duration, 64); math.Abs(d-want) > 0.1 {
				t.Errorf("duration %s s, want %.3f s", p.Format.Duration, want)
			}
			if out := mkvDecode(t, path); out != "" {
				t.Errorf("ffmpeg decode: %s", out)
			}
		})
	}
}

// The header waits for the video's first keyframe; audio before it is
// kept, video before it dropped. When the keyframe is too late, the header
// goes out without it and H.264 is written in Annex-B.
func TestMatroskaWaitsForKeyframe(t *testing.T) {
	mkvNeedTools(t)
	for _, tc := range []struct {
		name   string
		codecs []string
		start  time.Duration // of the video
		annexB bool
	}{
		{"h264 after 1s", []string{media.H264, media.Opus}, time.Second, false},
		{"h264 after 2.5s", []string{media.H264, media.Opus}, 2500 * time.Millisecond, true},
		{"vp8 after 2.5s", []string{media.VP8, media.Opus}, 2500 * time.Millisecond, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			video, audio := mkvEncode(t, tc.codecs[0]), mkvEncode(t, tc.codecs[1])
			tracks := mkvTracks(tc.codecs...)
			var frames []*media.Frame
			// A few delta frames first: dropped.
			for i, f := range video.frames[5:10] {
				frames = append(frames, &media.Frame{Track: 0, PTS: time.Duration(i) * 40 * time.Millisecond, Data: f.data})
			}
			written := 0
			for _, f := range mkvInterleave([]*mkvSource{video, audio}, func(pts time.Duration) time.Duration { return pts }) {
				if f.Track == 0 {
					if f.PTS+tc.start >= mkvTestSeconds*time.Second {
						continue
					}
					f.PTS += tc.start
					written++
				}
				frames = append(frames, f)
			}
			slices.SortStableFunc(frames, func(a, b *media.Frame) int { return int(a.PTS - b.PTS) })
			path := filepath.Join(t.TempDir(), "late.mkv")
			m, _ := mkvFile(t, path, tracks, "matroska", frames, 0)
			if err := m.Close(); err != nil {
				t.Fatal(err)
			}
			p := mkvFFprobe(t, path)
			if len(p.Streams) != 2 {
				t.Fatalf("%d streams", len(p.Streams))
			}
			if got, want := p.Streams[0].NbReadFrames, strconv.Itoa(written); got != want {
				t.Errorf("video: %s frames decoded, want %s", got, want)
			}
			if got, want := p.Streams[1].NbReadPackets, strconv.Itoa(len(audio.frames)); got != want {
				t.Errorf("audio: %s packets, want %s", got, want)
			}
			b, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			entry := mkvTrackEntries(t, b)[0]
			if hasPrivate := len(mkvFind(entry, mkvIDCodecPrivate)) > 0; hasPrivate == tc.annexB && tc.codecs[0] == media.H264 {
				t.Errorf("H.264 CodecPrivate present: %v", hasPrivate)
			}
			if hasSize := len(mkvFind(entry, mkvIDVideo)) > 0; hasSize != (tc.start < mkvHoldSpan) {
				t.Errorf("Video element present: %v", hasSize)
			}
			times := mkvPacketTimes(t, path)
			if first := times[0][0]; math.Abs(first-tc.start.Seconds()) > 0.001 {
				t.Errorf("first video packet at %.3f s, want %v", first, tc.start)
			}
			if out := mkvDecode(t, path); out != "" {
				t.Errorf("ffmpeg decode: %s", out)
			}
		})
	}
}

func TestMatroskaErrors(t *testing.T) {
	for _, tc := range []struct {
		name    string
		docType string
		tracks  []media.Track
		want    string
	}{
		{"h264 in webm", "webm", mkvTracks(media.H264, media.Opus),
			`webm: codec "h264" (track 0) cannot go in a webm file; it takes vp8, vp9, av1, opus`},
		{"pcmu in webm", "webm", mkvTracks(media.VP8, media.PCMU),
			`webm: codec "pcmu" (track 1) cannot go in a webm file; it takes vp8, vp9, av1, opus`},
		{"pcma in webm", "webm", mkvTracks(media.PCMA),
			`webm: codec "pcma" (track 0) cannot go in a webm file; it takes vp8, vp9, av1, opus`},
		{"unknown codec in mkv", "matroska", []media.Track{{Index: 0, Codec: "mp3"}},
			`mkv: codec "mp3" (track 0) cannot go in a mkv file; it takes vp8, vp9, h264, av1, opus, pcmu, pcma`},
		{"unknown doc type", "avi", mkvTracks(media.VP8),
			`matroska: unknown DocType "avi" (want webm or matroska)`},
		{"no tracks", "webm", nil, `webm: no tracks`},
		{"duplicate index", "matroska", []media.Track{{Index: 1, Codec: media.Opus}, {Index: 1, Codec: media.VP8}},
			`mkv: two tracks with index 1`},
		{"opus surround", "webm", []media.Track{{Index: 0, Codec: media.Opus, Channels: 6}},
			`webm: opus track 0 has 6 channels; at most 2 are supported`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m, err := newMatroska(&mkvSeekBuffer{}, tc.tracks, tc.docType)
			if err == nil || err.Error() != tc.want {
				t.Errorf("got %v, %v\nwant %s", m, err, tc.want)
			}
		})
	}
}

func TestMatroskaFrameErrors(t *testing.T) {
	var w mkvSeekBuffer
	m, err := newMatroska(&w, mkvTracks(media.Opus), "webm")
	if err != nil {
		t.Fatal(err)
	}
	opus := []byte{0xfc, 0xff, 0xfe} // 20 ms CELT
	for _, tc := range []struct {
		f    media.Frame
		want string
	}{
		{media.Frame{Track: 3, Data: opus}, "webm: frame for unknown track 3"},
		{media.Frame{Track: 0, PTS: -time.Millisecond, Data: opus}, "webm: track 0: negative PTS -1ms"},
	} {
		if err := m.WriteFrame(&tc.f); err == nil || err.Error() != tc.want {
			t.Errorf("got %v, want %s", err, tc.want)
		}
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	if err := m.WriteFrame(&media.Frame{Data: opus}); err == nil {
		t.Error("write after Close: no error")
	}

	// A write error sticks.
	m, err = newMatroska(&mkvSeekBuffer{fail: true}, mkvTracks(media.Opus), "webm")
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Flush(); err == nil {
		t.Error("Flush: no error")
	}
	if err := m.WriteFrame(&media.Frame{Data: opus}); err == nil {
		t.Error("WriteFrame after a failed Flush: no error")
	}
	if err := m.Close(); err == nil {
		t.Error("Close after a failed Flush: no error")
	}
}

// Two tracks far apart: a block can't be 32.768 s before its cluster.
func TestMatroskaFrameTooOld(t *testing.T) {
	m, err := newMatroska(&mkvSeekBuffer{}, mkvTracks(media.Opus, media.PCMU), "matroska")
	if err != nil {
		t.Fatal(err)
	}
	for pts := time.Duration(0); pts <= 40*time.Second; pts += 20 * time.Millisecond {
		if err := m.WriteFrame(&media.Frame{Track: 0, PTS: pts, Data: []byte{0xfc, 0xff}}); err != nil {
			t.Fatal(err)
		}
	}
	err = m.WriteFrame(&media.Frame{Track: 1, PTS: 0, Data: make([]byte, 160)})
	if !errors.Is(err, errMkvFrameTooOld) {
		t.Errorf("got %v", err)
	}
	if err := m.WriteFrame(&media.Frame{Track: 1, PTS: 39 * time.Second, Data: make([]byte, 160)}); err != nil {
		t.Errorf("a frame 1 s behind: %v", err)
	}
}

// Writing a frame allocates nothing once the buffers have grown.
func TestMatroskaWriteAllocs(t *testing.T) {
	h264 := []byte{0, 0, 0, 1, 0x67, 0x42, 0xc0, 0x0d, 0xd9, 0x01, 0x41, 0xfb, 0x01, 0x10, 0x00, 0x00, 0x03, 0x00, 0x10, 0x00, 0x00, 0x03, 0x03, 0x20, 0xf1, 0x42, 0xa4, 0x80,
		0, 0, 0, 1, 0x68, 0xcb, 0x83, 0xcb, 0x20, 0, 0, 0, 1, 0x65, 0x88, 0x84, 0x21}
	m, err := newMatroska(&mkvSeekBuffer{}, mkvTracks(media.H264, media.Opus), "matroska")
	if err != nil {
		t.Fatal(err)
	}
	if err := m.WriteFrame(&media.Frame{Track: 0, Keyframe: true, Data: h264}); err != nil {
		t.Fatal(err)
	}
	a := &media.Frame{Track: 1, Data: []byte{0xfc, 0xff, 0xfe}}
	v := &media.Frame{Track: 0, Data: []byte{0, 0, 0, 1, 0x41, 0x9a, 0x21}}
	write := func() {
		a.PTS += 20 * time.Millisecond
		v.PTS = a.PTS
		if err := m.WriteFrame(a); err != nil {
			t.Fatal(err)
		}
		if err := m.WriteFrame(v); err != nil {
			t.Fatal(err)
		}
	}
	for range 1000 { // grow the buffers
		write()
	}
	if n := testing.AllocsPerRun(1000, write); n != 0 {
		t.Errorf("%v allocations per frame pair", n)
	}
}

// mkvSeekBuffer is an in-memory io.WriteSeeker; with fail, writes fail.
type mkvSeekBuffer struct {
	b    []byte
	pos  int64
	fail bool
}

func (s *mkvSeekBuffer) Write(p []byte) (int, error) {
	if s.fail {
		return 0, errors.New("disk full")
	}
	if need := s.pos + int64(len(p)); need > int64(len(s.b)) {
		s.b = append(s.b, make([]byte, need-int64(len(s.b)))...)
	}
	copy(s.b[s.pos:], p)
	s.pos += int64(len(p))
	return len(p), nil
}

func (s *mkvSeekBuffer) Seek(off int64, whence int) (int64, error) {
	switch whence {
	case io.SeekCurrent:
		off += s.pos
	case io.SeekEnd:
		off += int64(len(s.b))
	}
	if off < 0 {
		return 0, errors.New("negative offset")
	}
	s.pos = off
	return off, nil
}

// The codec header parsers against what ffmpeg makes of the same streams.
func TestMatroskaCodecHeaders(t *testing.T) {
	mkvNeedTools(t)
	for _, codec := range []string{media.VP8, media.VP9, media.AV1} {
		t.Run(codec, func(t *testing.T) {
			s := mkvEncode(t, codec)
			var w, h int
			var ok bool
			switch codec {
			case media.VP8:
				w, h, ok = mkvVP8Size(s.frames[0].data)
			case media.VP9:
				w, h, ok = mkvVP9Size(s.frames[0].data)
			case media.AV1:
				var c mkvAV1Config
				c, ok = mkvParseAV1Config(s.frames[0].data)
				w, h = c.width, c.height
				// ffmpeg's av1C for this stream (ffprobe -show_data of
				// an MKV remux): 81 00 0c 00 then the sequence header.
				if !bytes.HasPrefix(c.av1C, []byte{0x81, 0x00, 0x0c, 0x00, 0x0a}) {
					t.Errorf("av1C %x", c.av1C)
				}
			}
			if !ok || w != 320 || h != 240 {
				t.Errorf("keyframe size %dx%d, %v", w, h, ok)
			}
			if codec != media.AV1 {
				for _, f := range s.frames[1:5] {
					if _, _, ok := map[string]func([]byte) (int, int, bool){media.VP8: mkvVP8Size, media.VP9: mkvVP9Size}[codec](f.data); ok {
						t.Error("a delta frame parsed as a keyframe")
					}
				}
			}
		})
	}
}

func TestMatroskaOpusDuration(t *testing.T) {
	for _, tc := range []struct {
		p    []byte
		want time.Duration
	}{
		{nil, 0},
		{[]byte{0xfc}, 20 * time.Millisecond},        // CELT FB 20 ms, 1 frame
		{[]byte{0xe0}, 2500 * time.Microsecond},      // CELT 2.5 ms
		{[]byte{0x19}, 120 * time.Millisecond},       // SILK NB 60 ms, code 1: 2 frames
		{[]byte{0x1b, 0x03}, 180 * time.Millisecond}, // SILK NB 60 ms, code 3: 3 frames
		{[]byte{0x78}, 20 * time.Millisecond},        // hybrid FB 20 ms
		{[]byte{0x71}, 20 * time.Millisecond},        // hybrid SWB 10 ms, 2 frames
		{[]byte{0x03}, 0},                            // code 3 without a count
		{[]byte{0x48}, 20 * time.Millisecond},        // SILK WB 20 ms
	} {
		if got := mkvOpusDuration(tc.p); got != tc.want {
			t.Errorf("%x: %v, want %v", tc.p, got, tc.want)
		}
	}
}

func TestMatroskaAV1Sample(t *testing.T) {
	td := []byte{0x12, 0x00}
	seq := []byte{0x0a, 0x03, 1, 2, 3}
	frame := []byte{0x32, 0x02, 9, 9}
	noSize := []byte{0x30, 7, 7, 7} // OBU_FRAME without obu_size: runs to the end
	for _, tc := range []struct {
		name     string
		tu, want []byte
	}{
		{"temporal delimiter dropped", slices.Concat(td, seq, frame), slices.Concat(seq, frame)},
		{"no delimiter", slices.Concat(seq, frame), slices.Concat(seq, frame)},
		{"last OBU without size", slices.Concat(td, frame, noSize), slices.Concat(frame, noSize)},
		{"malformed kept whole", []byte{0x12, 0x05, 1}, []byte{0x12, 0x05, 1}},
	} {
		if got := mkvAV1Sample([]byte{0xee}, tc.tu); !bytes.Equal(got, append([]byte{0xee}, tc.want...)) {
			t.Errorf("%s: %x", tc.name, got)
		}
	}
}

func TestMatroskaVoid(t *testing.T) {
	for _, n := range []int{2, 11, 28, 127, 128, 129, 130, 20000} {
		b := mkvAppendVoid(nil, n)
		if len(b) != n {
			t.Errorf("Void of %d: %d bytes", n, len(b))
			continue
		}
		e := mkvChildren(t, b, 0)
		if len(e) != 1 || e[0].id != mkvIDVoid {
			t.Errorf("Void of %d reads back as %+v", n, e)
		}
	}
}

func FuzzMatroskaCodecHeaders(f *testing.F) {
	f.Add([]byte{0x12, 0x00, 0x0a, 0x0b, 0x00, 0x00, 0x00, 0x04, 0x3c, 0xff, 0xbc, 0xda, 0xf9, 0x00, 0x40})
	f.Add([]byte{0x82, 0x49, 0x83, 0x42, 0x00, 0x13, 0xf0, 0x0e, 0xf6})
	f.Add([]byte{0x10, 0x02, 0x00, 0x9d, 0x01, 0x2a, 0x40, 0x01, 0xf0, 0x00})
	f.Fuzz(func(t *testing.T, b []byte) {
		mkvVP8Size(b)
		mkvVP9Size(b)
		mkvOpusDuration(b)
		if c, ok := mkvParseAV1Config(b); ok && len(c.av1C) < 6 {
			t.Errorf("av1C %x", c.av1C)
		}
		if got := mkvAV1Sample(nil, b); len(got) > len(b) {
			t.Errorf("AV1 sample grew: %x -> %x", b, got)
		}
	})
}

// A new resolution mid-stream: the keyframe's new SPS and PPS stay in the
// sample (those equal to the avcC's are dropped), and decoders follow.
func TestMatroskaH264NewResolution(t *testing.T) {
	mkvNeedTools(t)
	small, large := mkvEncode(t, media.H264), mkvEncode(t, media.H264+"@640x480")
	if !large.frames[50].key {
		t.Fatal("no keyframe at 2 s")
	}
	var frames []*media.Frame
	for i := 0; i < 75; i++ {
		src := small
		if i >= 50 {
			src = large
		}
		f := src.frames[i]
		frames = append(frames, &media.Frame{Track: 0, PTS: f.pts, Keyframe: f.key, Data: f.data})
	}
	path := filepath.Join(t.TempDir(), "resize.mkv")
	m, _ := mkvFile(t, path, mkvTracks(media.H264), "matroska", frames, 10)
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	if out := mkvDecode(t, path); out != "" {
		t.Errorf("ffmpeg decode: %s", out)
	}
	out := mkvRun(t, nil, "ffprobe", "-v", "error", "-select_streams", "v", "-show_entries", "frame=width,height", "-of", "csv=p=0", path)
	sizes := strings.Fields(string(out))
	for i := range sizes {
		sizes[i] = strings.Trim(sizes[i], ",") // side data adds empty fields
	}
	if len(sizes) != 75 || sizes[0] != "320,240" || sizes[49] != "320,240" || sizes[50] != "640,480" || sizes[74] != "640,480" {
		t.Errorf("decoded %d frames: %v", len(sizes), sizes)
	}

	// The NAL unit types of each keyframe's sample.
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var keyNALs [][]byte
	seg := mkvChildren(t, mkvChildren(t, b, 0)[1].data, 0)
	for _, c := range mkvFind(seg, mkvIDCluster) {
		for _, blk := range mkvFind(mkvChildren(t, c.data, 0), mkvIDSimpleBlock) {
			if blk.data[3]&0x80 == 0 {
				continue
			}
			var types []byte
			for s := blk.data[4:]; len(s) >= 4; {
				n := int(binary.BigEndian.Uint32(s))
				types = append(types, s[4]&0x1f)
				s = s[4+n:]
			}
			keyNALs = append(keyNALs, types)
		}
	}
	if len(keyNALs) != 2 || bytes.ContainsAny(keyNALs[0], "\x07\x08\x09") ||
		bytes.IndexByte(keyNALs[1], 7) < 0 || bytes.IndexByte(keyNALs[1], 8) < 0 {
		t.Errorf("keyframe NAL unit types %v", keyNALs)
	}
}
