package sinks

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/janusbridge/janusbridge/media"

	"github.com/janusbridge/janusbridge/internal/janustest"
)

var (
	fileAudio = media.Track{Index: 0, MID: "0", Kind: "audio", Codec: media.Opus, ClockRate: 48000, Channels: 2, PayloadType: 111}
	fileVideo = media.Track{Index: 1, MID: "1", Kind: "video", Codec: media.VP8, ClockRate: 90000, PayloadType: 96}
	// fileWallBase is the wall clock of PTS 0 in these tests.
	fileWallBase = time.Date(2024, 5, 6, 7, 8, 9, 123_000_000, time.UTC)
)

// fileFakeMuxer records what a File asks of a muxer and writes a header, each
// frame's data and a trailer to the file.
type fileFakeMuxer struct {
	w       io.WriteSeeker
	tracks  []media.Track
	frames  []media.Frame
	flushes int
	closed  bool
}

func (m *fileFakeMuxer) WriteFrame(f *media.Frame) error {
	m.frames = append(m.frames, *f)
	_, err := m.w.Write(f.Data)
	return err
}

func (m *fileFakeMuxer) Flush() error { m.flushes++; return nil }

func (m *fileFakeMuxer) Close() error {
	m.closed = true
	_, err := m.w.Write([]byte("END\n"))
	return err
}

// fileFailingMuxer is a fileFakeMuxer whose writes fail while its recorder says so.
type fileFailingMuxer struct {
	*fileFakeMuxer
	rec *fileFakeMuxers
}

func (m fileFailingMuxer) WriteFrame(f *media.Frame) error {
	if m.rec.fail.Load() {
		return errors.New("boom")
	}
	return m.fileFakeMuxer.WriteFrame(f)
}

// fileFakeMuxers creates and keeps the fake muxers of a File.
type fileFakeMuxers struct {
	all  []*fileFakeMuxer
	fail atomic.Bool // WriteFrame fails
}

func (r *fileFakeMuxers) new(w io.WriteSeeker, tracks []media.Track) (muxer, error) {
	m := &fileFakeMuxer{w: w, tracks: slices.Clone(tracks)}
	if _, err := w.Write([]byte("FAKE\n")); err != nil {
		return nil, err
	}
	r.all = append(r.all, m)
	return fileFailingMuxer{m, r}, nil
}

// fileClock is a settable clock, safe for the finaliser goroutine.
type fileClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fileClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fileClock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// fileLogBuffer collects log output from several goroutines.
type fileLogBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *fileLogBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *fileLogBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// fileHarness is a File on fakes.
type fileHarness struct {
	t        *testing.T
	f        *File
	dir      string
	muxers   *fileFakeMuxers
	clock    *fileClock
	keyReqs  atomic.Int32
	logs     *fileLogBuffer
	template string
}

