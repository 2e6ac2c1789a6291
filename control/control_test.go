package control_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/janusbridge/janusbridge/bridge"
	"github.com/janusbridge/janusbridge/config"
	"github.com/janusbridge/janusbridge/control"
	"github.com/janusbridge/janusbridge/internal/janustest"
	"github.com/janusbridge/janusbridge/janus"
)

// env is a real Janus with one fed VP8+Opus mountpoint (id 1).
type env struct {
	j   *janustest.Janus
	dir string
}

func startEnv(t *testing.T) *env {
	t.Helper()
	ports := janustest.FreeUDPPorts(t, 2)
	j := janustest.StartJanus(t, janustest.Options{
		Plugins:   []string{"streaming"},
		Streaming: janustest.MountpointConfig(1, "vp8", ports[0], ports[1]),
	})
	janustest.StartFeed(t, janustest.FeedOptions{VideoCodec: "vp8", AudioPort: ports[0], VideoPort: ports[1],
		Width: 320, Height: 180, VideoBitrate: "300k"})
	return &env{j: j, dir: t.TempDir()}
}

// header is the [janus] and [webrtc] part every test configuration shares.
func (e *env) header() string {
	return fmt.Sprintf(`
[janus]
servers = [%q]
reconnect_min = "200ms"
reconnect_max = "1s"
[webrtc]
loopback_candidates = true
[defaults]
shutdown_timeout = "5s"
`, e.j.WSURL())
}

// webmBridge is a streaming bridge recording mountpoint 1 to dir/name.webm.
func (e *env) webmBridge(name, file string) string {
	return fmt.Sprintf(`
[[bridge]]
name = %q
plugin = "streaming"
mountpoint = 1
  [[bridge.sink]]
  type = "webm"
  name = "archive"
  path = %q
`, name, filepath.Join(e.dir, file))
}

func parse(t *testing.T, text string) *config.Config {
	t.Helper()
	cfg, err := config.Parse("test.toml", []byte(text))
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

func logger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelInfo}))
}

// startDaemon starts the bridges of cfg; they are stopped at the test's end.
func startDaemon(t *testing.T, cfg *config.Config) *bridge.Daemon {
	t.Helper()
	d, err := bridge.Start(cfg, logger(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := d.Close(); err != nil {
			t.Error(err)
		}
	})
	return d
}

// startServer serves the control API of d on a free loopback port.
func startServer(t *testing.T, opts control.Options) string {
	t.Helper()
	opts.Listen = "127.0.0.1:0"
	if opts.SampleEvery == 0 {
		opts.SampleEvery = 300 * time.Millisecond
	}
	opts.Logger = logger(t)
	srv, err := control.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	})
	return "http://" + srv.Addr().String()
}

// client calls one server, with a token or none.
type client struct {
	t     *testing.T
	base  string
	token string
}

// do sends a request and returns the status code and body.
func (c client) do(method, path, body string) (int, []byte) {
	c.t.Helper()
	req, err := http.NewRequest(method, c.base+path, strings.NewReader(body))
	if err != nil {
		c.t.Fatal(err)
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		c.t.Fatal(err)
	}
	return resp.StatusCode, b
}

// must sends a request that must answer want, and decodes its JSON into v
// (when v is not nil).
func (c client) must(method, path, body string, want int, v any) []byte {
	c.t.Helper()
	code, b := c.do(method, path, body)
	if code != want {
		c.t.Fatalf("%s %s: %d %s, want %d", method, path, code, b, want)
	}
	if v != nil {
		if err := json.Unmarshal(b, v); err != nil {
			c.t.Fatalf("%s %s: %v in %s", method, path, err, b)
		}
	}
	return b
}

// bridgeView fetches one bridge.
func (c client) bridgeView(name string) control.Bridge {
	c.t.Helper()
	var v control.Bridge
	c.must("GET", "/api/v1/bridges/"+name, "", http.StatusOK, &v)
	return v
}

