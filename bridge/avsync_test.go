package bridge_test

import (
	"bufio"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/janusbridge/janusbridge/internal/janustest"
)

// SPEC §5: "measured with a feed that flashes and beeps once a second, mean
// A/V offset <= 20 ms and max <= 40 ms over 60 s".
const (
	avSyncRun      = 62 * time.Second // 60 s of pairs plus start-up
	avSyncMaxMean  = 0.020            // seconds, mean |offset|
	avSyncMaxAbs   = 0.040            // seconds, max |offset|
	avSyncMinPairs = 50
	// avSyncPairWindow is how far from a flash its beep may be found.
	avSyncPairWindow = 0.5
	// avSyncSourceLen is the length of the local encode that tells the
	// feed's own offsets: two periods of the 8 s sawtooth described at
	// TestAVSync, and then some.
	avSyncSourceLen = 17 * time.Second
)

// TestAVSync records a VP8+Opus and an H.264+Opus mountpoint, both fed with
// janustest's sync marker (a white picture and a 1 kHz beep for the first
// 200 ms of every second, black and silence otherwise), to mkv for about a
// minute, and measures each file's A/V offset at every flash: the beep's
// onset (silencedetect's silence_end, sample accurate) minus the flash's
// onset (pts of the first bright frame, by signalstats' YAVG). Positive
// offsets mean the audio is late.
//
// The feed is not perfectly aligned itself: ffmpeg's sine source makes
// frames of 1024 samples and volume's enable= switches per frame, so the
// beep of second k starts at the first 1024-sample boundary at or after k
// (0 to 21 ms late, a sawtooth repeating every 8 s), plus the Opus codec's
// own delay. The same measurement on a local encode of the feed's own
// ffmpeg graph and encoder options (no RTP, no Janus, no bridge) gives that
// pattern; it is subtracted from the recording's offsets after finding its
// phase (which second of the feed the recording's first flash is), and the
// SPEC's limits apply to what is left: the bridge's contribution.
func TestAVSync(t *testing.T) {
	if testing.Short() {
		t.Skip("a minute of recording: skipped with -short")
	}
	janustest.RequireTools(t, "ffprobe")
	began := time.Now()
	ports := janustest.FreeUDPPorts(t, 4)
	j := janustest.StartJanus(t, janustest.Options{
		Plugins: []string{"streaming"},
		Streaming: janustest.MountpointConfig(1, "vp8", ports[0], ports[1]) +
			janustest.MountpointConfig(2, "h264", ports[2], ports[3]),
	})
	feeds := map[string]*janustest.Feed{
		"vp8": janustest.StartFeed(t, janustest.FeedOptions{VideoCodec: "vp8",
			AudioPort: ports[0], VideoPort: ports[1], SyncMarker: true}),
		"h264": janustest.StartFeed(t, janustest.FeedOptions{VideoCodec: "h264",
			AudioPort: ports[2], VideoPort: ports[3], SyncMarker: true}),
	}
	dir := t.TempDir()
	if d := os.Getenv("JB_KEEP_DIR"); d != "" {
		dir = d
	}
	cfg := fmt.Sprintf(`
[janus]
servers = [%q]
[webrtc]
loopback_candidates = true
[[bridge]]
name = "vp8"
plugin = "streaming"
mountpoint = 1
  [[bridge.sink]]
  type = "mkv"
  path = "%[2]s/{bridge}.mkv"
[[bridge]]
name = "h264"
plugin = "streaming"
mountpoint = 2
  [[bridge.sink]]
  type = "mkv"
  path = "%[2]s/{bridge}.mkv"
`, j.WSURL(), dir)

	runBridges(t, cfg, avSyncRun)
	for _, f := range feeds { // the local encodes below need no competition
		f.Stop()
	}

	t.Cleanup(func() { t.Logf("TestAVSync took %s", time.Since(began).Round(100*time.Millisecond)) })
	for _, name := range []string{"vp8", "h264"} {
		t.Run(name, func(t *testing.T) {
			t.Parallel() // two ffmpeg measurements at once
			start := time.Now()
			defer func() { t.Logf("measured in %s", time.Since(start).Round(10*time.Millisecond)) }()
			src := sourcePattern(t, feeds[name], filepath.Join(dir, name+"-source.mkv"))
			path := filepath.Join(dir, name+".mkv")
			pairs := syncPairs(t, path)
			if len(pairs) < avSyncMinPairs {
				t.Errorf("%d flash/beep pairs found in %s, want at least %d", len(pairs), path, avSyncMinPairs)
			}
			if len(pairs) == 0 {
				return
			}
			raw := offsetStats(pairs, func(p syncPair) float64 { return p.offset })
			phase := src.phase(pairs)
			st := offsetStats(pairs, func(p syncPair) float64 { return p.offset - src.at(p.second+phase) })
			t.Logf("source (local encode, %d pairs): offsets %s, period %d s",
				src.n, src.describe(), len(src.pattern))
			t.Logf("recording raw:       pairs=%d mean=%+.1fms mean|.|=%.1fms max|.|=%.1fms",
				raw.n, raw.mean*1e3, raw.meanAbs*1e3, raw.maxAbs*1e3)
			t.Logf("recording - source:  pairs=%d mean=%+.1fms mean|.|=%.1fms max|.|=%.1fms sd=%.1fms drift=%+.2fms/min (phase %d)",
				st.n, st.mean*1e3, st.meanAbs*1e3, st.maxAbs*1e3, st.sd*1e3, st.slope*60e3, phase)
			t.Logf("offsets - source, ms, in order: %s", st.list())
			if st.meanAbs > avSyncMaxMean {
				t.Errorf("mean |A/V offset| %.1f ms, want <= %.0f ms", st.meanAbs*1e3, avSyncMaxMean*1e3)
			}
			if st.maxAbs > avSyncMaxAbs {
				t.Errorf("max |A/V offset| %.1f ms, want <= %.0f ms", st.maxAbs*1e3, avSyncMaxAbs*1e3)
			}
		})
	}
}

