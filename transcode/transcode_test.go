package transcode

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/janusbridge/janusbridge/internal/janustest"
)

func requireFFmpeg(t *testing.T) {
	t.Helper()
	janustest.RequirePrograms(t, "ffmpeg", "ffprobe")
}

// encode runs ffmpeg on a 440 Hz sine of dur seconds at rate with args and
// returns its output file.
func encode(t *testing.T, dur string, rate string, name string, args ...string) []byte {
	t.Helper()
	out := filepath.Join(t.TempDir(), name)
	a := append([]string{"-nostdin", "-v", "error", "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=" + rate + ":duration=" + dur}, args...)
	if o, err := exec.Command("ffmpeg", append(a, out)...).CombinedOutput(); err != nil {
		t.Fatalf("ffmpeg: %v: %s", err, o)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// opusPackets returns the Opus packets of an Ogg Opus file.
func opusPackets(t *testing.T, ogg []byte) [][]byte {
	t.Helper()
	r := oggReader{r: bytes.NewReader(ogg)}
	var pkts [][]byte
	for i := 0; ; i++ {
		p, err := r.next()
		if err != nil {
			break
		}
		if i >= 2 { // OpusHead, OpusTags
			pkts = append(pkts, append([]byte(nil), p...))
		}
	}
	return pkts
}

// adtsFrames splits an ADTS stream.
func adtsFrames(t *testing.T, b []byte) [][]byte {
	t.Helper()
	var frames [][]byte
	for len(b) > 0 {
		h, err := ParseADTS(b)
		if err != nil || h.FrameLen > len(b) {
			t.Fatalf("bad ADTS stream at %d bytes from its end: %v", len(b), err)
		}
		frames = append(frames, b[:h.FrameLen])
		b = b[h.FrameLen:]
	}
	return frames
}

// write writes a packet faster than real time, but never into a full
// queue (which would drop it).
func write(t *testing.T, tr *FFmpeg, pts time.Duration, p []byte) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for len(tr.work) > queueLen/2 {
		if time.Now().After(deadline) {
			t.Fatal("the transcoder takes no input")
		}
		time.Sleep(time.Millisecond) // polling with a deadline
	}
	tr.Write(pts, p)
}

// collector keeps the output packets.
type collector struct {
	mu   sync.Mutex
	pkts []Packet
	data bytes.Buffer
	got  chan struct{}
}

func newCollector() *collector { return &collector{got: make(chan struct{}, 1)} }

func (c *collector) output(p Packet) {
	c.mu.Lock()
	p.Data = append([]byte(nil), p.Data...)
	c.pkts = append(c.pkts, p)
	c.data.Write(p.Data)
	c.mu.Unlock()
	select {
	case c.got <- struct{}{}:
	default:
	}
}

func (c *collector) snapshot() []Packet {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]Packet(nil), c.pkts...)
}

// waitFor waits until cond holds on the packets, up to 10 s.
func (c *collector) waitFor(t *testing.T, what string, cond func([]Packet) bool) {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for !cond(c.snapshot()) {
		select {
		case <-c.got:
		case <-deadline:
			t.Fatalf("timed out waiting for %s; %d packets", what, len(c.snapshot()))
		}
	}
}

// checkTimeline checks that the packets' PTS follow their durations, with
// one jump of gap at the packet whose PTS is near gapAt (gap 0: none).
func checkTimeline(t *testing.T, pkts []Packet, gapAt, gap time.Duration) {
	t.Helper()
	jumps := 0
	for i := 1; i < len(pkts); i++ {
		want := pkts[i-1].PTS + samplesDur(int64(pkts[i-1].Samples), pkts[i-1].Rate)
		d := pkts[i].PTS - want
		if d < -time.Millisecond || d > time.Millisecond {
			if gap > 0 && jumps == 0 && absDur(pkts[i].PTS-gapAt-gap) < 30*time.Millisecond && absDur(d-gap) < 30*time.Millisecond {
				jumps++
				continue
			}
			t.Errorf("packet %d: PTS %v, want %v after the previous one (off %v)", i, pkts[i].PTS, want, d)
		}
	}
	if gap > 0 && jumps != 1 {
		t.Errorf("gap of %v at %v: not found", gap, gapAt)
	}
}

