package sources

import (
	"fmt"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pion/webrtc/v4/pkg/media/h264writer"
	"github.com/pion/webrtc/v4/pkg/media/oggwriter"

	"github.com/janusbridge/janusbridge/config"
	"github.com/janusbridge/janusbridge/internal/janustest"
)

// rtmpPublish runs ffmpeg publishing secs seconds of test media (x264 with
// a keyframe every 30 frames, AAC at 44.1 kHz) as FLV to url, and returns
// its error and output.
func rtmpPublish(url string, secs int) (string, error) {
	out, err := exec.Command("ffmpeg", "-nostdin", "-v", "error", "-re",
		"-f", "lavfi", "-i", "testsrc2=size=320x240:rate=30",
		"-f", "lavfi", "-i", "sine=frequency=440:sample_rate=44100",
		"-t", fmt.Sprint(secs), "-c:v", "libx264", "-preset", "ultrafast", "-g", "30",
		"-c:a", "aac", "-f", "flv", url).CombinedOutput()
	return string(out), err
}

// judgeRTMPOutput writes the source's packets into an Annex-B and an Ogg
// file, has ffmpeg decode both, and checks the amount of media and the
// timestamps against the publisher's secs seconds.
func judgeRTMPOutput(t *testing.T, c *collector, secs int) {
	t.Helper()
	dir := t.TempDir()
	video, audio := c.track(rtmpVideo), c.track(rtmpAudio)
	if len(video) == 0 || len(audio) == 0 {
		t.Fatalf("%d video and %d audio packets", len(video), len(audio))
	}
	checkSeqContinuous(t, "video", video, 0)
	checkSeqContinuous(t, "audio", audio, 0)
	vpath, apath := filepath.Join(dir, "v.h264"), filepath.Join(dir, "a.ogg")
	hw, err := h264writer.New(vpath)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range video {
		if p.PayloadType != 96 {
			t.Fatalf("video payload type %d", p.PayloadType)
		}
		if err := hw.WriteRTP(p); err != nil {
			t.Fatal(err)
		}
	}
	hw.Close()
	ow, err := oggwriter.New(apath, 48000, 2)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range audio {
		if err := ow.WriteRTP(p); err != nil {
			t.Fatal(err)
		}
	}
	ow.Close()
	errs, frames := decodeCheck(t, vpath)
	if errs != "" {
		t.Errorf("video decode errors: %s", errs)
	}
	if want := secs * 30; frames < want*9/10 || frames > want+5 {
		t.Errorf("%d video frames, want about %d", frames, want)
	}
	errs, aframes := decodeCheck(t, apath)
	if errs != "" {
		t.Errorf("audio decode errors: %s", errs)
	}
	if want := secs * 50; aframes < want*9/10 || aframes > want+10 {
		t.Errorf("%d Opus packets, want about %d", aframes, want)
	}
	// Timestamps: audio in 20 ms steps, video in 1/30 s steps (x264's
	// B-frames make the order of presentation times differ from sending).
	for i := 1; i < len(audio); i++ {
		if d := audio[i].Timestamp - audio[i-1].Timestamp; d != 960 {
			t.Errorf("audio packet %d: timestamp step %d, want 960", i, d)
			break
		}
	}
	var vts []uint32
	for i, p := range video {
		if i == 0 || p.Timestamp != video[i-1].Timestamp {
			vts = append(vts, p.Timestamp)
		}
	}
	span := time.Duration(int64(vts[len(vts)-1]-vts[0])) * time.Second / 90000
	if want := time.Duration(secs) * time.Second; span < want-200*time.Millisecond || span > want+200*time.Millisecond {
		t.Errorf("video timestamps span %v, want about %v", span, want)
	}
	// Both tracks start together (the publisher starts both at 0).
	a0 := time.Duration(audio[0].Timestamp) * time.Second / 48000
	v0 := time.Duration(vts[0]) * time.Second / 90000
	aEnd := time.Duration(audio[len(audio)-1].Timestamp) * time.Second / 48000
	t.Logf("video %d packets (%d frames), audio %d packets; first audio at %v, first video at %v, last audio at %v",
		len(video), frames, len(audio), a0, v0, aEnd)
	// How late each track is handed on, relative to its timestamps: a
	// sender report maps timestamps to the time of sending, so the tracks'
	// difference here becomes an A/V offset downstream.
	c.mu.Lock()
	lag := func(track int, rate float64) time.Duration {
		var ds []time.Duration
		for i, p := range c.pkts[track] {
			ds = append(ds, c.arrival[track][i].Sub(c.arrival[track][0])-time.Duration(float64(p.Timestamp-c.pkts[track][0].Timestamp)/rate*float64(time.Second)))
		}
		slices.Sort(ds)
		return ds[len(ds)/2]
	}
	va, aa := lag(rtmpVideo, 90000), lag(rtmpAudio, 48000)
	first := c.arrival[rtmpAudio][0].Sub(c.arrival[rtmpVideo][0]) - (a0 - v0)
	c.mu.Unlock()
	t.Logf("hand-on lag: audio %v behind video (median lag video %v, audio %v; first audio packet %v behind)", aa-va+first, va, aa, first)
	if d := a0 - v0; d < -100*time.Millisecond || d > 100*time.Millisecond {
		t.Errorf("first audio %v after the first video", d)
	}
}

