package config

import (
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

// codecs are the codecs of source tracks.
var codecs = map[string]struct {
	kind      string
	dynamic   bool // needs a dynamic payload type (96-127)
	staticPT  int  // else the static one
	clockRate int
	channels  int
}{
	"opus": {kind: "audio", dynamic: true, clockRate: 48000, channels: 2},
	"pcmu": {kind: "audio", staticPT: 0, clockRate: 8000, channels: 1},
	"pcma": {kind: "audio", staticPT: 8, clockRate: 8000, channels: 1},
	"vp8":  {kind: "video", dynamic: true, clockRate: 90000},
	"vp9":  {kind: "video", dynamic: true, clockRate: 90000},
	"h264": {kind: "video", dynamic: true, clockRate: 90000},
	"av1":  {kind: "video", dynamic: true, clockRate: 90000},
}

// containers lists the codecs each sink type holds without transcoding
// (rtmp: Opus is transcoded to AAC).
var containers = map[string][]string{
	SinkWebM: {"vp8", "vp9", "av1", "opus"},
	SinkMKV:  {"vp8", "vp9", "av1", "h264", "opus", "pcmu", "pcma"},
	SinkOgg:  {"opus"},
	SinkMP4:  {"h264", "vp9", "av1", "opus"},
	SinkRTP:  {"vp8", "vp9", "av1", "h264", "opus", "pcmu", "pcma"},
	SinkRTMP: {"h264", "opus"},
}

// fileFormats maps file extensions to containers, for file sources and
// the extension of file sinks.
var fileFormats = map[string]string{
	".webm": "webm", ".mkv": "mkv", ".mka": "mkv", ".ogg": "ogg", ".opus": "ogg", ".oga": "ogg",
	".ivf": "ivf", ".mp4": "mp4", ".m4a": "mp4", ".m4v": "mp4", ".h264": "h264", ".264": "h264",
}

func lowerExt(path string) string { return strings.ToLower(filepath.Ext(path)) }

// bridgeKeys lists, per plugin, the optional bridge keys that a recv and a
// send bridge take.
var bridgeKeys = map[string][2][]string{
	PluginStreaming:   {{"mountpoint", "pin", "substream", "keyframe_interval"}, {"mountpoint", "pin", "create", "secret", "admin_key"}},
	PluginVideoRoom:   {{"room", "pin", "feeds", "include_own", "substream", "keyframe_interval"}, {"room", "pin", "display"}},
	PluginAudioBridge: {{"room", "pin"}, {"room", "pin", "display"}},
	PluginEchoTest:    {{"keyframe_interval"}, {}},
}

// sinkKeys lists the keys each sink type takes besides type and name.
var sinkKeys = map[string][]string{
	SinkWebM: {"path", "segment", "on_close", "keep", "max_total_size", "min_free", "kinds"},
	SinkMKV:  {"path", "segment", "on_close", "keep", "max_total_size", "min_free", "kinds"},
	SinkOgg:  {"path", "segment", "on_close", "keep", "max_total_size", "min_free", "kinds"},
	SinkMP4:  {"path", "segment", "on_close", "keep", "max_total_size", "min_free", "kinds"},
	SinkRTP:  {"host", "port", "sdp", "kinds"},
	SinkRTMP: {"url", "audio_bitrate", "kinds"},
}

// sourceKeys lists the keys each source type takes besides type.
var sourceKeys = map[string][]string{
	SourceRTP:  {"sdp", "track"},
	SourceFile: {"path", "loop", "fps"},
	SourceRTMP: {"url", "listen", "app", "key"},
}

var (
	nameRE        = regexp.MustCompile(`^[a-z0-9_-]+$`)
	placeholderRE = regexp.MustCompile(`\{[^{}]*\}`)
)

// setKey is an optional key and whether it has a value.
type setKey struct {
	key string
	set bool
}

// issues collects problems while checking.
type issues []issue

func (is *issues) add(path, format string, args ...any) {
	*is = append(*is, issue{path, fmt.Sprintf(format, args...)})
}

// refuse reports, with msg, each key of keys under path that is set (or
// present in the file) but not in allowed.
func (c *Config) refuse(is *issues, path string, keys []setKey, allowed []string, msg string) {
	for _, k := range keys {
		if (k.set || c.keys[path+"."+k.key]) && !slices.Contains(allowed, k.key) {
			is.add(path+"."+k.key, "%s", msg)
		}
	}
}

// Validate checks every rule of SPEC §4 that can be checked offline and
// returns one error per problem, joined with errors.Join; nil if c is valid.
// Parse calls it; call it again after changing a Config in code.
func (c *Config) Validate() error {
	return c.join(c.check())
}

func (c *Config) check() []issue {
	var is issues
	c.checkJanus(&is)
	c.checkWebRTC(&is)
	c.checkControl(&is)
	switch c.Log.Level {
	case "debug", "info", "warn", "error":
	default:
		is.add("log.level", "unknown level %q (debug, info, warn, error)", c.Log.Level)
	}
	if c.Log.Format != "text" && c.Log.Format != "json" {
		is.add("log.format", "unknown format %q (text, json)", c.Log.Format)
	}
	positive(&is, "defaults.shutdown_timeout", c.Defaults.ShutdownTimeout)
	names := map[string]int{}
	for i := range c.Bridges {
		c.checkBridge(&is, i, names)
	}
	c.checkCollisions(&is)
	return is
}

func positive(is *issues, path string, d Duration) {
	if d <= 0 {
		is.add(path, "must be greater than 0")
	}
}

func (c *Config) checkJanus(is *issues) {
	j := &c.Janus
	if len(j.Servers) == 0 {
		is.add("janus.servers", "required: at least one Janus URL")
	}
	for i, s := range j.Servers {
		p := fmt.Sprintf("janus.servers[%d]", i)
		u, err := url.Parse(s)
		switch {
		case err != nil || u.Host == "":
			is.add(p, "invalid URL %q", s)
		case !slices.Contains([]string{"ws", "wss", "http", "https"}, u.Scheme):
			is.add(p, "unsupported scheme %q (ws, wss, http, https)", u.Scheme)
		}
	}
	positive(is, "janus.request_timeout", j.RequestTimeout)
	positive(is, "janus.keepalive", j.Keepalive)
	positive(is, "janus.reconnect_min", j.ReconnectMin)
	if j.ReconnectMax < j.ReconnectMin {
		is.add("janus.reconnect_max", "must not be less than reconnect_min (%s)", j.ReconnectMin)
	}
}

func (c *Config) checkWebRTC(is *issues) {
	w := &c.WebRTC
	for i, s := range w.ICEServers {
		p := fmt.Sprintf("webrtc.ice_servers[%d]", i)
		if len(s.URLs) == 0 {
			is.add(p+".urls", "required")
		}
		turn := false
		for k, u := range s.URLs {
			scheme, _, _ := strings.Cut(u, ":")
			switch scheme {
			case "stun", "stuns":
			case "turn", "turns":
				turn = true
			default:
				is.add(fmt.Sprintf("%s.urls[%d]", p, k), "unsupported scheme %q (stun, stuns, turn, turns)", scheme)
			}
		}
		if turn && s.Username == "" {
			is.add(p+".username", "required for a TURN server")
		}
		if turn && s.Credential == "" {
			is.add(p+".credential", "required for a TURN server")
		}
	}
	for _, p := range []struct {
		key string
		v   int
	}{{"webrtc.udp_port_min", w.UDPPortMin}, {"webrtc.udp_port_max", w.UDPPortMax}} {
		if p.v < 0 || p.v > 65535 {
			is.add(p.key, "must be between 0 and 65535")
		}
	}
	switch {
	case (w.UDPPortMin == 0) != (w.UDPPortMax == 0):
		is.add("webrtc.udp_port_min", "set udp_port_min and udp_port_max together (0 and 0 = any port)")
	case w.UDPPortMax < w.UDPPortMin:
		is.add("webrtc.udp_port_max", "must not be less than udp_port_min (%d)", w.UDPPortMin)
	}
	for i, ip := range w.NAT1To1IPs {
		if net.ParseIP(ip) == nil {
			is.add(fmt.Sprintf("webrtc.nat_1to1_ips[%d]", i), "invalid IP address %q", ip)
		}
	}
	for i, name := range w.Interfaces {
		if name == "" {
			is.add(fmt.Sprintf("webrtc.interfaces[%d]", i), "must not be empty")
		}
	}
	positive(is, "webrtc.ice_disconnected_timeout", w.ICEDisconnectedTimeout)
	positive(is, "webrtc.ice_failed_timeout", w.ICEFailedTimeout)
}

// checkAddr checks a host:port address; the message is "" when it is fine.
func checkAddr(addr string, minPort int) string {
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Sprintf("invalid address %q: want host:port", addr)
	}
	if n, err := strconv.Atoi(port); err != nil || n < minPort || n > 65535 {
		return fmt.Sprintf("invalid port in %q", addr)
	}
	return ""
}