// newFileHarness makes a File writing into a temporary directory; edit may
// change the configuration (Template is relative to the directory).
func newFileHarness(t *testing.T, edit func(*FileConfig)) *fileHarness {
	t.Helper()
	h := &fileHarness{t: t, dir: t.TempDir(), muxers: &fileFakeMuxers{}, clock: &fileClock{t: fileWallBase}, logs: &fileLogBuffer{}}
	cfg := FileConfig{
		Type:     "webm",
		Name:     "rec",
		Template: "{bridge}/{start}-{seq}.webm",
		Bridge:   "cam1",
		Logger:   slog.New(slog.NewTextHandler(h.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Now:      h.clock.Now,
		newMuxer: h.muxers.new,
	}
	cfg.RequestKeyframe = func() { h.keyReqs.Add(1) }
	if edit != nil {
		edit(&cfg)
	}
	if !filepath.IsAbs(cfg.Template) {
		cfg.Template = filepath.Join(h.dir, cfg.Template)
	}
	h.template = cfg.Template
	f, err := NewFile(cfg)
	if err != nil {
		t.Fatal(err)
	}
	h.f = f
	t.Cleanup(func() { f.Close() })
	return h
}

func (h *fileHarness) setTracks(tracks ...media.Track) {
	h.t.Helper()
	if err := h.f.SetTracks(tracks); err != nil {
		h.t.Fatal(err)
	}
}

// write writes a frame at pts (wall clock fileWallBase+pts) and fails the test on error.
func (h *fileHarness) write(track int, pts time.Duration, key bool) {
	h.t.Helper()
	if err := h.writeErr(track, pts, key, []byte("frame\n")); err != nil {
		h.t.Fatalf("WriteFrame(track %d, %v): %v", track, pts, err)
	}
}

func (h *fileHarness) writeErr(track int, pts time.Duration, key bool, data []byte) error {
	return h.f.WriteFrame(&media.Frame{Track: track, PTS: pts, Wall: fileWallBase.Add(pts), Keyframe: key, Data: data})
}

// waitFinalised waits until the finaliser has handled every file closed so far.
func (h *fileHarness) waitFinalised() {
	ch := make(chan struct{})
	h.f.mu.Lock()
	h.f.pending = append(h.f.pending, &fileSegment{barrier: ch})
	h.f.mu.Unlock()
	select {
	case h.f.wake <- struct{}{}:
	default:
	}
	<-ch
}

func (h *fileHarness) close() {
	h.t.Helper()
	if err := h.f.Close(); err != nil {
		h.t.Fatal(err)
	}
}

// fileReadSidecar reads the sidecar of a file.
func fileReadSidecar(t *testing.T, path string) sidecar {
	t.Helper()
	data, err := os.ReadFile(path + ".json")
	if err != nil {
		t.Fatal(err)
	}
	var sc sidecar
	if err := json.Unmarshal(data, &sc); err != nil {
		t.Fatal(err)
	}
	return sc
}

func TestFileTemplate(t *testing.T) {
	cfg := FileConfig{
		Template: "/rec/{bridge}/{room}/{mountpoint}/{feed}-{display}-{start}-{seq}.mkv",
		Bridge:   "cam1",
		Room:     "r/1",
		Feed:     "4242",
		Display:  "Lobby camera/../é",
	}
	start := time.Date(2024, 1, 2, 4, 4, 5, 999, time.FixedZone("CET", 3600))
	got := expandTemplate(cfg, start, 7)
	want := "/rec/cam1/r_1/4242-Lobby_camera_..__-20240102T030405Z-0007.mkv"
	if got != want {
		t.Errorf("expandTemplate = %q, want %q", got, want)
	}
	if got := expandTemplate(FileConfig{Template: "/r/{seq}.ogg"}, start, 12345); got != "/r/12345.ogg" {
		t.Errorf("seq past 4 digits: %q", got)
	}
	for in, want := range map[string]string{
		"":                      "",
		".":                     "_",
		"..":                    "__",
		"a..b":                  "a..b",
		"x/y\\z":                "x_y_z",
		"Ünïcødé ok":            "_n_c_d__ok",
		"tab\there":             "tab_here",
		strings.Repeat("a", 70): strings.Repeat("a", 64),
		strings.Repeat("é", 70): strings.Repeat("_", 64),
		"A-Za-z0-9._-":          "A-Za-z0-9._-",
	} {
		if got := sanitizeName(in); got != want {
			t.Errorf("sanitize(%q) = %q, want %q", in, got, want)
		}
	}
	// {display} cannot climb directories.
	if got := expandTemplate(FileConfig{Template: "/r/{display}/x.ogg", Display: ".."}, start, 0); got != "/r/__/x.ogg" {
		t.Errorf("display '..': %q", got)
	}
	// The retention glob of a template.
	g := templateGlob(FileConfig{Template: "/r/{bridge}/{room}/{feed}-{display}-{start}[{seq}].mkv", Bridge: "b", Room: "5"})
	if g != `/r/b/5/*-*-*\[*].mkv` {
		t.Errorf("templateGlob = %q", g)
	}
	if d := templateDir("/var/rec/{bridge}/x-{start}.webm"); d != "/var/rec" {
		t.Errorf("templateDir = %q", d)
	}
}

func TestFileNameCollision(t *testing.T) {
	h := newFileHarness(t, func(c *FileConfig) { c.Template = "{bridge}/{room}.webm"; c.Room = "lobby" })
	dir := filepath.Join(h.dir, "cam1")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"lobby.webm", "lobby-1.webm", "lobby-2.webm.json"} { // a sidecar alone blocks its name too
		if err := os.WriteFile(filepath.Join(dir, name), []byte("old"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	h.setTracks(fileAudio)
	h.write(0, 0, false)
	if p := h.f.Status().Path; p != filepath.Join(dir, "lobby-3.webm") {
		t.Errorf("path %q, want lobby-3.webm", p)
	}
	h.close()
	for _, name := range []string{"lobby.webm", "lobby-1.webm"} {
		if b, _ := os.ReadFile(filepath.Join(dir, name)); string(b) != "old" {
			t.Errorf("%s overwritten: %q", name, b)
		}
	}

	// Without an extension, the suffix goes at the end.
	f, p, err := createNew(filepath.Join(dir, "lobby"))
	if err != nil {
		t.Fatal(err)
	}
	f.Close()
	f, p2, err := createNew(filepath.Join(dir, "lobby"))
	if err != nil {
		t.Fatal(err)
	}
	f.Close()
	if filepath.Base(p) != "lobby" || filepath.Base(p2) != "lobby-1" {
		t.Errorf("created %q then %q", p, p2)
	}
}

func TestFileWaitsForKeyframe(t *testing.T) {
	h := newFileHarness(t, nil)
	h.setTracks(fileAudio, fileVideo)
	if n := h.keyReqs.Load(); n != 1 {
		t.Errorf("%d keyframe requests at SetTracks, want 1", n)
	}
	h.write(0, 0, false)
	h.write(1, 10*time.Millisecond, false)
	h.write(0, 20*time.Millisecond, false)
	if st := h.f.Status(); st.State != FileWaitingKeyframe || st.Path != "" || len(h.muxers.all) != 0 {
		t.Fatalf("before a keyframe: %+v, %d muxers", st, len(h.muxers.all))
	}
	if n := h.keyReqs.Load(); n != 1 {
		t.Errorf("%d keyframe requests within a second, want 1 (rate-limited)", n)
	}
	h.clock.Add(time.Second)
	h.write(1, 990*time.Millisecond, false)
	if n := h.keyReqs.Load(); n != 2 {
		t.Errorf("%d keyframe requests after a second, want 2", n)
	}

	h.write(0, 995*time.Millisecond, false)
	h.write(1, time.Second, true)            // the file starts here
	h.write(0, 998*time.Millisecond, false)  // audio just before the keyframe: dropped
	h.write(0, 1015*time.Millisecond, false) // kept, at 15 ms
	h.write(1, 1040*time.Millisecond, false)
	st := h.f.Status()
	if st.State != FileWriting || filepath.Base(st.Path) != "20240506T070810Z-0000.webm" {
		t.Fatalf("status %+v: want writing 20240506T070810Z-0000.webm (wall clock of the keyframe)", st)
	}
	m := h.muxers.all[0]
	if len(m.tracks) != 2 {
		t.Errorf("muxer got %d tracks", len(m.tracks))
	}
	want := []struct {
		track int
		pts   time.Duration
		key   bool
	}{{1, 0, true}, {0, 15 * time.Millisecond, false}, {1, 40 * time.Millisecond, false}}
	if len(m.frames) != len(want) {
		t.Fatalf("muxer got %d frames, want %d", len(m.frames), len(want))
	}
	for i, w := range want {
		if f := m.frames[i]; f.Track != w.track || f.PTS != w.pts || f.Keyframe != w.key {
			t.Errorf("frame %d: track %d pts %v key %v, want %+v", i, f.Track, f.PTS, f.Keyframe, w)
		}
	}
	if n := h.keyReqs.Load(); n != 2 {
		t.Errorf("%d keyframe requests while writing, want still 2", n)
	}
	h.close()
	if !m.closed {
		t.Error("muxer not closed")
	}
}

func TestFileAudioOnlyStartsAtOnce(t *testing.T) {
	h := newFileHarness(t, nil)
	h.setTracks(fileAudio)
	if n := h.keyReqs.Load(); n != 0 {
		t.Errorf("%d keyframe requests for an audio-only sink", n)
	}
	if st := h.f.Status(); st.State != FileIdle {
		t.Errorf("state %q before the first frame", st.State)
	}
	h.write(0, 5*time.Second, false)
	h.write(0, 5*time.Second+20*time.Millisecond, false)
	m := h.muxers.all[0]
	if len(m.frames) != 2 || m.frames[0].PTS != 0 || m.frames[1].PTS != 20*time.Millisecond {
		t.Errorf("frames %+v", m.frames)
	}
	// Frames of tracks the sink does not take are ignored.
	h.write(7, 6*time.Second, true)
	if len(m.frames) != 2 {
		t.Errorf("a frame of an unknown track was written")
	}
}

func TestFileSegmentRotation(t *testing.T) {
	h := newFileHarness(t, func(c *FileConfig) { c.Segment = 10 * time.Second })
	h.setTracks(fileAudio, fileVideo)
	reqs := h.keyReqs.Load()
	for ms := 0; ms < 25000; ms += 20 {
		pts := time.Duration(ms) * time.Millisecond
		h.write(0, pts, false)
		if ms%100 == 0 {
			h.write(1, pts, ms%3000 == 0) // 10 fps, a keyframe every 3 s
		}
		h.clock.Add(20 * time.Millisecond)
	}
	h.close()
	if n := len(h.muxers.all); n != 3 {
		t.Fatalf("%d files, want 3 (0-12 s, 12-24 s, 24-25 s)", n)
	}
	for i, m := range h.muxers.all {
		if f := m.frames[0]; f.Track != 1 || !f.Keyframe || f.PTS != 0 {
			t.Errorf("file %d starts with %+v, want a keyframe at 0", i, f)
		}
		if !m.closed {
			t.Errorf("file %d not finalised", i)
		}
	}
	// The audio frame at 12 s arrives before the keyframe: it ends the first file.
	if last := h.muxers.all[0].frames[len(h.muxers.all[0].frames)-1]; last.PTS != 12*time.Second || last.Track != 0 {
		t.Errorf("first file ends with %+v, want the audio frame at 12 s", last)
	}
	// Keyframes were asked for once a second from when each segment was
	// due (10 s, 22 s) until its keyframe (12 s, 24 s).
	if n := h.keyReqs.Load() - reqs; n != 6 {
		t.Errorf("%d keyframe requests for rotations, want 6", n)
	}
	st := h.f.Status()
	if st.Files != 3 || st.State != FileClosed || st.Errors != 0 {
		t.Errorf("status %+v", st)
	}
	for i, name := range []string{"20240506T070809Z-0000.webm", "20240506T070821Z-0001.webm", "20240506T070833Z-0002.webm"} {
		p := filepath.Join(h.dir, "cam1", name)
		sc := fileReadSidecar(t, p)
		if want := []float64{12, 12, 0.98}[i]; sc.Duration != want {
			t.Errorf("%s: duration %v, want %v", name, sc.Duration, want)
		}
	}
}

func TestFileNewSegmentOnTrackChange(t *testing.T) {
	h := newFileHarness(t, nil)
	h.setTracks(fileAudio)
	h.write(0, 0, false)
	h.write(0, 20*time.Millisecond, false)
	h.setTracks(fileAudio) // same set: nothing happens
	if len(h.muxers.all) != 1 || h.muxers.all[0].closed {
		t.Fatal("SetTracks with the same tracks ended the file")
	}
	h.setTracks(fileAudio, fileVideo) // the publisher adds video
	if !h.muxers.all[0].closed {
		t.Fatal("file not finalised on a track change")
	}
	if st := h.f.Status(); st.State != FileWaitingKeyframe || st.Path != "" {
		t.Errorf("after the change: %+v", st)
	}
	h.write(0, 40*time.Millisecond, false)
	h.write(1, 50*time.Millisecond, true)
	h.write(0, 60*time.Millisecond, false)
	if n := len(h.muxers.all); n != 2 {
		t.Fatalf("%d files, want 2", n)
	}
	m := h.muxers.all[1]
	if len(m.tracks) != 2 || len(m.frames) != 2 || m.frames[0].Track != 1 {
		t.Errorf("second file: %d tracks, frames %+v", len(m.tracks), m.frames)
	}
	h.close()
	if n := h.f.Status().Files; n != 2 {
		t.Errorf("%d files finalised, want 2", n)
	}

	// An ogg sink ignores an added video track: no new segment.
	o := newFileHarness(t, func(c *FileConfig) { c.Type = "ogg"; c.Template = "{start}.ogg" })
	o.setTracks(fileAudio)
	o.write(0, 0, false)
	o.setTracks(fileAudio, fileVideo)
	o.write(1, 10*time.Millisecond, true)
	o.write(0, 20*time.Millisecond, false)
	if len(o.muxers.all) != 1 || o.muxers.all[0].closed || len(o.muxers.all[0].frames) != 2 {
		t.Errorf("ogg sink: %d files, frames %+v", len(o.muxers.all), o.muxers.all[0].frames)
	}
}

func TestFileKinds(t *testing.T) {
	h264 := media.Track{Index: 1, MID: "v", Kind: "video", Codec: media.H264, ClockRate: 90000}
	for _, c := range []struct {
		typ   string
		kinds []string
		bad   media.Track
	}{
		{"ogg", []string{"video"}, fileVideo},
		{"webm", []string{"audio", "video"}, h264},
		{"mp4", []string{"audio"}, media.Track{Index: 0, MID: "a", Kind: "audio", Codec: media.PCMU, ClockRate: 8000}},
	} {
		h := newFileHarness(t, func(fc *FileConfig) { fc.Type = c.typ; fc.Kinds = c.kinds })
		err := h.f.SetTracks([]media.Track{c.bad})
		if err == nil {
			t.Errorf("%s sink took %s", c.typ, c.bad.Codec)
			continue
		}
		if msg := err.Error(); !strings.Contains(msg, c.bad.Codec) || !strings.Contains(msg, c.typ) {
			t.Errorf("error %q does not name %s and %s", msg, c.bad.Codec, c.typ)
		}
	}
	// Without kinds, a track the container cannot hold is left out.
	h := newFileHarness(t, nil)
	h.setTracks(fileAudio, h264)
	if len(h.f.tracks) != 1 || h.f.tracks[0].Codec != media.Opus {
		t.Errorf("webm sink took %+v", h.f.tracks)
	}
	// Kinds = audio: video is left out even if the container holds it.
	h = newFileHarness(t, func(fc *FileConfig) { fc.Kinds = []string{"audio"} })
	h.setTracks(fileAudio, fileVideo)
	if len(h.f.tracks) != 1 || h.f.video {
		t.Errorf("audio sink took %+v", h.f.tracks)
	}
	if _, err := NewFile(FileConfig{Type: "flv", Name: "x", Template: "/tmp/x"}); err == nil {
		t.Error("NewFile accepted a type without a muxer")
	}
}

func TestFileSidecar(t *testing.T) {
	h := newFileHarness(t, func(c *FileConfig) {
		c.Template = "{room}/{feed}-{display}-{start}.webm"
		c.Room, c.Feed, c.Display = "1234", "987", "Anna Smith"
	})
	h.setTracks(fileAudio, fileVideo)
	h.write(1, 2*time.Second, true)
	for ms := 2000; ms <= 7000; ms += 20 {
		h.write(0, time.Duration(ms)*time.Millisecond, false)
	}
	path := h.f.Status().Path
	if filepath.Base(path) != "987-Anna_Smith-20240506T070811Z.webm" {
		t.Errorf("path %q", path)
	}
	h.close()
	data, err := os.ReadFile(path + ".json")
	if err != nil {
		t.Fatal(err)
	}
	var got map[string]any
	if err := json.Unmarshal(data, &got); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]any{
		"file":     "987-Anna_Smith-20240506T070811Z.webm",
		"start":    "2024-05-06T07:08:11.123Z",
		"end":      "2024-05-06T07:08:16.123Z",
		"duration": 5.0,
		"bridge":   "cam1",
		"room":     "1234",
		"feed":     "987",
		"display":  "Anna Smith",
		"sink":     "rec",
		"type":     "webm",
		"bytes":    float64(fi.Size()),
		"tracks": []any{
			map[string]any{"index": 0.0, "mid": "0", "kind": "audio", "codec": "opus", "clock_rate": 48000.0, "channels": 2.0},
			map[string]any{"index": 1.0, "mid": "1", "kind": "video", "codec": "vp8", "clock_rate": 90000.0},
		},
	}
	gotJSON, _ := json.Marshal(got)
	wantJSON, _ := json.Marshal(want)
	if !bytes.Equal(gotJSON, wantJSON) {
		t.Errorf("sidecar\n got %s\nwant %s", gotJSON, wantJSON)
	}
}

func TestFileOnClose(t *testing.T) {
	marker := filepath.Join(t.TempDir(), "marker")
	h := newFileHarness(t, func(c *FileConfig) {
		c.OnClose = []string{"/bin/sh", "-c", "echo {path} > " + marker}
	})
	h.setTracks(fileAudio)
	h.write(0, 0, false)
	path := h.f.Status().Path
	h.close() // waits for the command
	b, err := os.ReadFile(marker)
	if err != nil {
		t.Fatal(err)
	}
	if strings.TrimSpace(string(b)) != path {
		t.Errorf("on_close wrote %q, want %q", b, path)
	}

	// A failing command is logged once and changes nothing else.
	h = newFileHarness(t, func(c *FileConfig) {
		c.OnClose = []string{"/bin/sh", "-c", "echo upload failed >&2; exit 3"}
	})
	h.setTracks(fileAudio)
	h.write(0, 0, false)
	h.close()
	logs := h.logs.String()
	if n := strings.Count(logs, "on_close failed"); n != 1 || !strings.Contains(logs, "upload failed") {
		t.Errorf("logs:\n%s", logs)
	}
	if st := h.f.Status(); st.Errors != 0 || st.Files != 1 {
		t.Errorf("status %+v", st)
	}

	// A command still running at Close is killed after CloseWait.
	h = newFileHarness(t, func(c *FileConfig) {
		c.OnClose = []string{"/bin/sh", "-c", "sleep 60"}
		c.CloseWait = 50 * time.Millisecond
	})
	h.setTracks(fileAudio)
	h.write(0, 0, false)
	start := time.Now()
	h.close()
	if d := time.Since(start); d > 20*time.Second {
		t.Errorf("Close took %v", d)
	}
	if !strings.Contains(h.logs.String(), "killed") {
		t.Errorf("no word of the kill:\n%s", h.logs.String())
	}
}

// fileWriteFinalised makes a file that looks finalised by a sink (a sidecar next to it).
func fileWriteFinalised(t *testing.T, path, bridge, sink string, start time.Time, size int) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, make([]byte, size), 0o644); err != nil {
		t.Fatal(err)
	}
	sc := sidecar{File: filepath.Base(path), Start: start.Format(sidecarTime), End: start.Add(time.Hour).Format(sidecarTime),
		Duration: 3600, Bridge: bridge, Sink: sink, Type: "webm"}
	data, _ := json.Marshal(sc)
	if err := os.WriteFile(path+".json", data, 0o644); err != nil {
		t.Fatal(err)
	}
}

func fileExists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

func TestFileRetention(t *testing.T) {
	day := 24 * time.Hour
	h := newFileHarness(t, func(c *FileConfig) {
		c.Template = "{bridge}/{feed}/{start}.webm"
		c.Feed = "1"
		c.Keep = 7 * day
	})
	dir := filepath.Join(h.dir, "cam1")
	old := filepath.Join(dir, "1", "20240420T000000Z.webm")            // 16 days
	oldOtherFeed := filepath.Join(dir, "2", "20240421T000000Z-1.webm") // another publisher, collision suffix
	recent := filepath.Join(dir, "1", "20240501T000000Z.webm")         // 5 days
	foreign := filepath.Join(dir, "1", "20240419T000000Z.webm")        // another sink's
	noSidecar := filepath.Join(dir, "1", "20240418T000000Z.webm")      // not finalised
	fileWriteFinalised(t, old, "cam1", "rec", fileWallBase.Add(-16*day), 1000)
	fileWriteFinalised(t, oldOtherFeed, "cam1", "rec", fileWallBase.Add(-15*day), 1000)
	fileWriteFinalised(t, recent, "cam1", "rec", fileWallBase.Add(-5*day), 1000)
	fileWriteFinalised(t, foreign, "cam1", "other", fileWallBase.Add(-17*day), 1000)
	if err := os.WriteFile(noSidecar, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	h.setTracks(fileAudio)
	h.write(0, 0, false)
	path := h.f.Status().Path
	h.close()
	for p, want := range map[string]bool{old: false, old + ".json": false, oldOtherFeed: false,
		recent: true, foreign: true, foreign + ".json": true, noSidecar: true, path: true, path + ".json": true} {
		if fileExists(p) != want {
			t.Errorf("%s: exists %v, want %v", p, !want, want)
		}
	}

	// max_total_size: the oldest go first, the file just finalised stays.
	h = newFileHarness(t, func(c *FileConfig) {
		c.Template = "{start}.webm"
		c.MaxTotalSize = 2500
		c.Segment = time.Second
	})
	a := filepath.Join(h.dir, "a.webm")
	b := filepath.Join(h.dir, "b.webm")
	fileWriteFinalised(t, a, "cam1", "rec", fileWallBase.Add(-2*day), 1000)
	fileWriteFinalised(t, b, "cam1", "rec", fileWallBase.Add(-1*day), 1000)
	h.setTracks(fileAudio)
	big := bytes.Repeat([]byte("x"), 700)
	for i := range 3 { // three files of ~700 bytes, one per second
		for j := range 2 {
			if err := h.writeErr(0, time.Duration(i)*time.Second+time.Duration(j)*10*time.Millisecond, false, big[:350]); err != nil {
				t.Fatal(err)
			}
		}
		h.clock.Add(time.Second)
	}
	h.close()
	// Files by age: a(1000) b(1000) f0 f1 f2 (~714 each). After f0: 2714 > 2500, a goes.
	// After f1: 2428. After f2: 3142, b goes: 2142.
	if fileExists(a) || fileExists(b) {
		t.Errorf("a exists %v, b exists %v: want both removed", fileExists(a), fileExists(b))
	}
	names, _ := filepath.Glob(filepath.Join(h.dir, "*.webm"))
	if len(names) != 3 {
		t.Errorf("files left: %v, want the 3 new ones", names)
	}
}

func TestFileDiskFull(t *testing.T) {
	if os.Geteuid() != 0 {
		if janustest.InCI() {
			t.Fatal("needs root to mount a small tmpfs, and CI=true")
		}
		t.Skip("needs root to mount a small tmpfs")
	}
	dir := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", dir).CombinedOutput(); err != nil {
		t.Fatalf("mount tmpfs: %v %s", err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", dir).CombinedOutput(); err != nil {
			t.Errorf("umount: %v %s", err, out)
		}
	})
	h := newFileHarness(t, func(c *FileConfig) { c.Template = filepath.Join(dir, "{seq}.webm") })
	h.setTracks(fileAudio)
	chunk := bytes.Repeat([]byte("a"), 16<<10)
	pts := time.Duration(0)
	next := func() error {
		pts += 20 * time.Millisecond
		h.clock.Add(20 * time.Millisecond)
		return h.writeErr(0, pts, false, chunk)
	}
	var firstErr error
	for i := 0; i < 200 && firstErr == nil; i++ {
		firstErr = next()
	}
	if firstErr == nil || !strings.Contains(firstErr.Error(), "no space left") {
		t.Fatalf("writing 3 MiB into 1 MiB: error %v", firstErr)
	}
	st := h.f.Status()
	if st.State != FileFailed || st.Errors != 1 || st.Path != "" || !strings.Contains(st.LastError, "no space left") {
		t.Fatalf("after disk full: %+v", st)
	}
	// Dropped quietly until the retry (1 s).
	for range 40 {
		if err := next(); err != nil {
			t.Fatalf("during backoff: %v", err)
		}
	}
	if len(h.muxers.all) != 1 {
		t.Fatalf("%d files opened during the backoff", len(h.muxers.all))
	}
	// The retry fails (still full): backoff doubles.
	for len(h.muxers.all) == 1 {
		_ = next()
	}
	if st := h.f.Status(); st.Errors != 2 || st.State != FileFailed {
		t.Fatalf("after the retry: %+v", st)
	}
	for range 75 { // 1.5 s: still within 2 s
		if err := next(); err != nil {
			t.Fatal(err)
		}
	}
	if len(h.muxers.all) != 2 {
		t.Fatalf("%d files: retried before the doubled backoff", len(h.muxers.all))
	}
	// Space comes back: the next segment opens and is written.
	h.waitFinalised()
	first := filepath.Join(dir, "0000.webm")
	if fi, err := os.Stat(first); err != nil || fi.Size() < 64<<10 {
		t.Fatalf("the failed file keeps what reached it: %v %v", fi, err)
	}
	if fileExists(filepath.Join(dir, "0001.webm")) {
		t.Error("the empty failed file is still there")
	}
	os.Remove(first)
	os.Remove(first + ".json")
	for range 40 {
		if err := next(); err != nil {
			t.Fatalf("after space came back: %v", err)
		}
	}
	st = h.f.Status()
	if st.State != FileWriting || filepath.Base(st.Path) != "0002.webm" {
		t.Fatalf("after space came back: %+v", st)
	}
	h.close()
	if fi, err := os.Stat(filepath.Join(dir, "0002.webm")); err != nil || fi.Size() < 100<<10 {
		t.Errorf("new file: %v %v", fi, err)
	}
	if !fileExists(filepath.Join(dir, "0002.webm.json")) {
		t.Error("new file has no sidecar")
	}
}

