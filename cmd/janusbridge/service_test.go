package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/janusbridge/janusbridge/internal/janustest"
	"github.com/janusbridge/janusbridge/sdnotify"
)

const testToken = "t0ken"

// waitFor polls cond until it holds, at most within: a bridge's state has no
// event a client can wait on.
func waitFor(t *testing.T, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v", what, within)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// notifications collects the datagrams sent to a notify socket.
type notifications struct {
	t  *testing.T
	ch chan string
}

// listenNotify opens a notify socket of the test's own.
func listenNotify(t *testing.T) (string, *notifications) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "notify.sock")
	c, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	n := &notifications{t: t, ch: make(chan string, 1024)}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		buf := make([]byte, 4096)
		for {
			k, err := c.Read(buf)
			if err != nil {
				return
			}
			n.ch <- string(buf[:k])
		}
	}()
	t.Cleanup(func() { c.Close(); wg.Wait() })
	return path, n
}

// next waits for a notification that starts with prefix, skipping WATCHDOG
// and STATUS ones unless asked for, and returns it.
func (n *notifications) next(prefix string, within time.Duration) string {
	n.t.Helper()
	deadline := time.After(within)
	for {
		select {
		case m := <-n.ch:
			if strings.HasPrefix(m, prefix) {
				return m
			}
			if !strings.HasPrefix(m, "WATCHDOG=1") && !strings.HasPrefix(m, "STATUS=") {
				n.t.Fatalf("notification %q while waiting for %q", m, prefix)
			}
		case <-deadline:
			n.t.Fatalf("no %q notification within %v", prefix, within)
		}
	}
}

// logWriter passes the daemon's log to the test log, line by line.
func logWriter(t *testing.T) (io.Writer, func()) {
	r, w := io.Pipe()
	done := make(chan struct{})
	go func() {
		defer close(done)
		s := bufio.NewScanner(r)
		for s.Scan() {
			t.Log(s.Text())
		}
	}()
	return w, func() { w.Close(); <-done }
}

