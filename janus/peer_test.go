package janus

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"
)

// The tests run two in-process Peers against each other: "client" plays
// janusbridge and "janus" plays the plugin's side. A fakeSignaller hands the
// candidates one trickles to the other's AddRemoteCandidate, as the Janus
// core and the bridge's trickle-event handling would; offers and answers
// travel through JSON like plugin messages.

// fakeSignaller forwards trickled candidates to the other Peer.
type fakeSignaller struct {
	self *Peer

	mu       sync.Mutex
	to       *Peer
	sent     int // candidates
	ends     int // end-of-candidates
	early    int // sent while self had no remote description
	failures []error
}

func (f *fakeSignaller) target() *Peer {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.self != nil && f.self.PC().RemoteDescription() == nil {
		f.early++
	}
	return f.to
}

func (f *fakeSignaller) deliver(raw []byte) {
	if err := f.target().AddRemoteCandidate(raw); err != nil && !errors.Is(err, ErrClosed) {
		f.mu.Lock()
		f.failures = append(f.failures, err)
		f.mu.Unlock()
	}
}

func (f *fakeSignaller) Trickle(_ context.Context, cands ...webrtc.ICECandidateInit) error {
	for _, c := range cands {
		raw, err := json.Marshal(c)
		if err != nil {
			return err
		}
		f.deliver(raw)
	}
	f.mu.Lock()
	f.sent += len(cands)
	f.mu.Unlock()
	return nil
}

func (f *fakeSignaller) TrickleComplete(context.Context) error {
	f.deliver([]byte(`{"completed":true}`))
	f.mu.Lock()
	f.ends++
	f.mu.Unlock()
	return nil
}

func (f *fakeSignaller) check(t *testing.T, name string) {
	t.Helper()
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.early > 0 {
		t.Errorf("%s trickled %d times before it had a remote description", name, f.early)
	}
	for _, err := range f.failures {
		t.Errorf("%s's candidate rejected: %v", name, err)
	}
}

func (f *fakeSignaller) counts() (sent, ends int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.sent, f.ends
}

func peerTestAPI(t *testing.T) *webrtc.API {
	t.Helper()
	api, err := NewAPI(WebRTCOptions{LoopbackCandidates: true, Interfaces: []string{"lo"}})
	if err != nil {
		t.Fatal(err)
	}
	return api
}

type peerPair struct {
	client, janus   *Peer
	toJanus, toPeer *fakeSignaller // client's and janus's signallers
}

// newPeerPair makes the two Peers; both are closed at the end of the test.
func newPeerPair(t *testing.T, clientCfg, janusCfg PeerConfig) *peerPair {
	t.Helper()
	api := peerTestAPI(t)
	toJanus, toClient := &fakeSignaller{}, &fakeSignaller{}
	client, err := newPeer(api, toJanus, clientCfg)
	if err != nil {
		t.Fatal(err)
	}
	janus, err := newPeer(api, toClient, janusCfg)
	if err != nil {
		client.Close()
		t.Fatal(err)
	}
	toJanus.self, toJanus.to = client, janus
	toClient.self, toClient.to = janus, client
	t.Cleanup(func() {
		client.Close()
		janus.Close()
		toJanus.check(t, "client")
		toClient.check(t, "janus")
	})
	return &peerPair{client: client, janus: janus, toJanus: toJanus, toPeer: toClient}
}

// viaJSON sends a JSEP through JSON, as a plugin message would.
func viaJSON(t *testing.T, j *JSEP) *JSEP {
	t.Helper()
	raw, err := json.Marshal(j)
	if err != nil {
		t.Fatal(err)
	}
	var out JSEP
	if err := json.Unmarshal(raw, &out); err != nil {
		t.Fatal(err)
	}
	return &out
}

// negotiatePeers runs one offer/answer round from offerer to answerer.
func negotiatePeers(t *testing.T, ctx context.Context, offerer, answerer *Peer, o OfferOptions) (offer, answer *JSEP) {
	t.Helper()
	offer, err := offerer.CreateOffer(ctx, o)
	if err != nil {
		t.Fatalf("CreateOffer: %v", err)
	}
	answer, err = answerer.CreateAnswer(ctx, viaJSON(t, offer))
	if err != nil {
		t.Fatalf("CreateAnswer: %v", err)
	}
	if err := offerer.HandleRemoteJSEP(ctx, viaJSON(t, answer)); err != nil {
		t.Fatalf("HandleRemoteJSEP: %v", err)
	}
	return offer, answer
}

func peerTestContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// rtpPump writes RTP packets on a track every few milliseconds until stopped.
type rtpPump struct {
	stop chan struct{}
	done chan struct{}
}

func startRTP(t *testing.T, track *webrtc.TrackLocalStaticRTP) *rtpPump {
	s := &rtpPump{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(s.done)
		tick := time.NewTicker(5 * time.Millisecond)
		defer tick.Stop()
		pkt := &rtp.Packet{Header: rtp.Header{Version: 2, Marker: true}, Payload: []byte{0x10, 0x02, 0x00, 0x9d, 0x01, 0x2a}}
		for i := 0; ; i++ {
			select {
			case <-s.stop:
				return
			case <-tick.C:
			}
			pkt.SequenceNumber = uint16(i)
			pkt.Timestamp = uint32(i) * 3000
			_ = track.WriteRTP(pkt) // fails only once the PeerConnection is closed
		}
	}()
	t.Cleanup(s.Stop)
	return s
}

// Stop stops the sender and waits for it; it is idempotent.
func (s *rtpPump) Stop() {
	select {
	case <-s.stop:
	default:
		close(s.stop)
	}
	<-s.done
}

// rtpCounter counts the packets of the tracks a Peer receives, by kind.
type rtpCounter struct {
	mu     sync.Mutex
	counts map[webrtc.RTPCodecType]int
	notify chan struct{}
}

func countRTP(p *Peer) *rtpCounter {
	r := &rtpCounter{counts: map[webrtc.RTPCodecType]int{}, notify: make(chan struct{}, 1)}
	p.PC().OnTrack(func(tr *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
		buf := make([]byte, 1500)
		for {
			if _, _, err := tr.Read(buf); err != nil {
				return
			}
			r.mu.Lock()
			r.counts[tr.Kind()]++
			r.mu.Unlock()
			select {
			case r.notify <- struct{}{}:
			default:
			}
		}
	})
	return r
}

func (r *rtpCounter) count(kind webrtc.RTPCodecType) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.counts[kind]
}

// waitFor waits until n more packets of kind arrived than when called.
func (r *rtpCounter) waitFor(t *testing.T, ctx context.Context, kind webrtc.RTPCodecType, n int) {
	t.Helper()
	want := r.count(kind) + n
	for r.count(kind) < want {
		select {
		case <-r.notify:
		case <-ctx.Done():
			t.Fatalf("%d of %d %s packets arrived", r.count(kind), want, kind)
		}
	}
}

func newTestTrack(t *testing.T, mime, id string) *webrtc.TrackLocalStaticRTP {
	t.Helper()
	c := webrtc.RTPCodecCapability{MimeType: mime, ClockRate: 90000}
	if mime == webrtc.MimeTypeOpus {
		c = webrtc.RTPCodecCapability{MimeType: mime, ClockRate: 48000, Channels: 2}
	}
	track, err := webrtc.NewTrackLocalStaticRTP(c, id, "janusbridge")
	if err != nil {
		t.Fatal(err)
	}
	return track
}

func hasCandidates(sdp string) bool { return strings.Contains(sdp, "a=candidate:") }

// TestPeerNegotiation covers both directions with trickle on and off on
// each side, and checks that media flows and that the JSEPs say how the
// candidates travel.
func TestPeerNegotiation(t *testing.T) {
	for _, dir := range []string{"janus offers", "client offers"} {
		for _, tc := range []struct{ clientNoTrickle, janusNoTrickle bool }{
			{false, false}, {true, false}, {false, true}, {true, true},
		} {
			name := fmt.Sprintf("%s/client-trickle=%t/janus-trickle=%t", dir, !tc.clientNoTrickle, !tc.janusNoTrickle)
			t.Run(name, func(t *testing.T) {
				ctx := peerTestContext(t)
				p := newPeerPair(t, PeerConfig{DisableTrickle: tc.clientNoTrickle}, PeerConfig{DisableTrickle: tc.janusNoTrickle})
				offerer, answerer, from, to := p.janus, p.client, p.janus, p.client
				if dir == "client offers" {
					offerer, answerer, from, to = p.client, p.janus, p.client, p.janus
				}
				if _, err := from.AddTrack(newTestTrack(t, webrtc.MimeTypeVP8, "video"), webrtc.RTPTransceiverDirectionSendonly); err != nil {
					t.Fatal(err)
				}
				rx := countRTP(to)
				startRTP(t, sendingTrack(from))
				offer, answer := negotiatePeers(t, ctx, offerer, answerer, OfferOptions{})
				for _, c := range []struct {
					what      string
					j         *JSEP
					noTrickle bool
				}{{"offer", offer, offerer.cfg.DisableTrickle}, {"answer", answer, answerer.cfg.DisableTrickle}} {
					if c.noTrickle {
						if c.j.Trickle == nil || *c.j.Trickle || !hasCandidates(c.j.SDP) {
							t.Errorf("%s without trickle: trickle=%v, candidates in SDP=%t", c.what, c.j.Trickle, hasCandidates(c.j.SDP))
						}
					} else if c.j.Trickle != nil || hasCandidates(c.j.SDP) {
						t.Errorf("%s with trickle: trickle=%v, candidates in SDP=%t", c.what, c.j.Trickle, hasCandidates(c.j.SDP))
					}
				}
				rx.waitFor(t, ctx, webrtc.RTPCodecTypeVideo, 20)
				// Every trickling side ends with an end of candidates.
				for _, s := range []struct {
					name      string
					f         *fakeSignaller
					noTrickle bool
				}{{"client", p.toJanus, tc.clientNoTrickle}, {"janus", p.toPeer, tc.janusNoTrickle}} {
					if !s.noTrickle {
						waitTrickleEnd(t, ctx, s.f, 1)
					} else if sent, ends := s.f.counts(); sent != 0 || ends != 0 {
						t.Errorf("%s trickled %d candidates and %d ends with trickle disabled", s.name, sent, ends)
					}
				}
			})
		}
	}
}

