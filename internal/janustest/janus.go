package janustest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// DefaultRTPPortRange is Janus's media (ICE) port range unless Options.RTPPortRange says
// otherwise. It stays clear of 40000-40999, which the bridge uses (and fault tests drop packets
// on), and of the ports FreeUDPPorts hands out.
const DefaultRTPPortRange = "30000-39999"

// DefaultPlugins are the plugins StartJanus enables when Options.Plugins is empty.
var DefaultPlugins = []string{"streaming", "videoroom", "audiobridge", "echotest"}

// readyTimeout bounds how long StartJanus and Restart wait for Janus to answer.
const readyTimeout = 30 * time.Second

// logTailLines is how many lines of the Janus log a failed test prints.
const logTailLines = 60

// Options configures the Janus that StartJanus generates a configuration for and starts.
// The zero value is a usable configuration.
type Options struct {
	// APISecret, when set, is Janus's api_secret: every request must carry it.
	APISecret string
	// SessionTimeout is session_timeout in seconds; 0 keeps Janus's default (60), a negative
	// value disables session timeouts.
	SessionTimeout int
	// ReclaimTimeout is reclaim_session_timeout in seconds; 0 (off) makes `claim` impossible.
	ReclaimTimeout int
	// Plugins lists the plugins to load by short name ("streaming", "videoroom",
	// "audiobridge", "echotest", or any other libjanus_NAME.so on disk); empty means
	// DefaultPlugins. Every other plugin is disabled so Janus starts fast.
	Plugins []string
	// Streaming is appended to janus.plugin.streaming.jcfg, e.g. MountpointConfig's output.
	Streaming string
	// VideoRoom is appended to janus.plugin.videoroom.jcfg, e.g. VideoRoomConfig's output.
	VideoRoom string
	// AudioBridge is appended to janus.plugin.audiobridge.jcfg, e.g. AudioBridgeConfig's output.
	AudioBridge string
	// RTPPortRange is Janus's media port range ("min-max"); empty means DefaultRTPPortRange.
	// The Streaming and AudioBridge plugins allocate their plain-RTP ports (mountpoints created
	// with port 0, RTP participants) from the same range.
	RTPPortRange string
	// AdminKey, when set, is the admin_key of the Streaming, VideoRoom and AudioBridge plugins:
	// creating mountpoints or rooms through the API then needs it. Empty: anyone may create.
	AdminKey string
	// Admin enables the Admin API on the HTTP transport (see Janus.AdminURL), protected by
	// AdminSecret.
	Admin bool
	// AdminSecret is the Admin API's admin_secret; empty means "janusoverlord".
	AdminSecret string
	// DebugLevel is Janus's log level (0-7); 0 means 4, Janus's default.
	DebugLevel int
	// Args are extra command-line arguments for janus (see `janus --help`), e.g.
	// "--no-media-timer=1".
	Args []string
}

// Janus is a Janus server started by StartJanus for one test.
type Janus struct {
	opts      Options
	bin       string
	dir       string
	logPath   string
	httpPort  int
	wsPort    int
	adminPort int

	mu      sync.Mutex
	cmd     *exec.Cmd
	done    chan struct{} // closed when cmd has exited; nil before the first start
	waitErr error
	starts  int
}

// janusLibDirs are where distributions put Janus's modules; the first one holding plugins/ wins.
var janusLibDirs = []string{
	"/usr/lib/x86_64-linux-gnu/janus",
	"/usr/lib/aarch64-linux-gnu/janus",
	"/usr/lib/janus",
	"/usr/local/lib/janus",
	"/opt/janus/lib/janus",
}

