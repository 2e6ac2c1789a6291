package janustest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"

	"github.com/janusbridge/janusbridge/janus"
)

// publisherConnectTimeout bounds how long StartPublisher waits for the PeerConnection to be up
// (ICE and DTLS on our side, "webrtcup" from Janus).
const publisherConnectTimeout = 15 * time.Second

// publisherMediaTimeout bounds how long StartPublisher waits for ffmpeg's first packet of each
// stream.
const publisherMediaTimeout = 10 * time.Second

// publisherStopTimeout bounds the Janus requests of Publisher.Stop (unpublish, leave, detach,
// destroy), so that a dead or frozen Janus cannot hang a test's cleanup.
const publisherStopTimeout = 3 * time.Second

// PublisherOptions configures StartPublisher.
type PublisherOptions struct {
	// Server is the Janus API URL (ws:// or http://), e.g. Janus.WSURL() or Janus.HTTPURL().
	Server string
	// APISecret is Janus's api_secret, when it has one.
	APISecret string
	// Room is the VideoRoom room to publish in (e.g. one made by VideoRoomConfig).
	Room uint64
	// Display is the publisher's display name in the room.
	Display string
	// VideoCodec is "vp8" (the default) or "h264" (libx264 constrained baseline, packetization
	// mode 1); leave it empty with NoVideo.
	VideoCodec string
	// NoVideo publishes no video stream.
	NoVideo bool
	// NoAudio publishes no audio (Opus) stream.
	NoAudio bool
	// FPS is the video frame rate; 0 means 25. A keyframe is sent every second: ffmpeg's RTP
	// output ignores keyframe requests, so PLIs from Janus are not acted on.
	FPS int
	// SyncMarker sends a black picture and silence, except for the first 200 ms of every
	// second, when the picture is white and a 1 kHz beep sounds (as FeedOptions.SyncMarker).
	SyncMarker bool
}

// Publisher is a VideoRoom publisher made of a pion PeerConnection fed by an ffmpeg test
// source, started by StartPublisher. ffmpeg 5.1 cannot publish WebRTC itself: it sends plain
// RTP to local UDP sockets, and the Publisher forwards each packet to its WebRTC track (pion
// rewrites SSRC and payload type).
type Publisher struct {
	opts       PublisherOptions
	videoCodec string // "vp8" or "h264"; "" with NoVideo
	stderrPath string
	args       []string

	session *janus.Session
	handle  *janus.Handle
	peer    *janus.Peer
	id      uint64
	joined  bool
	publish bool

	audioConn, videoConn *net.UDPConn
	audioPkts, videoPkts atomic.Uint64

	cmd      *exec.Cmd
	cmdDone  chan struct{} // closed when ffmpeg has been reaped
	webrtcUp chan struct{} // closed on Janus's "webrtcup"
	upOnce   sync.Once
	pcState  chan webrtc.PeerConnectionState // connected or failed, first one only

	mu      sync.Mutex
	hangup  string // reason of a "hangup" event from Janus
	stopped bool

	stopOnce sync.Once
	wg       sync.WaitGroup // UDP readers, the handle's event router, the ffmpeg reaper
}