func (c *Config) checkControl(is *issues) {
	l := c.Control.Listen
	if l == "" {
		return
	}
	if msg := checkAddr(l, 0); msg != "" {
		is.add("control.listen", "%s", msg)
		return
	}
	host, _, _ := net.SplitHostPort(l)
	ip := net.ParseIP(host)
	loopback := host == "localhost" || ip != nil && ip.IsLoopback()
	if !loopback && c.Control.Token == "" && c.Control.TokenFile == "" {
		is.add("control.listen", "%q is not a loopback address: set control.token_file", l)
	}
}

func (c *Config) checkBridge(is *issues, i int, names map[string]int) {
	b := &c.Bridges[i]
	p := fmt.Sprintf("bridge[%d]", i)
	switch j, dup := names[b.Name]; {
	case b.Name == "":
		is.add(p+".name", "required")
	case !nameRE.MatchString(b.Name):
		is.add(p+".name", "must match [a-z0-9_-]+")
	case dup:
		is.add(p+".name", "%q is already the name of bridge[%d]", b.Name, j)
	default:
		names[b.Name] = i
	}
	dir := b.Direction()
	switch keys, ok := bridgeKeys[b.Plugin]; {
	case b.Plugin == "":
		is.add(p+".plugin", "required (streaming, videoroom, audiobridge, echotest)")
	case !ok:
		is.add(p+".plugin", "unknown plugin %q (streaming, videoroom, audiobridge, echotest)", b.Plugin)
	case dir == "":
		is.add(p, "needs [[bridge.sink]] (to receive) or a [bridge.source] (to send)")
	case dir == "both" && b.Plugin != PluginEchoTest:
		is.add(p+".source", "only an echotest bridge may have both sinks and a source")
	default:
		c.checkBridgeKeys(is, p, b, dir, keys)
	}
	for j := range b.Sinks {
		c.checkSink(is, p, b, j)
	}
	if b.Source != nil {
		c.checkSource(is, p, b)
	}
}

