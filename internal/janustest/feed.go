package janustest

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// RTP payload types used by MountpointConfig and, by default, by StartFeed, so the two match.
const (
	PTOpus = 111
	PTVP8  = 100
	PTH264 = 96
)

// H264Fmtp is the fmtp of H.264 mountpoints: constrained baseline 3.1, packetization mode 1
// (what StartFeed's libx264 feed produces and what browsers expect).
const H264Fmtp = "profile-level-id=42e01f;packetization-mode=1"

// MountpointConfig returns the janus.plugin.streaming.jcfg text (for Options.Streaming) of an
// RTP mountpoint with the given numeric id, named "mp-ID": an Opus audio stream (mid "a",
// PTOpus) on audioPort unless it is 0, and a video stream (mid "v") of videoCodec ("vp8" with
// PTVP8, or "h264" with PTH264 and H264Fmtp) on videoPort unless videoCodec is "" or videoPort
// is 0. Feed it with StartFeed using the same ports and codec.
func MountpointConfig(id int, videoCodec string, audioPort, videoPort int) string {
	var media []string
	if audioPort > 0 {
		media = append(media, fmt.Sprintf(`{ type = "audio" mid = "a" port = %d pt = %d codec = "opus" }`, audioPort, PTOpus))
	}
	if videoCodec != "" && videoPort > 0 {
		switch strings.ToLower(videoCodec) {
		case "h264":
			media = append(media, fmt.Sprintf(`{ type = "video" mid = "v" port = %d pt = %d codec = "h264" fmtp = %s }`, videoPort, PTH264, q(H264Fmtp)))
		default:
			media = append(media, fmt.Sprintf(`{ type = "video" mid = "v" port = %d pt = %d codec = %s }`, videoPort, PTVP8, q(strings.ToLower(videoCodec))))
		}
	}
	desc := "janustest"
	if videoCodec != "" && videoPort > 0 {
		desc += " " + videoCodec
	}
	if audioPort > 0 {
		desc += " opus"
	}
	return fmt.Sprintf("mp-%d: {\n\ttype = \"rtp\"\n\tid = %d\n\tdescription = %s\n\tmedia = (\n\t\t%s\n\t)\n}\n",
		id, id, q(desc), strings.Join(media, ",\n\t\t"))
}

// VideoRoomConfig returns the janus.plugin.videoroom.jcfg text (for Options.VideoRoom) of a
// room with up to 16 publishers, Opus audio and the given video codecs (e.g. "vp8,h264").
func VideoRoomConfig(room int, videoCodecs string) string {
	return fmt.Sprintf("room-%d: {\n\tdescription = \"janustest room %d\"\n\tpublishers = 16\n\tvideocodec = %s\n\taudiocodec = \"opus\"\n}\n",
		room, room, q(videoCodecs))
}

// AudioBridgeConfig returns the janus.plugin.audiobridge.jcfg text (for Options.AudioBridge) of
// a 48 kHz room.
func AudioBridgeConfig(room int) string {
	return fmt.Sprintf("room-%d: {\n\tdescription = \"janustest room %d\"\n\tsampling_rate = 48000\n}\n", room, room)
}

// FeedOptions configures StartFeed. At least one of VideoPort and AudioPort must be set.
type FeedOptions struct {
	// Host receives the RTP; empty means "127.0.0.1".
	Host string
	// VideoCodec is "vp8" (default) or "h264" (libx264, constrained baseline, no B-frames).
	VideoCodec string
	// VideoPort is the RTP port for video; 0 sends no video.
	VideoPort int
	// VideoPT is the video payload type; 0 means PTVP8 or PTH264 by codec.
	VideoPT int
	// AudioPort is the RTP port for Opus audio; 0 sends no audio.
	AudioPort int
	// AudioPT is the audio payload type; 0 means PTOpus.
	AudioPT int
	// Width and Height of the video; 0 means 640x360.
	Width, Height int
	// FPS is the frame rate; 0 means 25. A keyframe is sent every second (ffmpeg's RTP output
	// ignores keyframe requests).
	FPS int
	// VideoBitrate for the encoder, e.g. "800k" (the default).
	VideoBitrate string
	// SyncMarker replaces the test pattern and tone by a black picture and silence, except for
	// the first 200 ms of every second, when the picture is white and a 1 kHz beep sounds: an
	// output can be checked for A/V alignment with blackdetect/silencedetect.
	SyncMarker bool
	// Duration stops the feed after this much media; 0 runs until Stop or the test's end.
	Duration time.Duration
	// PktSize is the maximum RTP packet size; 0 means 1200.
	PktSize int
}

