package janustest_test

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/janusbridge/janusbridge/internal/janustest"
)

// TestMain fails the package if goroutines started by the helpers outlive the tests.
func TestMain(m *testing.M) {
	before := runtime.NumGoroutine()
	code := m.Run()
	if code == 0 {
		deadline := time.Now().Add(3 * time.Second)
		for runtime.NumGoroutine() > before && time.Now().Before(deadline) {
			time.Sleep(20 * time.Millisecond) // bounded wait for exiting goroutines
		}
		if n := runtime.NumGoroutine(); n > before {
			buf := make([]byte, 1<<20)
			buf = buf[:runtime.Stack(buf, true)]
			fmt.Fprintf(os.Stderr, "goroutine leak: %d goroutines before the tests, %d after:\n%s\n", before, n, buf)
			code = 1
		}
	}
	os.Exit(code)
}

func TestMountpointConfig(t *testing.T) {
	got := janustest.MountpointConfig(102, "h264", 20000, 20002)
	for _, want := range []string{
		"mp-102: {", `type = "rtp"`, "id = 102",
		`{ type = "audio" mid = "a" port = 20000 pt = 111 codec = "opus" }`,
		`{ type = "video" mid = "v" port = 20002 pt = 96 codec = "h264" fmtp = "profile-level-id=42e01f;packetization-mode=1" }`,
	} {
		if !strings.Contains(got, want) {
			t.Errorf("MountpointConfig lacks %q:\n%s", want, got)
		}
	}
	videoOnly := janustest.MountpointConfig(7, "vp8", 0, 20010)
	if strings.Contains(videoOnly, "audio") || !strings.Contains(videoOnly, `port = 20010 pt = 100 codec = "vp8"`) {
		t.Errorf("video-only mountpoint:\n%s", videoOnly)
	}
}

func TestFreePorts(t *testing.T) {
	seen := map[int]bool{}
	for range 5 {
		p := janustest.FreePort(t)
		if seen[p] {
			t.Fatalf("FreePort returned %d twice", p)
		}
		seen[p] = true
	}
	udp := janustest.FreeUDPPorts(t, 4)
	for _, p := range udp {
		if p%2 != 0 || p < 20000 || p > 29999 || seen[p] {
			t.Errorf("FreeUDPPorts returned %d (want distinct even ports in 20000-29999)", p)
		}
		seen[p] = true
	}
}

// TestProxyEcho exercises the proxy against a local echo server (needs no Janus).
func TestProxyEcho(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	echoDone := make(chan struct{})
	go func() {
		defer close(echoDone)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { defer c.Close(); _, _ = io.Copy(c, c) }()
		}
	}()
	t.Cleanup(func() { ln.Close(); <-echoDone })

	p := janustest.NewProxy(t, ln.Addr().String())
	c1 := dialEcho(t, p.Addr(), "hello")
	if got := p.Cut(); got != 1 {
		t.Errorf("Cut closed %d connections, want 1", got)
	}
	expectClosed(t, c1)

	c2 := dialEcho(t, p.Addr(), "again")
	c2.Close()
	if p.Accepted() != 2 {
		t.Errorf("Accepted = %d, want 2", p.Accepted())
	}

	p.SetDown(true)
	c3, err := net.Dial("tcp", p.Addr())
	if err != nil {
		t.Fatal(err)
	}
	expectClosed(t, c3)
	p.SetDown(false)
	dialEcho(t, p.Addr(), "up again").Close()
}

// dialEcho connects through the proxy and checks that msg comes back.
func dialEcho(t *testing.T, addr, msg string) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := fmt.Fprintln(c, msg); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil || line != msg+"\n" {
		t.Fatalf("echo through proxy: %q, %v", line, err)
	}
	c.SetDeadline(time.Time{})
	return c
}

// expectClosed checks that the peer closes c within 5 s.
func expectClosed(t *testing.T, c net.Conn) {
	t.Helper()
	defer c.Close()
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, err := c.Read(make([]byte, 16))
	var ne net.Error
	if err == nil || (errors.As(err, &ne) && ne.Timeout()) {
		t.Fatalf("connection not closed by the proxy: %v", err)
	}
}