// sendingTrack returns the track of the first sender of p.
func sendingTrack(p *Peer) *webrtc.TrackLocalStaticRTP {
	for _, tr := range p.PC().GetTransceivers() {
		if s := tr.Sender(); s != nil && s.Track() != nil {
			return s.Track().(*webrtc.TrackLocalStaticRTP)
		}
	}
	return nil
}

// waitTrickleEnd waits until f has sent n ends of candidates.
func waitTrickleEnd(t *testing.T, ctx context.Context, f *fakeSignaller, n int) {
	t.Helper()
	for {
		if _, ends := f.counts(); ends >= n {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("end of candidates %d not sent", n)
		case <-time.After(5 * time.Millisecond):
		}
	}
}

// selectedPairChanges reports every change of p's selected candidate pair.
func selectedPairChanges(t *testing.T, p *Peer) <-chan *webrtc.ICECandidatePair {
	t.Helper()
	trs := p.PC().GetTransceivers()
	if len(trs) == 0 {
		t.Fatal("no transceiver")
	}
	var ice *webrtc.ICETransport
	if s := trs[0].Sender(); s != nil && s.Transport() != nil {
		ice = s.Transport().ICETransport()
	} else {
		ice = trs[0].Receiver().Transport().ICETransport()
	}
	ch := make(chan *webrtc.ICECandidatePair, 8)
	ice.OnSelectedCandidatePairChange(func(cp *webrtc.ICECandidatePair) {
		select {
		case ch <- cp:
		default:
		}
	})
	return ch
}

func iceUfrag(t *testing.T, sdp string) string {
	t.Helper()
	for _, line := range strings.Split(sdp, "\r\n") {
		if u, ok := strings.CutPrefix(line, "a=ice-ufrag:"); ok {
			return u
		}
	}
	t.Fatal("no a=ice-ufrag in SDP")
	return ""
}