// Feed is an ffmpeg process sending test media as RTP, started by StartFeed.
type Feed struct {
	args       []string
	stderrPath string
	sdpPath    string
	cmd        *exec.Cmd
	done       chan struct{}
	mu         sync.Mutex
	waitErr    error
}

// StartFeed starts ffmpeg (-re, -nostdin, -loglevel error) sending test media described by
// opts as RTP, e.g. into the ports of a Streaming mountpoint made by MountpointConfig. The feed
// is stopped in t.Cleanup; if the test failed, the cleanup logs ffmpeg's command line and
// stderr. StartFeed skips the test (fails it in CI) when ffmpeg is missing.
func StartFeed(t testing.TB, opts FeedOptions) *Feed {
	t.Helper()
	bin, err := exec.LookPath("ffmpeg")
	if err != nil {
		unusable(t, "ffmpeg not installed")
	}
	args, err := feedArgs(opts)
	if err != nil {
		t.Fatalf("janustest: StartFeed: %v", err)
	}
	dir := t.TempDir()
	f := &Feed{
		stderrPath: filepath.Join(dir, "ffmpeg.stderr"),
		sdpPath:    filepath.Join(dir, "feed.sdp"),
		done:       make(chan struct{}),
	}
	f.args = append([]string{"-nostdin", "-hide_banner", "-loglevel", "error"}, args...)
	f.args = append(f.args, "-sdp_file", f.sdpPath)
	stderr, err := os.Create(f.stderrPath)
	if err != nil {
		t.Fatalf("janustest: StartFeed: %v", err)
	}
	f.cmd = externalCommand(bin, f.args...)
	f.cmd.Dir = dir
	f.cmd.Stderr = stderr // an *os.File: no copying goroutine
	f.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	err = f.cmd.Start()
	stderr.Close()
	if err != nil {
		t.Fatalf("janustest: StartFeed: %v", err)
	}
	go func() {
		err := f.cmd.Wait()
		f.mu.Lock()
		f.waitErr = err
		f.mu.Unlock()
		close(f.done)
	}()
	t.Cleanup(func() {
		f.Stop()
		if t.Failed() {
			t.Logf("janustest: feed: ffmpeg %s\nstderr:\n%s", strings.Join(f.args, " "), f.Stderr())
		}
	})
	return f
}

