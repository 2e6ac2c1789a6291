package bridge_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/janusbridge/janusbridge/bridge"
	"github.com/janusbridge/janusbridge/config"
	"github.com/janusbridge/janusbridge/internal/janustest"
)

// ffprobeInfo is what the tests read of ffprobe's JSON.
type ffprobeInfo struct {
	Streams []struct {
		CodecType string `json:"codec_type"`
		CodecName string `json:"codec_name"`
	} `json:"streams"`
	Format struct {
		Duration string `json:"duration"`
	} `json:"format"`
}

func ffprobe(t *testing.T, path string) ffprobeInfo {
	t.Helper()
	out, err := exec.Command("ffprobe", "-v", "error", "-show_streams", "-show_format", "-of", "json", path).Output()
	if err != nil {
		t.Fatalf("ffprobe %s: %v", path, err)
	}
	var info ffprobeInfo
	if err := json.Unmarshal(out, &info); err != nil {
		t.Fatal(err)
	}
	return info
}

func (i ffprobeInfo) codecs() string {
	var cs []string
	for _, s := range i.Streams {
		cs = append(cs, s.CodecType+":"+s.CodecName)
	}
	sort.Strings(cs)
	return strings.Join(cs, ",")
}

// decodeErrors runs a full decode and returns what ffmpeg complained of.
// ffmpeg's null muxer retimes video to the frame rate it guessed and says
// "non monotonically increasing dts to muxer" when two frames of uneven
// spacing land in one slot: that line alone is no complaint about the file
// when the file's own timestamps increase strictly in every stream.
func decodeErrors(t *testing.T, path string) string {
	t.Helper()
	out, err := exec.Command("ffmpeg", "-nostdin", "-v", "error", "-i", path, "-f", "null", "-").CombinedOutput()
	if err != nil {
		return fmt.Sprintf("%v: %s", err, out)
	}
	msg := strings.TrimSpace(string(out))
	retimed := msg != ""
	for _, l := range strings.Split(msg, "\n") {
		retimed = retimed && strings.Contains(l, "non monotonically increasing dts to muxer")
	}
	if retimed {
		if derr := janustest.DTSIncrease(path); derr != nil {
			return fmt.Sprintf("%s (%v)", msg, derr)
		}
		t.Logf("%s: ffmpeg's null muxer retimed (%d lines); the file's timestamps increase strictly", filepath.Base(path), strings.Count(msg, "\n")+1)
		return ""
	}
	return msg
}

// firstVideoPacketIsKey tells whether the first video packet of path is a
// keyframe.
func firstVideoPacketIsKey(t *testing.T, path string) bool {
	t.Helper()
	out, err := exec.Command("ffprobe", "-v", "error", "-select_streams", "v:0", "-read_intervals", "%+#1",
		"-show_entries", "packet=flags", "-of", "csv=p=0", path).Output()
	if err != nil {
		t.Fatalf("ffprobe packets %s: %v", path, err)
	}
	return strings.HasPrefix(strings.TrimSpace(string(out)), "K")
}

// sidecar is the part of a sidecar file the tests check.
type sidecar struct {
	Start time.Time `json:"start"`
}

func readSidecar(t *testing.T, path string) sidecar {
	t.Helper()
	data, err := os.ReadFile(path + ".json")
	if err != nil {
		t.Fatalf("sidecar: %v", err)
	}
	var s sidecar
	if err := json.Unmarshal(data, &s); err != nil {
		t.Fatalf("sidecar %s: %v", path, err)
	}
	return s
}

// runBridges parses cfgText, runs it until stopAfter and returns when every
// bridge has stopped.
func runBridges(t *testing.T, cfgText string, stopAfter time.Duration) time.Time {
	t.Helper()
	cfg, err := config.Parse("test.toml", []byte(cfgText))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), stopAfter)
	defer cancel()
	log := slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelInfo}))
	errc := make(chan error, 1)
	go func() { errc <- bridge.Run(ctx, cfg, log) }()
	<-ctx.Done()
	stopped := time.Now()
	if err := <-errc; err != nil {
		t.Fatalf("run: %v", err)
	}
	return stopped
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

var _ io.Writer = testWriter{}