func absDur(d time.Duration) time.Duration {
	if d < 0 {
		return -d
	}
	return d
}

func ffprobeCodec(t *testing.T, data []byte, name string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("ffprobe", "-v", "error", "-show_entries", "stream=codec_name,sample_rate,channels", "-of", "csv=p=0", p).CombinedOutput()
	if err != nil {
		t.Fatalf("ffprobe: %v: %s", err, out)
	}
	if dec, _ := exec.Command("ffmpeg", "-nostdin", "-v", "error", "-i", p, "-f", "null", "-").CombinedOutput(); len(dec) > 0 {
		t.Errorf("decoding the output: %s", dec)
	}
	return strings.TrimSpace(string(out))
}

// TestOpusToAAC transcodes 3 s of Opus (with a 200 ms hole after 1 s) to
// AAC and checks the codec and the timeline: continuous PTS from the
// input's first PTS, less the encoder's one-frame priming, and the hole
// kept as a jump.
func TestOpusToAAC(t *testing.T) {
	requireFFmpeg(t)
	pkts := opusPackets(t, encode(t, "3", "48000", "in.ogg", "-c:a", "libopus", "-frame_duration", "20", "-ac", "2"))
	if len(pkts) < 140 {
		t.Fatalf("%d opus packets", len(pkts))
	}
	c := newCollector()
	tr, err := NewOpusToAAC(Config{Bitrate: 96000, Output: c.output})
	if err != nil {
		t.Fatal(err)
	}
	const base = 10 * time.Second
	const holeAt, hole = 50, 10 // packets
	pts := base
	for i, p := range pkts {
		if i == holeAt {
			pts += hole * 20 * time.Millisecond
		}
		if i >= holeAt && i < holeAt+hole {
			continue
		}
		write(t, tr, pts, p)
		pts += 20 * time.Millisecond
	}
	if err := tr.Close(); err != nil {
		t.Fatal(err)
	}
	out := c.snapshot()
	st := tr.Stats()
	t.Logf("in %d, out %d, dropped %d, latency %v, cpu %v", st.In, st.Out, st.Dropped, st.Latency, st.CPU)
	if st.Dropped != 0 || st.Restarts != 0 {
		t.Errorf("dropped %d, restarts %d", st.Dropped, st.Restarts)
	}
	inSamples := (len(pkts) - hole) * 960
	if got := len(out) * 1024; got < inSamples || got > inSamples+3*1024 {
		t.Errorf("%d AAC frames (%d samples) for %d input samples", len(out), got, inSamples)
	}
	if want := base - samplesDur(1024, 48000); len(out) == 0 || out[0].PTS != want {
		t.Errorf("first PTS %v, want %v", out[0].PTS, want)
	}
	checkTimeline(t, out, base+holeAt*20*time.Millisecond, hole*20*time.Millisecond)
	if got := ffprobeCodec(t, c.data.Bytes(), "out.aac"); got != "aac,48000,2" {
		t.Errorf("output stream %q, want aac,48000,2", got)
	}
}

