package bridge_test

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"net"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/janusbridge/janusbridge/bridge"
	"github.com/janusbridge/janusbridge/config"
	"github.com/janusbridge/janusbridge/internal/janustest"
	"github.com/janusbridge/janusbridge/janus"
)

// runningBridges are the bridges of a configuration run by a test, each
// reachable for its Stats and control calls.
type runningBridges struct {
	byName  map[string]*bridge.Bridge
	session *janus.Session
	cancel  context.CancelFunc
	bridges sync.WaitGroup // the bridges' Run
	wg      sync.WaitGroup // the session events reader
	once    sync.Once

	mu     sync.Mutex
	events []janus.SessionEventKind // the session's, in order
}

// sessionEvents returns the session's events so far.
func (rb *runningBridges) sessionEvents() []janus.SessionEventKind {
	rb.mu.Lock()
	defer rb.mu.Unlock()
	return append([]janus.SessionEventKind(nil), rb.events...)
}

// startBridges parses cfgText and runs every bridge of it on one session,
// as the daemon does; stop (also in t.Cleanup) stops them and waits.
func startBridges(t *testing.T, cfgText string) *runningBridges {
	t.Helper()
	cfg, err := config.Parse("test.toml", []byte(cfgText))
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelInfo}))
	wo := bridge.WebRTCOptions(cfg.WebRTC)
	wo.Feedback = &janus.FeedbackCounter{}
	api, err := janus.NewAPI(wo)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	opts := bridge.SessionOptions(cfg)
	session, err := janus.Connect(ctx, opts)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	rb := &runningBridges{byName: map[string]*bridge.Bridge{}, session: session, cancel: cancel}
	t.Cleanup(rb.stop)
	env := &bridge.Env{Session: session, API: api, ICEServers: wo.ICEServers, Logger: log, OwnFeeds: &bridge.OwnFeeds{}, Feedback: wo.Feedback}
	rb.wg.Add(1)
	go func() {
		defer rb.wg.Done()
		for ev := range session.Events() {
			rb.mu.Lock()
			rb.events = append(rb.events, ev.Kind)
			rb.mu.Unlock()
		}
	}()
	for i := range cfg.Bridges {
		b, err := bridge.New(&cfg.Bridges[i], env)
		if err != nil {
			t.Fatal(err)
		}
		rb.byName[b.Name()] = b
		rb.bridges.Add(1)
		go func() {
			defer rb.bridges.Done()
			if err := b.Run(ctx); err != nil {
				t.Errorf("bridge %s: %v", b.Name(), err)
			}
		}()
	}
	return rb
}

// stop stops the bridges, waits for them and closes the session.
func (rb *runningBridges) stop() {
	rb.once.Do(func() {
		rb.cancel()
		rb.bridges.Wait()
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		rb.session.Close(ctx) // ends the events
		rb.wg.Wait()
	})
}