// TestStreamingFeeds starts Janus with a VP8+Opus and an H.264+Opus mountpoint, feeds both with
// ffmpeg, and checks that RTP keeps arriving on every stream and that a viewer is offered the
// namespace's 127.0.0.2 host candidate.
func TestStreamingFeeds(t *testing.T) {
	janustest.Require(t)
	ports := janustest.FreeUDPPorts(t, 4)
	j := janustest.StartJanus(t, janustest.Options{
		APISecret: "s3cret",
		Plugins:   []string{"streaming"},
		Streaming: janustest.MountpointConfig(101, "vp8", ports[0], ports[1]) +
			janustest.MountpointConfig(102, "h264", ports[2], ports[3]),
	})
	janustest.StartFeed(t, janustest.FeedOptions{VideoCodec: "vp8", AudioPort: ports[0], VideoPort: ports[1]})
	janustest.StartFeed(t, janustest.FeedOptions{VideoCodec: "h264", AudioPort: ports[2], VideoPort: ports[3],
		Width: 320, Height: 240, SyncMarker: true})

	for _, id := range []int{101, 102} {
		j.WaitFed(t, id)
	}

	// A viewer's offer carries the veth address as host candidate.
	sess := j.Post(t, "", map[string]any{"janus": "create"})
	sid := dataID(t, sess)
	h := dataID(t, j.Post(t, "/"+sid, map[string]any{"janus": "attach", "plugin": "janus.plugin.streaming"}))
	if r := j.Post(t, "/"+sid+"/"+h, map[string]any{"janus": "message", "body": map[string]any{"request": "watch", "id": 101}}); r["janus"] != "ack" {
		t.Fatalf("watch: %v", r)
	}
	sdp := waitOffer(t, j, sid)
	if !strings.Contains(sdp, " "+janustest.NamespaceAddr+" ") || !strings.Contains(sdp, "typ host") {
		t.Errorf("offer lacks a %s host candidate:\n%s", janustest.NamespaceAddr, sdp)
	}
	if !strings.Contains(sdp, "VP8/90000") || !strings.Contains(sdp, "opus/48000/2") {
		t.Errorf("offer lacks VP8 or Opus:\n%s", sdp)
	}
	j.Post(t, "/"+sid, map[string]any{"janus": "destroy"})
}

// waitOffer long-polls session sid until an event with a JSEP offer arrives.
func waitOffer(t *testing.T, j *janustest.Janus, sid string) string {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := http.Get(j.HTTPURL() + "/" + sid + "?maxev=5&apisecret=" + j.APISecret())
		if err != nil {
			t.Fatal(err)
		}
		var evs []struct {
			Janus string `json:"janus"`
			JSEP  struct {
				Type string `json:"type"`
				SDP  string `json:"sdp"`
			} `json:"jsep"`
		}
		err = json.NewDecoder(resp.Body).Decode(&evs)
		resp.Body.Close()
		if err != nil {
			t.Fatal(err)
		}
		for _, ev := range evs {
			if ev.JSEP.Type == "offer" {
				return ev.JSEP.SDP
			}
		}
	}
	t.Fatal("no offer within 10 s")
	return ""
}

func dataID(t *testing.T, resp map[string]any) string {
	t.Helper()
	data, _ := resp["data"].(map[string]any)
	id, ok := data["id"].(json.Number)
	if resp["janus"] != "success" || !ok {
		t.Fatalf("no id in %v", resp)
	}
	return id.String()
}