// StartJanus writes a configuration for opts into a new directory of t.TempDir(), starts Janus
// on free 127.0.0.1 ports for its HTTP and WebSocket transports, and waits until it answers an
// `info` request over HTTP and accepts TCP connections on the WebSocket port. Janus is stopped
// in t.Cleanup; if the test failed, the cleanup logs the last lines of Janus's log.
// StartJanus calls Require first, so it skips (or fails in CI) outside the test environment.
func StartJanus(t testing.TB, opts Options) *Janus {
	t.Helper()
	Require(t)
	bin, err := exec.LookPath("janus")
	if err != nil {
		unusable(t, "janus not installed")
	}
	libDir := ""
	for _, d := range janusLibDirs {
		if st, err := os.Stat(filepath.Join(d, "plugins")); err == nil && st.IsDir() {
			libDir = d
			break
		}
	}
	if libDir == "" {
		unusable(t, "no Janus plugins folder in any of %s", strings.Join(janusLibDirs, ", "))
	}
	j := &Janus{
		opts:     opts,
		bin:      bin,
		dir:      t.TempDir(),
		httpPort: FreePort(t),
		wsPort:   FreePort(t),
	}
	if opts.Admin {
		j.adminPort = FreePort(t)
	}
	j.logPath = filepath.Join(j.dir, "janus.log")
	if err := j.writeConfig(libDir); err != nil {
		t.Fatalf("janustest: writing Janus configuration: %v", err)
	}
	t.Cleanup(func() {
		j.Stop()
		if t.Failed() {
			t.Logf("janustest: last %d lines of %s:\n%s", logTailLines, j.logPath, j.LogTail(logTailLines))
		}
	})
	if err := j.start(); err != nil {
		t.Fatalf("janustest: starting Janus: %v", err)
	}
	return j
}

// HTTPURL is the URL of the Janus API over HTTP, e.g. "http://127.0.0.1:PORT/janus".
func (j *Janus) HTTPURL() string { return fmt.Sprintf("http://127.0.0.1:%d/janus", j.httpPort) }

// WSURL is the URL of the Janus API over WebSocket (subprotocol "janus-protocol"),
// e.g. "ws://127.0.0.1:PORT/".
func (j *Janus) WSURL() string { return fmt.Sprintf("ws://127.0.0.1:%d/", j.wsPort) }

// HTTPAddr is the host:port of the HTTP transport (a Proxy target).
func (j *Janus) HTTPAddr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(j.httpPort)) }

// WSAddr is the host:port of the WebSocket transport (a Proxy target).
func (j *Janus) WSAddr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(j.wsPort)) }

// AdminURL is the URL of the Admin API over HTTP ("http://127.0.0.1:PORT/admin"), or "" unless
// Options.Admin was set.
func (j *Janus) AdminURL() string {
	if j.adminPort == 0 {
		return ""
	}
	return fmt.Sprintf("http://127.0.0.1:%d/admin", j.adminPort)
}

// AdminSecret is the Admin API's secret (Options.AdminSecret or its default).
func (j *Janus) AdminSecret() string {
	if j.opts.AdminSecret != "" {
		return j.opts.AdminSecret
	}
	return "janusoverlord"
}

// APISecret is Options.APISecret, the api_secret every request needs ("" when none).
func (j *Janus) APISecret() string { return j.opts.APISecret }

// Dir is the directory holding the generated configuration and janus.log.
func (j *Janus) Dir() string { return j.dir }

// PID is the process id of the running Janus, or 0 when it is not running.
func (j *Janus) PID() int {
	j.mu.Lock()
	defer j.mu.Unlock()
	if !j.runningLocked() {
		return 0
	}
	return j.cmd.Process.Pid
}

// Running reports whether the Janus process is running.
func (j *Janus) Running() bool {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.runningLocked()
}

func (j *Janus) runningLocked() bool {
	if j.done == nil {
		return false
	}
	select {
	case <-j.done:
		return false
	default:
		return true
	}
}

// Signal sends sig to the running Janus (e.g. syscall.SIGSTOP and SIGCONT to freeze it).
func (j *Janus) Signal(sig os.Signal) error {
	j.mu.Lock()
	defer j.mu.Unlock()
	if !j.runningLocked() {
		return errNotRunning
	}
	return j.cmd.Process.Signal(sig)
}

// Kill sends SIGKILL to Janus and waits for it to exit: a crash, sessions are lost. It does
// nothing if Janus is not running.
func (j *Janus) Kill() {
	j.mu.Lock()
	done := j.done
	if j.runningLocked() {
		_ = j.cmd.Process.Signal(syscall.SIGCONT) // in case a test froze it
		_ = j.cmd.Process.Kill()
	}
	j.mu.Unlock()
	if done != nil {
		<-done
	}
}

// Stop sends SIGTERM to Janus, waits for it to exit, and sends SIGKILL if it has not exited
// after 5 s. It does nothing if Janus is not running.
func (j *Janus) Stop() {
	j.mu.Lock()
	done := j.done
	if !j.runningLocked() {
		j.mu.Unlock()
		return
	}
	_ = j.cmd.Process.Signal(syscall.SIGCONT)
	_ = j.cmd.Process.Signal(syscall.SIGTERM)
	j.mu.Unlock()
	timer := time.NewTimer(5 * time.Second)
	defer timer.Stop()
	select {
	case <-done:
	case <-timer.C:
		j.Kill()
	}
}