// TestNotify runs the daemon as systemd would, with a NOTIFY_SOCKET and a
// watchdog of the test's own, reloads it by SIGHUP and by the API and stops
// it: READY (once the API listens), STATUS, WATCHDOG, RELOADING with
// MONOTONIC_USEC, READY again, STOPPING.
func TestNotify(t *testing.T) {
	ports := janustest.FreeUDPPorts(t, 2)
	j := janustest.StartJanus(t, janustest.Options{
		Plugins:   []string{"streaming"},
		Streaming: janustest.MountpointConfig(1, "vp8", ports[0], ports[1]),
	})
	janustest.StartFeed(t, janustest.FeedOptions{VideoCodec: "vp8", AudioPort: ports[0], VideoPort: ports[1],
		Width: 320, Height: 180, VideoBitrate: "300k"})
	dir := t.TempDir()
	listen := fmt.Sprintf("127.0.0.1:%d", janustest.FreePort(t))
	bridgeText := func(name string) string {
		return fmt.Sprintf("[[bridge]]\nname = %q\nplugin = \"streaming\"\nmountpoint = 1\n"+
			"  [[bridge.sink]]\n  type = \"webm\"\n  path = %q\n", name, filepath.Join(dir, name+".webm"))
	}
	tokenFile := filepath.Join(dir, "token")
	if err := os.WriteFile(tokenFile, []byte(testToken+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	head := fmt.Sprintf("[janus]\nservers = [%q]\n[webrtc]\nloopback_candidates = true\n[control]\nlisten = %q\ntoken_file = %q\n",
		j.WSURL(), listen, tokenFile)
	cfg := writeConfig(t, head+bridgeText("one"))
	socket, notes := listenNotify(t)

	cmd := exec.Command(os.Args[0], "run", "-c", cfg)
	cmd.Env = append(os.Environ(), "JANUSBRIDGE_MAIN=1", "NOTIFY_SOCKET="+socket, "WATCHDOG_USEC=400000")
	logw, endLog := logWriter(t)
	cmd.Stderr = logw
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait(); endLog() }()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-exited
	})
	api := "http://" + listen

	ready := notes.next("READY=1", 30*time.Second)
	if !strings.Contains(ready, "\nSTATUS=") {
		t.Errorf("READY without STATUS: %q", ready)
	}
	// READY comes once the API listens.
	if resp, err := http.Get(api + "/healthz"); err != nil {
		t.Fatalf("API not listening at READY: %v", err)
	} else {
		resp.Body.Close()
	}
	// The watchdog, every 200 ms, and the status once the bridge is up.
	start := time.Now()
	notes.next("WATCHDOG=1", 6*time.Second)
	notes.next("WATCHDOG=1", 6*time.Second)
	if d := time.Since(start); d > 5*time.Second { // 400 ms at most unloaded; not the unit's 30 s
		t.Errorf("two watchdog pings took %v (WATCHDOG_USEC=400000)", d)
	}
	if !strings.Contains(ready, "1/1 bridges up") {
		notes.next("STATUS=1/1 bridges up", 20*time.Second)
	}

	// SIGHUP reload: a second bridge.
	if err := os.WriteFile(cfg, []byte(head+bridgeText("one")+bridgeText("two")), 0o600); err != nil {
		t.Fatal(err)
	}
	before := sdnotify.Monotonic()
	if err := cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	checkReloading(t, notes.next("RELOADING=1", 10*time.Second), before)
	notes.next("READY=1", 30*time.Second)
	if n := len(apiBridges(t, api)); n != 2 {
		t.Errorf("after SIGHUP: %d bridges, want 2", n)
	}

	// janusbridge status, through the configuration file (token included)
	// and through --control.
	waitFor(t, 20*time.Second, "both bridges up", func() bool {
		_, out, _ := run(t, "status", "-c", cfg)
		return regexp.MustCompile(`(?m)^one +streaming +recv +up +2 audio/opus,video/vp8 .*kbit/s +0\.00% +webm0:writing$`).MatchString(out) &&
			regexp.MustCompile(`(?m)^two +streaming +recv +up `).MatchString(out)
	})
	code, out, errs := run(t, "status", "--control", api, "--token-file", tokenFile)
	if code != exitOK || !strings.HasPrefix(out, "NAME ") || strings.Count(out, "\n") != 3 {
		t.Errorf("status --control: exit %d\n%s%s", code, out, errs)
	}
	t.Logf("janusbridge status:\n%s", out)
	if code, _, errs := run(t, "status", "--control", api); code != exitFailure || !strings.Contains(errs, "401") {
		t.Errorf("status without the token: exit %d, %s", code, errs)
	}
	if code, _, _ := run(t, "status"); code != exitUsage {
		t.Errorf("status without -c or --control: exit %d", code)
	}

	// API reload of an invalid file: refused, RELOADING then READY all the same.
	if err := os.WriteFile(cfg, []byte(head+bridgeText("one")+"[[bridge]]\nname = 3\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	before = sdnotify.Monotonic()
	req, err := http.NewRequest("POST", api+"/api/v1/reload", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+testToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(body), "bridge[1]: name: must be a string") {
		t.Errorf("invalid reload: %d %s", resp.StatusCode, body)
	}
	checkReloading(t, notes.next("RELOADING=1", 10*time.Second), before)
	notes.next("READY=1", 10*time.Second)
	if n := len(apiBridges(t, api)); n != 2 {
		t.Errorf("after an invalid reload: %d bridges, want 2", n)
	}

	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	notes.next("STOPPING=1", 10*time.Second)
	select {
	case err := <-exited:
		exited <- err // for the cleanup
		if err != nil {
			t.Errorf("daemon exit: %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("daemon did not exit after SIGTERM")
	}
}

// checkReloading checks a RELOADING notification carries the monotonic
// clock of its sending.
func checkReloading(t *testing.T, m string, before time.Duration) {
	t.Helper()
	v, ok := strings.CutPrefix(m, "RELOADING=1\nMONOTONIC_USEC=")
	us, err := strconv.ParseInt(v, 10, 64)
	if !ok || err != nil || us < before.Microseconds() || us > sdnotify.Monotonic().Microseconds() {
		t.Errorf("reload notification %q: want RELOADING=1 and MONOTONIC_USEC of now", m)
	}
}

func apiBridges(t *testing.T, api string) []json.RawMessage {
	t.Helper()
	req, err := http.NewRequest("GET", api+"/api/v1/bridges", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+testToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var list []json.RawMessage
	if err := json.NewDecoder(resp.Body).Decode(&list); err != nil {
		t.Fatal(err)
	}
	return list
}

// TestUnitVerify checks the shipped systemd unit with systemd-analyze
// verify (its binary path pointed at this test binary, which must exist
// for verify) and the settings SPEC §8 asks for.
func TestUnitVerify(t *testing.T) {
	janustest.RequireTools(t, "systemd-analyze")
	text, err := os.ReadFile("../../packaging/janusbridge.service")
	if err != nil {
		t.Fatal(err)
	}
	unit := string(text)
	settings := map[string]string{}
	for line := range strings.SplitSeq(unit, "\n") {
		if k, v, ok := strings.Cut(line, "="); ok && !strings.HasPrefix(line, "#") {
			settings[k] = v
		}
	}
	for k, want := range map[string]string{
		"Type": "notify", "ExecReload": "/bin/kill -HUP $MAINPID", "Restart": "on-failure",
		"StateDirectory": "janusbridge", "RuntimeDirectory": "janusbridge", "DynamicUser": "yes",
		"ProtectSystem": "strict", "NoNewPrivileges": "yes",
	} {
		if settings[k] != want {
			t.Errorf("%s=%q, want %q", k, settings[k], want)
		}
	}
	for _, k := range []string{"WatchdogSec", "ReadWritePaths"} {
		if settings[k] == "" {
			t.Errorf("no %s", k)
		}
	}
	stop, err := time.ParseDuration(settings["TimeoutStopSec"])
	if err != nil || stop <= 10*time.Second { // the default shutdown_timeout
		t.Errorf("TimeoutStopSec=%q: want more than shutdown_timeout's default 10s", settings["TimeoutStopSec"])
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "janusbridge.service")
	if err := os.WriteFile(path, []byte(strings.ReplaceAll(unit, "/usr/local/bin/janusbridge", self)), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("systemd-analyze", "verify", path).CombinedOutput()
	if err != nil || len(strings.TrimSpace(string(out))) > 0 {
		t.Errorf("systemd-analyze verify: %v\n%s", err, out)
	}
}
