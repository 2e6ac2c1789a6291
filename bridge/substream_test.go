package bridge_test

import (
	"fmt"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/janusbridge/janusbridge/internal/janustest"
)

// TestStreamingSubstream records a simulcast VP8 mountpoint (three ffmpeg
// encodings, 160x90, 320x180 and 640x360, on the stream's three ports) with
// two bridges: substream = 0 and substream = 1. Each file's video must be
// at the resolution of its substream: once a frame of that width has come,
// none wider (without substream, Janus sends the highest). Narrower frames
// are allowed: Janus falls back to a lower substream for a while when the
// feed of the chosen one stalls, which a loaded machine makes happen.
func TestStreamingSubstream(t *testing.T) {
	janustest.RequireTools(t, "ffprobe")
	ports := janustest.FreeUDPPorts(t, 3)
	j := janustest.StartJanus(t, janustest.Options{
		Plugins: []string{"streaming"},
		Streaming: fmt.Sprintf("sim: {\n\ttype = \"rtp\"\n\tid = 7\n\tdescription = \"simulcast\"\n\tmedia = (\n\t\t"+
			"{ type = \"video\" mid = \"v\" port = %d port2 = %d port3 = %d pt = %d codec = \"vp8\" simulcast = true }\n\t)\n}\n",
			ports[0], ports[1], ports[2], janustest.PTVP8),
	})
	widths := []int{160, 320, 640}
	for i, w := range widths {
		janustest.StartFeed(t, janustest.FeedOptions{VideoPort: ports[i], Width: w, Height: w * 9 / 16, FPS: 15, VideoBitrate: fmt.Sprintf("%dk", w/2)})
	}
	dir := t.TempDir()
	runBridges(t, fmt.Sprintf(`
[janus]
servers = [%q]
[webrtc]
loopback_candidates = true
[[bridge]]
name = "low"
plugin = "streaming"
mountpoint = 7
substream = 0
  [[bridge.sink]]
  type = "webm"
  path = "%[2]s/{bridge}.webm"
[[bridge]]
name = "mid"
plugin = "streaming"
mountpoint = 7
substream = 1
  [[bridge.sink]]
  type = "webm"
  path = "%[2]s/{bridge}.webm"
`, j.WSURL(), dir), 8*time.Second)

	for name, want := range map[string]int{"low": 160, "mid": 320} {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(dir, name+".webm")
			out, err := exec.Command("ffprobe", "-v", "error", "-select_streams", "v:0", "-show_entries", "frame=width",
				"-of", "csv=p=0", path).Output()
			if err != nil {
				t.Fatalf("ffprobe frames %s: %v", path, err)
			}
			// Once on the chosen substream, never above it (below: a fallback).
			count := map[int]int{}
			on, above := false, 0
			for _, f := range strings.Fields(string(out)) {
				w, err := strconv.Atoi(strings.TrimSuffix(f, ","))
				if err != nil {
					t.Fatalf("ffprobe frames %s: %q", path, f)
				}
				count[w]++
				on = on || w == want
				if on && w > want {
					above++
				}
			}
			t.Logf("%s: frame widths %v", name, count)
			if count[want] < 5 { // 8 s at 15 frames/s, but a loaded machine starves the encoders
				t.Errorf("%d frames %d pixels wide, want at least 5", count[want], want)
			}
			if above > 0 {
				t.Errorf("%d frames wider than %d after the first at that width: a higher substream came through", above, want)
			}
		})
	}
}
