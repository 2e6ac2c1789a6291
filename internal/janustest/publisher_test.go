package janustest_test

import (
	"context"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"

	"github.com/janusbridge/janusbridge/internal/janustest"
	"github.com/janusbridge/janusbridge/janus"
)

// TestPublisher publishes VP8+Opus (over WebSocket) and H.264+Opus (over HTTP, sync marker)
// into a VideoRoom and checks that Janus lists both with their displays and codecs, that
// their packets grow, that a subscriber gets audio, video and keyframes of both from Janus,
// and that a stopped publisher leaves the room.
func TestPublisher(t *testing.T) {
	const room = 1234
	j := janustest.StartJanus(t, janustest.Options{
		Plugins:   []string{"videoroom"},
		VideoRoom: janustest.VideoRoomConfig(room, "vp8,h264"),
	})
	vp8 := janustest.StartPublisher(t, janustest.PublisherOptions{Server: j.WSURL(), Room: room, Display: "pub vp8"})
	h264 := janustest.StartPublisher(t, janustest.PublisherOptions{
		Server: j.HTTPURL(), Room: room, Display: "pub h264", VideoCodec: "h264", SyncMarker: true,
	})
	if vp8.ID() == 0 || h264.ID() == 0 || vp8.ID() == h264.ID() {
		t.Fatalf("publisher ids %d and %d", vp8.ID(), h264.ID())
	}

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	s, err := janus.Connect(ctx, janus.Options{Servers: []string{j.HTTPURL()}})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close(context.Background())
	h, err := s.Attach(ctx, janus.PluginVideoRoom, "")
	if err != nil {
		t.Fatal(err)
	}

	// Both listed as publishing, with their displays.
	parts, err := janus.VideoRoomListParticipants(ctx, h, janus.NumID(room))
	if err != nil {
		t.Fatal(err)
	}
	want := map[uint64]string{vp8.ID(): "pub vp8", h264.ID(): "pub h264"}
	for id, display := range want {
		found := false
		for _, p := range parts {
			if p.ID.Uint64() == id {
				found = true
				if p.Display != display || !p.Publisher {
					t.Errorf("participant %d: display %q publisher %t, want %q publishing", id, p.Display, p.Publisher, display)
				}
			}
		}
		if !found {
			t.Errorf("participant %d (%s) not listed: %+v", id, display, parts)
		}
	}

	// The streams and codecs Janus announces to a newcomer.
	joined, err := janus.VideoRoomJoinPublisher(ctx, h, janus.NumID(room), "observer", "")
	if err != nil {
		t.Fatal(err)
	}
	wantCodecs := map[uint64]string{vp8.ID(): "vp8", h264.ID(): "h264"}
	for _, pub := range joined.Publishers {
		codecs := map[string]string{}
		for _, st := range pub.Streams {
			codecs[st.Type] = st.Codec
		}
		if w, ok := wantCodecs[pub.ID.Uint64()]; ok && (codecs["video"] != w || codecs["audio"] != "opus") {
			t.Errorf("publisher %d (%s) streams %+v, want %s + opus", pub.ID.Uint64(), pub.Display, pub.Streams, w)
		}
		delete(wantCodecs, pub.ID.Uint64())
	}
	if len(wantCodecs) > 0 {
		t.Errorf("publishers missing from joined: %v (got %+v)", wantCodecs, joined.Publishers)
	}

	// Packets grow.
	a1, v1 := vp8.Packets()
	a2, v2 := h264.Packets()
	waitUntil(t, 10*time.Second, "packets to grow", func() bool {
		na1, nv1 := vp8.Packets()
		na2, nv2 := h264.Packets()
		return na1 >= a1+50 && nv1 >= v1+50 && na2 >= a2+50 && nv2 >= v2+50
	})

	for _, pub := range []*janustest.Publisher{vp8, h264} {
		if e := pub.Stderr(); e != "" {
			t.Errorf("ffmpeg %s: errors:\n%s", strings.Join(pub.Args(), " "), e)
		}
	}

	// Janus relays them: subscribe to both feeds and count what arrives, per codec.
	subscribeAndCount(t, ctx, s, room, vp8.ID(), h264.ID())

	// A stopped publisher leaves; the other stays.
	vp8.Stop()
	vp8.Stop() // idempotent
	na, nv := vp8.Packets()
	parts, err = janus.VideoRoomListParticipants(ctx, h, janus.NumID(room))
	if err != nil {
		t.Fatal(err)
	}
	left, stays := true, false
	for _, p := range parts {
		switch p.ID.Uint64() {
		case vp8.ID():
			left = false
		case h264.ID():
			stays = p.Publisher
		}
	}
	if !left || !stays {
		t.Errorf("after Stop of %d: participants %+v", vp8.ID(), parts)
	}
	time.Sleep(200 * time.Millisecond)
	if a, v := vp8.Packets(); a != na || v != nv {
		t.Errorf("packets still counted after Stop: %d/%d then %d/%d", na, nv, a, v)
	}
}