// TestKillRestart kills Janus and starts it again on the same ports.
func TestKillRestart(t *testing.T) {
	ports := janustest.FreeUDPPorts(t, 1)
	j := janustest.StartJanus(t, janustest.Options{
		APISecret: "s3cret",
		AdminKey:  "adm",
		Plugins:   []string{"streaming"},
		Streaming: janustest.MountpointConfig(7, "vp8", 0, ports[0]),
	})
	// AdminKey guards `create`; a port 0 is allocated from the RTP port range.
	create := map[string]any{"request": "create", "type": "rtp", "id": 8, "permanent": false,
		"media": []map[string]any{{"type": "video", "mid": "v", "port": 0, "pt": janustest.PTVP8, "codec": "vp8"}}}
	if data := j.PluginRequest(t, "janus.plugin.streaming", create); data["error_code"] == nil {
		t.Errorf("create without admin_key answered %v, want an error", data)
	}
	create["admin_key"] = "adm"
	data := j.PluginRequest(t, "janus.plugin.streaming", create)
	if data["streaming"] != "created" {
		t.Fatalf("create with admin_key answered %v", data)
	}
	httpURL, wsURL := j.HTTPURL(), j.WSURL()
	// (Janus answers `info` without the secret; `create` needs it.)
	if r := j.Post(t, "", map[string]any{"janus": "create", "apisecret": "wrong"}); r["janus"] != "error" {
		t.Errorf("create with a wrong api secret answered %v, want an error", r)
	}
	sid := dataID(t, j.Post(t, "", map[string]any{"janus": "create"}))

	if !strings.Contains(j.LogTail(100), "HTTP webserver started") {
		t.Errorf("log of the running Janus lacks its start-up lines:\n%s", j.LogTail(20))
	}
	// Connections open during the crash leave the server's side of them in TIME_WAIT once the
	// clients close them: the restart must still bind the same ports.
	var held []net.Conn
	for _, addr := range []string{j.HTTPAddr(), j.WSAddr()} {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		held = append(held, c)
	}

	pid := j.PID()
	j.Kill()
	for _, c := range held {
		c.Close()
	}
	if j.Running() || j.PID() != 0 {
		t.Fatal("Janus still running after Kill")
	}
	if c, err := net.DialTimeout("tcp", j.HTTPAddr(), time.Second); err == nil {
		c.Close()
		t.Fatal("HTTP port still accepts connections after Kill")
	}

	j.Restart(t)
	if j.HTTPURL() != httpURL || j.WSURL() != wsURL {
		t.Errorf("ports changed across Restart: %s %s -> %s %s", httpURL, wsURL, j.HTTPURL(), j.WSURL())
	}
	if j.PID() == pid || j.PID() == 0 {
		t.Errorf("PID %d after Restart (was %d)", j.PID(), pid)
	}
	// The killed Janus's session is gone; the new one works.
	if r := j.Post(t, "/"+sid, map[string]any{"janus": "keepalive"}); r["janus"] != "error" {
		t.Errorf("keepalive on the old session answered %v, want an error", r)
	}
	// Same configuration: the mountpoint is back.
	data = j.PluginRequest(t, "janus.plugin.streaming", map[string]any{"request": "list"})
	if list, _ := data["list"].([]any); len(list) != 1 || list[0].(map[string]any)["id"] != json.Number("7") {
		t.Errorf("streaming list after restart: %v", data)
	}
	if !strings.Contains(j.LogTail(200), "=== janustest: start #2") {
		t.Errorf("log lacks the second start:\n%s", j.LogTail(20))
	}
}