func (c *Config) checkBridgeKeys(is *issues, p string, b *Bridge, dir string, keys [2][]string) {
	var allowed []string
	if dir != "send" {
		allowed = append(allowed, keys[0]...)
	}
	if dir != "recv" {
		allowed = append(allowed, keys[1]...)
	}
	var ofPlugin, others []setKey
	for _, k := range []setKey{
		{"mountpoint", b.Mountpoint.IsSet()},
		{"room", b.Room.IsSet()},
		{"pin", b.Pin != ""},
		{"feeds", b.Feeds.All || b.Feeds.IDs != nil},
		{"include_own", b.IncludeOwn},
		{"substream", b.Substream != nil},
		{"display", b.Display != ""},
		{"create", b.Create},
		{"secret", b.Secret != ""},
		{"admin_key", b.AdminKey != ""},
		{"keyframe_interval", false}, // set from [defaults]: only the key counts
	} {
		if slices.Contains(keys[0], k.key) || slices.Contains(keys[1], k.key) {
			ofPlugin = append(ofPlugin, k)
		} else {
			others = append(others, k)
		}
	}
	c.refuse(is, p, others, nil, fmt.Sprintf("does not apply to plugin %q", b.Plugin))
	c.refuse(is, p, ofPlugin, allowed, "does not apply to a "+dir+" bridge")
	if b.Plugin == PluginVideoRoom && dir == "recv" && !b.Feeds.All {
		c.refuse(is, p, []setKey{{"include_own", b.IncludeOwn}}, nil, `only applies with feeds = "all"`)
	}
	if b.Plugin == PluginStreaming && dir == "send" && !b.Create {
		c.refuse(is, p, []setKey{{"pin", b.Pin != ""}, {"admin_key", b.AdminKey != ""}}, nil, "only applies with create = true")
	}

	switch b.Plugin {
	case PluginStreaming:
		if !b.Mountpoint.IsSet() {
			is.add(p+".mountpoint", "required for plugin %q", b.Plugin)
		}
	case PluginVideoRoom, PluginAudioBridge:
		if !b.Room.IsSet() {
			is.add(p+".room", "required for plugin %q", b.Plugin)
		}
	}
	if b.Plugin == PluginVideoRoom && dir == "recv" {
		switch {
		case !b.Feeds.All && b.Feeds.IDs == nil:
			is.add(p+".feeds", `required for a videoroom recv bridge: "all" or a list of feed ids`)
		case !b.Feeds.All && len(b.Feeds.IDs) == 0:
			is.add(p+".feeds", "must not be empty")
		}
		for k, id := range b.Feeds.IDs {
			if slices.Contains(b.Feeds.IDs[:k], id) {
				is.add(p+".feeds", "feed %s listed twice", id)
			}
		}
	}
	if b.Substream != nil && (*b.Substream < 0 || *b.Substream > 2) {
		is.add(p+".substream", "must be 0, 1 or 2")
	}
}

