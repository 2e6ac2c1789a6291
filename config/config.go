// Package config holds janusbridge's configuration: the types of the TOML
// file (SPEC §4), their defaults, Load/Parse (strict decoding that rejects
// unknown keys) and Validate (every cross-field rule). Errors name the file,
// the line when known and the full key path, e.g.
//
//	bridges.toml:14: bridge[1] "lobby": sink[0].path: required for type "webm"
package config

import "time"

// Config is a whole janusbridge configuration file.
type Config struct {
	Janus    Janus    `toml:"janus"`
	WebRTC   WebRTC   `toml:"webrtc"`
	Control  Control  `toml:"control"`
	Log      Log      `toml:"log"`
	Defaults Defaults `toml:"defaults"`
	Bridges  []Bridge `toml:"bridge"`

	file  string          // name of the file, for messages; "" when built in code
	lines map[string]int  // key path (e.g. "bridge[1].sink[0].path") -> line
	keys  map[string]bool // key paths present in the file
}

// Janus is the [janus] section: how to reach the Janus server.
type Janus struct {
	// Servers are Janus API URLs (ws://, wss://, http://, https://), tried in order.
	Servers []string `toml:"servers"`
	// APISecret is the Janus api_secret; Parse fills it from APISecretFile.
	APISecret     string `toml:"api_secret"`
	APISecretFile string `toml:"api_secret_file"`
	// Token is the Janus auth token; Parse fills it from TokenFile.
	Token     string `toml:"token"`
	TokenFile string `toml:"token_file"`
	// RequestTimeout bounds each request; never applied to the long-poll GET.
	RequestTimeout Duration `toml:"request_timeout"`
	Keepalive      Duration `toml:"keepalive"`
	// ReconnectMin and ReconnectMax bound the backoff between reconnects.
	ReconnectMin Duration `toml:"reconnect_min"`
	ReconnectMax Duration `toml:"reconnect_max"`
}

// WebRTC is the [webrtc] section: ICE settings of every PeerConnection.
type WebRTC struct {
	ICEServers []ICEServer `toml:"ice_servers"`
	// UDPPortMin and UDPPortMax bound the local UDP ports; 0 and 0 = any ephemeral port.
	UDPPortMin int      `toml:"udp_port_min"`
	UDPPortMax int      `toml:"udp_port_max"`
	NAT1To1IPs []string `toml:"nat_1to1_ips"`
	// Interfaces restricts ICE gathering to these network interfaces.
	Interfaces             []string `toml:"interfaces"`
	LoopbackCandidates     bool     `toml:"loopback_candidates"`
	ICEDisconnectedTimeout Duration `toml:"ice_disconnected_timeout"`
	// ICEFailedTimeout is when an ICE restart is tried (then a full renegotiation).
	ICEFailedTimeout Duration `toml:"ice_failed_timeout"`
}

// ICEServer is one STUN or TURN server of [webrtc] ice_servers.
type ICEServer struct {
	URLs       []string `toml:"urls"`
	Username   string   `toml:"username"`
	Credential string   `toml:"credential"`
}

// Control is the [control] section: the HTTP status page, API and metrics.
type Control struct {
	// Listen is the HTTP address; "" disables the control server.
	Listen    string `toml:"listen"`
	TokenFile string `toml:"token_file"`
	// Token is the bearer token read from TokenFile by Parse; "" = no auth.
	Token string `toml:"-"`
}

// Log is the [log] section.
type Log struct {
	Level  string `toml:"level"`  // debug|info|warn|error (slog.Level.UnmarshalText accepts these)
	Format string `toml:"format"` // text|json
}

// Defaults is the [defaults] section.
type Defaults struct {
	ShutdownTimeout Duration `toml:"shutdown_timeout"`
	// KeyframeInterval is the period of PLIs for sinks; 0 = only when a sink
	// (or segment) starts. Bridge.KeyframeInterval inherits it.
	KeyframeInterval Duration `toml:"keyframe_interval"`
}

// Plugin names accepted in Bridge.Plugin.
const (
	PluginStreaming   = "streaming"
	PluginVideoRoom   = "videoroom"
	PluginAudioBridge = "audiobridge"
	PluginEchoTest    = "echotest"
)

// Bridge is one [[bridge]]: a Janus plugin handle and the sinks it feeds
// (recv), or the source that feeds it (send), or both (echotest only).
type Bridge struct {
	Name   string `toml:"name"`
	Plugin string `toml:"plugin"`
	// Mountpoint is the Streaming mountpoint (watched, fed or created).
	Mountpoint ID `toml:"mountpoint"`
	// Room is the VideoRoom or AudioBridge room.
	Room ID `toml:"room"`
	// Pin is the room or mountpoint pin (for create: the new mountpoint's pin).
	Pin string `toml:"pin"`
	// Feeds are the VideoRoom publishers a recv bridge subscribes to.
	Feeds Feeds `toml:"feeds"`
	// IncludeOwn makes feeds = "all" include this daemon's own publishers.
	IncludeOwn bool `toml:"include_own"`
	// Substream is the simulcast layer to receive; nil = the plugin's choice.
	Substream *int `toml:"substream"`
	// Display is the participant name of a VideoRoom or AudioBridge send bridge.
	Display string `toml:"display"`
	// Create makes a Streaming send bridge create its RTP mountpoint.
	Create bool `toml:"create"`
	// Secret is the mountpoint's secret (info/destroy).
	Secret string `toml:"secret"`
	// AdminKey is the Streaming plugin's admin_key, for create.
	AdminKey string `toml:"admin_key"`
	// KeyframeInterval is the period of PLIs for this bridge's sinks;
	// Parse sets it from [defaults] when the bridge does not.
	KeyframeInterval Duration `toml:"keyframe_interval"`
	Sinks            []Sink   `toml:"sink"`
	Source           *Source  `toml:"source"`
}

