package sources

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/janusbridge/janusbridge/config"
	"github.com/janusbridge/janusbridge/media"
	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"
	"github.com/pion/webrtc/v4/pkg/media/h264writer"
	"github.com/pion/webrtc/v4/pkg/media/ivfwriter"
	"github.com/pion/webrtc/v4/pkg/media/oggwriter"
)

// fixtureDir holds the media files the tests generate with ffmpeg, made
// once per test binary (encoding costs CPU on a shared machine).
var (
	fixtureDir  string
	fixtureMu   sync.Mutex
	fixtureMade = map[string]error{}
)

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "jb-sources-fixtures-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fixtureDir = dir
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// Inputs of the fixtures: 2 s of test pattern at 25 fps (a keyframe every
// second) and a 440 Hz tone.
var (
	videoIn = []string{"-f", "lavfi", "-i", "testsrc2=size=320x240:rate=25"}
	audioIn = []string{"-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000"}
	vp8Enc  = []string{"-c:v", "libvpx", "-deadline", "realtime", "-cpu-used", "8", "-b:v", "400k", "-g", "25", "-auto-alt-ref", "0"}
	vp9Enc  = []string{"-c:v", "libvpx-vp9", "-deadline", "realtime", "-cpu-used", "8", "-b:v", "400k", "-g", "25", "-lag-in-frames", "0", "-row-mt", "0"}
	h264Enc = []string{"-c:v", "libx264", "-preset", "ultrafast", "-profile:v", "baseline", "-pix_fmt", "yuv420p", "-g", "25", "-keyint_min", "25", "-sc_threshold", "0"}
	av1Enc  = []string{"-c:v", "libsvtav1", "-preset", "12", "-g", "25", "-pix_fmt", "yuv420p"}
	opusEnc = []string{"-c:a", "libopus", "-b:a", "64k"}
	aacEnc  = []string{"-c:a", "aac", "-b:a", "64k"}
)

// fixtures are the files the format tests play: name -> ffmpeg arguments
// between the inputs and the output.
var fixtures = map[string][]string{
	"vp8-opus.webm":   join(videoIn, audioIn, vp8Enc, opusEnc),
	"vp9-opus.webm":   join(videoIn, audioIn, vp9Enc, opusEnc),
	"h264-opus.mkv":   join(videoIn, audioIn, h264Enc, opusEnc),
	"av1-opus.mkv":    join(videoIn, audioIn, av1Enc, opusEnc),
	"opus.ogg":        join(audioIn, opusEnc),
	"vp8.ivf":         join(videoIn, vp8Enc),
	"vp9.ivf":         join(videoIn, vp9Enc),
	"av1.ivf":         join(videoIn, av1Enc),
	"h264-opus.mp4":   join(videoIn, audioIn, h264Enc, opusEnc),
	"vp9-opus.mp4":    join(videoIn, audioIn, vp9Enc, opusEnc),
	"av1.mp4":         join(videoIn, av1Enc),
	"h264-opus-f.mp4": join(videoIn, audioIn, h264Enc, opusEnc, []string{"-movflags", "+frag_keyframe+empty_moov+default_base_moof"}),
	"h264-aac.mp4":    join(videoIn, audioIn, h264Enc, aacEnc),
	"h264-aac.mkv":    join(videoIn, audioIn, h264Enc, aacEnc),
	// B-frames: composition offsets and an edit list.
	"h264b-opus.mp4": join(videoIn, audioIn, []string{"-c:v", "libx264", "-preset", "veryfast", "-bf", "2", "-pix_fmt", "yuv420p", "-g", "25"}, opusEnc),
	"h264.h264":      join(videoIn, h264Enc, []string{"-bsf:v", "h264_mp4toannexb", "-f", "h264"}),
}

