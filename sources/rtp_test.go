package sources

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/janusbridge/janusbridge/config"
	"github.com/janusbridge/janusbridge/internal/janustest"
	"github.com/janusbridge/janusbridge/media"
	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/pion/rtp/codecs"
	"github.com/pion/webrtc/v4/pkg/media/ivfwriter"
	"github.com/pion/webrtc/v4/pkg/media/oggwriter"
)

// requireFFmpeg skips the test (fails it in CI) unless ffmpeg and ffprobe
// are installed. These tests need no Janus, so no network namespace.
func requireFFmpeg(t *testing.T) {
	t.Helper()
	janustest.RequirePrograms(t, "ffmpeg", "ffprobe")
}

// collector records what a source hands to its PacketWriter.
type collector struct {
	mu      sync.Mutex
	pkts    [][]*rtp.Packet // per track, copies
	arrival [][]time.Time
	onPkt   func(track int, p *rtp.Packet) // under mu, optional
	changed chan struct{}
}

func newCollector(tracks int) *collector {
	return &collector{pkts: make([][]*rtp.Packet, tracks), arrival: make([][]time.Time, tracks), changed: make(chan struct{}, 1)}
}

func (c *collector) write(track int, p *rtp.Packet) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if track < 0 || track >= len(c.pkts) {
		return fmt.Errorf("collector: track %d out of range", track)
	}
	cp := p.Clone()
	c.pkts[track] = append(c.pkts[track], cp)
	c.arrival[track] = append(c.arrival[track], time.Now())
	if c.onPkt != nil {
		c.onPkt(track, cp)
	}
	select {
	case c.changed <- struct{}{}:
	default:
	}
	return nil
}

// track returns a copy of the packets of a track so far.
func (c *collector) track(i int) []*rtp.Packet {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]*rtp.Packet(nil), c.pkts[i]...)
}

// waitFor waits until cond holds (checked after each packet) or the
// deadline passes.
func (c *collector) waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.NewTimer(d)
	defer deadline.Stop()
	for !cond() {
		select {
		case <-c.changed:
		case <-deadline.C:
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
	}
}

// runSource runs src in a goroutine until the test ends; the returned
// function stops it and returns Run's error.
func runSource(t *testing.T, src media.Source, w media.PacketWriter) func() error {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- src.Run(ctx, w) }()
	var once sync.Once
	var err error
	stop := func() error {
		once.Do(func() {
			cancel()
			select {
			case err = <-done:
			case <-time.After(10 * time.Second):
				err = errors.New("Run did not return within 10 s of cancel")
			}
		})
		return err
	}
	t.Cleanup(func() { _ = stop() })
	return stop
}

// waitOpen waits until the RTP source's sockets are open.
func waitOpen(t *testing.T, s *RTP) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		s.mu.Lock()
		open := s.conns != nil
		s.mu.Unlock()
		if open {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("RTP source did not open its sockets within 5 s")
		}
		time.Sleep(5 * time.Millisecond) // polling with a deadline
	}
}

// decodeErrors runs ffmpeg over a file and returns what it prints on
// errors ("" when it decodes cleanly) and the number of video or audio
// frames ffprobe counts in its first stream.
func decodeCheck(t *testing.T, path string) (errs string, frames int) {
	t.Helper()
	out, err := exec.Command("ffmpeg", "-v", "error", "-nostdin", "-i", path, "-f", "null", "-").CombinedOutput()
	if err != nil {
		t.Fatalf("ffmpeg -i %s: %v\n%s", path, err, out)
	}
	errs = strings.TrimSpace(string(out))
	cnt, err := exec.Command("ffprobe", "-v", "error", "-count_frames", "-select_streams", "0",
		"-show_entries", "stream=nb_read_frames", "-of", "csv=p=0", path).Output()
	if err != nil {
		t.Fatalf("ffprobe %s: %v", path, err)
	}
	fmt.Sscan(strings.TrimSpace(string(cnt)), &frames)
	return errs, frames
}

