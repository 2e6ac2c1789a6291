package bridge_test

import (
	"context"
	"fmt"
	"math"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/janusbridge/janusbridge/bridge"
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
	stopped := runBridges(t, fmt.Sprintf(`
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

	for _, ext := range []string{"ogg", "webm", "mkv", "mp4"} {
		t.Run(ext, func(t *testing.T) {
			path := filepath.Join(dir, "mix."+ext)
			info := ffprobe(t, path)
			if got := info.codecs(); got != "audio:opus" {
				t.Errorf("streams %s, want audio:opus", got)
			}
			// From the first packet (the sidecar's wall-clock start) to the
			// stop, and most of the run.
			dur, _ := strconv.ParseFloat(info.Format.Duration, 64)
			want := stopped.Sub(readSidecar(t, path).Start).Seconds()
			if math.Abs(dur-want) > 0.4 || dur < runFor.Seconds()/2 {
				t.Errorf("duration %.2fs, want %.2fs (from the file's start to the stop) of the %v run", dur, want, runFor)
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

// TestAudioBridgeRestartRenegotiates asks an AudioBridge recv bridge for an
// ICE restart. Janus 1.1.2 cannot restart ICE on a session its AudioBridge
// offered, so the bridge joins again on a new handle; the recording goes on
// in the same file, which must cover the whole run with the gap kept.
func TestAudioBridgeRestartRenegotiates(t *testing.T) {
	janustest.RequireTools(t, "ffprobe")
	j := janustest.StartJanus(t, janustest.Options{Plugins: []string{"audiobridge"}, AudioBridge: audioBridgeRoom(5678)})
	joinTalker(t, j, 5678, "alice")
	dir := t.TempDir()
	rb := startBridge(t, fmt.Sprintf(`
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
  path = "%s/mix.ogg"
`, j.WSURL(), dir), nil)
	packets := func() uint64 {
		var n uint64
		for _, tr := range rb.B.Stats().Tracks {
			n += tr.Packets
		}
		return n
	}
	waitUntil(t, "mix packets", 15*time.Second, func() bool { return packets() >= 100 }) // 2 s of 20 ms packets
	first := rb.B.Status().HandleID
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := rb.B.RestartICE(ctx); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "joined again on a new handle", 15*time.Second, func() bool {
		st := rb.B.Status()
		return st.State == bridge.StateUp && st.HandleID != 0 && st.HandleID != first
	})
	before := packets()
	waitUntil(t, "mix packets after the renegotiation", 15*time.Second, func() bool { return packets() >= before+100 })
	stopped := time.Now()
	rb.stop(t)

	files, _ := filepath.Glob(filepath.Join(dir, "*.ogg"))
	if len(files) != 1 {
		t.Fatalf("files %v, want one: the recording goes on in the same file", files)
	}
	info := ffprobe(t, files[0])
	dur, _ := strconv.ParseFloat(info.Format.Duration, 64)
	// From the file's first packet (its sidecar's wall-clock start) to the
	// stop: a gap squeezed out would make the file shorter by the time the
	// renegotiation took.
	want := stopped.Sub(readSidecar(t, files[0]).Start).Seconds()
	t.Logf("%s: %.2fs, %.2fs from its start to the stop", filepath.Base(files[0]), dur, want)
	if info.codecs() != "audio:opus" || math.Abs(dur-want) > 0.4 {
		t.Errorf("%s, %.2fs, want audio:opus lasting %.2fs (gap kept)", info.codecs(), dur, want)
	}
	if errs := decodeErrors(t, files[0]); errs != "" {
		t.Errorf("decode errors: %.1000s", errs)
	}
}

// TestAudioBridgeMissingRoomAndWrongPin checks the states of SPEC §6: a
// bridge on a room that does not exist waits, one with a wrong pin fails,
// each with the reason in its status.
func TestAudioBridgeMissingRoomAndWrongPin(t *testing.T) {
	j := janustest.StartJanus(t, janustest.Options{Plugins: []string{"audiobridge"},
		AudioBridge: "room-5678: {\n\tdescription = \"locked\"\n\tsampling_rate = 48000\n\tpin = \"right\"\n}\n"})
	cfg := func(room int, pin string) string {
		return fmt.Sprintf(`
[janus]
servers = [%q]
[webrtc]
loopback_candidates = true
[[bridge]]
name = "mix"
plugin = "audiobridge"
room = %d
pin = %q
  [[bridge.sink]]
  type = "ogg"
  path = "%s/mix.ogg"
`, j.WSURL(), room, pin, t.TempDir())
	}
	for _, tt := range []struct {
		name, pin, state string
		room             int
		code             int
	}{
		{"missing room", "", bridge.StateWaiting, 1111, janus.AudioBridgeErrNoSuchRoom},
		{"wrong pin", "wrong", bridge.StateFailed, 5678, janus.AudioBridgeErrUnauthorized},
	} {
		t.Run(tt.name, func(t *testing.T) {
			rb := startBridge(t, cfg(tt.room, tt.pin), nil)
			waitUntil(t, "state "+tt.state, 15*time.Second, func() bool { return rb.B.Status().State == tt.state })
			if msg := rb.B.Status().LastError; !strings.Contains(msg, strconv.Itoa(tt.code)) {
				t.Errorf("last error %q, want the plugin's error %d", msg, tt.code)
			}
		})
	}
}
