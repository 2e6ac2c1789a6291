package sources

import (
	"bytes"
	"log/slog"
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

// fuzzDemuxer opens data with open and reads all its frames twice (with a
// rewind between), packetizing each as a File source would: no input may
// make it panic, and frames must belong to a described track.
func fuzzDemuxer(t *testing.T, data []byte, open func(r *bytes.Reader) (demuxer, error)) {
	d, err := open(bytes.NewReader(data))
	if err != nil {
		return
	}
	s := &File{path: "fuzz", log: slog.New(slog.DiscardHandler), byIn: map[int]*fileOut{}}
	for i, tr := range d.tracks() {
		if o := s.newOut(i, tr); o != nil {
			o.track.Index = len(s.outs)
			s.outs = append(s.outs, o)
			s.byIn[i] = o
		}
	}
	nop := func(int, *rtp.Packet) error { return nil }
	for range 2 {
		for range 2000 {
			fr, err := d.next()
			if err != nil {
				break
			}
			if fr.track < 0 || fr.track >= len(d.tracks()) {
				t.Fatalf("frame of track %d, %d tracks", fr.track, len(d.tracks()))
			}
			if o := s.byIn[fr.track]; o != nil && !o.aac {
				if err := s.send(o, &fr, fr.pts, nop); err != nil {
					t.Fatal(err)
				}
			}
		}
		if err := d.rewind(); err != nil {
			return
		}
	}
}

// FuzzIVF fuzzes the IVF demuxer.
func FuzzIVF(f *testing.F) {
	f.Add([]byte("DKIF\x00\x00\x20\x00VP80\x40\x00\x40\x00\x19\x00\x00\x00\x01\x00\x00\x00\x01\x00\x00\x00\x00\x00\x00\x00\x03\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x10\x02\x9d"))
	f.Fuzz(func(t *testing.T, data []byte) {
		fuzzDemuxer(t, data, func(r *bytes.Reader) (demuxer, error) { return newIVF(r, "fuzz") })
	})
}

// FuzzAnnexB fuzzes the Annex-B H.264 demuxer.
func FuzzAnnexB(f *testing.F) {
	f.Add([]byte("\x00\x00\x00\x01\x67\x42\xc0\x1f\xda\x01\x00\x00\x00\x01\x68\xce\x3c\x80\x00\x00\x01\x65\x88\x84\x00\x00\x01\x41\x9a\x02"))
	f.Fuzz(func(t *testing.T, data []byte) {
		fuzzDemuxer(t, data, func(r *bytes.Reader) (demuxer, error) { return newAnnexB(r, "fuzz", 25) })
	})
}

// FuzzOgg fuzzes the Ogg Opus demuxer.
func FuzzOgg(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte) {
		fuzzDemuxer(t, data, func(r *bytes.Reader) (demuxer, error) { return newOgg(r, "fuzz") })
	})
}

// FuzzMatroska fuzzes the WebM/Matroska demuxer.
func FuzzMatroska(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte) {
		fuzzDemuxer(t, data, func(r *bytes.Reader) (demuxer, error) { return newMatroska(r, "fuzz") })
	})
}

// FuzzMP4 fuzzes the MP4 demuxer.
func FuzzMP4(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte) {
		fuzzDemuxer(t, data, func(r *bytes.Reader) (demuxer, error) { return newMP4(r, "fuzz") })
	})
}
