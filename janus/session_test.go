package janus_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/janusbridge/janusbridge/internal/janustest"
	"github.com/janusbridge/janusbridge/janus"
)

// mountpoint returns the config of a VP8+Opus RTP mountpoint 101 on free
// ports, fed or not.
func mountpoint(t *testing.T) string {
	ports := janustest.FreeUDPPorts(t, 2)
	return janustest.MountpointConfig(101, "vp8", ports[0], ports[1])
}

// transports runs f once per transport of j: the WebSocket and the HTTP one.
func transports(t *testing.T, f func(t *testing.T, server func(*janustest.Janus) string)) {
	t.Run("ws", func(t *testing.T) { f(t, (*janustest.Janus).WSURL) })
	t.Run("http", func(t *testing.T) { f(t, (*janustest.Janus).HTTPURL) })
}

func connect(t *testing.T, opts janus.Options) *janus.Session {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	s, err := janus.Connect(ctx, opts)
	if err != nil {
		t.Fatalf("connect %v: %v", opts.Servers, err)
	}
	t.Cleanup(func() { s.Close(context.Background()) })
	return s
}

func listMountpoints(ctx context.Context, t *testing.T, h *janus.Handle) []uint64 {
	t.Helper()
	pd, err := h.Request(ctx, map[string]any{"request": "list"})
	if err != nil {
		t.Fatalf("streaming list: %v", err)
	}
	var list struct {
		List []struct {
			ID uint64 `json:"id"`
		} `json:"list"`
	}
	if err := json.Unmarshal(pd.Data, &list); err != nil {
		t.Fatal(err)
	}
	var ids []uint64
	for _, m := range list.List {
		ids = append(ids, m.ID)
	}
	return ids
}

// waitEvent waits for the next session event of the given kind, failing on
// any other kind but Disconnected.
func waitEvent(t *testing.T, s *janus.Session, want janus.SessionEventKind, within time.Duration) janus.SessionEvent {
	t.Helper()
	timer := time.NewTimer(within)
	defer timer.Stop()
	for {
		select {
		case ev := <-s.Events():
			if ev.Kind == want {
				return ev
			}
			if ev.Kind != janus.Disconnected {
				t.Fatalf("session event %v, want %v", ev.Kind, want)
			}
		case <-timer.C:
			t.Fatalf("no %v session event within %v", want, within)
		}
	}
}

func TestSessionAttachList(t *testing.T) {
	j := janustest.StartJanus(t, janustest.Options{
		APISecret: "s3cret",
		Plugins:   []string{"streaming"},
		Streaming: mountpoint(t),
	})
	transports(t, func(t *testing.T, server func(*janustest.Janus) string) {
		ctx := context.Background()
		s := connect(t, janus.Options{Servers: []string{server(j)}, APISecret: "s3cret"})
		if s.ID() == 0 {
			t.Fatal("session id 0")
		}
		info, err := s.Info(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if _, ok := info.Plugins["janus.plugin.streaming"]; !ok || !info.APISecret {
			t.Fatalf("info: plugins %v, api_secret %v", info.Plugins, info.APISecret)
		}
		h, err := s.Attach(ctx, "janus.plugin.streaming", "test-opaque")
		if err != nil {
			t.Fatal(err)
		}
		if ids := listMountpoints(ctx, t, h); len(ids) != 1 || ids[0] != 101 {
			t.Fatalf("mountpoints %v, want [101]", ids)
		}
		// A plugin error comes back typed.
		var pe *janus.PluginError
		if _, err := h.Request(ctx, map[string]any{"request": "info", "id": 999}); !errors.As(err, &pe) || pe.Code == 0 {
			t.Fatalf("info of a missing mountpoint: %v", err)
		}
		if err := h.Detach(ctx); err != nil {
			t.Fatal(err)
		}
		// Queued events (Janus's own "detached") drain, then the channel closes.
		for drained := false; !drained; {
			select {
			case _, ok := <-h.Events():
				drained = !ok
			case <-time.After(5 * time.Second):
				t.Fatal("events still open after detach")
			}
		}
		if _, err := h.Request(ctx, map[string]any{"request": "list"}); !errors.Is(err, janus.ErrClosed) {
			t.Fatalf("request on detached handle: %v", err)
		}
		if err := s.Close(ctx); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Attach(ctx, "janus.plugin.streaming", ""); !errors.Is(err, janus.ErrClosed) {
			t.Fatalf("attach after close: %v", err)
		}
	})
}

func TestWrongAPISecret(t *testing.T) {
	j := janustest.StartJanus(t, janustest.Options{APISecret: "s3cret", Plugins: []string{"echotest"}})
	transports(t, func(t *testing.T, server func(*janustest.Janus) string) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_, err := janus.Connect(ctx, janus.Options{Servers: []string{server(j)}, APISecret: "wrong"})
		if !errors.Is(err, janus.ErrUnauthorized) {
			t.Fatalf("err = %v, want unauthorized", err)
		}
		if !strings.Contains(err.Error(), server(j)) || !strings.Contains(err.Error(), "403") {
			t.Fatalf("error does not name the server and the code: %v", err)
		}
		if _, err := janus.GetInfo(ctx, server(j), janus.Options{APISecret: "s3cret"}); err != nil {
			t.Fatalf("info with the right secret: %v", err)
		}
	})
}

