package bench

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/pion/webrtc/v4"
	"github.com/pion/webrtc/v4/pkg/media"
	"github.com/pion/webrtc/v4/pkg/media/ivfreader"
	"github.com/pion/webrtc/v4/pkg/media/oggreader"

	"github.com/janusbridge/janusbridge/internal/janustest"
	"github.com/janusbridge/janusbridge/janus"
)

// Send scenario defaults: publishers (JB_BENCH_SENDERS overrides) and the
// length of the clip they loop.
const (
	defaultSenders   = 20
	sendClipSeconds  = 10
	sendRoom         = 4242
	sendFrameTime    = 40 * time.Millisecond // the clip's 25 fps
	sendAudioFrame   = 20 * time.Millisecond // libopus's default frame
	sendPayloadBytes = 1200 - 1              // the file source's MTU minus a VP8 descriptor byte
)

// BenchmarkSend is the "send" scenario: N publishers into one VideoRoom,
// each looping the same VP8+Opus clip (10 s, the feed's settings, made by
// ffmpeg at start), for janusbridge (send/streams=N: a bridge.Daemon with N
// send bridges with a `file` source, loop = true) and for a plain pion
// publisher (publisher/streams=N: per stream a PeerConnection with pion's
// default interceptors and two webrtc.TrackLocalStaticSample, fed with
// WriteSample by pion's ivfreader (VP8, the clip's video copied to IVF) and
// oggreader (Opus, copied to Ogg with a page per packet), paced by a ticker
// per track, as pion's play-from-disk example).
//
// The figures are those of BenchmarkRecv for the other direction: pps is
// the SRTP media packets the side's port range sent to Janus's media ports
// in the window (nftables, in the namespace); cpu_us_per_pkt the process's
// CPU over them; rss_mib_per_stream as for recv; delivered the packets
// over N × the clip's packet rate at the file source's packet size (pion's
// packetizer cuts 12 bytes smaller pieces, so its figure can be slightly
// above 1).
func BenchmarkSend(b *testing.B) {
	n := envInt(b, "JB_BENCH_SENDERS", defaultSenders)
	window := envDuration(b, "JB_BENCH_WINDOW", defaultWindow)
	warmup := envDuration(b, "JB_BENCH_WARMUP", defaultWarmup)
	rounds := envInt(b, "JB_BENCH_ROUNDS", defaultRounds)
	raiseFileLimit(b)

	dir := b.TempDir()
	clip := encodeClip(b, dir, sendClipSeconds)
	ivf, ogg := filepath.Join(dir, "clip.ivf"), filepath.Join(dir, "clip.ogg")
	split := exec.Command("ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error", "-i", clip,
		"-map", "0:v", "-c", "copy", "-y", ivf,
		"-map", "0:a", "-c", "copy", "-page_duration", "20000", "-y", ogg)
	if out, err := split.CombinedOutput(); err != nil {
		b.Fatalf("ffmpeg: splitting the clip: %v: %s", err, out)
	}
	clipPPS := clipRate(b, ivf)

	j := janustest.StartJanus(b, janustest.Options{
		Plugins: []string{"videoroom"},
		VideoRoom: fmt.Sprintf("room-%d: {\n\tdescription = \"bench\"\n\tpublishers = %d\n\tvideocodec = \"vp8\"\n\taudiocodec = \"opus\"\n}\n",
			sendRoom, n+5),
		DebugLevel: 3,
	})
	ports := janustest.FreeUDPPorts(b, 2) // no feed: the counter stays at 0
	nft := newCounters(b, ports[0], ports[1])
	fmt.Printf("send: a %d s VP8+Opus clip looped by each publisher, %.0f RTP packets/s each; %d publishers into a VideoRoom; %d rounds of %v after %v of warm-up per side\n",
		sendClipSeconds, clipPPS, n, rounds, window, warmup)

	sides := [2]side{
		{name: "send", counter: "send", ratioTag: "send ", start: func(b *testing.B, j *janustest.Janus, n int, _ string) (viewers, error) {
			return startDaemon(j, n, func(i int) string {
				return fmt.Sprintf("[[bridge]]\nname = \"s%03d\"\nplugin = \"videoroom\"\nroom = %d\ndisplay = \"s%03d\"\n", i, sendRoom, i) +
					fmt.Sprintf("  [bridge.source]\n  type = \"file\"\n  path = %q\n  loop = true\n", clip)
			})
		}},
		{name: "publisher", counter: "publisher", start: func(b *testing.B, j *janustest.Janus, n int, _ string) (viewers, error) {
			return startPublishers(j, n, ivf, ogg)
		}},
	}
	for i := range sides {
		sides[i].sendOnly = true
	}
	runRounds(b, j, nft, sides, n, rounds, window, warmup, func(_, _ map[string]uint64, dt time.Duration) float64 {
		return clipPPS * dt.Seconds()
	})
}

// clipRate is the RTP packet rate of the clip: 50 Opus packets a second
// plus its VP8 frames cut into sendPayloadBytes pieces.
func clipRate(b *testing.B, ivf string) float64 {
	b.Helper()
	f, err := os.Open(ivf)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	r, _, err := ivfreader.NewWith(f)
	if err != nil {
		b.Fatalf("ivfreader: %v", err)
	}
	var frames, packets int
	for {
		frame, _, err := r.ParseNextFrame()
		if err != nil {
			break
		}
		frames++
		packets += (len(frame) + sendPayloadBytes - 1) / sendPayloadBytes
	}
	if frames == 0 {
		b.Fatal("the clip has no video frames")
	}
	secs := float64(frames) * sendFrameTime.Seconds()
	return float64(packets)/secs + float64(time.Second/sendAudioFrame)
}