func TestFileErrorRetry(t *testing.T) {
	h := newFileHarness(t, nil)
	h.setTracks(fileAudio, fileVideo)
	h.write(1, 0, true)
	h.write(0, 10*time.Millisecond, false)
	h.clock.Add(time.Second)
	h.write(0, time.Second, false) // flushed: the file holds something
	path := h.f.Status().Path
	h.muxers.fail.Store(true)
	err := h.writeErr(0, time.Second+20*time.Millisecond, false, []byte("x"))
	if err == nil || !strings.Contains(err.Error(), "boom") || !strings.Contains(err.Error(), `"rec"`) {
		t.Fatalf("failing write: %v", err)
	}
	st := h.f.Status()
	if st.State != FileFailed || st.Errors != 1 || st.LastError != "boom" || st.Path != "" {
		t.Fatalf("status %+v", st)
	}
	h.muxers.fail.Store(false)
	reqs := h.keyReqs.Load()
	h.write(1, 1100*time.Millisecond, true) // within the backoff: dropped
	if len(h.muxers.all) != 1 {
		t.Fatal("reopened within the backoff")
	}
	h.clock.Add(time.Second)
	h.write(1, 2100*time.Millisecond, false) // not a keyframe: asks for one
	if len(h.muxers.all) != 1 || h.keyReqs.Load() != reqs+1 {
		t.Fatalf("after the backoff, without a keyframe: %d files, %d requests", len(h.muxers.all), h.keyReqs.Load()-reqs)
	}
	if st := h.f.Status(); st.State != FileWaitingKeyframe {
		t.Errorf("state %q", st.State)
	}
	h.write(1, 2200*time.Millisecond, true)
	if st := h.f.Status(); st.State != FileWriting || len(h.muxers.all) != 2 || st.Path == path {
		t.Fatalf("after the keyframe: %+v", st)
	}
	h.close()
	sc := fileReadSidecar(t, path)
	if sc.Error != "boom" || sc.Duration != 1 {
		t.Errorf("failed file's sidecar: %+v", sc)
	}
	if st := h.f.Status(); st.Files != 2 || st.Errors != 1 {
		t.Errorf("final status %+v", st)
	}
}

