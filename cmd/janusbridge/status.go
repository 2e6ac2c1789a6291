package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/janusbridge/janusbridge/config"
	"github.com/janusbridge/janusbridge/control"
)

// cmdStatus prints a table of the bridges of a running daemon, from its
// control API: found through the configuration file (-c), or given
// (--control URL, with --token-file when the API needs a token).
func cmdStatus(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("status", flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("c", "", "configuration `FILE` of the daemon")
	base := fs.String("control", "", "control API `URL`, e.g. http://127.0.0.1:8090")
	tokenFile := fs.String("token-file", "", "bearer token `FILE` for --control")
	if err := fs.Parse(args); err != nil {
		return exitUsage
	}
	if (*path == "") == (*base == "") || fs.NArg() > 0 || *path != "" && *tokenFile != "" {
		fmt.Fprintln(stderr, "usage: janusbridge status -c FILE | --control URL [--token-file FILE]")
		return exitUsage
	}
	var token string
	if *path != "" {
		cfg, err := config.Load(*path)
		if err != nil {
			fmt.Fprintf(stderr, "janusbridge: %v\n", err)
			return exitUsage
		}
		if cfg.Control.Listen == "" {
			fmt.Fprintf(stderr, "janusbridge: %s: control.listen is empty: the daemon has no control API\n", *path)
			return exitUsage
		}
		*base, token = "http://"+dialable(cfg.Control.Listen), cfg.Control.Token
	} else if *tokenFile != "" {
		b, err := os.ReadFile(*tokenFile)
		if err != nil {
			fmt.Fprintf(stderr, "janusbridge: %v\n", err)
			return exitUsage
		}
		token = strings.TrimSpace(string(b))
	}
	bridges, err := fetchBridges(ctx, strings.TrimRight(*base, "/"), token)
	if err != nil {
		fmt.Fprintf(stderr, "janusbridge: status: %v\n", err)
		return exitFailure
	}
	printStatus(stdout, bridges)
	return exitOK
}

// dialable turns a listen address into one to connect to: an unspecified
// host (all interfaces) becomes loopback.
func dialable(listen string) string {
	host, port, err := net.SplitHostPort(listen)
	if err != nil {
		return listen
	}
	if ip := net.ParseIP(host); host == "" || ip != nil && ip.IsUnspecified() {
		host = "127.0.0.1"
	}
	return net.JoinHostPort(host, port)
}

func fetchBridges(ctx context.Context, base, token string) ([]control.Bridge, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/api/v1/bridges", nil)
	if err != nil {
		return nil, err
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		var e struct {
			Error string `json:"error"`
		}
		json.Unmarshal(body, &e)
		if e.Error == "" {
			e.Error = strings.TrimSpace(string(body))
		}
		return nil, fmt.Errorf("%s: %s: %s", req.URL, resp.Status, e.Error)
	}
	var bridges []control.Bridge
	if err := json.Unmarshal(body, &bridges); err != nil {
		return nil, errors.Join(fmt.Errorf("%s: not the bridges list", req.URL), err)
	}
	return bridges, nil
}

// printStatus writes the table: name, plugin, direction, state, tracks,
// bitrate, loss, sinks.
func printStatus(w io.Writer, bridges []control.Bridge) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tPLUGIN\tDIRECTION\tSTATE\tTRACKS\tBITRATE\tLOSS\tSINKS")
	for _, b := range bridges {
		var bps, packets, lost uint64
		var kinds []string
		for _, t := range b.Tracks {
			bps += t.BitrateBPS
			packets += t.Packets
			lost += t.Lost
			kinds = append(kinds, t.Kind+"/"+t.Codec)
		}
		tracks := "-"
		if len(kinds) > 0 {
			tracks = fmt.Sprintf("%d %s", len(kinds), strings.Join(kinds, ","))
		}
		loss := "-"
		if packets+lost > 0 {
			loss = fmt.Sprintf("%.2f%%", 100*float64(lost)/float64(packets+lost))
		}
		var sinks []string
		for _, s := range b.Sinks {
			d := s.Name + ":" + s.State
			if s.Errors > 0 {
				d += fmt.Sprintf("(%d errors)", s.Errors)
			}
			sinks = append(sinks, d)
		}
		state := b.State
		if b.LastError != "" && b.State != "up" {
			state += " (" + b.LastError + ")"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", b.Name, b.Plugin, b.Direction, state, tracks,
			bitrate(bps), loss, strings.Join(sinks, " "))
	}
	tw.Flush()
}

func bitrate(bps uint64) string {
	switch {
	case bps >= 1e6:
		return fmt.Sprintf("%.2f Mbit/s", float64(bps)/1e6)
	case bps >= 1e3:
		return fmt.Sprintf("%.0f kbit/s", float64(bps)/1e3)
	}
	return fmt.Sprintf("%d bit/s", bps)
}
