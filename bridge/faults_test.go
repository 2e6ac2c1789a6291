package bridge_test

import (
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/janusbridge/janusbridge/bridge"
	"github.com/janusbridge/janusbridge/internal/janustest"
	"github.com/janusbridge/janusbridge/sinks"
)

// Faults of SPEC §6, injected for real inside the test namespace (TESTING.md):
// packet loss with nftables on the bridge's own ICE port range, a full disk
// with a small tmpfs.

// sinkNamed returns the snapshot of the sink named name.
func sinkNamed(st bridge.BridgeStats, name string) (bridge.SinkSnapshot, bool) {
	for _, s := range st.Sinks {
		if s.Name == name {
			return s, true
		}
	}
	return bridge.SinkSnapshot{}, false
}

// trackOfKind returns the snapshot of the first track of a kind.
func trackOfKind(st bridge.BridgeStats, kind string) bridge.TrackSnapshot {
	for _, tr := range st.Tracks {
		if tr.Kind == kind {
			return tr
		}
	}
	return bridge.TrackSnapshot{}
}

// nftLoss makes the kernel drop percent% of the UDP packets arriving on
// ports (e.g. "40000-40999", a bridge's ICE ports), as TESTING.md
// describes, in a table of its own (deleted in t.Cleanup, failed test or
// not). The rule counts what it drops; dropped reads the counter.
func nftLoss(t *testing.T, ports string, percent int) (dropped func() uint64) {
	t.Helper()
	table := fmt.Sprintf("jb%08x", rand.Uint32())
	nft := func(args ...string) string {
		t.Helper()
		out, err := exec.Command("nft", args...).CombinedOutput()
		if err != nil {
			t.Fatalf("nft %s: %v: %s", strings.Join(args, " "), err, out)
		}
		return string(out)
	}
	nft("add", "table", "inet", table)
	t.Cleanup(func() {
		if out, err := exec.Command("nft", "delete", "table", "inet", table).CombinedOutput(); err != nil {
			t.Errorf("nft delete table inet %s: %v: %s", table, err, out)
		}
	})
	nft("add", "chain", "inet", table, "in", "{ type filter hook input priority 0; }")
	nft("add", "rule", "inet", table, "in", "udp", "dport", ports,
		"numgen", "random", "mod", "100", "<", strconv.Itoa(percent), "counter", "drop")
	re := regexp.MustCompile(`counter packets (\d+) bytes`)
	return func() uint64 {
		m := re.FindStringSubmatch(nft("list", "chain", "inet", table, "in"))
		if m == nil {
			t.Fatalf("no counter in nft table %s", table)
		}
		n, _ := strconv.ParseUint(m[1], 10, 64)
		return n
	}
}

// videoFrames decodes the first video stream of path and counts its frames.
func videoFrames(t *testing.T, path string) int {
	t.Helper()
	out, err := exec.Command("ffprobe", "-v", "error", "-count_frames", "-select_streams", "v:0",
		"-show_entries", "stream=nb_read_frames", "-of", "csv=p=0", path).Output()
	if err != nil {
		t.Fatalf("ffprobe -count_frames %s: %v", path, err)
	}
	n, err := strconv.Atoi(strings.TrimSpace(string(out)))
	if err != nil {
		t.Fatalf("ffprobe -count_frames %s: %q", path, out)
	}
	return n
}

// lastPacket returns the largest packet timestamp of path, in seconds, and
// the file offset where the packet stored last ends.
func lastPacket(t *testing.T, path string) (last float64, end int64) {
	t.Helper()
	out, err := exec.Command("ffprobe", "-v", "error", "-show_entries", "packet=pts_time,pos,size", "-of", "csv=p=0", path).Output()
	if err != nil {
		t.Fatalf("ffprobe packets %s: %v", path, err)
	}
	last = math.Inf(-1)
	for _, l := range strings.Fields(string(out)) {
		f := strings.Split(strings.Trim(l, ","), ",")
		if len(f) < 3 {
			continue
		}
		if v, err := strconv.ParseFloat(f[0], 64); err == nil {
			last = max(last, v)
		}
		size, err1 := strconv.ParseInt(f[1], 10, 64)
		pos, err2 := strconv.ParseInt(f[2], 10, 64)
		if err1 == nil && err2 == nil {
			end = max(end, pos+size)
		}
	}
	return last, end
}

// fileSize is the size of path, -1 when it cannot be read.
func fileSize(path string) int64 {
	fi, err := os.Stat(path)
	if err != nil {
		return -1
	}
	return fi.Size()
}

