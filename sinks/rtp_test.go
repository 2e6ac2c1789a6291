package sinks

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/janusbridge/janusbridge/media"
	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/pion/rtp/codecs"
)

var (
	rtpOpusTrack = media.Track{Index: 0, MID: "0", Kind: "audio", Codec: media.Opus, ClockRate: 48000, Channels: 2,
		PayloadType: 111, Fmtp: "minptime=10;useinbandfec=1"}
	rtpVP8Track = media.Track{Index: 1, MID: "1", Kind: "video", Codec: media.VP8, ClockRate: 90000, PayloadType: 96}
)

// rtpListenPorts binds n consecutive UDP ports on 127.0.0.1 and returns the
// first one with the sockets, which the test closes at its end.
func rtpListenPorts(t testing.TB, n int) (int, []*net.UDPConn) {
	t.Helper()
	for range 200 {
		base := 20000 + 2*rand.IntN(15000)
		var conns []*net.UDPConn
		for i := range n {
			c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: base + i})
			if err != nil {
				break
			}
			conns = append(conns, c)
		}
		if len(conns) == n {
			t.Cleanup(func() {
				for _, c := range conns {
					c.Close()
				}
			})
			return base, conns
		}
		for _, c := range conns {
			c.Close()
		}
	}
	t.Fatalf("no %d consecutive free UDP ports", n)
	return 0, nil
}

// rtpFreePorts finds n consecutive free UDP ports and releases them.
func rtpFreePorts(t testing.TB, n int) int {
	t.Helper()
	base, conns := rtpListenPorts(t, n)
	for _, c := range conns {
		c.Close()
	}
	return base
}

func rtpRead(t *testing.T, c *net.UDPConn) []byte {
	t.Helper()
	buf := make([]byte, 2048)
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	n, err := c.Read(buf)
	if err != nil {
		t.Fatalf("reading port %s: %v", c.LocalAddr(), err)
	}
	return buf[:n]
}