// TestPeerICERestart restarts ICE by our offer (EchoTest) and by Janus's
// re-offer (Streaming watch with restart): new credentials, a new candidate
// pair, and media keeps flowing.
func TestPeerICERestart(t *testing.T) {
	for _, clientRestarts := range []bool{true, false} {
		t.Run(fmt.Sprintf("client-restarts=%t", clientRestarts), func(t *testing.T) {
			ctx := peerTestContext(t)
			p := newPeerPair(t, PeerConfig{}, PeerConfig{})
			if _, err := p.janus.AddTrack(newTestTrack(t, webrtc.MimeTypeVP8, "video"), webrtc.RTPTransceiverDirectionSendonly); err != nil {
				t.Fatal(err)
			}
			rx := countRTP(p.client)
			startRTP(t, sendingTrack(p.janus))
			negotiatePeers(t, ctx, p.janus, p.client, OfferOptions{})
			rx.waitFor(t, ctx, webrtc.RTPCodecTypeVideo, 10)
			// Let the first gathering finish on both sides, so that the
			// candidates the restart gathers are the only ones to come.
			waitTrickleEnd(t, ctx, p.toJanus, 1)
			waitTrickleEnd(t, ctx, p.toPeer, 1)
			oldUfrag := iceUfrag(t, p.client.PC().LocalDescription().SDP)
			changes := selectedPairChanges(t, p.client)

			var offer *JSEP
			if clientRestarts {
				var err error
				offer, err = p.client.RestartICE(ctx)
				if err != nil {
					t.Fatal(err)
				}
				answer, err := p.janus.CreateAnswer(ctx, viaJSON(t, offer))
				if err != nil {
					t.Fatal(err)
				}
				if err := p.client.HandleRemoteJSEP(ctx, viaJSON(t, answer)); err != nil {
					t.Fatal(err)
				}
			} else {
				offer, _ = negotiatePeers(t, ctx, p.janus, p.client, OfferOptions{ICERestart: true})
			}
			if newUfrag := iceUfrag(t, p.client.PC().LocalDescription().SDP); newUfrag == oldUfrag {
				t.Errorf("client's ufrag %q unchanged by the restart", newUfrag)
			}
			if iceUfrag(t, offer.SDP) == iceUfrag(t, p.client.PC().RemoteDescription().SDP) && clientRestarts {
				t.Errorf("answer kept the offer's ufrag")
			}
			select {
			case cp := <-changes:
				t.Logf("new pair %s", cp)
			case <-ctx.Done():
				t.Fatal("no new candidate pair after the restart")
			}
			rx.waitFor(t, ctx, webrtc.RTPCodecTypeVideo, 20)
			waitTrickleEnd(t, ctx, p.toJanus, 2)
			waitTrickleEnd(t, ctx, p.toPeer, 2)
		})
	}
}

// TestPeerRenegotiation adds a second track on the established connection,
// offered by either side, and answers a second time on a stable connection.
func TestPeerRenegotiation(t *testing.T) {
	for _, clientOffers := range []bool{true, false} {
		t.Run(fmt.Sprintf("client-offers=%t", clientOffers), func(t *testing.T) {
			ctx := peerTestContext(t)
			p := newPeerPair(t, PeerConfig{}, PeerConfig{})
			offerer, answerer := p.janus, p.client
			if clientOffers {
				offerer, answerer = p.client, p.janus
			}
			if _, err := offerer.AddTrack(newTestTrack(t, webrtc.MimeTypeVP8, "video"), webrtc.RTPTransceiverDirectionSendonly); err != nil {
				t.Fatal(err)
			}
			rx := countRTP(answerer)
			startRTP(t, sendingTrack(offerer))
			negotiatePeers(t, ctx, offerer, answerer, OfferOptions{})
			rx.waitFor(t, ctx, webrtc.RTPCodecTypeVideo, 10)

			audio := newTestTrack(t, webrtc.MimeTypeOpus, "audio")
			if _, err := offerer.AddTrack(audio, webrtc.RTPTransceiverDirectionSendonly); err != nil {
				t.Fatal(err)
			}
			startRTP(t, audio)
			offer, _ := negotiatePeers(t, ctx, offerer, answerer, OfferOptions{})
			if n := strings.Count(offer.SDP, "m="); n != 2 {
				t.Errorf("renegotiation offer has %d m-lines, want 2", n)
			}
			rx.waitFor(t, ctx, webrtc.RTPCodecTypeAudio, 20)
			rx.waitFor(t, ctx, webrtc.RTPCodecTypeVideo, 20)
		})
	}
}

// TestPeerEchoDataChannel is the EchoTest shape: the client offers a
// sendrecv track and a data channel; the other side echoes both.
func TestPeerEchoDataChannel(t *testing.T) {
	ctx := peerTestContext(t)
	p := newPeerPair(t, PeerConfig{}, PeerConfig{})

	// Janus side: echo RTP on its own sendrecv track, echo text.
	echo := newTestTrack(t, webrtc.MimeTypeVP8, "echo")
	if _, err := p.janus.AddTrack(echo, webrtc.RTPTransceiverDirectionSendrecv); err != nil {
		t.Fatal(err)
	}
	p.janus.PC().OnTrack(func(tr *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
		for {
			pkt, _, err := tr.ReadRTP()
			if err != nil {
				return
			}
			if err := echo.WriteRTP(pkt); err != nil {
				return
			}
		}
	})
	p.janus.PC().OnDataChannel(func(dc *webrtc.DataChannel) {
		dc.OnMessage(func(m webrtc.DataChannelMessage) {
			if m.IsString {
				dc.SendText(string(m.Data))
			}
		})
	})

	// Client: track and data channel before the offer.
	if _, err := p.client.AddTrack(newTestTrack(t, webrtc.MimeTypeVP8, "video"), webrtc.RTPTransceiverDirectionSendrecv); err != nil {
		t.Fatal(err)
	}
	dc, err := p.client.CreateDataChannel("JanusDataChannel", nil)
	if err != nil {
		t.Fatal(err)
	}
	echoed := make(chan string, 1)
	dc.OnOpen(func() { dc.SendText("hello janus") })
	dc.OnMessage(func(m webrtc.DataChannelMessage) {
		select {
		case echoed <- string(m.Data):
		default:
		}
	})
	rx := countRTP(p.client)
	startRTP(t, sendingTrack(p.client))
	offer, _ := negotiatePeers(t, ctx, p.client, p.janus, OfferOptions{})
	if !strings.Contains(offer.SDP, "m=application") {
		t.Error("offer without an application m-line")
	}
	select {
	case got := <-echoed:
		if got != "hello janus" {
			t.Errorf("echo = %q", got)
		}
	case <-ctx.Done():
		t.Fatal("no data channel echo")
	}
	rx.waitFor(t, ctx, webrtc.RTPCodecTypeVideo, 20)
}