// janusMedia is what Janus says of one medium of a viewer's PeerConnection
// (Admin API handle_info, info.webrtc.media.<mid>).
type janusMedia struct {
	// Packets is what Janus sent (stats.out.packets, retransmissions not
	// included), NACKs the NACKs it received from the viewer (stats.in.nacks),
	// LostByRemote the loss the viewer's receiver reports announced
	// (rtcp.main.lost-by-remote), NACKQueueMS how long Janus keeps packets
	// for retransmission.
	Packets, NACKs, LostByRemote, NACKQueueMS int64
}

// janusViewerMedia asks Janus's Admin API for the media statistics of a
// handle, by mid.
func janusViewerMedia(t *testing.T, j *janustest.Janus, session, handle uint64) map[string]janusMedia {
	t.Helper()
	resp := j.AdminRequest(t, map[string]any{"janus": "handle_info", "session_id": session, "handle_id": handle})
	raw, _ := json.Marshal(resp)
	var info struct {
		Info struct {
			WebRTC struct {
				Media map[string]struct {
					NACKQueueMS int64 `json:"nack-queue-ms"`
					RTCP        struct {
						Main struct {
							LostByRemote int64 `json:"lost-by-remote"`
						} `json:"main"`
					} `json:"rtcp"`
					Stats struct {
						In struct {
							NACKs int64 `json:"nacks"`
						} `json:"in"`
						Out struct {
							Packets int64 `json:"packets"`
						} `json:"out"`
					} `json:"stats"`
				} `json:"media"`
			} `json:"webrtc"`
		} `json:"info"`
	}
	if err := json.Unmarshal(raw, &info); err != nil || len(info.Info.WebRTC.Media) == 0 {
		t.Fatalf("Janus handle_info: no media statistics (%v) in %.2000s", err, raw)
	}
	out := map[string]janusMedia{}
	for mid, m := range info.Info.WebRTC.Media {
		out[mid] = janusMedia{Packets: m.Stats.Out.Packets, NACKs: m.Stats.In.NACKs,
			LostByRemote: m.RTCP.Main.LostByRemote, NACKQueueMS: m.NACKQueueMS}
	}
	return out
}

// lossRun is what TestLossRecovery measures of one recording.
type lossRun struct {
	name          string
	percent       int // of the packets to its ports the kernel drops
	frames        int
	duration, fps float64 // of the file; fps = frames / duration
	frameGap      gap     // the longest between two video frames of the file
	stall         time.Duration
	decode        string // what ffmpeg said decoding it
	state         bridge.Status
	video, audio  bridge.TrackSnapshot
	janus         map[string]janusMedia // by mid
	dropped       uint64                // by the nft rule
}

func (r lossRun) String() string {
	v, a := r.janus["v"], r.janus["a"]
	return fmt.Sprintf("%s: %d video frames in %.2fs = %.2f fps, longest gap between frames %v, longest stall of the packets %v; bridge: video packets %d lost %d nacks %d plis %d, audio packets %d lost %d; "+
		"janus: video sent %d nacks received %d lost-by-remote %d (nack queue %d ms), audio sent %d lost-by-remote %d; nft dropped %d",
		r.name, r.frames, r.duration, r.fps, r.frameGap, r.stall, r.video.Packets, r.video.Lost, r.video.NACKs, r.video.PLIs, r.audio.Packets, r.audio.Lost,
		v.Packets, v.NACKs, v.LostByRemote, v.NACKQueueMS, a.Packets, a.LostByRemote, r.dropped)
}

// recovered is the share of the video packets the kernel dropped that the
// NACKs brought back: the drops are estimated from what Janus sent (the nft
// counter also counts other processes' packets to the same ports).
func (r lossRun) recovered() (dropped, share float64) {
	dropped = float64(r.percent) / 100 * float64(r.janus["v"].Packets)
	return dropped, 1 - float64(r.video.Lost)/dropped
}

