// Command janusbridge connects to a Janus WebRTC Server as a client and
// moves media between Janus and the outside world, as declared in a TOML
// file. See the README for the commands.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

// Exit codes of every command (SPEC §3).
const (
	exitOK      = 0
	exitFailure = 1 // runtime failure, or probe found a problem
	exitUsage   = 2 // bad usage or config
)

const usage = `usage: janusbridge <command> [flags]

commands:
  run -c FILE        run every bridge in FILE until SIGTERM/SIGINT (SIGHUP reloads FILE)
  validate -c FILE   check FILE offline and print "ok: N bridges"
  probe -c FILE      check the Janus servers and the bridges' rooms and mountpoints
  status -c FILE | --control URL [--token-file FILE]
                     print the bridges of a running daemon, from its control API
  version            print version, commit, Go and pion versions
`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	code := runMain(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// runMain runs one command and returns its exit code.
func runMain(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return exitUsage
	}
	cmd, args := args[0], args[1:]
	switch cmd {
	case "run":
		return cmdRun(ctx, args, stdout, stderr)
	case "validate":
		return cmdValidate(args, stdout, stderr)
	case "probe":
		return cmdProbe(ctx, args, stdout, stderr)
	case "status":
		return cmdStatus(ctx, args, stdout, stderr)
	case "version":
		return cmdVersion(stdout)
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return exitOK
	default:
		fmt.Fprintf(stderr, "janusbridge: unknown command %q\n%s", cmd, usage)
		return exitUsage
	}
}