func (c *Config) checkSink(is *issues, p string, b *Bridge, j int) {
	s := &b.Sinks[j]
	sp := fmt.Sprintf("%s.sink[%d]", p, j)
	switch {
	case !nameRE.MatchString(s.Name):
		is.add(sp+".name", "must match [a-z0-9_-]+")
	default:
		for k := range j {
			if b.Sinks[k].Name == s.Name {
				is.add(sp+".name", "%q is already the name of sink[%d]", s.Name, k)
			}
		}
	}
	allowed, ok := sinkKeys[s.Type]
	if s.Type == "" {
		is.add(sp+".type", "required (webm, mkv, ogg, mp4, rtp, rtmp)")
		return
	}
	if !ok {
		is.add(sp+".type", "unknown sink type %q (webm, mkv, ogg, mp4, rtp, rtmp)", s.Type)
		return
	}
	c.refuse(is, sp, []setKey{
		{"path", s.Path != ""},
		{"segment", s.Segment != 0},
		{"on_close", s.OnClose != nil},
		{"keep", s.Keep != 0},
		{"max_total_size", s.MaxTotalSize != 0},
		{"min_free", s.MinFree != 0},
		{"kinds", s.Kinds != nil},
		{"host", s.Host != ""},
		{"port", s.Port != 0},
		{"sdp", s.SDP != ""},
		{"url", s.URL != ""},
		{"audio_bitrate", s.AudioBitrate != 0},
	}, allowed, fmt.Sprintf("does not apply to sink type %q", s.Type))

	switch {
	case s.IsFile() && s.Path == "":
		is.add(sp+".path", "required for type %q", s.Type)
	case s.IsFile():
		checkTemplate(is, sp+".path", b, s)
	case s.Type == SinkRTP:
		switch {
		case s.Host == "":
			is.add(sp+".host", "required for type %q", s.Type)
		case strings.ContainsFunc(s.Host, func(r rune) bool { return r <= ' ' || r == '/' }): // it goes into the SDP
			is.add(sp+".host", "invalid host %q", s.Host)
		}
		switch {
		case s.Port == 0:
			is.add(sp+".port", "required for type %q", s.Type)
		case s.Port < 1 || s.Port > 65535:
			is.add(sp+".port", "must be between 1 and 65535")
		case s.Port%2 != 0:
			is.add(sp+".port", "must be even (RTCP goes to port+1)")
		}
	case s.Type == SinkRTMP:
		u, err := url.Parse(s.URL)
		switch {
		case s.URL == "":
			is.add(sp+".url", "required for type %q", s.Type)
		case err != nil || (u.Scheme != "rtmp" && u.Scheme != "rtmps") || u.Host == "":
			is.add(sp+".url", "must be an rtmp:// or rtmps:// URL") // no echo: the URL holds the stream key
		}
		if s.AudioBitrate < 8000 || s.AudioBitrate > 512000 {
			is.add(sp+".audio_bitrate", "must be between 8000 and 512000")
		}
	}
	if s.IsFile() && s.OnClose != nil {
		switch {
		case len(s.OnClose) == 0 || s.OnClose[0] == "":
			is.add(sp+".on_close", "needs a command")
		default:
			for k, arg := range s.OnClose {
				for _, ph := range placeholderRE.FindAllString(arg, -1) {
					if ph != "{path}" {
						is.add(fmt.Sprintf("%s.on_close[%d]", sp, k), "unknown placeholder %q ({path})", ph)
					}
				}
			}
		}
	}
	if (s.Type == SinkRTP || s.Type == SinkRTMP) && b.Plugin == PluginVideoRoom {
		switch {
		case b.Feeds.All:
			is.add(sp+".type", `%q sinks are refused on a feeds = "all" bridge (use one bridge per feed)`, s.Type)
		case len(b.Feeds.IDs) > 1:
			is.add(sp+".type", "%q sinks need a bridge with a single feed (use one bridge per feed)", s.Type)
		}
	}
	if s.Kinds != nil && len(s.Kinds) == 0 {
		is.add(sp+".kinds", "must not be empty (leave it out for every kind)")
	}
	for k, kind := range s.Kinds {
		kp := fmt.Sprintf("%s.kinds[%d]", sp, k)
		switch {
		case kind != "audio" && kind != "video":
			is.add(kp, "unknown kind %q (audio, video)", kind)
		case slices.Contains(s.Kinds[:k], kind):
			is.add(kp, "%q listed twice", kind)
		case kind == "video" && s.Type == SinkOgg:
			is.add(kp, "an ogg file holds audio only")
		case kind == "video" && b.Plugin == PluginAudioBridge:
			is.add(kp, "an audiobridge room carries audio only")
		}
	}
}

