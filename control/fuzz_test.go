package control

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"

	"github.com/janusbridge/janusbridge/bridge"
	"github.com/janusbridge/janusbridge/config"
)

// FuzzAPIBody sends arbitrary JSON bodies, bridge names and tokens to the
// control API's body-taking endpoint (POST .../tracks) of a daemon whose
// bridges are not running (its Janus does not answer): every request is
// answered with a JSON body, an error one unless it succeeded, and never
// with a 500 or a panic.
func FuzzAPIBody(f *testing.F) {
	f.Add("cam", "tok", []byte(`{"action":"replace","mid":"0","track":{"kind":"video","codec":"h264","listen":"127.0.0.1:7010","payload_type":96}}`))
	f.Add("cam", "tok", []byte(`{"action":"add","track":{"kind":"video","file":"/nonexistent.webm","loop":true}}`))
	f.Add("rec", "tok", []byte(`{"action":"remove","mid":"1"}`))
	f.Add("cam", "bad", []byte(`{"action":1}`))
	f.Add("cam", "tok", []byte(`{"action":"add","track":{"kind":"video","payload_type":300}}`))
	f.Add("nope", "tok", []byte(`[[[[[[[[[[{}]]]]]]]]]]`))
	cfg, err := config.Parse("fuzz.toml", []byte(`[janus]
servers = ["ws://127.0.0.1:9/"]
reconnect_min = "10s"
[control]
listen = "127.0.0.1:0"
[[bridge]]
name = "cam"
plugin = "videoroom"
room = 1
  [bridge.source]
  type = "rtp"
  [[bridge.source.track]]
  kind = "video"
  codec = "h264"
  listen = "127.0.0.1:9"
  payload_type = 96
[[bridge]]
name = "rec"
plugin = "streaming"
mountpoint = 1
  [[bridge.sink]]
  type = "ogg"
  path = "`+f.TempDir()+`/{start}.ogg"
`))
	if err != nil {
		f.Fatal(err)
	}
	log := slog.New(slog.DiscardHandler)
	d, err := bridge.Start(cfg, log)
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { d.Close() })
	s, err := New(Options{Listen: "127.0.0.1:0", Token: "tok", Daemon: d, Logger: log})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { s.ln.Close() })
	f.Fuzz(func(t *testing.T, name, token string, body []byte) {
		req := httptest.NewRequest(http.MethodPost, "/api/v1/bridges/"+url.PathEscape(name)+"/tracks", bytes.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+token)
		rec := httptest.NewRecorder()
		s.srv.Handler.ServeHTTP(rec, req)
		code := rec.Code
		if code >= 500 {
			t.Fatalf("status %d: %s", code, rec.Body)
		}
		if code == http.StatusNotFound && rec.Body.Len() > 0 && rec.Header().Get("Content-Type") != "application/json" {
			return // the mux's own 404 for a name that is not one path segment
		}
		var reply map[string]any
		if err := json.Unmarshal(rec.Body.Bytes(), &reply); err != nil {
			t.Fatalf("status %d, body not JSON: %q", code, rec.Body)
		}
		if _, ok := reply["error"]; ok != (code >= 400) {
			t.Fatalf("status %d with body %q", code, rec.Body)
		}
	})
}