// StartPublisher joins o.Room as a publisher, publishes Opus audio and VP8 or H.264 video
// from an ffmpeg test source (testsrc2 and a 440 Hz tone, or the sync marker) over a pion
// PeerConnection with loopback candidates, and returns once Janus reports the PeerConnection
// up (within 15 s) and the first packet of each stream has been sent. It fails the test
// otherwise. The publisher is stopped in t.Cleanup; if the test failed, the cleanup logs
// ffmpeg's command line and stderr. It skips the test (fails it in CI) when ffmpeg is missing.
func StartPublisher(t testing.TB, o PublisherOptions) *Publisher {
	t.Helper()
	bin, err := exec.LookPath("ffmpeg")
	if err != nil {
		unusable(t, "ffmpeg not installed")
	}
	p := &Publisher{
		opts:       o,
		stderrPath: filepath.Join(t.TempDir(), "ffmpeg.stderr"),
		webrtcUp:   make(chan struct{}),
		pcState:    make(chan webrtc.PeerConnectionState, 1),
	}
	switch {
	case o.NoVideo && o.NoAudio:
		t.Fatalf("janustest: StartPublisher: NoVideo and NoAudio: nothing to publish")
	case o.NoVideo:
		if o.VideoCodec != "" {
			t.Fatalf("janustest: StartPublisher: VideoCodec %q with NoVideo", o.VideoCodec)
		}
	default:
		switch c := strings.ToLower(o.VideoCodec); c {
		case "", "vp8":
			p.videoCodec = "vp8"
		case "h264":
			p.videoCodec = "h264"
		default:
			t.Fatalf("janustest: StartPublisher: unsupported video codec %q (want vp8 or h264)", o.VideoCodec)
		}
	}
	if o.Server == "" {
		t.Fatalf("janustest: StartPublisher: no Server")
	}
	t.Cleanup(func() {
		p.Stop()
		if args := p.Args(); t.Failed() && args != nil {
			t.Logf("janustest: publisher %q: ffmpeg %s\nstderr:\n%s", o.Display, strings.Join(args, " "), p.Stderr())
		}
	})
	ports := FreeUDPPorts(t, 2) // video, audio
	if err := p.start(bin, ports[0], ports[1]); err != nil {
		t.Fatalf("janustest: StartPublisher %q in room %d: %v", o.Display, o.Room, err)
	}
	return p
}

// start does the work of StartPublisher; Stop undoes whatever part of it was done.
func (p *Publisher) start(ffmpeg string, videoPort, audioPort int) error {
	o := p.opts
	ctx, cancel := context.WithTimeout(context.Background(), 2*publisherConnectTimeout)
	defer cancel()

	// The sockets ffmpeg sends to, read from the start; nothing arrives before ffmpeg runs.
	var feed FeedOptions
	if p.videoCodec != "" {
		c, err := listenRTP(videoPort)
		if err != nil {
			return fmt.Errorf("video socket: %w", err)
		}
		p.videoConn, feed.VideoPort, feed.VideoCodec = c, videoPort, p.videoCodec
	}
	if !o.NoAudio {
		c, err := listenRTP(audioPort)
		if err != nil {
			return fmt.Errorf("audio socket: %w", err)
		}
		p.audioConn, feed.AudioPort = c, audioPort
	}
	feed.FPS, feed.SyncMarker = o.FPS, o.SyncMarker
	args, err := feedArgs(feed)
	if err != nil {
		return err
	}

	// Janus side: session, handle, join.
	p.session, err = janus.Connect(ctx, janus.Options{
		Servers:        []string{o.Server},
		APISecret:      o.APISecret,
		RequestTimeout: 10 * time.Second,
	})
	if err != nil {
		return err
	}
	p.handle, err = p.session.Attach(ctx, janus.PluginVideoRoom, "")
	if err != nil {
		return err
	}
	api, err := janus.NewAPI(janus.WebRTCOptions{LoopbackCandidates: true})
	if err != nil {
		return err
	}
	p.peer, err = janus.NewPeer(api, p.handle, janus.PeerConfig{})
	if err != nil {
		return err
	}
	p.peer.PC().OnConnectionStateChange(func(s webrtc.PeerConnectionState) {
		if s == webrtc.PeerConnectionStateConnected || s == webrtc.PeerConnectionStateFailed {
			select {
			case p.pcState <- s:
			default: // only the first one matters
			}
		}
	})
	p.wg.Add(1)
	go p.routeEvents(p.handle, p.peer)

	joined, err := janus.VideoRoomJoinPublisher(ctx, p.handle, janus.NumID(o.Room), o.Display, "")
	if err != nil {
		return err
	}
	p.mu.Lock()
	p.joined, p.id = true, joined.ID.Uint64()
	p.mu.Unlock()

	// Tracks, offer, publish.
	var audio, video *webrtc.TrackLocalStaticRTP
	if p.videoConn != nil {
		c := webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP8, ClockRate: 90000}
		if p.videoCodec == "h264" {
			c = webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeH264, ClockRate: 90000,
				SDPFmtpLine: "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f"}
		}
		if video, err = webrtc.NewTrackLocalStaticRTP(c, "video", "janustest"); err != nil {
			return err
		}
		if _, err := p.peer.AddTrack(video, webrtc.RTPTransceiverDirectionSendonly); err != nil {
			return err
		}
	}
	if p.audioConn != nil {
		c := webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus, ClockRate: 48000, Channels: 2}
		if audio, err = webrtc.NewTrackLocalStaticRTP(c, "audio", "janustest"); err != nil {
			return err
		}
		if _, err := p.peer.AddTrack(audio, webrtc.RTPTransceiverDirectionSendonly); err != nil {
			return err
		}
	}
	offer, err := p.peer.CreateOffer(ctx, janus.OfferOptions{})
	if err != nil {
		return err
	}
	req := janus.VideoRoomPublishRequest{VideoCodec: p.videoCodec}
	if audio != nil {
		req.AudioCodec = "opus"
	}
	answer, err := janus.VideoRoomPublish(ctx, p.handle, req, offer)
	if err != nil {
		return err
	}
	p.mu.Lock()
	p.publish = true
	p.mu.Unlock()
	if err := p.peer.HandleRemoteJSEP(ctx, answer); err != nil {
		return err
	}
	if err := p.waitUp(); err != nil {
		return err
	}

	// Media: only now, so that the first packets (and keyframe) go to Janus, not into a track
	// that is not bound yet.
	if video != nil {
		p.wg.Add(1)
		go p.forward(p.videoConn, video, &p.videoPkts)
	}
	if audio != nil {
		p.wg.Add(1)
		go p.forward(p.audioConn, audio, &p.audioPkts)
	}
	if err := p.startFFmpeg(ffmpeg, args); err != nil {
		return err
	}
	return p.waitMedia()
}

