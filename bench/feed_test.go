package bench

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/janusbridge/janusbridge/internal/janustest"
)

// clipSeconds is the length of the pre-encoded clip that the feed loops.
const clipSeconds = 30

// startFeed starts ffmpeg sending VP8 (640x360, 25 fps, 800 kbit/s, a
// keyframe a second) and Opus (64 kbit/s) RTP into the mountpoint's ports.
//
// By default (JB_BENCH_FEED=clip) ffmpeg encodes a 30 s clip first with the
// settings of janustest.StartFeed, then loops it in real time with -c copy:
// encoding live costs ffmpeg about a quarter of a core, and on this shared
// 2-core machine a starved live encoder falls behind and catches up, so
// that its packet rate swung between 97 and 215 packets/s from one 15 s
// window to the next and the two sides were not measured under the same
// load. JB_BENCH_FEED=live uses janustest.StartFeed (live encoding) instead.
func startFeed(b *testing.B, audioPort, videoPort int) string {
	b.Helper()
	switch mode := os.Getenv("JB_BENCH_FEED"); mode {
	case "live":
		janustest.StartFeed(b, janustest.FeedOptions{VideoCodec: "vp8", AudioPort: audioPort, VideoPort: videoPort})
		return "live ffmpeg encoding (janustest.StartFeed)"
	case "", "clip":
	default:
		b.Fatalf("JB_BENCH_FEED=%q: want clip or live", mode)
	}
	dir := b.TempDir()
	clip := encodeClip(b, dir, clipSeconds)
	rtp := func(port int) string { return fmt.Sprintf("rtp://127.0.0.1:%d?pkt_size=1200", port) }
	stderr, err := os.Create(filepath.Join(dir, "ffmpeg.stderr"))
	if err != nil {
		b.Fatal(err)
	}
	cmd := exec.Command("ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error",
		"-re", "-stream_loop", "-1", "-i", clip,
		"-map", "0:v", "-c", "copy", "-payload_type", strconv.Itoa(janustest.PTVP8), "-f", "rtp", rtp(videoPort),
		"-map", "0:a", "-c", "copy", "-payload_type", strconv.Itoa(janustest.PTOpus), "-f", "rtp", rtp(audioPort))
	cmd.Stdout, cmd.Stderr = nil, stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	err = cmd.Start()
	stderr.Close()
	if err != nil {
		b.Fatalf("ffmpeg: starting the feed: %v", err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	b.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(3 * time.Second):
			cmd.Process.Kill()
			<-done
		}
	})
	return fmt.Sprintf("a %d s clip encoded once, looped by ffmpeg -re -stream_loop -1 -c copy", clipSeconds)
}

// encodeClip encodes a VP8+Opus WebM clip of the given length into dir with
// the settings of janustest.StartFeed (640x360, 25 fps, 800 kbit/s, a
// keyframe a second; Opus 64 kbit/s) and returns its path.
func encodeClip(b *testing.B, dir string, seconds int) string {
	b.Helper()
	clip := filepath.Join(dir, "clip.webm")
	enc := exec.Command("ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error",
		"-f", "lavfi", "-i", "testsrc2=size=640x360:rate=25",
		"-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000",
		"-map", "0:v", "-c:v", "libvpx", "-deadline", "realtime", "-cpu-used", "8",
		"-lag-in-frames", "0", "-error-resilient", "1", "-auto-alt-ref", "0",
		"-b:v", "800k", "-g", "25", "-keyint_min", "25",
		"-map", "1:a", "-c:a", "libopus", "-ar", "48000", "-ac", "2", "-b:a", "64k", "-application", "lowdelay",
		"-t", strconv.Itoa(seconds), "-y", clip)
	if out, err := enc.CombinedOutput(); err != nil {
		b.Fatalf("ffmpeg: encoding the clip: %v: %s", err, out)
	}
	return clip
}
