// Package control is the daemon's HTTP control surface (SPEC §7): health
// and readiness, Prometheus metrics, the JSON API over the bridges (state,
// tracks, sinks; ICE restart, track changes, stop, start, reload) and a
// status page, all behind an optional bearer token.
package control

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/janusbridge/janusbridge/bridge"
)

// Options configures a Server.
type Options struct {
	// Listen is the address to listen on, e.g. "127.0.0.1:8090".
	Listen string
	// Token, when set, is the bearer token every endpoint but /healthz
	// requires. It is required when Listen is not a loopback address.
	Token string
	// Daemon is the daemon the API shows and acts on.
	Daemon *bridge.Daemon
	// Reload re-reads the configuration and applies it (POST
	// /api/v1/reload); nil answers 501.
	Reload func() (bridge.ReloadResult, error)
	// Logger receives one line per failed request action; nil discards.
	Logger *slog.Logger
	// SampleEvery is the period of the bitrate samples (the API's
	// bitrate_bps, the status page's chart); 0 means 5 s.
	SampleEvery time.Duration
	// HistoryLen is how many samples a track's chart keeps; 0 means 120
	// (10 minutes at 5 s).
	HistoryLen int
}

// Server is the control HTTP server. New binds its listener; Run serves.
type Server struct {
	opts    Options
	log     *slog.Logger
	ln      net.Listener
	srv     *http.Server
	history *history
}

// New checks opts and binds the listener, so that the API is reachable once
// it returns. It refuses a non-loopback Listen without a Token.
func New(opts Options) (*Server, error) {
	if opts.Daemon == nil {
		return nil, errors.New("control: no daemon")
	}
	if !IsLoopback(opts.Listen) && opts.Token == "" {
		return nil, fmt.Errorf("control: %q is not a loopback address: a token (control.token_file) is required", opts.Listen)
	}
	if opts.SampleEvery <= 0 {
		opts.SampleEvery = 5 * time.Second
	}
	if opts.HistoryLen <= 0 {
		opts.HistoryLen = 120
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	ln, err := net.Listen("tcp", opts.Listen)
	if err != nil {
		return nil, fmt.Errorf("control: %w", err)
	}
	s := &Server{opts: opts, log: log.With("component", "control"), ln: ln,
		history: newHistory(opts.SampleEvery, opts.HistoryLen)}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collector{d: opts.Daemon},
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", s.healthz)
	mux.HandleFunc("GET /readyz", s.readyz)
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{ErrorLog: slog.NewLogLogger(s.log.Handler(), slog.LevelWarn)}))
	mux.HandleFunc("GET /api/v1/bridges", s.listBridges)
	mux.HandleFunc("GET /api/v1/bridges/{name}", s.getBridge)
	mux.HandleFunc("POST /api/v1/bridges/{name}/ice-restart", s.iceRestart)
	mux.HandleFunc("POST /api/v1/bridges/{name}/tracks", s.tracks)
	mux.HandleFunc("POST /api/v1/bridges/{name}/stop", s.stop)
	mux.HandleFunc("POST /api/v1/bridges/{name}/start", s.start)
	mux.HandleFunc("POST /api/v1/reload", s.reload)
	mux.HandleFunc("GET /{$}", s.page)
	s.srv = &http.Server{
		Handler:           s.auth(mux),
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelDebug),
	}
	return s, nil
}

// IsLoopback reports whether the host of addr ("host:port") is a loopback
// address or "localhost".
func IsLoopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	ip := net.ParseIP(host)
	return host == "localhost" || ip != nil && ip.IsLoopback()
}

// Addr returns the address the server listens on.
func (s *Server) Addr() net.Addr { return s.ln.Addr() }

// Run serves until ctx ends, then shuts the server down (waiting up to 5 s
// for requests in flight) and returns.
func (s *Server) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	wg.Add(1)
	go func() {
		defer wg.Done()
		s.history.run(sctx, s.opts.Daemon)
	}()
	errc := make(chan error, 1)
	go func() { errc <- s.srv.Serve(s.ln) }()
	var err error
	select {
	case err = <-errc:
		err = fmt.Errorf("control: %w", err)
	case <-ctx.Done():
		sd, cancelSD := context.WithTimeout(context.Background(), 5*time.Second)
		if serr := s.srv.Shutdown(sd); serr != nil {
			s.srv.Close()
		}
		cancelSD()
		<-errc // http.ErrServerClosed
	}
	cancel()
	wg.Wait()
	return err
}

// auth requires the bearer token on every path but /healthz when a token
// is set. The status page also takes it as ?token=, so that a plain browser
// can open it.
func (s *Server) auth(next http.Handler) http.Handler {
	if s.opts.Token == "" {
		return next
	}
	want := []byte(s.opts.Token)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/healthz" {
			next.ServeHTTP(w, r)
			return
		}
		got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if !ok && r.URL.Path == "/" {
			got, ok = r.URL.Query().Get("token"), true
		}
		if !ok || subtle.ConstantTimeCompare([]byte(got), want) != 1 {
			w.Header().Set("WWW-Authenticate", `Bearer realm="janusbridge"`)
			writeError(w, http.StatusUnauthorized, errors.New("missing or wrong bearer token"))
			return
		}
		next.ServeHTTP(w, r)
	})
}