// waitFor polls cond every 100 ms until it holds, failing the test after
// within.
func waitFor(t *testing.T, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v", what, within)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// outTrack returns the snapshot of a send bridge's track of that index.
func outTrack(b *bridge.Bridge, index int) bridge.TrackSnapshot {
	for _, tr := range b.Stats().Tracks {
		if tr.Index == index && tr.Direction == "out" {
			return tr
		}
	}
	return bridge.TrackSnapshot{}
}

// checkRecording judges a recording with ffprobe and ffmpeg: its streams,
// a clean decode (see TestVideoRoomFollowAll for the one complaint let
// through), increasing timestamps, a keyframe first and at least minDur of
// media.
func checkRecording(t *testing.T, path, codecs string, minDur float64) {
	t.Helper()
	info := ffprobe(t, path)
	if got := info.codecs(); got != codecs {
		t.Errorf("%s: streams %s, want %s", filepath.Base(path), got, codecs)
	}
	var errs []string
	for _, l := range strings.Split(strings.TrimSpace(decodeErrors(t, path)), "\n") {
		if l = strings.TrimSpace(l); l != "" && !strings.Contains(l, "non monotonically increasing dts to muxer") &&
			!strings.HasPrefix(l, "Last message repeated") {
			errs = append(errs, l)
		}
	}
	if len(errs) > 0 {
		t.Errorf("%s: decode errors: %s", filepath.Base(path), strings.Join(errs, "\n"))
	}
	checkIncreasing(t, path)
	if strings.Contains(codecs, "video") && !firstVideoPacketIsKey(t, path) {
		t.Errorf("%s: first video frame is not a keyframe", filepath.Base(path))
	}
	if dur, _ := strconv.ParseFloat(info.Format.Duration, 64); dur < minDur {
		t.Errorf("%s: duration %.2fs, want at least %.1fs", filepath.Base(path), dur, minDur)
	}
}

// recordingOf returns the one recording in dir matching pattern.
func recordingOf(t *testing.T, dir, pattern string) string {
	t.Helper()
	files, _ := filepath.Glob(filepath.Join(dir, pattern))
	if len(files) != 1 {
		t.Fatalf("recordings %v in %s, want one %s", files, dir, pattern)
	}
	return files[0]
}

// videoRoomSendConfig is a configuration with a send bridge "cam" that
// publishes an RTP source (video of codec on videoPort, Opus on
// audioPort) in room 1234, and a recv bridge "rec" recording the room to
// dir.
func videoRoomSendConfig(server, codec string, videoPort, audioPort int, dir, webrtc string) string {
	pt := janustest.PTVP8
	if codec == "h264" {
		pt = janustest.PTH264
	}
	return fmt.Sprintf(`
[janus]
servers = [%q]
[webrtc]
loopback_candidates = true
%s
[[bridge]]
name = "cam"
plugin = "videoroom"
room = 1234
display = "cam"
  [bridge.source]
  type = "rtp"
  [[bridge.source.track]]
  kind = "video"
  codec = %q
  listen = "127.0.0.1:%d"
  payload_type = %d
  [[bridge.source.track]]
  kind = "audio"
  codec = "opus"
  listen = "127.0.0.1:%d"
  payload_type = %d
[[bridge]]
name = "rec"
plugin = "videoroom"
room = 1234
feeds = "all"
include_own = true
  [[bridge.sink]]
  type = "mkv"
  path = "%s/{feed}-{display}.mkv"
`, server, webrtc, codec, videoPort, pt, audioPort, janustest.PTOpus, dir)
}

// TestSendVideoRoom publishes ffmpeg's RTP (VP8+Opus, then H.264+Opus) in a
// VideoRoom through a send bridge; a recv bridge of the same daemon records
// the publisher, and the recording must decode cleanly with both tracks.
func TestSendVideoRoom(t *testing.T) {
	for _, codec := range []string{"vp8", "h264"} {
		t.Run(codec, func(t *testing.T) {
			j := janustest.StartJanus(t, janustest.Options{
				Plugins:   []string{"videoroom"},
				VideoRoom: janustest.VideoRoomConfig(1234, "vp8,h264"),
			})
			ports := janustest.FreeUDPPorts(t, 2) // video, audio
			dir := t.TempDir()
			rb := startBridges(t, videoRoomSendConfig(j.WSURL(), codec, ports[0], ports[1], dir, ""))
			janustest.StartFeed(t, janustest.FeedOptions{VideoCodec: codec, VideoPort: ports[0], AudioPort: ports[1]})
			cam := rb.byName["cam"]
			waitFor(t, 20*time.Second, "publisher sending", func() bool {
				return cam.Status().State == bridge.StateUp && outTrack(cam, 0).Packets > 100 && outTrack(cam, 1).Packets > 100
			})
			waitFor(t, 20*time.Second, "recording", func() bool {
				files, _ := filepath.Glob(filepath.Join(dir, "*-cam.mkv"))
				return len(files) == 1
			})
			if v := outTrack(cam, 0); v.Kind != "video" || v.Codec != codec || v.MID == "" {
				t.Errorf("video track %+v", v)
			}
			time.Sleep(6 * time.Second) // media to record
			rb.stop()
			checkRecording(t, recordingOf(t, dir, "*-cam.mkv"), "audio:opus,video:"+codec, 3)
			st := cam.Stats()
			t.Logf("cam: %+v", st)
			if v := outTrack(cam, 0); v.PLIs == 0 {
				t.Errorf("no keyframe request from Janus reached the video track: %+v", v)
			}
		})
	}
}

// rtpRelay stands between ffmpeg and a source's RTP port, as the RTP
// sender the source sees: what ffmpeg sends to Port goes on to the source
// from Port, and the keyframe requests the source sends back to Port+1
// (RTCP PLI or FIR; ffmpeg's own sender reports to that port are not
// counted) are counted in PLIs; Forwarded counts the RTP packets passed on.
type rtpRelay struct {
	Port      int
	PLIs      atomic.Uint64
	Forwarded atomic.Uint64
}

func startRelay(t *testing.T, port, to int) *rtpRelay {
	t.Helper()
	r := &rtpRelay{Port: port}
	lo := net.IPv4(127, 0, 0, 1)
	rtpConn, err := net.ListenUDP("udp4", &net.UDPAddr{IP: lo, Port: port})
	if err != nil {
		t.Fatal(err)
	}
	rtcpConn, err := net.ListenUDP("udp4", &net.UDPAddr{IP: lo, Port: port + 1})
	if err != nil {
		rtpConn.Close()
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		buf := make([]byte, 1600)
		dst := &net.UDPAddr{IP: lo, Port: to}
		for {
			n, _, err := rtpConn.ReadFromUDP(buf)
			if err != nil {
				return
			}
			if _, err := rtpConn.WriteToUDP(buf[:n], dst); err == nil {
				r.Forwarded.Add(1)
			}
		}
	}()
	go func() {
		defer wg.Done()
		buf := make([]byte, 1600)
		for {
			n, _, err := rtcpConn.ReadFromUDP(buf)
			if err != nil {
				return
			}
			if n >= 2 && (buf[1] == 206 || buf[1] == 192) { // PSFB (PLI, FIR) or the old FIR
				r.PLIs.Add(1)
			}
		}
	}()
	t.Cleanup(func() {
		rtpConn.Close()
		rtcpConn.Close()
		wg.Wait()
	})
	return r
}

// TestSendStreamingCreate feeds ffmpeg's RTP to a Streaming mountpoint that
// the send bridge creates (with RTCP ports); a recv bridge watching the
// mountpoint records it. The recording must decode cleanly, the viewer's
// keyframe requests must reach the RTP sender as RTCP, and the mountpoint
// must be gone once the bridge stops.
func TestSendStreamingCreate(t *testing.T) {
	j := janustest.StartJanus(t, janustest.Options{Plugins: []string{"streaming"}})
	ports := janustest.FreeUDPPorts(t, 3) // source video, source audio, relay
	relay := startRelay(t, ports[2], ports[0])
	dir := t.TempDir()
	rb := startBridges(t, fmt.Sprintf(`
[janus]
servers = [%q]
[webrtc]
loopback_candidates = true
[[bridge]]
name = "promo"
plugin = "streaming"
mountpoint = 99
create = true
secret = "mp-secret"
  [bridge.source]
  type = "rtp"
  [[bridge.source.track]]
  kind = "video"
  codec = "vp8"
  listen = "127.0.0.1:%d"
  payload_type = %d
  [[bridge.source.track]]
  kind = "audio"
  codec = "opus"
  listen = "127.0.0.1:%d"
  payload_type = %d
[[bridge]]
name = "view"
plugin = "streaming"
mountpoint = 99
keyframe_interval = "2s"
  [[bridge.sink]]
  type = "mkv"
  path = "%s/{bridge}.mkv"
`, j.WSURL(), ports[0], janustest.PTVP8, ports[1], janustest.PTOpus, dir))
	janustest.StartFeed(t, janustest.FeedOptions{VideoCodec: "vp8", VideoPort: relay.Port, AudioPort: ports[1]})
	promo := rb.byName["promo"]
	waitFor(t, 20*time.Second, "mountpoint fed", func() bool {
		return promo.Status().State == bridge.StateUp && outTrack(promo, 0).Packets > 100 && outTrack(promo, 1).Packets > 100
	})
	waitFor(t, 20*time.Second, "recording", func() bool { return len(globFiles(dir, "view.mkv")) == 1 })
	waitFor(t, 15*time.Second, "a keyframe request relayed to the RTP sender", func() bool { return relay.PLIs.Load() > 0 })
	time.Sleep(5 * time.Second)
	info := j.PluginRequest(t, "janus.plugin.streaming", map[string]any{"request": "info", "id": 99})
	if info["streaming"] != "info" {
		t.Errorf("mountpoint 99 while the bridge runs: %v", info)
	}
	rb.stop()
	checkRecording(t, filepath.Join(dir, "view.mkv"), "audio:opus,video:vp8", 2)
	t.Logf("promo: %+v; keyframe requests at the sender: %d", promo.Stats(), relay.PLIs.Load())
	if v := outTrack(promo, 0); v.PLIs == 0 {
		t.Errorf("no keyframe request from Janus counted on the video track: %+v", v)
	}
	gone := j.PluginRequest(t, "janus.plugin.streaming", map[string]any{"request": "info", "id": 99})
	if code := fmt.Sprint(gone["error_code"]); code != strconv.Itoa(janus.StreamingErrNoSuchMountpoint) {
		t.Errorf("mountpoint 99 after the bridge stopped: %v, want error %d", gone, janus.StreamingErrNoSuchMountpoint)
	}
}

func globFiles(dir, pattern string) []string {
	files, _ := filepath.Glob(filepath.Join(dir, pattern))
	return files
}

// waitUDP waits for a first packet on 127.0.0.1:port (a feed started),
// then frees the port.
func waitUDP(t *testing.T, port int) {
	t.Helper()
	c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: port})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, _, err := c.ReadFromUDP(make([]byte, 1600)); err != nil {
		t.Fatalf("no packet on port %d: %v", port, err)
	}
}