// TestAACToOpus transcodes 3 s of 44.1 kHz AAC to 48 kHz Opus and checks
// the codec and the timeline.
func TestAACToOpus(t *testing.T) {
	requireFFmpeg(t)
	frames := adtsFrames(t, encode(t, "3", "44100", "in.aac", "-c:a", "aac", "-ac", "2", "-f", "adts"))
	c := newCollector()
	tr, err := NewAACToOpus(Config{Output: c.output})
	if err != nil {
		t.Fatal(err)
	}
	const base = 5 * time.Second
	for i, f := range frames {
		// RTMP's millisecond timestamps.
		pts := base + (samplesDur(int64(i)*1024, 44100)).Truncate(time.Millisecond)
		write(t, tr, pts, f)
	}
	tr.Close()
	out := c.snapshot()
	st := tr.Stats()
	t.Logf("in %d, out %d, dropped %d, latency %v, cpu %v", st.In, st.Out, st.Dropped, st.Latency, st.CPU)
	if st.Dropped != 0 || st.Restarts != 0 {
		t.Errorf("dropped %d, restarts %d", st.Dropped, st.Restarts)
	}
	in := samplesDur(int64(len(frames))*1024, 44100)
	if got := samplesDur(int64(len(out))*960, 48000); got < in-40*time.Millisecond || got > in+60*time.Millisecond {
		t.Errorf("%d Opus packets (%v) for %v of input", len(out), got, in)
	}
	// libopus's look-ahead (OpusHead pre-skip) is 2.5 ms with -application lowdelay.
	if want := base - samplesDur(120, 48000); len(out) == 0 || absDur(out[0].PTS-want) > time.Millisecond {
		t.Errorf("first PTS %v, want %v", out[0].PTS, want)
	}
	checkTimeline(t, out, 0, 0)
	// The packets make a valid Ogg Opus stream.
	var ogg bytes.Buffer
	w := oggWriter{w: &ogg, serial: 1}
	w.opusHeaders(2)
	var g int64
	for _, p := range out {
		g += int64(p.Samples)
		w.page(p.Data, g, 0)
	}
	if got := ffprobeCodec(t, ogg.Bytes(), "out.opus"); got != "opus,48000,2" {
		t.Errorf("output stream %q, want opus,48000,2", got)
	}
}

// TestRestart kills the ffmpeg child mid-stream: the transcoder starts a
// new one and output resumes.
func TestRestart(t *testing.T) {
	requireFFmpeg(t)
	pkts := opusPackets(t, encode(t, "4", "48000", "in.ogg", "-c:a", "libopus", "-frame_duration", "20"))
	c := newCollector()
	tr, err := NewOpusToAAC(Config{Output: c.output})
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	feed := func(from, to int) {
		for i := from; i < to; i++ {
			write(t, tr, time.Duration(i)*20*time.Millisecond, pkts[i])
		}
	}
	feed(0, 50)
	c.waitFor(t, "first output", func(p []Packet) bool { return len(p) > 10 })
	pid := tr.Stats().PID
	if pid == 0 {
		t.Fatal("no child pid")
	}
	syscall.Kill(pid, syscall.SIGKILL)
	deadline := time.Now().Add(10 * time.Second)
	for tr.Stats().Restarts == 0 || tr.Stats().PID == 0 || tr.Stats().PID == pid {
		if time.Now().After(deadline) {
			t.Fatalf("no restart: %+v", tr.Stats())
		}
		time.Sleep(10 * time.Millisecond) // polling with a deadline
	}
	n := len(c.snapshot())
	feed(100, 150)
	c.waitFor(t, "output after the restart", func(p []Packet) bool { return len(p) > n+10 })
	after := c.snapshot()[n]
	if want := 2*time.Second - samplesDur(1024, 48000); after.PTS != want {
		t.Errorf("first PTS after the restart %v, want %v", after.PTS, want)
	}
}

func TestOpusSamples(t *testing.T) {
	for _, tc := range []struct {
		pkt  []byte
		want int
	}{
		{[]byte{0xf8, 0xff, 0xfe}, 960}, // CELT FB 20 ms
		{[]byte{0x78, 0}, 960},          // hybrid FB 20 ms
		{[]byte{0x08}, 960},             // SILK NB 20 ms
		{[]byte{0x18}, 2880},            // SILK NB 60 ms
		{[]byte{0xf9, 0}, 1920},         // two CELT 20 ms frames
		{[]byte{0xe3, 0x04}, 4 * 120},   // code 3, four 2.5 ms frames
		{[]byte{0xfb, 0x06}, 6 * 960},   // 120 ms
	} {
		if got, err := OpusSamples(tc.pkt); err != nil || got != tc.want {
			t.Errorf("OpusSamples(%x) = %d, %v; want %d", tc.pkt, got, err, tc.want)
		}
	}
	for _, bad := range [][]byte{nil, {0xfb}, {0xfb, 0x00}, {0xfb, 0x07}} {
		if n, err := OpusSamples(bad); err == nil {
			t.Errorf("OpusSamples(%x) = %d, no error", bad, n)
		}
	}
}

