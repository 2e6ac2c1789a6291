package sources

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/rtp"
	"github.com/pion/rtp/codecs"
	"github.com/yapingcat/gomedia/go-codec"
	rtmp "github.com/yapingcat/gomedia/go-rtmp"

	"github.com/janusbridge/janusbridge/config"
	"github.com/janusbridge/janusbridge/internal/rtmpguard"
	"github.com/janusbridge/janusbridge/media"
	"github.com/janusbridge/janusbridge/transcode"
)

// RTMPStats are the counters of an [RTMP] source.
type RTMPStats struct {
	// Publishers counts the RTMP sessions that delivered media: accepted
	// publishers (listen), or successful pulls (url).
	Publishers uint64
	// Refused counts publishers refused (wrong app or key, another one
	// publishing already) and play requests.
	Refused uint64
	// Malformed counts connections dropped for malformed RTMP/FLV input.
	Malformed uint64
	// VideoFrames and AudioFrames count the frames received; Unsupported
	// the frames of codecs other than H.264 and AAC (dropped).
	VideoFrames, AudioFrames, Unsupported uint64
	// Packets counts the RTP packets handed on.
	Packets uint64
	// Transcoder are the counters of the current AAC to Opus transcoder.
	Transcoder transcode.Stats
	// Publishing tells whether a publisher (or a pull) delivers now.
	Publishing bool
}

// RTMP is a [media.Source] fed by RTMP: it accepts one publisher at a
// time at rtmp://<listen>/<app>/<key> (e.g. OBS; other apps and keys are
// refused), or pulls a URL (rtmp:// or rtmps://), reconnecting with
// backoff. H.264 passes through (packetized for RTP, timestamps from the
// RTMP presentation times); AAC is transcoded to 48 kHz Opus. Its tracks
// are fixed: video (H.264) then audio (Opus). Between publishers, Run goes
// on without packets, and the RTP timestamps of the next publisher follow
// the wall clock from the previous one's, so the Janus side stays joined.
type RTMP struct {
	cfg   *config.Source
	log   *slog.Logger
	born  time.Time
	track []media.Track

	publishers, refused, malformed        atomic.Uint64
	videoFrames, audioFrames, unsupported atomic.Uint64
	packets                               atomic.Uint64
	publishing                            atomic.Bool
	tcMu                                  sync.Mutex
	tc                                    transcode.Transcoder // of the current session

	// mu serialises the PacketWriter, the playout queues and the RTP
	// state: the video comes from the connection's goroutine, the audio
	// from the transcoder's, the packets leave from the pacer's.
	mu        sync.Mutex
	w         media.PacketWriter
	wErr      error
	queue     [2][]queued
	wake      chan struct{}
	late      atomic.Uint64
	pkt       rtp.Packet
	seq       [2]uint16
	ssrc      [2]uint32
	payloader codecs.H264Payloader
}

// queued is a packet waiting for its time in the playout queue.
type queued struct {
	due     time.Time
	ts      uint32
	marker  bool
	payload []byte
}

// rtmpPlayout is the playout delay: each packet is handed on this long
// after its media time (on the wall clock of the session's first frame),
// video and audio alike. Downstream, sender reports map timestamps to
// sending time, so the same delay on both tracks keeps them aligned while
// the AAC transcoder (tens of ms, more while its child starts) delays the
// audio. rtmpMaxLate: a packet later than this (a publisher that fell
// behind) moves the session's clock instead of coming out late.
const (
	rtmpPlayout  = 200 * time.Millisecond
	rtmpMaxLate  = time.Second
	rtmpMaxQueue = 4096
	// rtmpMaxReorder bounds the reordering depth taken from a stream.
	rtmpMaxReorder = 500 * time.Millisecond
)

// Track indices of an RTMP source.
const (
	rtmpVideo = 0
	rtmpAudio = 1
)