// Restart starts Janus again with the same configuration on the same ports and waits until it
// is ready, as StartJanus does; a Janus still running is stopped first (Stop). Call it from the
// test's goroutine: it fails the test if Janus does not come up.
func (j *Janus) Restart(t testing.TB) {
	t.Helper()
	j.Stop()
	if err := j.start(); err != nil {
		t.Fatalf("janustest: restarting Janus: %v", err)
	}
}

// LogTail returns the last n lines of Janus's log (stdout and stderr of every run, each run
// starting with a "=== janustest:" line).
func (j *Janus) LogTail(n int) string {
	return tailFile(j.logPath, n)
}

// start launches Janus and waits until it is ready.
func (j *Janus) start() error {
	j.mu.Lock()
	if j.runningLocked() {
		j.mu.Unlock()
		return errors.New("already running")
	}
	j.starts++
	logf, err := os.OpenFile(j.logPath, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		j.mu.Unlock()
		return err
	}
	args := []string{
		"-C", filepath.Join(j.dir, "janus.jcfg"),
		"-F", j.dir,
		"-o", // no colours in the log
		"-D", // timestamps, to line the log up with the test's
	}
	args = append(args, j.opts.Args...)
	fmt.Fprintf(logf, "=== janustest: start #%d: %s %s\n", j.starts, j.bin, strings.Join(args, " "))
	cmd := externalCommand(j.bin, args...)
	cmd.Dir = j.dir
	cmd.Stdout = logf // an *os.File: no copying goroutine, and the log survives a SIGKILL
	cmd.Stderr = logf
	// If the test binary dies (e.g. go test -timeout), do not leave Janus holding the ports.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	err = cmd.Start()
	logf.Close()
	if err != nil {
		j.mu.Unlock()
		return err
	}
	done := make(chan struct{})
	j.cmd, j.done, j.waitErr = cmd, done, nil
	go func() {
		err := cmd.Wait()
		j.mu.Lock()
		j.waitErr = err
		j.mu.Unlock()
		close(done)
	}()
	j.mu.Unlock()
	return j.waitReady(done)
}

// waitReady polls until Janus answers `info` over HTTP and its WebSocket port accepts TCP.
func (j *Janus) waitReady(done <-chan struct{}) error {
	deadline := time.Now().Add(readyTimeout)
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	var last error
	for {
		last = j.probe()
		if last == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("not ready after %v: %v", readyTimeout, last)
		}
		select {
		case <-done:
			j.mu.Lock()
			err := j.waitErr
			j.mu.Unlock()
			return fmt.Errorf("janus exited before it was ready (%v); last probe: %v", err, last)
		case <-tick.C:
		}
	}
}