func rtpTestSink(t *testing.T, port int, sdp string) *RTP {
	t.Helper()
	r, err := NewRTP(RTPConfig{Host: "127.0.0.1", Port: port, SDP: sdp, Name: "cam1"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

// The SDP expected for rtpOpusTrack and rtpVP8Track at base port %d.
const rtpGoldenSDP = "v=0\r\n" +
	"o=- 0 0 IN IP4 127.0.0.1\r\n" +
	"s=cam1\r\n" +
	"c=IN IP4 127.0.0.1\r\n" +
	"t=0 0\r\n" +
	"a=tool:janusbridge\r\n" +
	"a=recvonly\r\n" +
	"m=audio %[1]d RTP/AVP 111\r\n" +
	"a=rtpmap:111 OPUS/48000/2\r\n" +
	"a=fmtp:111 minptime=10;useinbandfec=1\r\n" +
	"a=rtcp:%[2]d\r\n" +
	"a=mid:0\r\n" +
	"m=video %[3]d RTP/AVP 96\r\n" +
	"a=rtpmap:96 VP8/90000\r\n" +
	"a=rtcp:%[4]d\r\n" +
	"a=mid:1\r\n"

func TestRTPForwardsToTrackPorts(t *testing.T) {
	base, conns := rtpListenPorts(t, 4)
	sdp := filepath.Join(t.TempDir(), "run", "cam1.sdp")
	r := rtpTestSink(t, base, sdp)
	if err := r.SetTracks([]media.Track{rtpOpusTrack, rtpVP8Track}); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(sdp)
	if err != nil {
		t.Fatal(err)
	}
	if want := fmt.Sprintf(rtpGoldenSDP, base, base+1, base+2, base+3); string(got) != want {
		t.Errorf("SDP:\n%s\nwant:\n%s", got, want)
	}

	audio := &rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 111, SequenceNumber: 65535, Timestamp: 4294967000,
		SSRC: 0x11111111, Marker: true}, Payload: []byte{0xfc, 1, 2, 3}}
	video := &rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 100, SequenceNumber: 7, Timestamp: 90000,
		SSRC: 0x22222222, Marker: true}, Payload: []byte{0x10, 0, 0x9d, 1, 0x2a}}
	if err := video.SetExtension(1, []byte{0x31}); err != nil { // a mid header extension, as Janus sends
		t.Fatal(err)
	}
	for _, c := range []struct {
		track int
		p     *rtp.Packet
		conn  *net.UDPConn
		pt    uint8
	}{{0, audio, conns[0], 111}, {1, video, conns[2], 96}} {
		if err := r.WritePacket(c.track, c.p); err != nil {
			t.Fatal(err)
		}
		want, _ := c.p.Marshal()
		want[1] = want[1]&0x80 | c.pt
		if got := rtpRead(t, c.conn); !bytes.Equal(got, want) {
			t.Errorf("track %d: port %s got\n%x\nwant\n%x", c.track, c.conn.LocalAddr(), got, want)
		}
	}
	if video.PayloadType != 100 {
		t.Error("WritePacket changed the caller's packet")
	}
	if err := r.WritePacket(2, audio); !errors.Is(err, errRTPUnknownTrack) {
		t.Errorf("packet of unknown track: %v", err)
	}
	st := r.Stats()
	if st.Packets != 2 || st.Errors != 1 || st.Bytes != uint64(audio.MarshalSize()+video.MarshalSize()) {
		t.Errorf("stats %+v", st)
	}

	// A stream's first packet is preceded by a sender report that maps its
	// timestamp to the packet's arrival.
	for i, c := range []*net.UDPConn{conns[1], conns[3]} {
		pkts, err := rtcp.Unmarshal(rtpRead(t, c))
		if err != nil {
			t.Fatal(err)
		}
		sr, ok := pkts[0].(*rtcp.SenderReport)
		if !ok {
			t.Fatalf("RTCP port %d: %T, want a sender report first", i, pkts[0])
		}
		p := []*rtp.Packet{audio, video}[i]
		if sr.SSRC != p.SSRC || sr.RTPTime != p.Timestamp || sr.PacketCount != 0 {
			t.Errorf("first SR of track %d: %+v", i, sr)
		}
	}

	// The audio track goes away: it leaves the SDP, the video keeps its ports.
	if err := r.SetTracks([]media.Track{rtpVP8Track}); err != nil {
		t.Fatal(err)
	}
	got, _ = os.ReadFile(sdp)
	if want := fmt.Sprintf(rtpGoldenSDP, base, base+1, base+2, base+3); string(got) != strings.Replace(want,
		want[strings.Index(want, "m=audio"):strings.Index(want, "m=video")], "", 1) {
		t.Errorf("SDP after removing the audio track:\n%s", got)
	}
	if err := r.WritePacket(0, audio); !errors.Is(err, errRTPUnknownTrack) {
		t.Errorf("packet of a removed track: %v", err)
	}
	if err := r.WritePacket(1, video); err != nil {
		t.Fatal(err)
	}
	rtpRead(t, conns[2])
	entries, _ := os.ReadDir(filepath.Dir(sdp))
	if len(entries) != 1 {
		t.Errorf("SDP directory holds %d files, want only the SDP (no temporary files)", len(entries))
	}

	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	if err := r.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if _, err := os.Stat(sdp); err != nil {
		t.Errorf("Close removed the SDP: %v", err)
	}
}