func TestADTS(t *testing.T) {
	asc := []byte{0x11, 0x90} // AAC-LC, 48 kHz, stereo
	b, err := AppendADTS(nil, asc, 100)
	if err != nil {
		t.Fatal(err)
	}
	h, err := ParseADTS(b)
	if err != nil {
		t.Fatal(err)
	}
	if h.ObjectType != 2 || h.Rate != 48000 || h.Channels != 2 || h.FrameLen != 107 || h.HeaderLen != 7 || h.Samples() != 1024 {
		t.Errorf("parsed %+v", h)
	}
	if got := h.AudioSpecificConfig(); !bytes.Equal(got[:], asc) {
		t.Errorf("ASC %x, want %x", got, asc)
	}
	for _, bad := range [][]byte{{0xff}, {0xff, 0xf1, 0x50, 0x80, 0, 0, 0}, {0x00, 0xf1, 0x4c, 0x80, 0x10, 0, 0}, {0xff, 0xf1, 0x7c, 0x80, 0x10, 0, 0}} {
		if _, err := ParseADTS(bad); err == nil {
			t.Errorf("ParseADTS(%x): no error", bad)
		}
	}
}

// TestCost feeds each direction in real time for a few seconds and logs
// what the transcoder costs: the ffmpeg child's CPU time per second of
// audio and the added latency (figures for the README; timing decides
// nothing here beyond a sanity bound).
func TestCost(t *testing.T) {
	requireFFmpeg(t)
	if testing.Short() {
		t.Skip("real-time feed: skipped with -short")
	}
	opus := opusPackets(t, encode(t, "5", "48000", "in.ogg", "-c:a", "libopus", "-frame_duration", "20", "-ac", "2"))
	aac := adtsFrames(t, encode(t, "5", "44100", "in.aac", "-c:a", "aac", "-ac", "2", "-f", "adts"))
	for _, tc := range []struct {
		name string
		new  func(Config) (*FFmpeg, error)
		pkts [][]byte
		dur  time.Duration
	}{
		{"opus-to-aac", NewOpusToAAC, opus, 20 * time.Millisecond},
		{"aac-to-opus", NewAACToOpus, aac, samplesDur(1024, 44100)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := newCollector()
			tr, err := tc.new(Config{Output: c.output})
			if err != nil {
				t.Fatal(err)
			}
			start := time.Now()
			for i, p := range tc.pkts {
				at := start.Add(time.Duration(i) * tc.dur)
				time.Sleep(time.Until(at)) // pacing the feed in real time, not synchronisation
				tr.Write(time.Duration(i)*tc.dur, p)
			}
			st := tr.Stats()
			tr.Close()
			audio := time.Duration(len(tc.pkts)) * tc.dur
			t.Logf("%s: %v of audio, latency %v, child CPU %v (%.1f%% of one core), in %d out %d dropped %d",
				tc.name, audio.Round(time.Millisecond), st.Latency.Round(time.Millisecond), st.CPU,
				100*st.CPU.Seconds()/audio.Seconds(), st.In, st.Out, st.Dropped)
			if st.Out == 0 || st.Latency <= 0 || st.Latency > 2*time.Second {
				t.Errorf("stats %+v", st)
			}
		})
	}
}

// TestClockDrift: input PTS that run slower than their sample count, by a
// little per packet, re-anchor once the difference passes the tolerance,
// so the output never strays further than that from the input.
func TestClockDrift(t *testing.T) {
	var c clock
	now := time.Now()
	const step = 20*time.Millisecond + 20*time.Microsecond // 0.1% slow
	for i := 0; i < 3000; i++ {
		if _, ok := c.in(time.Duration(i)*step, 960, 48000, now); !ok {
			t.Fatal("rate refused")
		}
	}
	for i := 0; i < 3000; i++ {
		pts, ok := c.out(960, 48000, 0, now)
		if !ok {
			t.Fatal("no anchor")
		}
		if d := pts - time.Duration(i)*step; d > anchorTolerance+time.Millisecond || d < -anchorTolerance-time.Millisecond {
			t.Fatalf("packet %d: PTS %v off the input's by %v", i, pts, d)
		}
	}
	if len(c.anchors) < 1 {
		t.Error("no anchors")
	}
}