// publishers are n plain pion publishers on one Janus session.
type publishers struct {
	session *janus.Session
	stop    chan struct{}
	wg      sync.WaitGroup // the pacing goroutines and event readers

	mu    sync.Mutex
	peers []*janus.Peer
	hs    []*janus.Handle
	errs  []string
}

func startPublishers(j *janustest.Janus, n int, ivf, ogg string) (viewers, error) {
	api, err := plainAPI()
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second+time.Duration(n)*200*time.Millisecond)
	defer cancel()
	s, err := janus.Connect(ctx, janus.Options{Servers: []string{j.WSURL()}})
	if err != nil {
		return nil, err
	}
	p := &publishers{session: s, stop: make(chan struct{})}
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = p.startOne(ctx, api, i, ivf, ogg)
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		p.Stop()
		return nil, err
	}
	return p, nil
}

func (p *publishers) startOne(ctx context.Context, api *webrtc.API, i int, ivf, ogg string) error {
	h, err := p.session.Attach(ctx, janus.PluginVideoRoom, "")
	if err != nil {
		return err
	}
	peer, err := janus.NewPeer(api, h, janus.PeerConfig{})
	if err != nil {
		h.Detach(ctx)
		return err
	}
	p.mu.Lock()
	p.peers, p.hs = append(p.peers, peer), append(p.hs, h)
	p.mu.Unlock()
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		for m := range h.Events() {
			if m.Janus == "trickle" {
				peer.AddRemoteCandidate(m.Candidate)
			}
		}
	}()
	if _, err := janus.VideoRoomJoinPublisher(ctx, h, janus.NumID(sendRoom), fmt.Sprintf("p%03d", i), ""); err != nil {
		return err
	}
	video, err := webrtc.NewTrackLocalStaticSample(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP8, ClockRate: 90000}, "video", "bench")
	if err != nil {
		return err
	}
	audio, err := webrtc.NewTrackLocalStaticSample(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus, ClockRate: 48000, Channels: 2}, "audio", "bench")
	if err != nil {
		return err
	}
	for _, t := range []webrtc.TrackLocal{video, audio} {
		if _, err := peer.AddTrack(t, webrtc.RTPTransceiverDirectionSendonly); err != nil {
			return err
		}
	}
	offer, err := peer.CreateOffer(ctx, janus.OfferOptions{})
	if err != nil {
		return err
	}
	answer, err := janus.VideoRoomPublish(ctx, h, janus.VideoRoomPublishRequest{AudioCodec: "opus", VideoCodec: "vp8"}, offer)
	if err != nil {
		return err
	}
	if err := peer.HandleRemoteJSEP(ctx, answer); err != nil {
		return err
	}
	// Samples written before the tracks are bound go nowhere, as with any
	// pion sender: start at once.
	p.wg.Add(2)
	go func() { defer p.wg.Done(); p.loopIVF(ivf, video) }()
	go func() { defer p.wg.Done(); p.loopOgg(ogg, audio) }()
	return nil
}

// loopIVF writes the IVF file's frames to track, one every sendFrameTime,
// from the start again at its end, until Stop.
func (p *publishers) loopIVF(path string, track *webrtc.TrackLocalStaticSample) {
	tick := time.NewTicker(sendFrameTime)
	defer tick.Stop()
	for {
		f, err := os.Open(path)
		if err != nil {
			p.noteErr(err)
			return
		}
		r, _, err := ivfreader.NewWith(f)
		if err != nil {
			f.Close()
			p.noteErr(err)
			return
		}
		for {
			frame, _, err := r.ParseNextFrame()
			if err != nil {
				if !errors.Is(err, io.EOF) {
					p.noteErr(err)
				}
				break
			}
			select {
			case <-p.stop:
				f.Close()
				return
			case <-tick.C:
			}
			if err := track.WriteSample(media.Sample{Data: frame, Duration: sendFrameTime}); err != nil {
				p.noteErr(err)
			}
		}
		f.Close()
	}
}

// loopOgg writes the Ogg file's Opus packets (a page each) to track, one
// every sendAudioFrame, from the start again at its end, until Stop.
func (p *publishers) loopOgg(path string, track *webrtc.TrackLocalStaticSample) {
	tick := time.NewTicker(sendAudioFrame)
	defer tick.Stop()
	for {
		f, err := os.Open(path)
		if err != nil {
			p.noteErr(err)
			return
		}
		r, _, err := oggreader.NewWith(f)
		if err != nil {
			f.Close()
			p.noteErr(err)
			return
		}
		for {
			page, _, err := r.ParseNextPage()
			if err != nil {
				if !errors.Is(err, io.EOF) {
					p.noteErr(err)
				}
				break
			}
			if bytes.HasPrefix(page, []byte("OpusTags")) {
				continue
			}
			select {
			case <-p.stop:
				f.Close()
				return
			case <-tick.C:
			}
			if err := track.WriteSample(media.Sample{Data: page, Duration: sendAudioFrame}); err != nil {
				p.noteErr(err)
			}
		}
		f.Close()
	}
}

func (p *publishers) noteErr(err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.errs) < 5 {
		p.errs = append(p.errs, err.Error())
	}
}

func (p *publishers) Stop() error {
	close(p.stop)
	p.mu.Lock()
	peers, hs := p.peers, p.hs
	p.mu.Unlock()
	var wg sync.WaitGroup
	for i := range peers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			_ = janus.VideoRoomUnpublish(ctx, hs[i])
			peers[i].Close()
			hs[i].Detach(ctx)
		}()
	}
	wg.Wait()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err := p.session.Close(ctx)
	p.wg.Wait()
	return err
}

func (p *publishers) Notes() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.errs) == 0 {
		return ""
	}
	return fmt.Sprintf("errors: %q", p.errs)
}