// stallWatch samples packet counters every 50 ms and keeps, per
// counter, the longest time without a new packet.
type stallWatch struct {
	mu      sync.Mutex
	longest map[string]time.Duration
	stop    chan struct{}
	done    chan struct{}
}

func watchStalls(counters map[string]func() uint64) *stallWatch {
	w := &stallWatch{longest: map[string]time.Duration{}, stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(w.done)
		last, since := map[string]uint64{}, map[string]time.Time{}
		now := time.Now()
		for k, f := range counters {
			last[k], since[k] = f(), now
		}
		tick := time.NewTicker(50 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-w.stop:
				return
			case now = <-tick.C:
			}
			w.mu.Lock()
			for k, f := range counters {
				if n := f(); n != last[k] {
					last[k], since[k] = n, now
				} else if d := now.Sub(since[k]); d > w.longest[k] {
					w.longest[k] = d
				}
			}
			w.mu.Unlock()
		}
	}()
	return w
}

// end stops the watch and returns the longest stall per counter.
func (w *stallWatch) end() map[string]time.Duration {
	close(w.stop)
	<-w.done
	return w.longest
}

// inTracks returns the received tracks of a recv bridge by kind.
func inTracks(b *bridge.Bridge, kind string) []bridge.TrackSnapshot {
	var ts []bridge.TrackSnapshot
	for _, tr := range b.Stats().Tracks {
		if tr.Kind == kind && tr.Direction == "in" {
			ts = append(ts, tr)
		}
	}
	return ts
}

func inPackets(b *bridge.Bridge, kind string) uint64 {
	var n uint64
	for _, tr := range inTracks(b, kind) {
		n += tr.Packets
	}
	return n
}

// TestSendReplaceAndRestart switches the video of a VideoRoom publisher to
// another RTP source mid-run, then restarts ICE through the control call,
// while a recv bridge records the publisher: no renegotiation for the
// switch, the subscriber keeps receiving (no stall of the packets arriving
// at the subscriber over 1.5 s through the switch, i.e. no freeze beyond
// the next keyframe, and over 2 s through the ICE restart), and the
// recording decodes cleanly.
func TestSendReplaceAndRestart(t *testing.T) {
	j := janustest.StartJanus(t, janustest.Options{
		Plugins:   []string{"videoroom"},
		VideoRoom: janustest.VideoRoomConfig(1234, "vp8,h264"),
	})
	ports := janustest.FreeUDPPorts(t, 3) // video, audio, the second video
	dir := t.TempDir()
	rb := startBridges(t, videoRoomSendConfig(j.WSURL(), "vp8", ports[0], ports[1], dir, ""))
	janustest.StartFeed(t, janustest.FeedOptions{VideoCodec: "vp8", VideoPort: ports[0], AudioPort: ports[1]})
	cam, rec := rb.byName["cam"], rb.byName["rec"]
	waitFor(t, 20*time.Second, "recording", func() bool { return inPackets(rec, "video") > 100 && inPackets(rec, "audio") > 50 })
	time.Sleep(2 * time.Second)

	// Replace the video source.
	janustest.StartFeed(t, janustest.FeedOptions{VideoCodec: "vp8", VideoPort: ports[2], Width: 320, Height: 240})
	waitUDP(t, ports[2]) // the new feed runs
	// The subscriber's packets, and for comparison the audio the bridge
	// sends (untouched by the replace): on a loaded machine the feeds
	// themselves stall at times.
	counters := map[string]func() uint64{
		"video at the subscriber": func() uint64 { return inPackets(rec, "video") },
		"audio at the subscriber": func() uint64 { return inPackets(rec, "audio") },
		"audio sent":              func() uint64 { return outTrack(cam, 1).Packets },
	}
	replaceStalls := watchStalls(counters)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	mid := outTrack(cam, 0).MID
	err := cam.ChangeTracks(ctx, bridge.TrackChange{Action: bridge.TrackReplace, MID: mid,
		Track: &bridge.TrackSpec{Kind: "video", Codec: "vp8", Listen: fmt.Sprintf("127.0.0.1:%d", ports[2]), PayloadType: janustest.PTVP8}})
	if err != nil {
		t.Fatal(err)
	}
	sentBefore, recvBefore := outTrack(cam, 0).Packets, inPackets(rec, "video")
	waitFor(t, 10*time.Second, "video from the new source arriving", func() bool {
		return outTrack(cam, 0).Packets > sentBefore+100 && inPackets(rec, "video") > recvBefore+100
	})
	if n := cam.Stats().Renegotiations; n != 0 {
		t.Errorf("%d renegotiations for a replace, want none", n)
	}
	time.Sleep(2 * time.Second)
	stalls := replaceStalls.end()
	t.Logf("longest stalls through the replace: %v", stalls)
	if d := stalls["video at the subscriber"]; d > 1500*time.Millisecond+stalls["audio sent"] {
		t.Errorf("the subscriber's video stalled %v through the replace (the machine: %v)", d, stalls["audio sent"])
	}

	// ICE restart on request.
	restartStalls := watchStalls(counters)
	ctx, cancel = context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := cam.RestartICE(ctx); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "ICE restart counted", func() bool { return cam.Stats().ICERestarts == 1 })
	recvBefore = inPackets(rec, "video")
	waitFor(t, 10*time.Second, "video after the ICE restart", func() bool { return inPackets(rec, "video") > recvBefore+100 })
	time.Sleep(2 * time.Second)
	stalls = restartStalls.end()
	t.Logf("longest stalls through the ICE restart: %v", stalls)
	for _, k := range []string{"video at the subscriber", "audio at the subscriber"} {
		if d := stalls[k]; d > 2*time.Second+stalls["audio sent"] {
			t.Errorf("%s stalled %v through the ICE restart (the machine: %v)", k, d, stalls["audio sent"])
		}
	}
	rb.stop()

	path := recordingOf(t, dir, "*-cam.mkv")
	checkRecording(t, path, "audio:opus,video:vp8", 5)
	t.Logf("cam %+v", cam.Stats())
}

