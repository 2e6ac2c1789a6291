package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
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

// startDaemon runs "janusbridge run -c cfg" as a child process logging
// JSON, and returns it with a scanner of its log.
func startDaemon(t *testing.T, cfg string) (*exec.Cmd, *bufio.Scanner) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "run", "-c", cfg)
	cmd.Env = append(os.Environ(), "JANUSBRIDGE_MAIN=1")
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	return cmd, bufio.NewScanner(stderr)
}

// TestKillMidRecording SIGKILLs the daemon while it records, and checks
// every file decodes with its last packet within 1 s of the kill.
func TestKillMidRecording(t *testing.T) {
	ports := janustest.FreeUDPPorts(t, 4)
	j := janustest.StartJanus(t, janustest.Options{
		Plugins: []string{"streaming"},
		Streaming: janustest.MountpointConfig(1, "vp8", ports[0], ports[1]) +
			janustest.MountpointConfig(2, "h264", ports[2], ports[3]),
	})
	janustest.StartFeed(t, janustest.FeedOptions{VideoCodec: "vp8", AudioPort: ports[0], VideoPort: ports[1]})
	janustest.StartFeed(t, janustest.FeedOptions{VideoCodec: "h264", AudioPort: ports[2], VideoPort: ports[3]})
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
  path = "%[2]s/{bridge}.webm"
  [[bridge.sink]]
  type = "ogg"
  path = "%[2]s/{bridge}.ogg"
[[bridge]]
name = "h264"
plugin = "streaming"
mountpoint = 2
  [[bridge.sink]]
  type = "mkv"
  path = "%[2]s/{bridge}.mkv"
  [[bridge.sink]]
  type = "mp4"
  path = "%[2]s/{bridge}.mp4"
`, j.WSURL(), dir))
	cmd, log := startDaemon(t, cfg)
	opened := map[string]time.Time{}
	for len(opened) < 4 && log.Scan() {
		var l struct {
			Time time.Time `json:"time"`
			Msg  string    `json:"msg"`
			Path string    `json:"path"`
		}
		if json.Unmarshal(log.Bytes(), &l) == nil && l.Msg == "file opened" {
			opened[l.Path] = l.Time
		}
	}
	if len(opened) < 4 {
		t.Fatalf("files opened: %v", opened)
	}
	go func() {
		for log.Scan() { // keep the pipe drained
		}
	}()
	time.Sleep(4 * time.Second)
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	killed := time.Now()
	cmd.Wait()
	for path, start := range opened {
		t.Run(filepath.Base(path), func(t *testing.T) {
			out, err := exec.Command("ffmpeg", "-nostdin", "-v", "error", "-i", path, "-f", "null", "-").CombinedOutput()
			// A kill may cut the last element: ffmpeg says so, and decodes
			// the rest. Anything else is an error.
			var errs []string
			for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
				if l != "" && !strings.Contains(l, "File ended prematurely") {
					errs = append(errs, l)
				}
			}
			if err != nil || len(errs) > 0 {
				t.Errorf("decoding the killed file: %v %s", err, strings.Join(errs, "\n"))
			}
			last := lastPacket(t, path)
			if want := killed.Sub(start).Seconds(); last < want-1 {
				t.Errorf("last packet at %.2fs, the kill at %.2fs: more than 1 s lost", last, want)
			}
		})
	}
}

// lastPacket returns the latest packet time of path, in seconds.
func lastPacket(t *testing.T, path string) float64 {
	t.Helper()
	out, err := exec.Command("ffprobe", "-v", "error", "-show_entries", "packet=pts_time", "-of", "csv=p=0", path).Output()
	if err != nil {
		t.Fatalf("ffprobe %s: %v", path, err)
	}
	last := 0.0
	for _, l := range strings.Fields(string(out)) {
		if v, err := strconv.ParseFloat(strings.TrimSuffix(l, ","), 64); err == nil && v > last {
			last = v
		}
	}
	return last
}
