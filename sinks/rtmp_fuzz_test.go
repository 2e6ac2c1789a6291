package sinks

import (
	"bytes"
	"testing"
	"time"

	"github.com/janusbridge/janusbridge/internal/rtmpguard"
	"github.com/yapingcat/gomedia/go-rtmp"
)

// rtmpServerBytes plays a publish session between gomedia's client, set up
// as the rtmp sink sets it up, and gomedia's server in memory, and returns
// what the server sent: a well-formed server side to start fuzzing from.
func rtmpServerBytes(t testing.TB) []byte {
	var fromServer bytes.Buffer
	var toServer, toClient [][]byte
	srv := rtmp.NewRtmpServerHandle()
	srv.SetOutput(func(b []byte) error {
		fromServer.Write(b)
		toClient = append(toClient, append([]byte(nil), b...))
		return nil
	})
	srv.OnPublish(func(string, string) rtmp.StatusCode { return rtmp.NETSTREAM_PUBLISH_START })
	cli := rtmp.NewRtmpClient(rtmp.WithComplexHandshake(), rtmp.WithEnablePublish(), rtmp.WithChunkSize(rtmpChunkSize))
	cli.SetOutput(func(b []byte) error {
		toServer = append(toServer, append([]byte(nil), b...))
		return nil
	})
	var state rtmp.RtmpState
	cli.OnStateChange(func(st rtmp.RtmpState) { state = st })
	cli.Start("rtmp://127.0.0.1/live/key")
	for i := 0; i < 100 && (len(toServer) > 0 || len(toClient) > 0); i++ {
		for len(toServer) > 0 {
			b := toServer[0]
			toServer = toServer[1:]
			if err := srv.Input(b); err != nil {
				t.Fatal(err)
			}
		}
		for len(toClient) > 0 {
			b := toClient[0]
			toClient = toClient[1:]
			if err := cli.Input(b); err != nil {
				t.Fatal(err)
			}
		}
	}
	if state != rtmp.STATE_RTMP_PUBLISH_START {
		t.Fatalf("the in-memory publish session ended in state %v", state)
	}
	return fromServer.Bytes()
}

// FuzzRTMPServerInput feeds arbitrary bytes, as a hostile or broken RTMP
// server would send them, to the rtmp sink's client side (the guard, then
// gomedia's handshake, chunk and AMF parsing): it takes them or refuses
// them with an error, never panics or hangs. The corpus starts from a
// real server side of a publish session.
func FuzzRTMPServerInput(f *testing.F) {
	good := rtmpServerBytes(f)
	f.Add(good)
	f.Add(good[:3073+40])
	f.Add(append(append([]byte(nil), good[:3073]...), 0x02, 0, 0, 0, 0, 0, 4, 1, 0, 0, 0, 0, 0, 0, 0, 0))
	f.Fuzz(func(t *testing.T, data []byte) {
		c := rtmp.NewRtmpClient(rtmp.WithComplexHandshake(), rtmp.WithEnablePublish(), rtmp.WithChunkSize(rtmpChunkSize))
		c.SetOutput(func([]byte) error { return nil })
		c.Start("rtmp://127.0.0.1/live/key")
		done := make(chan struct{})
		go func() {
			defer close(done)
			var g rtmpguard.Guard
			half := len(data) / 2
			for _, part := range [][]byte{data[:half], data[half:]} {
				if clientInput(&g, c, part) != nil {
					break
				}
			}
		}()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			t.Fatal("input not consumed within 5 s")
		}
	})
}
