package config

import (
	"errors"
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite the .err golden files of ../testdata/config")

const minimal = "[janus]\nservers = [\"ws://127.0.0.1:8188/\"]\n"

func mustParse(t *testing.T, conf string) *Config {
	t.Helper()
	c, err := Parse("test.toml", []byte(conf))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestExampleLoads(t *testing.T) {
	c, err := Load("../config.example.toml")
	if err != nil {
		t.Fatal(err)
	}
	if w := c.Warnings(); len(w) > 0 {
		t.Errorf("warnings: %q", w)
	}
	if err := c.Validate(); err != nil {
		t.Errorf("Validate after Load: %v", err)
	}
	var names, dirs []string
	for i := range c.Bridges {
		names = append(names, c.Bridges[i].Name)
		dirs = append(dirs, c.Bridges[i].Direction())
	}
	wantNames := []string{"cam1", "lobby-rec", "lobby-cam", "promo", "obs-in", "to-youtube", "selftest"}
	wantDirs := []string{"recv", "recv", "send", "send", "send", "recv", "both"}
	if !reflect.DeepEqual(names, wantNames) || !reflect.DeepEqual(dirs, wantDirs) {
		t.Errorf("bridges %q %q, want %q %q", names, dirs, wantNames, wantDirs)
	}
	archive := c.Bridges[0].Sinks[0]
	if archive.Name != "archive" || archive.MaxTotalSize != 50<<30 || archive.Keep != Duration(30*24*time.Hour) {
		t.Errorf("archive sink = %+v", archive)
	}
	if got := c.Bridges[0].Sinks[1].Name; got != "ogg1" {
		t.Errorf("default sink name %q, want ogg1", got)
	}
	if !c.Bridges[1].FollowAll() || c.Bridges[2].FollowAll() {
		t.Error("FollowAll wrong")
	}
}

func TestEmptyFile(t *testing.T) {
	_, err := Parse("bridges.toml", nil)
	if want := "bridges.toml: janus.servers: required: at least one Janus URL"; err == nil || err.Error() != want {
		t.Errorf("got %v, want %s", err, want)
	}
}

func TestDefaults(t *testing.T) {
	c := mustParse(t, minimal+`
[defaults]
keyframe_interval = "3s"

[[bridge]]
name = "cam"
plugin = "streaming"
mountpoint = "cam-main"
  [[bridge.sink]]
  type = "rtmp"
  url = "rtmp://example.org/live/key"
  [[bridge.sink]]
  type = "webm"
  path = "/rec/{mountpoint}/{start}.webm"

[[bridge]]
name = "lobby"
plugin = "videoroom"
room = 1234
feeds = [5, "alice"]
keyframe_interval = "0s"
  [[bridge.sink]]
  type = "mkv"
  path = "/rec/{room}/{feed}-{start}.mkv"

[[bridge]]
name = "phone"
plugin = "audiobridge"
room = 7
  [bridge.source]
  type = "rtp"
  [[bridge.source.track]]
  kind = "audio"
  codec = "pcma"
  listen = "127.0.0.1:7002"
`)
	if c.Janus.Keepalive != Duration(25*time.Second) ||
		c.Janus.ReconnectMin != Duration(time.Second) || c.Janus.ReconnectMax != Duration(30*time.Second) ||
		c.WebRTC.ICEDisconnectedTimeout != Duration(5*time.Second) || c.WebRTC.ICEFailedTimeout != Duration(10*time.Second) ||
		c.Control.Listen != "127.0.0.1:8090" || c.Log != (Log{"info", "text"}) ||
		c.Defaults.ShutdownTimeout != Duration(10*time.Second) || c.Janus.RequestTimeout != Duration(10*time.Second) {
		t.Errorf("defaults not applied: %+v", c)
	}
	cam, lobby, phone := c.Bridges[0], c.Bridges[1], c.Bridges[2]
	if cam.Mountpoint != (ID{Str: "cam-main"}) || cam.KeyframeInterval != Duration(3*time.Second) || lobby.KeyframeInterval != 0 {
		t.Errorf("cam %+v lobby %+v", cam, lobby)
	}
	if s := cam.Sinks[0]; s.Name != "rtmp0" || s.AudioBitrate != 128000 {
		t.Errorf("rtmp sink defaults: %+v", s)
	}
	if s := cam.Sinks[1]; s.Name != "webm1" || s.AudioBitrate != 0 {
		t.Errorf("webm sink defaults: %+v", s)
	}
	if !reflect.DeepEqual(lobby.Feeds, Feeds{IDs: []ID{{Num: 5}, {Str: "alice"}}}) || lobby.FollowAll() {
		t.Errorf("feeds %+v", lobby.Feeds)
	}
	if tr := phone.Source.Tracks[0]; tr.PayloadType != 8 || tr.ClockRate != 8000 || tr.Channels != 1 {
		t.Errorf("pcma track defaults: %+v", tr)
	}
	if phone.Direction() != "send" || cam.Direction() != "recv" {
		t.Error("Direction wrong")
	}
}

func TestSecrets(t *testing.T) {
	c := mustParse(t, `[janus]
servers = ["ws://127.0.0.1:8188/"]
api_secret_file = "testdata/secret"
token = "tok"
[control]
listen = "[::]:8090"
token_file = "testdata/secret"
`)
	if c.Janus.APISecret != "s3cret" || c.Janus.Token != "tok" || c.Control.Token != "s3cret" {
		t.Errorf("secrets: %+v %+v", c.Janus, c.Control)
	}
	if err := c.Validate(); err != nil {
		t.Errorf("Validate after Parse: %v", err)
	}
}

func TestValidateBuiltInCode(t *testing.T) {
	c := defaults()
	c.Janus.Servers = []string{"wss://janus.example.org/"}
	c.Bridges = []Bridge{{
		Name:   "cam",
		Plugin: PluginVideoRoom,
		Room:   ID{Num: 1},
		Source: &Source{Type: SourceRTP, Tracks: []SourceTrack{
			{Kind: "video", Codec: "h264", Listen: "127.0.0.1:7004", PayloadType: 96, ClockRate: 90000},
			{Kind: "audio", Codec: "opus", Listen: "127.0.0.1:7002", ClockRate: 48000, Channels: 2},
		}},
	}}
	want := `bridge[0] "cam": source.track[1].payload_type: required for codec "opus" (96-127)`
	if err := c.Validate(); err == nil || err.Error() != want {
		t.Fatalf("got %v, want %s", err, want)
	}
	c.Bridges[0].Source.Tracks[1].PayloadType = 111
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
}

// TestTestdataConfigs parses ../testdata/config/*.toml: a file with a .err
// next to it must fail with exactly that error, the others must load.
func TestTestdataConfigs(t *testing.T) {
	files, err := filepath.Glob("../testdata/config/*.toml")
	if err != nil || len(files) == 0 {
		t.Fatal("no files", err)
	}
	for _, file := range files {
		t.Run(filepath.Base(file), func(t *testing.T) {
			data, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			golden := strings.TrimSuffix(file, ".toml") + ".err"
			_, perr := Parse(filepath.Base(file), data)
			if *update {
				if perr != nil {
					err = os.WriteFile(golden, []byte(perr.Error()+"\n"), 0o644)
				} else if err = os.Remove(golden); errors.Is(err, os.ErrNotExist) {
					err = nil
				}
				if err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			switch {
			case errors.Is(err, os.ErrNotExist) && perr != nil:
				t.Errorf("unexpected error:\n%v", perr)
			case err == nil && (perr == nil || perr.Error()+"\n" != string(want)):
				t.Errorf("got\n%v\nwant\n%s", perr, want)
			}
		})
	}
}

func TestWarnings(t *testing.T) {
	c := mustParse(t, minimal+`keepalive = "60s"
[[bridge]]
name = "loop"
plugin = "echotest"
  [bridge.source]
  type = "rtp"
  [[bridge.source.track]]
  kind = "video"
  codec = "h264"
  listen = "127.0.0.1:7004"
  payload_type = 96
  [[bridge.source.track]]
  kind = "audio"
  codec = "pcmu"
  listen = "127.0.0.1:7002"
  [[bridge.sink]]
  type = "webm"
  path = "/rec/{start}.mkv"
  [[bridge.sink]]
  type = "ogg"
  path = "/rec/{start}.ogg"
  [[bridge.sink]]
  type = "mp4"
  path = "/rec/{start}.mp4"
  kinds = ["video"]
`)
	want := []string{
		`test.toml:3: janus.keepalive: Janus drops sessions idle for session_timeout (60s by default): keep this below it`,
		`test.toml:19: bridge[0] "loop": sink[0].type: sink type "webm" cannot hold h264, which the source sends`,
		`test.toml:19: bridge[0] "loop": sink[0].type: sink type "webm" cannot hold pcmu, which the source sends`,
		`test.toml:20: bridge[0] "loop": sink[0].path: extension ".mkv" does not match type "webm"`,
		`test.toml:22: bridge[0] "loop": sink[1].type: sink type "ogg" cannot hold pcmu, which the source sends`,
	}
	if got := c.Warnings(); !reflect.DeepEqual(got, want) {
		t.Errorf("got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestCheckOutputDirs(t *testing.T) {
	dir := t.TempDir()
	conf := minimal + `
[[bridge]]
name = "cam"
plugin = "streaming"
mountpoint = 1
  [[bridge.sink]]
  type = "webm"
  path = "DIR/rec/{bridge}/{start}.webm"
  [[bridge.sink]]
  type = "rtp"
  host = "127.0.0.1"
  port = 6000
  sdp = "DIR/run/cam.sdp"
  [[bridge.sink]]
  type = "ogg"
  path = "DIR/file/{start}.ogg"
`
	c := mustParse(t, strings.ReplaceAll(conf, "DIR", dir))
	if _, err := os.Stat(filepath.Join(dir, "rec")); !errors.Is(err, os.ErrNotExist) {
		t.Fatal("Parse touched the file system")
	}
	if err := os.WriteFile(filepath.Join(dir, "file"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	err := c.CheckOutputDirs()
	want := `test.toml:18: bridge[0] "cam": sink[2].path: mkdir ` + dir + `/file: not a directory`
	if err == nil || err.Error() != want {
		t.Errorf("got %v, want %s", err, want)
	}
	for _, d := range []string{"rec", "run"} {
		entries, err := os.ReadDir(filepath.Join(dir, d))
		if err != nil || len(entries) != 0 {
			t.Errorf("%s: %v %v (want an empty directory)", d, entries, err)
		}
	}
}

func TestKeyLines(t *testing.T) {
	doc := `# comment [x]
a = """
multi "" line ''' 
"""
b = '''x
y''' # c = 1
"q.k" = [1, [2,
  3], { z = 1, w.v = "}" }]
dotted.key = 1979-05-27 07:32:00Z

[[t]]
n = 1
[t."sub table"]
m = 'it''s'
[[t]]
[[t.u]]
v = { x = [
  1 ] }
[[t.u]]
`
	want := map[string]int{
		"a": 2, "b": 5, `"q.k"`: 7, `"q.k"[0]`: 7, `"q.k"[1]`: 7, `"q.k"[1][0]`: 7, `"q.k"[1][1]`: 8, `"q.k"[2]`: 8,
		`"q.k"[2].z`: 8, `"q.k"[2].w`: 8, `"q.k"[2].w.v`: 8, "dotted": 9, "dotted.key": 9,
		"t[0]": 11, "t[0].n": 12, `t[0]."sub table"`: 13, `t[0]."sub table".m`: 14,
		"t[1]": 15, "t[1].u[0]": 16, "t[1].u[0].v": 17, "t[1].u[0].v.x": 17, "t[1].u[0].v.x[0]": 18, "t[1].u[1]": 19,
	}
	if got := keyLines(doc); !reflect.DeepEqual(got, want) {
		t.Errorf("got  %v\nwant %v", got, want)
	}
}

func TestDuration(t *testing.T) {
	for _, tc := range []struct {
		in   any
		want Duration
		err  string
	}{
		{"10s", Duration(10 * time.Second), ""},
		{"1h30m", Duration(90 * time.Minute), ""},
		{"30d", Duration(30 * 24 * time.Hour), ""},
		{"1d12h", Duration(36 * time.Hour), ""},
		{"0", 0, ""},
		{int64(0), 0, ""},
		{"0d", 0, ""},
		{"", 0, `invalid duration ""`},
		{"10", 0, `invalid duration "10"`},
		{"-1s", 0, `invalid duration "-1s"`},
		{"1d-1h", 0, `invalid duration "1d-1h"`},
		{"+1d", 0, `invalid duration "+1d"`},
		{"1.5d", 0, `invalid duration "1.5d"`},
		{"d", 0, `invalid duration "d"`},
		{"999999d", 0, `invalid duration "999999d"`},
		{"106751d23h", Duration(106751*24*time.Hour + 23*time.Hour), ""},
		{"106751d24h", 0, `invalid duration "106751d24h"`},
		{int64(5), 0, `must be a duration like "10s", not 5`},
		{true, 0, `must be a duration like "10s", not a boolean`},
	} {
		var d Duration
		err := d.UnmarshalTOML(tc.in)
		if msg := errString(err); msg != tc.err || d != tc.want {
			t.Errorf("%v: got %v %q, want %v %q", tc.in, d, msg, tc.want, tc.err)
		}
	}
	for d, want := range map[Duration]string{
		Duration(48 * time.Hour): "2d", Duration(90 * time.Second): "1m30s", 0: "0s",
	} {
		if d.String() != want {
			t.Errorf("%d.String() = %s, want %s", d, d, want)
		}
	}
}

func TestSize(t *testing.T) {
	for _, tc := range []struct {
		in   any
		want Size
		err  string
	}{
		{int64(1024), 1024, ""},
		{"50GiB", 50 << 30, ""},
		{"2MB", 2e6, ""},
		{"2 mb", 2e6, ""},
		{"512", 512, ""},
		{"1.5KiB", 1536, ""},
		{"16EiB", 0, `invalid size "16EiB"`},
		{"16777216TiB", 0, `invalid size "16777216TiB"`},
		{"20000000TB", 0, `invalid size "20000000TB"`},
		{"5XB", 0, `invalid size "5XB"`},
		{"GiB", 0, `invalid size "GiB"`},
		{".5GiB", 0, `invalid size ".5GiB"`},
		{"1e3", 0, `invalid size "1e3"`},
		{"-1", 0, `invalid size "-1"`},
		{int64(-1), 0, `invalid size -1`},
		{1.5, 0, `must be a size like "2GiB", not a float`},
	} {
		var s Size
		err := s.UnmarshalTOML(tc.in)
		if msg := errString(err); msg != tc.err || s != tc.want {
			t.Errorf("%v: got %d %q, want %d %q", tc.in, s, msg, tc.want, tc.err)
		}
	}
	for s, want := range map[Size]string{50 << 30: "50GiB", 2e6: "2MB", 1000: "1kB", 1023: "1023B", 0: "0"} {
		if s.String() != want {
			t.Errorf("%d.String() = %s, want %s", uint64(s), s, want)
		}
	}
}

func TestID(t *testing.T) {
	for _, tc := range []struct {
		in   any
		want ID
		str  string
		json any
		set  bool
		err  string
	}{
		{int64(1234), ID{Num: 1234}, "1234", uint64(1234), true, ""},
		{"lobby", ID{Str: "lobby"}, "lobby", "lobby", true, ""},
		{"1234", ID{Str: "1234"}, "1234", "1234", true, ""},
		{int64(0), ID{}, "0", uint64(0), false, "must be a positive integer or a non-empty string, not 0"},
		{int64(-3), ID{}, "0", uint64(0), false, "must be a positive integer or a non-empty string, not -3"},
		{"", ID{}, "0", uint64(0), false, `must be a positive integer or a non-empty string, not ""`},
		{1.5, ID{}, "0", uint64(0), false, "must be a positive integer or a non-empty string, not a float"},
	} {
		var id ID
		err := id.UnmarshalTOML(tc.in)
		if msg := errString(err); msg != tc.err || id != tc.want || id.String() != tc.str || id.JSON() != tc.json || id.IsSet() != tc.set {
			t.Errorf("%v: got %+v %q %q %v %v", tc.in, id, msg, id.String(), id.JSON(), id.IsSet())
		}
	}
}

func TestFeeds(t *testing.T) {
	for _, tc := range []struct {
		in   any
		want Feeds
		err  string
	}{
		{"all", Feeds{All: true}, ""},
		{[]any{int64(1), "bob"}, Feeds{IDs: []ID{{Num: 1}, {Str: "bob"}}}, ""},
		{[]any{}, Feeds{IDs: []ID{}}, ""},
		{"ALL", Feeds{}, `must be "all" or a list of feed ids, not "ALL"`},
		{int64(5), Feeds{}, `must be "all" or a list of feed ids, not 5`},
		{[]any{int64(1), int64(0)}, Feeds{}, `element 1: must be a positive integer or a non-empty string, not 0`},
	} {
		var f Feeds
		err := f.UnmarshalTOML(tc.in)
		if msg := errString(err); msg != tc.err || !reflect.DeepEqual(f, tc.want) {
			t.Errorf("%v: got %+v %q, want %+v %q", tc.in, f, msg, tc.want, tc.err)
		}
	}
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}
