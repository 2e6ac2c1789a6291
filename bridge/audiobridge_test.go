package bridge_test

import (
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"testing"
	"time"

	"github.com/janusbridge/janusbridge/internal/janustest"
	"github.com/janusbridge/janusbridge/janus"
)

// audioBridgeRoom is the janus.plugin.audiobridge.jcfg text of a 48 kHz
// room that takes plain RTP participants.
func audioBridgeRoom(room int) string {
	return fmt.Sprintf("room-%d: {\n\tdescription = \"talkers\"\n\tsampling_rate = 48000\n\tallow_rtp_participants = true\n}\n", room)
}

// joinTalker joins room as a plain RTP participant and starts an ffmpeg
// tone feeding it. The participant leaves with the test.
func joinTalker(t *testing.T, j *janustest.Janus, room uint64, name string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, err := janus.Connect(ctx, janus.Options{Servers: []string{j.WSURL()}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		s.Close(ctx)
	})
	h, err := s.Attach(ctx, "janus.plugin.audiobridge", "talker-"+name)
	if err != nil {
		t.Fatal(err)
	}
	joined, err := janus.AudioBridgeJoin(ctx, h, janus.NumID(room), janus.AudioBridgeJoinRequest{
		Display: name, RTP: &janus.AudioBridgeRTP{PayloadType: janustest.PTOpus},
	})
	if err != nil {
		t.Fatalf("%s joins: %v", name, err)
	}
	if joined.RTP == nil || joined.RTP.Port == 0 {
		t.Fatalf("%s joined without an RTP address: %+v", name, joined)
	}
	janustest.StartFeed(t, janustest.FeedOptions{Host: joined.RTP.IP, AudioPort: joined.RTP.Port})
}

// TestAudioBridgeRecord records the mix of an AudioBridge room where two
// plain RTP participants play a tone, into every file container that holds
// Opus: each file must hold one Opus stream about as long as the recording,
// decode without an error and not be silent.
func TestAudioBridgeRecord(t *testing.T) {
	janustest.RequireTools(t, "ffprobe")
	j := janustest.StartJanus(t, janustest.Options{Plugins: []string{"audiobridge"}, AudioBridge: audioBridgeRoom(5678)})
	joinTalker(t, j, 5678, "alice")
	joinTalker(t, j, 5678, "bob")
	dir := t.TempDir()
	const runFor = 8 * time.Second
	start := time.Now()
	runBridges(t, fmt.Sprintf(`
[janus]
servers = [%q]
[webrtc]
loopback_candidates = true
[[bridge]]
name = "mix"
plugin = "audiobridge"
room = 5678
  [[bridge.sink]]
  type = "ogg"
  path = "%[2]s/mix.ogg"
  [[bridge.sink]]
  type = "webm"
  path = "%[2]s/mix.webm"
  [[bridge.sink]]
  type = "mkv"
  path = "%[2]s/mix.mkv"
  [[bridge.sink]]
  type = "mp4"
  path = "%[2]s/mix.mp4"
`, j.WSURL(), dir), runFor)
	elapsed := time.Since(start).Seconds()

	for _, ext := range []string{"ogg", "webm", "mkv", "mp4"} {
		t.Run(ext, func(t *testing.T) {
			path := filepath.Join(dir, "mix."+ext)
			info := ffprobe(t, path)
			if got := info.codecs(); got != "audio:opus" {
				t.Errorf("streams %s, want audio:opus", got)
			}
			// The recording starts once the bridge has joined and ICE is up
			// (a second or two) and ends at the stop.
			dur, _ := strconv.ParseFloat(info.Format.Duration, 64)
			if dur < elapsed-4 || dur > elapsed+0.5 {
				t.Errorf("duration %.2fs, want about the %.2fs the bridge ran (minus its start)", dur, elapsed)
			}
			if errs := decodeErrors(t, path); errs != "" {
				t.Errorf("decode errors: %.1000s", errs)
			}
			if maxVol := maxVolume(t, path); maxVol < -40 {
				t.Errorf("max volume %.1f dB: the mix is silent", maxVol)
			} else {
				t.Logf("%s: %.2fs, max volume %.1f dB", ext, dur, maxVol)
			}
		})
	}
}

// maxVolume returns ffmpeg's volumedetect max_volume of path, in dB.
func maxVolume(t *testing.T, path string) float64 {
	t.Helper()
	out, err := exec.Command("ffmpeg", "-nostdin", "-hide_banner", "-i", path, "-af", "volumedetect", "-f", "null", "-").CombinedOutput()
	if err != nil {
		t.Fatalf("volumedetect %s: %v: %s", path, err, out)
	}
	m := regexp.MustCompile(`max_volume: (-?[0-9.]+|-inf) dB`).FindSubmatch(out)
	if m == nil {
		t.Fatalf("volumedetect %s: no max_volume in %s", path, out)
	}
	v, err := strconv.ParseFloat(string(m[1]), 64)
	if err != nil {
		return -200 // -inf: digital silence
	}
	return v
}
