package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/janusbridge/janusbridge/internal/janustest"
)

// TestMain lets a test run this binary as the janusbridge command: with
// JANUSBRIDGE_MAIN=1 the test binary is janusbridge.
func TestMain(m *testing.M) {
	if os.Getenv("JANUSBRIDGE_MAIN") == "1" {
		main()
	}
	os.Exit(m.Run())
}

// killRuns is how many times TestKillMidRecording kills the daemon.
const killRuns = 10

// killMoment is when a run kills the daemon: after that long from the
// event of its phase.
type killMoment struct {
	phase int // killStart, killFirstFile or killAllFiles
	after time.Duration
}

const (
	killStart     = iota // the daemon's start: it connects to Janus
	killFirstFile        // the first file opened: the others are opening
	killAllFiles         // every sink's first file opened: recording, segments rotating
)

func (m killMoment) String() string {
	return fmt.Sprintf("%dms-after-%s", m.after.Milliseconds(), []string{"start", "first-file", "all-files"}[m.phase])
}

// TestKillMidRecording SIGKILLs the daemon at random moments, ten times,
// against one Janus and one feed per codec shared by the runs: once during
// start-up (0.2-1.5 s after the start), once just after the first file is
// opened (0-200 ms), eight times spread over the five seconds after every
// sink opened its first file (one moment drawn in each eighth), in which
// segments of 2 s (webm) and 3 s (mkv) rotate. Every file of every run
// must decode without a word from ffmpeg -v error (but for an element cut
// at the very end), and the latest file of each sink must hold media up
// to less than 1 s before the kill. JB_KILL_SEED replays the moments (the
// seed is logged).
func TestKillMidRecording(t *testing.T) {
	ports := janustest.FreeUDPPorts(t, 4)
	j := janustest.StartJanus(t, janustest.Options{
		Plugins: []string{"streaming"},
		Streaming: janustest.MountpointConfig(1, "vp8", ports[0], ports[1]) +
			janustest.MountpointConfig(2, "h264", ports[2], ports[3]),
	})
	janustest.StartFeed(t, janustest.FeedOptions{VideoCodec: "vp8", AudioPort: ports[0], VideoPort: ports[1]})
	janustest.StartFeed(t, janustest.FeedOptions{VideoCodec: "h264", AudioPort: ports[2], VideoPort: ports[3]})

	seed := uint64(time.Now().UnixNano())
	if v := os.Getenv("JB_KILL_SEED"); v != "" {
		var err error
		if seed, err = strconv.ParseUint(v, 10, 64); err != nil {
			t.Fatalf("JB_KILL_SEED: %v", err)
		}
	}
	t.Logf("kill moments from seed %d (JB_KILL_SEED=%[1]d replays them)", seed)
	rng := rand.New(rand.NewPCG(seed, 0))
	ms := func(lo, hi int) time.Duration { return time.Duration(lo+rng.IntN(hi-lo)) * time.Millisecond }
	moments := []killMoment{{killStart, ms(200, 1500)}, {killFirstFile, ms(0, 200)}}
	const spread = 5 * time.Second
	for k := range killRuns - 2 {
		moments = append(moments, killMoment{killAllFiles, time.Duration((float64(k) + rng.Float64()) * float64(spread) / (killRuns - 2))})
	}
	rng.Shuffle(len(moments), func(a, b int) { moments[a], moments[b] = moments[b], moments[a] })
	for i, m := range moments {
		t.Run(fmt.Sprintf("run%d-%v", i, m), func(t *testing.T) { killOnce(t, j.WSURL(), m) })
	}
}

// opened is a "file opened" line of the daemon's log.
type opened struct {
	path string
	at   time.Time
}

// openedLog is the daemon's stderr: it passes on the "file opened" lines.
type openedLog struct {
	partial []byte
	out     chan opened
}

func (l *openedLog) Write(p []byte) (int, error) {
	l.partial = append(l.partial, p...)
	for {
		i := bytes.IndexByte(l.partial, '\n')
		if i < 0 {
			return len(p), nil
		}
		var line struct {
			Time time.Time `json:"time"`
			Msg  string    `json:"msg"`
			Path string    `json:"path"`
		}
		if json.Unmarshal(l.partial[:i], &line) == nil && line.Msg == "file opened" {
			select {
			case l.out <- opened{line.Path, line.Time}:
			default: // more files than the test waits for: not needed
			}
		}
		l.partial = l.partial[i+1:]
	}
}