// checkTemplate checks a file sink's path template: known placeholders that
// the bridge can fill, and no two files of the sink on the same path.
func checkTemplate(is *issues, key string, b *Bridge, s *Sink) {
	for _, ph := range placeholderRE.FindAllString(s.Path, -1) {
		switch ph {
		case "{bridge}", "{start}", "{seq}":
		case "{room}":
			if !b.Room.IsSet() {
				is.add(key, "{room} on a bridge without a room")
			}
		case "{mountpoint}":
			if !b.Mountpoint.IsSet() {
				is.add(key, "{mountpoint} on a bridge without a mountpoint")
			}
		case "{feed}", "{display}":
			if b.Plugin != PluginVideoRoom {
				is.add(key, "%s on a bridge without feeds", ph)
			}
		default:
			is.add(key, "unknown placeholder %q ({bridge}, {room}, {mountpoint}, {feed}, {display}, {start}, {seq})", ph)
		}
	}
	has := func(ph string) bool { return strings.Contains(s.Path, ph) }
	if s.Segment > 0 && !has("{start}") && !has("{seq}") {
		is.add(key, "segment needs {start} or {seq} in the path")
	}
	switch {
	case b.Plugin != PluginVideoRoom || has("{feed}"):
	case b.Feeds.All:
		is.add(key, `feeds = "all" needs {feed} in the path`)
	case len(b.Feeds.IDs) > 1:
		is.add(key, "several feeds need {feed} in the path")
	}
	if strings.HasSuffix(s.Path, "/") {
		is.add(key, "must name a file, not a directory")
	}
}