// TestSendAddRemoveTrack adds video to an audio-only VideoRoom publisher,
// then removes it, by renegotiation with the plugin. A recv bridge that
// joins once the video is there receives it (the recv bridges do not yet
// follow a subscribed publisher's new streams), and sees it go on the
// removal while the audio goes on.
func TestSendAddRemoveTrack(t *testing.T) {
	j := janustest.StartJanus(t, janustest.Options{
		Plugins:   []string{"videoroom"},
		VideoRoom: janustest.VideoRoomConfig(1234, "vp8,h264"),
	})
	ports := janustest.FreeUDPPorts(t, 2) // audio, video
	dir := t.TempDir()
	head := fmt.Sprintf(`
[janus]
servers = [%q]
[webrtc]
loopback_candidates = true
`, j.WSURL())
	rb := startBridges(t, head+fmt.Sprintf(`
[[bridge]]
name = "mic"
plugin = "videoroom"
room = 1234
display = "mic"
  [bridge.source]
  type = "rtp"
  [[bridge.source.track]]
  kind = "audio"
  codec = "opus"
  listen = "127.0.0.1:%d"
  payload_type = %d
`, ports[0], janustest.PTOpus))
	janustest.StartFeed(t, janustest.FeedOptions{AudioPort: ports[0]})
	janustest.StartFeed(t, janustest.FeedOptions{VideoCodec: "h264", VideoPort: ports[1]})
	mic := rb.byName["mic"]
	waitFor(t, 20*time.Second, "audio sent", func() bool { return mic.Status().State == bridge.StateUp && outTrack(mic, 0).Packets > 50 })

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err := mic.ChangeTracks(ctx, bridge.TrackChange{Action: bridge.TrackAdd,
		Track: &bridge.TrackSpec{Kind: "video", Codec: "h264", Listen: fmt.Sprintf("127.0.0.1:%d", ports[1]), PayloadType: janustest.PTH264}})
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "renegotiated", func() bool { return mic.Stats().Renegotiations == 1 })
	video := outTrack(mic, 1)
	if video.Kind != "video" || video.MID == "" {
		t.Fatalf("added track %+v", video)
	}

	viewers := startBridges(t, head+fmt.Sprintf(`
[[bridge]]
name = "rec"
plugin = "videoroom"
room = 1234
feeds = "all"
  [[bridge.sink]]
  type = "mkv"
  path = "%s/{feed}-{display}-{start}.mkv"
`, dir))
	rec := viewers.byName["rec"]
	waitFor(t, 15*time.Second, "video received", func() bool { return inPackets(rec, "video") > 100 && inPackets(rec, "audio") > 50 })

	if err := mic.ChangeTracks(ctx, bridge.TrackChange{Action: bridge.TrackRemove, MID: video.MID}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "renegotiated", func() bool { return mic.Stats().Renegotiations == 2 })
	// The video stops arriving; the audio goes on.
	waitFor(t, 10*time.Second, "video gone", func() bool {
		before := inPackets(rec, "video")
		time.Sleep(time.Second)
		return inPackets(rec, "video") == before
	})
	audio := inPackets(rec, "audio")
	waitFor(t, 5*time.Second, "audio after the removal", func() bool { return inPackets(rec, "audio") > audio+50 })
	if err := mic.ChangeTracks(ctx, bridge.TrackChange{Action: bridge.TrackRemove, MID: outTrack(mic, 0).MID}); err == nil {
		t.Error("removing the last track succeeded")
	}
	t.Logf("mic %+v; rec %+v", mic.Stats(), rec.Stats().Tracks)
}

// nftOutage drops every UDP packet arriving on ports lo-hi (the send
// bridge's ICE ports) until the returned function is called (or the test
// ends).
func nftOutage(t *testing.T, lo, hi int) (end func()) {
	t.Helper()
	janustest.RequireTools(t, "nft")
	const table = "jbsendoutage"
	nft := func(args ...string) error {
		out, err := exec.Command("nft", args...).CombinedOutput()
		if err != nil {
			return fmt.Errorf("nft %s: %v: %s", strings.Join(args, " "), err, out)
		}
		return nil
	}
	_ = nft("delete", "table", "inet", table) // a leftover of an earlier run
	for _, args := range [][]string{
		{"add", "table", "inet", table},
		{"add", "chain", "inet", table, "in", "{ type filter hook input priority 0; }"},
		{"add", "rule", "inet", table, "in", "udp", "dport", fmt.Sprintf("%d-%d", lo, hi), "drop"},
	} {
		if err := nft(args...); err != nil {
			t.Fatal(err)
		}
	}
	var once sync.Once
	end = func() {
		once.Do(func() {
			if err := nft("delete", "table", "inet", table); err != nil {
				t.Error(err)
			}
		})
	}
	t.Cleanup(end)
	return end
}

// TestSendICEOutage cuts the send bridge's ICE ports (nftables) for longer
// than ice_failed_timeout while a recv bridge of another daemon (other
// ports) records the publisher: the bridge restarts ICE by itself (the
// counter moves) and the video is back at the subscriber within 5 s of the
// outage's end, whether it lasts one ICE restart or several.
func TestSendICEOutage(t *testing.T) {
	for _, c := range []struct {
		name   string
		outage time.Duration
	}{{"short", 6 * time.Second}, {"long", 16 * time.Second}} {
		t.Run(c.name, func(t *testing.T) { testICEOutage(t, c.outage) })
	}
}

