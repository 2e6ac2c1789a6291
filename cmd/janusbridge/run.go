package main

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/janusbridge/janusbridge/config"
)

func cmdRun(_ context.Context, args []string, _, stderr io.Writer) int {
	cfg := loadConfig("run", args, stderr)
	if cfg == nil {
		return exitUsage
	}
	if err := supported(cfg); err != nil {
		fmt.Fprintf(stderr, "janusbridge: %v\n", err)
		return exitUsage
	}
	return exitOK
}

// supported refuses the bridges whose plugin, sinks or source this build
// cannot run yet, naming each.
func supported(cfg *config.Config) error {
	var errs []error
	for i, b := range cfg.Bridges {
		errs = append(errs, fmt.Errorf("bridge[%d] %q: %s %s bridges are not supported yet", i, b.Name, b.Plugin, b.Direction()))
	}
	return errors.Join(errs...)
}