// TestLossRecovery records a VP8+Opus mountpoint three times at once:
// without loss, and with 5% and 20% of the UDP packets to the bridge's ICE
// ports dropped by the kernel (TESTING.md's nftables rule, each on its
// bridge's port range). The NACK generator asks Janus to resend the lost
// video packets. With 5%, the recording must decode cleanly and keep at
// least 98% of the clean one's video frames per second of recording. With
// 20%, the NACKs must recover most of the loss, the bridge must stay up and
// the frames keep coming all along (no gap over 0.5 s in the file, no
// stall of the packets) and the file decode cleanly. The loss must show in
// the bridge's counters and the NACKs at Janus.
func TestLossRecovery(t *testing.T) {
	janustest.RequireTools(t, "nft", "ffprobe")
	ports := janustest.FreeUDPPorts(t, 2)
	j := janustest.StartJanus(t, janustest.Options{
		Plugins:   []string{"streaming"},
		Admin:     true, // handle_info: the NACKs Janus received
		Streaming: janustest.MountpointConfig(1, "vp8", ports[0], ports[1]),
	})
	janustest.StartFeed(t, janustest.FeedOptions{VideoCodec: "vp8", AudioPort: ports[0], VideoPort: ports[1]}) // a keyframe a second
	dir := t.TempDir()
	if d := os.Getenv("JB_KEEP_DIR"); d != "" {
		dir = d
	}
	// The recordings run at once, from the same feed: the clean one on
	// ports 42000-42999, the lossy ones on 40000-40999 and 41000-41999
	// where the kernel drops packets. What the machine does to the feed (a
	// loaded CI starves it now and then) it does to all. 30 s: a packet
	// that NACKs cannot recover (Janus resends a packet once; 5% of the
	// resent ones are dropped too) costs one frame, so the count needs a
	// long run to be steady.
	const runFor = 30 * time.Second
	type lossy struct {
		name, ports string
		percent     int
	}
	cases := []lossy{{"clean", "42000-42999", 0}, {"lossy", "40000-40999", 5}, {"lossy20", "41000-41999", 20}}
	dropped := map[string]func() uint64{}
	for _, c := range cases {
		if c.percent > 0 {
			dropped[c.name] = nftLoss(t, c.ports, c.percent)
		}
	}
	bridges := map[string]*runningBridge{}
	for _, c := range cases {
		lo, hi, _ := strings.Cut(c.ports, "-")
		bridges[c.name] = startBridge(t, fmt.Sprintf(`
[janus]
servers = [%q]
[webrtc]
udp_port_min = %s
udp_port_max = %s
loopback_candidates = true
[[bridge]]
name = %q
plugin = "streaming"
mountpoint = 1
  [[bridge.sink]]
  type = "webm"
  path = "%s/{bridge}.webm"
`, j.WSURL(), lo, hi, c.name, dir), nil)
	}
	for _, fb := range bridges {
		fb.waitState(t, bridge.StateUp, 10*time.Second)
	}
	// Stalls count from the first packet (ICE and DTLS take longer through
	// 20% loss: a lost DTLS flight is resent after 1 s, then 2 s, 4 s...).
	b20 := bridges["lossy20"].B
	waitUntil(t, "video through 20% loss", 30*time.Second, func() bool { return inPackets(b20, "video") > 0 })
	stalls := watchStalls(map[string]func() uint64{
		"lossy20": func() uint64 { return inPackets(b20, "video") },
		"clean":   func() uint64 { return inPackets(bridges["clean"].B, "video") },
	})
	time.Sleep(runFor) // the recordings
	stalled := stalls.end()
	runs := map[string]*lossRun{}
	for _, c := range cases {
		fb := bridges[c.name]
		r := &lossRun{name: c.name, percent: c.percent, stall: stalled[c.name]}
		r.state = fb.B.Status()
		stats := fb.B.Stats()
		r.video, r.audio = trackOfKind(stats, "video"), trackOfKind(stats, "audio")
		r.janus = janusViewerMedia(t, j, r.state.SessionID, r.state.HandleID)
		if d := dropped[c.name]; d != nil {
			r.dropped = d()
		}
		runs[c.name] = r
	}
	for name, fb := range bridges {
		r := runs[name]
		fb.stop(t)
		path := filepath.Join(dir, name+".webm")
		r.frames = videoFrames(t, path)
		r.duration, _ = strconv.ParseFloat(ffprobe(t, path).Format.Duration, 64)
		if r.duration > 0 {
			r.fps = float64(r.frames) / r.duration
		}
		r.frameGap = longestGap(packetTimes(t, path, "v:0"))
		r.decode = decodeErrors(t, path)
		t.Log(r)
	}
	clean := *runs["clean"]

	for _, r := range runs {
		if r.state.State != bridge.StateUp {
			t.Errorf("%s: bridge state %q at the end (last error %q), want up", r.name, r.state.State, r.state.LastError)
		}
		// Every packet Janus sent reached the bridge or was counted lost:
		// the bridge kept reading both tracks to the end.
		for _, tr := range []bridge.TrackSnapshot{r.audio, r.video} {
			sent := r.janus[tr.MID].Packets
			if got := tr.Packets + tr.Lost; float64(got) < 0.97*float64(sent) {
				t.Errorf("%s: %s track: %d packets read + %d lost of %d Janus sent: the bridge stopped reading it",
					r.name, tr.Kind, tr.Packets, tr.Lost, sent)
			}
		}
		if r.decode != "" {
			t.Errorf("%s.webm: decode errors: %.1500s", r.name, r.decode)
		}
		if r.frames == 0 {
			t.Errorf("%s.webm: no video frame", r.name)
		}
		if r.percent == 0 {
			continue
		}
		// The fault was real, the loss shows in the bridge's counters, the
		// NACK generator asked for the lost video and Janus resent some of
		// it.
		if r.dropped == 0 {
			t.Fatalf("%s: the nft rule dropped nothing: no loss was injected", r.name)
		}
		if r.video.Lost+r.audio.Lost == 0 {
			t.Errorf("%s: the bridge counted no lost packet (the kernel dropped %d)", r.name, r.dropped)
		}
		if r.janus["v"].NACKs == 0 {
			t.Errorf("%s: Janus received no NACK for the video", r.name)
		}
		// The bridge counts the packets its NACKs asked for, as Janus
		// counts the NACKs it received.
		if r.video.NACKs == 0 {
			t.Errorf("%s: the bridge counted no NACK sent (Janus received %d)", r.name, r.janus["v"].NACKs)
		}
		expected, share := r.recovered()
		t.Logf("%s: video: about %.0f packets dropped (%d%% of %d sent), %d stayed lost: %.0f%% recovered; NACKs sent %d, received by Janus %d",
			r.name, expected, r.percent, r.janus["v"].Packets, r.video.Lost, 100*share, r.video.NACKs, r.janus["v"].NACKs)
	}
	// The feed sends 25 frames/s: a clean recording that has not kept them
	// (a starved feed, a squeezed timeline) is no baseline.
	if math.Abs(clean.fps-25) > 1 {
		t.Errorf("the clean recording has %.2f video frames/s, the feed sends 25: the ratio below has no sound baseline", clean.fps)
	}
	if lossy := *runs["lossy"]; clean.fps > 0 {
		ratio := lossy.fps / clean.fps
		t.Logf("video frames per second, lossy/clean: %.2f/%.2f = %.3f", lossy.fps, clean.fps, ratio)
		// Each packet that stays lost costs its frame. Janus resends a
		// packet once, and 5% of the resent packets are dropped too: about
		// 5-15 of the ~145 dropped stay lost in 30 s (750 frames), 0.98-0.99
		// of the clean rate; 0.97 leaves room for that spread.
		if ratio < 0.97 {
			t.Errorf("the lossy recording has %.2f video frames/s, %.1f%% of the clean one's %.2f: want >= 97%%",
				lossy.fps, 100*ratio, clean.fps)
		}
		if _, share := lossy.recovered(); share <= 0 {
			t.Errorf("lossy: video: %d packets stayed lost of about %.0f dropped: nothing was recovered", lossy.video.Lost, 0.05*float64(lossy.janus["v"].Packets))
		}
	}
	// 20%: Janus resends a packet once and the kernel drops 20% of the
	// resent ones too, so at most 80% can come back.
	r20 := *runs["lossy20"]
	if clean.fps > 0 {
		t.Logf("video frames per second, lossy20/clean: %.2f/%.2f = %.3f", r20.fps, clean.fps, r20.fps/clean.fps)
	}
	if _, share := r20.recovered(); share < 0.5 {
		t.Errorf("lossy20: %.0f%% of the dropped video packets recovered, want 50%% or more", 100*share)
	}
	// No stall: the frames keep coming (what the clean recording shows of
	// the machine's own stalls is allowed on top).
	if limit := 500*time.Millisecond + clean.stall; r20.stall > limit {
		t.Errorf("lossy20: the video packets stalled %v (the clean bridge's %v)", r20.stall, clean.stall)
	}
	if limit := 0.5 + clean.frameGap.len(); r20.frameGap.len() > limit {
		t.Errorf("lossy20.webm: a gap of %v between video frames (the clean file's longest: %v), want under %.2fs", r20.frameGap, clean.frameGap, limit)
	}
}

