package main

import (
	"fmt"
	"io"
	"runtime"
	"runtime/debug"
)

// Set by the linker (see the Makefile's build target).
var (
	version = "dev"
	commit  = ""
)

func cmdVersion(stdout io.Writer) int {
	c := commit
	pion := "unknown"
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" && c == "" {
				c = s.Value
			}
		}
		for _, d := range bi.Deps {
			if d.Path == "github.com/pion/webrtc/v4" {
				pion = d.Version
			}
		}
	}
	if c == "" {
		c = "unknown"
	}
	fmt.Fprintf(stdout, "janusbridge %s\ncommit %s\n%s\npion/webrtc %s\n", version, c, runtime.Version(), pion)
	return exitOK
}