func (c *Config) checkSource(is *issues, p string, b *Bridge) {
	src := b.Source
	sp := p + ".source"
	allowed, ok := sourceKeys[src.Type]
	if src.Type == "" {
		is.add(sp+".type", "required (rtp, file, rtmp)")
		return
	}
	if !ok {
		is.add(sp+".type", "unknown source type %q (rtp, file, rtmp)", src.Type)
		return
	}
	c.refuse(is, sp, []setKey{
		{"sdp", src.SDP != ""},
		{"track", src.Tracks != nil},
		{"path", src.Path != ""},
		{"loop", src.Loop},
		{"fps", src.FPS != 0},
		{"url", src.URL != ""},
		{"listen", src.Listen != ""},
		{"app", src.App != ""},
		{"key", src.Key != ""},
	}, allowed, fmt.Sprintf("does not apply to source type %q", src.Type))

	switch src.Type {
	case SourceRTP:
		switch {
		case src.SDP != "" && len(src.Tracks) > 0:
			is.add(sp+".sdp", "set either sdp or [[bridge.source.track]], not both")
		case src.SDP == "" && len(src.Tracks) == 0:
			is.add(sp, "needs sdp or [[bridge.source.track]]")
		}
		for j := range src.Tracks {
			c.checkTrack(is, fmt.Sprintf("%s.track[%d]", sp, j), b, &src.Tracks[j])
		}
	case SourceFile:
		format := src.FileFormat()
		switch {
		case src.Path == "":
			is.add(sp+".path", "required for type %q", src.Type)
		case format == "":
			is.add(sp+".path", "unsupported file type %q (.webm, .mkv, .mka, .ogg, .opus, .oga, .ivf, .mp4, .m4a, .m4v, .h264, .264)", lowerExt(src.Path))
		case format == "h264" && src.FPS == 0:
			is.add(sp+".fps", "required for an Annex-B H.264 file")
		case format == "h264" && (src.FPS < 0 || src.FPS > 240):
			is.add(sp+".fps", "must be between 0 and 240")
		case format != "h264" && src.FPS != 0:
			is.add(sp+".fps", "only applies to Annex-B H.264 files (.h264, .264)")
		}
	case SourceRTMP:
		switch {
		case src.URL != "" && src.Listen != "":
			is.add(sp+".url", "set either url (to pull) or listen (to accept a publisher), not both")
		case src.URL != "":
			if u, err := url.Parse(src.URL); err != nil || (u.Scheme != "rtmp" && u.Scheme != "rtmps") || u.Host == "" {
				is.add(sp+".url", "must be an rtmp:// or rtmps:// URL")
			}
			c.refuse(is, sp, []setKey{{"app", src.App != ""}, {"key", src.Key != ""}}, nil, "only applies with listen")
		case src.Listen != "":
			if msg := checkAddr(src.Listen, 1); msg != "" {
				is.add(sp+".listen", "%s", msg)
			}
			if src.App == "" {
				is.add(sp+".app", "required with listen")
			}
			if src.Key == "" {
				is.add(sp+".key", "required with listen")
			}
		default:
			is.add(sp, "needs url (to pull) or listen (to accept a publisher)")
		}
	}
}