func TestFailover(t *testing.T) {
	j := janustest.StartJanus(t, janustest.Options{Plugins: []string{"echotest"}})
	dead := janustest.FreePort(t) // nothing listens there
	transports(t, func(t *testing.T, server func(*janustest.Janus) string) {
		scheme := strings.SplitN(server(j), ":", 2)[0]
		first := fmt.Sprintf("%s://127.0.0.1:%d/janus", scheme, dead)
		s := connect(t, janus.Options{Servers: []string{first, server(j)}})
		if s.Server() != strings.TrimRight(server(j), "/") && s.Server() != server(j) {
			t.Fatalf("server in use %q, want %q", s.Server(), server(j))
		}
		if _, err := s.Attach(context.Background(), "janus.plugin.echotest", ""); err != nil {
			t.Fatal(err)
		}
	})
}

func TestClaimAfterTransportCut(t *testing.T) {
	j := janustest.StartJanus(t, janustest.Options{
		ReclaimTimeout: 20,
		Plugins:        []string{"streaming"},
		Streaming:      mountpoint(t),
	})
	transports(t, func(t *testing.T, server func(*janustest.Janus) string) {
		ctx := context.Background()
		real := server(j)
		p := janustest.NewProxy(t, strings.SplitN(strings.SplitN(real, "//", 2)[1], "/", 2)[0])
		scheme, path := strings.SplitN(real, ":", 2)[0], "/"+strings.SplitN(strings.SplitN(real, "//", 2)[1], "/", 2)[1]
		s := connect(t, janus.Options{Servers: []string{p.URL(scheme, path)}, ReconnectMin: 100 * time.Millisecond})
		h, err := s.Attach(ctx, "janus.plugin.streaming", "")
		if err != nil {
			t.Fatal(err)
		}
		id := s.ID()
		// Take the path down long enough for the client to notice (an HTTP
		// client would otherwise just retry its long poll on a new
		// connection), then bring it back.
		p.SetDown(true)
		if n := p.Cut(); n == 0 {
			t.Fatal("proxy cut no connection")
		}
		waitEvent(t, s, janus.Disconnected, 15*time.Second)
		p.SetDown(false)
		ev := waitEvent(t, s, janus.Claimed, 15*time.Second)
		if ev.SessionID != id || s.ID() != id {
			t.Fatalf("claimed session %d, want %d", ev.SessionID, id)
		}
		// The handle survived the claim.
		if ids := listMountpoints(ctx, t, h); len(ids) != 1 {
			t.Fatalf("mountpoints after claim: %v", ids)
		}
		if h.Err() != nil {
			t.Fatalf("handle lost: %v", h.Err())
		}
	})
}

func TestRecreateAfterJanusRestart(t *testing.T) {
	j := janustest.StartJanus(t, janustest.Options{
		Plugins:   []string{"streaming"},
		Streaming: mountpoint(t),
	})
	transports(t, func(t *testing.T, server func(*janustest.Janus) string) {
		ctx := context.Background()
		s := connect(t, janus.Options{Servers: []string{server(j)}, ReconnectMin: 100 * time.Millisecond, ReconnectMax: time.Second})
		h, err := s.Attach(ctx, "janus.plugin.streaming", "")
		if err != nil {
			t.Fatal(err)
		}
		old := s.ID()
		j.Kill()
		j.Restart(t)
		ev := waitEvent(t, s, janus.Recreated, 20*time.Second)
		if ev.SessionID == old || ev.SessionID != s.ID() {
			t.Fatalf("recreated session id %d (old %d, now %d)", ev.SessionID, old, s.ID())
		}
		select {
		case <-h.Done():
		case <-time.After(5 * time.Second):
			t.Fatal("old handle not dropped")
		}
		if !errors.Is(h.Err(), janus.ErrSessionRecreated) {
			t.Fatalf("old handle error %v", h.Err())
		}
		h2, err := s.Attach(ctx, "janus.plugin.streaming", "")
		if err != nil {
			t.Fatal(err)
		}
		if ids := listMountpoints(ctx, t, h2); len(ids) != 1 {
			t.Fatalf("mountpoints after re-create: %v", ids)
		}
	})
}