func checkSeqContinuous(t *testing.T, name string, pkts []*rtp.Packet, maxGaps int) {
	t.Helper()
	gaps := 0
	for i := 1; i < len(pkts); i++ {
		if pkts[i].SequenceNumber != pkts[i-1].SequenceNumber+1 {
			gaps++
		}
		if pkts[i].SSRC != pkts[0].SSRC {
			t.Errorf("%s: SSRC changed at packet %d", name, i)
			return
		}
	}
	if gaps > maxGaps {
		t.Errorf("%s: %d sequence gaps in %d packets (want at most %d)", name, gaps, len(pkts), maxGaps)
	}
}

// TestRTPFromFFmpeg feeds VP8 and Opus RTP from ffmpeg into an RTP source
// described by codec settings, writes what it hands on into IVF and Ogg
// files, and has ffmpeg decode them; the sender's RTCP reports must be
// taken in on port+1.
func TestRTPFromFFmpeg(t *testing.T) {
	requireFFmpeg(t)
	ports := janustest.FreeUDPPorts(t, 2)
	vport, aport := ports[0], ports[1]
	cfg := &config.Source{Type: "rtp", Tracks: []config.SourceTrack{
		{Kind: "video", Codec: "vp8", Listen: fmt.Sprintf("127.0.0.1:%d", vport), PayloadType: janustest.PTVP8, ClockRate: 90000},
		{Kind: "audio", Codec: "opus", Listen: fmt.Sprintf("127.0.0.1:%d", aport), PayloadType: janustest.PTOpus, ClockRate: 48000, Channels: 2},
	}}
	src, err := NewRTP(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	if tr := src.Tracks(); len(tr) != 2 || tr[0].Codec != media.VP8 || tr[1].Codec != media.Opus || tr[1].ClockRate != 48000 {
		t.Fatalf("tracks = %+v", tr)
	}
	dir := t.TempDir()
	ivf, err := ivfwriter.New(filepath.Join(dir, "v.ivf"))
	if err != nil {
		t.Fatal(err)
	}
	ogg, err := oggwriter.New(filepath.Join(dir, "a.ogg"), 48000, 2)
	if err != nil {
		t.Fatal(err)
	}
	col := newCollector(2)
	started := false // the IVF starts at a keyframe
	col.onPkt = func(track int, p *rtp.Packet) {
		switch track {
		case 0:
			var vp8 codecs.VP8Packet
			if _, err := vp8.Unmarshal(p.Payload); err == nil && vp8.S == 1 && len(vp8.Payload) > 0 && vp8.Payload[0]&1 == 0 {
				started = true
			}
			if started {
				_ = ivf.WriteRTP(p)
			}
		case 1:
			_ = ogg.WriteRTP(p)
		}
	}
	stop := runSource(t, src, col.write)
	waitOpen(t, src)
	janustest.StartFeed(t, janustest.FeedOptions{VideoPort: vport, AudioPort: aport, Duration: 3 * time.Second})

	// 2.5 s of audio (20 ms packets) and the sender's RTCP.
	col.waitFor(t, 20*time.Second, "125 audio packets and RTCP", func() bool {
		return len(col.track(1)) >= 125 && src.Stats().RTCP > 0
	})
	if err := stop(); err != nil {
		t.Fatalf("Run: %v", err)
	}
	ivf.Close()
	ogg.Close()

	v, a := col.track(0), col.track(1)
	checkSeqContinuous(t, "video", v, 0)
	checkSeqContinuous(t, "audio", a, 0)
	st := src.Stats()
	if st.Malformed != 0 || st.WrongPayloadType != 0 || st.RTCPMalformed != 0 {
		t.Errorf("stats = %+v, want no malformed packets", st)
	}
	if st.Packets != uint64(len(v)+len(a)) {
		t.Errorf("stats.Packets = %d, handed on %d", st.Packets, len(v)+len(a))
	}
	t.Logf("video %d packets, audio %d packets, stats %+v", len(v), len(a), st)

	errs, frames := decodeCheck(t, filepath.Join(dir, "v.ivf"))
	if errs != "" || frames < 25 {
		t.Errorf("video: %d frames (want >= 25), decode errors: %s", frames, errs)
	}
	errs, frames = decodeCheck(t, filepath.Join(dir, "a.ogg"))
	if errs != "" || frames < 100 {
		t.Errorf("audio: %d frames (want >= 100), decode errors: %s", frames, errs)
	}
}

// TestRTPH264FromSDP describes an H.264 track by the SDP file ffmpeg writes
// for its feed, joins the feed late (after its first keyframe), and checks
// that every keyframe handed on has its parameter sets in front, so that
// the Annex-B stream rebuilt from the packets decodes from its first
// keyframe.
func TestRTPH264FromSDP(t *testing.T) {
	requireFFmpeg(t)
	port := janustest.FreeUDPPorts(t, 1)[0]
	feed := janustest.StartFeed(t, janustest.FeedOptions{VideoCodec: "h264", VideoPort: port, Duration: 6 * time.Second})
	// ffmpeg writes the SDP before its first packet; it sends to a closed
	// port until the source opens it, like a camera streaming before the
	// bridge starts.
	deadline := time.Now().Add(10 * time.Second)
	var sdpText []byte
	for {
		sdpText, _ = os.ReadFile(feed.SDPPath())
		if bytes.Contains(sdpText, []byte("m=video")) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("ffmpeg wrote no SDP to %s; stderr: %s", feed.SDPPath(), feed.Stderr())
		}
		time.Sleep(20 * time.Millisecond) // polling with a deadline
	}
	src, err := NewRTP(&config.Source{Type: "rtp", SDP: feed.SDPPath()}, nil)
	if err != nil {
		t.Fatalf("NewRTP: %v\nSDP:\n%s", err, sdpText)
	}
	tr := src.Tracks()
	if len(tr) != 1 || tr[0].Codec != media.H264 || tr[0].PayloadType != janustest.PTH264 || tr[0].ClockRate != 90000 {
		t.Fatalf("tracks = %+v\nSDP:\n%s", tr, sdpText)
	}
	if l := src.Listen(); len(l) != 1 || l[0] != fmt.Sprintf("127.0.0.1:%d", port) {
		t.Fatalf("listen = %v", l)
	}
	col := newCollector(1)
	time.Sleep(1500 * time.Millisecond) // join late: the feed's first keyframe is gone (not synchronisation)
	stop := runSource(t, src, col.write)
	col.waitFor(t, 20*time.Second, "3 keyframes", func() bool {
		return countIDRs(col.track(0)) >= 3
	})
	if err := stop(); err != nil {
		t.Fatalf("Run: %v", err)
	}
	pkts := col.track(0)
	checkSeqContinuous(t, "h264", pkts, 0)

	// Rebuild the Annex-B stream from the first keyframe on, and check
	// that each IDR access unit has an SPS and a PPS before its slices.
	var annexB []byte
	var h264 codecs.H264Packet
	started := false
	var au []byte
	auTS := pkts[0].Timestamp
	idrs := 0
	flush := func() {
		if len(au) == 0 {
			return
		}
		hasIDR := media.H264HasIDR(au)
		sps, pps := media.H264ParamSets(au)
		if hasIDR {
			idrs++
			if sps == nil || pps == nil {
				t.Errorf("keyframe %d without parameter sets in front", idrs)
			}
			started = true
		}
		if started {
			annexB = append(annexB, au...)
		}
		au = au[:0]
	}
	for _, p := range pkts {
		if p.Timestamp != auTS {
			flush()
			auTS = p.Timestamp
		}
		b, err := h264.Unmarshal(p.Payload)
		if err != nil {
			t.Fatalf("depacketize: %v", err)
		}
		au = append(au, b...)
	}
	// The last access unit may be cut short by the stop: left out.
	path := filepath.Join(t.TempDir(), "out.h264")
	if err := os.WriteFile(path, annexB, 0o644); err != nil {
		t.Fatal(err)
	}
	errs, frames := decodeCheck(t, path)
	if errs != "" || frames < 40 {
		t.Errorf("%d frames decoded (want >= 40), errors: %s", frames, errs)
	}
	t.Logf("%d packets, %d keyframes, %d frames decoded, stats %+v", len(pkts), idrs, frames, src.Stats())
}