// TestProxyCutJanus cuts a long poll going through a Proxy to Janus, then reconnects.
func TestProxyCutJanus(t *testing.T) {
	j := janustest.StartJanus(t, janustest.Options{Plugins: []string{"echotest"}, ReclaimTimeout: 10, Admin: true})
	if info := j.Post(t, "", map[string]any{"janus": "info"}); info["reclaim-session-timeout"] != json.Number("10") {
		t.Errorf("reclaim-session-timeout: %v", info["reclaim-session-timeout"])
	}
	p := janustest.NewProxy(t, j.HTTPAddr())
	url := p.URL("http", "/janus")
	client := &http.Client{Transport: &http.Transport{Proxy: nil, DisableKeepAlives: true}}

	resp, err := client.Post(url, "application/json", strings.NewReader(`{"janus":"create","transaction":"c"}`))
	if err != nil {
		t.Fatal(err)
	}
	var created struct {
		Data struct {
			ID uint64 `json:"id"`
		} `json:"data"`
	}
	json.NewDecoder(resp.Body).Decode(&created)
	resp.Body.Close()
	if created.Data.ID == 0 {
		t.Fatal("create through the proxy failed")
	}

	// A long poll (Janus answers it after ~30 s when idle) ends as soon as the proxy cuts it.
	pollErr := make(chan error, 1)
	go func() {
		resp, err := client.Get(fmt.Sprintf("%s/%d", url, created.Data.ID))
		if err == nil {
			_, err = io.ReadAll(resp.Body)
			resp.Body.Close()
			if err == nil {
				err = errors.New("long poll answered: " + resp.Status)
			}
		}
		pollErr <- err
	}()
	deadline := time.Now().Add(5 * time.Second)
	for p.Accepted() < 2 && time.Now().Before(deadline) { // create, then the poll
		time.Sleep(10 * time.Millisecond) // bounded wait for the poll to reach the proxy
	}
	start := time.Now()
	if n := p.Cut(); n < 1 {
		t.Fatalf("Cut closed %d connections, want the long poll", n)
	}
	select {
	case err := <-pollErr:
		t.Logf("long poll after Cut: %v (after %v)", err, time.Since(start))
	case <-time.After(5 * time.Second):
		t.Fatal("long poll still open 5 s after Cut")
	}

	// The session survived (Janus still runs); a new connection works.
	resp, err = client.Post(fmt.Sprintf("%s/%d", url, created.Data.ID), "application/json",
		strings.NewReader(`{"janus":"keepalive","transaction":"k"}`))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(body), `"ack"`) {
		t.Errorf("keepalive through the proxy after Cut: %s", body)
	}

	sessions := j.AdminRequest(t, map[string]any{"janus": "list_sessions"})
	if list, _ := sessions["sessions"].([]any); len(list) != 1 || list[0] != json.Number(fmt.Sprint(created.Data.ID)) {
		t.Errorf("admin list_sessions after Cut: %v", sessions)
	}

	p.SetDown(true)
	if _, err := client.Post(url, "application/json", strings.NewReader(`{"janus":"info","transaction":"i"}`)); err == nil {
		t.Error("request through a down proxy succeeded")
	}
	p.SetDown(false)
	if r, err := client.Post(url, "application/json", strings.NewReader(`{"janus":"info","transaction":"i"}`)); err != nil {
		t.Errorf("request after the proxy came back up: %v", err)
	} else {
		r.Body.Close()
	}
}

// TestDefaultPlugins starts Janus with the default plugins and the room helpers' rooms.
func TestDefaultPlugins(t *testing.T) {
	j := janustest.StartJanus(t, janustest.Options{
		VideoRoom:   janustest.VideoRoomConfig(4321, "vp8,h264"),
		AudioBridge: janustest.AudioBridgeConfig(5555),
	})
	info := j.Post(t, "", map[string]any{"janus": "info"})
	plugins, _ := info["plugins"].(map[string]any)
	for _, p := range janustest.DefaultPlugins {
		if plugins["janus.plugin."+p] == nil {
			t.Errorf("plugin %s not loaded: %v", p, plugins)
		}
	}
	if len(plugins) != len(janustest.DefaultPlugins) {
		t.Errorf("%d plugins loaded, want only the %d defaults", len(plugins), len(janustest.DefaultPlugins))
	}
	for plugin, room := range map[string]int{"janus.plugin.videoroom": 4321, "janus.plugin.audiobridge": 5555} {
		data := j.PluginRequest(t, plugin, map[string]any{"request": "exists", "room": room})
		if data["exists"] != true {
			t.Errorf("%s room %d: %v", plugin, room, data)
		}
	}
	rooms := j.PluginRequest(t, "janus.plugin.videoroom", map[string]any{"request": "list"})
	if !strings.Contains(fmt.Sprint(rooms), "videocodec:vp8,h264") {
		t.Errorf("videoroom list: %v", rooms)
	}
}
