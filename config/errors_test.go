package config

import (
	"strings"
	"testing"
)

// janusSection is appended to every case that has no [janus] of its own, so
// that line numbers in the cases count from their first line.
const janusSection = "\n[janus]\nservers = [\"ws://127.0.0.1:8188/\"]\n"

// confErrorCases are TOML snippets and the exact error Parse returns for
// them; the same table seeds FuzzParse.
var confErrorCases = []struct {
	name, conf, want string
}{
	// Syntax, types, unknown keys.
	{"syntax", `a = `, `bridges.toml:1: expected value but found '\n' instead`},
	{"syntax duplicate key", "[log]\nlevel = \"info\"\nlevel = \"debug\"", `bridges.toml:3: Key 'log.level' has already been defined.`},
	{"unknown top-level key", `foo = 1`, `bridges.toml:1: foo: unknown key`},
	{"unknown section", "[janu]\nservers = []", `bridges.toml:1: janu: unknown key`},
	{"unknown bridge key", `[[bridge]]
name = "cam"
plugin = "streaming"
mountpoint = 1
sinkk = 1`, `bridges.toml:5: bridge[0] "cam": sinkk: unknown key`},
	{"unknown sink key of second bridge", `[[bridge]]
name = "a"
plugin = "streaming"
mountpoint = 1
  [[bridge.sink]]
  type = "webm"
  path = "/rec/{bridge}/{start}.webm"
[[bridge]]
name = "b"
plugin = "streaming"
mountpoint = 2
  [[bridge.sink]]
  type = "webm"
  path = "/rec/{bridge}/{start}.webm"
  [[bridge.sink]]
  type = "mkv"
  paht = "/rec/x.mkv"`, `bridges.toml:17: bridge[1] "b": sink[1].paht: unknown key`},
	{"unknown quoted key", `"a b" = 1`, `bridges.toml:1: "a b": unknown key`},
	{"unknown key in inline table", `[webrtc]
ice_servers = [{ urls = ["stun:stun.example.org"] }, { urls = ["stun:x"], user = "u" }]`, `bridges.toml:2: webrtc.ice_servers[1].user: unknown key`},
	{"duration not a string", `[janus]
servers = ["ws://127.0.0.1:8188/"]
request_timeout = 5`, `bridges.toml:3: janus.request_timeout: must be a duration like "10s", not 5`},
	{"invalid duration", `[janus]
servers = ["ws://127.0.0.1:8188/"]
request_timeout = "abc"`, `bridges.toml:3: janus.request_timeout: invalid duration "abc"`},
	{"negative duration", `[janus]
servers = ["ws://127.0.0.1:8188/"]
keepalive = "-5s"`, `bridges.toml:3: janus.keepalive: invalid duration "-5s"`},
	{"integer given a string", `[[bridge]]
name = "cam"
plugin = "streaming"
mountpoint = 1
  [[bridge.sink]]
  type = "rtp"
  host = "127.0.0.1"
  port = "6000"`, `bridges.toml:8: bridge[0] "cam": sink[0].port: must be an integer, not "6000"`},
	{"array given a string", `[[bridge]]
name = "cam"
plugin = "streaming"
mountpoint = 1
  [[bridge.sink]]
  type = "webm"
  path = "/rec/{start}.webm"
  kinds = "audio"`, `bridges.toml:8: bridge[0] "cam": sink[0].kinds: must be an array, not "audio"`},
	{"bridge as a table", "[bridge]\nname = \"cam\"", `bridges.toml:1: bridge: must be an array of tables, not a table`},
	{"source as an array", `[[bridge]]
name = "cam"
plugin = "streaming"
mountpoint = 1
  [[bridge.source]]
  type = "file"`, `bridges.toml:1: bridge[0] "cam": source: must be a table, not an array`},
	{"invalid size", `[[bridge]]
name = "cam"
plugin = "streaming"
mountpoint = 1
  [[bridge.sink]]
  type = "webm"
  path = "/rec/{start}.webm"
  max_total_size = "5XB"`, `bridges.toml:8: bridge[0] "cam": sink[0].max_total_size: invalid size "5XB"`},
	{"room zero", `[[bridge]]
name = "lobby"
plugin = "videoroom"
room = 0`, `bridges.toml:4: bridge[0] "lobby": room: must be a positive integer or a non-empty string, not 0`},
	{"feeds neither all nor list", `[[bridge]]
name = "lobby"
plugin = "videoroom"
room = 1
feeds = "some"`, `bridges.toml:5: bridge[0] "lobby": feeds: must be "all" or a list of feed ids, not "some"`},
	{"feeds bad element", `[[bridge]]
name = "lobby"
plugin = "videoroom"
room = 1
feeds = [1, true]`, `bridges.toml:5: bridge[0] "lobby": feeds: element 1: must be a positive integer or a non-empty string, not a boolean`},
	{"boolean given an integer", "[webrtc]\nloopback_candidates = 1", `bridges.toml:2: webrtc.loopback_candidates: must be a boolean, not 1`},

	// [janus]
	{"servers required", "[janus]\nkeepalive = \"20s\"", `bridges.toml:1: janus.servers: required: at least one Janus URL`},
	{"servers empty", "[janus]\nservers = []", `bridges.toml:2: janus.servers: required: at least one Janus URL`},
	{"server scheme", "[janus]\nservers = [\"ws://127.0.0.1:8188/\", \"ftp://janus/\"]", `bridges.toml:2: janus.servers[1]: unsupported scheme "ftp" (ws, wss, http, https)`},
	{"server URL", "[janus]\nservers = [\"janus\"]", `bridges.toml:2: janus.servers[0]: invalid URL "janus"`},
	{"request_timeout zero", "[janus]\nservers = [\"ws://127.0.0.1:8188/\"]\nrequest_timeout = \"0s\"", `bridges.toml:3: janus.request_timeout: must be greater than 0`},
	{"reconnect bounds", "[janus]\nservers = [\"ws://127.0.0.1:8188/\"]\nreconnect_min = \"1m\"\nreconnect_max = \"30s\"", `bridges.toml:4: janus.reconnect_max: must not be less than reconnect_min (1m0s)`},
	{"api_secret and file", "[janus]\nservers = [\"ws://127.0.0.1:8188/\"]\napi_secret = \"x\"\napi_secret_file = \"testdata/secret\"", `bridges.toml:4: janus.api_secret_file: set either janus.api_secret or janus.api_secret_file, not both`},
	{"token file missing", "[janus]\nservers = [\"ws://127.0.0.1:8188/\"]\ntoken_file = \"testdata/missing\"", `bridges.toml:3: janus.token_file: cannot read "testdata/missing": no such file or directory`},
	{"api_secret file empty", "[janus]\nservers = [\"ws://127.0.0.1:8188/\"]\napi_secret_file = \"testdata/empty-secret\"", `bridges.toml:3: janus.api_secret_file: cannot read "testdata/empty-secret": empty`},

	// [webrtc]
	{"udp port min only", "[webrtc]\nudp_port_min = 10000", `bridges.toml:2: webrtc.udp_port_min: set udp_port_min and udp_port_max together (0 and 0 = any port)`},
	{"udp port range", "[webrtc]\nudp_port_min = 20000\nudp_port_max = 10000", `bridges.toml:3: webrtc.udp_port_max: must not be less than udp_port_min (20000)`},
	{"udp port too high", "[webrtc]\nudp_port_min = 10000\nudp_port_max = 70000", `bridges.toml:3: webrtc.udp_port_max: must be between 0 and 65535`},
	{"nat ip", "[webrtc]\nnat_1to1_ips = [\"198.51.100.7\", \"example.org\"]", `bridges.toml:2: webrtc.nat_1to1_ips[1]: invalid IP address "example.org"`},
	{"turn credentials", "[webrtc]\nice_servers = [{ urls = [\"turn:turn.example.org:3478\"] }]", `bridges.toml:2: webrtc.ice_servers[0].username: required for a TURN server
bridges.toml:2: webrtc.ice_servers[0].credential: required for a TURN server`},
	{"ice server scheme", "[webrtc]\nice_servers = [{ urls = [\"http://stun.example.org\"] }]", `bridges.toml:2: webrtc.ice_servers[0].urls[0]: unsupported scheme "http" (stun, stuns, turn, turns)`},
	{"ice server urls", "[webrtc]\nice_servers = [{ username = \"u\" }]", `bridges.toml:2: webrtc.ice_servers[0].urls: required`},
	{"ice timeout", "[webrtc]\nice_failed_timeout = \"0s\"", `bridges.toml:2: webrtc.ice_failed_timeout: must be greater than 0`},
	{"empty interface", "[webrtc]\ninterfaces = [\"eth0\", \"\"]", `bridges.toml:2: webrtc.interfaces[1]: must not be empty`},

	// [control], [log], [defaults]
	{"control not loopback", "[control]\nlisten = \"0.0.0.0:8090\"", `bridges.toml:2: control.listen: "0.0.0.0:8090" is not a loopback address: set control.token_file`},
	{"control all interfaces", "[control]\nlisten = \":8090\"", `bridges.toml:2: control.listen: ":8090" is not a loopback address: set control.token_file`},
	{"control address", "[control]\nlisten = \"8090\"", `bridges.toml:2: control.listen: invalid address "8090": want host:port`},
	{"control token empty", "[control]\nlisten = \"0.0.0.0:8090\"\ntoken_file = \"testdata/empty-secret\"", `bridges.toml:3: control.token_file: cannot read "testdata/empty-secret": empty`},
	{"log level", "[log]\nlevel = \"verbose\"", `bridges.toml:2: log.level: unknown level "verbose" (debug, info, warn, error)`},
	{"log format", "[log]\nformat = \"xml\"", `bridges.toml:2: log.format: unknown format "xml" (text, json)`},
	{"shutdown timeout", "[defaults]\nshutdown_timeout = \"0s\"", `bridges.toml:2: defaults.shutdown_timeout: must be greater than 0`},

	// [[bridge]]
	{"bridge name required", `[[bridge]]
plugin = "streaming"
mountpoint = 1
  [[bridge.sink]]
  type = "webm"
  path = "/rec/{start}.webm"`, `bridges.toml:1: bridge[0]: name: required`},
	{"bridge name chars", `[[bridge]]
name = "Cam 1"
plugin = "streaming"
mountpoint = 1
  [[bridge.sink]]
  type = "webm"
  path = "/rec/{bridge}/{start}.webm"`, `bridges.toml:2: bridge[0] "Cam 1": name: must match [a-z0-9_-]+`},
	{"bridge name duplicate", `[[bridge]]
name = "cam"
plugin = "streaming"
mountpoint = 1
  [[bridge.sink]]
  type = "webm"
  path = "/rec/1/{start}.webm"
[[bridge]]
name = "cam"
plugin = "streaming"
mountpoint = 2
  [[bridge.sink]]
  type = "webm"
  path = "/rec/2/{start}.webm"`, `bridges.toml:9: bridge[1] "cam": name: "cam" is already the name of bridge[0]`},
	{"plugin required", `[[bridge]]
name = "cam"
mountpoint = 1`, `bridges.toml:1: bridge[0] "cam": plugin: required (streaming, videoroom, audiobridge, echotest)`},
	{"plugin unknown", `[[bridge]]
name = "cam"
plugin = "sip"`, `bridges.toml:3: bridge[0] "cam": plugin: unknown plugin "sip" (streaming, videoroom, audiobridge, echotest)`},
	{"neither sinks nor source", `[[bridge]]
name = "cam"
plugin = "streaming"
mountpoint = 1`, `bridges.toml:1: bridge[0] "cam": needs [[bridge.sink]] (to receive) or a [bridge.source] (to send)`},
	{"both only for echotest", `[[bridge]]
name = "cam"
plugin = "streaming"
mountpoint = 1
  [[bridge.sink]]
  type = "webm"
  path = "/rec/{start}.webm"
  [bridge.source]
  type = "file"
  path = "/srv/a.webm"`, `bridges.toml:8: bridge[0] "cam": source: only an echotest bridge may have both sinks and a source`},
	{"feeds on streaming", `[[bridge]]
name = "cam"
plugin = "streaming"
mountpoint = 1
feeds = "all"
  [[bridge.sink]]
  type = "webm"
  path = "/rec/{start}.webm"`, `bridges.toml:5: bridge[0] "cam": feeds: does not apply to plugin "streaming"`},
	{"mountpoint on videoroom", `[[bridge]]
name = "lobby"
plugin = "videoroom"
room = 1234
mountpoint = 1
feeds = [5]
  [[bridge.sink]]
  type = "webm"
  path = "/rec/{start}.webm"`, `bridges.toml:5: bridge[0] "lobby": mountpoint: does not apply to plugin "videoroom"`},
	{"display on recv bridge", `[[bridge]]
name = "lobby"
plugin = "videoroom"
room = 1234
feeds = [5]
display = "rec"
  [[bridge.sink]]
  type = "webm"
  path = "/rec/{start}.webm"`, `bridges.toml:6: bridge[0] "lobby": display: does not apply to a recv bridge`},
	{"create on recv bridge", `[[bridge]]
name = "cam"
plugin = "streaming"
mountpoint = 1
create = true
  [[bridge.sink]]
  type = "webm"
  path = "/rec/{start}.webm"`, `bridges.toml:5: bridge[0] "cam": create: does not apply to a recv bridge`},
	{"feeds on send bridge", `[[bridge]]
name = "cam"
plugin = "videoroom"
room = 1234
feeds = "all"
  [bridge.source]
  type = "file"
  path = "/srv/a.webm"`, `bridges.toml:5: bridge[0] "cam": feeds: does not apply to a send bridge`},
	{"secret on videoroom", `[[bridge]]
name = "cam"
plugin = "videoroom"
room = 1234
secret = "s"
  [bridge.source]
  type = "file"
  path = "/srv/a.webm"`, `bridges.toml:5: bridge[0] "cam": secret: does not apply to plugin "videoroom"`},
	{"room on echotest", `[[bridge]]
name = "echo"
plugin = "echotest"
room = 1
  [[bridge.sink]]
  type = "webm"
  path = "/rec/{start}.webm"`, `bridges.toml:4: bridge[0] "echo": room: does not apply to plugin "echotest"`},
	{"keyframe_interval on send bridge", `[[bridge]]
name = "promo"
plugin = "streaming"
mountpoint = 99
keyframe_interval = "2s"
  [bridge.source]
  type = "file"
  path = "/srv/a.webm"`, `bridges.toml:5: bridge[0] "promo": keyframe_interval: does not apply to a send bridge`},
	{"pin without create", `[[bridge]]
name = "promo"
plugin = "streaming"
mountpoint = 99
pin = "1234"
  [bridge.source]
  type = "file"
  path = "/srv/a.webm"`, `bridges.toml:5: bridge[0] "promo": pin: only applies with create = true`},
	{"mountpoint required", `[[bridge]]
name = "cam"
plugin = "streaming"
  [[bridge.sink]]
  type = "webm"
  path = "/rec/{start}.webm"`, `bridges.toml:1: bridge[0] "cam": mountpoint: required for plugin "streaming"`},
	{"room required", `[[bridge]]
name = "mix"
plugin = "audiobridge"
  [[bridge.sink]]
  type = "ogg"
  path = "/rec/{start}.ogg"`, `bridges.toml:1: bridge[0] "mix": room: required for plugin "audiobridge"`},
	{"feeds required", `[[bridge]]
name = "lobby"
plugin = "videoroom"
room = 1234
  [[bridge.sink]]
  type = "webm"
  path = "/rec/{start}.webm"`, `bridges.toml:1: bridge[0] "lobby": feeds: required for a videoroom recv bridge: "all" or a list of feed ids`},
	{"feeds empty", `[[bridge]]
name = "lobby"
plugin = "videoroom"
room = 1234
feeds = []
  [[bridge.sink]]
  type = "webm"
  path = "/rec/{start}.webm"`, `bridges.toml:5: bridge[0] "lobby": feeds: must not be empty`},
	{"feeds twice", `[[bridge]]
name = "lobby"
plugin = "videoroom"
room = 1234
feeds = [5, "x", 5]
  [[bridge.sink]]
  type = "webm"
  path = "/rec/{feed}/{start}.webm"`, `bridges.toml:5: bridge[0] "lobby": feeds: feed 5 listed twice`},
	{"include_own with a list", `[[bridge]]
name = "lobby"
plugin = "videoroom"
room = 1234
feeds = [5]
include_own = false
  [[bridge.sink]]
  type = "webm"
  path = "/rec/{start}.webm"`, `bridges.toml:6: bridge[0] "lobby": include_own: only applies with feeds = "all"`},
	{"substream range", `[[bridge]]
name = "cam"
plugin = "streaming"
mountpoint = 1
substream = 3
  [[bridge.sink]]
  type = "webm"
  path = "/rec/{start}.webm"`, `bridges.toml:5: bridge[0] "cam": substream: must be 0, 1 or 2`},

	// [[bridge.sink]]
	{"sink path required", `[[bridge]]
name = "cam"
plugin = "streaming"
mountpoint = 1
  [[bridge.sink]]
  type = "rtp"
  host = "127.0.0.1"
  port = 6000
[[bridge]]
name = "lobby"
plugin = "videoroom"
room = 1234
feeds = [5]
  [[bridge.sink]]
  type = "webm"`, `bridges.toml:14: bridge[1] "lobby": sink[0].path: required for type "webm"`},
	{"sink type required", `[[bridge]]
name = "cam"
plugin = "streaming"
mountpoint = 1
  [[bridge.sink]]
  path = "/rec/{start}.webm"`, `bridges.toml:5: bridge[0] "cam": sink[0].type: required (webm, mkv, ogg, mp4, rtp, rtmp)`},
	{"sink type unknown", `[[bridge]]
name = "cam"
plugin = "streaming"
mountpoint = 1
  [[bridge.sink]]
  type = "flv"`, `bridges.toml:6: bridge[0] "cam": sink[0].type: unknown sink type "flv" (webm, mkv, ogg, mp4, rtp, rtmp)`},
	{"host on a webm sink", `[[bridge]]
name = "cam"
plugin = "streaming"
mountpoint = 1
  [[bridge.sink]]
  type = "webm"
  path = "/rec/{start}.webm"
  host = "127.0.0.1"`, `bridges.toml:8: bridge[0] "cam": sink[0].host: does not apply to sink type "webm"`},
	{"segment on an rtp sink", `[[bridge]]
name = "cam"
plugin = "streaming"
mountpoint = 1
  [[bridge.sink]]
  type = "rtp"
  host = "127.0.0.1"
  port = 6000
  segment = "10m"`, `bridges.toml:9: bridge[0] "cam": sink[0].segment: does not apply to sink type "rtp"`},
	{"rtp sink needs host and port", `[[bridge]]
name = "cam"
plugin = "streaming"
mountpoint = 1
  [[bridge.sink]]
  type = "rtp"`, `bridges.toml:5: bridge[0] "cam": sink[0].host: required for type "rtp"
bridges.toml:5: bridge[0] "cam": sink[0].port: required for type "rtp"`},
	{"rtp sink host", `[[bridge]]
name = "cam"
plugin = "streaming"
mountpoint = 1
  [[bridge.sink]]
  type = "rtp"
  host = "127.0.0.1 6000"
  port = 6000`, `bridges.toml:7: bridge[0] "cam": sink[0].host: invalid host "127.0.0.1 6000"`},
	{"rtp sink odd port", `[[bridge]]
name = "cam"
plugin = "streaming"
mountpoint = 1
  [[bridge.sink]]
  type = "rtp"
  host = "127.0.0.1"
  port = 6001`, `bridges.toml:8: bridge[0] "cam": sink[0].port: must be even (RTCP goes to port+1)`},
	{"rtp sink port range", `[[bridge]]
name = "cam"
plugin = "streaming"
mountpoint = 1
  [[bridge.sink]]
  type = "rtp"
  host = "127.0.0.1"
  port = 70000`, `bridges.toml:8: bridge[0] "cam": sink[0].port: must be between 1 and 65535`},
	{"rtmp sink url required", `[[bridge]]
name = "yt"
plugin = "streaming"
mountpoint = 10
  [[bridge.sink]]
  type = "rtmp"`, `bridges.toml:5: bridge[0] "yt": sink[0].url: required for type "rtmp"`},
	{"rtmp sink url scheme", `[[bridge]]
name = "yt"
plugin = "streaming"
mountpoint = 10
  [[bridge.sink]]
  type = "rtmp"
  url = "http://a.rtmp.youtube.com/live2/KEY"`, `bridges.toml:7: bridge[0] "yt": sink[0].url: must be an rtmp:// or rtmps:// URL`},
	{"rtmp sink audio bitrate", `[[bridge]]
name = "yt"
plugin = "streaming"
mountpoint = 10
  [[bridge.sink]]
  type = "rtmp"
  url = "rtmp://a.rtmp.youtube.com/live2/KEY"
  audio_bitrate = 1000`, `bridges.toml:8: bridge[0] "yt": sink[0].audio_bitrate: must be between 8000 and 512000`},
	{"rtp sink on feeds all", `[[bridge]]
name = "lobby"
plugin = "videoroom"
room = 1234
feeds = "all"
  [[bridge.sink]]
  type = "rtp"
  host = "127.0.0.1"
  port = 6000`, `bridges.toml:7: bridge[0] "lobby": sink[0].type: "rtp" sinks are refused on a feeds = "all" bridge (use one bridge per feed)`},
	{"rtmp sink on several feeds", `[[bridge]]
name = "lobby"
plugin = "videoroom"
room = 1234
feeds = [5, 6]
  [[bridge.sink]]
  type = "rtmp"
  url = "rtmp://example.org/live/key"`, `bridges.toml:7: bridge[0] "lobby": sink[0].type: "rtmp" sinks need a bridge with a single feed (use one bridge per feed)`},
	{"sink names", `[[bridge]]
name = "cam"
plugin = "streaming"
mountpoint = 1
  [[bridge.sink]]
  type = "webm"
  name = "Archive"
  path = "/rec/{start}.webm"
  [[bridge.sink]]
  type = "ogg"
  name = "rtp2"
  path = "/rec/{start}.ogg"
  [[bridge.sink]]
  type = "rtp"
  host = "127.0.0.1"
  port = 6000`, `bridges.toml:7: bridge[0] "cam": sink[0].name: must match [a-z0-9_-]+
bridges.toml:13: bridge[0] "cam": sink[2].name: "rtp2" is already the name of sink[1]`},
	{"ogg holds audio only", `[[bridge]]
name = "cam"
plugin = "streaming"
mountpoint = 1
  [[bridge.sink]]
  type = "ogg"
  path = "/rec/{start}.ogg"
  kinds = ["video"]`, `bridges.toml:8: bridge[0] "cam": sink[0].kinds[0]: an ogg file holds audio only`},
	{"kinds unknown and twice", `[[bridge]]
name = "cam"
plugin = "streaming"
mountpoint = 1
  [[bridge.sink]]
  type = "webm"
  path = "/rec/{start}.webm"
  kinds = ["audio", "data", "audio"]`, `bridges.toml:8: bridge[0] "cam": sink[0].kinds[1]: unknown kind "data" (audio, video)
bridges.toml:8: bridge[0] "cam": sink[0].kinds[2]: "audio" listed twice`},
	{"kinds empty", `[[bridge]]
name = "cam"
plugin = "streaming"
mountpoint = 1
  [[bridge.sink]]
  type = "webm"
  path = "/rec/{start}.webm"
  kinds = []`, `bridges.toml:8: bridge[0] "cam": sink[0].kinds: must not be empty (leave it out for every kind)`},
	{"video from an audiobridge", `[[bridge]]
name = "mix"
plugin = "audiobridge"
room = 1
  [[bridge.sink]]
  type = "mkv"
  path = "/rec/{start}.mkv"
  kinds = ["audio", "video"]`, `bridges.toml:8: bridge[0] "mix": sink[0].kinds[1]: an audiobridge room carries audio only`},
	{"on_close empty", `[[bridge]]
name = "cam"
plugin = "streaming"
mountpoint = 1
  [[bridge.sink]]
  type = "webm"
  path = "/rec/{start}.webm"
  on_close = []`, `bridges.toml:8: bridge[0] "cam": sink[0].on_close: needs a command`},
	{"on_close placeholder", `[[bridge]]
name = "cam"
plugin = "streaming"
mountpoint = 1
  [[bridge.sink]]
  type = "webm"
  path = "/rec/{start}.webm"
  on_close = ["/bin/upload", "{file}"]`, `bridges.toml:8: bridge[0] "cam": sink[0].on_close[1]: unknown placeholder "{file}" ({path})`},

	// Path templates.
	{"unknown placeholder", `[[bridge]]
name = "cam"
plugin = "streaming"
mountpoint = 1
  [[bridge.sink]]
  type = "webm"
  path = "/rec/{name}/{start}.webm"`, `bridges.toml:7: bridge[0] "cam": sink[0].path: unknown placeholder "{name}" ({bridge}, {room}, {mountpoint}, {feed}, {display}, {start}, {seq})`},
	{"segment without start or seq", `[[bridge]]
name = "cam"
plugin = "streaming"
mountpoint = 1
  [[bridge.sink]]
  type = "webm"
  path = "/rec/{bridge}.webm"
  segment = "10m"`, `bridges.toml:7: bridge[0] "cam": sink[0].path: segment needs {start} or {seq} in the path`},
	{"feeds all without feed", `[[bridge]]
name = "lobby"
plugin = "videoroom"
room = 1234
feeds = "all"
  [[bridge.sink]]
  type = "mkv"
  path = "/rec/{room}/{display}-{start}.mkv"`, `bridges.toml:8: bridge[0] "lobby": sink[0].path: feeds = "all" needs {feed} in the path`},
	{"several feeds without feed", `[[bridge]]
name = "lobby"
plugin = "videoroom"
room = 1234
feeds = [5, 6]
  [[bridge.sink]]
  type = "mkv"
  path = "/rec/{room}/{start}.mkv"`, `bridges.toml:8: bridge[0] "lobby": sink[0].path: several feeds need {feed} in the path`},
	{"feed on streaming", `[[bridge]]
name = "cam"
plugin = "streaming"
mountpoint = 1
  [[bridge.sink]]
  type = "webm"
  path = "/rec/{feed}-{start}.webm"`, `bridges.toml:7: bridge[0] "cam": sink[0].path: {feed} on a bridge without feeds`},
	{"room on streaming", `[[bridge]]
name = "cam"
plugin = "streaming"
mountpoint = 1
  [[bridge.sink]]
  type = "webm"
  path = "/rec/{room}-{start}.webm"`, `bridges.toml:7: bridge[0] "cam": sink[0].path: {room} on a bridge without a room`},
	{"mountpoint on videoroom path", `[[bridge]]
name = "lobby"
plugin = "videoroom"
room = 1234
feeds = [5]
  [[bridge.sink]]
  type = "webm"
  path = "/rec/{mountpoint}-{start}.webm"`, `bridges.toml:8: bridge[0] "lobby": sink[0].path: {mountpoint} on a bridge without a mountpoint`},
	{"display on audiobridge path", `[[bridge]]
name = "mix"
plugin = "audiobridge"
room = 1
  [[bridge.sink]]
  type = "ogg"
  path = "/rec/{display}-{start}.ogg"`, `bridges.toml:7: bridge[0] "mix": sink[0].path: {display} on a bridge without feeds`},
	{"path is a directory", `[[bridge]]
name = "cam"
plugin = "streaming"
mountpoint = 1
  [[bridge.sink]]
  type = "webm"
  path = "/rec/{start}/"`, `bridges.toml:7: bridge[0] "cam": sink[0].path: must name a file, not a directory`},
	{"same template in one bridge", `[[bridge]]
name = "cam"
plugin = "streaming"
mountpoint = 1
  [[bridge.sink]]
  type = "webm"
  path = "/rec/{bridge}/{start}.webm"
  [[bridge.sink]]
  type = "webm"
  name = "copy"
  path = "/rec/{bridge}/{start}.webm"`, `bridges.toml:11: bridge[0] "cam": sink[1].path: can collide with the path of bridge[0] "cam" sink[0]`},
	{"same template in two bridges", `[[bridge]]
name = "cam1"
plugin = "streaming"
mountpoint = 1
  [[bridge.sink]]
  type = "webm"
  path = "/rec/{start}.webm"
[[bridge]]
name = "cam2"
plugin = "streaming"
mountpoint = 2
  [[bridge.sink]]
  type = "mkv"
  path = "/rec/{start}.webm"`, `bridges.toml:14: bridge[1] "cam2": sink[0].path: can collide with the path of bridge[0] "cam1" sink[0]`},
	{"templates equal once filled", `[[bridge]]
name = "cam"
plugin = "streaming"
mountpoint = 1
  [[bridge.sink]]
  type = "webm"
  path = "/rec/cam-1/{start}.webm"
[[bridge]]
name = "lobby"
plugin = "videoroom"
room = 1
feeds = [5]
  [[bridge.sink]]
  type = "webm"
  path = "/rec/cam-{room}/{start}.webm"`, `bridges.toml:15: bridge[1] "lobby": sink[0].path: can collide with the path of bridge[0] "cam" sink[0]`},
	{"rtp sinks share an sdp file and a port", `[[bridge]]
name = "cam1"
plugin = "streaming"
mountpoint = 1
  [[bridge.sink]]
  type = "rtp"
  host = "127.0.0.1"
  port = 6000
  sdp = "/run/janusbridge/cam.sdp"
[[bridge]]
name = "cam2"
plugin = "streaming"
mountpoint = 2
  [[bridge.sink]]
  type = "rtp"
  host = "127.0.0.1"
  port = 6000
  sdp = "/run/janusbridge/cam.sdp"`, `bridges.toml:17: bridge[1] "cam2": sink[0].port: "127.0.0.1:6000" is also the target of bridge[0] "cam1" sink[0]
bridges.toml:18: bridge[1] "cam2": sink[0].sdp: same file as the sdp of bridge[0] "cam1" sink[0]`},

	// [bridge.source]
	{"source type required", `[[bridge]]
name = "cam"
plugin = "videoroom"
room = 1
  [bridge.source]
  path = "/srv/a.webm"`, `bridges.toml:5: bridge[0] "cam": source.type: required (rtp, file, rtmp)`},
	{"source type unknown", `[[bridge]]
name = "cam"
plugin = "videoroom"
room = 1
  [bridge.source]
  type = "srt"`, `bridges.toml:6: bridge[0] "cam": source.type: unknown source type "srt" (rtp, file, rtmp)`},
	{"url on a file source", `[[bridge]]
name = "cam"
plugin = "videoroom"
room = 1
  [bridge.source]
  type = "file"
  path = "/srv/a.webm"
  url = "rtmp://example.org/live/key"`, `bridges.toml:8: bridge[0] "cam": source.url: does not apply to source type "file"`},
	{"loop on an rtp source", `[[bridge]]
name = "cam"
plugin = "videoroom"
room = 1
  [bridge.source]
  type = "rtp"
  sdp = "/etc/janusbridge/cam.sdp"
  loop = true`, `bridges.toml:8: bridge[0] "cam": source.loop: does not apply to source type "rtp"`},
	{"rtp source needs tracks", `[[bridge]]
name = "cam"
plugin = "videoroom"
room = 1
  [bridge.source]
  type = "rtp"`, `bridges.toml:5: bridge[0] "cam": source: needs sdp or [[bridge.source.track]]`},
	{"rtp source sdp and tracks", `[[bridge]]
name = "cam"
plugin = "videoroom"
room = 1
  [bridge.source]
  type = "rtp"
  sdp = "/etc/janusbridge/cam.sdp"
  [[bridge.source.track]]
  kind = "audio"
  codec = "opus"
  listen = "127.0.0.1:7002"
  payload_type = 111`, `bridges.toml:7: bridge[0] "cam": source.sdp: set either sdp or [[bridge.source.track]], not both`},
	{"track kind and codec", `[[bridge]]
name = "cam"
plugin = "videoroom"
room = 1
  [bridge.source]
  type = "rtp"
  [[bridge.source.track]]
  kind = "video"
  codec = "opus"
  listen = "127.0.0.1:7002"
  payload_type = 111
  [[bridge.source.track]]
  kind = "video"
  codec = "h265"
  listen = "127.0.0.1:7004"
  payload_type = 96
  [[bridge.source.track]]
  codec = "vp8"
  listen = "127.0.0.1:7006"
  payload_type = 97`, `bridges.toml:9: bridge[0] "cam": source.track[0].codec: "opus" is an audio codec, but kind is "video"
bridges.toml:14: bridge[0] "cam": source.track[1].codec: unknown codec "h265" (opus, pcmu, pcma, vp8, vp9, h264, av1)
bridges.toml:17: bridge[0] "cam": source.track[2].kind: required (audio, video)`},
	{"track listen", `[[bridge]]
name = "cam"
plugin = "videoroom"
room = 1
  [bridge.source]
  type = "rtp"
  [[bridge.source.track]]
  kind = "video"
  codec = "vp8"
  payload_type = 96
  [[bridge.source.track]]
  kind = "audio"
  codec = "opus"
  listen = "7002"
  payload_type = 111`, `bridges.toml:7: bridge[0] "cam": source.track[0].listen: required
bridges.toml:14: bridge[0] "cam": source.track[1].listen: invalid address "7002": want host:port`},
	{"track payload types", `[[bridge]]
name = "cam"
plugin = "videoroom"
room = 1
  [bridge.source]
  type = "rtp"
  [[bridge.source.track]]
  kind = "video"
  codec = "h264"
  listen = "127.0.0.1:7004"
  [[bridge.source.track]]
  kind = "audio"
  codec = "opus"
  listen = "127.0.0.1:7002"
  payload_type = 200
  [[bridge.source.track]]
  kind = "audio"
  codec = "pcma"
  listen = "127.0.0.1:7006"
  payload_type = 0`, `bridges.toml:7: bridge[0] "cam": source.track[0].payload_type: required for codec "h264" (96-127)
bridges.toml:15: bridge[0] "cam": source.track[1].payload_type: "opus" needs a dynamic payload type (96-127)
bridges.toml:20: bridge[0] "cam": source.track[2].payload_type: "pcma" needs 8 or a dynamic payload type (96-127)`},
	{"track clock rate channels fmtp", `[[bridge]]
name = "cam"
plugin = "videoroom"
room = 1
  [bridge.source]
  type = "rtp"
  [[bridge.source.track]]
  kind = "audio"
  codec = "opus"
  listen = "127.0.0.1:7002"
  payload_type = 111
  clock_rate = 44100
  [[bridge.source.track]]
  kind = "video"
  codec = "vp8"
  listen = "127.0.0.1:7004"
  payload_type = 96
  channels = 1
  fmtp = """a=1
b=2"""
  [[bridge.source.track]]
  kind = "audio"
  codec = "pcmu"
  listen = "127.0.0.1:7006"
  channels = 2`, `bridges.toml:12: bridge[0] "cam": source.track[0].clock_rate: "opus" runs at 48000 Hz
bridges.toml:18: bridge[0] "cam": source.track[1].channels: does not apply to video
bridges.toml:19: bridge[0] "cam": source.track[1].fmtp: must be one line
bridges.toml:25: bridge[0] "cam": source.track[2].channels: must be 1 for "pcmu"`},
	{"track listen used twice", `[[bridge]]
name = "cam"
plugin = "videoroom"
room = 1
  [bridge.source]
  type = "rtp"
  [[bridge.source.track]]
  kind = "audio"
  codec = "opus"
  listen = "0.0.0.0:7002"
  payload_type = 111
[[bridge]]
name = "cam2"
plugin = "videoroom"
room = 2
  [bridge.source]
  type = "rtp"
  [[bridge.source.track]]
  kind = "audio"
  codec = "opus"
  listen = "127.0.0.1:7002"
  payload_type = 111`, `bridges.toml:21: bridge[1] "cam2": source.track[0].listen: "127.0.0.1:7002" is also the listen address of bridge[0] "cam" track[0]`},
	{"video track into an audiobridge", `[[bridge]]
name = "mix"
plugin = "audiobridge"
room = 1
  [bridge.source]
  type = "rtp"
  [[bridge.source.track]]
  kind = "video"
  codec = "vp8"
  listen = "127.0.0.1:7004"
  payload_type = 96`, `bridges.toml:8: bridge[0] "mix": source.track[0].kind: an audiobridge room takes audio only`},
	{"file source path required", `[[bridge]]
name = "promo"
plugin = "streaming"
mountpoint = 99
  [bridge.source]
  type = "file"
  loop = true`, `bridges.toml:5: bridge[0] "promo": source.path: required for type "file"`},
	{"file source type", `[[bridge]]
name = "promo"
plugin = "streaming"
mountpoint = 99
  [bridge.source]
  type = "file"
  path = "/srv/promo.avi"`, `bridges.toml:7: bridge[0] "promo": source.path: unsupported file type ".avi" (.webm, .mkv, .mka, .ogg, .opus, .oga, .ivf, .mp4, .m4a, .m4v, .h264, .264)`},
	{"annex-b needs fps", `[[bridge]]
name = "promo"
plugin = "streaming"
mountpoint = 99
  [bridge.source]
  type = "file"
  path = "/srv/promo.h264"`, `bridges.toml:5: bridge[0] "promo": source.fps: required for an Annex-B H.264 file`},
	{"fps on webm", `[[bridge]]
name = "promo"
plugin = "streaming"
mountpoint = 99
  [bridge.source]
  type = "file"
  path = "/srv/promo.webm"
  fps = 30`, `bridges.toml:8: bridge[0] "promo": source.fps: only applies to Annex-B H.264 files (.h264, .264)`},
	{"rtmp source needs url or listen", `[[bridge]]
name = "obs"
plugin = "videoroom"
room = 1
  [bridge.source]
  type = "rtmp"`, `bridges.toml:5: bridge[0] "obs": source: needs url (to pull) or listen (to accept a publisher)`},
	{"rtmp source url and listen", `[[bridge]]
name = "obs"
plugin = "videoroom"
room = 1
  [bridge.source]
  type = "rtmp"
  url = "rtmp://example.org/live/key"
  listen = "127.0.0.1:1935"`, `bridges.toml:7: bridge[0] "obs": source.url: set either url (to pull) or listen (to accept a publisher), not both`},
	{"rtmp source listen needs app and key", `[[bridge]]
name = "obs"
plugin = "videoroom"
room = 1
  [bridge.source]
  type = "rtmp"
  listen = "127.0.0.1:1935"`, `bridges.toml:5: bridge[0] "obs": source.app: required with listen
bridges.toml:5: bridge[0] "obs": source.key: required with listen`},
	{"rtmp source app with url", `[[bridge]]
name = "obs"
plugin = "videoroom"
room = 1
  [bridge.source]
  type = "rtmp"
  url = "rtmps://example.org/live/key"
  app = "live"`, `bridges.toml:8: bridge[0] "obs": source.app: only applies with listen`},
	{"rtmp source url scheme", `[[bridge]]
name = "obs"
plugin = "videoroom"
room = 1
  [bridge.source]
  type = "rtmp"
  url = "srt://example.org/live/key"`, `bridges.toml:7: bridge[0] "obs": source.url: must be an rtmp:// or rtmps:// URL`},
	{"rtmp listen on the control address", `[[bridge]]
name = "obs"
plugin = "videoroom"
room = 1
  [bridge.source]
  type = "rtmp"
  listen = "127.0.0.1:8090"
  app = "live"
  key = "obs"`, `bridges.toml:7: bridge[0] "obs": source.listen: "127.0.0.1:8090" is also the listen address of control.listen`},

	// Several problems are reported together.
	{"several problems", `[log]
level = "loud"
format = "yaml"
[[bridge]]
name = "cam"
plugin = "streaming"`, `bridges.toml:2: log.level: unknown level "loud" (debug, info, warn, error)
bridges.toml:3: log.format: unknown format "yaml" (text, json)
bridges.toml:4: bridge[0] "cam": needs [[bridge.sink]] (to receive) or a [bridge.source] (to send)`},
}

func TestConfErrors(t *testing.T) {
	for _, tc := range confErrorCases {
		t.Run(tc.name, func(t *testing.T) {
			conf := tc.conf
			if !strings.Contains(conf, "[janus]") {
				conf += janusSection
			}
			_, err := Parse("bridges.toml", []byte(conf))
			if err == nil {
				t.Fatalf("no error, want\n%s", tc.want)
			}
			if err.Error() != tc.want {
				t.Errorf("got\n%s\nwant\n%s", err, tc.want)
			}
		})
	}
}
