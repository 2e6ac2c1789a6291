package sources

import (
	"bytes"
	"net/netip"
	"testing"
	"time"

	"github.com/janusbridge/janusbridge/config"
	"github.com/pion/rtcp"
	"github.com/pion/rtp"
)

// newFuzzRTP is an RTP source of an H.264 track (payload type 96, with
// parameter sets from its fmtp) and an Opus track (111); no socket is
// opened.
func newFuzzRTP(t testing.TB) *RTP {
	s, err := NewRTP(&config.Source{Type: "rtp", Tracks: []config.SourceTrack{
		{Kind: "video", Codec: "h264", Listen: "127.0.0.1:1", PayloadType: 96,
			Fmtp: "packetization-mode=1;sprop-parameter-sets=Z0LAH9oB,aM48gA=="},
		{Kind: "audio", Codec: "opus", Listen: "127.0.0.1:3", PayloadType: 111},
	}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func rtpBytes(t testing.TB, pt uint8, seq uint16, ssrc uint32, payload []byte) []byte {
	b, err := (&rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: pt, SequenceNumber: seq, Timestamp: uint32(seq) * 3000, SSRC: ssrc}, Payload: payload}).Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// FuzzRTPDatagrams feeds arbitrary datagrams, as a hostile sender on a
// source port would send them, through the RTP source's per-packet path
// of both tracks (RTCP multiplexed, parsing, payload type and sender
// checks, the H.264 parameter set keeper): no input may panic, every
// datagram is counted exactly once, and what is handed on is RTP of the
// track's payload type and sender.
func FuzzRTPDatagrams(f *testing.F) {
	f.Add(rtpBytes(f, 96, 1, 7, []byte{0x7c, 0x85, 1}), rtpBytes(f, 96, 2, 8, []byte{0x65, 1}), []byte{0x80, 200, 0, 6, 0, 0, 0, 7, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0})
	f.Add(rtpBytes(f, 111, 1, 9, []byte{0xfc, 1, 2}), []byte{0x8f, 96, 0, 1, 0, 0, 0, 1, 0, 0, 0, 1}, []byte{0x81, 201, 0, 40})
	f.Add([]byte{0xb0, 96, 0, 1, 0, 0, 0, 1, 0, 0, 0, 1, 0xbe, 0xde, 0xff, 0xff}, []byte{0xa0, 96, 0, 1, 0, 0, 0, 1, 0, 0, 0, 1, 0xff}, []byte{})
	f.Fuzz(func(t *testing.T, a, b, c []byte) {
		s := newFuzzRTP(t)
		from := netip.MustParseAddrPort("127.0.0.1:5000")
		now := time.Unix(1000, 0)
		n := uint64(0)
		for i := range 2 {
			in := s.newRTPIn(i)
			pt := s.tracks[i].PayloadType
			for k, d := range [][]byte{a, b, c, a, c} {
				orig := append([]byte(nil), d...)
				ps, pkt := in.take(d, from, now.Add(time.Duration(k)*300*time.Millisecond))
				n++
				if !bytes.Equal(d, orig) {
					t.Fatal("datagram modified")
				}
				for _, p := range []*rtp.Packet{ps, pkt} {
					if p != nil && (p.PayloadType != pt || p.SSRC != in.ssrc || p.Version != 2) {
						t.Fatalf("track %d: handed on %v (sender SSRC %d)", i, p.Header, in.ssrc)
					}
				}
				if ps != nil && pkt == nil {
					t.Fatal("parameter sets without their packet")
				}
			}
		}
		st := s.Stats()
		if got := st.Packets + st.Malformed + st.WrongPayloadType + st.ForeignSSRC + st.RTCP + st.RTCPMalformed; got != n {
			t.Fatalf("%d datagrams, %d counted: %+v", n, got, st)
		}
	})
}

// TestRTPForeignSSRC: once a track's sender is known, RTP of another SSRC
// is counted and dropped while the sender is active, and takes over after
// the sender has been silent for ssrcTakeover; RTCP that names no SSRC of
// the sender is counted and dropped too.
func TestRTPForeignSSRC(t *testing.T) {
	s := newFuzzRTP(t)
	in := s.newRTPIn(1)
	from := netip.MustParseAddrPort("127.0.0.1:5000")
	other := netip.MustParseAddrPort("127.0.0.1:6000")
	t0 := time.Unix(1000, 0)
	take := func(ssrc uint32, at time.Duration, addr netip.AddrPort) bool {
		_, pkt := in.take(rtpBytes(t, 111, uint16(at/time.Millisecond), ssrc, []byte{0xfc, 1}), addr, t0.Add(at))
		return pkt != nil
	}
	if !take(1, 0, from) || !take(1, 20*time.Millisecond, from) {
		t.Fatal("the first sender's packets were dropped")
	}
	if take(2, 40*time.Millisecond, other) || take(2, 900*time.Millisecond, other) {
		t.Error("another SSRC was taken while the sender is active")
	}
	if !take(1, 950*time.Millisecond, from) {
		t.Error("the sender's packet was dropped")
	}
	if !take(2, 950*time.Millisecond+ssrcTakeover, other) {
		t.Error("a new SSRC did not take over after the sender's silence")
	}
	if take(1, 960*time.Millisecond+ssrcTakeover, from) {
		t.Error("the old SSRC came back while the new one is active")
	}
	// RTCP: only a compound about the sender's SSRC tells where keyframe
	// requests go; a hostile one (here a BYE of no source, which parses)
	// is foreign.
	sr := func(ssrc uint32) []byte {
		b, err := (&rtcp.SenderReport{SSRC: ssrc}).Marshal()
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	rtcpFrom := netip.MustParseAddrPort("127.0.0.1:6001")
	hostile := netip.MustParseAddrPort("127.0.0.1:7777")
	in.take(sr(99), hostile, t0.Add(3*time.Second))
	in.take([]byte{0xa0, 203, 0, 0}, hostile, t0.Add(3*time.Second))
	in.take(sr(2), rtcpFrom, t0.Add(3*time.Second))
	st := s.Stats()
	if st.ForeignSSRC != 5 || st.Packets != 4 || st.RTCP != 1 {
		t.Errorf("stats %+v: want 5 foreign SSRC, 4 packets, 1 RTCP", st)
	}
	s.mu.Lock()
	p := s.peers[1]
	s.mu.Unlock()
	if p.ssrc != 2 || p.rtp != other || p.rtcp != rtcpFrom {
		t.Errorf("keyframe requests go to SSRC %d at %v / %v, want 2 at %v / %v", p.ssrc, p.rtp, p.rtcp, other, rtcpFrom)
	}
}
