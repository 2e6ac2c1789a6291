package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"github.com/janusbridge/janusbridge/bridge"
	"github.com/janusbridge/janusbridge/config"
	"github.com/janusbridge/janusbridge/control"
	"github.com/janusbridge/janusbridge/sdnotify"
)

func cmdRun(ctx context.Context, args []string, _, stderr io.Writer) int {
	path := configPath("run", args, stderr)
	if path == "" {
		return exitUsage
	}
	cfg, err := config.Load(path)
	if err != nil {
		fmt.Fprintf(stderr, "janusbridge: %v\n", err)
		return exitUsage
	}
	if err := supported(cfg); err != nil {
		fmt.Fprintf(stderr, "janusbridge: %v\n", err)
		return exitUsage
	}
	level := new(slog.LevelVar)
	log := newLogger(cfg.Log, level, stderr)
	notify := sdnotify.FromEnv()
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)

	// The bridges start once Janus answers; the API is up meanwhile.
	d, err := bridge.Start(cfg, log)
	if err != nil {
		log.Error("janusbridge failed", "err", err)
		return exitFailure
	}
	r := &reloader{path: path, daemon: d, level: level, log: log, notify: notify}
	srvCtx, stopSrv := context.WithCancel(context.Background())
	var srvWG sync.WaitGroup
	srvErr := make(chan error, 1)
	if cfg.Control.Listen != "" {
		srv, err := control.New(control.Options{Listen: cfg.Control.Listen, Token: cfg.Control.Token,
			Daemon: d, Reload: r.reload, Logger: log})
		if err != nil {
			log.Error("janusbridge failed", "err", err)
			stopSrv()
			d.Close()
			return exitFailure
		}
		log.Info("control API listening", "addr", srv.Addr().String())
		srvWG.Add(1)
		go func() {
			defer srvWG.Done()
			if err := srv.Run(srvCtx); err != nil {
				srvErr <- err
			}
		}()
	}
	status := statusLine(d)
	notify.Ready(status)

	var watchdog <-chan time.Time
	if every := sdnotify.WatchdogInterval(); every > 0 {
		t := time.NewTicker(every)
		defer t.Stop()
		watchdog = t.C
		notify.Watchdog()
	}
	statusTick := time.NewTicker(time.Second)
	defer statusTick.Stop()
	code := exitOK
	var reloads sync.WaitGroup
loop:
	for {
		select {
		case <-ctx.Done():
			break loop
		case err := <-srvErr:
			log.Error("control API failed", "err", err)
			code = exitFailure
			break loop
		case err := <-d.Failed():
			log.Error("janusbridge failed", "err", err)
			code = exitFailure
			break loop
		case <-hup:
			// In the background, so the watchdog goes on while bridges
			// stop and start; reloads are serialised by the reloader.
			log.Info("SIGHUP: reloading the configuration", "file", path)
			reloads.Add(1)
			go func() {
				defer reloads.Done()
				r.reload() // the outcome is logged
			}()
		case <-watchdog:
			notify.Watchdog()
		case <-statusTick.C:
			if s := statusLine(d); s != status {
				status = s
				notify.Status(s)
			}
		}
	}
	notify.Stopping()
	stopSrv()
	srvWG.Wait()
	reloads.Wait()
	if err := d.Close(); err != nil {
		log.Error("janusbridge stopped uncleanly", "err", err)
		code = exitFailure
	}
	return code
}

// reloader re-reads the configuration file and applies it, for SIGHUP and
// POST /api/v1/reload alike.
type reloader struct {
	path   string
	daemon *bridge.Daemon
	level  *slog.LevelVar
	log    *slog.Logger
	notify *sdnotify.Notifier

	mu sync.Mutex
}

// reload loads the file and applies it. A file that does not load, or that
// the daemon refuses, changes nothing; the reason is logged and returned.
func (r *reloader) reload() (bridge.ReloadResult, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.notify.Reloading()
	defer func() { r.notify.Ready(statusLine(r.daemon)) }()
	cfg, err := config.Load(r.path)
	if err == nil {
		err = supported(cfg)
	}
	if err != nil {
		err = fmt.Errorf("reload refused, the running configuration is kept: %w", err)
		r.log.Error("reload", "err", err)
		return bridge.ReloadResult{}, err
	}
	res, err := r.daemon.Reload(cfg)
	if err != nil {
		r.log.Error("reload", "err", err)
		return res, err
	}
	var level slog.Level
	if level.UnmarshalText([]byte(cfg.Log.Level)) == nil {
		r.level.Set(level)
	}
	return res, nil
}

// statusLine is the service status: how many bridges are up.
func statusLine(d *bridge.Daemon) string {
	bridges := d.Bridges()
	up := 0
	for _, b := range bridges {
		if b.Status().State == bridge.StateUp {
			up++
		}
	}
	janus := "connected to " + d.JanusServer()
	if !d.JanusConnected() {
		janus = "Janus disconnected"
	}
	return fmt.Sprintf("%d/%d bridges up, %s", up, len(bridges), janus)
}

// supported refuses the bridges whose plugin, sinks or source this build
// cannot run yet, naming each.
func supported(cfg *config.Config) error {
	var errs []error
	for i := range cfg.Bridges {
		if err := bridge.Supported(&cfg.Bridges[i]); err != nil {
			errs = append(errs, fmt.Errorf("bridge[%d] %q: %w", i, cfg.Bridges[i].Name, err))
		}
	}
	return errors.Join(errs...)
}

// newLogger builds the daemon's logger from the [log] section, at a level
// that a reload can change.
func newLogger(c config.Log, level *slog.LevelVar, w io.Writer) *slog.Logger {
	var l slog.Level
	l.UnmarshalText([]byte(c.Level)) // validated by config
	level.Set(l)
	opts := &slog.HandlerOptions{Level: level}
	if c.Format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}
