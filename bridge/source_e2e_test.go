package bridge_test

import (
	"fmt"
	"math"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/janusbridge/janusbridge/internal/janustest"
)

// TestSendFileAACLoop publishes a looping 2 s MP4 of H.264 and AAC that
// flashes and beeps once a second in a VideoRoom: the AAC goes out as Opus
// through the file source's transcoder. A recv bridge records the
// publisher for more than three passes; the recording must decode cleanly
// with timestamps that never go backwards, and each beep must come with
// its flash (the transcoded audio kept with the video across the loops).
func TestSendFileAACLoop(t *testing.T) {
	janustest.RequireTools(t, "ffmpeg", "ffprobe")
	j := janustest.StartJanus(t, janustest.Options{
		Plugins:   []string{"videoroom"},
		VideoRoom: janustest.VideoRoomConfig(1234, "vp8,h264"),
	})
	dir := t.TempDir()
	file := filepath.Join(t.TempDir(), "marker.mp4")
	out, err := exec.Command("ffmpeg", "-nostdin", "-v", "error",
		"-f", "lavfi", "-i", `color=c=black:size=320x240:rate=25,drawbox=c=white:t=fill:enable='lt(mod(t\,1)\,0.2)'`,
		"-f", "lavfi", "-i", `sine=frequency=1000:sample_rate=48000,volume=volume=0:enable='gte(mod(t\,1)\,0.2)'`,
		"-t", "2", "-c:v", "libx264", "-preset", "ultrafast", "-profile:v", "baseline", "-pix_fmt", "yuv420p",
		"-g", "25", "-keyint_min", "25", "-c:a", "aac", "-b:a", "96k", file).CombinedOutput()
	if err != nil {
		t.Fatalf("encoding %s: %v: %s", file, err, out)
	}
	rb := startBridges(t, fmt.Sprintf(`
[janus]
servers = [%q]
[webrtc]
loopback_candidates = true
[[bridge]]
name = "promo"
plugin = "videoroom"
room = 1234
display = "promo"
  [bridge.source]
  type = "file"
  path = %q
  loop = true
[[bridge]]
name = "rec"
plugin = "videoroom"
room = 1234
feeds = "all"
include_own = true
  [[bridge.sink]]
  type = "mkv"
  path = "%s/{feed}-{display}.mkv"
`, j.WSURL(), file, dir))
	rec := rb.byName["rec"]
	waitFor(t, 20*time.Second, "recording", func() bool {
		return inPackets(rec, "video") > 10 && inPackets(rec, "audio") > 10 && len(globFiles(dir, "*-promo.mkv")) == 1
	})
	recording := time.Now()
	time.Sleep(7 * time.Second) // media to record: more than three passes
	rb.stop()
	elapsed := time.Since(recording).Seconds()

	path := recordingOf(t, dir, "*-promo.mkv")
	checkRecording(t, path, "audio:opus,video:h264", elapsed-1.5)
	fl, bp := flashes(t, path), beeps(t, path)
	t.Logf("recorded %.1fs; flashes %v; beeps %v; promo %+v", elapsed, fl, bp, rb.byName["promo"].Stats())
	paired := 0
	var worst float64
	for _, f := range fl {
		if f < 0.5 {
			continue // a beep at the very start has no silence before it to detect
		}
		best := math.Inf(1)
		for _, b := range bp {
			if math.Abs(b-f) < math.Abs(best) {
				best = b - f
			}
		}
		if math.Abs(best) > 0.06 {
			t.Errorf("flash at %.3f: nearest beep %.3fs away", f, best)
			continue
		}
		worst = max(worst, math.Abs(best))
		paired++
	}
	if paired < 5 {
		t.Errorf("%d flashes with their beep, want at least 5", paired)
	}
	t.Logf("%d flash/beep pairs, worst offset %.0f ms", paired, worst*1000)
}
