package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/janusbridge/janusbridge/bridge"
	"github.com/janusbridge/janusbridge/config"
	"github.com/janusbridge/janusbridge/janus"
	"github.com/janusbridge/janusbridge/media"
)

// cmdProbe checks every configured server and every bridge's room or
// mountpoint against the live Janus. It exits 1 when anything is wrong.
func cmdProbe(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	cfg := loadConfig("probe", args, stderr)
	if cfg == nil {
		return exitUsage
	}
	opts := bridge.SessionOptions(cfg)
	ok := true
	for _, server := range cfg.Janus.Servers {
		line, good := probeServer(ctx, server, opts)
		fmt.Fprintln(stdout, line)
		ok = ok && good
	}
	if len(cfg.Bridges) == 0 {
		return boolExit(ok)
	}
	sctx, cancel := context.WithTimeout(ctx, time.Duration(cfg.Janus.RequestTimeout)*2)
	s, err := janus.Connect(sctx, opts)
	cancel()
	if err != nil {
		fmt.Fprintf(stdout, "bridges: not checked: no server accepts a session: %v\n", err)
		return exitFailure
	}
	defer s.Close(context.Background())
	for i := range cfg.Bridges {
		b := &cfg.Bridges[i]
		problems, facts := probeBridge(ctx, s, b)
		status := "ok"
		if len(problems) > 0 {
			status, ok = "FAIL", false
		}
		fmt.Fprintf(stdout, "bridge %q (%s %s): %s", b.Name, b.Plugin, b.Direction(), status)
		for _, f := range append(facts, problems...) {
			fmt.Fprintf(stdout, "\n  %s", f)
		}
		fmt.Fprintln(stdout)
	}
	return boolExit(ok)
}

func boolExit(ok bool) int {
	if ok {
		return exitOK
	}
	return exitFailure
}

// probeServer describes one server in a line, and says whether it accepts
// our credentials.
func probeServer(ctx context.Context, server string, opts janus.Options) (string, bool) {
	info, err := janus.GetInfo(ctx, server, opts)
	if err != nil {
		return fmt.Sprintf("server %s: unreachable: %v", server, err), false
	}
	line := fmt.Sprintf("server %s: %s %s; transports: %s; plugins: %s", server, info.Name,
		info.VersionString, moduleNames(info.Transports, "janus.transport."), moduleNames(info.Plugins, "janus.plugin."))
	opts.Servers = []string{server}
	opts.ReconnectMax = opts.ReconnectMin
	s, err := janus.Connect(ctx, opts)
	switch {
	case errors.Is(err, janus.ErrUnauthorized):
		return line + "; credentials: rejected (check api_secret / token)", false
	case err != nil:
		return line + "; session: " + err.Error(), false
	}
	s.Close(ctx)
	return line + "; credentials: accepted", true
}

func moduleNames(m map[string]janus.ModuleInfo, prefix string) string {
	var names []string
	for k := range m {
		names = append(names, strings.TrimPrefix(k, prefix))
	}
	sort.Strings(names)
	return strings.Join(names, ",")
}

// probeBridge checks a bridge's room or mountpoint and whether its codecs
// fit its sinks; it returns problems and informative facts.
func probeBridge(ctx context.Context, s *janus.Session, b *config.Bridge) (problems, facts []string) {
	h, err := s.Attach(ctx, "janus.plugin."+b.Plugin, "janusbridge-probe")
	if err != nil {
		return []string{fmt.Sprintf("plugin %s: %v", b.Plugin, err)}, nil
	}
	defer h.Detach(context.Background())
	var codecs []string // codecs Janus will send to the bridge's sinks
	switch b.Plugin {
	case config.PluginStreaming:
		id := bridge.JanusID(b.Mountpoint)
		info, err := janus.StreamingInfo(ctx, h, id, b.Secret)
		var pe *janus.PluginError
		switch {
		case errors.As(err, &pe) && pe.Code == janus.StreamingErrNoSuchMountpoint && b.Create:
			return nil, []string{fmt.Sprintf("mountpoint %s does not exist yet: it will be created", id)}
		case err != nil:
			return []string{fmt.Sprintf("mountpoint %s: %v", id, err)}, nil
		}
		for _, m := range info.Media {
			if m.Codec != "" {
				codecs = append(codecs, m.Codec)
			}
		}
		facts = append(facts, fmt.Sprintf("mountpoint %s exists: %s", id, describeCodecs(codecs)))
	case config.PluginVideoRoom:
		room := bridge.JanusID(b.Room)
		rooms, err := janus.VideoRoomList(ctx, h)
		if err != nil {
			return []string{fmt.Sprintf("room %s: %v", room, err)}, nil
		}
		i := slices.IndexFunc(rooms, func(r janus.VideoRoomInfo) bool { return r.Room == room })
		if i < 0 {
			// Private rooms are not listed: ask directly.
			if ok, err := janus.VideoRoomExists(ctx, h, room); err != nil || !ok {
				return []string{fmt.Sprintf("room %s does not exist", room)}, nil
			}
			return nil, []string{fmt.Sprintf("room %s exists (private: codecs not listed)", room)}
		}
		r := &rooms[i]
		codecs = append(r.VideoCodecs(), r.AudioCodecs()...)
		facts = append(facts, fmt.Sprintf("room %s exists: allows %s", room, describeCodecs(codecs)))
		if src := b.Source; src != nil {
			for _, t := range src.Tracks {
				if !slices.Contains(codecs, t.Codec) {
					problems = append(problems, fmt.Sprintf("room %s does not allow %s, which the source sends", room, t.Codec))
				}
			}
		}
	case config.PluginAudioBridge:
		room := bridge.JanusID(b.Room)
		if ok, err := janus.AudioBridgeExists(ctx, h, room); err != nil || !ok {
			return []string{fmt.Sprintf("room %s does not exist", room)}, nil
		}
		codecs = []string{media.Opus}
		facts = append(facts, fmt.Sprintf("room %s exists", room))
	}
	if len(codecs) > 0 {
		for _, sk := range b.Sinks {
			problems = append(problems, sinkFit(sk, codecs)...)
		}
	}
	return problems, facts
}

// sinkFit says what is wrong with a sink given the codecs it may get.
func sinkFit(sk config.Sink, codecs []string) []string {
	var problems []string
	held := 0
	for _, c := range codecs {
		kind := media.KindOf(c)
		if len(sk.Kinds) > 0 && !slices.Contains(sk.Kinds, kind) {
			continue
		}
		if media.SinkAccepts(sk.Type, c) {
			held++
			continue
		}
		if sk.Type == config.SinkRTMP && kind == "video" {
			if !slices.Contains(codecs, media.H264) {
				problems = append(problems, fmt.Sprintf("sink %q: rtmp needs H.264 video, Janus sends %s: use an H.264 room or mountpoint", sk.Name, describeCodecs(codecs)))
			}
			continue
		}
		if len(sk.Kinds) > 0 { // asked for explicitly
			problems = append(problems, fmt.Sprintf("sink %q: a %s file cannot hold %s", sk.Name, sk.Type, c))
		}
	}
	if held == 0 && len(problems) == 0 {
		problems = append(problems, fmt.Sprintf("sink %q: a %s sink can hold none of %s", sk.Name, sk.Type, describeCodecs(codecs)))
	}
	return problems
}

func describeCodecs(codecs []string) string {
	if len(codecs) == 0 {
		return "codecs unknown"
	}
	return strings.Join(codecs, "+")
}