// subscribeAndCount subscribes to every stream of feeds in one subscription and waits until
// each track has brought 50 packets and each video track a keyframe.
func subscribeAndCount(t *testing.T, ctx context.Context, s *janus.Session, room uint64, feeds ...uint64) {
	t.Helper()
	h, err := s.Attach(ctx, janus.PluginVideoRoom, "")
	if err != nil {
		t.Fatal(err)
	}
	api, err := janus.NewAPI(janus.WebRTCOptions{LoopbackCandidates: true})
	if err != nil {
		t.Fatal(err)
	}
	p, err := janus.NewPeer(api, h, janus.PeerConfig{})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	defer func() {
		p.Close()
		h.Detach(context.Background())
		wg.Wait()
	}()
	wg.Add(1)
	go func() {
		defer wg.Done()
		for m := range h.Events() {
			if m.Janus == "trickle" {
				_ = p.AddRemoteCandidate(m.Candidate)
			}
		}
	}()

	type counts struct{ pkts, keyframes atomic.Int64 }
	var mu sync.Mutex
	byCodec := map[string][]*counts{} // "audio/opus", "video/vp8", "video/h264"
	p.PC().OnTrack(func(tr *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
		c := &counts{}
		mime := strings.ToLower(tr.Codec().MimeType)
		mu.Lock()
		byCodec[mime] = append(byCodec[mime], c)
		mu.Unlock()
		buf := make([]byte, 1600)
		var pkt rtp.Packet
		for {
			n, _, err := tr.Read(buf)
			if err != nil {
				return
			}
			if pkt.Unmarshal(buf[:n]) != nil {
				continue
			}
			c.pkts.Add(1)
			if keyframeStart(mime, pkt.Payload) {
				c.keyframes.Add(1)
			}
		}
	})
	var streams []janus.VideoRoomStream
	for _, f := range feeds {
		streams = append(streams, janus.VideoRoomStream{Feed: janus.NumID(f)})
	}
	offer, _, err := janus.VideoRoomJoinSubscriber(ctx, h, janus.NumID(room), "", streams, 0)
	if err != nil {
		t.Fatal(err)
	}
	answer, err := p.CreateAnswer(ctx, offer)
	if err != nil {
		t.Fatal(err)
	}
	if err := janus.VideoRoomStart(ctx, h, answer); err != nil {
		t.Fatal(err)
	}
	want := map[string]int{"audio/opus": 2, "video/vp8": 1, "video/h264": 1}
	waitUntil(t, 15*time.Second, "50 packets on each subscribed track and a keyframe on each video track", func() bool {
		mu.Lock()
		defer mu.Unlock()
		for mime, n := range want {
			if len(byCodec[mime]) != n {
				return false
			}
			for _, c := range byCodec[mime] {
				if c.pkts.Load() < 50 || (strings.HasPrefix(mime, "video/") && c.keyframes.Load() == 0) {
					return false
				}
			}
		}
		return true
	})
}

// keyframeStart reports whether an RTP payload of codec mime starts a keyframe.
func keyframeStart(mime string, b []byte) bool {
	switch mime {
	case "video/vp8":
		// Payload descriptor (RFC 7741), then the VP8 frame header: P bit 0 is a keyframe.
		if len(b) < 1 || b[0]&0x10 == 0 || b[0]&0x07 != 0 { // S set, partition 0
			return false
		}
		i := 1
		if b[0]&0x80 != 0 { // X
			if len(b) < 2 {
				return false
			}
			x := b[1]
			i++
			if x&0x80 != 0 { // I
				if len(b) > i && b[i]&0x80 != 0 {
					i++
				}
				i++
			}
			if x&0x40 != 0 { // L
				i++
			}
			if x&0x30 != 0 { // T or K
				i++
			}
		}
		return len(b) > i && b[i]&0x01 == 0
	case "video/h264":
		if len(b) < 2 {
			return false
		}
		switch b[0] & 0x1f {
		case 5, 7: // IDR slice, SPS
			return true
		case 24: // STAP-A: look at the aggregated NAL units
			for i := 1; i+2 < len(b); {
				size := int(b[i])<<8 | int(b[i+1])
				if t := b[i+2] & 0x1f; t == 5 || t == 7 {
					return true
				}
				i += 2 + size
			}
		case 28: // FU-A start of an IDR slice
			return b[1]&0x80 != 0 && b[1]&0x1f == 5
		}
	}
	return false
}

// waitUntil polls cond until it holds or d passes.
func waitUntil(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestPublisherOneStreamJanusKilled publishes audio only and video only, then kills Janus:
// Stop must still return promptly and reap everything (TestMain checks the goroutines).
func TestPublisherOneStreamJanusKilled(t *testing.T) {
	const room = 1234
	j := janustest.StartJanus(t, janustest.Options{
		Plugins:   []string{"videoroom"},
		VideoRoom: janustest.VideoRoomConfig(room, "vp8"),
	})
	audio := janustest.StartPublisher(t, janustest.PublisherOptions{Server: j.WSURL(), Room: room, Display: "audio", NoVideo: true})
	video := janustest.StartPublisher(t, janustest.PublisherOptions{Server: j.HTTPURL(), Room: room, Display: "video", NoAudio: true, FPS: 15})
	waitUntil(t, 10*time.Second, "packets", func() bool {
		a, v := audio.Packets()
		a2, v2 := video.Packets()
		return a >= 50 && v == 0 && a2 == 0 && v2 >= 30
	})
	j.Kill()
	start := time.Now()
	audio.Stop()
	t.Logf("Stop with Janus dead: %v", time.Since(start))
	video.Stop()
	t.Logf("two Stops with Janus dead: %v", time.Since(start))
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("Stop took %v with Janus dead", d)
	}
}
