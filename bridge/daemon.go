package bridge

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/pion/webrtc/v4"

	"github.com/janusbridge/janusbridge/config"
	"github.com/janusbridge/janusbridge/janus"
)

// Run runs every bridge of cfg on one Janus session until ctx ends, then
// stops them within the configured shutdown_timeout: files finalised,
// handles detached, the session destroyed.
func Run(ctx context.Context, cfg *config.Config, log *slog.Logger) error {
	var errs []error
	for i := range cfg.Bridges {
		if err := Supported(&cfg.Bridges[i]); err != nil {
			errs = append(errs, fmt.Errorf("bridge[%d] %q: %w", i, cfg.Bridges[i].Name, err))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	wo := WebRTCOptions(cfg.WebRTC)
	wo.Logger = log.With("component", "pion")
	wo.Feedback = &janus.FeedbackCounter{}
	api, err := janus.NewAPI(wo)
	if err != nil {
		return err
	}
	session, err := connect(ctx, cfg, log)
	if err != nil {
		return err
	}
	env := &Env{Session: session, API: api, ICEServers: wo.ICEServers, Logger: log, OwnFeeds: &OwnFeeds{}, Feedback: wo.Feedback}
	var bridges []*Bridge
	for i := range cfg.Bridges {
		b, err := New(&cfg.Bridges[i], env)
		if err != nil {
			return err
		}
		bridges = append(bridges, b)
	}
	var bridgesWG, eventsWG sync.WaitGroup
	for _, b := range bridges {
		bridgesWG.Add(1)
		go func() {
			defer bridgesWG.Done()
			if err := b.Run(ctx); err != nil {
				log.Error("bridge ended", "bridge", b.Name(), "err", err)
			}
		}()
	}
	eventsWG.Add(1)
	go func() {
		defer eventsWG.Done()
		for ev := range session.Events() {
			log.Info("janus session "+ev.Kind.String(), "server", ev.Server, "session", ev.SessionID)
		}
	}()
	log.Info("janusbridge running", "bridges", len(bridges), "server", session.Server())
	<-ctx.Done()

	timeout := time.Duration(cfg.Defaults.ShutdownTimeout)
	log.Info("stopping", "timeout", timeout)
	deadline := time.Now().Add(timeout)
	stopped := make(chan struct{})
	go func() { bridgesWG.Wait(); close(stopped) }()
	err = nil
	select {
	case <-stopped:
	case <-time.After(timeout):
		err = fmt.Errorf("bridges did not stop within shutdown_timeout %v", timeout)
	}
	if time.Until(deadline) < time.Second {
		deadline = time.Now().Add(time.Second) // room to say goodbye to Janus
	}
	closeCtx, cancel := context.WithDeadline(context.Background(), deadline)
	defer cancel()
	if cerr := session.Close(closeCtx); cerr != nil {
		log.Warn("closing the Janus session", "err", cerr)
	}
	eventsWG.Wait()
	return err
}

// connect creates the daemon's session, retrying with backoff while no
// server answers, until ctx ends. Wrong credentials end it at once.
func connect(ctx context.Context, cfg *config.Config, log *slog.Logger) (*janus.Session, error) {
	opts := SessionOptions(cfg)
	opts.Logger = log.With("component", "janus")
	wait := opts.ReconnectMin
	for {
		s, err := janus.Connect(ctx, opts)
		if err == nil {
			return s, nil
		}
		if errors.Is(err, janus.ErrUnauthorized) || ctx.Err() != nil {
			return nil, err
		}
		log.Warn("no Janus server answers, retrying", "in", wait, "err", err)
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(wait):
		}
		wait = min(2*wait, opts.ReconnectMax)
	}
}

// SessionOptions maps the [janus] section to the client's options.
func SessionOptions(cfg *config.Config) janus.Options {
	j := cfg.Janus
	return janus.Options{
		Servers:        j.Servers,
		APISecret:      j.APISecret,
		Token:          j.Token,
		RequestTimeout: time.Duration(j.RequestTimeout),
		KeepAlive:      time.Duration(j.Keepalive),
		ReconnectMin:   time.Duration(j.ReconnectMin),
		ReconnectMax:   time.Duration(j.ReconnectMax),
	}
}

// WebRTCOptions maps the [webrtc] section to the pion settings.
func WebRTCOptions(w config.WebRTC) janus.WebRTCOptions {
	o := janus.WebRTCOptions{
		UDPPortMin:             uint16(w.UDPPortMin),
		UDPPortMax:             uint16(w.UDPPortMax),
		NAT1To1IPs:             w.NAT1To1IPs,
		Interfaces:             w.Interfaces,
		LoopbackCandidates:     w.LoopbackCandidates,
		ICEDisconnectedTimeout: time.Duration(w.ICEDisconnectedTimeout),
		ICEFailedTimeout:       time.Duration(w.ICEFailedTimeout),
	}
	for _, s := range w.ICEServers {
		o.ICEServers = append(o.ICEServers, webrtc.ICEServer{URLs: s.URLs, Username: s.Username, Credential: s.Credential})
	}
	return o
}
