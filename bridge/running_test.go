package bridge_test

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/janusbridge/janusbridge/bridge"
	"github.com/janusbridge/janusbridge/config"
	"github.com/janusbridge/janusbridge/janus"
)

// runningBridge is one bridge of a configuration run the way Run runs it
// (its own session, the [webrtc] settings, a NACK counter, a registry of
// own feeds), reachable by the test.
type runningBridge struct {
	B        *bridge.Bridge
	OwnFeeds *bridge.OwnFeeds
	Session  *janus.Session // the bridge's own (its Events are for the test to read)
	cancel   context.CancelFunc
	done     chan error
}

// startBridge parses cfgText (one bridge) and runs it until the test ends
// or stop. own is called with the registry of own feeds before the bridge
// starts.
func startBridge(t *testing.T, cfgText string, own func(*bridge.OwnFeeds)) *runningBridge {
	t.Helper()
	cfg, err := config.Parse("test.toml", []byte(cfgText))
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelInfo}))
	wo := bridge.WebRTCOptions(cfg.WebRTC)
	wo.Logger = log.With("component", "pion")
	wo.Feedback = &janus.FeedbackCounter{}
	api, err := janus.NewAPI(wo)
	if err != nil {
		t.Fatal(err)
	}
	so := bridge.SessionOptions(cfg)
	so.Logger = log.With("component", "janus")
	cctx, ccancel := context.WithTimeout(context.Background(), 10*time.Second)
	session, err := janus.Connect(cctx, so)
	ccancel()
	if err != nil {
		t.Fatalf("connecting to Janus: %v", err)
	}
	env := &bridge.Env{Session: session, API: api, ICEServers: wo.ICEServers, Logger: log,
		OwnFeeds: &bridge.OwnFeeds{}, Feedback: wo.Feedback}
	if own != nil {
		own(env.OwnFeeds)
	}
	b, err := bridge.New(&cfg.Bridges[0], env)
	if err != nil {
		session.Close(context.Background())
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	rb := &runningBridge{B: b, OwnFeeds: env.OwnFeeds, Session: session, cancel: cancel, done: make(chan error, 1)}
	go func() { rb.done <- b.Run(ctx) }()
	t.Cleanup(func() {
		rb.stop(t)
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		session.Close(ctx)
	})
	return rb
}

// stop stops the bridge, its files finalised; a no-op the second time.
func (rb *runningBridge) stop(t *testing.T) {
	t.Helper()
	rb.cancel()
	if rb.done == nil {
		return
	}
	select {
	case err := <-rb.done:
		if err != nil {
			t.Errorf("bridge run: %v", err)
		}
	case <-time.After(15 * time.Second):
		t.Error("bridge did not stop within 15 s")
	}
	rb.done = nil
}

// waitState waits until the bridge's state is want.
func (rb *runningBridge) waitState(t *testing.T, want string, within time.Duration) {
	t.Helper()
	waitUntil(t, "bridge state "+want, within, func() bool { return rb.B.Status().State == want })
}

// waitUntil polls cond (there is no event to wait on) until it holds.
func waitUntil(t *testing.T, what string, within time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v", what, within)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
