package janus

import (
	"sync/atomic"
	"testing"

	"github.com/pion/interceptor"
	"github.com/pion/rtcp"
)

// TestFeedbackCounter writes RTCP through the counter's interceptor the
// way pion's NACK generator does and checks what it counts: the packets
// each NACK asks for, per PeerConnection and media SSRC, including those
// sent before CountNACKs, and nothing after the PeerConnection closed.
func TestFeedbackCounter(t *testing.T) {
	var c FeedbackCounter
	var written int
	base := interceptor.RTCPWriterFunc(func(pkts []rtcp.Packet, _ interceptor.Attributes) (int, error) {
		written += len(pkts)
		return 0, nil
	})
	bind := func(id string) (interceptor.Interceptor, interceptor.RTCPWriter) {
		i, err := c.NewInterceptor(id)
		if err != nil {
			t.Fatal(err)
		}
		return i, i.BindRTCPWriter(base)
	}
	i1, w1 := bind("pc1")
	_, w2 := bind("pc2")
	write := func(w interceptor.RTCPWriter, pkts ...rtcp.Packet) {
		if _, err := w.Write(pkts, nil); err != nil {
			t.Fatal(err)
		}
	}
	// Before anyone asked: kept for later.
	write(w1, &rtcp.TransportLayerNack{MediaSSRC: 10, Nacks: []rtcp.NackPair{{PacketID: 100}}})
	var v1, v2, other atomic.Uint64
	c.countNACKs("pc1", 10, &v1)
	c.countNACKs("pc2", 10, &v2) // same SSRC, other PeerConnection
	c.countNACKs("nope", 10, &other)
	if v1.Load() != 1 {
		t.Errorf("pc1 ssrc 10: %d NACKs counted before CountNACKs, want 1", v1.Load())
	}
	write(w1,
		&rtcp.ReceiverReport{},
		&rtcp.TransportLayerNack{MediaSSRC: 10, Nacks: []rtcp.NackPair{{PacketID: 200, LostPackets: 0b101}, {PacketID: 300}}}, // 3 + 1
		&rtcp.PictureLossIndication{MediaSSRC: 10},
		&rtcp.TransportLayerNack{MediaSSRC: 11, Nacks: []rtcp.NackPair{{PacketID: 1}}})
	write(w2, &rtcp.TransportLayerNack{MediaSSRC: 10, Nacks: []rtcp.NackPair{{PacketID: 5, LostPackets: 0xffff}}}) // 17
	if got := v1.Load(); got != 5 {
		t.Errorf("pc1 ssrc 10: %d NACKs, want 5", got)
	}
	if got := v2.Load(); got != 17 {
		t.Errorf("pc2 ssrc 10: %d NACKs, want 17", got)
	}
	if other.Load() != 0 {
		t.Errorf("an unknown PeerConnection counted %d", other.Load())
	}
	if written != 6 {
		t.Errorf("%d packets reached the writer, want all 6", written)
	}
	// Closed: forgotten (twice is fine).
	i1.Close()
	i1.Close()
	var after atomic.Uint64
	c.countNACKs("pc1", 10, &after)
	write(w1, &rtcp.TransportLayerNack{MediaSSRC: 10, Nacks: []rtcp.NackPair{{PacketID: 400}}})
	if after.Load() != 0 {
		t.Errorf("counted %d for a closed PeerConnection", after.Load())
	}
	if _, ok := c.pcs["pc1"]; ok {
		t.Error("closed PeerConnection still known")
	}
}