// countIDRs counts the H.264 access units (by timestamp) that hold the
// start of an IDR slice.
func countIDRs(pkts []*rtp.Packet) int {
	n := 0
	var last uint32
	for _, p := range pkts {
		if n > 0 && p.Timestamp == last {
			continue
		}
		b := p.Payload
		switch t := media.H264NALType(b); {
		case t == media.H264NALIDR, t == 28 && len(b) > 1 && b[1]&0x80 != 0 && b[1]&0x1f == media.H264NALIDR:
			n++
			last = p.Timestamp
		}
	}
	return n
}

// fakeSender is a UDP socket pair posing as an RTP sender.
type fakeSender struct {
	rtp, rtcp *net.UDPConn
	to        *net.UDPAddr
	seq       uint16
}

func newFakeSender(t *testing.T, to string) *fakeSender {
	t.Helper()
	port := janustest.FreeUDPPorts(t, 1)[0]
	r, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: port})
	if err != nil {
		t.Fatal(err)
	}
	c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: port + 1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close(); c.Close() })
	addr, err := net.ResolveUDPAddr("udp4", to)
	if err != nil {
		t.Fatal(err)
	}
	return &fakeSender{rtp: r, rtcp: c, to: addr, seq: 1000}
}

func (f *fakeSender) send(t *testing.T, pt uint8, ts uint32, payload []byte) {
	t.Helper()
	p := rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: pt, SequenceNumber: f.seq, Timestamp: ts, SSRC: 0x1234}, Payload: payload}
	f.seq++
	b, err := p.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.rtp.WriteToUDP(b, f.to); err != nil {
		t.Fatal(err)
	}
}