// syncPair is one flash and the beep nearest to it.
type syncPair struct {
	flash  float64 // seconds, pts of the first bright frame
	offset float64 // seconds, beep onset minus flash
	second int     // whole seconds since the file's first paired flash
}

// syncPairs finds the flashes and beeps of the file at path and pairs each
// flash with the nearest beep within avSyncPairWindow.
func syncPairs(t *testing.T, path string) []syncPair {
	t.Helper()
	ev := syncEvents(t, path)
	var pairs []syncPair
	for _, f := range ev.flashes {
		i := sort.SearchFloat64s(ev.beeps, f)
		best := math.Inf(1)
		for _, k := range []int{i - 1, i} {
			if k >= 0 && k < len(ev.beeps) && math.Abs(ev.beeps[k]-f) < math.Abs(best) {
				best = ev.beeps[k] - f
			}
		}
		if math.Abs(best) <= avSyncPairWindow {
			pairs = append(pairs, syncPair{flash: f, offset: best})
		}
	}
	for i := range pairs {
		pairs[i].second = int(math.Round(pairs[i].flash - pairs[0].flash))
	}
	t.Logf("%s: %s; %d flashes, %d beeps, %d pairs", filepath.Base(path), ev.summary,
		len(ev.flashes), len(ev.beeps), len(pairs))
	return pairs
}

// events are the sync marks found in a file.
type events struct {
	flashes, beeps []float64 // onsets, seconds on the file's timeline, sorted
	summary        string    // the decoded frames' timelines, for the log
}

// syncEvents decodes path once and returns the onsets of its flashes (the
// pts of each bright frame that follows a dark one at most 1.5 frame
// intervals earlier: luma average above mid-grey) and of its beeps (where a
// silence of at least 100 ms below -30 dBFS ends: the sine is at -18 dBFS).
func syncEvents(t *testing.T, path string) events {
	t.Helper()
	work := t.TempDir() // the metadata filters' files, named relative to it
	cmd := exec.Command("ffmpeg", "-nostdin", "-v", "error", "-i", path, "-filter_complex",
		"[0:v:0]signalstats,metadata=mode=print:key=lavfi.signalstats.YAVG:file=video.txt[v];"+
			// astats only to have every audio frame printed, for its pts
			"[0:a:0]astats=metadata=1:reset=1:measure_perchannel=none:measure_overall=Number_of_samples,"+
			"silencedetect=n=-30dB:d=0.1,ametadata=mode=print:file=audio.txt[a]",
		"-map", "[v]", "-map", "[a]", "-f", "null", "-")
	cmd.Dir = work
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("ffmpeg measuring %s: %v: %s", path, err, out)
	}
	var ev events
	video := readFrameMetadata(t, filepath.Join(work, "video.txt"), "lavfi.signalstats.YAVG")
	const bright = (16 + 235) / 2.0 // black and white in limited-range luma
	for i := 1; i < len(video); i++ {
		prev, cur := video[i-1], video[i]
		if cur.value > bright && prev.value <= bright && cur.pts-prev.pts <= 0.06 {
			ev.flashes = append(ev.flashes, cur.pts)
		}
	}
	audio := readFrameMetadata(t, filepath.Join(work, "audio.txt"), "lavfi.silence_end")
	for _, m := range audio {
		if !math.IsNaN(m.value) {
			ev.beeps = append(ev.beeps, m.value)
		}
	}
	sort.Float64s(ev.beeps)
	ev.summary = "video " + timelineSummary(video) + ", audio " + timelineSummary(audio)
	return ev
}