func TestRTPSDPVariants(t *testing.T) {
	dir := t.TempDir()
	r, err := NewRTP(RTPConfig{Host: "::1", Port: 7000, SDP: filepath.Join(dir, "x.sdp"), Name: "x"})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	tracks := []media.Track{
		{Index: 0, Kind: "audio", Codec: media.PCMU, ClockRate: 8000},
		{Index: 1, Kind: "audio", Codec: media.PCMA, ClockRate: 8000, PayloadType: 8},
		{Index: 2, Kind: "video", Codec: media.H264, ClockRate: 90000, PayloadType: 102},
		{Index: 3, Kind: "video", Codec: media.VP9, ClockRate: 90000, PayloadType: 98, Fmtp: "profile-id=0"},
		{Index: 5, Kind: "video", Codec: media.AV1, ClockRate: 90000, PayloadType: 45},
	}
	if err := r.SetTracks(tracks); err != nil {
		t.Fatal(err)
	}
	got, _ := os.ReadFile(filepath.Join(dir, "x.sdp"))
	want := "v=0\r\no=- 0 0 IN IP6 ::1\r\ns=x\r\nc=IN IP6 ::1\r\nt=0 0\r\na=tool:janusbridge\r\na=recvonly\r\n" +
		"m=audio 7000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\na=rtcp:7001\r\n" +
		"m=audio 7002 RTP/AVP 8\r\na=rtpmap:8 PCMA/8000\r\na=rtcp:7003\r\n" +
		"m=video 7004 RTP/AVP 102\r\na=rtpmap:102 H264/90000\r\na=fmtp:102 packetization-mode=1\r\na=rtcp:7005\r\n" +
		"m=video 7006 RTP/AVP 98\r\na=rtpmap:98 VP9/90000\r\na=fmtp:98 profile-id=0\r\na=rtcp:7007\r\n" +
		"m=video 7010 RTP/AVP 45\r\na=rtpmap:45 AV1/90000\r\na=rtcp:7011\r\n"
	if string(got) != want {
		t.Errorf("SDP:\n%q\nwant:\n%q", got, want)
	}
	if err := r.SetTracks([]media.Track{{Index: 0, Codec: "g722"}}); err == nil || !strings.Contains(err.Error(), "g722") {
		t.Errorf("unsupported codec: %v", err)
	}
	if _, err := NewRTP(RTPConfig{Host: "127.0.0.1", Port: 0}); err == nil {
		t.Error("port 0 accepted")
	}
}

// TestRTPSenderReportTiming checks the report's NTP/RTP pair against the
// media clock of packets sent in real time.
func TestRTPSenderReportTiming(t *testing.T) {
	base, conns := rtpListenPorts(t, 2)
	r := rtpTestSink(t, base, "")
	if err := r.SetTracks([]media.Track{rtpOpusTrack}); err != nil {
		t.Fatal(err)
	}
	const ts0 = 4294960000 // wraps during the test
	start := time.Now()
	p := &rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 111, SSRC: 42}, Payload: []byte{0xfc, 0xff, 0xfe}}
	go func() {
		buf := make([]byte, 1500)
		for {
			if _, err := conns[0].Read(buf); err != nil {
				return
			}
		}
	}()
	conns[1].SetReadDeadline(time.Now().Add(5 * time.Second))
	got := make(chan *rtcp.SenderReport, 2) // the stream's first report, then the first periodic one
	go func() {
		defer close(got)
		buf := make([]byte, 1500)
		for n := 0; n < 2; {
			size, err := conns[1].Read(buf)
			if err != nil {
				return
			}
			if pkts, err := rtcp.Unmarshal(buf[:size]); err == nil {
				if sr, ok := pkts[0].(*rtcp.SenderReport); ok {
					got <- sr
					n++
				}
			}
		}
	}()
	// 20 ms packets; every 10th is 15 ms late (jitter the report must
	// ignore). offsets[i] is when packet i went, minus its media time.
	var srs []*rtcp.SenderReport
	var offsets []time.Duration
	for i := 0; len(srs) < 2; i++ {
		media := time.Duration(i) * 20 * time.Millisecond
		due := start.Add(media)
		if i%10 == 5 {
			due = due.Add(15 * time.Millisecond)
		}
		time.Sleep(time.Until(due))
		p.SequenceNumber, p.Timestamp = uint16(i), uint32(ts0+960*i)
		offsets = append(offsets, time.Since(start)-media)
		if err := r.WritePacket(0, p); err != nil {
			t.Fatal(err)
		}
		select {
		case s, ok := <-got:
			if !ok {
				t.Fatal("sender reports missing")
			}
			srs = append(srs, s)
		default:
		}
	}
	if srs[0].RTPTime != ts0 || srs[0].PacketCount != 0 {
		t.Errorf("first SR %+v, want RTP time %d", srs[0], uint32(ts0))
	}
	// The periodic report keeps the mapping of the first packet: jitter
	// (the late packets) never moves it, so receivers see no steps.
	sr := srs[1]
	ntp := time.Unix(int64(sr.NTPTime>>32)-2208988800, int64((sr.NTPTime&0xffffffff)*1e9>>32))
	off := ntp.Sub(start) - time.Duration(int32(sr.RTPTime-uint32(ts0)))*time.Second/48000
	least := offsets[0]
	for _, o := range offsets {
		least = min(least, o)
	}
	if off < offsets[0]-time.Millisecond || off > offsets[0]+time.Millisecond {
		t.Errorf("SR puts media time 0 at %v; packets went between %v and %v after it, the first %v after",
			off, least, slices.Max(offsets), offsets[0])
	}
	if sr.SSRC != 42 || sr.PacketCount == 0 || sr.OctetCount != 3*sr.PacketCount {
		t.Errorf("SR %+v", sr)
	}
}