func (j *Janus) probe() error {
	req := map[string]any{"janus": "info", "transaction": "janustest-ready"}
	if j.opts.APISecret != "" {
		req["apisecret"] = j.opts.APISecret
	}
	resp, err := postJSON(j.HTTPURL(), req)
	if err != nil {
		return err
	}
	if resp["janus"] != "server_info" {
		return fmt.Errorf("info answered %v", resp)
	}
	c, err := net.DialTimeout("tcp", j.WSAddr(), time.Second)
	if err != nil {
		return fmt.Errorf("websocket port: %w", err)
	}
	c.Close()
	if j.adminPort != 0 {
		c, err := net.DialTimeout("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(j.adminPort)), time.Second)
		if err != nil {
			return fmt.Errorf("admin port: %w", err)
		}
		c.Close()
	}
	return nil
}

// httpClient keeps no idle connections, so no connection goroutine outlives a request, and
// ignores proxy settings from the environment.
var httpClient = &http.Client{
	Timeout:   10 * time.Second,
	Transport: &http.Transport{Proxy: nil, DisableKeepAlives: true},
}

// postJSON POSTs v as JSON and decodes the reply (numbers as json.Number).
func postJSON(url string, v any) (map[string]any, error) {
	body, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	resp, err := httpClient.Post(url, "application/json", bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	return decodeReply(resp)
}

func decodeReply(resp *http.Response) (map[string]any, error) {
	data, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("HTTP %s: %.200s", resp.Status, data)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil {
		return nil, fmt.Errorf("decoding %.200q: %w", data, err)
	}
	return m, nil
}

// Post sends one Janus API request over HTTP, independently of the code under test: req is
// POSTed to HTTPURL()+path (path "" for the server, "/SESSION" or "/SESSION/HANDLE"), with a
// transaction and the api secret added when missing. It returns the decoded reply (numbers as
// json.Number), whatever its "janus" field says; it fails the test only when Janus cannot be
// reached or the reply is not JSON.
func (j *Janus) Post(t testing.TB, path string, req map[string]any) map[string]any {
	t.Helper()
	r := make(map[string]any, len(req)+2)
	for k, v := range req {
		r[k] = v
	}
	if _, ok := r["transaction"]; !ok {
		r["transaction"] = "janustest-" + strconv.FormatInt(time.Now().UnixNano(), 36)
	}
	if _, ok := r["apisecret"]; !ok && j.opts.APISecret != "" {
		r["apisecret"] = j.opts.APISecret
	}
	resp, err := postJSON(j.HTTPURL()+path, r)
	if err != nil {
		t.Fatalf("janustest: POST %s%s: %v", j.HTTPURL(), path, err)
	}
	return resp
}

// AdminRequest sends one Admin API request (e.g. {"janus": "list_sessions"}) to AdminURL(),
// with a transaction and the admin secret added when missing, and returns the decoded reply
// (numbers as json.Number). It needs Options.Admin; it fails the test when Janus cannot be
// reached or the reply is not JSON.
func (j *Janus) AdminRequest(t testing.TB, req map[string]any) map[string]any {
	t.Helper()
	if j.adminPort == 0 {
		t.Fatalf("janustest: AdminRequest needs Options.Admin")
	}
	r := make(map[string]any, len(req)+2)
	for k, v := range req {
		r[k] = v
	}
	if _, ok := r["transaction"]; !ok {
		r["transaction"] = "janustest-" + strconv.FormatInt(time.Now().UnixNano(), 36)
	}
	if _, ok := r["admin_secret"]; !ok {
		r["admin_secret"] = j.AdminSecret()
	}
	resp, err := postJSON(j.AdminURL(), r)
	if err != nil {
		t.Fatalf("janustest: POST %s: %v", j.AdminURL(), err)
	}
	return resp
}

// PluginRequest sends one synchronous plugin request (e.g. Streaming `info`, `list`, `create`,
// VideoRoom `listparticipants`) in a session of its own: create a session, attach plugin (e.g.
// "janus.plugin.streaming"), send body as a message, destroy the session. It returns the
// plugin's reply data (plugindata.data; numbers as json.Number), which may carry the plugin's
// own "error"/"error_code"; it fails the test if Janus answers the message with anything but
// `success`.
func (j *Janus) PluginRequest(t testing.TB, plugin string, body map[string]any) map[string]any {
	t.Helper()
	sess := j.Post(t, "", map[string]any{"janus": "create"})
	sid := replyID(t, sess)
	defer j.destroySession(sid)
	att := j.Post(t, "/"+sid, map[string]any{"janus": "attach", "plugin": plugin})
	hid := replyID(t, att)
	resp := j.Post(t, "/"+sid+"/"+hid, map[string]any{"janus": "message", "body": body})
	if resp["janus"] != "success" {
		t.Fatalf("janustest: %s request %v: Janus answered %v", plugin, body, resp)
	}
	pd, _ := resp["plugindata"].(map[string]any)
	data, _ := pd["data"].(map[string]any)
	if data == nil {
		t.Fatalf("janustest: %s request %v: no plugindata.data in %v", plugin, body, resp)
	}
	return data
}

// destroySession destroys session sid, ignoring errors (it may run while the test fails).
func (j *Janus) destroySession(sid string) {
	req := map[string]any{"janus": "destroy", "transaction": "janustest-destroy"}
	if j.opts.APISecret != "" {
		req["apisecret"] = j.opts.APISecret
	}
	_, _ = postJSON(j.HTTPURL()+"/"+sid, req)
}

// replyID returns data.id of a `success` reply to create or attach.
func replyID(t testing.TB, resp map[string]any) string {
	t.Helper()
	if resp["janus"] != "success" {
		t.Fatalf("janustest: Janus answered %v", resp)
	}
	data, _ := resp["data"].(map[string]any)
	id, ok := data["id"].(json.Number)
	if !ok {
		t.Fatalf("janustest: no data.id in %v", resp)
	}
	return id.String()
}

// writeConfig writes janus.jcfg and one file per enabled module into j.dir.
func (j *Janus) writeConfig(libDir string) error {
	o := j.opts
	plugins := o.Plugins
	if len(plugins) == 0 {
		plugins = DefaultPlugins
	}
	rtpRange := o.RTPPortRange
	if rtpRange == "" {
		rtpRange = DefaultRTPPortRange
	}
	if lo, hi, ok := strings.Cut(rtpRange, "-"); !ok || atoiOr(lo, -1) <= 0 || atoiOr(hi, -1) < atoiOr(lo, 0) || atoiOr(hi, 0) > 65535 {
		return fmt.Errorf("bad RTPPortRange %q (want \"min-max\")", rtpRange)
	}
	pluginsDir := filepath.Join(libDir, "plugins")
	transportsDir := filepath.Join(libDir, "transports")
	for _, p := range plugins {
		if _, err := os.Stat(filepath.Join(pluginsDir, "libjanus_"+p+".so")); err != nil {
			return fmt.Errorf("unknown plugin %q: %v", p, err)
		}
	}
	wantPlugins := make([]string, len(plugins))
	for i, p := range plugins {
		wantPlugins[i] = "libjanus_" + p + ".so"
	}
	disabled := func(dir string, keep []string) (string, error) {
		libs, err := filepath.Glob(filepath.Join(dir, "libjanus_*.so"))
		if err != nil {
			return "", err
		}
		var off []string
		for _, l := range libs {
			if b := filepath.Base(l); !slices.Contains(keep, b) {
				off = append(off, b)
			}
		}
		return strings.Join(off, ","), nil
	}
	plugOff, err := disabled(pluginsDir, wantPlugins)
	if err != nil {
		return err
	}
	transOff, err := disabled(transportsDir, []string{"libjanus_http.so", "libjanus_websockets.so"})
	if err != nil {
		return err
	}
	logOff, err := disabled(filepath.Join(libDir, "loggers"), nil)
	if err != nil {
		return err
	}
	for _, t := range []string{"libjanus_http.so", "libjanus_websockets.so"} {
		if _, err := os.Stat(filepath.Join(transportsDir, t)); err != nil {
			return fmt.Errorf("transport missing: %v", err)
		}
	}

	sessionTimeout := 60
	if o.SessionTimeout > 0 {
		sessionTimeout = o.SessionTimeout
	} else if o.SessionTimeout < 0 {
		sessionTimeout = 0
	}
	debug := o.DebugLevel
	if debug == 0 {
		debug = 4
	}
	var b strings.Builder
	fmt.Fprintf(&b, "general: {\n")
	fmt.Fprintf(&b, "\tconfigs_folder = %s\n", q(j.dir))
	fmt.Fprintf(&b, "\tplugins_folder = %s\n", q(pluginsDir))
	fmt.Fprintf(&b, "\ttransports_folder = %s\n", q(transportsDir))
	fmt.Fprintf(&b, "\tevents_folder = %s\n", q(filepath.Join(libDir, "events")))
	fmt.Fprintf(&b, "\tloggers_folder = %s\n", q(filepath.Join(libDir, "loggers")))
	fmt.Fprintf(&b, "\tdebug_level = %d\n", debug)
	fmt.Fprintf(&b, "\tserver_name = \"janustest\"\n")
	fmt.Fprintf(&b, "\tsession_timeout = %d\n", sessionTimeout)
	fmt.Fprintf(&b, "\treclaim_session_timeout = %d\n", max(o.ReclaimTimeout, 0))
	if o.APISecret != "" {
		fmt.Fprintf(&b, "\tapi_secret = %s\n", q(o.APISecret))
	}
	if o.Admin {
		fmt.Fprintf(&b, "\tadmin_secret = %s\n", q(j.AdminSecret()))
	}
	fmt.Fprintf(&b, "}\n")
	fmt.Fprintf(&b, "certificates: { }\n")
	fmt.Fprintf(&b, "media: { rtp_port_range = %s }\n", q(rtpRange))
	// No STUN/TURN; the namespace's only non-loopback interface is v0 (127.0.0.2).
	fmt.Fprintf(&b, "nat: { nice_debug = false ice_ignore_list = \"vmnet\" ignore_mdns = true }\n")
	fmt.Fprintf(&b, "plugins: { disable = %s }\n", q(plugOff))
	fmt.Fprintf(&b, "transports: { disable = %s }\n", q(transOff))
	fmt.Fprintf(&b, "loggers: { disable = %s }\n", q(logOff))
	fmt.Fprintf(&b, "events: { broadcast = false }\n")
	files := map[string]string{"janus.jcfg": b.String()}

	files["janus.transport.http.jcfg"] = fmt.Sprintf(`general: {
	json = "plain"
	base_path = "/janus"
	http = true
	port = %d
	ip = "127.0.0.1"
	https = false
}
admin: {
	admin_base_path = "/admin"
	admin_http = %t
	admin_port = %d
	admin_ip = "127.0.0.1"
	admin_https = false
}
cors: { }
`, j.httpPort, o.Admin, max(j.adminPort, 7088))
	files["janus.transport.websockets.jcfg"] = fmt.Sprintf(`general: {
	json = "plain"
	ws = true
	ws_port = %d
	ws_ip = "127.0.0.1"
	wss = false
}
admin: {
	admin_ws = false
	admin_wss = false
}
`, j.wsPort)

	adminKey := ""
	if o.AdminKey != "" {
		adminKey = " admin_key = " + q(o.AdminKey)
	}
	for _, p := range plugins {
		var text string
		switch p {
		case "streaming":
			text = fmt.Sprintf("general: { rtp_port_range = %s%s }\n%s\n", q(rtpRange), adminKey, o.Streaming)
		case "videoroom":
			text = fmt.Sprintf("general: {%s }\n%s\n", adminKey, o.VideoRoom)
		case "audiobridge":
			text = fmt.Sprintf("general: { rtp_port_range = %s%s }\n%s\n", q(rtpRange), adminKey, o.AudioBridge)
		default:
			text = "general: { }\n"
		}
		files["janus.plugin."+p+".jcfg"] = text
	}
	for name, text := range files {
		if err := os.WriteFile(filepath.Join(j.dir, name), []byte(text), 0o644); err != nil {
			return err
		}
	}
	return nil
}

// q quotes s as a libconfig string.
func q(s string) string {
	r := strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`, "\t", `\t`)
	return `"` + r.Replace(s) + `"`
}

func atoiOr(s string, def int) int {
	n, err := strconv.Atoi(strings.TrimSpace(s))
	if err != nil {
		return def
	}
	return n
}

// tailFile returns the last n lines of the file at path (or a note saying why it cannot).
func tailFile(path string, n int) string {
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Sprintf("(cannot read %s: %v)", path, err)
	}
	lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// WaitFed polls the Streaming `info` of mountpoint id until every stream's age_ms (time since
// its last RTP packet) has stayed under 500 ms for over a second: the feed is arriving, and past
// its start (ffmpeg sends what it encoded while its encoders started in a burst, up to a second
// late for its timestamps, which is not what a recording should be judged on). It fails the
// test after 15 s. (Without a feed, age_ms counts up from the mountpoint's creation.)
func (j *Janus) WaitFed(t testing.TB, id int) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	var freshSince time.Time
	var last map[string]any
	for time.Now().Before(deadline) {
		data := j.PluginRequest(t, "janus.plugin.streaming", map[string]any{"request": "info", "id": id})
		last = data
		info, _ := data["info"].(map[string]any)
		media, _ := info["media"].([]any)
		fresh := len(media) > 0
		for _, m := range media {
			mm, _ := m.(map[string]any)
			age, err := jsonInt(mm["age_ms"])
			if err != nil || age > 500 {
				fresh = false
			}
		}
		switch {
		case !fresh:
			freshSince = time.Time{}
		case freshSince.IsZero():
			freshSince = time.Now()
		case time.Since(freshSince) > 1200*time.Millisecond:
			return
		}
		time.Sleep(100 * time.Millisecond) // polling interval, bounded by the deadline
	}
	t.Fatalf("janustest: mountpoint %d: media not arriving; last info: %v", id, last)
}

// jsonInt reads a json.Number.
func jsonInt(v any) (int64, error) {
	n, ok := v.(json.Number)
	if !ok {
		return 0, fmt.Errorf("not a number: %v", v)
	}
	return n.Int64()
}
