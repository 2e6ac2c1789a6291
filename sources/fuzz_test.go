package sources

import (
	"testing"

	"github.com/pion/rtp"
)

// FuzzSDPTracks feeds arbitrary text to the SDP track parser: it must
// return tracks with a listen address each, or an error, never panic.
func FuzzSDPTracks(f *testing.F) {
	f.Add([]byte("v=0\r\no=- 0 0 IN IP4 127.0.0.1\r\ns=x\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=video 5004 RTP/AVP 96\r\na=rtpmap:96 H264/90000\r\na=fmtp:96 packetization-mode=1\r\n"))
	f.Add([]byte("v=0\r\no=- 0 0 IN IP4 127.0.0.1\r\ns=x\r\nt=0 0\r\nm=audio 5002 RTP/AVP 0 111\r\na=rtpmap:111 opus/48000/2\r\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		tracks, listen, err := tracksFromSDP(data)
		if err == nil && (len(tracks) == 0 || len(tracks) != len(listen)) {
			t.Fatalf("%d tracks, %d listen addresses, no error", len(tracks), len(listen))
		}
	})
}

// FuzzH264Params feeds arbitrary RTP payloads to the H.264 parameter set
// keeper: a packet it puts in front must be a STAP-A of an SPS and a PPS
// with the keyframe's timestamp.
func FuzzH264Params(f *testing.F) {
	f.Add([]byte{0x78, 0, 2, 0x67, 1, 0, 2, 0x68, 2}, []byte{0x7c, 0x85, 1}, "sprop-parameter-sets=Z0LAH9oB,aM48gA==")
	f.Add([]byte{0x65, 1}, []byte{0x78, 0, 2, 0x65, 1, 0, 2, 0x65, 2}, "")
	f.Fuzz(func(t *testing.T, a, b []byte, fmtp string) {
		p := newH264Params(fmtp)
		for i, payload := range [][]byte{a, b, a} {
			pkt := rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 96, SequenceNumber: uint16(i), Timestamp: uint32(i)}, Payload: payload}
			ins, ok := p.inspect(&pkt)
			if ins == nil {
				continue
			}
			if !ok || ins.Timestamp != pkt.Timestamp || len(ins.Payload) < 5 || ins.Payload[0]&0x1f != 24 {
				t.Fatalf("inserted %v before %v (ok %v)", ins, pkt, ok)
			}
		}
	})
}