// killOnce runs the daemon with two bridges of two sinks each (webm and
// mkv in segments), kills it at the moment m and judges its files.
func killOnce(t *testing.T, server string, m killMoment) {
	dir := t.TempDir()
	cfg := writeConfig(t, fmt.Sprintf(`
[janus]
servers = [%q]
[webrtc]
loopback_candidates = true
[log]
format = "json"
[[bridge]]
name = "vp8"
plugin = "streaming"
mountpoint = 1
  [[bridge.sink]]
  type = "webm"
  path = "%[2]s/{bridge}-{seq}.webm"
  segment = "2s"
  [[bridge.sink]]
  type = "ogg"
  path = "%[2]s/{bridge}.ogg"
[[bridge]]
name = "h264"
plugin = "streaming"
mountpoint = 2
  [[bridge.sink]]
  type = "mkv"
  path = "%[2]s/{bridge}-{seq}.mkv"
  segment = "3s"
  [[bridge.sink]]
  type = "mp4"
  path = "%[2]s/{bridge}.mp4"
`, server, dir))
	log := &openedLog{out: make(chan opened, 64)}
	cmd := exec.Command(os.Args[0], "run", "-c", cfg)
	cmd.Env = append(os.Environ(), "JANUSBRIDGE_MAIN=1")
	cmd.Stderr = log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	started := time.Now()
	defer cmd.Wait()
	defer cmd.Process.Kill()

	// latest maps each sink (its path up to the segment number) to the
	// latest file it opened.
	latest := map[string]opened{}
	sink := func(path string) string {
		base := filepath.Base(path)
		if i := strings.LastIndexByte(base, '-'); i > 0 {
			return base[:i]
		}
		return base
	}
	var kill <-chan time.Time // nil until the moment is known
	if m.phase == killStart {
		kill = time.After(m.after - time.Since(started))
	}
	deadline := time.After(30 * time.Second)
wait:
	for {
		select {
		case o := <-log.out:
			latest[sink(o.path)] = o
			if kill == nil && (m.phase == killFirstFile || m.phase == killAllFiles && len(latest) == 4) {
				kill = time.After(m.after)
			}
		case <-kill:
			break wait
		case <-deadline:
			t.Fatalf("files opened within 30 s: %v", latest)
		}
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	killed := time.Now()
	cmd.Wait()
	for len(log.out) > 0 { // lines written before the kill
		o := <-log.out
		latest[sink(o.path)] = o
	}
	t.Logf("killed %v after the start; files opened: %d sinks", killed.Sub(started).Round(time.Millisecond), len(latest))

	files, err := filepath.Glob(filepath.Join(dir, "*.*"))
	if err != nil {
		t.Fatal(err)
	}
	if m.phase == killAllFiles && len(files) < 4 {
		t.Fatalf("files: %v", files)
	}
	var wg sync.WaitGroup // the checks run at once: ffmpeg and ffprobe are slow on a loaded machine
	for _, path := range files {
		if strings.HasSuffix(path, ".json") {
			continue // sidecars are written when a file is finalised
		}
		wg.Go(func() { checkDecodes(t, path) })
	}
	for _, o := range latest {
		wg.Go(func() {
			lived := killed.Sub(o.at).Seconds()
			first, last, err := packetSpan(o.path)
			if errors.Is(err, errNoPacket) && lived < 1 {
				return // killed before its first flush: nothing it had to hold
			}
			if err != nil {
				t.Error(err)
				return
			}
			held := last - first
			t.Logf("%s: %.2fs of media (%.2fs to %.2fs), opened %.2fs before the kill", filepath.Base(o.path), held, first, last, lived)
			if held < lived-1 {
				t.Errorf("%s: %.2fs of media, opened %.2fs before the kill: more than 1 s lost", filepath.Base(o.path), held, lived)
			}
		})
	}
	wg.Wait()
}

// checkDecodes fails t unless ffmpeg decodes path without a word, but for
//   - an element cut at the very end of the file (a kill between the two
//     writes of one flush): ffmpeg says so, and decodes the rest;
//   - a file killed before its first media was flushed (an MP4 of only its
//     header): ffmpeg cannot decode what is not there, but ffprobe must
//     read every stream of the header;
//   - ffmpeg's null muxer finding two video frames in one slot of the
//     frame rate it guessed ("non monotonically increasing dts to muxer",
//     when frame spacing is uneven): the file's own timestamps must then
//     increase strictly in every stream.
func checkDecodes(t *testing.T, path string) {
	out, err := exec.Command("ffmpeg", "-nostdin", "-v", "error", "-i", path, "-f", "null", "-").CombinedOutput()
	st, serr := os.Stat(path)
	if serr != nil {
		t.Error(serr)
		return
	}
	msg := strings.TrimSpace(string(out))
	cut := fmt.Sprintf("File ended prematurely at pos. %d ", st.Size())
	if err == nil && !strings.Contains(msg, "\n") && strings.Contains(msg, cut) {
		t.Logf("%s: its last element is cut: %s", filepath.Base(path), msg)
		return
	}
	if _, _, perr := packetSpan(path); errors.Is(perr, errNoPacket) {
		probe, err := exec.Command("ffprobe", "-v", "error", "-show_entries", "stream=codec_name", "-of", "csv=p=0", path).CombinedOutput()
		if err != nil || len(strings.Fields(string(probe))) == 0 {
			t.Errorf("%s (%d bytes): no media, and its header does not read: %v %s", filepath.Base(path), st.Size(), err, probe)
		}
		return
	}
	retimed := err == nil && msg != ""
	for _, l := range strings.Split(msg, "\n") {
		retimed = retimed && strings.Contains(l, "non monotonically increasing dts to muxer")
	}
	if retimed {
		if err := janustest.DTSIncrease(path); err != nil {
			t.Errorf("%s: %v (ffmpeg: %s)", filepath.Base(path), err, msg)
		}
		return
	}
	if err != nil || msg != "" {
		t.Errorf("%s (%d bytes): decoding the killed file: %v %s", filepath.Base(path), st.Size(), err, msg)
	}
}

// errNoPacket is packetSpan's error for a file without a single packet.
var errNoPacket = errors.New("no packet")

// packetSpan returns the earliest and the latest packet time of path, in
// seconds.
func packetSpan(path string) (first, last float64, err error) {
	out, err := exec.Command("ffprobe", "-v", "error", "-show_entries", "packet=pts_time", "-of", "csv=p=0", path).Output()
	if err != nil {
		return 0, 0, fmt.Errorf("ffprobe %s: %w", path, err)
	}
	first, last = math.Inf(1), math.Inf(-1)
	for _, l := range strings.Fields(string(out)) {
		if v, err := strconv.ParseFloat(strings.TrimSuffix(l, ","), 64); err == nil {
			first, last = min(first, v), max(last, v)
		}
	}
	if math.IsInf(first, 0) {
		return 0, 0, fmt.Errorf("%s: %w", path, errNoPacket)
	}
	return first, last, nil
}