// TestRTPFFmpegDecodes sends VP8 + Opus RTP, packetised here from real
// encodes and paced in real time, through the sink to an ffmpeg that reads
// the sink's SDP (started first). ffmpeg must decode it without a word and
// get every frame. The video starts a second after the audio, at a keyframe:
// with the sender reports, ffmpeg must place it a second after the audio
// (without them it would start both at 0).
func TestRTPFFmpegDecodes(t *testing.T) {
	vp8, opus := mp4Encode(t, "vp8"), mp4Encode(t, "opus")
	dir := t.TempDir()
	sdp := filepath.Join(dir, "cam1.sdp")
	base := rtpFreePorts(t, 4)
	r := rtpTestSink(t, base, sdp)
	if err := r.SetTracks([]media.Track{rtpOpusTrack, rtpVP8Track}); err != nil {
		t.Fatal(err)
	}

	// The packets of 4 s: audio from 0, video from its keyframe at 1 s,
	// each with the time it is due.
	type due struct {
		at    time.Duration
		track int
		p     *rtp.Packet
	}
	var packets []due
	const lag = time.Second
	var op codecs.OpusPayloader
	for i, f := range opus[:200] {
		at := time.Duration(i) * 20 * time.Millisecond
		for _, pl := range op.Payload(1200, f.data) {
			packets = append(packets, due{at, 0, &rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 111,
				SequenceNumber: uint16(1000 + i), Timestamp: uint32(3e9 + 960*i), SSRC: 0xa0}, Payload: pl}})
		}
	}
	vp := codecs.VP8Payloader{EnablePictureID: true}
	seq := uint16(65500) // wraps
	for i, f := range vp8[:100] {
		at := time.Duration(i) * time.Second / mp4TestFPS
		if at < lag {
			continue
		}
		if at == lag && !f.key {
			t.Fatal("the VP8 encode has no keyframe at 1 s")
		}
		pls := vp.Payload(1200, f.data)
		for k, pl := range pls {
			packets = append(packets, due{at, 1, &rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 100,
				SequenceNumber: seq, Timestamp: uint32(4e9 + 3600*i), SSRC: 0xb0, Marker: k == len(pls)-1}, Payload: pl}})
			seq++
		}
	}
	sort.SliceStable(packets, func(i, j int) bool { return packets[i].at < packets[j].at })

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	recv := exec.CommandContext(ctx, "ffmpeg", "-v", "error", "-protocol_whitelist", "file,udp,rtp",
		"-i", sdp, "-t", "3", "-f", "framecrc", "-")
	var out, stderr bytes.Buffer
	recv.Stdout, recv.Stderr = &out, &stderr
	if err := recv.Start(); err != nil {
		t.Fatal(err)
	}
	recvDone := make(chan error, 1)
	go func() { recvDone <- recv.Wait() }()
	rtpAwaitBound(t, base, 4, recvDone)

	start := time.Now()
	var sent [2]time.Time // when each track's first packet went
	for _, d := range packets {
		time.Sleep(time.Until(start.Add(d.at))) // real-time pacing of the stimulus
		if sent[d.track].IsZero() {
			sent[d.track] = time.Now()
		}
		if err := r.WritePacket(d.track, d.p); err != nil {
			t.Fatal(err)
		}
		if ctx.Err() != nil {
			break
		}
	}
	if err := <-recvDone; err != nil || strings.TrimSpace(stderr.String()) != "" {
		t.Fatalf("receiving ffmpeg: %v\n%s", err, stderr.String())
	}

	// framecrc: "#tb 0: 1/90000" and "#media_type 0: video" headers, then
	// "stream, dts, pts, duration, size, crc" per decoded frame.
	kinds, tbs := map[string]string{}, map[string]float64{}
	frames, first := map[string]int{}, map[string]float64{}
	for _, l := range strings.Split(out.String(), "\n") {
		if rest, ok := strings.CutPrefix(l, "#media_type "); ok {
			if id, kind, ok := strings.Cut(rest, ": "); ok {
				kinds[id] = kind
			}
		} else if rest, ok := strings.CutPrefix(l, "#tb "); ok {
			var id string
			var num, den float64
			if _, err := fmt.Sscanf(rest, "%1s: %g/%g", &id, &num, &den); err == nil {
				tbs[id] = num / den
			}
		} else if f := strings.Split(l, ","); len(f) > 2 && l[0] != '#' {
			id := strings.TrimSpace(f[0])
			var pts float64
			fmt.Sscan(strings.TrimSpace(f[2]), &pts)
			if frames[kinds[id]] == 0 {
				first[kinds[id]] = pts * tbs[id]
			}
			frames[kinds[id]]++
		}
	}
	// The video goes a second after the audio (later if this machine is too
	// busy to keep time): ffmpeg must place it so.
	sentLag := sent[1].Sub(sent[0]).Seconds()
	placed := first["video"] - first["audio"]
	if math.Abs(placed-sentLag) > 0.05 {
		t.Errorf("ffmpeg placed the first picture %.3f s after the first audio frame; it was sent %.3f s after", placed, sentLag)
	}
	// 3 s of output: 150 Opus frames of 20 ms, and 25 pictures a second
	// after the video's start (50).
	if want := int((3 - placed) * 25); frames["audio"] < 148 || frames["video"] < want-1 {
		t.Errorf("ffmpeg decoded %d audio and %d video frames in 3 s, want 150 and %d\n%s",
			frames["audio"], frames["video"], want, out.String())
	}
	if st := r.Stats(); st.Errors != 0 || st.Packets == 0 {
		t.Errorf("sink stats %+v", st)
	}
}

