package bridge_test

import (
	"encoding/binary"
	"math/rand/v2"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/janusbridge/janusbridge/bridge"
	"github.com/janusbridge/janusbridge/internal/janustest"
)

// hostileDatagram is one kind of bad input for an RTP source's ports.
type hostileDatagram struct {
	name string
	make func(r *rand.Rand, pt uint8) []byte
}

// rtpHeader is a version 2 RTP header of payload type pt with random
// sequence number, timestamp and SSRC.
func rtpHeader(r *rand.Rand, first byte, pt uint8) []byte {
	b := []byte{first, pt, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}
	binary.BigEndian.PutUint16(b[2:], uint16(r.Uint32()))
	binary.BigEndian.PutUint32(b[4:], r.Uint32())
	binary.BigEndian.PutUint32(b[8:], r.Uint32())
	return b
}

func randomBytes(r *rand.Rand, n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

// hostileDatagrams are the kinds of garbage the test sends: each is
// dropped and counted by the source (as malformed, wrong payload type,
// foreign SSRC or bad RTCP).
var hostileDatagrams = []hostileDatagram{
	{"random bytes", func(r *rand.Rand, _ uint8) []byte { return randomBytes(r, 1+r.IntN(1400)) }},
	{"zero length", func(*rand.Rand, uint8) []byte { return nil }},
	{"truncated header", func(r *rand.Rand, pt uint8) []byte { return rtpHeader(r, 0x80, pt)[:1+r.IntN(11)] }},
	{"version 0", func(r *rand.Rand, pt uint8) []byte { return append(rtpHeader(r, 0x00, pt), 1, 2, 3) }},
	{"version 3", func(r *rand.Rand, pt uint8) []byte { return append(rtpHeader(r, 0xc0, pt), 1, 2, 3) }},
	{"wrong payload type", func(r *rand.Rand, pt uint8) []byte { return append(rtpHeader(r, 0x80, pt^0x20), 1, 2, 3) }},
	{"unknown SSRC", func(r *rand.Rand, pt uint8) []byte { return append(rtpHeader(r, 0x80, pt), randomBytes(r, 200)...) }},
	{"CSRC count lies", func(r *rand.Rand, pt uint8) []byte { return rtpHeader(r, 0x8f, pt) }},
	{"extension length lies", func(r *rand.Rand, pt uint8) []byte {
		return append(rtpHeader(r, 0x90, pt), 0xbe, 0xde, 0xff, 0xff, 1, 2, 3, 4)
	}},
	{"padding length lies", func(r *rand.Rand, pt uint8) []byte { return append(rtpHeader(r, 0xa0, pt), 1, 2, 200) }},
	{"64 KiB", func(r *rand.Rand, pt uint8) []byte {
		return append(rtpHeader(r, 0x80, pt^0x40), randomBytes(r, 65507-12)...)
	}},
	{"RTCP length past the end", func(r *rand.Rand, _ uint8) []byte { return append([]byte{0x80, 200, 0, 40}, randomBytes(r, 24)...) }},
	{"RTCP compound, second cut", func(r *rand.Rand, _ uint8) []byte {
		b := []byte{0x80, 201, 0, 1, 0, 0, 0, 1} // an empty receiver report
		return append(b, 0x81, 202, 0, 9, 0, 0, 0, 1)
	}},
	{"RTCP length zero, padding bit", func(r *rand.Rand, _ uint8) []byte { return []byte{0xa0, 203, 0, 0} }},
}

// TestHostileRTPSource publishes ffmpeg's VP8+Opus RTP in a VideoRoom
// through a send bridge while the test blasts garbage at the source's RTP
// and RTCP ports of both tracks (random bytes, truncated headers, other
// versions, payload types and SSRCs, headers whose CSRC count, extension
// or padding lie, empty and 64 KiB datagrams, RTCP compounds with bad
// lengths). Nothing crashes, the bridge stays up, the source counts every
// bad datagram it received (BridgeStats.SourceDropped), the bridge sends
// on what the feed sends (counted by relays in front of the source), and
// the publisher's subscriber (a recv bridge of the same daemon) receives
// what the bridge sends; its recording decodes cleanly.
func TestHostileRTPSource(t *testing.T) {
	j := janustest.StartJanus(t, janustest.Options{
		Plugins:   []string{"videoroom"},
		VideoRoom: janustest.VideoRoomConfig(1234, "vp8"),
	})
	// The source's video and audio ports (RTCP on +1), and two relays in
	// front of them that count what the feed sends.
	ports := janustest.FreeUDPPorts(t, 4)
	dir := t.TempDir()
	rb := startBridges(t, videoRoomSendConfig(j.WSURL(), "vp8", ports[0], ports[1], dir, ""))
	relays := []*rtpRelay{startRelay(t, ports[2], ports[0]), startRelay(t, ports[3], ports[1])}
	janustest.StartFeed(t, janustest.FeedOptions{VideoCodec: "vp8", VideoPort: ports[2], AudioPort: ports[3]})
	cam, rec := rb.byName["cam"], rb.byName["rec"]
	waitFor(t, 30*time.Second, "subscriber receiving", func() bool {
		return cam.Status().State == bridge.StateUp && inPackets(rec, "video") > 200 && inPackets(rec, "audio") > 100
	})

	// Packet rates over a window: what the feed sent through the relays,
	// what the send bridge sent, what the subscriber received of each kind.
	const window = 5 * time.Second
	type rates struct{ fed, sent, video, audio float64 }
	measure := func() rates {
		fed := func() uint64 { return relays[0].Forwarded.Load() + relays[1].Forwarded.Load() }
		sent := func() uint64 { return outTrack(cam, 0).Packets + outTrack(cam, 1).Packets }
		f0, s0, v0, a0 := fed(), sent(), inPackets(rec, "video"), inPackets(rec, "audio")
		time.Sleep(window)
		per := func(n, n0 uint64) float64 { return float64(n-n0) / window.Seconds() }
		return rates{per(fed(), f0), per(sent(), s0), per(inPackets(rec, "video"), v0), per(inPackets(rec, "audio"), a0)}
	}
	calm := measure()

	// The blast: one datagram every millisecond (five times the feed's
	// packet rate), each kind in turn, to the four ports in turn, for as
	// long as the second measurement lasts.
	conn, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	targets := []struct {
		port int
		pt   uint8
	}{{ports[0], janustest.PTVP8}, {ports[0] + 1, janustest.PTVP8}, {ports[1], janustest.PTOpus}, {ports[1] + 1, janustest.PTOpus}}
	seed := uint64(time.Now().UnixNano())
	t.Logf("garbage from seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 1))
	stop := make(chan struct{})
	sent := map[string]int{}
	var wg sync.WaitGroup
	wg.Go(func() {
		tick := time.NewTicker(time.Millisecond)
		defer tick.Stop()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			k := hostileDatagrams[i%len(hostileDatagrams)]
			to := targets[(i/len(hostileDatagrams))%len(targets)]
			if _, err := conn.WriteToUDP(k.make(rng, to.pt), &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: to.port}); err == nil {
				sent[k.name]++
			}
		}
	})
	blast := measure()
	close(stop)
	wg.Wait()
	total := 0
	for _, n := range sent {
		total += n
	}

	// What arrived is counted once the source has read it.
	var d bridge.SourceDropped
	counted := func() uint64 {
		if p := cam.Stats().SourceDropped; p != nil {
			d = *p
		}
		return d.Malformed + d.WrongPayloadType + d.ForeignSSRC + d.RTCPMalformed
	}
	deadline := time.Now().Add(5 * time.Second)
	for counted() < uint64(total) && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
	}
	t.Logf("sent %d bad datagrams (%v); counted %+v", total, sent, d)
	t.Logf("packets/s before the blast: %+v; during it: %+v", calm, blast)
	// Loopback may drop a few datagrams when the receiver falls behind;
	// nearly all must be counted, and each kind of counter must move.
	if n := counted(); float64(n) < 0.95*float64(total) || n > uint64(total) {
		t.Errorf("%d bad datagrams sent, %d counted", total, n)
	}
	if d.Malformed == 0 || d.WrongPayloadType == 0 || d.ForeignSSRC == 0 || d.RTCPMalformed == 0 {
		t.Errorf("a kind of bad input was not counted: %+v", d)
	}
	if st := cam.Status(); st.State != bridge.StateUp {
		t.Errorf("send bridge %s after the blast: %+v", st.State, st)
	}
	// During the blast the bridge sends what the feed sends (no good
	// packet lost among the garbage), and the subscriber gets what the
	// bridge sends (no garbage went on to Janus to break the stream). The
	// feed's own rate is not judged: a loaded machine slows it.
	if blast.sent < 0.95*blast.fed {
		t.Errorf("during the blast the bridge sent %.0f packets/s of the %.0f/s fed", blast.sent, blast.fed)
	}
	if got := blast.video + blast.audio; got < 0.9*blast.sent || blast.video == 0 || blast.audio == 0 {
		t.Errorf("during the blast the subscriber received %+v of the %.0f packets/s sent", blast, blast.sent)
	}
	rb.stop()
	checkRecording(t, recordingOf(t, dir, "*-cam.mkv"), "audio:opus,video:vp8", 10)
}