func testICEOutage(t *testing.T, outage time.Duration) {
	j := janustest.StartJanus(t, janustest.Options{
		Plugins:   []string{"videoroom"},
		VideoRoom: janustest.VideoRoomConfig(1234, "vp8,h264"),
	})
	ports := janustest.FreeUDPPorts(t, 2)
	dir := t.TempDir()
	const sendPorts = `udp_port_min = 40000
udp_port_max = 40099
ice_disconnected_timeout = "1s"
ice_failed_timeout = "2s"`
	cfg := videoRoomSendConfig(j.WSURL(), "vp8", ports[0], ports[1], dir, sendPorts)
	cfg = cfg[:strings.Index(cfg, "[[bridge]]\nname = \"rec\"")]
	rb := startBridges(t, cfg)
	janustest.StartFeed(t, janustest.FeedOptions{VideoCodec: "vp8", VideoPort: ports[0], AudioPort: ports[1]})
	viewers := startBridges(t, fmt.Sprintf(`
[janus]
servers = [%q]
[webrtc]
loopback_candidates = true
udp_port_min = 40500
udp_port_max = 40599
[[bridge]]
name = "rec"
plugin = "videoroom"
room = 1234
feeds = "all"
  [[bridge.sink]]
  type = "mkv"
  path = "%s/{feed}-{display}.mkv"
`, j.WSURL(), dir))
	cam, rec := rb.byName["cam"], viewers.byName["rec"]
	waitFor(t, 20*time.Second, "recording", func() bool { return inPackets(rec, "video") > 100 })

	end := nftOutage(t, 40000, 40099)
	start := time.Now()
	waitFor(t, 10*time.Second, "video stopping", func() bool {
		before := inPackets(rec, "video")
		time.Sleep(500 * time.Millisecond)
		return inPackets(rec, "video") == before
	})
	waitFor(t, 15*time.Second, "an automatic ICE restart", func() bool { return cam.Stats().ICERestarts > 0 })
	for time.Since(start) < outage {
		time.Sleep(100 * time.Millisecond)
	}
	end()
	ended := time.Now()
	// A publisher published again is a new output of the recv bridge (the
	// old one's counters go with it): count from the lowest sum seen.
	low := inPackets(rec, "video")
	waitFor(t, 5*time.Second, "video back within 5 s of the outage's end", func() bool {
		n := inPackets(rec, "video")
		low = min(low, n)
		return n > low+25
	})
	t.Logf("video back %.1fs after the outage's end; cam %+v", time.Since(ended).Seconds(), cam.Stats())
	waitFor(t, 5*time.Second, "cam up again", func() bool { return cam.Status().State == bridge.StateUp })
}

// syncMarkerFile encodes a VP8+Opus WebM of dur seconds that flashes (a
// white picture) and beeps (1 kHz) for the first 200 ms of every second,
// black and silent otherwise.
func syncMarkerFile(t *testing.T, path string, dur int) {
	t.Helper()
	janustest.RequireTools(t, "ffmpeg", "ffprobe")
	out, err := exec.Command("ffmpeg", "-nostdin", "-v", "error",
		"-f", "lavfi", "-i", `color=c=black:size=320x240:rate=25,drawbox=c=white:t=fill:enable='lt(mod(t\,1)\,0.2)'`,
		"-f", "lavfi", "-i", `sine=frequency=1000:sample_rate=48000,volume=volume=0:enable='gte(mod(t\,1)\,0.2)'`,
		"-t", strconv.Itoa(dur), "-c:v", "libvpx", "-deadline", "realtime", "-cpu-used", "8", "-b:v", "300k", "-g", "25",
		"-c:a", "libopus", "-ar", "48000", "-ac", "2", path).CombinedOutput()
	if err != nil {
		t.Fatalf("encoding %s: %v: %s", path, err, out)
	}
}

// flashes returns the times of the recording's flashes: the pts of each
// bright frame that follows a dark one.
func flashes(t *testing.T, path string) []float64 {
	t.Helper()
	out, err := exec.Command("ffprobe", "-v", "error", "-f", "lavfi", "-i", "movie="+path+",signalstats",
		"-show_entries", "frame=pts_time:frame_tags=lavfi.signalstats.YAVG", "-of", "csv=p=0").Output()
	if err != nil {
		t.Fatalf("ffprobe signalstats %s: %v", path, err)
	}
	var ts []float64
	bright := false
	for _, l := range strings.Fields(string(out)) {
		f := strings.Split(l, ",")
		if len(f) < 2 {
			continue
		}
		pts, err1 := strconv.ParseFloat(f[0], 64)
		y, err2 := strconv.ParseFloat(f[1], 64)
		if err1 != nil || err2 != nil {
			continue
		}
		if y > 128 && !bright {
			ts = append(ts, pts)
		}
		bright = y > 128
	}
	return ts
}

// beeps returns the onsets of the recording's beeps (silencedetect's
// silence ends).
func beeps(t *testing.T, path string) []float64 {
	t.Helper()
	out, _ := exec.Command("ffmpeg", "-nostdin", "-v", "info", "-i", path, "-map", "0:a", "-af", "silencedetect=n=-30dB:d=0.3", "-f", "null", "-").CombinedOutput()
	var ts []float64
	for _, l := range strings.Split(string(out), "\n") {
		if _, v, ok := strings.Cut(l, "silence_end: "); ok {
			if f := strings.Fields(v); len(f) > 0 {
				if x, err := strconv.ParseFloat(f[0], 64); err == nil {
					ts = append(ts, x)
				}
			}
		}
	}
	return ts
}

// TestSendFileLoop publishes a 3 s WebM file that flashes and beeps once a
// second, looped, in a VideoRoom; a recv bridge records it for more than
// three passes. The recording must decode cleanly with timestamps that
// never go backwards, last about as long as it ran (the passes follow each
// other without a jump), flash every second, and each beep must come with
// its flash (A/V aligned through the loops).
func TestSendFileLoop(t *testing.T) {
	j := janustest.StartJanus(t, janustest.Options{
		Plugins:   []string{"videoroom"},
		VideoRoom: janustest.VideoRoomConfig(1234, "vp8,h264"),
	})
	dir := t.TempDir()
	file := filepath.Join(t.TempDir(), "marker.webm")
	syncMarkerFile(t, file, 3)
	rb := startBridges(t, fmt.Sprintf(`
[janus]
servers = [%q]
[webrtc]
loopback_candidates = true
[[bridge]]
name = "promo"
plugin = "videoroom"
room = 1234
display = "promo"
  [bridge.source]
  type = "file"
  path = %q
  loop = true
[[bridge]]
name = "rec"
plugin = "videoroom"
room = 1234
feeds = "all"
include_own = true
  [[bridge.sink]]
  type = "mkv"
  path = "%s/{feed}-{display}.mkv"
`, j.WSURL(), file, dir))
	rec := rb.byName["rec"]
	waitFor(t, 20*time.Second, "recording", func() bool { return inPackets(rec, "video") > 10 && len(globFiles(dir, "*-promo.mkv")) == 1 })
	recording := time.Now()
	time.Sleep(10 * time.Second) // more than three passes
	rb.stop()
	elapsed := time.Since(recording).Seconds()

	path := recordingOf(t, dir, "*-promo.mkv")
	checkRecording(t, path, "audio:opus,video:vp8", elapsed-1.5)
	fl, bp := flashes(t, path), beeps(t, path)
	t.Logf("recorded %.1fs; flashes %v; beeps %v", elapsed, fl, bp)
	if len(fl) < 9 {
		t.Fatalf("%d flashes in the recording, want one a second", len(fl))
	}
	for i := 1; i < len(fl); i++ {
		if d := fl[i] - fl[i-1]; math.Abs(d-1) > 0.1 {
			t.Errorf("flashes at %.3f and %.3f: %.3fs apart, want 1s", fl[i-1], fl[i], d)
		}
	}
	paired := 0
	for _, f := range fl {
		if f < 0.5 {
			continue // a beep at the very start has no silence before it to detect
		}
		best := math.Inf(1)
		for _, b := range bp {
			if math.Abs(b-f) < math.Abs(best) {
				best = b - f
			}
		}
		if math.Abs(best) > 0.06 {
			t.Errorf("flash at %.3f: nearest beep %.3fs away", f, best)
			continue
		}
		paired++
	}
	if paired < 8 {
		t.Errorf("%d flashes with their beep, want at least 8", paired)
	}
}