// TestPeerCustomizeSDP checks that the hook edits what the other side
// receives, as offer and as answer, with and without trickle.
func TestPeerCustomizeSDP(t *testing.T) {
	const attr = "a=x-janusbridge:customized"
	customize := func(d *webrtc.SessionDescription) {
		d.SDP = strings.Replace(d.SDP, "\r\nt=0 0\r\n", "\r\nt=0 0\r\n"+attr+"\r\n", 1)
	}
	for _, clientOffers := range []bool{true, false} {
		for _, noTrickle := range []bool{false, true} {
			t.Run(fmt.Sprintf("client-offers=%t/trickle=%t", clientOffers, !noTrickle), func(t *testing.T) {
				ctx := peerTestContext(t)
				p := newPeerPair(t, PeerConfig{CustomizeSDP: customize, DisableTrickle: noTrickle}, PeerConfig{})
				offerer, answerer := p.janus, p.client
				if clientOffers {
					offerer, answerer = p.client, p.janus
				}
				if _, err := offerer.PC().AddTransceiverFromKind(webrtc.RTPCodecTypeVideo); err != nil {
					t.Fatal(err)
				}
				offer, answer := negotiatePeers(t, ctx, offerer, answerer, OfferOptions{})
				sent := answer
				if clientOffers {
					sent = offer
				}
				if !strings.Contains(sent.SDP, attr) {
					t.Errorf("JSEP sent lacks the customization:\n%s", sent.SDP)
				}
				// pion keeps the SDP it made (see PeerConfig.CustomizeSDP).
				if strings.Contains(p.client.PC().LocalDescription().SDP, attr) {
					t.Error("local description has the customization")
				}
				if !strings.Contains(p.janus.PC().RemoteDescription().SDP, attr) {
					t.Error("remote side did not see the customization")
				}
				if strings.Contains(p.janus.PC().LocalDescription().SDP, attr) {
					t.Error("customization leaked to the other side's own SDP")
				}
			})
		}
	}
}

// TestPeerEarlyRemoteCandidates feeds Janus's candidates before its offer,
// as a trickle event overtaking the offer event would.
func TestPeerEarlyRemoteCandidates(t *testing.T) {
	ctx := peerTestContext(t)
	api := peerTestAPI(t)
	var mu sync.Mutex
	var held []webrtc.ICECandidateInit
	janusSig := &funcSignaller{trickle: func(c ...webrtc.ICECandidateInit) {
		mu.Lock()
		held = append(held, c...)
		mu.Unlock()
	}}
	janus, err := newPeer(api, janusSig, PeerConfig{})
	if err != nil {
		t.Fatal(err)
	}
	defer janus.Close()
	client, err := newPeer(api, &funcSignaller{}, PeerConfig{DisableTrickle: true})
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	connected := make(chan struct{})
	var once sync.Once
	client.PC().OnICEConnectionStateChange(func(s webrtc.ICEConnectionState) {
		if s == webrtc.ICEConnectionStateConnected {
			once.Do(func() { close(connected) })
		}
	})
	if _, err := janus.PC().AddTransceiverFromKind(webrtc.RTPCodecTypeVideo); err != nil {
		t.Fatal(err)
	}
	offer, err := janus.CreateOffer(ctx, OfferOptions{})
	if err != nil {
		t.Fatal(err)
	}
	// The Janus side holds its candidates until it has our answer; take
	// them from its local description once gathered instead.
	select {
	case <-webrtc.GatheringCompletePromise(janus.PC()):
	case <-ctx.Done():
		t.Fatal("janus side gathering incomplete")
	}
	for _, line := range strings.Split(janus.PC().LocalDescription().SDP, "\r\n") {
		if c, ok := strings.CutPrefix(line, "a="); ok && strings.HasPrefix(c, "candidate:") {
			raw, _ := json.Marshal(webrtc.ICECandidateInit{Candidate: c})
			if err := client.AddRemoteCandidate(raw); err != nil {
				t.Fatalf("early candidate: %v", err)
			}
		}
	}
	if err := client.AddRemoteCandidate(json.RawMessage(`{"completed":true}`)); err != nil {
		t.Fatal(err)
	}
	answer, err := client.CreateAnswer(ctx, offer) // offer without candidates
	if err != nil {
		t.Fatal(err)
	}
	if err := janus.HandleRemoteJSEP(ctx, answer); err != nil {
		t.Fatal(err)
	}
	select {
	case <-connected:
	case <-ctx.Done():
		t.Fatal("not connected with the early candidates")
	}
}

