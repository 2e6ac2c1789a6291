package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/janusbridge/janusbridge/bridge"
	"github.com/janusbridge/janusbridge/config"
	"github.com/janusbridge/janusbridge/internal/janustest"
)

func run(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	code = runMain(context.Background(), args, &out, &errb)
	return code, out.String(), errb.String()
}

func writeConfig(t *testing.T, text string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "bridges.toml")
	if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestUsage(t *testing.T) {
	for _, args := range [][]string{nil, {"frobnicate"}, {"validate"}, {"run", "-c"}, {"probe", "-x"}} {
		if code, _, _ := run(t, args...); code != exitUsage {
			t.Errorf("janusbridge %v: exit %d, want %d", args, code, exitUsage)
		}
	}
}

func TestVersion(t *testing.T) {
	code, out, _ := run(t, "version")
	if code != exitOK || !strings.Contains(out, "janusbridge ") || !strings.Contains(out, "go1.") || !strings.Contains(out, "pion/webrtc") {
		t.Fatalf("exit %d, output %q", code, out)
	}
}

func TestValidate(t *testing.T) {
	dir := t.TempDir()
	good := writeConfig(t, fmt.Sprintf(`
[janus]
servers = ["ws://127.0.0.1:8188/"]
[[bridge]]
name = "cam1"
plugin = "streaming"
mountpoint = 1
  [[bridge.sink]]
  type = "webm"
  path = "%s/out/{bridge}/{start}.webm"
`, dir))
	code, out, errs := run(t, "validate", "-c", good)
	if code != exitOK || out != "ok: 1 bridges\n" {
		t.Fatalf("exit %d, stdout %q, stderr %q", code, out, errs)
	}
	if _, err := os.Stat(filepath.Join(dir, "out")); err != nil {
		t.Fatalf("output directory not created: %v", err)
	}

	bad := writeConfig(t, `
[janus]
servers = ["ws://127.0.0.1:8188/"]
[[bridge]]
name = "cam1"
plugin = "streaming"
mountpoint = 1
  [[bridge.sink]]
  type = "webm"
`)
	code, _, errs = run(t, "validate", "-c", bad)
	if code != exitUsage || !strings.Contains(errs, `bridges.toml:8: bridge[0] "cam1": sink[0].path`) {
		t.Fatalf("exit %d, stderr %q", code, errs)
	}
}

func TestValidateExample(t *testing.T) {
	// The shipped example must at least parse, and this build must run
	// every bridge of it; its output directories are system paths and its
	// Janus is not there, so only Load and Supported are checked here.
	cfg, err := config.Load("../../config.example.toml")
	if err != nil {
		t.Fatal(err)
	}
	for i := range cfg.Bridges {
		if err := bridge.Supported(&cfg.Bridges[i]); err != nil {
			t.Errorf("bridge %q: %v", cfg.Bridges[i].Name, err)
		}
	}
}

func TestRunRefusesUnbuiltBridges(t *testing.T) {
	p := writeConfig(t, `
[janus]
servers = ["ws://127.0.0.1:8188/"]
[[bridge]]
name = "cam1"
plugin = "echotest"
  [[bridge.sink]]
  type = "webm"
  path = "/tmp/{bridge}-{start}.webm"
[[bridge]]
name = "cam2"
plugin = "echotest"
  [[bridge.sink]]
  type = "ogg"
  path = "/tmp/{bridge}-{start}.ogg"
`)
	code, _, errs := run(t, "run", "-c", p)
	if code != exitUsage || !strings.Contains(errs, `bridge[0] "cam1": echotest recv bridges are not supported yet`) ||
		!strings.Contains(errs, `bridge[1] "cam2": echotest recv bridges are not supported yet`) {
		t.Fatalf("exit %d, stderr %q", code, errs)
	}
}

func TestProbe(t *testing.T) {
	ports := janustest.FreeUDPPorts(t, 2)
	j := janustest.StartJanus(t, janustest.Options{
		APISecret: "s3cret",
		Streaming: janustest.MountpointConfig(101, "vp8", ports[0], ports[1]),
		VideoRoom: janustest.VideoRoomConfig(4321, "h264"),
	})
	dir := t.TempDir()
	cfg := func(secret string, bridges string) string {
		return writeConfig(t, fmt.Sprintf("[janus]\nservers = [%q, %q]\napi_secret = %q\n%s", j.WSURL(), j.HTTPURL(), secret, bridges))
	}
	good := fmt.Sprintf(`
[[bridge]]
name = "cam"
plugin = "streaming"
mountpoint = 101
  [[bridge.sink]]
  type = "webm"
  path = "%[1]s/{bridge}-{start}.webm"
[[bridge]]
name = "room"
plugin = "videoroom"
room = 4321
feeds = "all"
  [[bridge.sink]]
  type = "mkv"
  path = "%[1]s/{feed}-{start}.mkv"
`, dir)
	code, out, errs := run(t, "probe", "-c", cfg("s3cret", good))
	t.Log(out)
	if code != exitOK {
		t.Fatalf("exit %d\n%s%s", code, out, errs)
	}
	for _, want := range []string{"Janus WebRTC Server 1.1.2", "credentials: accepted", "streaming", "websockets",
		`bridge "cam" (streaming recv): ok`, "mountpoint 101 exists: opus+vp8", `bridge "room" (videoroom recv): ok`, "room 4321 exists"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}

	code, out, _ = run(t, "probe", "-c", cfg("wrong", ""))
	if code != exitFailure || strings.Count(out, "credentials: rejected") != 2 {
		t.Fatalf("wrong secret: exit %d\n%s", code, out)
	}

	bad := `
[[bridge]]
name = "gone"
plugin = "streaming"
mountpoint = 999
  [[bridge.sink]]
  type = "rtp"
  host = "127.0.0.1"
  port = 6000
[[bridge]]
name = "yt"
plugin = "streaming"
mountpoint = 101
  [[bridge.sink]]
  type = "rtmp"
  url = "rtmp://127.0.0.1/live/key"
`
	code, out, _ = run(t, "probe", "-c", cfg("s3cret", bad))
	t.Log(out)
	if code != exitFailure {
		t.Fatalf("exit %d\n%s", code, out)
	}
	for _, want := range []string{`bridge "gone" (streaming recv): FAIL`, "mountpoint 999", `bridge "yt" (streaming recv): FAIL`, "rtmp needs H.264 video"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}