// Direction reports "recv" for a bridge with sinks, "send" for one with a
// source, "both" for one with both (echotest) and "" for neither.
func (b *Bridge) Direction() string {
	switch {
	case len(b.Sinks) > 0 && b.Source != nil:
		return "both"
	case len(b.Sinks) > 0:
		return "recv"
	case b.Source != nil:
		return "send"
	}
	return ""
}

// FollowAll reports whether the bridge follows every publisher of a
// VideoRoom (feeds = "all"), one subscription per publisher.
func (b *Bridge) FollowAll() bool {
	return b.Plugin == PluginVideoRoom && b.Feeds.All && len(b.Sinks) > 0
}

// Sink types accepted in Sink.Type.
const (
	SinkWebM = "webm"
	SinkMKV  = "mkv"
	SinkOgg  = "ogg"
	SinkMP4  = "mp4"
	SinkRTP  = "rtp"
	SinkRTMP = "rtmp"
)

// Sink is one [[bridge.sink]]: where a recv bridge's media goes.
type Sink struct {
	Type string `toml:"type"`
	// Name names the sink in metrics and the API; default "<type><index>", e.g. "webm0".
	Name string `toml:"name"`

	// File sinks (webm, mkv, ogg, mp4).

	// Path is a path template; see SPEC §4 for the placeholders.
	Path string `toml:"path"`
	// Segment starts a new file at the first keyframe after this long; 0 = one file.
	Segment Duration `toml:"segment"`
	// OnClose is a command run when a file is finalised; "{path}" is replaced by its path.
	OnClose      []string `toml:"on_close"`
	Keep         Duration `toml:"keep"`           // remove finalised files older than this; 0 = keep
	MaxTotalSize Size     `toml:"max_total_size"` // remove the oldest files above this; 0 = no limit
	MinFree      Size     `toml:"min_free"`       // stop writing below this much free space; 0 = no check

	// Kinds selects "audio" and/or "video"; empty = every track the container can hold.
	Kinds []string `toml:"kinds"`

	// RTP sinks: track i goes to Port+2*i (RTCP on +1); SDP is the file rewritten when tracks change.
	Host string `toml:"host"`
	Port int    `toml:"port"`
	SDP  string `toml:"sdp"`

	// RTMP sinks: URL is rtmp:// or rtmps://; AudioBitrate is the AAC bitrate in bit/s.
	URL          string `toml:"url"`
	AudioBitrate int    `toml:"audio_bitrate"`
}

// IsFile reports whether the sink writes files (webm, mkv, ogg, mp4).
func (s *Sink) IsFile() bool {
	switch s.Type {
	case SinkWebM, SinkMKV, SinkOgg, SinkMP4:
		return true
	}
	return false
}

// Source types accepted in Source.Type.
const (
	SourceRTP  = "rtp"
	SourceFile = "file"
	SourceRTMP = "rtmp"
)

// Source is a [bridge.source]: what a send bridge puts into Janus.
type Source struct {
	Type string `toml:"type"`

	// RTP sources: SDP (a file describing the streams) or Tracks, not both.
	SDP    string        `toml:"sdp"`
	Tracks []SourceTrack `toml:"track"`

	// File sources: Path (see FileFormat), Loop, and FPS for Annex-B H.264.
	Path string  `toml:"path"`
	Loop bool    `toml:"loop"`
	FPS  float64 `toml:"fps"`

	// RTMP sources: URL to pull, or Listen + App + Key to accept a publisher
	// at rtmp://<listen>/<app>/<key>.
	URL    string `toml:"url"`
	Listen string `toml:"listen"`
	App    string `toml:"app"`
	Key    string `toml:"key"`
}

// FileFormat is the container of a file source, from Path's extension:
// "webm", "mkv", "ogg", "ivf", "mp4" or "h264" (Annex-B); "" when unknown.
func (s *Source) FileFormat() string {
	return fileFormats[lowerExt(s.Path)]
}

// SourceTrack is one [[bridge.source.track]] of an RTP source.
type SourceTrack struct {
	Kind  string `toml:"kind"`  // audio|video
	Codec string `toml:"codec"` // opus|pcmu|pcma|vp8|vp9|h264|av1
	// Listen is the UDP host:port the RTP arrives at.
	Listen string `toml:"listen"`
	// PayloadType is the RTP payload type the sender uses; default 0 for pcmu and 8 for pcma.
	PayloadType int `toml:"payload_type"`
	// ClockRate is the RTP clock rate; Parse sets the codec's (48000, 8000 or 90000).
	ClockRate int `toml:"clock_rate"`
	// Channels is 1 or 2 for audio; Parse sets 2 for opus and 1 for pcmu/pcma.
	Channels int `toml:"channels"`
	// Fmtp is the SDP fmtp line's parameters, e.g. "packetization-mode=1;profile-level-id=42e01f".
	Fmtp string `toml:"fmtp"`
}

// defaults returns a Config holding the defaults of SPEC §4.
func defaults() *Config {
	return &Config{
		Janus: Janus{
			RequestTimeout: Duration(10 * time.Second),
			Keepalive:      Duration(25 * time.Second),
			ReconnectMin:   Duration(1 * time.Second),
			ReconnectMax:   Duration(30 * time.Second),
		},
		WebRTC: WebRTC{
			ICEDisconnectedTimeout: Duration(5 * time.Second),
			ICEFailedTimeout:       Duration(10 * time.Second),
		},
		Control:  Control{Listen: "127.0.0.1:8090"},
		Log:      Log{Level: "info", Format: "text"},
		Defaults: Defaults{ShutdownTimeout: Duration(10 * time.Second)},
	}
}
