package janus_test

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pion/rtp"
	"github.com/pion/sdp/v3"
	"github.com/pion/webrtc/v4"

	"github.com/janusbridge/janusbridge/internal/janustest"
	"github.com/janusbridge/janusbridge/janus"
)

// testAPI builds the pion API as the daemon does, with loopback candidates
// (the test namespace's 127.0.0.2 is a loopback address).
func testAPI(t *testing.T) *webrtc.API {
	t.Helper()
	api, err := janus.NewAPI(janus.WebRTCOptions{LoopbackCandidates: true})
	if err != nil {
		t.Fatal(err)
	}
	return api
}

// newPeer attaches a Peer to h and feeds it Janus's trickled candidates,
// passing every other handle event to others (which may be nil).
func newPeer(t *testing.T, api *webrtc.API, h *janus.Handle, others chan<- *janus.Message) *janus.Peer {
	t.Helper()
	p, err := janus.NewPeer(api, h, janus.PeerConfig{})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for m := range h.Events() {
			switch {
			case m.Janus == "trickle":
				if err := p.AddRemoteCandidate(m.Candidate); err != nil {
					t.Errorf("remote candidate: %v", err)
				}
			case others != nil:
				select {
				case others <- m:
				default:
				}
			}
		}
	}()
	t.Cleanup(func() {
		p.Close()
		h.Detach(context.Background())
		wg.Wait()
	})
	return p
}

// waitFor polls cond until it holds or d passes.
func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func iceUfrag(t *testing.T, desc *webrtc.SessionDescription) string {
	t.Helper()
	var s sdp.SessionDescription
	if err := s.UnmarshalString(desc.SDP); err != nil {
		t.Fatal(err)
	}
	for _, m := range s.MediaDescriptions {
		if v, ok := m.Attribute("ice-ufrag"); ok {
			return v
		}
	}
	v, _ := s.Attribute("ice-ufrag")
	return v
}

// TestWatchMountpoint watches an ffmpeg-fed VP8+Opus mountpoint with a
// recvonly PeerConnection, checks RTP arrives on every track, then has
// Janus restart ICE (watch with restart: true) and checks media goes on.
func TestWatchMountpoint(t *testing.T) {
	ports := janustest.FreeUDPPorts(t, 2)
	j := janustest.StartJanus(t, janustest.Options{
		Plugins:   []string{"streaming"},
		Streaming: janustest.MountpointConfig(101, "vp8", ports[0], ports[1]),
	})
	janustest.StartFeed(t, janustest.FeedOptions{VideoCodec: "vp8", AudioPort: ports[0], VideoPort: ports[1]})
	api := testAPI(t)
	transports(t, func(t *testing.T, server func(*janustest.Janus) string) {
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		s := connect(t, janus.Options{Servers: []string{server(j)}})
		h, err := s.Attach(ctx, janus.PluginStreaming, "")
		if err != nil {
			t.Fatal(err)
		}
		p := newPeer(t, api, h, nil)
		var audio, video atomic.Int64
		p.PC().OnTrack(func(tr *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
			n := &audio
			if tr.Kind() == webrtc.RTPCodecTypeVideo {
				n = &video
			}
			buf := make([]byte, 1500)
			for {
				if _, _, err := tr.Read(buf); err != nil {
					return
				}
				n.Add(1)
			}
		})
		watch := janus.StreamingWatchRequest{ID: janus.NumID(101)}
		offer, err := janus.StreamingWatch(ctx, h, watch)
		if err != nil {
			t.Fatal(err)
		}
		answer, err := p.CreateAnswer(ctx, offer)
		if err != nil {
			t.Fatal(err)
		}
		if err := janus.StreamingStart(ctx, h, answer); err != nil {
			t.Fatal(err)
		}
		waitFor(t, 15*time.Second, "50 packets on each track", func() bool { return audio.Load() >= 50 && video.Load() >= 50 })

		oldUfrag := iceUfrag(t, p.PC().RemoteDescription())
		offer, err = janus.StreamingWatchRestart(ctx, h, watch)
		if err != nil {
			t.Fatal(err)
		}
		answer, err = p.CreateAnswer(ctx, offer)
		if err != nil {
			t.Fatal(err)
		}
		if err := janus.StreamingStart(ctx, h, answer); err != nil {
			t.Fatal(err)
		}
		if u := iceUfrag(t, p.PC().RemoteDescription()); u == oldUfrag {
			t.Fatalf("Janus kept its ICE ufrag %q across the restart", u)
		}
		a, v := audio.Load(), video.Load()
		waitFor(t, 15*time.Second, "media after the ICE restart", func() bool { return audio.Load() >= a+50 && video.Load() >= v+50 })
	})
}