func (c *Config) checkTrack(is *issues, tp string, b *Bridge, t *SourceTrack) {
	switch {
	case t.Kind == "":
		is.add(tp+".kind", "required (audio, video)")
	case t.Kind != "audio" && t.Kind != "video":
		is.add(tp+".kind", "unknown kind %q (audio, video)", t.Kind)
	case t.Kind == "video" && b.Plugin == PluginAudioBridge:
		is.add(tp+".kind", "an audiobridge room takes audio only")
	}
	switch msg := checkAddr(t.Listen, 1); {
	case t.Listen == "":
		is.add(tp+".listen", "required")
	case msg != "":
		is.add(tp+".listen", "%s", msg)
	}
	if strings.ContainsAny(t.Fmtp, "\r\n") {
		is.add(tp+".fmtp", "must be one line")
	}
	codec, ok := codecs[t.Codec]
	switch {
	case t.Codec == "":
		is.add(tp+".codec", "required (opus, pcmu, pcma, vp8, vp9, h264, av1)")
		return
	case !ok:
		is.add(tp+".codec", "unknown codec %q (opus, pcmu, pcma, vp8, vp9, h264, av1)", t.Codec)
		return
	case (t.Kind == "audio" || t.Kind == "video") && t.Kind != codec.kind:
		is.add(tp+".codec", "%q is an %s codec, but kind is %q", t.Codec, codec.kind, t.Kind)
	}
	dynamic := t.PayloadType >= 96 && t.PayloadType <= 127
	switch {
	case codec.dynamic && t.PayloadType == 0 && !c.keys[tp+".payload_type"]:
		is.add(tp+".payload_type", "required for codec %q (96-127)", t.Codec)
	case codec.dynamic && !dynamic:
		is.add(tp+".payload_type", "%q needs a dynamic payload type (96-127)", t.Codec)
	case !codec.dynamic && !dynamic && t.PayloadType != codec.staticPT:
		is.add(tp+".payload_type", "%q needs %d or a dynamic payload type (96-127)", t.Codec, codec.staticPT)
	}
	if t.ClockRate != codec.clockRate {
		is.add(tp+".clock_rate", "%q runs at %d Hz", t.Codec, codec.clockRate)
	}
	switch {
	case codec.kind == "video":
		c.refuse(is, tp, []setKey{{"channels", t.Channels != 0}}, nil, "does not apply to video")
	case codec.channels == 1 && t.Channels != 1:
		is.add(tp+".channels", "must be 1 for %q", t.Codec)
	case t.Channels < 1 || t.Channels > 2:
		is.add(tp+".channels", "must be 1 or 2 for %q", t.Codec)
	}
}

// endpoint is a listening or target address and who uses it.
type endpoint struct {
	host, port, who string
}

// clashes reports whether two sockets cannot bind (or send to) both.
func (e endpoint) clashes(o endpoint) bool {
	wildcard := func(h string) bool { return h == "" || net.ParseIP(h).IsUnspecified() }
	return e.port == o.port && (e.host == o.host || wildcard(e.host) || wildcard(o.host))
}

// claim records an address, or reports who already has it.
func claim(list *[]endpoint, addr, who string) (string, bool) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", true // reported elsewhere
	}
	e := endpoint{host, port, who}
	for _, o := range *list {
		if e.clashes(o) {
			return o.who, false
		}
	}
	*list = append(*list, e)
	return "", true
}

// checkCollisions finds file sinks of the same or different bridges whose
// path templates are the same once the bridge's own placeholders are filled,
// and addresses or files used twice.
func (c *Config) checkCollisions(is *issues) {
	var (
		paths      = map[string]string{} // template with {bridge}, {room}, {mountpoint} filled -> sink
		sdps       = map[string]string{} // sdp file -> sink
		udp, tcp   []endpoint            // listen addresses
		rtpTargets []endpoint            // rtp sink host:port
	)
	if c.Control.Listen != "" {
		claim(&tcp, c.Control.Listen, "control.listen")
	}
	for i := range c.Bridges {
		b := &c.Bridges[i]
		p := fmt.Sprintf("bridge[%d]", i)
		for j := range b.Sinks {
			s := &b.Sinks[j]
			sp := fmt.Sprintf("%s.sink[%d]", p, j)
			who := fmt.Sprintf("%s sink[%d]", c.display(p), j)
			if s.IsFile() && s.Path != "" {
				r := strings.NewReplacer("{bridge}", b.Name, "{room}", b.Room.String(), "{mountpoint}", b.Mountpoint.String())
				path := filepath.Clean(r.Replace(s.Path))
				if other, dup := paths[path]; dup {
					is.add(sp+".path", "can collide with the path of %s", other)
				} else {
					paths[path] = who
				}
			}
			if s.Type == SinkRTP && s.SDP != "" {
				sdp := filepath.Clean(s.SDP)
				if other, dup := sdps[sdp]; dup {
					is.add(sp+".sdp", "same file as the sdp of %s", other)
				} else {
					sdps[sdp] = who
				}
			}
			if s.Type == SinkRTP && s.Host != "" && s.Port != 0 {
				// Exact host and port only: how many ports a sink uses depends on its tracks.
				addr := net.JoinHostPort(s.Host, strconv.Itoa(s.Port))
				for _, o := range rtpTargets {
					if o.host == s.Host && o.port == strconv.Itoa(s.Port) {
						is.add(sp+".port", "%q is also the target of %s", addr, o.who)
					}
				}
				rtpTargets = append(rtpTargets, endpoint{s.Host, strconv.Itoa(s.Port), who})
			}
		}
		if b.Source == nil {
			continue
		}
		if b.Source.Type == SourceRTMP && b.Source.Listen != "" {
			if other, ok := claim(&tcp, b.Source.Listen, c.display(p)+" source"); !ok {
				is.add(p+".source.listen", "%q is also the listen address of %s", b.Source.Listen, other)
			}
		}
		if b.Source.Type != SourceRTP {
			continue
		}
		for j, t := range b.Source.Tracks {
			if other, ok := claim(&udp, t.Listen, fmt.Sprintf("%s track[%d]", c.display(p), j)); !ok {
				is.add(fmt.Sprintf("%s.source.track[%d].listen", p, j), "%q is also the listen address of %s", t.Listen, other)
			}
		}
	}
}