// timelineSummary describes a stream's decoded frames: how many, from when
// to when, how many came less than 5 ms after the previous one (time
// compressed) and how many more than 100 ms after it (gaps).
func timelineSummary(frames []frameValue) string {
	if len(frames) == 0 {
		return "no frames"
	}
	tight, gaps := 0, 0
	for i := 1; i < len(frames); i++ {
		switch d := frames[i].pts - frames[i-1].pts; {
		case d < 0.005:
			tight++
		case d > 0.1:
			gaps++
		}
	}
	return fmt.Sprintf("%d frames %.3f-%.3fs (%d <5ms apart, %d gaps >100ms)",
		len(frames), frames[0].pts, frames[len(frames)-1].pts, tight, gaps)
}

// frameValue is one frame's pts and the value of a metadata key on it (NaN
// when the frame does not carry it).
type frameValue struct{ pts, value float64 }

// readFrameMetadata parses the output of ffmpeg's metadata=mode=print
// filter ("frame:N pts:P pts_time:T" lines, each followed by its "key=value"
// lines) and returns every frame with the value of key.
func readFrameMetadata(t *testing.T, path, key string) []frameValue {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatalf("metadata: %v", err)
	}
	defer f.Close()
	var out []frameValue
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if strings.HasPrefix(line, "frame:") {
			pts := math.NaN()
			for _, field := range strings.Fields(line) {
				if v, ok := strings.CutPrefix(field, "pts_time:"); ok {
					if p, err := strconv.ParseFloat(v, 64); err == nil {
						pts = p
					}
				}
			}
			if !math.IsNaN(pts) {
				out = append(out, frameValue{pts: pts, value: math.NaN()})
			}
			continue
		}
		if v, ok := strings.CutPrefix(line, key+"="); ok && len(out) > 0 {
			if x, err := strconv.ParseFloat(v, 64); err == nil {
				out[len(out)-1].value = x
			}
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatalf("metadata %s: %v", path, err)
	}
	return out
}

// srcPattern is the feed's own A/V offset as a function of the second of
// the feed: periodic (the period found in the local encode).
type srcPattern struct {
	pattern []float64 // mean offset by second modulo the period
	n       int       // pairs measured
	all     []float64 // their offsets, in order
}

// at is the feed's own offset at a second of the feed.
func (s srcPattern) at(second int) float64 {
	p := len(s.pattern)
	return s.pattern[((second%p)+p)%p]
}

// describe says what the local encode measured, for the log.
func (s srcPattern) describe() string {
	sum, lo, hi := 0.0, math.Inf(1), math.Inf(-1)
	for _, v := range s.all {
		sum += v
		lo, hi = min(lo, v), max(hi, v)
	}
	var ms []string
	for _, v := range s.pattern {
		ms = append(ms, fmt.Sprintf("%+.1f", v*1e3))
	}
	return fmt.Sprintf("mean %+.1fms, from %+.1f to %+.1fms, by second of the period [%s]ms",
		sum/float64(len(s.all))*1e3, lo*1e3, hi*1e3, strings.Join(ms, " "))
}

// phase returns the shift of the pattern (which second of the feed's
// period the recording's first pair falls on) that best explains the
// recording's offsets: the one leaving the least spread, as the sum of
// absolute deviations from the median, so that a few pairs disturbed by a
// break in the recording do not decide it. It moves no offset by a
// constant, so a bridge's constant offset or drift stays in the figures.
func (s srcPattern) phase(pairs []syncPair) int {
	best, bestCost := 0, math.Inf(1)
	r := make([]float64, len(pairs))
	for ph := range len(s.pattern) {
		for i, p := range pairs {
			r[i] = p.offset - s.at(p.second+ph)
		}
		med := median(r)
		cost := 0.0
		for _, v := range r {
			cost += math.Abs(v - med)
		}
		if cost < bestCost {
			best, bestCost = ph, cost
		}
	}
	return best
}

