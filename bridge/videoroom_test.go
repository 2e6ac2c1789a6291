package bridge_test

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/janusbridge/janusbridge/bridge"
	"github.com/janusbridge/janusbridge/config"
	"github.com/janusbridge/janusbridge/internal/janustest"
)

// waitFile waits until path exists.
func waitFile(t *testing.T, path string, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		if _, err := os.Stat(path); err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s did not appear within %v", path, within)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestVideoRoomFollowAll records a whole room: two publishers get a file
// each, a third joining mid-run gets its own, and the file of one that
// leaves is finalised (sidecar written) while the others go on.
func TestVideoRoomFollowAll(t *testing.T) {
	j := janustest.StartJanus(t, janustest.Options{
		Plugins:   []string{"videoroom"},
		VideoRoom: janustest.VideoRoomConfig(1234, "vp8,h264"),
	})
	pub := func(display, codec string) *janustest.Publisher {
		return janustest.StartPublisher(t, janustest.PublisherOptions{Server: j.WSURL(), Room: 1234, Display: display, VideoCodec: codec})
	}
	alice, bob := pub("alice", "vp8"), pub("bob", "h264")
	dir := t.TempDir()
	cfg, err := config.Parse("test.toml", []byte(fmt.Sprintf(`
[janus]
servers = [%q]
[webrtc]
loopback_candidates = true
[[bridge]]
name = "room"
plugin = "videoroom"
room = 1234
feeds = "all"
  [[bridge.sink]]
  type = "mkv"
  path = "%s/{feed}-{display}.mkv"
`, j.WSURL(), dir)))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	log := slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelInfo}))
	errc := make(chan error, 1)
	go func() { errc <- bridge.Run(ctx, cfg, log) }()

	file := func(p *janustest.Publisher, display string) string {
		return filepath.Join(dir, strconv.FormatUint(p.ID(), 10)+"-"+display+".mkv")
	}
	waitFile(t, file(alice, "alice"), 15*time.Second)
	waitFile(t, file(bob, "bob"), 15*time.Second)

	carol := pub("carol", "vp8")
	waitFile(t, file(carol, "carol"), 15*time.Second)
	time.Sleep(3 * time.Second)

	bob.Stop()
	waitFile(t, file(bob, "bob")+".json", 15*time.Second) // finalised while the bridge runs
	time.Sleep(2 * time.Second)
	cancel()
	if err := <-errc; err != nil {
		t.Fatal(err)
	}

	want := map[string]string{
		file(alice, "alice"): "audio:opus,video:vp8",
		file(bob, "bob"):     "audio:opus,video:h264",
		file(carol, "carol"): "audio:opus,video:vp8",
	}
	for path, codecs := range want {
		t.Run(filepath.Base(path), func(t *testing.T) {
			info := ffprobe(t, path)
			if got := info.codecs(); got != codecs {
				t.Errorf("streams %s, want %s", got, codecs)
			}
			// Let through: ffmpeg's null muxer retimes video at the nominal
			// frame rate and reports non-monotonic dts when two frames fall in
			// one frame slot (the pion test publishers pace their frames by
			// their own, loaded, clock). Decode errors proper must not occur,
			// and the file's own timestamps must increase.
			var errs []string
			for _, l := range strings.Split(strings.TrimSpace(decodeErrors(t, path)), "\n") {
				if l = strings.TrimSpace(l); l != "" && !strings.Contains(l, "non monotonically increasing dts to muxer") &&
					!strings.HasPrefix(l, "Last message repeated") {
					errs = append(errs, l)
				}
			}
			if len(errs) > 0 {
				t.Errorf("decode errors: %s", strings.Join(errs, "\n"))
			}
			checkIncreasing(t, path)
			if !firstVideoPacketIsKey(t, path) {
				t.Error("first video frame is not a keyframe")
			}
			if dur, _ := strconv.ParseFloat(info.Format.Duration, 64); dur < 2 {
				t.Errorf("duration %.2fs, want a few seconds", dur)
			}
			sc, err := os.ReadFile(path + ".json")
			if err != nil || !strings.Contains(string(sc), `"display": "`) {
				t.Errorf("sidecar: %v %s", err, sc)
			}
		})
	}
	if files, _ := filepath.Glob(filepath.Join(dir, "*.mkv")); len(files) != 3 {
		t.Errorf("files %v, want one per publisher", files)
	}
}

// checkIncreasing checks that each stream's packet timestamps in path
// strictly increase.
func checkIncreasing(t *testing.T, path string) {
	t.Helper()
	out, err := exec.Command("ffprobe", "-v", "error", "-show_entries", "packet=stream_index,pts", "-of", "csv=p=0", path).Output()
	if err != nil {
		t.Fatalf("ffprobe %s: %v", path, err)
	}
	last := map[string]int64{}
	for _, l := range strings.Fields(string(out)) {
		f := strings.Split(strings.TrimSuffix(l, ","), ",")
		if len(f) < 2 {
			continue
		}
		pts, err := strconv.ParseInt(f[1], 10, 64)
		if err != nil {
			continue
		}
		if prev, ok := last[f[0]]; ok && pts <= prev {
			t.Errorf("stream %s: pts %d after %d", f[0], pts, prev)
			return
		}
		last[f[0]] = pts
	}
}
