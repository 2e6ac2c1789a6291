package framer

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/pion/rtp/codecs"

	"github.com/janusbridge/janusbridge/media"

	"github.com/janusbridge/janusbridge/internal/janustest"
)

// The tests in this file judge the framer's output by ffmpeg: real encoders
// feed it over RTP, ffprobe counts the decoded frames, and a decode pass
// must print no error.

func needFFmpeg(t *testing.T) {
	t.Helper()
	janustest.RequirePrograms(t, "ffmpeg", "ffprobe")
}

// arrival is an RTP packet or an RTCP sender report as it arrived.
type arrival struct {
	at time.Time
	p  *rtp.Packet
	sr *rtcp.SenderReport
}

// listenPair opens UDP sockets on 127.0.0.1 ports P and P+1.
func listenPair(t *testing.T) (*net.UDPConn, *net.UDPConn) {
	t.Helper()
	for i := 0; i < 50; i++ {
		a, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
		if err != nil {
			t.Fatal(err)
		}
		port := a.LocalAddr().(*net.UDPAddr).Port
		b, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: port + 1})
		if err == nil {
			_ = a.SetReadBuffer(8 << 20)
			return a, b
		}
		a.Close()
	}
	t.Fatal("no free UDP port pair")
	return nil, nil
}

// captureRTP runs ffmpeg with the given input and encoder arguments, sending
// RTP to a local port pair, and returns what arrived, in arrival order.
func captureRTP(t *testing.T, args ...string) []arrival {
	t.Helper()
	rtpConn, rtcpConn := listenPair(t)
	defer rtpConn.Close()
	defer rtcpConn.Close()
	port := rtpConn.LocalAddr().(*net.UDPAddr).Port
	args = append([]string{"-v", "error", "-nostdin"}, args...)
	args = append(args, "-f", "rtp", fmt.Sprintf("rtp://127.0.0.1:%d?pkt_size=1200", port))

	var mu sync.Mutex
	var got []arrival
	var wg sync.WaitGroup
	read := func(c *net.UDPConn, isRTCP bool) {
		defer wg.Done()
		buf := make([]byte, 2048)
		for {
			n, err := c.Read(buf)
			if err != nil {
				return
			}
			a := arrival{at: time.Now()}
			if isRTCP {
				pkts, err := rtcp.Unmarshal(buf[:n])
				if err != nil {
					continue
				}
				for _, p := range pkts {
					if sr, ok := p.(*rtcp.SenderReport); ok {
						a.sr = sr
					}
				}
				if a.sr == nil {
					continue
				}
			} else {
				a.p = &rtp.Packet{}
				if err := a.p.Unmarshal(append([]byte(nil), buf[:n]...)); err != nil {
					continue
				}
			}
			mu.Lock()
			got = append(got, a)
			mu.Unlock()
		}
	}
	wg.Add(2)
	go read(rtpConn, false)
	go read(rtcpConn, true)

	cmd := exec.Command("ffmpeg", args...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("ffmpeg %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	// Let the last datagrams land, then stop the readers.
	time.Sleep(200 * time.Millisecond)
	rtpConn.SetReadDeadline(time.Now())
	rtcpConn.SetReadDeadline(time.Now())
	wg.Wait()
	sort.SliceStable(got, func(i, j int) bool { return got[i].at.Before(got[j].at) })
	if len(got) == 0 {
		t.Fatal("no RTP arrived")
	}
	return got
}

// feed pushes a capture through a new Framer and returns its frames.
func feed(t *testing.T, tr media.Track, cap []arrival) ([]*media.Frame, Stats) {
	t.Helper()
	c := NewClock(cap[0].at)
	f, col := newFramer(t, c, tr, Options{})
	for _, a := range cap {
		if a.sr != nil {
			f.SenderReport(a.sr.NTPTime, a.sr.RTPTime)
			continue
		}
		f.Push(a.p, a.at)
		f.Tick(a.at)
	}
	f.Tick(cap[len(cap)-1].at.Add(time.Second))
	f.Flush()
	st := f.Stats()
	if st.Lost != 0 {
		t.Fatalf("%d packets lost: the test cannot judge the frames", st.Lost)
	}
	return col.frames, st
}

// captureAndFeed captures ffmpeg's RTP (retrying when the loaded machine
// dropped a datagram on loopback), lets mutate edit it, and feeds it.
func captureAndFeed(t *testing.T, tr media.Track, mutate func([]arrival), args ...string) ([]*media.Frame, Stats, int) {
	t.Helper()
	for attempt := 1; ; attempt++ {
		cap := captureRTP(t, args...)
		if gaps := seqGaps(cap); gaps > 0 && attempt < 3 {
			t.Logf("attempt %d: %d packets missing on loopback, again", attempt, gaps)
			continue
		}
		if mutate != nil {
			mutate(cap)
		}
		frames, st := feed(t, tr, cap)
		return frames, st, len(cap)
	}
}

// seqGaps counts the sequence numbers missing from a capture.
func seqGaps(cap []arrival) int {
	seen := map[uint16]bool{}
	var lo, hi int
	first := true
	for _, a := range cap {
		if a.p == nil {
			continue
		}
		seen[a.p.SequenceNumber] = true
		n := int(a.p.SequenceNumber)
		if first {
			lo, hi, first = n, n, false
		}
		lo, hi = min(lo, n), max(hi, n)
	}
	if hi-lo > 1<<15 { // wrapped: good enough to count on the other side
		return 0
	}
	return hi - lo + 1 - len(seen)
}

// writeIVF writes frames as an IVF file with millisecond timestamps.
func writeIVF(t *testing.T, path, fourcc string, w, h int, frames []*media.Frame, prefix []byte) {
	t.Helper()
	var b bytes.Buffer
	hdr := make([]byte, 32)
	copy(hdr, "DKIF")
	binary.LittleEndian.PutUint16(hdr[6:], 32)
	copy(hdr[8:], fourcc)
	binary.LittleEndian.PutUint16(hdr[12:], uint16(w))
	binary.LittleEndian.PutUint16(hdr[14:], uint16(h))
	binary.LittleEndian.PutUint32(hdr[16:], 1000)
	binary.LittleEndian.PutUint32(hdr[20:], 1)
	binary.LittleEndian.PutUint32(hdr[24:], uint32(len(frames)))
	b.Write(hdr)
	for _, fr := range frames {
		fh := make([]byte, 12)
		binary.LittleEndian.PutUint32(fh, uint32(len(prefix)+len(fr.Data)))
		binary.LittleEndian.PutUint64(fh[4:], uint64((fr.PTS-frames[0].PTS)/time.Millisecond))
		b.Write(fh)
		b.Write(prefix)
		b.Write(fr.Data)
	}
	if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

func writeAnnexB(t *testing.T, path string, frames []*media.Frame) {
	t.Helper()
	var b bytes.Buffer
	for _, fr := range frames {
		b.Write(fr.Data)
	}
	if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

// judge checks that ffmpeg decodes every frame of path without a word.
func judge(t *testing.T, path string, want int) {
	t.Helper()
	out, err := exec.Command("ffmpeg", "-v", "error", "-nostdin", "-i", path, "-f", "null", "-").CombinedOutput()
	if err != nil || len(bytes.TrimSpace(out)) > 0 {
		t.Errorf("ffmpeg decoding %s: %v\n%s", filepath.Base(path), err, out)
	}
	out, err = exec.Command("ffprobe", "-v", "error", "-count_frames", "-select_streams", "v:0",
		"-show_entries", "stream=nb_read_frames", "-of", "csv=p=0", path).CombinedOutput()
	if err != nil {
		t.Fatalf("ffprobe %s: %v\n%s", filepath.Base(path), err, out)
	}
	n, err := strconv.Atoi(strings.TrimSpace(string(out)))
	if err != nil || n != want {
		t.Errorf("ffprobe counts %q frames in %s, want %d", strings.TrimSpace(string(out)), filepath.Base(path), want)
	}
}

// fromSecondKeyframe returns the frames from the second keyframe on: a
// file segment that must decode on its own.
func fromSecondKeyframe(t *testing.T, frames []*media.Frame) []*media.Frame {
	t.Helper()
	keys := 0
	for i, fr := range frames {
		if fr.Keyframe {
			if keys++; keys == 2 {
				return frames[i:]
			}
		}
	}
	t.Fatal("fewer than two keyframes")
	return nil
}

const testSource = "testsrc2=size=320x240:rate=25"

func checkTimeline(t *testing.T, frames []*media.Frame, st Stats) {
	t.Helper()
	if st.TimeJumps > 0 || st.Clamped > 0 {
		// ffmpeg (or this reader) stalled for more than the gap threshold
		// on a loaded machine, which reads as a sender pause: not what
		// this test is about.
		t.Logf("capture stalled: %d time jumps, %d clamped", st.TimeJumps, st.Clamped)
		return
	}
	for i := 1; i < len(frames); i++ {
		step := frames[i].PTS - frames[i-1].PTS
		if step < 30*time.Millisecond || step > 50*time.Millisecond {
			t.Errorf("frame %d: PTS step %v, want about 40 ms", i, step)
		}
	}
}

func TestRealVideo(t *testing.T) {
	needFFmpeg(t)
	for _, tc := range []struct {
		name   string
		track  media.Track
		enc    []string
		fourcc string // IVF, or "" for Annex-B
	}{
		{"vp8", vp8Track, []string{"-c:v", "libvpx", "-deadline", "realtime", "-cpu-used", "8", "-b:v", "600k", "-g", "25"}, "VP80"},
		{"vp9", vp9Track, []string{"-c:v", "libvpx-vp9", "-deadline", "realtime", "-cpu-used", "8", "-b:v", "600k", "-g", "25", "-strict", "experimental"}, "VP90"},
		{"h264", h264Track, []string{"-c:v", "libx264", "-profile:v", "baseline", "-tune", "zerolatency", "-g", "25", "-bf", "0"}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			args := append([]string{"-re", "-f", "lavfi", "-i", testSource, "-t", "2", "-an"}, tc.enc...)
			args = append(args, "-payload_type", strconv.Itoa(int(tc.track.PayloadType)))
			frames, st, n := captureAndFeed(t, tc.track, nil, args...)
			t.Logf("%d packets, stats %+v", n, st)
			if len(frames) != 50 || st.DroppedFrames != 0 || st.Invalid != 0 {
				t.Fatalf("%d frames, stats %+v", len(frames), st)
			}
			if !frames[0].Keyframe || st.Keyframes != 2 {
				t.Errorf("first frame keyframe %v, %d keyframes, want 2", frames[0].Keyframe, st.Keyframes)
			}
			checkTimeline(t, frames, st)
			dir := t.TempDir()
			write := func(name string, frames []*media.Frame) string {
				if tc.fourcc == "" {
					p := filepath.Join(dir, name+".h264")
					writeAnnexB(t, p, frames)
					return p
				}
				p := filepath.Join(dir, name+".ivf")
				writeIVF(t, p, tc.fourcc, 320, 240, frames, nil)
				return p
			}
			judge(t, write("all", frames), 50)
			judge(t, write("segment", fromSecondKeyframe(t, frames)), 25)
		})
	}
}

// TestRealH264ParameterSets: the same H.264 stream with the parameter sets
// sent only before the first keyframe: the second keyframe gets them back,
// so a segment from it decodes.
func TestRealH264ParameterSets(t *testing.T) {
	needFFmpeg(t)
	// Blank every later packet that carries an SPS or PPS (as padding, so
	// that no sequence number goes missing).
	blanked := 0
	blank := func(cap []arrival) {
		idrSeen := false
		for _, a := range cap {
			if a.p == nil || len(a.p.Payload) < 4 {
				continue
			}
			pl := a.p.Payload
			typ := pl[0] & 0x1f
			switch {
			case typ == nalIDR || typ == nalFUA && pl[1]&0x1f == nalIDR:
				idrSeen = true
			case idrSeen && (typ == nalSPS || typ == nalPPS || typ == nalSTAPA && (pl[3]&0x1f == nalSPS || pl[3]&0x1f == nalPPS)):
				a.p.Payload = nil
				blanked++
			}
		}
	}
	frames, st, _ := captureAndFeed(t, h264Track, blank, "-re", "-f", "lavfi", "-i", testSource, "-t", "2", "-an",
		"-c:v", "libx264", "-profile:v", "baseline", "-tune", "zerolatency", "-g", "25", "-bf", "0",
		"-payload_type", "102")
	if blanked == 0 {
		t.Fatal("no parameter set packets found to blank")
	}
	if len(frames) != 50 || st.Keyframes != 2 {
		t.Fatalf("%d frames, stats %+v", len(frames), st)
	}
	seg := fromSecondKeyframe(t, frames)
	if !bytes.Contains(seg[0].Data, append([]byte{0, 0, 0, 1}, testSPS[:1]...)) {
		t.Error("the second keyframe has no SPS")
	}
	p := filepath.Join(t.TempDir(), "segment.h264")
	writeAnnexB(t, p, seg)
	judge(t, p, 25)
}

// TestRealOpus: an Opus RTP stream from ffmpeg, one frame per packet.
func TestRealOpus(t *testing.T) {
	needFFmpeg(t)
	tr := media.Track{Kind: "audio", Codec: media.Opus, ClockRate: 48000, Channels: 2, PayloadType: 111}
	frames, st, _ := captureAndFeed(t, tr, nil, "-re", "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000", "-t", "2",
		"-c:a", "libopus", "-payload_type", "111")
	if len(frames) < 99 || st.DroppedFrames != 0 {
		t.Fatalf("%d frames, stats %+v", len(frames), st)
	}
	if st.TimeJumps > 0 || st.Clamped > 0 {
		t.Logf("capture stalled: %d time jumps, %d clamped", st.TimeJumps, st.Clamped)
		return
	}
	for i := 1; i < len(frames); i++ {
		if step := frames[i].PTS - frames[i-1].PTS; step != 20*time.Millisecond {
			t.Fatalf("frame %d: PTS step %v", i, step)
		}
	}
}

// readIVF returns the frames of an IVF file.
func readIVF(t *testing.T, path string) [][]byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(b) < 32 || string(b[:4]) != "DKIF" {
		t.Fatal("not an IVF file")
	}
	var out [][]byte
	for off := int(binary.LittleEndian.Uint16(b[6:])); off+12 <= len(b); {
		n := int(binary.LittleEndian.Uint32(b[off:]))
		if off+12+n > len(b) {
			t.Fatal(errors.New("truncated IVF frame"))
		}
		out = append(out, b[off+12:off+12+n])
		off += 12 + n
	}
	return out
}

// TestRealAV1: ffmpeg 5.1 has no AV1 RTP packetizer, so AV1 from libaom is
// packetized by pion's AV1Payloader (the one a pion publisher uses).
func TestRealAV1(t *testing.T) {
	needFFmpeg(t)
	dir := t.TempDir()
	src := filepath.Join(dir, "src.ivf")
	out, err := exec.Command("ffmpeg", "-v", "error", "-nostdin", "-f", "lavfi", "-i", testSource, "-t", "2",
		"-c:v", "libaom-av1", "-usage", "realtime", "-cpu-used", "8", "-g", "25", "-b:v", "300k", src).CombinedOutput()
	if err != nil {
		t.Fatalf("ffmpeg: %v\n%s", err, out)
	}
	tus := readIVF(t, src)
	s := &stream{ssrc: 5, seq: 65000, ts: 0xffff0000, pt: 45}
	pay := &codecs.AV1Payloader{}
	var cap []arrival
	at := time.Now()
	for _, tu := range tus {
		for _, p := range s.packets(pay.Payload(1200, tu), 3600) {
			cap = append(cap, arrival{at: at, p: p})
		}
		at = at.Add(40 * time.Millisecond)
	}
	frames, st := feed(t, av1Track, cap)
	if len(frames) != len(tus) || st.Keyframes != 2 {
		t.Fatalf("%d frames of %d, stats %+v", len(frames), len(tus), st)
	}
	td := []byte{0x12, 0x00} // IVF wants each TU to begin with a temporal delimiter
	p := filepath.Join(dir, "all.ivf")
	writeIVF(t, p, "AV01", 320, 240, frames, td)
	judge(t, p, len(tus))
	p = filepath.Join(dir, "segment.ivf")
	writeIVF(t, p, "AV01", 320, 240, fromSecondKeyframe(t, frames), td)
	judge(t, p, len(tus)-25)
}