// NewRTMP returns the RTMP source of cfg (type "rtmp").
func NewRTMP(cfg *config.Source, log *slog.Logger) (*RTMP, error) {
	if cfg.URL == "" && cfg.Listen == "" {
		return nil, errors.New("rtmp source: neither url nor listen")
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &RTMP{
		cfg:  cfg,
		log:  log.With("source", "rtmp"),
		born: time.Now(),
		track: []media.Track{
			{Index: rtmpVideo, MID: "0", Kind: "video", Codec: media.H264, ClockRate: 90000, PayloadType: 96,
				Fmtp: "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f"},
			{Index: rtmpAudio, MID: "1", Kind: "audio", Codec: media.Opus, ClockRate: 48000, Channels: 2, PayloadType: 111,
				Fmtp: "minptime=10;useinbandfec=1"},
		},
		ssrc: [2]uint32{rand.Uint32(), rand.Uint32()},
		wake: make(chan struct{}, 1),
		seq:  [2]uint16{uint16(rand.Uint32()), uint16(rand.Uint32())},
	}
	if cfg.URL != "" {
		s.log = s.log.With("url", redactURL(cfg.URL))
	} else {
		s.log = s.log.With("listen", cfg.Listen, "app", cfg.App)
	}
	return s, nil
}

// redactURL keeps an RTMP URL's scheme, host and application.
func redactURL(raw string) string {
	scheme, rest, ok := strings.Cut(raw, "://")
	if !ok {
		return "<redacted>"
	}
	if i := strings.LastIndexByte(rest[:strings.IndexByte(rest+"/", '/')], '@'); i >= 0 {
		rest = rest[i+1:]
	}
	parts := strings.SplitN(rest, "/", 3)
	out := scheme + "://" + parts[0]
	if len(parts) > 1 {
		out += "/" + strings.SplitN(parts[1], "?", 2)[0]
	}
	if len(parts) > 2 {
		out += "/<redacted>"
	}
	return out
}

// Tracks describes the source's tracks: H.264 video, then Opus audio.
func (s *RTMP) Tracks() []media.Track { return append([]media.Track(nil), s.track...) }

// RequestKeyframe does nothing: RTMP has no way to ask a publisher for a
// keyframe.
func (s *RTMP) RequestKeyframe(int) {}

// Stats returns the source's counters.
func (s *RTMP) Stats() RTMPStats {
	st := RTMPStats{
		Publishers: s.publishers.Load(), Refused: s.refused.Load(), Malformed: s.malformed.Load(),
		VideoFrames: s.videoFrames.Load(), AudioFrames: s.audioFrames.Load(), Unsupported: s.unsupported.Load(),
		Packets: s.packets.Load(), Publishing: s.publishing.Load(),
	}
	s.tcMu.Lock()
	if s.tc != nil {
		st.Transcoder = s.tc.Stats()
	}
	s.tcMu.Unlock()
	return st
}

// Run accepts publishers (listen) or pulls the URL until ctx ends (nil),
// w fails (its error) or the listener cannot be opened.
func (s *RTMP) Run(ctx context.Context, w media.PacketWriter) error {
	s.mu.Lock()
	s.w, s.wErr = w, nil
	s.mu.Unlock()
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var pacer sync.WaitGroup
	pacer.Go(func() { s.pace(ctx, cancel) })
	var err error
	if s.cfg.URL != "" {
		err = s.pull(ctx, cancel)
	} else {
		err = s.listen(ctx, cancel)
	}
	cancel(nil)
	pacer.Wait()
	s.mu.Lock()
	s.queue = [2][]queued{}
	s.mu.Unlock()
	if err != nil {
		return err
	}
	if err := context.Cause(ctx); !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	return nil
}

// rtmpIdle is how long a publisher may send nothing before it is dropped;
// rtmpPullIdle is the same for a pull, which then plays again (a server
// keeps a player whose stream ended, or never began, waiting).
const (
	rtmpIdle     = 10 * time.Second
	rtmpPullIdle = 3 * time.Second
)

// listen accepts publishers, one at a time, until ctx ends.
func (s *RTMP) listen(ctx context.Context, cancel context.CancelCauseFunc) error {
	ln, err := net.Listen("tcp", s.cfg.Listen)
	if err != nil {
		return fmt.Errorf("rtmp source: %w", err)
	}
	s.log.Info("rtmp source listening")
	var wg sync.WaitGroup
	stop := context.AfterFunc(ctx, func() { ln.Close() })
	defer stop()
	var active atomic.Bool // a publisher is accepted
	var conns sync.Map     // open connections, closed when ctx ends
	for {
		c, err := ln.Accept()
		if err != nil {
			break
		}
		conns.Store(c, true)
		wg.Go(func() {
			defer conns.Delete(c)
			s.serve(ctx, cancel, c, &active)
		})
	}
	conns.Range(func(c, _ any) bool { c.(net.Conn).Close(); return true })
	wg.Wait()
	return nil
}

// serve runs one incoming connection.
func (s *RTMP) serve(ctx context.Context, cancel context.CancelCauseFunc, c net.Conn, active *atomic.Bool) {
	defer c.Close()
	stop := context.AfterFunc(ctx, func() { c.Close() })
	defer stop()
	remote := c.RemoteAddr().String()
	in := s.newIngest(cancel)
	defer in.close()
	var mine bool // this connection holds the publisher slot
	defer func() {
		if mine {
			active.Store(false)
			s.publishing.Store(false)
			s.log.Info("rtmp publisher gone", "remote", remote)
		}
	}()
	h := s.serverHandle(remote, active, &mine, in, func(b []byte) error {
		c.SetWriteDeadline(time.Now().Add(rtmpIdle))
		_, err := c.Write(b)
		return err
	})
	var guard rtmpguard.Guard
	buf := make([]byte, 16384)
	for {
		c.SetReadDeadline(time.Now().Add(rtmpIdle))
		n, err := c.Read(buf)
		if err != nil {
			return
		}
		if err := serverInput(&guard, h, buf[:n]); err != nil {
			s.malformed.Add(1)
			s.log.Warn("rtmp connection dropped: malformed input", "remote", remote, "err", err)
			return
		}
		switch h.GetState() {
		case rtmp.STATE_RTMP_PUBLISH_FAILED, rtmp.STATE_RTMP_PLAY_FAILED, rtmp.STATE_RTMP_PLAY_START:
			return // refused: the status went out, hang up
		}
	}
}

// serverHandle returns gomedia's server side of one incoming connection:
// a publish to the configured app and key takes the publisher slot
// (active; *mine tells this connection holds it), anything else is
// refused, and the frames of an accepted publish go to in.
func (s *RTMP) serverHandle(remote string, active *atomic.Bool, mine *bool, in *ingest, output func([]byte) error) *rtmp.RtmpServerHandle {
	h := rtmp.NewRtmpServerHandle()
	h.SetOutput(output)
	h.OnPublish(func(app, name string) rtmp.StatusCode {
		key, _, _ := strings.Cut(name, "?")
		if app != s.cfg.App || key != s.cfg.Key {
			s.refused.Add(1)
			s.log.Warn("rtmp publisher refused: wrong app or key", "remote", remote, "app", app)
			return rtmp.NETSTREAM_CONNECT_REJECTED
		}
		if !active.CompareAndSwap(false, true) {
			s.refused.Add(1)
			s.log.Warn("rtmp publisher refused: another one is publishing", "remote", remote)
			return rtmp.NETSTREAM_CONNECT_REJECTED
		}
		*mine = true
		s.publishers.Add(1)
		s.publishing.Store(true)
		s.log.Info("rtmp publisher accepted", "remote", remote)
		return rtmp.NETSTREAM_PUBLISH_START
	})
	h.OnPlay(func(app, name string, start, dur float64, reset bool) rtmp.StatusCode {
		s.refused.Add(1)
		s.log.Warn("rtmp play request refused: this is a publish point", "remote", remote)
		return rtmp.NETSTREAM_PLAY_FAILED
	})
	h.OnFrame(func(cid codec.CodecID, pts, dts uint32, frame []byte) {
		if *mine { // media before an accepted publish is ignored
			in.frame(cid, pts, dts, frame)
		}
	})
	return h
}

// serverInput feeds a publisher's bytes to gomedia's server handle, after
// the guard (gomedia spins forever on some malformed input), turning its
// panics on malformed input into errors.
func serverInput(g *rtmpguard.Guard, h *rtmp.RtmpServerHandle, b []byte) (err error) {
	if err := g.Check(b); err != nil {
		return err
	}
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("rtmp: %v", r)
		}
	}()
	return h.Input(b)
}