// listenRTP opens a UDP socket on 127.0.0.1:port for ffmpeg's RTP.
func listenRTP(port int) (*net.UDPConn, error) {
	c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: port})
	if err != nil {
		return nil, err
	}
	_ = c.SetReadBuffer(1 << 20)
	return c, nil
}

// routeEvents feeds Janus's trickled candidates to the Peer and notes "webrtcup" and
// "hangup", until the handle's events end (Detach or session closed).
func (p *Publisher) routeEvents(h *janus.Handle, peer *janus.Peer) {
	defer p.wg.Done()
	for m := range h.Events() {
		switch m.Janus {
		case "trickle":
			_ = peer.AddRemoteCandidate(m.Candidate) // an error only after Close, or a bad candidate Janus would not send
		case "webrtcup":
			p.upOnce.Do(func() { close(p.webrtcUp) })
		case "hangup":
			p.mu.Lock()
			p.hangup = m.Reason
			p.mu.Unlock()
		}
	}
}

// waitUp waits until our PeerConnection is connected and Janus has sent "webrtcup".
func (p *Publisher) waitUp() error {
	timer := time.NewTimer(publisherConnectTimeout)
	defer timer.Stop()
	connected := false
	up := false
	webrtcUp := p.webrtcUp
	for !connected || !up {
		select {
		case s := <-p.pcState:
			if s != webrtc.PeerConnectionStateConnected {
				return fmt.Errorf("PeerConnection %s", s)
			}
			connected = true
		case <-webrtcUp:
			up = true
			webrtcUp = nil // closed: receive from it no more
		case <-p.handle.Done():
			return fmt.Errorf("handle gone before the PeerConnection was up: %v", p.handle.Err())
		case <-timer.C:
			p.mu.Lock()
			hangup := p.hangup
			p.mu.Unlock()
			return fmt.Errorf("PeerConnection not up after %v (pion state %s, webrtcup from Janus %t, hangup %q)",
				publisherConnectTimeout, p.peer.PC().ConnectionState(), up, hangup)
		}
	}
	return nil
}

// forward reads ffmpeg's RTP from c and writes each packet to track until c is closed.
func (p *Publisher) forward(c *net.UDPConn, track *webrtc.TrackLocalStaticRTP, n *atomic.Uint64) {
	defer p.wg.Done()
	buf := make([]byte, 1600)
	var pkt rtp.Packet
	for {
		size, _, err := c.ReadFromUDP(buf)
		if err != nil {
			return // closed by Stop
		}
		if err := pkt.Unmarshal(buf[:size]); err != nil {
			continue
		}
		if err := track.WriteRTP(&pkt); err != nil {
			continue // the PeerConnection is closing
		}
		n.Add(1)
	}
}