func TestFileMinFree(t *testing.T) {
	var free atomic.Uint64
	free.Store(5000)
	h := newFileHarness(t, func(c *FileConfig) {
		c.MinFree = 1000
		c.freeSpace = func(string) (uint64, error) { return free.Load(), nil }
	})
	h.setTracks(fileAudio, fileVideo)
	h.write(1, 0, true)
	if st := h.f.Status(); st.State != FileWriting {
		t.Fatalf("status %+v", st)
	}
	free.Store(500)
	h.clock.Add(5 * time.Second)
	h.write(0, 5*time.Second, false) // no check yet (every 10 s)
	h.clock.Add(5 * time.Second)
	h.write(0, 10*time.Second, false)
	st := h.f.Status()
	if st.State != FilePausedMinFree || st.Path != "" || st.Errors != 1 || !strings.Contains(st.LastError, "min_free") {
		t.Fatalf("below min_free: %+v", st)
	}
	if !h.muxers.all[0].closed {
		t.Error("file not finalised when pausing")
	}
	for i := range 20 {
		h.clock.Add(time.Second)
		h.write(1, time.Duration(11+i)*time.Second, true)
	}
	if len(h.muxers.all) != 1 || h.f.Status().Errors != 1 {
		t.Fatalf("while paused: %d files, status %+v", len(h.muxers.all), h.f.Status())
	}
	if n := strings.Count(h.logs.String(), "writing paused"); n != 1 {
		t.Errorf("said %d times that writing paused, want once", n)
	}
	free.Store(5000)
	reqs := h.keyReqs.Load()
	h.clock.Add(10 * time.Second)
	h.write(0, 40*time.Second, false)
	if st := h.f.Status(); st.State != FileWaitingKeyframe || h.keyReqs.Load() != reqs+1 {
		t.Fatalf("space back: %+v, %d requests", st, h.keyReqs.Load()-reqs)
	}
	h.write(1, 41*time.Second, true)
	if st := h.f.Status(); st.State != FileWriting || len(h.muxers.all) != 2 {
		t.Fatalf("resumed: %+v", st)
	}

	// Below min_free when a file would open: nothing is created.
	free.Store(10)
	g := newFileHarness(t, func(c *FileConfig) {
		c.MinFree = 1000
		c.freeSpace = func(string) (uint64, error) { return free.Load(), nil }
	})
	g.setTracks(fileAudio)
	g.write(0, 0, false)
	if st := g.f.Status(); st.State != FilePausedMinFree || len(g.muxers.all) != 0 {
		t.Errorf("opening below min_free: %+v", st)
	}
}