// clientInput is serverInput for gomedia's client.
func clientInput(g *rtmpguard.Guard, c *rtmp.RtmpClient, b []byte) (err error) {
	if err := g.Check(b); err != nil {
		return err
	}
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("rtmp: %v", r)
		}
	}()
	return c.Input(b)
}

// pull plays the URL, reconnecting with backoff, until ctx ends.
func (s *RTMP) pull(ctx context.Context, cancel context.CancelCauseFunc) error {
	const minBackoff, maxBackoff = 250 * time.Millisecond, 5 * time.Second
	backoff := minBackoff
	lastErr := ""
	for ctx.Err() == nil {
		began := time.Now()
		err := s.pullOnce(ctx, cancel)
		if ctx.Err() != nil {
			break
		}
		if time.Since(began) > 10*time.Second {
			backoff = minBackoff
		}
		if err.Error() != lastErr {
			s.log.Warn("rtmp pull failed, retrying", "err", err, "in", backoff)
			lastErr = err.Error()
		}
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
		case <-t.C:
		}
		backoff = min(2*backoff, maxBackoff)
	}
	return nil
}

// pullOnce plays the URL once, until the connection fails or ctx ends.
func (s *RTMP) pullOnce(ctx context.Context, cancel context.CancelCauseFunc) error {
	conn, err := dialRTMP(ctx, s.cfg.URL)
	if err != nil {
		return err
	}
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	in := s.newIngest(cancel)
	defer in.close()
	c := rtmp.NewRtmpClient(rtmp.WithComplexHandshake())
	c.SetOutput(func(b []byte) error {
		conn.SetWriteDeadline(time.Now().Add(rtmpIdle))
		_, err := conn.Write(b)
		return err
	})
	var playing bool
	defer func() {
		if playing {
			s.publishing.Store(false)
			s.log.Info("rtmp pull ended")
		}
	}()
	var status string
	c.OnStatus(func(code, level, desc string) { status = code })
	// A server may accept the play of a stream nobody publishes (yet): the
	// pull counts as playing from its first frame.
	c.OnFrame(func(cid codec.CodecID, pts, dts uint32, frame []byte) {
		if !playing {
			playing = true
			s.publishers.Add(1)
			s.publishing.Store(true)
			s.log.Info("rtmp pull playing")
		}
		in.frame(cid, pts, dts, frame)
	})
	u := s.cfg.URL
	if strings.HasPrefix(u, "rtmps://") {
		u = "rtmp://" + strings.TrimPrefix(u, "rtmps://")
	}
	if strings.Count(u, "/") < 4 {
		return errors.New("rtmp source: url needs an application and a stream name")
	}
	c.Start(u)
	var guard rtmpguard.Guard
	buf := make([]byte, 16384)
	for {
		conn.SetReadDeadline(time.Now().Add(rtmpPullIdle))
		n, err := conn.Read(buf)
		if err != nil {
			return fmt.Errorf("rtmp pull: %w", err)
		}
		if err := clientInput(&guard, c, buf[:n]); err != nil {
			s.malformed.Add(1)
			return fmt.Errorf("rtmp pull: malformed input: %w", err)
		}
		if c.GetState() == rtmp.STATE_RTMP_PLAY_FAILED {
			return fmt.Errorf("rtmp pull: play refused: %s", status)
		}
	}
}