// TestDiskFullSinkFailsAlone records a mountpoint to a webm sink on a 2 MiB
// tmpfs and an mkv sink on the normal disk. The tmpfs fills: the webm sink
// must fail and say so in its status, with the file it was writing still
// decodable up to where the disk filled, while the bridge stays up and the
// mkv file is complete.
func TestDiskFullSinkFailsAlone(t *testing.T) {
	janustest.RequireTools(t, "ffprobe", "mount", "umount")
	ports := janustest.FreeUDPPorts(t, 2)
	j := janustest.StartJanus(t, janustest.Options{
		Plugins:   []string{"streaming"},
		Streaming: janustest.MountpointConfig(1, "vp8", ports[0], ports[1]),
	})
	janustest.StartFeed(t, janustest.FeedOptions{VideoCodec: "vp8", AudioPort: ports[0], VideoPort: ports[1], VideoBitrate: "800k"})
	dir := t.TempDir()
	if d := os.Getenv("JB_KEEP_DIR"); d != "" {
		dir = d
	}
	full := filepath.Join(dir, "full")
	if err := os.MkdirAll(full, 0o755); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", full).CombinedOutput(); err != nil {
		t.Fatalf("mount tmpfs: %v: %s", err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", full).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v: %s", full, err, out)
		}
	})
	// libvpx undershoots its 800 kbit/s on the test pattern (40-100 kB/s of
	// webm, audio included): 2 MiB would outlast the run. Ballast leaves
	// 400 KiB, so the disk fills 4-10 s into the recording.
	var fsst syscall.Statfs_t
	if err := syscall.Statfs(full, &fsst); err != nil {
		t.Fatal(err)
	}
	const room = 400 << 10
	if free := int64(fsst.Bavail) * fsst.Bsize; free > room {
		if err := os.WriteFile(filepath.Join(full, "ballast"), make([]byte, free-room), 0o644); err != nil {
			t.Fatal(err)
		}
	}

	const runFor = 20 * time.Second
	fb := startBridge(t, fmt.Sprintf(`
[janus]
servers = [%q]
[webrtc]
udp_port_min = 42000   # clear of 40000-40999, where TestLossRecovery drops packets
udp_port_max = 42999
loopback_candidates = true
[[bridge]]
name = "cam"
plugin = "streaming"
mountpoint = 1
  [[bridge.sink]]
  type = "webm"
  name = "tmpfs"
  path = "%s/{bridge}.webm"
  [[bridge.sink]]
  type = "mkv"
  name = "disk"
  path = "%s/{bridge}.mkv"
`, j.WSURL(), full, dir), nil)
	fb.waitState(t, bridge.StateUp, 10*time.Second)

	// Watch the webm sink: when its file opens and when it first fails.
	var opened, failed time.Time
	var failedStatus sinks.FileStatus
	end := time.Now().Add(runFor)
	for now := time.Now(); now.Before(end); now = time.Now() {
		if s, ok := sinkNamed(fb.B.Stats(), "tmpfs"); ok && s.File != nil {
			if opened.IsZero() && s.File.Path != "" {
				opened = now
			}
			if failed.IsZero() && s.File.Errors > 0 {
				failed, failedStatus = now, *s.File
			}
		}
		time.Sleep(50 * time.Millisecond) // sampling the status, which has no events
	}
	st := fb.B.Status()
	stats := fb.B.Stats()
	stopped := time.Now() // a file's expected duration ends here
	fb.stop(t)

	if st.State != bridge.StateUp {
		t.Errorf("bridge state %q at the end (last error %q), want up", st.State, st.LastError)
	}
	webm, ok1 := sinkNamed(stats, "tmpfs")
	mkv, ok2 := sinkNamed(stats, "disk")
	if !ok1 || !ok2 || webm.File == nil || mkv.File == nil {
		t.Fatalf("sink statistics missing: %+v", stats.Sinks)
	}
	t.Logf("webm sink at the end: errors %d (queue %d), dropped %d, bytes %d, state %q, last error %q; first failure %v after its file opened: %+v",
		webm.File.Errors, webm.Errors, webm.Dropped, webm.Bytes, webm.File.State, webm.File.LastError, failed.Sub(opened).Round(time.Millisecond), failedStatus)
	t.Logf("mkv sink at the end: errors %d, dropped %d, bytes %d, state %q", mkv.File.Errors, mkv.Dropped, mkv.Bytes, mkv.File.State)
	for _, tr := range stats.Tracks {
		t.Logf("track %d %s: packets %d lost %d plis %d", tr.Index, tr.Codec, tr.Packets, tr.Lost, tr.PLIs)
	}

	// The webm sink failed, and says why.
	if webm.File.Errors == 0 || failed.IsZero() {
		t.Errorf("the webm sink on the full tmpfs reported no error: %+v", *webm.File)
	} else if webm.File.State != sinks.FileFailed && !strings.Contains(webm.File.LastError, syscall.ENOSPC.Error()) {
		t.Errorf("webm sink: state %q, last error %q: want state %q or an error saying %q",
			webm.File.State, webm.File.LastError, sinks.FileFailed, syscall.ENOSPC.Error())
	}

	// The mkv sink carried on: complete and clean.
	if mkv.File.Errors != 0 || mkv.Dropped != 0 {
		t.Errorf("mkv sink: %d errors (%q), %d frames dropped: want none", mkv.File.Errors, mkv.File.LastError, mkv.Dropped)
	}
	mkvPath := filepath.Join(dir, "cam.mkv")
	info := ffprobe(t, mkvPath)
	if got := info.codecs(); got != "audio:opus,video:vp8" {
		t.Errorf("cam.mkv: streams %s, want audio:opus,video:vp8", got)
	}
	if errs := decodeErrors(t, mkvPath); errs != "" {
		t.Errorf("cam.mkv: decode errors: %.1500s", errs)
	}
	dur, _ := strconv.ParseFloat(info.Format.Duration, 64)
	mkvStart := readSidecar(t, mkvPath).Start
	want := stopped.Sub(mkvStart).Seconds()
	t.Logf("cam.mkv: duration %.2fs, expected %.2fs (first frame to stop)", dur, want)
	if math.Abs(dur-want) > 0.5 {
		t.Errorf("cam.mkv: duration %.2fs, want %.2fs ± 0.5s", dur, want)
	}

	// The webm file the disk filled under decodes up to where it stopped.
	entries, _ := os.ReadDir(full)
	var names []string
	for _, e := range entries {
		fi, _ := e.Info()
		names = append(names, fmt.Sprintf("%s (%d bytes)", e.Name(), fi.Size()))
	}
	t.Logf("tmpfs holds: %s", strings.Join(names, ", "))
	webmPath := filepath.Join(full, "cam.webm")
	if _, err := os.Stat(webmPath); err != nil {
		t.Fatalf("the partial webm: %v", err)
	}
	// A file cut short ends in the middle of a cluster: ffmpeg says so, and
	// must say nothing else.
	out, err := exec.Command("ffmpeg", "-nostdin", "-v", "error", "-i", webmPath, "-f", "null", "-").CombinedOutput()
	var complaints []string
	for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		if l != "" && !strings.Contains(l, "File ended prematurely") {
			complaints = append(complaints, l)
		}
	}
	if err != nil || len(complaints) > 0 {
		t.Errorf("cam.webm (partial): decoding it: %v: %.1500s", err, strings.Join(complaints, "\n"))
	}
	frames := videoFrames(t, webmPath)
	last, lastEnd := lastPacket(t, webmPath)
	size := fileSize(webmPath)
	t.Logf("cam.webm (partial): %d bytes, %d video frames, last packet at %.2fs ending at byte %d; ffmpeg says %q", size, frames, last, lastEnd, strings.TrimSpace(string(out)))
	// Nothing that fitted was lost: the disk's last bytes hold the block
	// that was cut (at most a keyframe: tens of kB).
	if size-lastEnd > 64<<10 {
		t.Errorf("cam.webm (partial): its last whole packet ends %d bytes before the end of the file: more than a cut block", size-lastEnd)
	}
	if !failed.IsZero() {
		// Both sinks started with the same frame: the mkv's sidecar dates it.
		reach := failed.Sub(mkvStart).Seconds()
		t.Logf("the disk filled %.2fs into the recording (status sampled every 50 ms)", reach)
		// The failing write is a flush (every 0.5 s of media) of frames that
		// reach the sink up to ~0.5 s after their capture (the framer waits
		// for retransmissions), and only the part of it that fitted is in
		// the file: it ends up to ~1.5 s before the failure is seen.
		if last < reach-2 || last > reach+0.5 {
			t.Errorf("cam.webm (partial) ends at %.2fs, want %.2fs (when the disk filled) - 2 s .. + 0.5 s", last, reach)
		}
	}
	if frames == 0 {
		t.Error("cam.webm (partial): no video frame decoded")
	}
}