// feedArgs builds ffmpeg's inputs and outputs for opts.
func feedArgs(o FeedOptions) ([]string, error) {
	if o.VideoPort <= 0 && o.AudioPort <= 0 {
		return nil, fmt.Errorf("neither VideoPort nor AudioPort set")
	}
	host := o.Host
	if host == "" {
		host = "127.0.0.1"
	}
	w, h, fps := o.Width, o.Height, o.FPS
	if w <= 0 || h <= 0 {
		w, h = 640, 360
	}
	if fps <= 0 {
		fps = 25
	}
	pkt := o.PktSize
	if pkt <= 0 {
		pkt = 1200
	}
	bitrate := o.VideoBitrate
	if bitrate == "" {
		bitrate = "800k"
	}
	url := func(port int) string {
		return fmt.Sprintf("rtp://%s:%d?pkt_size=%d", host, port, pkt)
	}
	var args, outs, dur []string
	if o.Duration > 0 { // an output option, so it goes with each output
		dur = []string{"-t", strconv.FormatFloat(o.Duration.Seconds(), 'f', 3, 64)}
	}
	in := 0
	if o.VideoPort > 0 {
		src := fmt.Sprintf("testsrc2=size=%dx%d:rate=%d", w, h, fps)
		if o.SyncMarker {
			src = fmt.Sprintf(`color=c=black:size=%dx%d:rate=%d,drawbox=c=white:t=fill:enable='lt(mod(t\,1)\,0.2)'`, w, h, fps)
		}
		args = append(args, "-re", "-f", "lavfi", "-i", src)
		g := strconv.Itoa(fps)
		outs = append(outs, "-map", fmt.Sprintf("%d:v", in))
		outs = append(outs, dur...)
		codec := strings.ToLower(o.VideoCodec)
		pt := o.VideoPT
		switch codec {
		case "", "vp8":
			if pt == 0 {
				pt = PTVP8
			}
			outs = append(outs, "-c:v", "libvpx", "-deadline", "realtime", "-cpu-used", "8",
				"-lag-in-frames", "0", "-error-resilient", "1", "-auto-alt-ref", "0")
		case "h264":
			if pt == 0 {
				pt = PTH264
			}
			outs = append(outs, "-c:v", "libx264", "-preset", "ultrafast", "-tune", "zerolatency",
				"-profile:v", "baseline", "-level:v", "3.1", "-pix_fmt", "yuv420p",
				"-sc_threshold", "0")
		default:
			return nil, fmt.Errorf("unsupported video codec %q (want vp8 or h264)", o.VideoCodec)
		}
		outs = append(outs, "-b:v", bitrate, "-g", g, "-keyint_min", g,
			"-payload_type", strconv.Itoa(pt), "-f", "rtp", url(o.VideoPort))
		in++
	}
	if o.AudioPort > 0 {
		src := "sine=frequency=440:sample_rate=48000"
		if o.SyncMarker {
			src = `sine=frequency=1000:sample_rate=48000,volume=volume=0:enable='gte(mod(t\,1)\,0.2)'`
		}
		args = append(args, "-re", "-f", "lavfi", "-i", src)
		pt := o.AudioPT
		if pt == 0 {
			pt = PTOpus
		}
		outs = append(outs, "-map", fmt.Sprintf("%d:a", in))
		outs = append(outs, dur...)
		outs = append(outs, "-c:a", "libopus", "-ar", "48000", "-ac", "2",
			"-b:a", "64k", "-application", "lowdelay",
			"-payload_type", strconv.Itoa(pt), "-f", "rtp", url(o.AudioPort))
	}
	return append(args, outs...), nil
}

// Args is ffmpeg's command line, without the program name.
func (f *Feed) Args() []string { return append([]string(nil), f.args...) }

// SDPPath is the file where ffmpeg wrote the SDP of its RTP output (to play the feed directly
// with `ffmpeg -protocol_whitelist file,udp,rtp -i SDP`, when nothing else listens on its ports).
func (f *Feed) SDPPath() string { return f.sdpPath }

// Stderr is what ffmpeg has written to stderr so far (errors only).
func (f *Feed) Stderr() string {
	data, err := os.ReadFile(f.stderrPath)
	if err != nil {
		return fmt.Sprintf("(cannot read %s: %v)", f.stderrPath, err)
	}
	return string(data)
}

// Done is closed when ffmpeg has exited.
func (f *Feed) Done() <-chan struct{} { return f.done }

// Err is ffmpeg's exit status once Done is closed (nil after a clean end, e.g. Duration
// reached; an error after Stop).
func (f *Feed) Err() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.waitErr
}

// Stop ends ffmpeg (SIGTERM, SIGKILL after 3 s) and waits for it. Stopping a stopped feed does
// nothing.
func (f *Feed) Stop() {
	select {
	case <-f.done:
		return
	default:
	}
	_ = f.cmd.Process.Signal(syscall.SIGTERM)
	timer := time.NewTimer(3 * time.Second)
	defer timer.Stop()
	select {
	case <-f.done:
	case <-timer.C:
		_ = f.cmd.Process.Kill()
		<-f.done
	}
}