// dialRTMP connects to the host of an rtmp:// or rtmps:// URL (default
// ports 1935 and 443).
func dialRTMP(ctx context.Context, raw string) (net.Conn, error) {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "rtmp" && u.Scheme != "rtmps") || u.Host == "" {
		return nil, errors.New("rtmp source: url must be rtmp:// or rtmps://")
	}
	host := u.Host
	if u.Port() == "" {
		port := "1935"
		if u.Scheme == "rtmps" {
			port = "443"
		}
		host = net.JoinHostPort(u.Hostname(), port)
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if u.Scheme == "rtmps" {
		d := tls.Dialer{Config: &tls.Config{ServerName: u.Hostname()}}
		c, err := d.DialContext(ctx, "tcp", host)
		if err != nil {
			return nil, fmt.Errorf("rtmp source: %w", err)
		}
		return c, nil
	}
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", host)
	if err != nil {
		return nil, fmt.Errorf("rtmp source: %w", err)
	}
	return c, nil
}

// ingest turns one RTMP session's frames into RTP: its timestamps start
// where the wall clock says, relative to the source's birth, so that
// successive sessions continue one timeline.
type ingest struct {
	s       *RTMP
	cancel  context.CancelCauseFunc
	origin  time.Duration // session start on the source's timeline
	wall    time.Time     // and on the wall clock (moved by late packets; s.mu)
	first   int64         // RTMP time (ms) of the session's first frame
	began   bool
	tc      transcode.Transcoder
	bad     bool          // the transcoder could not start
	reorder time.Duration // largest presentation delay (pts - dts) of the video
}