// TestRecordMountpoints records a VP8+Opus mountpoint to webm, mkv and ogg
// and an H.264+Opus one to mkv and mp4, and forwards the VP8 one as RTP.
func TestRecordMountpoints(t *testing.T) {
	ports := janustest.FreeUDPPorts(t, 4)
	j := janustest.StartJanus(t, janustest.Options{
		Plugins: []string{"streaming"},
		Streaming: janustest.MountpointConfig(1, "vp8", ports[0], ports[1]) +
			janustest.MountpointConfig(2, "h264", ports[2], ports[3]),
	})
	janustest.StartFeed(t, janustest.FeedOptions{VideoCodec: "vp8", AudioPort: ports[0], VideoPort: ports[1]})
	janustest.StartFeed(t, janustest.FeedOptions{VideoCodec: "h264", AudioPort: ports[2], VideoPort: ports[3]})
	dir := t.TempDir()
	if d := os.Getenv("JB_KEEP_DIR"); d != "" {
		dir = d
	}
	rtpPort := janustest.FreeUDPPorts(t, 2)[0]
	sdpPath := filepath.Join(dir, "vp8.sdp")
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
  type = "webm"
  path = "%[2]s/{bridge}.webm"
  [[bridge.sink]]
  type = "mkv"
  path = "%[2]s/{bridge}.mkv"
  [[bridge.sink]]
  type = "ogg"
  path = "%[2]s/{bridge}.ogg"
# Forwarded only: no framer on this bridge's media path.
[[bridge]]
name = "fwd"
plugin = "streaming"
mountpoint = 1
  [[bridge.sink]]
  type = "rtp"
  host = "127.0.0.1"
  port = %[3]d
  sdp = %[4]q
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
`, j.WSURL(), dir, rtpPort, sdpPath)

	// An RTP player reads the forward while the bridge runs.
	player := make(chan string, 1)
	go func() {
		for i := 0; i < 100; i++ { // wait for the SDP file
			if _, err := os.Stat(sdpPath); err == nil {
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
		// The player keeps the stream's own timestamps: retimed to the
		// frame rate ffmpeg guesses, two frames spaced unevenly can share
		// one slot ("non monotonically increasing dts", seen in CI; a
		// player joining mid-stream shifts a stream once, when the first
		// sender reports arrive).
		out, err := exec.Command("ffmpeg", "-nostdin", "-v", "error", "-protocol_whitelist", "file,udp,rtp",
			"-i", sdpPath, "-t", "3", "-fps_mode", "passthrough", "-enc_time_base", "-1", "-f", "null", "-").CombinedOutput()
		if err != nil {
			player <- fmt.Sprintf("%v: %s", err, out)
			return
		}
		player <- string(out)
	}()

	stopped := runBridges(t, cfg, 8*time.Second)

	want := map[string]string{
		"vp8.webm": "audio:opus,video:vp8",
		"vp8.mkv":  "audio:opus,video:vp8",
		"vp8.ogg":  "audio:opus",
		"h264.mkv": "audio:opus,video:h264",
		"h264.mp4": "audio:opus,video:h264",
	}
	for name, codecs := range want {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(dir, name)
			info := ffprobe(t, path)
			if got := info.codecs(); got != codecs {
				t.Errorf("streams %s, want %s", got, codecs)
			}
			if errs := decodeErrors(t, path); errs != "" {
				t.Errorf("decode errors: %s", errs)
			}
			if strings.Contains(codecs, "video") && !firstVideoPacketIsKey(t, path) {
				t.Error("first video frame is not a keyframe")
			}
			dur, _ := strconv.ParseFloat(info.Format.Duration, 64)
			expected := stopped.Sub(readSidecar(t, path).Start).Seconds()
			if math.Abs(dur-expected) > 0.5 {
				t.Errorf("duration %.2fs, want %.2fs (from the first frame to the stop) ± 0.5s", dur, expected)
			}
		})
	}
	select {
	case out := <-player:
		if out != "" {
			t.Errorf("ffmpeg playing the rtp sink: %s", out)
		}
	case <-time.After(10 * time.Second):
		t.Error("ffmpeg playing the rtp sink did not finish")
	}
}