// rtpAwaitBound waits until another process has bound the n UDP ports from
// base (binding them ourselves fails).
func rtpAwaitBound(t *testing.T, base, n int, exited <-chan error) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for port := base; port < base+n; {
		c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: port})
		if err == nil {
			c.Close()
		} else if errors.Is(err, syscall.EADDRINUSE) {
			port++
			continue
		}
		select {
		case err := <-exited:
			t.Fatalf("receiving ffmpeg exited before listening: %v", err)
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("port %d not bound by ffmpeg", port)
		}
	}
}

func rtpBenchSink(tb testing.TB) (*RTP, *rtp.Packet) {
	base, conns := rtpListenPorts(tb, 2)
	conns[0].SetReadBuffer(1 << 20)
	r, err := NewRTP(RTPConfig{Host: "127.0.0.1", Port: base})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { r.Close() })
	if err := r.SetTracks([]media.Track{rtpOpusTrack}); err != nil {
		tb.Fatal(err)
	}
	p := &rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 111, SSRC: 1}, Payload: make([]byte, 160)}
	if err := p.SetExtension(1, []byte{0x30}); err != nil {
		tb.Fatal(err)
	}
	return r, p
}

func TestRTPWritePacketDoesNotAllocate(t *testing.T) {
	r, p := rtpBenchSink(t)
	allocs := testing.AllocsPerRun(1000, func() {
		p.SequenceNumber++
		p.Timestamp += 960
		if err := r.WritePacket(0, p); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Errorf("WritePacket: %.1f allocations per packet, want 0", allocs)
	}
}

func BenchmarkRTPWritePacket(b *testing.B) {
	r, p := rtpBenchSink(b)
	b.ReportAllocs()
	b.SetBytes(int64(p.MarshalSize()))
	for b.Loop() {
		p.SequenceNumber++
		p.Timestamp += 960
		if err := r.WritePacket(0, p); err != nil {
			b.Fatal(err)
		}
	}
}
