package bridge

import (
	"testing"

	"github.com/janusbridge/janusbridge/media"
)

// FuzzOfferTracks feeds arbitrary text, as a hostile or broken Janus could
// send in a JSEP offer, to the parser that describes a recv bridge's
// tracks: it returns tracks whose codec fits their kind, or an error,
// never a panic.
func FuzzOfferTracks(f *testing.F) {
	f.Add("v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n" +
		"m=audio 9 UDP/TLS/RTP/SAVPF 111\r\nc=IN IP4 127.0.0.1\r\na=mid:a\r\na=sendonly\r\na=rtpmap:111 opus/48000/2\r\na=fmtp:111 useinbandfec=1\r\n" +
		"m=video 9 UDP/TLS/RTP/SAVPF 100\r\nc=IN IP4 127.0.0.1\r\na=mid:v\r\na=sendonly\r\na=rtpmap:100 VP8/90000\r\n")
	f.Add("v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n" +
		"m=video 9 UDP/TLS/RTP/SAVPF 96 97\r\na=mid:1\r\na=rtpmap:96 H264/90000\r\na=fmtp:96 profile-level-id=42e01f;packetization-mode=1\r\n" +
		"m=video 0 UDP/TLS/RTP/SAVPF 98\r\na=mid:2\r\na=inactive\r\nm=audio 9 RTP/AVP 200\r\n")
	f.Add("v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\nm=audio 9 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000/99999999\r\n")
	f.Fuzz(func(t *testing.T, offer string) {
		tracks, err := offerTracks(offer)
		if err != nil {
			return
		}
		for _, tr := range tracks {
			if media.KindOf(tr.codec) != tr.kind || tr.payloadType > 127 {
				t.Fatalf("track %+v", tr)
			}
		}
	})
}