func (s *RTMP) newIngest(cancel context.CancelCauseFunc) *ingest {
	return &ingest{s: s, cancel: cancel}
}

// at returns the source-timeline time of an RTMP time in ms.
func (in *ingest) at(ms uint32) time.Duration {
	if !in.began {
		in.s.mu.Lock()
		in.began, in.first, in.origin, in.wall = true, int64(ms), time.Since(in.s.born), time.Now()
		in.s.mu.Unlock()
	}
	return in.origin + time.Duration(int64(ms)-in.first)*time.Millisecond
}

// frame takes a frame from gomedia (on the connection's goroutine).
func (in *ingest) frame(cid codec.CodecID, pts, dts uint32, frame []byte) {
	s := in.s
	switch cid {
	case codec.CODECID_VIDEO_H264:
		s.videoFrames.Add(1)
		// B-frames: pictures go out in decoding order, each at its
		// decoding time plus the stream's reordering depth (the largest
		// presentation delay seen), so that none leaves before its
		// presentation time.
		if cts := time.Duration(int32(pts-dts)) * time.Millisecond; cts > in.reorder && cts < rtmpMaxReorder {
			in.reorder = cts
		}
		s.writeVideo(in, in.at(pts), in.at(dts)+in.reorder, frame)
	case codec.CODECID_AUDIO_AAC:
		s.audioFrames.Add(1)
		at := in.at(pts)
		if in.tc == nil && !in.bad {
			tc, err := transcode.NewAACToOpus(transcode.Config{Output: func(p transcode.Packet) { s.writeOpus(in, p) }, Logger: s.log})
			if err != nil {
				in.bad = true
				s.log.Error("rtmp source: no AAC transcoder, audio dropped", "err", err)
				return
			}
			in.tc = tc
			s.tcMu.Lock()
			s.tc = tc
			s.tcMu.Unlock()
		}
		if in.tc != nil {
			in.tc.Write(at, frame)
		}
	default:
		s.unsupported.Add(1)
	}
}