func TestFileFlushPolicy(t *testing.T) {
	h := newFileHarness(t, nil)
	h.setTracks(fileAudio)
	for i := range 150 { // 3 s of audio
		h.clock.Add(20 * time.Millisecond)
		h.write(0, time.Duration(i)*20*time.Millisecond, false)
	}
	m := h.muxers.all[0]
	if m.flushes < 6 || m.flushes > 8 {
		t.Errorf("%d flushes over 3 s, want about 7 (first frame, then every 0.5 s)", m.flushes)
	}
	// What was flushed is in the file, without Close.
	fi, err := os.Stat(h.f.Status().Path)
	if err != nil {
		t.Fatal(err)
	}
	if min := int64(len("FAKE\n") + 125*len("frame\n")); fi.Size() < min {
		t.Errorf("file holds %d bytes before close, want at least %d", fi.Size(), min)
	}
	// A slow media clock (frames stamped close together) is flushed by the wall clock.
	before := m.flushes
	h.clock.Add(time.Second)
	h.write(0, 2990*time.Millisecond, false)
	if m.flushes != before+1 {
		t.Errorf("no flush after a second of wall time")
	}
}

func TestFileClose(t *testing.T) {
	h := newFileHarness(t, nil)
	h.setTracks(fileAudio)
	h.write(0, 0, false)
	h.close()
	if err := h.f.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if err := h.writeErr(0, time.Second, false, nil); err == nil {
		t.Error("WriteFrame after Close: no error")
	}
	if err := h.f.SetTracks([]media.Track{fileAudio}); err == nil {
		t.Error("SetTracks after Close: no error")
	}
	if st := h.f.Status(); st.State != FileClosed || st.Files != 1 || st.Bytes == 0 {
		t.Errorf("status %+v", st)
	}
	// A sink closed before any file leaves nothing.
	g := newFileHarness(t, nil)
	g.setTracks(fileAudio, fileVideo)
	g.write(0, 0, false)
	g.close()
	if names, _ := filepath.Glob(filepath.Join(g.dir, "*", "*")); len(names) != 0 {
		t.Errorf("files: %v", names)
	}
}

