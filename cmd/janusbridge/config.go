package main

import (
	"flag"
	"fmt"
	"io"

	"github.com/janusbridge/janusbridge/config"
)

// loadConfig parses the -c flag of a command and loads the file. It prints
// the problem and returns nil on bad usage or a bad file.
func loadConfig(name string, args []string, stderr io.Writer) *config.Config {
	path := configPath(name, args, stderr)
	if path == "" {
		return nil
	}
	cfg, err := config.Load(path)
	if err != nil {
		fmt.Fprintf(stderr, "janusbridge: %v\n", err)
		return nil
	}
	return cfg
}

// configPath parses the -c flag of a command. It prints the problem and
// returns "" on bad usage.
func configPath(name string, args []string, stderr io.Writer) string {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("c", "", "configuration `FILE`")
	if err := fs.Parse(args); err != nil {
		return ""
	}
	if *path == "" || fs.NArg() > 0 {
		fmt.Fprintf(stderr, "usage: janusbridge %s -c FILE\n", name)
		return ""
	}
	return *path
}

func cmdValidate(args []string, stdout, stderr io.Writer) int {
	cfg := loadConfig("validate", args, stderr)
	if cfg == nil {
		return exitUsage
	}
	if err := cfg.CheckOutputDirs(); err != nil {
		fmt.Fprintf(stderr, "janusbridge: %v\n", err)
		return exitUsage
	}
	for _, w := range cfg.Warnings() {
		fmt.Fprintf(stderr, "warning: %s\n", w)
	}
	fmt.Fprintf(stdout, "ok: %d bridges\n", len(cfg.Bridges))
	return exitOK
}