// close ends the session's transcoder (its last packets go out).
func (in *ingest) close() {
	if in.tc != nil {
		in.tc.Close()
		in.s.tcMu.Lock()
		if in.s.tc == in.tc {
			in.s.tc = nil
		}
		in.s.tcMu.Unlock()
	}
}

// rtmpMTU is the largest RTP payload the source makes.
const rtmpMTU = 1200

// due returns when a packet of media time at leaves; s.mu is held.
func (in *ingest) due(at time.Duration, now time.Time) time.Time {
	d := in.wall.Add(at - in.origin + rtmpPlayout)
	if late := now.Sub(d); late > rtmpMaxLate {
		in.wall = in.wall.Add(late)
		d = now
	}
	return d
}

// writeVideo packetizes an Annex-B access unit (presentation time pts,
// decoding time dts) and queues it: it leaves in decoding order, stamped
// with its presentation time.
func (s *RTMP) writeVideo(in *ingest, pts, dts time.Duration, au []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	payloads := s.payloader.Payload(rtmpMTU, au)
	ts := uint32(int64(pts) * 90000 / int64(time.Second))
	due := in.due(dts, time.Now())
	for i, p := range payloads {
		s.enqueue(rtmpVideo, queued{due: due, ts: ts, marker: i == len(payloads)-1, payload: p})
	}
}

// writeOpus queues an Opus packet from the transcoder.
func (s *RTMP) writeOpus(in *ingest, p transcode.Packet) {
	s.mu.Lock()
	defer s.mu.Unlock()
	// Rounded: the PTS of 20 ms steps are whole samples give or take a
	// nanosecond.
	ts := uint32((int64(p.PTS)*48000 + int64(time.Second)/2) / int64(time.Second))
	s.enqueue(rtmpAudio, queued{due: in.due(p.PTS, time.Now()), ts: ts, marker: true, payload: append([]byte(nil), p.Data...)})
}

// enqueue adds a packet to its track's playout queue (in due order per
// track); s.mu is held.
func (s *RTMP) enqueue(track int, q queued) {
	if len(s.queue[track]) >= rtmpMaxQueue {
		s.late.Add(1)
		return
	}
	s.queue[track] = append(s.queue[track], q)
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// pace hands on the queued packets at their due times, the earliest of
// the two tracks' heads first, until ctx ends.
func (s *RTMP) pace(ctx context.Context, cancel context.CancelCauseFunc) {
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		wait := time.Hour
		s.mu.Lock()
		track := -1
		for i := range s.queue {
			if len(s.queue[i]) > 0 && (track < 0 || s.queue[i][0].due.Before(s.queue[track][0].due)) {
				track = i
			}
		}
		if track >= 0 {
			q := s.queue[track][0]
			if wait = time.Until(q.due); wait <= 0 {
				s.queue[track][0] = queued{}
				s.queue[track] = s.queue[track][1:]
				s.emit(cancel, track, q.ts, q.marker, q.payload)
				s.mu.Unlock()
				continue
			}
		}
		s.mu.Unlock()
		timer.Reset(wait)
		select {
		case <-ctx.Done():
			return
		case <-s.wake:
		case <-timer.C:
		}
	}
}

// emit writes one RTP packet; s.mu is held. A writer error ends Run.
func (s *RTMP) emit(cancel context.CancelCauseFunc, track int, ts uint32, marker bool, payload []byte) {
	if s.w == nil || s.wErr != nil {
		return
	}
	s.pkt.Header = rtp.Header{Version: 2, Marker: marker, PayloadType: s.track[track].PayloadType,
		SequenceNumber: s.seq[track], Timestamp: ts, SSRC: s.ssrc[track]}
	s.pkt.Payload = payload
	s.seq[track]++
	if err := s.w(track, &s.pkt); err != nil {
		s.wErr = err
		cancel(err)
		return
	}
	s.packets.Add(1)
}