// TestEchoTest sends VP8 RTP and data channel text to the EchoTest plugin
// and checks both come back, then restarts ICE with our own offer and
// checks the echo goes on.
func TestEchoTest(t *testing.T) {
	j := janustest.StartJanus(t, janustest.Options{Plugins: []string{"echotest"}})
	api := testAPI(t)
	transports(t, func(t *testing.T, server func(*janustest.Janus) string) {
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		s := connect(t, janus.Options{Servers: []string{server(j)}})
		h, err := s.Attach(ctx, janus.PluginEchoTest, "")
		if err != nil {
			t.Fatal(err)
		}
		p := newPeer(t, api, h, nil)

		track, err := webrtc.NewTrackLocalStaticRTP(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP8, ClockRate: 90000}, "video", "echo")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := p.AddTrack(track, webrtc.RTPTransceiverDirectionSendrecv); err != nil {
			t.Fatal(err)
		}
		// What comes back must be what we sent: each payload carries its
		// sequence number after a VP8 keyframe descriptor.
		var echoed atomic.Int64
		p.PC().OnTrack(func(tr *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
			for {
				pkt, _, err := tr.ReadRTP()
				if err != nil {
					return
				}
				var n uint32
				if len(pkt.Payload) >= 14 && bytes.HasPrefix(pkt.Payload, vp8Key) {
					fmt.Sscanf(string(pkt.Payload[len(vp8Key):]), "jb%08x", &n)
					echoed.Add(1)
				}
			}
		})
		dc, err := p.CreateDataChannel("echo", nil)
		if err != nil {
			t.Fatal(err)
		}
		got := make(chan string, 16)
		dc.OnMessage(func(m webrtc.DataChannelMessage) { got <- string(m.Data) })
		opened := make(chan struct{})
		dc.OnOpen(func() { close(opened) })

		offer, err := p.CreateOffer(ctx, janus.OfferOptions{})
		if err != nil {
			t.Fatal(err)
		}
		answer, err := janus.EchoTestOffer(ctx, h, janus.EchoTestRequest{Audio: new(true), Video: new(true)}, offer)
		if err != nil {
			t.Fatal(err)
		}
		if err := p.HandleRemoteJSEP(ctx, answer); err != nil {
			t.Fatal(err)
		}
		stop := sendVP8(t, track)
		defer stop()
		waitFor(t, 15*time.Second, "20 echoed packets", func() bool { return echoed.Load() >= 20 })

		select {
		case <-opened:
		case <-ctx.Done():
			t.Fatal("data channel did not open")
		}
		if err := dc.SendText("hello janus"); err != nil {
			t.Fatal(err)
		}
		select {
		case m := <-got:
			// EchoTest answers text with a greeting around what it got.
			if !strings.HasSuffix(m, "hello janus") {
				t.Fatalf("data channel echoed %q", m)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("no data channel echo")
		}

		oldUfrag := iceUfrag(t, p.PC().LocalDescription())
		offer, err = p.RestartICE(ctx)
		if err != nil {
			t.Fatal(err)
		}
		answer, err = janus.EchoTestOffer(ctx, h, janus.EchoTestRequest{}, offer)
		if err != nil {
			t.Fatal(err)
		}
		if err := p.HandleRemoteJSEP(ctx, answer); err != nil {
			t.Fatal(err)
		}
		if u := iceUfrag(t, p.PC().LocalDescription()); u == oldUfrag {
			t.Fatal("our ICE ufrag did not change")
		}
		n := echoed.Load()
		waitFor(t, 15*time.Second, "echo after our ICE restart", func() bool { return echoed.Load() >= n+20 })
	})
}

// vp8Key is a VP8 payload descriptor (start of partition 0) followed by the
// start of a keyframe header.
var vp8Key = []byte{0x10, 0x50, 0x9d, 0x01, 0x2a}

// sendVP8 writes numbered VP8 packets to track at 50 per second until the
// returned function is called.
func sendVP8(t *testing.T, track *webrtc.TrackLocalStaticRTP) (stop func()) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for i := uint32(0); ; i++ {
			select {
			case <-done:
				return
			case <-tick.C:
			}
			payload := append(append([]byte(nil), vp8Key...), fmt.Sprintf("jb%08x", i)...)
			pkt := &rtp.Packet{Header: rtp.Header{Version: 2, Marker: true, SequenceNumber: uint16(i), Timestamp: i * 1800}, Payload: payload}
			if err := track.WriteRTP(pkt); err != nil && !strings.Contains(err.Error(), "closed") {
				t.Errorf("write rtp: %v", err)
				return
			}
		}
	}()
	return func() { close(done); wg.Wait() }
}
