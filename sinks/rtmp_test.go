package sinks

import (
	"strings"
	"testing"

	"github.com/janusbridge/janusbridge/media"
)

func TestRedactURL(t *testing.T) {
	for in, want := range map[string]string{
		"rtmp://a.rtmp.youtube.com/live2/abcd-efgh":         "rtmp://a.rtmp.youtube.com/live2/<redacted>",
		"rtmps://live.example.org:443/app/key?token=secret": "rtmps://live.example.org:443/app/<redacted>",
		"rtmp://user:pass@host/app/key":                     "rtmp://host/app/<redacted>",
		"rtmp://host/app":                                   "rtmp://host/app",
		"::not a url":                                       "<redacted>",
	} {
		if got := RedactURL(in); got != want {
			t.Errorf("RedactURL(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestRTMPRefusesVP8 checks the error a VP8 bridge gets: it names the codec
// and the fix, and is kept in the status.
func TestRTMPRefusesVP8(t *testing.T) {
	s, err := NewRTMP(RTMPConfig{Name: "yt", URL: "rtmp://127.0.0.1:1/live/key"})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	err = s.SetTracks([]media.Track{
		{Index: 0, MID: "v", Kind: "video", Codec: media.VP8, ClockRate: 90000},
	})
	if err == nil {
		t.Fatal("VP8 track accepted")
	}
	for _, want := range []string{`rtmp sink "yt"`, "VP8", "H.264 room or mountpoint"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
	if st := s.Status(); st.LastError != err.Error() || strings.Contains(st.URL, "key") {
		t.Errorf("status %+v", st)
	}
	// Without audio the sink needs no transcoder: an H.264-only set is fine.
	if err := s.SetTracks([]media.Track{{Index: 0, MID: "v", Kind: "video", Codec: media.H264}}); err != nil {
		t.Errorf("H.264 track refused: %v", err)
	}
}

func TestNewRTMPBadURL(t *testing.T) {
	for _, u := range []string{"http://host/app/key", "rtmp://host/app", "rtmp:///app/key", "rtmp://host//key"} {
		if s, err := NewRTMP(RTMPConfig{Name: "x", URL: u}); err == nil {
			s.Close()
			t.Errorf("NewRTMP(%q): no error", u)
		} else if strings.Contains(err.Error(), "key") && strings.Contains(u, "/key") && strings.Contains(err.Error(), u) {
			t.Errorf("error shows the URL with its key: %v", err)
		}
	}
}

func TestPublishStreamID(t *testing.T) {
	msg := []byte{0x03, 0, 0, 0, 0, 0, 30, 20, 1, 0, 0, 0, 0x02, 0x00, 0x07, 'p', 'u', 'b', 'l', 'i', 's', 'h', 0}
	if id, ok := publishStreamID(msg); !ok || id != 1 {
		t.Errorf("publishStreamID = %d, %v", id, ok)
	}
	msg[15] = 'P'
	if _, ok := publishStreamID(msg); ok {
		t.Error("another command taken for publish")
	}
}
