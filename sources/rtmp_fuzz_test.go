package sources

import (
	"os"
	"sync/atomic"
	"testing"
	"time"

	"github.com/janusbridge/janusbridge/config"
	"github.com/janusbridge/janusbridge/internal/rtmpguard"
)

// FuzzRTMPInput feeds arbitrary bytes, as a publisher's connection would
// send them, to the RTMP source's server side (gomedia's handshake, chunk
// and AMF parsing, the FLV tag demuxers, then the source's H.264
// packetizer): it must take them or refuse them with an error, never
// panic or hang. The corpus starts from a real ffmpeg publish session
// (x264 + AAC, captured through a proxy to nginx-rtmp) and pieces of it.
func FuzzRTMPInput(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := NewRTMP(&config.Source{Type: "rtmp", Listen: "127.0.0.1:0", App: "live", Key: "obs"}, nil)
		if err != nil {
			t.Fatal(err)
		}
		in := s.newIngest(func(error) {})
		in.bad = true // no ffmpeg child here: AAC frames are counted and dropped
		var active atomic.Bool
		var mine bool
		h := s.serverHandle("fuzz", &active, &mine, in, func([]byte) error { return nil })
		// In two reads, as a connection may split it; an input that keeps
		// gomedia busy for long fails the target (it would hang a
		// connection for good).
		done := make(chan struct{})
		go func() {
			defer close(done)
			var g rtmpguard.Guard
			half := len(data) / 2
			for _, part := range [][]byte{data[:half], data[half:]} {
				if serverInput(&g, h, part) != nil {
					break
				}
			}
		}()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			t.Fatal("input not consumed within 5 s")
		}
		if st := s.Stats(); st.Publishers > 1 || (st.VideoFrames > 0 && !mine) {
			t.Fatalf("frames taken without a publish: %+v", st)
		}
	})
}

// TestRTMPCapturedSession replays a captured ffmpeg publish session (the
// fuzz corpus's seed) into the server side: with the configured key it
// yields H.264 and AAC frames; with another key it is refused and yields
// none.
func TestRTMPCapturedSession(t *testing.T) {
	data, err := os.ReadFile("testdata/rtmp-publish.bin")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		key     string
		publish bool
	}{{"obs", true}, {"other", false}} {
		s, err := NewRTMP(&config.Source{Type: "rtmp", Listen: "127.0.0.1:0", App: "live", Key: tc.key}, nil)
		if err != nil {
			t.Fatal(err)
		}
		in := s.newIngest(func(error) {})
		in.bad = true
		var active atomic.Bool
		var mine bool
		h := s.serverHandle("replay", &active, &mine, in, func([]byte) error { return nil })
		var g rtmpguard.Guard
		for len(data) > 0 { // in reads of 1000 bytes
			n := min(1000, len(data))
			if err := serverInput(&g, h, data[:n]); err != nil {
				t.Fatalf("key %q: %v", tc.key, err)
			}
			data = data[n:]
		}
		data, _ = os.ReadFile("testdata/rtmp-publish.bin")
		st := s.Stats()
		if tc.publish && (st.Publishers != 1 || st.VideoFrames < 5 || st.AudioFrames < 5 || !active.Load()) {
			t.Errorf("key %q: %+v", tc.key, st)
		}
		if !tc.publish && (st.Refused != 1 || st.VideoFrames+st.AudioFrames != 0 || active.Load()) {
			t.Errorf("key %q: %+v", tc.key, st)
		}
	}
}