// TestSendAudioBridge joins an AudioBridge room with an RTP source playing
// a tone; a recv bridge records the room's mix, which must carry the tone.
// An ICE restart on request must leave the mix going.
func TestSendAudioBridge(t *testing.T) {
	j := janustest.StartJanus(t, janustest.Options{Plugins: []string{"audiobridge"}, AudioBridge: audioBridgeRoom(5678)})
	port := janustest.FreeUDPPorts(t, 1)[0]
	dir := t.TempDir()
	rb := startBridges(t, fmt.Sprintf(`
[janus]
servers = [%q]
[webrtc]
loopback_candidates = true
[[bridge]]
name = "talk"
plugin = "audiobridge"
room = 5678
display = "talk"
  [bridge.source]
  type = "rtp"
  [[bridge.source.track]]
  kind = "audio"
  codec = "opus"
  listen = "127.0.0.1:%d"
  payload_type = %d
[[bridge]]
name = "mix"
plugin = "audiobridge"
room = 5678
  [[bridge.sink]]
  type = "ogg"
  path = "%s/mix.ogg"
`, j.WSURL(), port, janustest.PTOpus, dir))
	janustest.StartFeed(t, janustest.FeedOptions{AudioPort: port})
	talk, mix := rb.byName["talk"], rb.byName["mix"]
	waitFor(t, 20*time.Second, "the mix recorded", func() bool {
		return talk.Status().State == bridge.StateUp && inPackets(mix, "audio") > 100
	})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := talk.RestartICE(ctx); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "ICE restart", func() bool { return talk.Stats().ICERestarts == 1 })
	time.Sleep(3 * time.Second)
	rb.stop()
	path := filepath.Join(dir, "mix.ogg")
	if got := ffprobe(t, path).codecs(); got != "audio:opus" {
		t.Errorf("streams %s, want audio:opus", got)
	}
	if errs := decodeErrors(t, path); errs != "" {
		t.Errorf("decode errors: %.1000s", errs)
	}
	if v := maxVolume(t, path); v < -40 {
		t.Errorf("max volume %.1f dB: the mix is silent", v)
	}
	if st := talk.Status(); st.State != bridge.StateStopped {
		t.Errorf("talk state %s", st.State)
	}
	t.Logf("talk %+v", talk.Stats())
}

// TestSendEchoTestLoop runs the self-test loop: an RTP source (VP8+Opus)
// goes into the EchoTest plugin and its echo comes back into a file sink of
// the same bridge, which must decode cleanly with both tracks.
func TestSendEchoTestLoop(t *testing.T) {
	j := janustest.StartJanus(t, janustest.Options{Plugins: []string{"echotest"}})
	ports := janustest.FreeUDPPorts(t, 2)
	dir := t.TempDir()
	rb := startBridges(t, fmt.Sprintf(`
[janus]
servers = [%q]
[webrtc]
loopback_candidates = true
[[bridge]]
name = "selftest"
plugin = "echotest"
  [bridge.source]
  type = "rtp"
  [[bridge.source.track]]
  kind = "video"
  codec = "vp8"
  listen = "127.0.0.1:%d"
  payload_type = %d
  [[bridge.source.track]]
  kind = "audio"
  codec = "opus"
  listen = "127.0.0.1:%d"
  payload_type = %d
  [[bridge.sink]]
  type = "mkv"
  path = "%s/echo.mkv"
`, j.WSURL(), ports[0], janustest.PTVP8, ports[1], janustest.PTOpus, dir))
	janustest.StartFeed(t, janustest.FeedOptions{VideoCodec: "vp8", VideoPort: ports[0], AudioPort: ports[1]})
	b := rb.byName["selftest"]
	waitFor(t, 20*time.Second, "the echo recorded", func() bool {
		return inPackets(b, "video") > 100 && inPackets(b, "audio") > 50 && len(globFiles(dir, "echo.mkv")) == 1
	})
	time.Sleep(4 * time.Second)
	st := b.Stats()
	rb.stop()
	t.Logf("selftest %+v", st)
	checkRecording(t, filepath.Join(dir, "echo.mkv"), "audio:opus,video:vp8", 1.5)
	for i := range 2 {
		if o := outTrack(b, i); o.Packets == 0 {
			t.Errorf("sent track %+v: no packets", o)
		}
	}
}