// Warnings lists what Validate accepts but will likely not work as meant,
// in the form of errors: a file sink whose extension does not match its
// type, a sink given a codec (known in advance from an rtp or H.264 file
// source of an echotest bridge) that its container cannot hold, a keepalive
// too long for Janus' default session timeout.
func (c *Config) Warnings() []string {
	var is issues
	if time.Duration(c.Janus.Keepalive) >= time.Minute {
		is.add("janus.keepalive", "Janus drops sessions idle for session_timeout (60s by default): keep this below it")
	}
	for i := range c.Bridges {
		b := &c.Bridges[i]
		var known []string // codecs of the bridge's source, when known offline
		if src := b.Source; src != nil {
			for _, t := range src.Tracks {
				known = append(known, t.Codec)
			}
			if src.Type == SourceFile && src.FileFormat() == "h264" {
				known = append(known, "h264")
			}
		}
		for j := range b.Sinks {
			s := &b.Sinks[j]
			sp := fmt.Sprintf("bridge[%d].sink[%d]", i, j)
			if ext := lowerExt(s.Path); s.IsFile() && fileFormats[ext] != s.Type {
				is.add(sp+".path", "extension %q does not match type %q", ext, s.Type)
			}
			for _, codec := range known {
				info, ok := codecs[codec]
				if ok && holdsKind(s, info.kind) && !slices.Contains(containers[s.Type], codec) {
					is.add(sp+".type", "sink type %q cannot hold %s, which the source sends", s.Type, codec)
				}
			}
		}
	}
	var out []string
	for _, w := range c.placed(is) {
		out = append(out, w.Error())
	}
	return out
}

// holdsKind reports whether s takes tracks of kind (audio or video).
func holdsKind(s *Sink, kind string) bool {
	if kind == "video" && s.Type == SinkOgg {
		return false
	}
	return s.Kinds == nil || slices.Contains(s.Kinds, kind)
}

// CheckOutputDirs creates the fixed directory of every file sink's path
// template (the part before the first placeholder) and of every rtp sink's
// sdp file, and checks that files can be created in it. Load and Parse
// never touch the file system this way; janusbridge validate calls this.
func (c *Config) CheckOutputDirs() error {
	var is issues
	seen := map[string]bool{}
	for i := range c.Bridges {
		for j, s := range c.Bridges[i].Sinks {
			key, path := "path", s.Path
			if s.Type == SinkRTP {
				key, path = "sdp", s.SDP
			}
			if path == "" || !s.IsFile() && s.Type != SinkRTP {
				continue
			}
			if k := strings.IndexByte(path, '{'); k >= 0 {
				path = path[:k]
			}
			dir := filepath.Dir(path)
			if seen[dir] {
				continue
			}
			seen[dir] = true
			if err := writableDir(dir); err != nil {
				is.add(fmt.Sprintf("bridge[%d].sink[%d].%s", i, j, key), "%v", err)
			}
		}
	}
	return c.join(is)
}

// writableDir creates dir if needed and checks that a file can be created in it.
func writableDir(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	f, err := os.CreateTemp(dir, ".janusbridge-check-*")
	if err != nil {
		return err
	}
	f.Close()
	return os.Remove(f.Name())
}