// funcSignaller is a signaller that calls trickle, if set.
type funcSignaller struct {
	trickle func(...webrtc.ICECandidateInit)
}

func (f *funcSignaller) Trickle(_ context.Context, c ...webrtc.ICECandidateInit) error {
	if f.trickle != nil {
		f.trickle(c...)
	}
	return nil
}

func (f *funcSignaller) TrickleComplete(context.Context) error { return nil }

// TestPeerClose checks that Close is idempotent, that calls after it fail
// with ErrClosed, and that no goroutine outlives the Peers.
func TestPeerClose(t *testing.T) {
	before := runtime.NumGoroutine()
	func() {
		ctx := peerTestContext(t)
		api := peerTestAPI(t)
		toJanus, toClient := &fakeSignaller{}, &fakeSignaller{}
		client, err := newPeer(api, toJanus, PeerConfig{})
		if err != nil {
			t.Fatal(err)
		}
		janus, err := newPeer(api, toClient, PeerConfig{})
		if err != nil {
			t.Fatal(err)
		}
		toJanus.self, toJanus.to = client, janus
		toClient.self, toClient.to = janus, client
		track := newTestTrack(t, webrtc.MimeTypeVP8, "video")
		if _, err := client.AddTrack(track, webrtc.RTPTransceiverDirectionSendonly); err != nil {
			t.Fatal(err)
		}
		if _, err := client.CreateDataChannel("dc", nil); err != nil {
			t.Fatal(err)
		}
		rx := countRTP(janus)
		s := startRTP(t, track)
		negotiatePeers(t, ctx, client, janus, OfferOptions{})
		rx.waitFor(t, ctx, webrtc.RTPCodecTypeVideo, 10)
		s.Stop()
		for _, p := range []*Peer{client, janus, client} {
			if err := p.Close(); err != nil {
				t.Errorf("Close: %v", err)
			}
		}
		if _, err := client.CreateOffer(ctx, OfferOptions{}); !errors.Is(err, ErrClosed) {
			t.Errorf("CreateOffer after Close: %v, want ErrClosed", err)
		}
		if err := client.AddRemoteCandidate(json.RawMessage(`{"completed":true}`)); !errors.Is(err, ErrClosed) {
			t.Errorf("AddRemoteCandidate after Close: %v, want ErrClosed", err)
		}
		if _, err := client.AddTrack(track, webrtc.RTPTransceiverDirectionSendonly); !errors.Is(err, ErrClosed) {
			t.Errorf("AddTrack after Close: %v, want ErrClosed", err)
		}
	}()
	deadline := time.Now().Add(10 * time.Second)
	for runtime.NumGoroutine() > before {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			t.Fatalf("%d goroutines after Close, %d before:\n%s", runtime.NumGoroutine(), before, buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(10 * time.Millisecond) // polling a count: there is no event to wait on
	}
}

// TestPeerOfferSDP checks the codecs and feedback NewAPI offers.
func TestPeerOfferSDP(t *testing.T) {
	ctx := peerTestContext(t)
	p, err := newPeer(peerTestAPI(t), &funcSignaller{}, PeerConfig{})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	for _, kind := range []webrtc.RTPCodecType{webrtc.RTPCodecTypeAudio, webrtc.RTPCodecTypeVideo} {
		if _, err := p.PC().AddTransceiverFromKind(kind, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionRecvonly}); err != nil {
			t.Fatal(err)
		}
	}
	offer, err := p.CreateOffer(ctx, OfferOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"a=rtpmap:111 opus/48000/2", "a=rtpmap:0 PCMU/8000", "a=rtpmap:8 PCMA/8000",
		"a=rtpmap:96 VP8/90000", "a=rtcp-fb:96 nack\r\n", "a=rtcp-fb:96 nack pli", "a=rtcp-fb:96 ccm fir",
		"a=rtpmap:98 VP9/90000", "a=fmtp:98 profile-id=0",
		"a=fmtp:106 level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f",
		"a=fmtp:102 level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42001f",
		"a=fmtp:123 level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=640c1f",
		"a=rtpmap:45 AV1/90000",
		"urn:ietf:params:rtp-hdrext:sdes:mid",
	} {
		if !strings.Contains(offer.SDP, want) {
			t.Errorf("offer lacks %q", want)
		}
	}
	for _, unwanted := range []string{"transport-cc", "goog-remb", "rtx/90000", "packetization-mode=0", "H265", "G722", "profile-id=2"} {
		if strings.Contains(offer.SDP, unwanted) {
			t.Errorf("offer has %q", unwanted)
		}
	}
}