// median of v (0 for none), v left as it is.
func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := append([]float64(nil), v...)
	sort.Float64s(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// sourcePattern encodes avSyncSourceLen of the feed's ffmpeg graph with its
// encoder options straight into a Matroska file at out and measures it.
func sourcePattern(t *testing.T, feed *janustest.Feed, out string) srcPattern {
	t.Helper()
	args, err := localEncodeArgs(feed.Args(), avSyncSourceLen, out)
	if err != nil {
		t.Fatalf("local encode of the feed: %v (feed args %q)", err, feed.Args())
	}
	if b, err := exec.Command("ffmpeg", args...).CombinedOutput(); err != nil {
		t.Fatalf("local encode of the feed: ffmpeg %s: %v: %s", strings.Join(args, " "), err, b)
	}
	return patternOf(t, syncPairs(t, out))
}

// patternOf finds the period and values of the feed's own offsets, measured
// by pairs.
func patternOf(t *testing.T, pairs []syncPair) srcPattern {
	t.Helper()
	if len(pairs) < int(avSyncSourceLen.Seconds())-2 {
		t.Fatalf("local encode of the feed: %d pairs, want %d", len(pairs), int(avSyncSourceLen.Seconds())-1)
	}
	s := srcPattern{n: len(pairs)}
	bySecond := map[int]float64{}
	for _, p := range pairs {
		bySecond[p.second] = p.offset
		s.all = append(s.all, p.offset)
	}
	// The shortest period with which the offsets repeat (within 2 ms:
	// Matroska stores milliseconds).
	period := 0
	for p := 1; p <= len(pairs)/2 && period == 0; p++ {
		period = p
		for sec, v := range bySecond {
			if w, ok := bySecond[sec+p]; ok && math.Abs(v-w) > 0.002 {
				period = 0
				break
			}
		}
	}
	if period == 0 {
		t.Fatalf("local encode of the feed: its A/V offsets do not repeat: %v", s.all)
	}
	s.pattern = make([]float64, period)
	count := make([]int, period)
	for sec, v := range bySecond {
		s.pattern[sec%period] += v
		count[sec%period]++
	}
	for i := range s.pattern {
		if count[i] == 0 {
			t.Fatalf("local encode of the feed: no pair at second %d of the period %d", i, period)
		}
		s.pattern[i] /= float64(count[i])
	}
	return s
}

// localEncodeArgs turns a feed's ffmpeg command line into one that encodes
// the same lavfi inputs with the same encoder options into one file for
// dur, as fast as it can: no -re, no RTP outputs, no SDP.
func localEncodeArgs(feed []string, dur time.Duration, out string) ([]string, error) {
	lastInput := -1
	for i, a := range feed {
		if a == "-i" {
			lastInput = i
		}
	}
	if lastInput < 0 || lastInput+1 >= len(feed) {
		return nil, fmt.Errorf("no input")
	}
	args := []string{"-nostdin", "-v", "error", "-y"}
	for i := 0; i <= lastInput+1; i++ {
		switch feed[i] {
		case "-re", "-nostdin", "-hide_banner":
		case "-loglevel", "-v":
			i++
		default:
			args = append(args, feed[i])
		}
	}
	maps := 0
	for i := lastInput + 2; i < len(feed); i++ {
		a := feed[i]
		switch {
		case a == "-payload_type" || a == "-sdp_file" || a == "-t":
			i++
		case a == "-f" && i+1 < len(feed) && feed[i+1] == "rtp":
			i++
		case strings.HasPrefix(a, "rtp://"):
		default:
			if a == "-map" {
				maps++
			}
			args = append(args, a)
		}
	}
	if maps != 2 {
		return nil, fmt.Errorf("%d streams mapped, want video and audio", maps)
	}
	return append(args, "-t", strconv.FormatFloat(dur.Seconds(), 'f', 3, 64), out), nil
}

// syncStats summarises A/V offsets.
type syncStats struct {
	n                          int
	sum, sumAbs, sumSq, maxAbs float64
	mean, meanAbs, sd          float64
	slope                      float64 // offset change per second of the file (least squares)
	xs, ys                     []float64
}

// addAt adds offset v, seen at time x (seconds).
func (s *syncStats) addAt(x, v float64) {
	s.n++
	s.sum += v
	s.sumAbs += math.Abs(v)
	s.sumSq += v * v
	s.maxAbs = max(s.maxAbs, math.Abs(v))
	s.xs = append(s.xs, x)
	s.ys = append(s.ys, v)
}

// finish computes the summary figures from the offsets added.
func (s *syncStats) finish() {
	if s.n == 0 {
		return
	}
	n := float64(s.n)
	s.mean, s.meanAbs = s.sum/n, s.sumAbs/n
	s.sd = math.Sqrt(max(0, s.sumSq/n-s.mean*s.mean))
	var mx, sxx, sxy float64
	for _, x := range s.xs {
		mx += x / n
	}
	for i, x := range s.xs {
		sxx += (x - mx) * (x - mx)
		sxy += (x - mx) * (s.ys[i] - s.mean)
	}
	if sxx > 0 {
		s.slope = sxy / sxx
	}
}

// list is the offsets in order, in milliseconds.
func (s *syncStats) list() string {
	var ms []string
	for _, v := range s.ys {
		ms = append(ms, strconv.FormatFloat(v*1e3, 'f', 1, 64))
	}
	return strings.Join(ms, " ")
}

// offsetStats summarises f over pairs (against their flash times).
func offsetStats(pairs []syncPair, f func(syncPair) float64) *syncStats {
	s := &syncStats{}
	for _, p := range pairs {
		s.addAt(p.flash, f(p))
	}
	s.finish()
	return s
}
