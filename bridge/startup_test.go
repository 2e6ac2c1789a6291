package bridge_test

import (
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/janusbridge/janusbridge/internal/janustest"
)

// startupBudget is issue 7's start-up target: a new recv bridge writes its
// first video frame within this long of the first keyframe Janus sends it.
const startupBudget = 300 * time.Millisecond

// audioStartBudget bounds an audio-only bridge's start: first packet to
// first file bytes, both polled.
const audioStartBudget = 700 * time.Millisecond

// startupCase is one recv bridge of TestStartupLatency.
type startupCase struct {
	name    string
	mp      int           // mountpoint
	codecs  string        // the file's streams
	at      time.Duration // when to start, after the first
	started time.Time
	rb      *runningBridge

	// what the bridge's stats said
	keyframe, written time.Time // first keyframe packet in, first video frame written
	packet, bytes     time.Time // audio only: first packet seen, first file bytes seen (polled)
}

func (c *startupCase) video() bool { return strings.Contains(c.codecs, "video") }

func (c *startupCase) path(dir string) string { return filepath.Join(dir, c.name+".mkv") }

// start is what the start-up latency counts from: the first keyframe
// packet received, or the first audio packet without video.
func (c *startupCase) start() (string, time.Time) {
	if c.video() {
		return "keyframe packet", c.keyframe
	}
	return "audio packet", c.packet
}

// latency is the start-up latency the case measured.
func (c *startupCase) latency() time.Duration {
	if c.video() {
		return c.written.Sub(c.keyframe)
	}
	return c.bytes.Sub(c.packet)
}

// done tells whether the case has measured what it needs.
func (c *startupCase) done() bool {
	if c.video() {
		return !c.written.IsZero() && !c.keyframe.IsZero()
	}
	return !c.bytes.IsZero()
}

// poll reads the bridge's stats.
func (c *startupCase) poll(now time.Time) {
	st := c.rb.B.Stats()
	s, ok := sinkNamed(st, "rec")
	if !ok {
		return
	}
	if c.video() {
		if tr := trackOfKind(st, "video"); tr.FirstKeyframe != nil {
			c.keyframe = *tr.FirstKeyframe
		}
		if s.FirstVideoFrame != nil {
			c.written = *s.FirstVideoFrame
		}
		return
	}
	if c.packet.IsZero() && trackOfKind(st, "audio").Packets > 0 {
		c.packet = now
	}
	if c.bytes.IsZero() && !c.packet.IsZero() && s.Bytes > 0 {
		c.bytes = now
	}
}