// waitFor polls cond (state changes have no event a client can wait on)
// until it holds, at most within.
func waitFor(t *testing.T, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v", what, within)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// metric returns the value of the sample of the Prometheus text whose name
// and labels match, -1 when absent.
func metric(text, name string, labels map[string]string) float64 {
	for line := range strings.SplitSeq(text, "\n") {
		rest, ok := strings.CutPrefix(line, name)
		if !ok || rest == "" || rest[0] != '{' && rest[0] != ' ' {
			continue
		}
		lbl, val := "", rest
		if rest[0] == '{' {
			end := strings.Index(rest, "}")
			lbl, val = rest[1:end], rest[end+1:]
		}
		match := true
		for k, v := range labels {
			if !strings.Contains(","+lbl+",", ","+k+"="+strconv.Quote(v)+",") {
				match = false
			}
		}
		if match {
			f, err := strconv.ParseFloat(strings.TrimSpace(val), 64)
			if err == nil {
				return f
			}
		}
	}
	return -1
}

// TestAPI runs a recording bridge against real Janus and calls every
// endpoint on two servers over the same daemon, one without auth and one
// with a token.
func TestAPI(t *testing.T) {
	e := startEnv(t)
	cfg := parse(t, e.header()+e.webmBridge("cam", "{bridge}-{start}.webm"))
	d := startDaemon(t, cfg)
	const token = "s3cret-token"
	open := client{t: t, base: startServer(t, control.Options{Daemon: d})}
	authed := client{t: t, base: startServer(t, control.Options{Daemon: d, Token: token}), token: token}
	anon := client{t: t, base: authed.base}
	wrong := client{t: t, base: authed.base, token: "nope"}

	waitFor(t, 20*time.Second, "cam up", func() bool { return d.Bridge("cam").Status().State == bridge.StateUp })

	t.Run("auth", func(t *testing.T) {
		// Every endpoint but /healthz needs the token; actions are checked
		// with a bridge that does not exist, so nothing changes here.
		for _, ep := range []struct{ method, path string }{
			{"GET", "/readyz"}, {"GET", "/metrics"}, {"GET", "/api/v1/bridges"}, {"GET", "/api/v1/bridges/cam"},
			{"POST", "/api/v1/bridges/x/ice-restart"}, {"POST", "/api/v1/bridges/x/tracks"},
			{"POST", "/api/v1/bridges/x/stop"}, {"POST", "/api/v1/bridges/x/start"}, {"POST", "/api/v1/reload"},
			{"GET", "/"},
		} {
			for _, c := range []client{anon, wrong} {
				c.t = t
				if code, body := c.do(ep.method, ep.path, ""); code != http.StatusUnauthorized {
					t.Errorf("%s %s with token %q: %d %s, want 401", ep.method, ep.path, c.token, code, body)
				}
			}
		}
		anon.t = t
		anon.must("GET", "/healthz", "", http.StatusOK, nil)
		anon.must("GET", "/?token="+token, "", http.StatusOK, nil)
		anon.must("GET", "/api/v1/bridges?token="+token, "", http.StatusUnauthorized, nil) // the page only
		if _, err := control.New(control.Options{Listen: "0.0.0.0:0", Daemon: d}); err == nil {
			t.Error("a non-loopback listener without a token was accepted")
		}
	})

	for _, c := range []client{open, authed} {
		t.Run("token="+strconv.FormatBool(c.token != ""), func(t *testing.T) {
			c.t = t
			c.must("GET", "/healthz", "", http.StatusOK, nil)
			var ready control.Ready
			c.must("GET", "/readyz", "", http.StatusOK, &ready)
			if !ready.Ready || ready.Janus != "connected" {
				t.Errorf("readyz: %+v", ready)
			}

			// Tracks and bitrates from the recording.
			var v control.Bridge
			waitFor(t, 10*time.Second, "bitrates", func() bool {
				v = c.bridgeView("cam")
				return len(v.Tracks) == 2 && v.Tracks[0].BitrateBPS > 0 && v.Tracks[1].BitrateBPS > 0 &&
					len(v.Sinks) == 1 && v.Sinks[0].Bytes > 0
			})
			var list []control.Bridge
			c.must("GET", "/api/v1/bridges", "", http.StatusOK, &list)
			if len(list) != 1 || list[0].Name != "cam" || list[0].Plugin != "streaming" || list[0].Direction != "recv" {
				t.Fatalf("bridges: %+v", list)
			}
			if v.SessionID == 0 || v.HandleID == 0 || v.Server != e.j.WSURL() || v.State != "up" {
				t.Errorf("bridge: %+v", v.Status)
			}
			codecs := map[string]string{}
			for _, tr := range v.Tracks {
				codecs[tr.Kind] = tr.Codec
				if tr.Packets == 0 || tr.Bytes == 0 {
					t.Errorf("track %+v: no packets", tr)
				}
				// The feed: video at 300 kbit/s, Opus at about 64 kbit/s.
				if tr.BitrateBPS < 10_000 || tr.BitrateBPS > 2_000_000 {
					t.Errorf("track %s: bitrate %d bit/s out of range", tr.Kind, tr.BitrateBPS)
				}
			}
			if codecs["audio"] != "opus" || codecs["video"] != "vp8" {
				t.Errorf("codecs %v", codecs)
			}
			if len(v.Sinks) != 1 || v.Sinks[0].Name != "archive" || v.Sinks[0].Type != "webm" ||
				!strings.HasPrefix(v.Sinks[0].Path, filepath.Join(e.dir, "cam-")) || v.Sinks[0].Bytes == 0 {
				t.Errorf("sinks %+v", v.Sinks)
			}
			c.must("GET", "/api/v1/bridges/nope", "", http.StatusNotFound, nil)

			// Metrics move while the bridge records.
			m1 := string(c.must("GET", "/metrics", "", http.StatusOK, nil))
			video := map[string]string{"bridge": "cam", "feed": "", "kind": "video", "direction": "in"}
			p1 := metric(m1, "janusbridge_rtp_packets_total", video)
			s1 := metric(m1, "janusbridge_sink_bytes_total", map[string]string{"bridge": "cam", "sink": "archive"})
			waitFor(t, 5*time.Second, "counters moving", func() bool {
				m2 := string(c.must("GET", "/metrics", "", http.StatusOK, nil))
				return metric(m2, "janusbridge_rtp_packets_total", video) > p1 &&
					metric(m2, "janusbridge_sink_bytes_total", map[string]string{"bridge": "cam", "sink": "archive"}) > s1
			})
			if p1 <= 0 || s1 <= 0 {
				t.Errorf("packets %v, sink bytes %v", p1, s1)
			}
			for _, want := range []struct {
				name   string
				labels map[string]string
			}{
				{"janusbridge_bridge_up", map[string]string{"bridge": "cam"}},
				{"janusbridge_rtp_bytes_total", map[string]string{"bridge": "cam", "feed": "", "kind": "audio", "direction": "in"}},
				{"janusbridge_rtp_lost_packets_total", map[string]string{"bridge": "cam", "feed": ""}},
				{"janusbridge_rtcp_nack_total", map[string]string{"bridge": "cam", "direction": "in"}},
				{"janusbridge_rtcp_pli_total", map[string]string{"bridge": "cam", "direction": "in"}},
				{"janusbridge_sink_errors_total", map[string]string{"bridge": "cam", "sink": "archive"}},
				{"janusbridge_sink_dropped_packets_total", map[string]string{"bridge": "cam", "sink": "archive"}},
				{"janusbridge_janus_reconnects_total", nil},
				{"janusbridge_ice_restarts_total", map[string]string{"bridge": "cam"}},
				{"janusbridge_renegotiations_total", map[string]string{"bridge": "cam"}},
				{"janusbridge_janus_dropped_messages_total", map[string]string{"reason": "bad"}},
				{"janusbridge_janus_dropped_messages_total", map[string]string{"reason": "unrouted"}},
			} {
				if metric(m1, want.name, want.labels) < 0 {
					t.Errorf("no %s%v in /metrics", want.name, want.labels)
				}
			}
			if metric(m1, "janusbridge_bridge_up", map[string]string{"bridge": "cam"}) != 1 {
				t.Errorf("bridge_up wrong:\n%s", grepLines(m1, "janusbridge_"))
			}

			// Actions the bridge refuses.
			c.must("POST", "/api/v1/bridges/cam/tracks", `{"action":"remove","mid":"v"}`, http.StatusBadRequest, nil)
			c.must("POST", "/api/v1/bridges/cam/tracks", `{"action":`, http.StatusBadRequest, nil)
			c.must("POST", "/api/v1/bridges/nope/stop", "", http.StatusNotFound, nil)
			c.must("POST", "/api/v1/reload", "", http.StatusNotImplemented, nil)

			// ICE restart: the plugin re-offers, the counter moves, media goes on.
			before := c.bridgeView("cam")
			c.must("POST", "/api/v1/bridges/cam/ice-restart", "", http.StatusAccepted, nil)
			waitFor(t, 10*time.Second, "ICE restart counted and media flowing", func() bool {
				v := c.bridgeView("cam")
				return v.ICERestarts == before.ICERestarts+1 && v.State == "up" && v.Tracks[0].Packets > before.Tracks[0].Packets
			})
			m3 := string(c.must("GET", "/metrics", "", http.StatusOK, nil))
			if got := metric(m3, "janusbridge_ice_restarts_total", map[string]string{"bridge": "cam"}); got != float64(before.ICERestarts+1) {
				t.Errorf("ice_restarts_total %v, want %d", got, before.ICERestarts+1)
			}

			// Stop: the file is finalised, readyz says why it is not ready.
			path := c.bridgeView("cam").Sinks[0].Path
			c.must("POST", "/api/v1/bridges/cam/stop", "", http.StatusOK, &v)
			if v.State != "stopped" {
				t.Errorf("after stop: state %q", v.State)
			}
			c.must("GET", "/readyz", "", http.StatusServiceUnavailable, &ready)
			if ready.Ready || len(ready.NotReady) != 1 || ready.NotReady[0].Name != "cam" || ready.NotReady[0].State != "stopped" {
				t.Errorf("readyz after stop: %+v", ready)
			}
			checkPlayable(t, path)
			m4 := string(c.must("GET", "/metrics", "", http.StatusOK, nil))
			if metric(m4, "janusbridge_bridge_up", map[string]string{"bridge": "cam"}) != 0 {
				t.Error("bridge_up not 0 after stop")
			}

			// Start: a new handle, a new file, ready again.
			c.must("POST", "/api/v1/bridges/cam/start", "", http.StatusOK, nil)
			waitFor(t, 20*time.Second, "cam up again", func() bool {
				v = c.bridgeView("cam")
				return v.State == "up" && len(v.Sinks) == 1 && v.Sinks[0].Path != "" && v.Sinks[0].Path != path
			})
			if v.HandleID == before.HandleID || v.SessionID != before.SessionID {
				t.Errorf("after start: handle %d session %d, before %d %d", v.HandleID, v.SessionID, before.HandleID, before.SessionID)
			}
			c.must("GET", "/readyz", "", http.StatusOK, nil)
		})
	}
}

// checkPlayable checks a finalised file with ffprobe and ffmpeg.
func checkPlayable(t *testing.T, path string) {
	t.Helper()
	out, err := exec.Command("ffprobe", "-v", "error", "-show_entries", "format=duration", "-of", "csv=p=0", path).CombinedOutput()
	if err != nil {
		t.Fatalf("ffprobe %s: %v: %s", path, err, out)
	}
	if d, err := strconv.ParseFloat(strings.TrimSpace(string(out)), 64); err != nil || d <= 0 {
		t.Errorf("%s: duration %q", path, out)
	}
	if out, err := exec.Command("ffmpeg", "-nostdin", "-v", "error", "-i", path, "-f", "null", "-").CombinedOutput(); err != nil || len(out) > 0 {
		t.Errorf("%s: decode: %v %s", path, err, out)
	}
}

func grepLines(text, prefix string) string {
	var out []string
	for line := range strings.SplitSeq(text, "\n") {
		if strings.HasPrefix(line, prefix) {
			out = append(out, line)
		}
	}
	return strings.Join(out, "\n")
}

// TestReadyzJanusRestart stops Janus under a running bridge: readyz turns
// 503 naming Janus and the bridge, and 200 again once Janus is back and the
// bridge has re-created its session and handle.
func TestReadyzJanusRestart(t *testing.T) {
	e := startEnv(t)
	d := startDaemon(t, parse(t, e.header()+e.webmBridge("cam", "{bridge}-{start}-{seq}.webm")))
	c := client{t: t, base: startServer(t, control.Options{Daemon: d})}
	waitFor(t, 20*time.Second, "ready", func() bool { code, _ := c.do("GET", "/readyz", ""); return code == http.StatusOK })
	before := c.bridgeView("cam")

	e.j.Stop()
	var ready control.Ready
	waitFor(t, 10*time.Second, "not ready", func() bool {
		code, b := c.do("GET", "/readyz", "")
		return code == http.StatusServiceUnavailable && json.Unmarshal(b, &ready) == nil
	})
	if ready.Janus != "disconnected" || len(ready.NotReady) != 1 || ready.NotReady[0].Name != "cam" ||
		ready.NotReady[0].State != bridge.StateReconnecting {
		t.Errorf("readyz with Janus stopped: %+v", ready)
	}
	m := string(c.must("GET", "/metrics", "", http.StatusOK, nil))
	if metric(m, "janusbridge_janus_connected", nil) != 0 || metric(m, "janusbridge_bridge_up", map[string]string{"bridge": "cam"}) != 0 {
		t.Errorf("metrics with Janus stopped:\n%s", grepLines(m, "janusbridge_janus"))
	}

	e.j.Restart(t)
	waitFor(t, 30*time.Second, "ready again", func() bool {
		code, b := c.do("GET", "/readyz", "")
		return code == http.StatusOK && json.Unmarshal(b, &ready) == nil
	})
	after := c.bridgeView("cam")
	if after.SessionID == before.SessionID || after.HandleID == before.HandleID {
		t.Errorf("session/handle %d/%d before, %d/%d after a Janus restart", before.SessionID, before.HandleID, after.SessionID, after.HandleID)
	}
	packets := func() (n uint64) {
		for _, tr := range c.bridgeView("cam").Tracks {
			n += tr.Packets
		}
		return n
	}
	p := packets()
	waitFor(t, 10*time.Second, "media after restart", func() bool { return packets() > p+50 })
	m = string(c.must("GET", "/metrics", "", http.StatusOK, nil))
	if metric(m, "janusbridge_janus_reconnects_total", nil) < 1 {
		t.Errorf("janus_reconnects_total did not move:\n%s", grepLines(m, "janusbridge_janus"))
	}
}

// TestReload reloads through the API against real Janus: an unchanged
// bridge keeps its session and handle, a removed one is stopped with its
// file finalised, a changed one is restarted on its new configuration, an
// added one starts. Invalid files are refused whole, the bridges untouched.
func TestReload(t *testing.T) {
	e := startEnv(t)
	file := filepath.Join(e.dir, "janusbridge.toml")
	write := func(text string) {
		if err := os.WriteFile(file, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	first := e.header() + e.webmBridge("keep", "keep.webm") + e.webmBridge("gone", "gone.webm") + e.webmBridge("change", "change-a.webm")
	write(first)
	cfg, err := config.Load(file)
	if err != nil {
		t.Fatal(err)
	}
	d := startDaemon(t, cfg)
	reload := func() (bridge.ReloadResult, error) {
		cfg, err := config.Load(file)
		if err != nil {
			return bridge.ReloadResult{}, err
		}
		return d.Reload(cfg)
	}
	c := client{t: t, base: startServer(t, control.Options{Daemon: d, Reload: reload})}
	allUp := func() bool {
		code, _ := c.do("GET", "/readyz", "")
		return code == http.StatusOK
	}
	recording := func(names ...string) func() bool {
		return func() bool {
			for _, n := range names {
				if v := c.bridgeView(n); len(v.Sinks) != 1 || v.Sinks[0].Bytes == 0 {
					return false
				}
			}
			return true
		}
	}
	waitFor(t, 20*time.Second, "ready", allUp)
	waitFor(t, 20*time.Second, "recording", recording("keep", "gone", "change"))
	keep, change := c.bridgeView("keep"), c.bridgeView("change")
	keepBridge := d.Bridge("keep")

	// Invalid files: a syntax error, an unknown key, a [janus] change.
	for _, bad := range []struct{ text, reason string }{
		{first + "\n[[bridge]\n", "janusbridge.toml"},
		{first + "\n[control]\nlisten = \"127.0.0.1:1\"\nbogus = 1\n", "bogus"},
		{strings.Replace(first, `reconnect_max = "1s"`, `reconnect_max = "2s"`, 1), "[janus] changed"},
	} {
		write(bad.text)
		var body map[string]string
		c.must("POST", "/api/v1/reload", "", http.StatusBadRequest, &body)
		if !strings.Contains(body["error"], bad.reason) {
			t.Errorf("reload of an invalid file: error %q does not say %q", body["error"], bad.reason)
		}
	}
	for _, name := range []string{"keep", "gone", "change"} {
		if v := c.bridgeView(name); v.State != "up" {
			t.Errorf("%s after invalid reloads: %s", name, v.State)
		}
	}
	if v := c.bridgeView("keep"); v.HandleID != keep.HandleID {
		t.Errorf("an invalid reload touched keep: handle %d, was %d", v.HandleID, keep.HandleID)
	}

	// The real reload.
	write(e.header() + e.webmBridge("keep", "keep.webm") + e.webmBridge("change", "change-b.webm") + e.webmBridge("added", "added.webm"))
	var res bridge.ReloadResult
	c.must("POST", "/api/v1/reload", "", http.StatusOK, &res)
	want := bridge.ReloadResult{Unchanged: []string{"keep"}, Added: []string{"added"}, Removed: []string{"gone"}, Restarted: []string{"change"}}
	if fmt.Sprint(res) != fmt.Sprint(want) {
		t.Errorf("reload result %+v, want %+v", res, want)
	}
	// The removed bridge's file is finalised by the time the reload answers.
	checkPlayable(t, filepath.Join(e.dir, "gone.webm"))
	c.must("GET", "/api/v1/bridges/gone", "", http.StatusNotFound, nil)
	waitFor(t, 20*time.Second, "ready after reload", allUp)
	var names []string
	var list []control.Bridge
	c.must("GET", "/api/v1/bridges", "", http.StatusOK, &list)
	for _, b := range list {
		names = append(names, b.Name)
	}
	if strings.Join(names, ",") != "keep,change,added" {
		t.Errorf("bridges after reload: %v", names)
	}
	k := c.bridgeView("keep")
	if k.SessionID != keep.SessionID || k.HandleID != keep.HandleID || d.Bridge("keep") != keepBridge || !k.Since.Equal(keep.Since) {
		t.Errorf("keep was touched: session/handle %d/%d, was %d/%d", k.SessionID, k.HandleID, keep.SessionID, keep.HandleID)
	}
	ch := c.bridgeView("change")
	if ch.HandleID == change.HandleID || ch.SessionID != change.SessionID {
		t.Errorf("change not restarted on the same session: handle %d (was %d), session %d (was %d)", ch.HandleID, change.HandleID, ch.SessionID, change.SessionID)
	}
	checkPlayable(t, filepath.Join(e.dir, "change-a.webm"))
	waitFor(t, 10*time.Second, "new files written", func() bool {
		b, a := c.bridgeView("change"), c.bridgeView("added")
		return len(b.Sinks) == 1 && b.Sinks[0].Path == filepath.Join(e.dir, "change-b.webm") && b.Sinks[0].Bytes > 0 &&
			len(a.Sinks) == 1 && a.Sinks[0].Path == filepath.Join(e.dir, "added.webm") && a.Sinks[0].Bytes > 0
	})
	// keep's recording went on through it all: one file, still growing.
	size := k.Sinks[0].Bytes
	waitFor(t, 5*time.Second, "keep still recording", func() bool { return c.bridgeView("keep").Sinks[0].Bytes > size })
	if p := c.bridgeView("keep").Sinks[0].Path; p != filepath.Join(e.dir, "keep.webm") {
		t.Errorf("keep writes %s", p)
	}
}

// TestReloadSourceLive reloads a VideoRoom send bridge whose RTP source
// changes: a track added, then removed (both renegotiated), then the audio
// moved to another port (replaced, no renegotiation), all on the same
// handle, with the out-direction metrics following.
func TestReloadSourceLive(t *testing.T) {
	j := janustest.StartJanus(t, janustest.Options{
		Plugins:   []string{"videoroom"},
		VideoRoom: janustest.VideoRoomConfig(1234, "vp8"),
	})
	ports := janustest.FreeUDPPorts(t, 3) // audio, video, audio again
	janustest.StartFeed(t, janustest.FeedOptions{AudioPort: ports[0]})
	janustest.StartFeed(t, janustest.FeedOptions{VideoCodec: "vp8", VideoPort: ports[1], Width: 320, Height: 180, VideoBitrate: "300k"})
	janustest.StartFeed(t, janustest.FeedOptions{AudioPort: ports[2]})
	file := filepath.Join(t.TempDir(), "janusbridge.toml")
	track := func(kind, codec string, port, pt int) string {
		return fmt.Sprintf("  [[bridge.source.track]]\n  kind = %q\n  codec = %q\n  listen = \"127.0.0.1:%d\"\n  payload_type = %d\n",
			kind, codec, port, pt)
	}
	write := func(tracks ...string) {
		text := fmt.Sprintf("[janus]\nservers = [%q]\n[webrtc]\nloopback_candidates = true\n", j.WSURL()) +
			"[[bridge]]\nname = \"mic\"\nplugin = \"videoroom\"\nroom = 1234\ndisplay = \"mic\"\n  [bridge.source]\n  type = \"rtp\"\n" +
			strings.Join(tracks, "")
		if err := os.WriteFile(file, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	audioA := track("audio", "opus", ports[0], janustest.PTOpus)
	write(audioA)
	cfg, err := config.Load(file)
	if err != nil {
		t.Fatal(err)
	}
	d := startDaemon(t, cfg)
	c := client{t: t, base: startServer(t, control.Options{Daemon: d, Reload: func() (bridge.ReloadResult, error) {
		cfg, err := config.Load(file)
		if err != nil {
			return bridge.ReloadResult{}, err
		}
		return d.Reload(cfg)
	}})}
	out := func(v control.Bridge, kind string) (n uint64) {
		for _, tr := range v.Tracks {
			if tr.Kind == kind && tr.Direction == "out" {
				n += tr.Packets
			}
		}
		return n
	}
	var first control.Bridge
	waitFor(t, 20*time.Second, "audio sent", func() bool {
		first = c.bridgeView("mic")
		return first.State == "up" && out(first, "audio") > 50
	})
	reload := func(want string) {
		t.Helper()
		var res bridge.ReloadResult
		c.must("POST", "/api/v1/reload", "", http.StatusOK, &res)
		if len(res.Renegotiated) != 1 || res.Renegotiated[0] != "mic" || len(res.Restarted) != 0 {
			t.Fatalf("%s: reload result %+v, want mic renegotiated", want, res)
		}
		if v := c.bridgeView("mic"); v.HandleID != first.HandleID || v.SessionID != first.SessionID {
			t.Errorf("%s: handle %d, was %d", want, v.HandleID, first.HandleID)
		}
	}

	write(audioA, track("video", "vp8", ports[1], janustest.PTVP8))
	reload("add video")
	waitFor(t, 15*time.Second, "video sent after renegotiation", func() bool {
		v := c.bridgeView("mic")
		return v.Renegotiations == 1 && out(v, "video") > 100
	})
	m := string(c.must("GET", "/metrics", "", http.StatusOK, nil))
	if metric(m, "janusbridge_rtp_packets_total", map[string]string{"bridge": "mic", "kind": "video", "direction": "out"}) <= 0 ||
		metric(m, "janusbridge_renegotiations_total", map[string]string{"bridge": "mic"}) != 1 {
		t.Errorf("metrics after the add:\n%s", grepLines(m, "janusbridge_r"))
	}

	write(audioA)
	reload("remove video")
	waitFor(t, 15*time.Second, "video stopped", func() bool {
		v := c.bridgeView("mic")
		if v.Renegotiations != 2 {
			return false
		}
		before := out(v, "video")
		time.Sleep(500 * time.Millisecond)
		return out(c.bridgeView("mic"), "video") == before
	})

	write(track("audio", "opus", ports[2], janustest.PTOpus))
	reload("replace audio")
	audio := out(c.bridgeView("mic"), "audio")
	waitFor(t, 10*time.Second, "audio from the new port", func() bool { return out(c.bridgeView("mic"), "audio") > audio+100 })
	if v := c.bridgeView("mic"); v.Renegotiations != 2 {
		t.Errorf("a replace renegotiated: %d renegotiations", v.Renegotiations)
	}
}

// TestJanusDownAtStart starts the daemon while Janus is down: the API
// answers at once (not ready, the bridge starting), a reload is taken, and
// the bridges start when Janus comes up.
func TestJanusDownAtStart(t *testing.T) {
	e := startEnv(t)
	e.j.Stop()
	file := filepath.Join(e.dir, "janusbridge.toml")
	write := func(text string) {
		if err := os.WriteFile(file, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write(e.header() + e.webmBridge("cam", "cam.webm"))
	cfg, err := config.Load(file)
	if err != nil {
		t.Fatal(err)
	}
	d := startDaemon(t, cfg) // returns without Janus
	c := client{t: t, base: startServer(t, control.Options{Daemon: d, Reload: func() (bridge.ReloadResult, error) {
		cfg, err := config.Load(file)
		if err != nil {
			return bridge.ReloadResult{}, err
		}
		return d.Reload(cfg)
	}})}
	c.must("GET", "/healthz", "", http.StatusOK, nil)
	var ready control.Ready
	c.must("GET", "/readyz", "", http.StatusServiceUnavailable, &ready)
	if ready.Janus != "disconnected" || len(ready.NotReady) != 1 || ready.NotReady[0].State != bridge.StateStarting {
		t.Errorf("readyz without Janus: %+v", ready)
	}
	if v := c.bridgeView("cam"); v.SessionID != 0 || v.HandleID != 0 {
		t.Errorf("bridge without Janus: %+v", v.Status)
	}
	c.must("POST", "/api/v1/bridges/cam/stop", "", http.StatusConflict, nil)
	c.must("GET", "/", "", http.StatusOK, nil)

	write(e.header() + e.webmBridge("cam", "cam.webm") + e.webmBridge("cam2", "cam2.webm"))
	var res bridge.ReloadResult
	c.must("POST", "/api/v1/reload", "", http.StatusOK, &res)
	if fmt.Sprint(res.Unchanged, res.Added) != "[cam] [cam2]" {
		t.Errorf("reload without Janus: %+v", res)
	}

	e.j.Restart(t)
	waitFor(t, 30*time.Second, "ready once Janus is up", func() bool {
		code, _ := c.do("GET", "/readyz", "")
		return code == http.StatusOK
	})
	waitFor(t, 20*time.Second, "both recording", func() bool {
		for _, n := range []string{"cam", "cam2"} {
			if v := c.bridgeView(n); v.SessionID == 0 || len(v.Sinks) != 1 || v.Sinks[0].Bytes == 0 {
				return false
			}
		}
		return true
	})
}

// TestWrongSecret: a Janus that refuses the daemon's api_secret makes the
// daemon fail (Failed), rather than retry for ever.
func TestWrongSecret(t *testing.T) {
	j := janustest.StartJanus(t, janustest.Options{Plugins: []string{"streaming"}, APISecret: "right"})
	cfg := parse(t, fmt.Sprintf("[janus]\nservers = [%q]\napi_secret = \"wrong\"\n[[bridge]]\nname = \"cam\"\nplugin = \"streaming\"\nmountpoint = 1\n"+
		"  [[bridge.sink]]\n  type = \"webm\"\n  path = %q\n", j.HTTPURL(), filepath.Join(t.TempDir(), "cam.webm")))
	d := startDaemon(t, cfg)
	select {
	case err := <-d.Failed():
		if !errors.Is(err, janus.ErrUnauthorized) {
			t.Errorf("failed with %v, want ErrUnauthorized", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("the daemon did not fail on a wrong api_secret")
	}
	if d.Bridge("cam").Status().State != bridge.StateStarting {
		t.Errorf("bridge state %q", d.Bridge("cam").Status().State)
	}
}