func join(parts ...[]string) []string {
	var out []string
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

// fixture returns the path of a generated media file, making it first.
func fixture(t *testing.T, name string) string {
	t.Helper()
	requireFFmpeg(t)
	fixtureMu.Lock()
	defer fixtureMu.Unlock()
	path := filepath.Join(fixtureDir, name)
	if err, done := fixtureMade[name]; done {
		if err != nil {
			t.Fatal(err)
		}
		return path
	}
	args, ok := fixtures[name]
	if !ok {
		t.Fatalf("no fixture %q", name)
	}
	// The inputs, then 2 s of output.
	var in, out []string
	for i := 0; i < len(args); i++ {
		if args[i] == "-i" || args[i] == "-f" && i+1 < len(args) && args[i+1] == "lavfi" {
			in = append(in, args[i], args[i+1])
			i++
			continue
		}
		out = append(out, args[i])
	}
	cmd := append([]string{"-nostdin", "-v", "error", "-y"}, in...)
	cmd = append(cmd, "-t", "2")
	cmd = append(cmd, out...)
	cmd = append(cmd, path)
	o, err := exec.Command("ffmpeg", cmd...).CombinedOutput()
	if err != nil {
		err = fmt.Errorf("ffmpeg %s: %v\n%s", strings.Join(cmd, " "), err, o)
	}
	fixtureMade[name] = err
	if err != nil {
		t.Fatal(err)
	}
	return path
}

// streamFrames counts the frames of a file's stream of that kind with
// ffprobe.
func streamFrames(t *testing.T, path, kind string) int {
	t.Helper()
	sel := "v:0"
	if kind == "audio" {
		sel = "a:0"
	}
	out, err := exec.Command("ffprobe", "-v", "error", "-count_frames", "-select_streams", sel,
		"-show_entries", "stream=nb_read_frames", "-of", "csv=p=0", path).Output()
	if err != nil {
		t.Fatalf("ffprobe %s: %v", path, err)
	}
	n, err := strconv.Atoi(strings.TrimSpace(strings.Split(string(out), "\n")[0]))
	if err != nil {
		t.Fatalf("ffprobe %s: frames %q", path, out)
	}
	return n
}

// newTestFile opens a file source on path; pace false sends without
// waiting.
func newTestFile(t *testing.T, path string, loop bool, fps float64, pace bool) *File {
	t.Helper()
	src, err := NewFile(&config.Source{Type: "file", Path: path, Loop: loop, FPS: fps}, nil)
	if err != nil {
		t.Fatalf("NewFile(%s): %v", filepath.Base(path), err)
	}
	src.pace = pace
	return src
}

// rtpWriter is a depacketizing writer of pion's media packages.
type rtpWriter interface {
	WriteRTP(*rtp.Packet) error
	Close() error
}

// writerFor returns a writer that rebuilds a track's elementary stream
// from its packets into a file ffmpeg can read.
func writerFor(t *testing.T, tr media.Track, dir string) (rtpWriter, string) {
	t.Helper()
	var w rtpWriter
	var err error
	path := filepath.Join(dir, fmt.Sprintf("track%d", tr.Index))
	switch tr.Codec {
	case media.VP8:
		path += ".ivf"
		w, err = ivfwriter.New(path, ivfwriter.WithCodec(webrtc.MimeTypeVP8))
	case media.VP9:
		path += ".ivf"
		w, err = ivfwriter.New(path, ivfwriter.WithCodec(webrtc.MimeTypeVP9))
	case media.AV1:
		path += ".ivf"
		w, err = ivfwriter.New(path, ivfwriter.WithCodec(webrtc.MimeTypeAV1))
	case media.H264:
		path += ".h264"
		w, err = h264writer.New(path)
	case media.Opus:
		path += ".ogg"
		w, err = oggwriter.New(path, 48000, 2)
	default:
		t.Fatalf("no writer for %s", tr.Codec)
	}
	if err != nil {
		t.Fatal(err)
	}
	return w, path
}

// TestFileFormats plays each kind of file once, unpaced, rebuilds each
// track's stream from the RTP packets with pion's depacketizing writers,
// and has ffmpeg decode it: every frame of the file must come through and
// decode cleanly. Sequence numbers and timestamps must be continuous.
func TestFileFormats(t *testing.T) {
	cases := []struct {
		file   string
		codecs []string
		fps    float64
	}{
		{"vp8-opus.webm", []string{media.VP8, media.Opus}, 0},
		{"vp9-opus.webm", []string{media.VP9, media.Opus}, 0},
		{"h264-opus.mkv", []string{media.H264, media.Opus}, 0},
		{"av1-opus.mkv", []string{media.AV1, media.Opus}, 0},
		{"opus.ogg", []string{media.Opus}, 0},
		{"vp8.ivf", []string{media.VP8}, 0},
		{"vp9.ivf", []string{media.VP9}, 0},
		{"av1.ivf", []string{media.AV1}, 0},
		{"h264-opus.mp4", []string{media.H264, media.Opus}, 0},
		{"vp9-opus.mp4", []string{media.VP9, media.Opus}, 0},
		{"av1.mp4", []string{media.AV1}, 0},
		{"h264-opus-f.mp4", []string{media.H264, media.Opus}, 0},
		{"h264-aac.mp4", []string{media.H264, media.Opus}, 0}, // AAC transcoded to Opus
		{"h264-aac.mkv", []string{media.H264, media.Opus}, 0},
		{"h264b-opus.mp4", []string{media.H264, media.Opus}, 0},
		{"h264.h264", []string{media.H264}, 25},
	}
	for _, c := range cases {
		t.Run(c.file, func(t *testing.T) {
			path := fixture(t, c.file)
			src := newTestFile(t, path, false, c.fps, false)
			tracks := src.Tracks()
			var got []string
			for _, tr := range tracks {
				got = append(got, tr.Codec)
			}
			if fmt.Sprint(got) != fmt.Sprint(c.codecs) {
				t.Fatalf("codecs %v, want %v", got, c.codecs)
			}
			dir := t.TempDir()
			writers := make([]rtpWriter, len(tracks))
			paths := make([]string, len(tracks))
			for i, tr := range tracks {
				writers[i], paths[i] = writerFor(t, tr, dir)
			}
			col := newCollector(len(tracks))
			col.onPkt = func(track int, p *rtp.Packet) {
				if err := writers[track].WriteRTP(p); err != nil {
					t.Errorf("track %d: %v", track, err)
				}
			}
			err := src.Run(context.Background(), col.write)
			if !errors.Is(err, io.EOF) {
				t.Fatalf("Run = %v, want io.EOF", err)
			}
			for i, tr := range tracks {
				writers[i].Close()
				pkts := col.track(i)
				checkSeqContinuous(t, tr.Codec, pkts, 0)
				checkTimestamps(t, tr, pkts, strings.HasPrefix(c.file, "h264b") && tr.Kind == "video")
				for _, p := range pkts {
					if p.PayloadType != tr.PayloadType || len(p.Payload) > fileMTU {
						t.Fatalf("%s: packet pt %d size %d", tr.Codec, p.PayloadType, len(p.Payload))
					}
				}
				want := streamFrames(t, path, tr.Kind)
				errs, frames := decodeCheck(t, paths[i])
				if tr.Codec == media.Opus {
					if strings.Contains(c.file, "aac") {
						// Re-encoded: 20 ms packets for the 2 s of AAC.
						if len(pkts) < 98 || len(pkts) > 104 {
							t.Errorf("opus from AAC: %d packets, want 2 s of 20 ms packets", len(pkts))
						}
						want = len(pkts)
					} else if len(pkts) != want {
						t.Errorf("opus: %d packets, file has %d", len(pkts), want)
					}
					// pion's Ogg writer declares a pre-skip of 80 ms
					// (4 packets) that the decoder drops.
					want -= 4
				}
				if errs != "" || frames != want {
					t.Errorf("%s: %d frames decoded from the packets, file has %d; decode errors: %q", tr.Codec, frames, want, errs)
				}
				t.Logf("%s: %d packets, %d frames", tr.Codec, len(pkts), frames)
			}
		})
	}
}

// checkTimestamps checks that a track's RTP timestamps never go backwards
// (unless reordered: B-frames are sent in decoding order with their
// presentation times) and span about the fixture's 2 s.
func checkTimestamps(t *testing.T, tr media.Track, pkts []*rtp.Packet, reordered bool) {
	t.Helper()
	if len(pkts) == 0 {
		t.Fatalf("%s: no packets", tr.Codec)
	}
	lo, hi := pkts[0].Timestamp, pkts[0].Timestamp
	for i := 1; i < len(pkts); i++ {
		if d := int32(pkts[i].Timestamp - pkts[i-1].Timestamp); d < 0 && !reordered {
			t.Fatalf("%s: timestamp goes back by %d at packet %d", tr.Codec, -d, i)
		}
		if int32(pkts[i].Timestamp-lo) < 0 {
			lo = pkts[i].Timestamp
		}
		if int32(pkts[i].Timestamp-hi) > 0 {
			hi = pkts[i].Timestamp
		}
	}
	span := time.Duration(hi-lo) * time.Second / time.Duration(tr.ClockRate)
	if span < 1800*time.Millisecond || span > 2100*time.Millisecond {
		t.Errorf("%s: timestamps span %v, want about 2 s", tr.Codec, span)
	}
}

// errStop ends a run from the writer.
var errStop = errors.New("stop")

// TestFileLoop plays a WebM file three times, unpaced: sequence numbers go
// on without a gap, timestamps never go back, every pass repeats the same
// payloads, and each pass is placed the same span after the previous one
// on both tracks (so audio and video stay together), a span of the file's
// duration plus about one frame.
func TestFileLoop(t *testing.T) {
	src := newTestFile(t, fixture(t, "vp8-opus.webm"), true, 0, false)
	col := newCollector(2)
	err := src.Run(context.Background(), func(track int, p *rtp.Packet) error {
		if src.Stats().Loops >= 3 {
			return errStop
		}
		return col.write(track, p)
	})
	if !errors.Is(err, errStop) {
		t.Fatalf("Run = %v, want the writer's error", err)
	}
	var spans []time.Duration
	for i, tr := range src.Tracks() {
		pkts := col.track(i)
		if len(pkts)%3 != 0 {
			t.Fatalf("%s: %d packets in 3 passes", tr.Codec, len(pkts))
		}
		n := len(pkts) / 3
		checkSeqContinuous(t, tr.Codec, pkts, 0)
		for j := 1; j < len(pkts); j++ {
			if d := int32(pkts[j].Timestamp - pkts[j-1].Timestamp); d < 0 || (j%n == 0 && d == 0) {
				t.Fatalf("%s: timestamp step %d at packet %d (pass boundary every %d)", tr.Codec, d, j, n)
			}
		}
		for k := 1; k < 3; k++ {
			for j := 0; j < n; j++ {
				if string(pkts[k*n+j].Payload) != string(pkts[j].Payload) && tr.Codec != media.VP8 {
					t.Fatalf("%s: pass %d packet %d differs from pass 0", tr.Codec, k, j)
				}
			}
			span := time.Duration(pkts[k*n].Timestamp-pkts[0].Timestamp) * time.Second / time.Duration(tr.ClockRate) / time.Duration(k)
			spans = append(spans, span)
		}
	}
	for _, s := range spans {
		if d := s - spans[0]; d < -time.Millisecond || d > time.Millisecond {
			t.Errorf("passes spaced %v, not the same on every track: %v", s, spans)
		}
		if s < 2*time.Second || s > 2060*time.Millisecond {
			t.Errorf("passes spaced %v, want the 2 s file plus about a frame", s)
		}
	}
	if st := src.Stats(); st.Loops != 3 {
		t.Errorf("Loops = %d", st.Loops)
	}
	t.Logf("spans %v", spans)
}

// TestFilePacing plays a 2 s WebM file in real time: once without loop
// (Run ends with io.EOF after about 2 s), then three times with loop. No
// packet may leave ahead of its time (a burst at the loop point would),
// and audio and video must keep together.
func TestFilePacing(t *testing.T) {
	path := fixture(t, "vp8-opus.webm")
	t.Run("once", func(t *testing.T) {
		src := newTestFile(t, path, false, 0, true)
		col := newCollector(2)
		start := time.Now()
		err := src.Run(context.Background(), col.write)
		took := time.Since(start)
		if !errors.Is(err, io.EOF) {
			t.Fatalf("Run = %v, want io.EOF", err)
		}
		if took < 1500*time.Millisecond || took > 4*time.Second {
			t.Errorf("a 2 s file took %v", took)
		}
		t.Logf("took %v, stats %+v", took, src.Stats())
	})
	t.Run("loop", func(t *testing.T) { checkPacedLoop(t, path, 3) })
	// AAC audio goes through an ffmpeg transcoder and must still leave on
	// time, together with the video.
	t.Run("aac", func(t *testing.T) { checkPacedLoop(t, fixture(t, "h264-aac.mp4"), 2) })
}

// checkPacedLoop plays a 2 s file with loop for passes passes in real
// time: no packet may leave ahead of its time, timestamps never go back,
// sequence numbers have no gap, and the tracks are where they should be
// on the media timeline when the run ends (A/V together).
func checkPacedLoop(t *testing.T, path string, passes int) {
	src := newTestFile(t, path, true, 0, true)
	col := newCollector(len(src.Tracks()))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	start := time.Now()
	err := src.Run(ctx, func(track int, p *rtp.Packet) error {
		if src.Stats().Loops >= uint64(passes) {
			cancel()
			return nil
		}
		return col.write(track, p)
	})
	took := time.Since(start)
	if err != nil {
		t.Fatalf("Run = %v, want nil after cancel", err)
	}
	if lo, hi := time.Duration(passes)*1700*time.Millisecond, time.Duration(passes)*4*time.Second; took < lo || took > hi {
		t.Errorf("%d passes of a 2 s file took %v", passes, took)
	}
	var last []time.Duration // media time of each track's last packet, as of the end
	for i, tr := range src.Tracks() {
		pkts := col.track(i)
		if len(pkts) == 0 {
			t.Fatalf("%s: no packets", tr.Codec)
		}
		checkSeqContinuous(t, tr.Codec, pkts, 0)
		col.mu.Lock()
		arrival := append([]time.Time(nil), col.arrival[i]...)
		col.mu.Unlock()
		maxLag := time.Duration(0)
		for j, p := range pkts {
			if j > 0 && int32(p.Timestamp-pkts[j-1].Timestamp) < 0 {
				t.Fatalf("%s: timestamp goes back at packet %d", tr.Codec, j)
			}
			m := time.Duration(p.Timestamp-pkts[0].Timestamp) * time.Second / time.Duration(tr.ClockRate)
			lag := arrival[j].Sub(start) - m
			if lag < -100*time.Millisecond {
				t.Fatalf("%s: packet %d (media time %v) sent %v ahead of its time", tr.Codec, j, m, -lag)
			}
			maxLag = max(maxLag, lag)
		}
		m := time.Duration(pkts[len(pkts)-1].Timestamp-pkts[0].Timestamp) * time.Second / time.Duration(tr.ClockRate)
		last = append(last, m+time.Since(arrival[len(arrival)-1]))
		t.Logf("%s: %d packets, max lag %v", tr.Codec, len(pkts), maxLag)
	}
	if len(last) == 2 {
		if skew := last[0] - last[1]; skew < -250*time.Millisecond || skew > 250*time.Millisecond {
			t.Errorf("video and audio %v apart at the end", skew)
		}
	}
	t.Logf("took %v, stats %+v", took, src.Stats())
}

// TestFileTruncated cuts files short: opening or playing them must fail
// with an error naming the file and an offset, never panic or end as if
// the file were whole.
func TestFileTruncated(t *testing.T) {
	for _, name := range []string{"vp8-opus.webm", "h264-opus.mkv", "opus.ogg", "vp8.ivf", "h264-opus.mp4", "h264-opus-f.mp4"} {
		data, err := os.ReadFile(fixture(t, name))
		if err != nil {
			t.Fatal(err)
		}
		for _, cut := range []int{len(data) - 7, len(data) * 6 / 10, 100} {
			path := filepath.Join(t.TempDir(), fmt.Sprintf("cut%d-%s", cut, name))
			if err := os.WriteFile(path, data[:cut], 0o644); err != nil {
				t.Fatal(err)
			}
			src, err := NewFile(&config.Source{Type: "file", Path: path}, nil)
			if err == nil {
				src.pace = false
				err = src.Run(context.Background(), func(int, *rtp.Packet) error { return nil })
			}
			if err == nil || errors.Is(err, io.EOF) || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), "offset") {
				t.Errorf("%s cut at %d of %d bytes: %v", name, cut, len(data), err)
			}
		}
	}
}

