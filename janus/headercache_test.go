package janus

import (
	"testing"

	"github.com/pion/interceptor"
	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"
)

// The receive path of our interceptor chain (NACK generator, receiver
// reports) reads each packet without allocating, and every interceptor sees
// the header of the packet it reads.
func TestReceivePathDoesNotAllocate(t *testing.T) {
	m := &webrtc.MediaEngine{}
	if err := registerCodecs(m); err != nil {
		t.Fatal(err)
	}
	reg := &interceptor.Registry{}
	if err := registerInterceptors(m, reg, nil); err != nil {
		t.Fatal(err)
	}
	chain, err := reg.Build("")
	if err != nil {
		t.Fatal(err)
	}
	defer chain.Close()
	info := &interceptor.StreamInfo{
		SSRC: 1234, ClockRate: 90000, MimeType: webrtc.MimeTypeVP8,
		RTCPFeedback: []interceptor.RTCPFeedback{{Type: "nack"}},
	}
	pkt := rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 96, SSRC: 1234}, Payload: make([]byte, 1000)}
	raw := make([]byte, 1500)
	var seq uint16
	src := interceptor.RTPReaderFunc(func(b []byte, a interceptor.Attributes) (int, interceptor.Attributes, error) {
		seq++
		pkt.SequenceNumber, pkt.Timestamp = seq, uint32(seq)*3000
		n, err := pkt.MarshalTo(b)
		return n, a, err
	})
	var seen rtp.Header
	reader := chain.BindRemoteStream(info, src)
	read := func() {
		n, a, err := reader.Read(raw, nil)
		if err != nil || n == 0 {
			t.Fatalf("read: %d %v", n, err)
		}
		h, err := a.GetRTPHeader(raw[:n])
		if err != nil {
			t.Fatal(err)
		}
		seen = *h
	}
	read()
	if seen.SequenceNumber != seq || seen.SSRC != 1234 {
		t.Fatalf("header seen: seq %d ssrc %d, read seq %d", seen.SequenceNumber, seen.SSRC, seq)
	}
	if allocs := testing.AllocsPerRun(1000, read); allocs != 0 {
		t.Errorf("%.1f allocations per packet read, want 0", allocs)
	}
	if seen.SequenceNumber != seq {
		t.Errorf("header seen: seq %d, read seq %d", seen.SequenceNumber, seq)
	}
}