// TestSendStreamingJanusRestart feeds a mountpoint the bridge created and
// restarts Janus (which forgets it): the bridge creates it again on the new
// Janus and feeds it; a viewer of the same daemon records again.
func TestSendStreamingJanusRestart(t *testing.T) {
	j := janustest.StartJanus(t, janustest.Options{Plugins: []string{"streaming"}})
	ports := janustest.FreeUDPPorts(t, 2)
	dir := t.TempDir()
	rb := startBridges(t, fmt.Sprintf(`
[janus]
servers = [%q]
reconnect_min = "200ms"
reconnect_max = "1s"
[webrtc]
loopback_candidates = true
[[bridge]]
name = "promo"
plugin = "streaming"
mountpoint = 99
create = true
  [bridge.source]
  type = "rtp"
  [[bridge.source.track]]
  kind = "video"
  codec = "h264"
  listen = "127.0.0.1:%d"
  payload_type = %d
  [[bridge.source.track]]
  kind = "audio"
  codec = "opus"
  listen = "127.0.0.1:%d"
  payload_type = %d
[[bridge]]
name = "view"
plugin = "streaming"
mountpoint = 99
  [[bridge.sink]]
  type = "mkv"
  path = "%s/{bridge}-{start}.mkv"
`, j.WSURL(), ports[0], janustest.PTH264, ports[1], janustest.PTOpus, dir))
	janustest.StartFeed(t, janustest.FeedOptions{VideoCodec: "h264", VideoPort: ports[0], AudioPort: ports[1]})
	promo, view := rb.byName["promo"], rb.byName["view"]
	waitFor(t, 20*time.Second, "viewer receiving", func() bool { return inPackets(view, "video") > 100 })

	j.Restart(t)
	restarted := time.Now()
	before := inPackets(view, "video")
	waitFor(t, 30*time.Second, "viewer receiving from the re-created mountpoint", func() bool {
		return promo.Status().State == bridge.StateUp && inPackets(view, "video") > before+100
	})
	t.Logf("media back %.1fs after Janus restarted", time.Since(restarted).Seconds())
	info := j.PluginRequest(t, "janus.plugin.streaming", map[string]any{"request": "info", "id": 99})
	if info["streaming"] != "info" {
		t.Errorf("mountpoint 99 after the restart: %v", info)
	}
	rb.stop()
	gone := j.PluginRequest(t, "janus.plugin.streaming", map[string]any{"request": "info", "id": 99})
	if code := fmt.Sprint(gone["error_code"]); code != strconv.Itoa(janus.StreamingErrNoSuchMountpoint) {
		t.Errorf("mountpoint 99 after the bridge stopped: %v", gone)
	}
}

// TestSendSourceStates: a publisher whose RTP source sends nothing stays
// joined, state waiting, and goes up when the feed starts; a file source
// without loop publishes its file and ends the bridge, state done.
func TestSendSourceStates(t *testing.T) {
	j := janustest.StartJanus(t, janustest.Options{
		Plugins:   []string{"videoroom"},
		VideoRoom: janustest.VideoRoomConfig(1234, "vp8,h264"),
	})
	port := janustest.FreeUDPPorts(t, 1)[0]
	file := filepath.Join(t.TempDir(), "marker.webm")
	syncMarkerFile(t, file, 2)
	rb := startBridges(t, fmt.Sprintf(`
[janus]
servers = [%q]
[webrtc]
loopback_candidates = true
[[bridge]]
name = "cam"
plugin = "videoroom"
room = 1234
display = "cam"
  [bridge.source]
  type = "rtp"
  [[bridge.source.track]]
  kind = "audio"
  codec = "opus"
  listen = "127.0.0.1:%d"
  payload_type = %d
[[bridge]]
name = "clip"
plugin = "videoroom"
room = 1234
display = "clip"
  [bridge.source]
  type = "file"
  path = %q
`, j.WSURL(), port, janustest.PTOpus, file))
	cam, clip := rb.byName["cam"], rb.byName["clip"]
	waitFor(t, 15*time.Second, "cam waiting for its source", func() bool { return cam.Status().State == bridge.StateWaiting })
	janustest.StartFeed(t, janustest.FeedOptions{AudioPort: port})
	waitFor(t, 10*time.Second, "cam up with its source", func() bool {
		return cam.Status().State == bridge.StateUp && outTrack(cam, 0).Packets > 0
	})
	waitFor(t, 15*time.Second, "clip done", func() bool { return clip.Status().State == bridge.StateDone })
	if v := outTrack(clip, 0); v.Packets < 40 { // 2 s at 25 fps, a packet or more a frame
		t.Errorf("clip's video %+v: want the whole file sent", v)
	}
}

// TestSendStreamingExisting feeds mountpoints of Janus's configuration:
// with create = false (ports learnt through info), and with create = true
// on a mountpoint that exists with the same codecs (reused and left in
// place); a mountpoint with other codecs is refused.
func TestSendStreamingExisting(t *testing.T) {
	mp := janustest.FreeUDPPorts(t, 4)
	j := janustest.StartJanus(t, janustest.Options{
		Plugins:   []string{"streaming"},
		Streaming: janustest.MountpointConfig(1, "vp8", mp[0], mp[1]) + janustest.MountpointConfig(2, "h264", mp[2], mp[3]),
	})
	ports := janustest.FreeUDPPorts(t, 2)
	dir := t.TempDir()
	sender := func(name string, mountpoint int, create bool) string {
		return fmt.Sprintf(`
[[bridge]]
name = %q
plugin = "streaming"
mountpoint = %d
create = %t
  [bridge.source]
  type = "rtp"
  [[bridge.source.track]]
  kind = "video"
  codec = "vp8"
  listen = "127.0.0.1:%d"
  payload_type = %d
  [[bridge.source.track]]
  kind = "audio"
  codec = "opus"
  listen = "127.0.0.1:%d"
  payload_type = %d
`, name, mountpoint, create, ports[0], janustest.PTVP8, ports[1], janustest.PTOpus)
	}
	head := fmt.Sprintf(`
[janus]
servers = [%q]
[webrtc]
loopback_candidates = true
`, j.WSURL())
	for _, create := range []bool{false, true} {
		t.Run(fmt.Sprintf("create=%t", create), func(t *testing.T) {
			rb := startBridges(t, head+sender("feed", 1, create)+fmt.Sprintf(`
[[bridge]]
name = "view"
plugin = "streaming"
mountpoint = 1
  [[bridge.sink]]
  type = "mkv"
  path = "%s/create-%t.mkv"
`, dir, create))
			feed := janustest.StartFeed(t, janustest.FeedOptions{VideoCodec: "vp8", VideoPort: ports[0], AudioPort: ports[1]})
			view := rb.byName["view"]
			waitFor(t, 20*time.Second, "viewer receiving", func() bool { return inPackets(view, "video") > 100 && inPackets(view, "audio") > 50 })
			time.Sleep(2 * time.Second) // media to record
			rb.stop()
			feed.Stop()
			checkRecording(t, filepath.Join(dir, fmt.Sprintf("create-%t.mkv", create)), "audio:opus,video:vp8", 1)
			info := j.PluginRequest(t, "janus.plugin.streaming", map[string]any{"request": "info", "id": 1})
			if info["streaming"] != "info" {
				t.Errorf("mountpoint 1 after the bridge stopped: %v, want it left in place", info)
			}
		})
	}
	t.Run("other codecs", func(t *testing.T) {
		rb := startBridges(t, head+sender("feed", 2, true))
		b := rb.byName["feed"]
		waitFor(t, 10*time.Second, "refused", func() bool {
			st := b.Status()
			return st.State == bridge.StateFailed && strings.Contains(st.LastError, "no video vp8 stream")
		})
		t.Logf("status %+v", b.Status())
	})
}