// TestPeerAddTrackCodec checks that a track's m-line offers only its codec.
func TestPeerAddTrackCodec(t *testing.T) {
	ctx := peerTestContext(t)
	p, err := newPeer(peerTestAPI(t), &funcSignaller{}, PeerConfig{})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	h264, err := webrtc.NewTrackLocalStaticRTP(webrtc.RTPCodecCapability{
		MimeType: webrtc.MimeTypeH264, ClockRate: 90000,
		SDPFmtpLine: "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f",
	}, "video", "s")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.AddTrack(h264, webrtc.RTPTransceiverDirectionSendonly); err != nil {
		t.Fatal(err)
	}
	if _, err := p.AddTrack(h264, webrtc.RTPTransceiverDirectionRecvonly); err == nil {
		t.Error("AddTrack recvonly: no error")
	}
	offer, err := p.CreateOffer(ctx, OfferOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(offer.SDP, "VP8") || !strings.Contains(offer.SDP, "H264/90000") {
		t.Errorf("H.264 track's offer:\n%s", offer.SDP)
	}
	h265, err := webrtc.NewTrackLocalStaticRTP(webrtc.RTPCodecCapability{MimeType: "video/H265", ClockRate: 90000}, "v2", "s")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.AddTrack(h265, webrtc.RTPTransceiverDirectionSendonly); err == nil {
		t.Error("AddTrack with an unregistered codec: no error")
	}
}

func TestPeerJSEPErrors(t *testing.T) {
	ctx := peerTestContext(t)
	p, err := newPeer(peerTestAPI(t), &funcSignaller{}, PeerConfig{})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if _, err := p.CreateAnswer(ctx, &JSEP{Type: "answer", SDP: "v=0"}); err == nil {
		t.Error("CreateAnswer with an answer: no error")
	}
	if _, err := p.CreateAnswer(ctx, nil); err == nil {
		t.Error("CreateAnswer with nil: no error")
	}
	if err := p.HandleRemoteJSEP(ctx, &JSEP{Type: "offer", SDP: "v=0"}); err == nil {
		t.Error("HandleRemoteJSEP with an offer: no error")
	}
	if _, err := NewPeer(peerTestAPI(t), nil, PeerConfig{}); err == nil {
		t.Error("NewPeer with a nil handle: no error")
	}
	canceled, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := p.CreateOffer(canceled, OfferOptions{}); !errors.Is(err, context.Canceled) {
		t.Errorf("CreateOffer with a cancelled context: %v", err)
	}
}

func TestPeerParseRemoteCandidates(t *testing.T) {
	const cand = "candidate:1 1 udp 2130706431 127.0.0.1 5000 typ host"
	for _, tc := range []struct {
		raw  string
		want []string // candidate strings; "" is end of candidates
		err  bool
	}{
		{raw: `{"completed":true}`, want: []string{""}},
		{raw: `{"sdpMid":"0","sdpMLineIndex":0,"candidate":"` + cand + `"}`, want: []string{cand}},
		{raw: ` [{"sdpMid":"0","candidate":"` + cand + `"},{"completed":true}]`, want: []string{cand, ""}},
		{raw: `{"candidate":""}`, want: []string{""}},
		{raw: ``, err: true},
		{raw: `null`, err: true},
		{raw: `{"candidate":`, err: true},
		{raw: `"candidate"`, err: true},
		{raw: `{"candidate":"1 1 udp 1 127.0.0.1 5000 typ host"}`, want: []string{"1 1 udp 1 127.0.0.1 5000 typ host"}},
		{raw: `{"candidate":5}`, err: true},
	} {
		got, err := parseRemoteCandidates(json.RawMessage(tc.raw))
		if tc.err {
			if !errors.Is(err, ErrBadMessage) {
				t.Errorf("%s: err = %v, want ErrBadMessage", tc.raw, err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: %v", tc.raw, err)
			continue
		}
		var cs []string
		for _, c := range got {
			cs = append(cs, c.Candidate)
		}
		if fmt.Sprint(cs) != fmt.Sprint(tc.want) {
			t.Errorf("%s: got %q, want %q", tc.raw, cs, tc.want)
		}
	}
}

func FuzzPeerParseRemoteCandidates(f *testing.F) {
	f.Add([]byte(`{"completed":true}`))
	f.Add([]byte(`[{"sdpMid":"0","sdpMLineIndex":0,"candidate":"candidate:1 1 udp 1 ::1 9 typ host"}]`))
	f.Fuzz(func(t *testing.T, raw []byte) {
		_, _ = parseRemoteCandidates(raw)
	})
}

func TestPeerWebRTCOptionsErrors(t *testing.T) {
	for _, tc := range []struct {
		o    WebRTCOptions
		want string
	}{
		{WebRTCOptions{UDPPortMin: 5000, UDPPortMax: 4000}, "udp_port_min: 5000 is above udp_port_max 4000"},
		{WebRTCOptions{UDPPortMin: 5000}, "udp_port_max: required when udp_port_min is set"},
		{WebRTCOptions{NAT1To1IPs: []string{"1.2.3.4", "bad"}}, `nat_1to1_ips[1]: "bad" is not an IP address`},
		{WebRTCOptions{NAT1To1IPs: []string{"1.2.3.4/x"}}, `nat_1to1_ips[0]: local address in "1.2.3.4/x" is not an IP address`},
		{WebRTCOptions{Interfaces: []string{""}}, "interfaces[0]: empty name"},
		{WebRTCOptions{ICEFailedTimeout: -time.Second}, "ice_failed_timeout: negative (-1s)"},
		{WebRTCOptions{ICEServers: []webrtc.ICEServer{{URLs: []string{"turn:turn.example.org:3478"}}}}, `ice_servers[0]: urls[0] "turn:turn.example.org:3478": username required for TURN`},
		{WebRTCOptions{ICEServers: []webrtc.ICEServer{{URLs: []string{"http://x"}}}}, `ice_servers[0]: urls[0] "http://x": `},
		{WebRTCOptions{ICEServers: []webrtc.ICEServer{{}}}, "ice_servers[0]: urls: empty"},
	} {
		_, err := NewAPI(tc.o)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: err = %v, want %q", tc.o, err, tc.want)
		}
	}
	ok := WebRTCOptions{
		ICEServers:             []webrtc.ICEServer{{URLs: []string{"stun:stun.example.org:3478"}}, {URLs: []string{"turn:turn.example.org"}, Username: "u", Credential: "p"}},
		UDPPortMin:             20000,
		UDPPortMax:             20100,
		NAT1To1IPs:             []string{"203.0.113.1", "203.0.113.2/10.0.0.2"},
		Interfaces:             []string{"eth0"},
		ICEDisconnectedTimeout: 5 * time.Second,
		ICEFailedTimeout:       10 * time.Second,
	}
	if _, err := NewAPI(ok); err != nil {
		t.Errorf("valid options: %v", err)
	}
}

// TestPeerNAT1To1 checks that a rewrite rule replaces the host candidates.
func TestPeerNAT1To1(t *testing.T) {
	ctx := peerTestContext(t)
	api, err := NewAPI(WebRTCOptions{LoopbackCandidates: true, Interfaces: []string{"lo"}, NAT1To1IPs: []string{"203.0.113.7"}})
	if err != nil {
		t.Fatal(err)
	}
	p, err := newPeer(api, &funcSignaller{}, PeerConfig{DisableTrickle: true})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if _, err := p.PC().AddTransceiverFromKind(webrtc.RTPCodecTypeAudio); err != nil {
		t.Fatal(err)
	}
	offer, err := p.CreateOffer(ctx, OfferOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(offer.SDP, " 203.0.113.7 ") || strings.Contains(offer.SDP, " 127.0.0.1 ") {
		t.Errorf("candidates not rewritten:\n%s", offer.SDP)
	}
}