// startFFmpeg starts ffmpeg with the feed arguments and a goroutine that reaps it.
func (p *Publisher) startFFmpeg(bin string, feedArgs []string) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.stopped {
		return errors.New("stopped")
	}
	p.args = append([]string{"-nostdin", "-hide_banner", "-loglevel", "error"}, feedArgs...)
	stderr, err := os.Create(p.stderrPath)
	if err != nil {
		return err
	}
	cmd := externalCommand(bin, p.args...)
	cmd.Dir = filepath.Dir(p.stderrPath)
	cmd.Stderr = stderr // an *os.File: no copying goroutine
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	err = cmd.Start()
	stderr.Close()
	if err != nil {
		return fmt.Errorf("starting ffmpeg: %w", err)
	}
	p.cmd, p.cmdDone = cmd, make(chan struct{})
	done := p.cmdDone
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		_ = cmd.Wait()
		close(done)
	}()
	return nil
}

// waitMedia waits for the first packet of each stream to be sent.
func (p *Publisher) waitMedia() error {
	deadline := time.Now().Add(publisherMediaTimeout)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		a, v := p.Packets()
		if (p.audioConn == nil || a > 0) && (p.videoConn == nil || v > 0) {
			return nil
		}
		select {
		case <-p.cmdDone:
			return fmt.Errorf("ffmpeg exited (%v): %s", p.cmd.ProcessState, strings.TrimSpace(p.Stderr()))
		case <-tick.C:
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("no media from ffmpeg after %v (audio %d, video %d packets): %s",
				publisherMediaTimeout, a, v, strings.TrimSpace(p.Stderr()))
		}
	}
}

// ID returns the publisher's feed id in the room (what subscribers pass as Feed), or 0 before
// it has joined.
func (p *Publisher) ID() uint64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.id
}

// Packets returns how many RTP packets of audio and of video the publisher has written to its
// WebRTC tracks so far (sent to Janus, bar losses).
func (p *Publisher) Packets() (audio, video uint64) {
	return p.audioPkts.Load(), p.videoPkts.Load()
}

// Args is ffmpeg's command line, without the program name (nil before ffmpeg started).
func (p *Publisher) Args() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.args...)
}

// Stderr is what ffmpeg has written to stderr so far (errors only).
func (p *Publisher) Stderr() string {
	data, err := os.ReadFile(p.stderrPath)
	if err != nil {
		return fmt.Sprintf("(cannot read %s: %v)", p.stderrPath, err)
	}
	return string(data)
}

// Stop unpublishes and leaves the room (best effort, bounded: Janus may be gone), kills and
// reaps ffmpeg, closes the PeerConnection, detaches the handle, destroys the session and waits
// for every goroutine of the publisher. It is idempotent and also runs in t.Cleanup.
func (p *Publisher) Stop() {
	p.stopOnce.Do(p.stop)
}

func (p *Publisher) stop() {
	p.mu.Lock()
	p.stopped = true
	joined, published, cmd, cmdDone := p.joined, p.publish, p.cmd, p.cmdDone
	p.mu.Unlock()

	ctx, cancel := context.WithTimeout(context.Background(), publisherStopTimeout)
	defer cancel()
	if p.handle != nil && p.handle.Err() == nil {
		if published {
			_ = janus.VideoRoomUnpublish(ctx, p.handle)
		}
		if joined {
			_ = janus.VideoRoomLeave(ctx, p.handle)
		}
	}
	if cmd != nil {
		_ = cmd.Process.Kill()
		<-cmdDone
	}
	for _, c := range []*net.UDPConn{p.videoConn, p.audioConn} {
		if c != nil {
			c.Close()
		}
	}
	if p.peer != nil {
		_ = p.peer.Close()
	}
	if p.handle != nil {
		_ = p.handle.Detach(ctx)
	}
	if p.session != nil {
		_ = p.session.Close(ctx)
	}
	p.wg.Wait()
}
