package bridge

import (
	"net"
	"testing"

	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"

	"github.com/janusbridge/janusbridge/media"
)

// TestSendTrackWriteAllocs checks that the send bridge's per-packet path
// (route, rewrite, send) allocates nothing: plain RTP to a mountpoint's
// port, and a pion track (not bound here: its binding's own work is
// pion's).
func TestSendTrackWriteAllocs(t *testing.T) {
	rc, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	conn, err := net.DialUDP("udp4", nil, rc.LocalAddr().(*net.UDPAddr))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	local, err := webrtc.NewTrackLocalStaticRTP(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP8, ClockRate: 90000}, "v", "s")
	if err != nil {
		t.Fatal(err)
	}
	in := &input{}
	for _, tr := range []*sendTrack{
		{desc: media.Track{Kind: "video", ClockRate: 90000}, owner: in, local: local,
			plain: &plainOut{conn: conn, ssrc: 1, pt: 96, buf: make([]byte, 1500)}},
		{desc: media.Track{Kind: "video", ClockRate: 90000}, owner: in, local: local},
	} {
		routes := []*sendTrack{tr}
		in.routes.Store(&routes)
		p := rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 100, SequenceNumber: 1, Timestamp: 1, SSRC: 5}, Payload: make([]byte, 1000)}
		allocs := testing.AllocsPerRun(500, func() {
			p.SequenceNumber++
			p.Timestamp += 3000
			(*in.routes.Load())[0].write(in, 0, &p)
		})
		if allocs > 0 {
			t.Errorf("plain %t: %.1f allocations per packet", tr.plain != nil, allocs)
		}
		if tr.stats.Packets.Load() == 0 {
			t.Errorf("plain %t: nothing sent", tr.plain != nil)
		}
	}
}
