package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"

	"github.com/janusbridge/janusbridge/bridge"
	"github.com/janusbridge/janusbridge/config"
)

func cmdRun(ctx context.Context, args []string, _, stderr io.Writer) int {
	cfg := loadConfig("run", args, stderr)
	if cfg == nil {
		return exitUsage
	}
	if err := supported(cfg); err != nil {
		fmt.Fprintf(stderr, "janusbridge: %v\n", err)
		return exitUsage
	}
	log := newLogger(cfg.Log, stderr)
	if err := bridge.Run(ctx, cfg, log); err != nil {
		log.Error("janusbridge failed", "err", err)
		return exitFailure
	}
	return exitOK
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

// newLogger builds the daemon's logger from the [log] section.
func newLogger(c config.Log, w io.Writer) *slog.Logger {
	var level slog.Level
	level.UnmarshalText([]byte(c.Level)) // validated by config
	opts := &slog.HandlerOptions{Level: level}
	if c.Format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}