func TestFileBufferedSeek(t *testing.T) {
	f, err := os.Create(filepath.Join(t.TempDir(), "b"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b := &bufferedFile{f: f, w: bufio.NewWriterSize(f, 16)}
	io.WriteString(b, "hello world")
	if pos, _ := b.Seek(0, io.SeekCurrent); pos != 11 {
		t.Errorf("position %d", pos)
	}
	if _, err := b.Seek(0, io.SeekStart); err != nil {
		t.Fatal(err)
	}
	io.WriteString(b, "HELLO")
	if pos, _ := b.Seek(0, io.SeekEnd); pos != 11 {
		t.Errorf("end at %d", pos)
	}
	io.WriteString(b, "!")
	if err := b.Flush(); err != nil {
		t.Fatal(err)
	}
	data, _ := os.ReadFile(f.Name())
	if string(data) != "HELLO world!" || b.size != 12 {
		t.Errorf("file %q, size %d", data, b.size)
	}
}

// filePanickyMuxer panics on its second frame.
type filePanickyMuxer struct{ fileFakeMuxer }

func (m *filePanickyMuxer) WriteFrame(f *media.Frame) error {
	if len(m.frames) == 1 {
		panic("index out of range")
	}
	return m.fileFakeMuxer.WriteFrame(f)
}

func TestFileMuxerPanic(t *testing.T) {
	h := newFileHarness(t, func(c *FileConfig) {
		c.newMuxer = func(w io.WriteSeeker, tracks []media.Track) (muxer, error) {
			return &filePanickyMuxer{fileFakeMuxer{w: w, tracks: tracks}}, nil
		}
	})
	h.setTracks(fileAudio)
	h.write(0, 0, false)
	err := h.writeErr(0, 20*time.Millisecond, false, []byte("x"))
	if err == nil || !strings.Contains(err.Error(), "muxer panic: index out of range") {
		t.Fatalf("WriteFrame: %v", err)
	}
	if st := h.f.Status(); st.State != FileFailed || st.Errors != 1 {
		t.Errorf("status %+v", st)
	}
}

// writeSizes records the size of every write it gets.
type writeSizes []int

func (w *writeSizes) Write(p []byte) (int, error) {
	*w = append(*w, len(p))
	return len(p), nil
}

// A write that does not fit the buffer's room goes to the file whole, after
// what was buffered: a kill between two writes never cuts an element.
func TestBufferedFileKeepsWritesWhole(t *testing.T) {
	var got writeSizes
	b := &bufferedFile{w: bufio.NewWriterSize(&got, fileBufferSize)}
	for _, n := range []int{100, fileBufferSize, 200, fileBufferSize - 300, 200} {
		if _, err := b.Write(make([]byte, n)); err != nil {
			t.Fatal(err)
		}
	}
	if err := b.Flush(); err != nil {
		t.Fatal(err)
	}
	want := writeSizes{100, fileBufferSize, 200 + fileBufferSize - 300, 200}
	if !slices.Equal(got, want) {
		t.Errorf("writes %v, want %v", got, want)
	}
}

// fileSilentMuxer writes nothing until a frame says "data".
type fileSilentMuxer struct{ w io.Writer }

func (m fileSilentMuxer) WriteFrame(f *media.Frame) error {
	if string(f.Data) != "data" {
		return nil
	}
	_, err := m.w.Write(f.Data)
	return err
}

func (fileSilentMuxer) Flush() error { return nil }
func (fileSilentMuxer) Close() error { return nil }

// TestFileAppearsWithItsFirstBytes: a file shows up in its directory only
// once something reached it, so a process killed in between leaves no
// empty file; a file that never got a byte leaves nothing at all.
func TestFileAppearsWithItsFirstBytes(t *testing.T) {
	h := newFileHarness(t, func(c *FileConfig) {
		c.newMuxer = func(w io.WriteSeeker, _ []media.Track) (muxer, error) { return fileSilentMuxer{w}, nil }
	})
	h.setTracks(fileAudio)
	files := func() []string {
		names, _ := filepath.Glob(filepath.Join(h.dir, "*", "*"))
		return names
	}
	h.write(0, 0, false)
	if st := h.f.Status(); st.State != FileWriting || st.Path != "" || len(files()) != 0 {
		t.Fatalf("after a frame the muxer kept: state %q, path %q, files %v: want writing, no file yet", st.State, st.Path, files())
	}
	if strings.Contains(h.logs.String(), "file opened") {
		t.Errorf("\"file opened\" logged before the file exists:\n%s", h.logs)
	}
	h.clock.Add(time.Second)
	if err := h.writeErr(0, time.Second, false, []byte("data")); err != nil {
		t.Fatal(err)
	}
	st := h.f.Status()
	if got := files(); len(got) != 1 || st.Path != got[0] {
		t.Fatalf("after the muxer wrote: files %v, status path %q: want the one file", got, st.Path)
	}
	if b, _ := os.ReadFile(st.Path); string(b) != "data" {
		t.Errorf("%s holds %q, want %q", st.Path, b, "data")
	}
	if n := strings.Count(h.logs.String(), "file opened"); n != 1 {
		t.Errorf("\"file opened\" logged %d times, want once", n)
	}
	h.close()
	if _, err := os.Stat(st.Path + ".json"); err != nil {
		t.Errorf("sidecar: %v", err)
	}

	// A file closed before its first byte leaves nothing.
	g := newFileHarness(t, func(c *FileConfig) {
		c.newMuxer = func(w io.WriteSeeker, _ []media.Track) (muxer, error) { return fileSilentMuxer{w}, nil }
	})
	g.setTracks(fileAudio)
	g.write(0, 0, false)
	g.close()
	if names, _ := filepath.Glob(filepath.Join(g.dir, "*", "*")); len(names) != 0 {
		t.Errorf("a file that got no byte left: %v", names)
	}
}