// TestSendNACKResponder drops 5% of the packets the send bridge sends to
// Janus (nftables, on the bridge's ports): Janus asks for them again, the
// bridge's NACK responder resends them, and the subscriber (another daemon,
// other ports) loses next to nothing.
func TestSendNACKResponder(t *testing.T) {
	janustest.RequireTools(t, "nft")
	j := janustest.StartJanus(t, janustest.Options{
		Plugins:   []string{"videoroom"},
		VideoRoom: janustest.VideoRoomConfig(1234, "vp8,h264"),
	})
	ports := janustest.FreeUDPPorts(t, 2)
	dir := t.TempDir()
	cfg := videoRoomSendConfig(j.WSURL(), "vp8", ports[0], ports[1], dir, "udp_port_min = 40100\nudp_port_max = 40199")
	rb := startBridges(t, cfg[:strings.Index(cfg, "[[bridge]]\nname = \"rec\"")])
	janustest.StartFeed(t, janustest.FeedOptions{VideoCodec: "vp8", VideoPort: ports[0], AudioPort: ports[1]})
	viewers := startBridges(t, fmt.Sprintf(`
[janus]
servers = [%q]
[webrtc]
loopback_candidates = true
udp_port_min = 40600
udp_port_max = 40699
[[bridge]]
name = "rec"
plugin = "videoroom"
room = 1234
feeds = "all"
  [[bridge.sink]]
  type = "mkv"
  path = "%s/{feed}-{display}.mkv"
`, j.WSURL(), dir))
	cam, rec := rb.byName["cam"], viewers.byName["rec"]
	waitFor(t, 20*time.Second, "recording", func() bool { return inPackets(rec, "video") > 100 })

	const table = "jbsendnack"
	nft := func(args ...string) {
		if out, err := exec.Command("nft", args...).CombinedOutput(); err != nil {
			t.Fatalf("nft %s: %v: %s", strings.Join(args, " "), err, out)
		}
	}
	exec.Command("nft", "delete", "table", "inet", table).Run() // a leftover of an earlier run
	nft("add", "table", "inet", table)
	t.Cleanup(func() { exec.Command("nft", "delete", "table", "inet", table).Run() })
	nft("add", "chain", "inet", table, "in", "{ type filter hook input priority 0; }")
	nft("add", "rule", "inet", table, "in", "udp", "sport", "40100-40199", "numgen", "random", "mod", "100", "<", "5", "counter", "drop")

	sent, got := outTrack(cam, 0).Packets, inPackets(rec, "video")
	time.Sleep(8 * time.Second)
	sent, got = outTrack(cam, 0).Packets-sent, inPackets(rec, "video")-got
	nft("delete", "table", "inet", table)
	video := outTrack(cam, 0)
	var lost uint64
	for _, tr := range inTracks(rec, "video") {
		lost += tr.Lost
	}
	t.Logf("under 5%% loss: %d video packets sent, %d received, %d lost for good; NACKed %d; cam %+v", sent, got, lost, video.NACKs, cam.Stats())
	if video.NACKs == 0 {
		t.Errorf("no NACK from Janus counted on the video track")
	}
	if float64(lost) > 0.01*float64(sent) {
		t.Errorf("%d of %d video packets lost for good at the subscriber: the NACK responder should have resent them", lost, sent)
	}
}

// TestSendTransportCut cuts the send bridge's connection to Janus (a TCP
// proxy) while it publishes; Janus keeps the session (reclaim timeout), the
// client claims it on a new connection, and the publisher goes on on the
// same handle: the subscriber (another daemon, straight to Janus) sees no
// stall beyond the machine's own.
func TestSendTransportCut(t *testing.T) {
	j := janustest.StartJanus(t, janustest.Options{
		Plugins:        []string{"videoroom"},
		VideoRoom:      janustest.VideoRoomConfig(1234, "vp8,h264"),
		ReclaimTimeout: 20,
	})
	proxy := janustest.NewProxy(t, j.WSAddr())
	ports := janustest.FreeUDPPorts(t, 2)
	dir := t.TempDir()
	cfg := videoRoomSendConfig(proxy.URL("ws", "/"), "vp8", ports[0], ports[1], dir, "")
	cfg = strings.Replace(cfg[:strings.Index(cfg, "[[bridge]]\nname = \"rec\"")], "[webrtc]", "reconnect_min = \"200ms\"\nreconnect_max = \"1s\"\n[webrtc]", 1)
	rb := startBridges(t, cfg)
	janustest.StartFeed(t, janustest.FeedOptions{VideoCodec: "vp8", VideoPort: ports[0], AudioPort: ports[1]})
	viewers := startBridges(t, fmt.Sprintf(`
[janus]
servers = [%q]
[webrtc]
loopback_candidates = true
[[bridge]]
name = "rec"
plugin = "videoroom"
room = 1234
feeds = "all"
  [[bridge.sink]]
  type = "mkv"
  path = "%s/{feed}-{display}.mkv"
`, j.WSURL(), dir))
	cam, rec := rb.byName["cam"], viewers.byName["rec"]
	waitFor(t, 20*time.Second, "recording", func() bool { return inPackets(rec, "video") > 100 })
	handle := cam.Status().HandleID

	stalls := watchStalls(map[string]func() uint64{
		"video at the subscriber": func() uint64 { return inPackets(rec, "video") },
		"audio sent":              func() uint64 { return outTrack(cam, 1).Packets },
	})
	if n := proxy.Cut(); n == 0 {
		t.Fatal("no connection to cut")
	}
	waitFor(t, 10*time.Second, "reconnected through the proxy", func() bool { return proxy.Active() > 0 })
	before := inPackets(rec, "video")
	waitFor(t, 10*time.Second, "video going on", func() bool { return inPackets(rec, "video") > before+100 })
	got := stalls.end()
	t.Logf("longest stalls: %v; cam %+v", got, cam.Status())
	if d := got["video at the subscriber"]; d > 1500*time.Millisecond+got["audio sent"] {
		t.Errorf("the subscriber's video stalled %v (the machine: %v)", d, got["audio sent"])
	}
	if st := cam.Status(); st.State != bridge.StateUp || st.HandleID != handle {
		t.Errorf("cam %+v after the cut, want up on handle %d", st, handle)
	}
	if ev := rb.sessionEvents(); !slices.Contains(ev, janus.Claimed) || slices.Contains(ev, janus.Recreated) {
		t.Errorf("session events %v, want a claim", ev)
	}
}
