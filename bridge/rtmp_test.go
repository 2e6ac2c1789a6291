package bridge_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/janusbridge/janusbridge/bridge"
	"github.com/janusbridge/janusbridge/config"
	"github.com/janusbridge/janusbridge/internal/janustest"
	"github.com/janusbridge/janusbridge/janus"
	"github.com/janusbridge/janusbridge/sinks"
)

// rtmpBridge is one recv bridge run by a test, with its log kept.
type rtmpBridge struct {
	B       *bridge.Bridge
	session *janus.Session
	cancel  context.CancelFunc
	done    chan error
	logMu   sync.Mutex
	log     bytes.Buffer
}

func (rb *rtmpBridge) Write(p []byte) (int, error) {
	rb.logMu.Lock()
	defer rb.logMu.Unlock()
	return rb.log.Write(p)
}

func (rb *rtmpBridge) logText() string {
	rb.logMu.Lock()
	defer rb.logMu.Unlock()
	return rb.log.String()
}

// startRTMPBridge parses cfgText (one bridge) and runs it until the test
// ends.
func startRTMPBridge(t *testing.T, cfgText string) *rtmpBridge {
	t.Helper()
	cfg, err := config.Parse("test.toml", []byte(cfgText))
	if err != nil {
		t.Fatal(err)
	}
	rb := &rtmpBridge{done: make(chan error, 1)}
	log := slog.New(slog.NewTextHandler(rb, &slog.HandlerOptions{Level: slog.LevelDebug}))
	wo := bridge.WebRTCOptions(cfg.WebRTC)
	wo.Logger = log.With("component", "pion")
	api, err := janus.NewAPI(wo)
	if err != nil {
		t.Fatal(err)
	}
	so := bridge.SessionOptions(cfg)
	so.Logger = log.With("component", "janus")
	cctx, ccancel := context.WithTimeout(context.Background(), 10*time.Second)
	rb.session, err = janus.Connect(cctx, so)
	ccancel()
	if err != nil {
		t.Fatalf("connecting to Janus: %v", err)
	}
	rb.B, err = bridge.New(&cfg.Bridges[0], &bridge.Env{Session: rb.session, API: api, ICEServers: wo.ICEServers, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	rb.cancel = cancel
	go func() { rb.done <- rb.B.Run(ctx) }()
	t.Cleanup(func() {
		rb.cancel()
		select {
		case <-rb.done:
		case <-time.After(15 * time.Second):
			t.Error("bridge did not stop within 15 s")
		}
		sctx, scancel := context.WithTimeout(context.Background(), 3*time.Second)
		rb.session.Close(sctx)
		scancel()
		if t.Failed() {
			t.Logf("bridge log:\n%s", rb.logText())
		}
	})
	return rb
}

// rtmpStatus returns the status of the bridge's rtmp sink, nil before it exists.
func (rb *rtmpBridge) rtmpStatus() *sinks.RTMPStatus {
	for _, s := range rb.B.Stats().Sinks {
		if s.RTMP != nil {
			return s.RTMP
		}
	}
	return nil
}

// waitPublishing waits until the rtmp sink publishes and has sent media.
func (rb *rtmpBridge) waitPublishing(t *testing.T, within time.Duration, minBytes uint64) time.Time {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		if st := rb.rtmpStatus(); st != nil && st.State == sinks.RTMPPublishing && st.Bytes >= minBytes {
			return time.Now()
		}
		if time.Now().After(deadline) {
			t.Fatalf("rtmp sink not publishing after %v: %+v", within, rb.rtmpStatus())
		}
		time.Sleep(20 * time.Millisecond) // polling: no event to wait on
	}
}

// probeRTMP returns the streams of a live RTMP URL ("audio:aac,video:h264").
func probeRTMP(url string) (string, error) {
	out, err := exec.Command("ffprobe", "-v", "error", "-rw_timeout", "5000000", "-show_streams", "-of", "json", url).Output()
	if err != nil {
		return "", fmt.Errorf("ffprobe: %w: %s", err, out)
	}
	var info ffprobeInfo
	if err := json.Unmarshal(out, &info); err != nil {
		return "", err
	}
	return info.codecs(), nil
}

// TestRTMPSink sends an H.264+Opus mountpoint to nginx-rtmp: the stream
// holds H.264 and AAC and decodes cleanly; the key never shows in the log
// or the status; nginx killed and started again, the sink publishes again
// and the stream is readable within 5 s of nginx being back.
func TestRTMPSink(t *testing.T) {
	janustest.RequireTools(t, "ffprobe", "ffmpeg")
	ports := janustest.FreeUDPPorts(t, 2)
	j := janustest.StartJanus(t, janustest.Options{
		Plugins:   []string{"streaming"},
		Streaming: janustest.MountpointConfig(1, "h264", ports[0], ports[1]),
	})
	janustest.StartFeed(t, janustest.FeedOptions{VideoCodec: "h264", AudioPort: ports[0], VideoPort: ports[1]})
	ng := janustest.StartNginx(t)
	const key = "k3y-s3cret-42"
	url := ng.URL(key)
	rb := startRTMPBridge(t, fmt.Sprintf(`
[janus]
servers = [%q]
[webrtc]
loopback_candidates = true
[[bridge]]
name = "to-rtmp"
plugin = "streaming"
mountpoint = 1
  [[bridge.sink]]
  type = "rtmp"
  name = "push"
  url = %q
  audio_bitrate = 96000
`, j.WSURL(), url))
	rb.waitPublishing(t, 30*time.Second, 100000)

	codecs, err := probeRTMP(url)
	if err != nil {
		t.Fatal(err)
	}
	if codecs != "audio:aac,video:h264" {
		t.Errorf("stream has %s, want audio:aac,video:h264", codecs)
	}
	out, err := exec.Command("ffmpeg", "-nostdin", "-v", "error", "-rw_timeout", "5000000", "-i", url, "-t", "5", "-f", "null", "-").CombinedOutput()
	if err != nil || len(out) > 0 {
		t.Errorf("decoding 5 s of the stream: %v: %s", err, out)
	}

	// nginx goes away and comes back.
	before := rb.rtmpStatus().Connects
	ng.Stop()
	deadline := time.Now().Add(10 * time.Second)
	for rb.rtmpStatus().State == sinks.RTMPPublishing {
		if time.Now().After(deadline) {
			t.Fatal("the sink did not notice nginx going away")
		}
		time.Sleep(20 * time.Millisecond) // polling: no event to wait on
	}
	time.Sleep(3 * time.Second) // an outage of a few seconds: the sink retries meanwhile
	ng.Start()
	back := time.Now()
	republished := rb.waitPublishing(t, 10*time.Second, 0)
	codecs, err = probeRTMP(url)
	readable := time.Since(back)
	t.Logf("nginx back: publishing again after %v, stream probed readable after %v", republished.Sub(back).Round(time.Millisecond), readable.Round(time.Millisecond))
	if err != nil || codecs != "audio:aac,video:h264" {
		t.Errorf("after nginx's restart: %s, %v", codecs, err)
	}
	if readable > 5*time.Second {
		t.Errorf("stream readable %v after nginx was back, want within 5 s", readable)
	}
	st := rb.rtmpStatus()
	if st.Connects != before+1 {
		t.Errorf("connects %d, want %d", st.Connects, before+1)
	}
	if st.Transcoder.Out == 0 || st.Transcoder.Restarts != 0 {
		t.Errorf("transcoder %+v", st.Transcoder)
	}
	t.Logf("sink status: %+v", *st)

	// The key is in neither the log nor the API.
	js, _ := json.Marshal(rb.B.Stats())
	if strings.Contains(string(js), key) || strings.Contains(rb.logText(), key) {
		t.Errorf("the stream key shows in the status or the log")
	}
	if want := strings.TrimSuffix(url, key) + "<redacted>"; st.URL != want {
		t.Errorf("status URL %q, want %q", st.URL, want)
	}
}