// readRTCP reads one RTCP compound packet from conn within 5 s.
func readRTCP(t *testing.T, conn *net.UDPConn) []rtcp.Packet {
	t.Helper()
	buf := make([]byte, 1500)
	_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	n, err := conn.Read(buf)
	if err != nil {
		t.Fatalf("no RTCP at %v: %v", conn.LocalAddr(), err)
	}
	pkts, err := rtcp.Unmarshal(buf[:n])
	if err != nil {
		t.Fatalf("RTCP at %v: %v", conn.LocalAddr(), err)
	}
	return pkts
}

func checkKeyframeRequest(t *testing.T, pkts []rtcp.Packet, wantFIR bool) {
	t.Helper()
	var pli, fir bool
	for _, p := range pkts {
		switch p := p.(type) {
		case *rtcp.PictureLossIndication:
			pli = p.MediaSSRC == 0x1234
		case *rtcp.FullIntraRequest:
			fir = len(p.FIR) == 1 && p.FIR[0].SSRC == 0x1234
		}
	}
	if !pli || fir != wantFIR {
		t.Errorf("keyframe request %v: PLI for SSRC 0x1234 %v, FIR %v (want %v)", pkts, pli, fir, wantFIR)
	}
}

// TestRTPKeyframeRequest checks that RequestKeyframe sends a PLI (and a
// FIR for H.264) to the sender: to port+1 of its RTP address before any
// RTCP came, to the address of its RTCP once some came, and to its RTP
// address when it multiplexes RTCP on the RTP port.
func TestRTPKeyframeRequest(t *testing.T) {
	ports := janustest.FreeUDPPorts(t, 2)
	vp8Addr := fmt.Sprintf("127.0.0.1:%d", ports[0])
	h264Addr := fmt.Sprintf("127.0.0.1:%d", ports[1])
	src, err := NewRTP(&config.Source{Type: "rtp", Tracks: []config.SourceTrack{
		{Kind: "video", Codec: "vp8", Listen: vp8Addr, PayloadType: 100, ClockRate: 90000},
		{Kind: "video", Codec: "h264", Listen: h264Addr, PayloadType: 96, ClockRate: 90000},
	}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	src.RequestKeyframe(0) // not running: nothing, no panic
	col := newCollector(2)
	runSource(t, src, col.write)
	waitOpen(t, src)

	vp8 := newFakeSender(t, vp8Addr)
	h264 := newFakeSender(t, h264Addr)
	vp8.send(t, 100, 1, []byte{0x10, 0, 0, 0})
	h264.send(t, 96, 1, []byte{0x41, 0xaa})
	col.waitFor(t, 5*time.Second, "a packet per track", func() bool { return len(col.track(0)) == 1 && len(col.track(1)) == 1 })

	// No RTCP from the senders yet: to their RTP port + 1.
	src.RequestKeyframe(0)
	checkKeyframeRequest(t, readRTCP(t, vp8.rtcp), false)
	src.RequestKeyframe(1)
	checkKeyframeRequest(t, readRTCP(t, h264.rtcp), true)

	// The VP8 sender reports from a third socket to our port+1: requests
	// follow its RTCP.
	other, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	sr, _ := rtcp.Marshal([]rtcp.Packet{&rtcp.SenderReport{SSRC: 0x1234, NTPTime: 1 << 32, RTPTime: 1}})
	rtcpAddr := netip.MustParseAddrPort(vp8Addr)
	rtcpAddr = netip.AddrPortFrom(rtcpAddr.Addr(), rtcpAddr.Port()+1)
	if _, err := other.WriteToUDPAddrPort(sr, rtcpAddr); err != nil {
		t.Fatal(err)
	}
	waitStat(t, func() bool { return src.Stats().RTCP == 1 })
	src.RequestKeyframe(0)
	checkKeyframeRequest(t, readRTCP(t, other), false)

	// The H.264 sender multiplexes RTCP on its RTP socket.
	if _, err := h264.rtp.WriteToUDP(sr, h264.to); err != nil {
		t.Fatal(err)
	}
	waitStat(t, func() bool { return src.Stats().RTCP == 2 })
	src.RequestKeyframe(1)
	checkKeyframeRequest(t, readRTCP(t, h264.rtp), true)

	src.RequestKeyframe(5) // unknown track: ignored
	if st := src.Stats(); st.KeyframeRequests != 4 || st.KeyframeRequestErrors != 0 {
		t.Errorf("stats = %+v, want 4 keyframe requests", st)
	}
}

// waitStat polls cond with a deadline (the source's counters have no event
// to wait on).
func waitStat(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 5 s")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// lockedBuffer is a log destination safe for concurrent writes.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// TestRTPMalformed sends garbage, truncated RTP, RTP of another payload
// type and bad RTCP: each is counted and dropped, the next good packet
// still comes through, and the drops are logged in one line for that
// second.
func TestRTPMalformed(t *testing.T) {
	addr := fmt.Sprintf("127.0.0.1:%d", janustest.FreeUDPPorts(t, 1)[0])
	var logs lockedBuffer
	src, err := NewRTP(&config.Source{Type: "rtp", Tracks: []config.SourceTrack{
		{Kind: "video", Codec: "h264", Listen: addr, PayloadType: 96, ClockRate: 90000},
	}}, slog.New(slog.NewTextHandler(&logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	col := newCollector(1)
	runSource(t, src, col.write)
	waitOpen(t, src)
	snd := newFakeSender(t, addr)
	to := snd.to
	raw := func(b []byte) {
		if _, err := snd.rtp.WriteToUDP(b, to); err != nil {
			t.Fatal(err)
		}
	}
	raw([]byte{})                                       // empty
	raw([]byte{0x80})                                   // one byte
	raw([]byte{0x00, 96, 0, 1, 0, 0, 0, 1, 0, 0, 0, 1}) // version 0
	raw([]byte{0x8f, 96, 0, 1, 0, 0, 0, 1, 0, 0, 0, 1}) // 15 CSRCs announced, none there
	raw([]byte{0x80, 200, 0, 9})                        // RTCP with a length past its end
	snd.send(t, 97, 1, []byte{0x41, 1})                 // another payload type
	snd.send(t, 96, 2, []byte{0x78, 0, 50, 1})          // STAP-A whose NAL runs past the end
	snd.send(t, 96, 2, []byte{0x7c})                    // FU-A without its header
	snd.send(t, 96, 3, []byte{0x41, 0xbb})              // good
	col.waitFor(t, 5*time.Second, "the good packet", func() bool { return len(col.track(0)) == 1 })
	st := src.Stats()
	if st.Malformed != 6 || st.WrongPayloadType != 1 || st.RTCPMalformed != 1 || st.Packets != 1 {
		t.Errorf("stats = %+v, want 6 malformed, 1 wrong payload type, 1 bad RTCP, 1 packet", st)
	}
	if p := col.track(0)[0]; p.Timestamp != 3 || !bytes.Equal(p.Payload, []byte{0x41, 0xbb}) {
		t.Errorf("packet handed on = %v", p)
	}
	const line = "packets dropped in the last second\" malformed=6 wrong_payload_type=1 foreign_ssrc=0 rtcp_malformed=1"
	waitStat(t, func() bool { return strings.Contains(logs.String(), line) })
	if n := strings.Count(logs.String(), "packets dropped"); n != 1 {
		t.Errorf("%d log lines about drops, want 1:\n%s", n, logs.String())
	}
}

// TestRTPParamSetsInserted sends H.264 whose second keyframe comes without
// parameter sets: the source puts the latest ones in front of it as a
// STAP-A and shifts the sequence numbers after it. A track described with
// sprop-parameter-sets gets those in front of a first keyframe without any.
func TestRTPParamSetsInserted(t *testing.T) {
	sps := []byte{0x67, 0x42, 0xc0, 0x1f, 0xda, 0x01}
	pps := []byte{0x68, 0xce, 0x3c, 0x80}
	sps2 := []byte{0x67, 0x42, 0xc0, 0x1f, 0xda, 0x02}
	stap := func(nals ...[]byte) []byte {
		b := []byte{0x78}
		for _, n := range nals {
			b = append(b, byte(len(n)>>8), byte(len(n)))
			b = append(b, n...)
		}
		return b
	}
	ports := janustest.FreeUDPPorts(t, 2)
	addr := fmt.Sprintf("127.0.0.1:%d", ports[0])
	spropAddr := fmt.Sprintf("127.0.0.1:%d", ports[1])
	sprop := "packetization-mode=1;sprop-parameter-sets=" + base64.StdEncoding.EncodeToString(sps2) + "," + base64.StdEncoding.EncodeToString(pps)
	src, err := NewRTP(&config.Source{Type: "rtp", Tracks: []config.SourceTrack{
		{Kind: "video", Codec: "h264", Listen: addr, PayloadType: 96, ClockRate: 90000},
		{Kind: "video", Codec: "h264", Listen: spropAddr, PayloadType: 96, ClockRate: 90000, Fmtp: sprop},
	}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	col := newCollector(2)
	runSource(t, src, col.write)
	waitOpen(t, src)
	snd := newFakeSender(t, addr)
	snd.send(t, 96, 100, stap(sps, pps))                         // seq 1000
	snd.send(t, 96, 100, []byte{0x65, 1})                        // 1001: IDR with its parameter sets: nothing added
	snd.send(t, 96, 200, []byte{0x41, 2})                        // 1002
	snd.send(t, 96, 300, []byte{0x7c, 0x85, 3})                  // 1003: FU-A start of an IDR without them: STAP-A first
	snd.send(t, 96, 300, []byte{0x7c, 0x45, 4})                  // 1004: FU-A end
	snd.send(t, 96, 400, stap([]byte{0x65, 5}, []byte{0x65, 6})) // 1005: STAP-A of two IDR slices, no parameter sets
	col.waitFor(t, 5*time.Second, "8 packets", func() bool { return len(col.track(0)) == 8 })
	pkts := col.track(0)
	wantPayload := [][]byte{stap(sps, pps), {0x65, 1}, {0x41, 2}, stap(sps, pps), {0x7c, 0x85, 3}, {0x7c, 0x45, 4}, stap(sps, pps), stap([]byte{0x65, 5}, []byte{0x65, 6})}
	wantTS := []uint32{100, 100, 200, 300, 300, 300, 400, 400}
	for i, p := range pkts {
		if p.SequenceNumber != uint16(1000+i) || p.Timestamp != wantTS[i] || !bytes.Equal(p.Payload, wantPayload[i]) || p.SSRC != 0x1234 {
			t.Errorf("packet %d: seq %d ts %d payload %x, want seq %d ts %d payload %x", i, p.SequenceNumber, p.Timestamp, p.Payload, 1000+i, wantTS[i], wantPayload[i])
		}
	}

	snd2 := newFakeSender(t, spropAddr)
	snd2.send(t, 96, 7, []byte{0x65, 7})
	col.waitFor(t, 5*time.Second, "2 packets on the sprop track", func() bool { return len(col.track(1)) == 2 })
	if p := col.track(1); !bytes.Equal(p[0].Payload, stap(sps2, pps)) || p[1].SequenceNumber != p[0].SequenceNumber+1 {
		t.Errorf("sprop track: %x seq %d, %x seq %d", p[0].Payload, p[0].SequenceNumber, p[1].Payload, p[1].SequenceNumber)
	}
	if st := src.Stats(); st.ParamSetsInserted != 3 {
		t.Errorf("ParamSetsInserted = %d, want 3", st.ParamSetsInserted)
	}
}

// TestRTPWriterError ends Run with the writer's error.
func TestRTPWriterError(t *testing.T) {
	addr := fmt.Sprintf("127.0.0.1:%d", janustest.FreeUDPPorts(t, 1)[0])
	src, err := NewRTP(&config.Source{Type: "rtp", Tracks: []config.SourceTrack{
		{Kind: "audio", Codec: "opus", Listen: addr, PayloadType: 111, ClockRate: 48000, Channels: 2},
	}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	boom := errors.New("boom")
	done := make(chan error, 1)
	go func() { done <- src.Run(context.Background(), func(int, *rtp.Packet) error { return boom }) }()
	waitOpen(t, src)
	newFakeSender(t, addr).send(t, 111, 1, []byte{0xfc})
	select {
	case err := <-done:
		if !errors.Is(err, boom) {
			t.Errorf("Run = %v, want boom", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not end on the writer's error")
	}
	// The sockets are closed: the port can be bound again.
	c, err := net.ListenPacket("udp", addr)
	if err != nil {
		t.Fatalf("port still bound after Run: %v", err)
	}
	c.Close()
}

// TestSDPTracks covers the SDP descriptions the source takes and refuses.
func TestSDPTracks(t *testing.T) {
	ok := "v=0\r\no=- 0 0 IN IP4 127.0.0.1\r\ns=x\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n" +
		"m=audio 5002 RTP/AVP 111\r\na=rtpmap:111 opus/48000/2\r\n" +
		"m=video 5004 RTP/AVP 97 96\r\nc=IN IP4 127.0.0.3\r\na=rtpmap:97 rtx/90000\r\na=rtpmap:96 H264/90000\r\na=fmtp:96 packetization-mode=1;profile-level-id=42e01f\r\n" +
		"m=audio 5006 RTP/AVP 0\r\nc=IN IP4 239.1.1.1/32\r\n" +
		"m=application 5008 UDP/DTLS/SCTP webrtc-datachannel\r\n"
	tracks, listen, err := tracksFromSDP([]byte(ok))
	if err != nil {
		t.Fatal(err)
	}
	want := []media.Track{
		{Index: 0, Kind: "audio", Codec: "opus", ClockRate: 48000, Channels: 2, PayloadType: 111},
		{Index: 1, Kind: "video", Codec: "h264", ClockRate: 90000, PayloadType: 96, Fmtp: "packetization-mode=1;profile-level-id=42e01f"},
		{Index: 2, Kind: "audio", Codec: "pcmu", ClockRate: 8000, Channels: 1, PayloadType: 0},
	}
	wantListen := []string{"127.0.0.1:5002", "127.0.0.3:5004", "0.0.0.0:5006"}
	if fmt.Sprint(tracks) != fmt.Sprint(want) || fmt.Sprint(listen) != fmt.Sprint(wantListen) {
		t.Errorf("got %+v %v\nwant %+v %v", tracks, listen, want, wantListen)
	}
	for _, bad := range []struct{ name, sdp, err string }{
		{"not sdp", "hello", "parse"},
		{"no media", "v=0\r\no=- 0 0 IN IP4 127.0.0.1\r\ns=x\r\nt=0 0\r\n", "no audio or video"},
		{"unknown codec", "v=0\r\no=- 0 0 IN IP4 127.0.0.1\r\ns=x\r\nt=0 0\r\nm=video 5004 RTP/AVP 96\r\na=rtpmap:96 H265/90000\r\n", "no payload type"},
		{"port 0", "v=0\r\no=- 0 0 IN IP4 127.0.0.1\r\ns=x\r\nt=0 0\r\nm=audio 0 RTP/AVP 0\r\n", "port 0"},
	} {
		if _, _, err := tracksFromSDP([]byte(bad.sdp)); err == nil || !strings.Contains(err.Error(), bad.err) {
			t.Errorf("%s: err = %v, want %q", bad.name, err, bad.err)
		}
	}
	if _, err := NewRTP(&config.Source{Type: "rtp", SDP: filepath.Join(t.TempDir(), "missing.sdp")}, nil); err == nil || !strings.Contains(err.Error(), "missing.sdp") {
		t.Errorf("missing SDP file: %v", err)
	}
}

// TestRTPNoAllocation checks that the per-packet work of an H.264 track
// (parsing into the reused packet, the parameter set watch, a STAP-A put
// in front of a keyframe) allocates nothing once warmed up.
func TestRTPNoAllocation(t *testing.T) {
	p := newH264Params("sprop-parameter-sets=Z0LAH9oB,aM48gA==")
	idr, _ := (&rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 96, SequenceNumber: 1, Timestamp: 1}, Payload: []byte{0x7c, 0x85, 1, 2, 3}}).Marshal()
	slice, _ := (&rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 96, SequenceNumber: 2, Timestamp: 2}, Payload: []byte{0x41, 1, 2, 3}}).Marshal()
	var pkt rtp.Packet
	ts := uint32(0)
	allocs := testing.AllocsPerRun(200, func() {
		for i, b := range [][]byte{idr, slice} {
			if err := pkt.Unmarshal(b); err != nil {
				t.Fatal(err)
			}
			ts++
			pkt.Timestamp = ts // a new access unit each time: a STAP-A before every IDR
			if ins, ok := p.inspect(&pkt); !ok || (i == 0) != (ins != nil) {
				t.Fatalf("packet %d: inserted %v, ok %v", i, ins, ok)
			}
		}
	})
	if allocs != 0 {
		t.Errorf("%.1f allocations per two packets, want 0", allocs)
	}
}