// TestFileLate stalls the writer once for 400 ms: the frames that leave
// late for it are counted and logged once, and the source catches up
// instead of shifting the rest of the file.
func TestFileLate(t *testing.T) {
	var logs lockedBuffer
	src, err := NewFile(&config.Source{Type: "file", Path: fixture(t, "vp8.ivf")}, slog.New(slog.NewTextHandler(&logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	start := time.Now()
	err = src.Run(context.Background(), func(int, *rtp.Packet) error {
		if n++; n == 10 {
			time.Sleep(400 * time.Millisecond) // a writer stalled (fault injection)
		}
		return nil
	})
	took := time.Since(start)
	if !errors.Is(err, io.EOF) {
		t.Fatalf("Run = %v", err)
	}
	st := src.Stats()
	if st.Late == 0 || took > 4*time.Second {
		t.Errorf("late frames %d, run took %v (want some late frames and no shift of the 2 s file)", st.Late, took)
	}
	if !strings.Contains(logs.String(), "file source: behind in the last second") {
		t.Errorf("no log line about late frames:\n%s", logs.String())
	}
	t.Logf("stats %+v, took %v", st, took)
}

// TestFileOneFrameLoop loops an IVF file of a single frame: each pass must
// still move the timeline on (no spinning on the same timestamp).
func TestFileOneFrameLoop(t *testing.T) {
	data, err := os.ReadFile(fixture(t, "vp8.ivf"))
	if err != nil {
		t.Fatal(err)
	}
	size := int(data[32]) | int(data[33])<<8 | int(data[34])<<16 | int(data[35])<<24
	path := filepath.Join(t.TempDir(), "one.ivf")
	if err := os.WriteFile(path, data[:32+12+size], 0o644); err != nil {
		t.Fatal(err)
	}
	src := newTestFile(t, path, true, 0, true)
	var ts []uint32
	start := time.Now()
	err = src.Run(context.Background(), func(_ int, p *rtp.Packet) error {
		if !p.Marker { // one timestamp per frame
			return nil
		}
		ts = append(ts, p.Timestamp)
		if len(ts) == 10 {
			return errStop
		}
		return nil
	})
	if !errors.Is(err, errStop) {
		t.Fatalf("Run = %v", err)
	}
	for i := 1; i < len(ts); i++ {
		if d := ts[i] - ts[i-1]; d != 3600 { // 40 ms at 90 kHz
			t.Fatalf("timestamps %v: step %d, want 3600", ts, d)
		}
	}
	if took := time.Since(start); took < 300*time.Millisecond {
		t.Errorf("10 passes of one frame took %v, want about 360 ms", took)
	}
}

// TestMP4EditList reads an MP4 whose H.264 has B-frames: its samples'
// composition offsets delay the first picture, and the edit list takes
// that delay back, so video and audio both start at about 0.
func TestMP4EditList(t *testing.T) {
	f, err := os.Open(fixture(t, "h264b-opus.mp4"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	d, err := newMP4(f, f.Name())
	if err != nil {
		t.Fatal(err)
	}
	first := map[int]time.Duration{}
	reordered := false
	for _, s := range d.samples {
		if v, ok := first[int(s.track)]; !ok || s.pts < v {
			first[int(s.track)] = s.pts
		}
		reordered = reordered || s.pts != s.dts
	}
	if !reordered {
		t.Fatal("no composition offsets: the fixture has no B-frames")
	}
	for i, tr := range d.tracks() {
		if v := first[i]; v < -25*time.Millisecond || v > 25*time.Millisecond {
			t.Errorf("%s starts at %v, want about 0", tr.codec, v)
		}
	}
	t.Logf("first presentation times %v", first)
}