// TestStartupLatency measures issue 7's start-up target against a real Janus:
// recv bridges started at different moments on a VP8+Opus mountpoint fed with
// a keyframe every second (the starts 170 ms apart over more than a second,
// so the first keyframe comes at every point of the bridges' start-up: with
// the very first packets, while the framer's start waits for reordered
// packets, or later), and on a video-only one, each write their first video
// frame within startupBudget of the first keyframe packet they received (the
// bridges' own stats: TrackSnapshot.FirstKeyframe, SinkSnapshot.FirstVideoFrame).
// An audio-only bridge writes its first bytes within audioStartBudget of its
// first packet (both polled every 5 ms). Every file then holds the expected
// streams, decodes without error, starts with a keyframe, and its audio
// starts with its video.
func TestStartupLatency(t *testing.T) {
	janustest.RequireTools(t, "ffprobe")
	ports := janustest.FreeUDPPorts(t, 4)
	j := janustest.StartJanus(t, janustest.Options{
		Plugins: []string{"streaming"},
		Streaming: janustest.MountpointConfig(1, "vp8", ports[0], ports[1]) +
			janustest.MountpointConfig(2, "", ports[2], 0) +
			janustest.MountpointConfig(3, "vp8", 0, ports[3]),
	})
	// Small pictures: the encoders leave the CPU to the bridges.
	janustest.StartFeed(t, janustest.FeedOptions{VideoCodec: "vp8", AudioPort: ports[0], VideoPort: ports[1],
		Width: 320, Height: 180, VideoBitrate: "300k"})
	janustest.StartFeed(t, janustest.FeedOptions{AudioPort: ports[2]})
	janustest.StartFeed(t, janustest.FeedOptions{VideoCodec: "vp8", VideoPort: ports[3],
		Width: 320, Height: 180, VideoBitrate: "300k"})
	dir := t.TempDir()
	if d := os.Getenv("JB_KEEP_DIR"); d != "" {
		dir = d
	}

	const step = 170 * time.Millisecond
	var cases []*startupCase
	for i := range 7 {
		cases = append(cases, &startupCase{name: fmt.Sprintf("av%d", i), mp: 1, codecs: "audio:opus,video:vp8"})
	}
	// The audio-only bridge last: its measurement is polled, and starting a
	// bridge blocks the loop below for its Janus session.
	cases = append(cases,
		&startupCase{name: "video", mp: 3, codecs: "video:vp8"},
		&startupCase{name: "audio", mp: 2, codecs: "audio:opus"})
	for i, c := range cases {
		c.at = time.Duration(i) * step
	}

	// One loop starts the bridges on their schedule and polls their stats.
	const within = 10 * time.Second // of a bridge's start
	began := time.Now()
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for next := 0; ; {
		now := time.Now()
		if next < len(cases) && now.Sub(began) >= cases[next].at {
			c := cases[next]
			c.started = now
			c.rb = startBridge(t, fmt.Sprintf(`
[janus]
servers = [%q]
[webrtc]
loopback_candidates = true
[[bridge]]
name = %q
plugin = "streaming"
mountpoint = %d
  [[bridge.sink]]
  name = "rec"
  type = "mkv"
  path = %q
`, j.WSURL(), c.name, c.mp, c.path(dir)), nil)
			next++
			continue
		}
		all := next == len(cases)
		for _, c := range cases[:next] {
			if c.done() {
				continue
			}
			if c.poll(now); !c.done() {
				all = false
				if now.Sub(c.started) > within {
					t.Fatalf("%s: nothing measured within %v of its start: keyframe %v, written %v, packet %v, bytes %v; stats %+v",
						c.name, within, c.keyframe, c.written, c.packet, c.bytes, c.rb.B.Stats())
				}
			}
		}
		if all {
			break
		}
		<-tick.C
	}

	var lat []time.Duration
	for _, c := range cases {
		c.rb.stop(t) // the files are finalised
		d := c.latency()
		what, from := c.start()
		t.Logf("%-6s started at +%5dms: first %s at +%5dms, written %3dms later", c.name, c.started.Sub(began).Milliseconds(),
			what, from.Sub(began).Milliseconds(), d.Milliseconds())
		budget := startupBudget
		if !c.video() {
			// Polled, so the poll's own delays count: audio is not issue
			// 7's target, only the end of the old wait for the first
			// sender report (frames written 1-1.5 s late) is checked.
			budget = audioStartBudget
		}
		if d < 0 || d > budget {
			t.Errorf("%s: first frame written %v after the first %s, want within %v", c.name, d, what, budget)
		}
		if c.video() {
			lat = append(lat, d)
		}
	}
	slices.Sort(lat)
	t.Logf("start-up latency, first keyframe packet -> first video frame written, %d bridges: min %v median %v max %v",
		len(lat), lat[0].Round(time.Millisecond), lat[len(lat)/2].Round(time.Millisecond), lat[len(lat)-1].Round(time.Millisecond))

	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			path := c.path(dir)
			if got := ffprobe(t, path).codecs(); got != c.codecs {
				t.Errorf("streams %s, want %s", got, c.codecs)
			}
			if errs := decodeErrors(t, path); errs != "" {
				t.Errorf("decode errors: %s", errs)
			}
			if c.video() && !firstVideoPacketIsKey(t, path) {
				t.Error("first video frame is not a keyframe")
			}
			if c.video() && strings.Contains(c.codecs, "audio") {
				// The file starts at the keyframe; the audio captured with
				// it (kept while the file waited) starts with it.
				a, v := firstPTS(t, path, "a:0"), firstPTS(t, path, "v:0")
				if d := a - v; d < 0 || d > 0.06 {
					t.Errorf("audio starts %+.0f ms after the video, want 0 to 60 ms", d*1e3)
				}
			}
		})
	}
}

// firstPTS returns the pts, in seconds, of the first packet of a stream of
// path (an ffprobe stream specifier such as "a:0").
func firstPTS(t *testing.T, path, stream string) float64 {
	t.Helper()
	out, err := exec.Command("ffprobe", "-v", "error", "-select_streams", stream, "-read_intervals", "%+#1",
		"-show_entries", "packet=pts_time", "-of", "csv=p=0", path).Output()
	if err != nil {
		t.Fatalf("ffprobe packets %s: %v", path, err)
	}
	v, err := strconv.ParseFloat(strings.TrimSpace(string(out)), 64)
	if err != nil || math.IsNaN(v) {
		t.Fatalf("ffprobe %s %s: first pts %q", path, stream, out)
	}
	return v
}