// TestRTMPSourceListen publishes with ffmpeg to the source's listener: a
// wrong key is refused (ffmpeg fails, the source goes on); the right one
// gives H.264 and Opus that decode cleanly.
func TestRTMPSourceListen(t *testing.T) {
	requireFFmpeg(t)
	addr := fmt.Sprintf("127.0.0.1:%d", janustest.FreePort(t))
	src, err := NewRTMP(&config.Source{Type: "rtmp", Listen: addr, App: "live", Key: "obs"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if tr := src.Tracks(); len(tr) != 2 || tr[0].Codec != "h264" || tr[1].Codec != "opus" {
		t.Fatalf("tracks %+v", tr)
	}
	c := newCollector(2)
	stop := runSource(t, src, c.write)
	waitListening(t, addr)

	if out, err := rtmpPublish("rtmp://"+addr+"/live/wrong", 1); err == nil {
		t.Errorf("publishing with a wrong key succeeded: %s", out)
	}
	if out, err := rtmpPublish("rtmp://"+addr+"/other/obs", 1); err == nil {
		t.Errorf("publishing to another app succeeded: %s", out)
	}
	if st := src.Stats(); st.Refused != 2 || st.Publishers != 0 || len(c.track(0)) != 0 {
		t.Errorf("after two refusals: %+v", st)
	}
	if out, err := rtmpPublish("rtmp://"+addr+"/live/obs", 4); err != nil {
		t.Fatalf("publishing: %v: %s", err, out)
	}
	c.waitFor(t, 5*time.Second, "the publisher's end", func() bool { return !src.Stats().Publishing })
	waitDrained(t, src)
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	st := src.Stats()
	t.Logf("stats %+v", st)
	if st.Publishers != 1 || st.Malformed != 0 || st.VideoFrames < 110 || st.AudioFrames < 160 {
		t.Errorf("stats %+v", st)
	}
	judgeRTMPOutput(t, c, 4)
}

// TestRTMPSourcePull pulls a stream that ffmpeg publishes to nginx-rtmp.
func TestRTMPSourcePull(t *testing.T) {
	requireFFmpeg(t)
	ng := janustest.StartNginx(t)
	url := ng.URL("cam")
	src, err := NewRTMP(&config.Source{Type: "rtmp", URL: url}, nil)
	if err != nil {
		t.Fatal(err)
	}
	c := newCollector(2)
	stop := runSource(t, src, c.write)
	pub := make(chan error, 1)
	go func() {
		out, err := rtmpPublish(url, 6)
		if err != nil {
			err = fmt.Errorf("%w: %s", err, out)
		}
		pub <- err
	}()
	// The pull retries until nginx has the stream; then wait for the end.
	c.waitFor(t, 15*time.Second, "packets", func() bool { return len(c.track(0)) > 0 && len(c.track(1)) > 0 })
	if err := <-pub; err != nil {
		t.Fatal(err)
	}
	c.waitFor(t, 15*time.Second, "the end of the pull", func() bool { return !src.Stats().Publishing })
	waitDrained(t, src)
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	// The pull joins a live stream late: judge the part it got.
	video := c.track(rtmpVideo)
	span := time.Duration(video[len(video)-1].Timestamp-video[0].Timestamp) * time.Second / 90000
	secs := int(span.Round(time.Second) / time.Second)
	t.Logf("pulled %d s of %d", secs, 6)
	if secs < 3 {
		t.Fatalf("pulled only %d s", secs)
	}
	judgeRTMPOutput(t, c, secs)
}

// waitListening waits until addr takes TCP connections.
func waitListening(t *testing.T, addr string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		if out, err := exec.Command("bash", "-c", "exec 3<>/dev/tcp/"+strings.Replace(addr, ":", "/", 1)).CombinedOutput(); err == nil {
			return
		} else if time.Now().After(deadline) {
			t.Fatalf("%s not listening: %s", addr, out)
		}
		time.Sleep(20 * time.Millisecond) // polling with a deadline
	}
}

// waitDrained waits until the source's playout queues are empty.
func waitDrained(t *testing.T, s *RTMP) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		s.mu.Lock()
		n := len(s.queue[0]) + len(s.queue[1])
		s.mu.Unlock()
		if n == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d packets still queued after 5 s", n)
		}
		time.Sleep(10 * time.Millisecond) // polling with a deadline
	}
}
