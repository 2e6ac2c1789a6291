package sinks

import (
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	rtmp "github.com/yapingcat/gomedia/go-rtmp"

	"github.com/janusbridge/janusbridge/internal/rtmpguard"
	"github.com/janusbridge/janusbridge/media"
	"github.com/janusbridge/janusbridge/transcode"
)

// RTMPConfig configures an RTMP sink.
type RTMPConfig struct {
	// Name names the sink in logs, metrics and the API.
	Name string
	// URL is rtmp://host[:port]/app/key or rtmps://...; the key is never
	// logged or shown (RedactURL).
	URL string
	// AudioBitrate is the AAC bitrate in bit/s; 0 means 128000.
	AudioBitrate int
	// Kinds selects "audio" and/or "video"; empty = both.
	Kinds []string
	// RequestKeyframe asks the bridge for a keyframe; it must not block.
	// nil = no requests.
	RequestKeyframe func()
	// Logger receives the sink's log lines; nil = discard.
	Logger *slog.Logger
	// TLS is the TLS configuration of rtmps:// (tests); nil = defaults.
	TLS *tls.Config
}

// RTMPStatus is an RTMP sink's state for the control API and the metrics.
type RTMPStatus struct {
	// URL is the configured URL with its stream key redacted.
	URL string `json:"url"`
	// State is "connecting", "publishing" or "closed".
	State string `json:"state"`
	// Bytes counts the bytes sent, over all connections.
	Bytes uint64 `json:"bytes"`
	// Connects counts the successful publishes; Errors the failed attempts
	// and lost connections.
	Connects uint64 `json:"connects"`
	Errors   uint64 `json:"errors"`
	// Dropped counts the frames dropped while not publishing (or before the
	// first keyframe of a connection).
	Dropped uint64 `json:"dropped"`
	// LastError is the latest error, "" when none.
	LastError string `json:"last_error,omitempty"`
	// Transcoder are the counters of the Opus to AAC transcoder.
	Transcoder transcode.Stats `json:"transcoder"`
}

// RTMP sink states.
const (
	RTMPConnecting = "connecting"
	RTMPPublishing = "publishing"
	RTMPClosed     = "closed"
)

// RTMP is an RTMP push sink: H.264 passed through (its parameter sets in
// an AVC sequence header before the first keyframe of each connection and
// again whenever they change), Opus transcoded to AAC-LC, both on one
// timeline in milliseconds from the connection's first keyframe. It
// connects in the background and reconnects with backoff when the server
// goes away; meanwhile frames are dropped and counted, so WriteFrame never
// waits for the network beyond one write's deadline.
type RTMP struct {
	cfg     RTMPConfig
	log     *slog.Logger
	u       *url.URL
	redact  string
	publish string // the URL gomedia's client is started with (rtmp://)

	quit chan struct{}
	wg   sync.WaitGroup

	// mu guards the connection and everything written on it: WriteFrame
	// (the bridge's queue) and the transcoder's output both write.
	mu         sync.Mutex
	closed     bool
	conn       net.Conn // nil while not publishing
	streamID   uint32
	tracks     []media.Track
	video      int // track index of the H.264 track, -1 when none
	audio      int // track index of the Opus track, -1 when none
	tc         transcode.Transcoder
	started    bool          // the connection's first keyframe was sent
	base       time.Duration // bridge PTS of the connection's timestamp 0
	lastVideo  int64         // last RTMP timestamp sent, -1 for none
	lastAudio  int64
	sentSPS    []byte // parameter sets of the last sequence header sent
	sentPPS    []byte
	sps, pps   []byte // latest parameter sets seen
	aacSent    bool
	lastKeyReq time.Time
	tag        []byte // reused tag and chunk buffers
	chunk      []byte
	st         RTMPStatus
}

var _ media.FrameSink = (*RTMP)(nil)

// rtmpChunkSize is the chunk size the sink announces and writes with.
const rtmpChunkSize = 4096

// Chunk stream ids of the sink's media messages; gomedia's client uses
// 2, 3, 5, 6, 7 and 8 for its own.
const (
	csidAudio = 10
	csidVideo = 11
)

// NewRTMP returns an RTMP sink and starts connecting; Close stops it.
func NewRTMP(cfg RTMPConfig) (*RTMP, error) {
	u, err := url.Parse(cfg.URL)
	if err != nil || (u.Scheme != "rtmp" && u.Scheme != "rtmps") || u.Host == "" {
		return nil, fmt.Errorf("rtmp sink %q: URL must be rtmp:// or rtmps://", cfg.Name)
	}
	parts := strings.SplitN(strings.TrimPrefix(u.Path, "/"), "/", 2)
	if len(parts) < 2 || parts[0] == "" || parts[1] == "" {
		return nil, fmt.Errorf("rtmp sink %q: URL %s needs an application and a stream key", cfg.Name, RedactURL(cfg.URL))
	}
	for _, k := range cfg.Kinds {
		if k != "audio" && k != "video" {
			return nil, fmt.Errorf("rtmp sink %q: unknown kind %q", cfg.Name, k)
		}
	}
	if cfg.AudioBitrate == 0 {
		cfg.AudioBitrate = 128000
	}
	s := &RTMP{
		cfg:       cfg,
		log:       cfg.Logger,
		u:         u,
		redact:    RedactURL(cfg.URL),
		quit:      make(chan struct{}),
		video:     -1,
		audio:     -1,
		lastVideo: -1,
		lastAudio: -1,
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	s.log = s.log.With("sink", cfg.Name, "type", "rtmp", "url", s.redact)
	pub := *u
	pub.Scheme = "rtmp"
	s.publish = pub.String()
	s.st = RTMPStatus{URL: s.redact, State: RTMPConnecting}
	s.wg.Add(1)
	go s.run()
	return s, nil
}

// RedactURL returns an RTMP URL with its stream key (everything after the
// application), user info and query replaced, for logs and the API.
func RedactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return "<redacted>"
	}
	app, rest, _ := strings.Cut(strings.TrimPrefix(u.Path, "/"), "/")
	out := u.Scheme + "://" + u.Host + "/" + app
	if rest != "" || u.RawQuery != "" {
		out += "/<redacted>"
	}
	return out
}

// SetTracks picks the sink's tracks: the first H.264 video track and the
// first Opus audio track (within Kinds). Video in another codec is an
// error naming the codec and the fix; nothing changes then.
func (s *RTMP) SetTracks(tracks []media.Track) error {
	video, audio := -1, -1
	var errs []error
	for _, t := range tracks {
		kind := t.Kind
		if kind == "" {
			kind = media.KindOf(t.Codec)
		}
		if len(s.cfg.Kinds) > 0 && !slices.Contains(s.cfg.Kinds, kind) {
			continue
		}
		switch {
		case kind == "video" && t.Codec == media.H264:
			if video < 0 {
				video = t.Index
			}
		case kind == "video":
			errs = append(errs, fmt.Errorf("rtmp sink %q: RTMP needs H.264 video, the bridge gets %s (mid %q): use an H.264 room or mountpoint (video is not transcoded)",
				s.cfg.Name, strings.ToUpper(t.Codec), t.MID))
		case kind == "audio" && t.Codec == media.Opus:
			if audio < 0 {
				audio = t.Index
			}
		default:
			errs = append(errs, fmt.Errorf("rtmp sink %q: cannot send %s audio (mid %q): RTMP takes Opus from Janus, transcoded to AAC", s.cfg.Name, t.Codec, t.MID))
		}
	}
	if err := errors.Join(errs...); err != nil {
		s.mu.Lock()
		s.st.Errors++
		s.st.LastError = err.Error()
		s.mu.Unlock()
		s.log.Error("track set refused", "err", err)
		return err
	}
	var tc transcode.Transcoder
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return fmt.Errorf("rtmp sink %q: closed", s.cfg.Name)
	}
	need := audio >= 0 && s.tc == nil
	s.mu.Unlock()
	if need {
		t, err := transcode.NewOpusToAAC(transcode.Config{Bitrate: s.cfg.AudioBitrate, Output: s.writeAAC, Logger: s.log})
		if err != nil {
			return fmt.Errorf("rtmp sink %q: %w", s.cfg.Name, err)
		}
		tc = t
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if tc != nil {
		s.tc = tc
	}
	if video != s.video && s.conn != nil {
		s.started = false // the new video track starts at a keyframe
	}
	s.tracks, s.video, s.audio = tracks, video, audio
	if video < 0 && audio < 0 && len(tracks) > 0 {
		s.log.Info("no track for this sink", "tracks", len(tracks))
	}
	return nil
}

// WriteFrame sends a frame of the sink's tracks: video at once, audio
// through the transcoder (which sends it when encoded).
func (s *RTMP) WriteFrame(f *media.Frame) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return fmt.Errorf("rtmp sink %q: closed", s.cfg.Name)
	}
	switch f.Track {
	case s.video:
		err := s.writeVideo(f)
		s.mu.Unlock()
		return err
	case s.audio:
		tc := s.tc
		ok := s.conn != nil && (s.started || s.video < 0)
		if s.conn != nil && s.video < 0 && !s.started {
			s.started, s.base = true, f.PTS
		}
		if !ok {
			s.st.Dropped++
		}
		s.mu.Unlock()
		if ok && tc != nil {
			tc.Write(f.PTS, f.Data)
		}
		return nil
	}
	s.mu.Unlock()
	return nil
}

// writeVideo sends an H.264 access unit; s.mu is held.
func (s *RTMP) writeVideo(f *media.Frame) error {
	if sps, pps := media.H264ParamSets(f.Data); sps != nil && pps != nil {
		if !slices.Equal(sps, s.sps) || !slices.Equal(pps, s.pps) {
			s.sps = append(s.sps[:0], sps...)
			s.pps = append(s.pps[:0], pps...)
		}
	}
	if s.conn == nil {
		s.st.Dropped++
		return nil
	}
	if !s.started {
		if !f.Keyframe || s.sps == nil {
			s.st.Dropped++
			s.requestKeyframe()
			return nil
		}
		s.started, s.base = true, f.PTS
		s.lastVideo, s.lastAudio = -1, -1
	}
	ts := s.timestamp(f.PTS, &s.lastVideo)
	if f.Keyframe && s.sps != nil && (!slices.Equal(s.sps, s.sentSPS) || !slices.Equal(s.pps, s.sentPPS)) {
		seq, err := media.AppendAVCDecoderConfig(append(s.tag[:0], 0x17, 0, 0, 0, 0), s.sps, s.pps)
		if err != nil {
			s.st.Dropped++
			return fmt.Errorf("rtmp sink %q: %w", s.cfg.Name, err)
		}
		s.tag = seq
		if err := s.send(csidVideo, 9, ts, seq); err != nil {
			return err
		}
		s.sentSPS = append(s.sentSPS[:0], s.sps...)
		s.sentPPS = append(s.sentPPS[:0], s.pps...)
		if s.sentSPS != nil {
			s.log.Info("sent H.264 parameter sets")
		}
	}
	first := byte(0x27) // inter frame, AVC
	if f.Keyframe {
		first = 0x17
	}
	s.tag = media.AppendAVCC(append(s.tag[:0], first, 1, 0, 0, 0), f.Data, true)
	if len(s.tag) == 5 {
		return nil // parameter sets only
	}
	return s.send(csidVideo, 9, ts, s.tag)
}

// writeAAC sends an AAC frame from the transcoder.
func (s *RTMP) writeAAC(p transcode.Packet) {
	h, err := transcode.ParseADTS(p.Data)
	if err != nil || h.FrameLen > len(p.Data) {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.conn == nil || !s.started || p.PTS < s.base {
		return
	}
	ts := s.timestamp(p.PTS, &s.lastAudio)
	if !s.aacSent {
		asc := h.AudioSpecificConfig()
		s.tag = append(s.tag[:0], 0xaf, 0, asc[0], asc[1])
		if s.send(csidAudio, 8, ts, s.tag) != nil {
			return
		}
		s.aacSent = true
	}
	s.tag = append(append(s.tag[:0], 0xaf, 1), p.Data[h.HeaderLen:h.FrameLen]...)
	s.send(csidAudio, 8, ts, s.tag)
}

// timestamp returns the RTMP timestamp (ms from the connection's first
// keyframe) of a frame at pts, always after the track's last one: frames
// less than a millisecond apart (or a PTS that went back) would make equal
// timestamps, which players' muxers refuse.
func (s *RTMP) timestamp(pts time.Duration, last *int64) uint32 {
	var ts int64
	if d := pts - s.base; d > 0 {
		ts = int64(d / time.Millisecond)
	}
	if ts <= *last {
		ts = *last + 1
	}
	*last = ts
	return uint32(ts)
}

// send writes one RTMP message (type 8 audio, 9 video) on its own chunk
// stream, every chunk with a full header; s.mu is held. A failed write
// drops the connection: the connection loop reconnects.
func (s *RTMP) send(csid byte, typ byte, ts uint32, payload []byte) error {
	b := s.chunk[:0]
	t24 := min(ts, 0xffffff)
	n := len(payload)
	b = append(b, csid, byte(t24>>16), byte(t24>>8), byte(t24), byte(n>>16), byte(n>>8), byte(n), typ)
	b = binary.LittleEndian.AppendUint32(b, s.streamID)
	if t24 == 0xffffff {
		b = binary.BigEndian.AppendUint32(b, ts)
	}
	for i := 0; i < n; i += rtmpChunkSize {
		if i > 0 {
			b = append(b, 0xc0|csid)
			if t24 == 0xffffff {
				b = binary.BigEndian.AppendUint32(b, ts)
			}
		}
		b = append(b, payload[i:min(i+rtmpChunkSize, n)]...)
	}
	s.chunk = b
	s.conn.SetWriteDeadline(time.Now().Add(rtmpWriteTimeout))
	if _, err := s.conn.Write(b); err != nil {
		s.dropConn(fmt.Errorf("writing: %w", err))
		return fmt.Errorf("rtmp sink %q: %w", s.cfg.Name, err)
	}
	s.st.Bytes += uint64(len(b))
	return nil
}

// rtmpWriteTimeout bounds one write: a server that takes no data for this
// long is dropped (and reconnected to).
const rtmpWriteTimeout = 2 * time.Second

// dropConn closes the current connection; s.mu is held.
func (s *RTMP) dropConn(err error) {
	if s.conn == nil {
		return
	}
	s.conn.Close() // the connection loop's read fails and reconnects
	s.conn = nil
	s.st.State = RTMPConnecting
	s.st.Errors++
	s.st.LastError = err.Error()
}

// requestKeyframe asks for a keyframe at most once a second; s.mu is held.
func (s *RTMP) requestKeyframe() {
	if s.cfg.RequestKeyframe != nil && time.Since(s.lastKeyReq) >= time.Second {
		s.lastKeyReq = time.Now()
		s.cfg.RequestKeyframe()
	}
}

// Status returns the sink's state.
func (s *RTMP) Status() RTMPStatus {
	s.mu.Lock()
	st, tc := s.st, s.tc
	s.mu.Unlock()
	if tc != nil {
		st.Transcoder = tc.Stats()
	}
	return st
}

// Close stops the sink: the connection, its loop and the transcoder. It is
// idempotent.
func (s *RTMP) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	tc := s.tc
	s.mu.Unlock()
	if tc != nil {
		tc.Close() // its last packets still go out
	}
	close(s.quit)
	s.mu.Lock()
	if s.conn != nil {
		s.conn.Close()
		s.conn = nil
	}
	s.st.State = RTMPClosed
	s.mu.Unlock()
	s.wg.Wait()
	return nil
}

// Reconnect backoff bounds: a server back up is published to again within
// rtmpMaxBackoff.
const (
	rtmpMinBackoff     = 250 * time.Millisecond
	rtmpMaxBackoff     = 2 * time.Second
	rtmpDialTimeout    = 5 * time.Second
	rtmpPublishTimeout = 10 * time.Second
)

// run connects, publishes and reads the server's messages, reconnecting
// with backoff, until Close.
func (s *RTMP) run() {
	defer s.wg.Done()
	backoff := rtmpMinBackoff
	for {
		began := time.Now()
		err := s.session()
		select {
		case <-s.quit:
			return
		default:
		}
		s.mu.Lock()
		if s.st.LastError != err.Error() || time.Since(began) > rtmpMaxBackoff {
			s.log.Warn("rtmp connection failed, retrying", "err", err, "in", backoff)
		}
		s.st.Errors++
		s.st.LastError = err.Error()
		s.st.State = RTMPConnecting
		s.mu.Unlock()
		if time.Since(began) > 10*time.Second { // it published a while: a fresh fault
			backoff = rtmpMinBackoff
		}
		t := time.NewTimer(backoff)
		select {
		case <-s.quit:
			t.Stop()
			return
		case <-t.C:
		}
		backoff = min(2*backoff, rtmpMaxBackoff)
	}
}

// session runs one connection: dial, handshake and publish, then read the
// server's messages until the connection fails.
func (s *RTMP) session() error {
	host := s.u.Host
	if s.u.Port() == "" {
		if s.u.Scheme == "rtmps" {
			host = net.JoinHostPort(s.u.Hostname(), "443")
		} else {
			host = net.JoinHostPort(s.u.Hostname(), "1935")
		}
	}
	d := net.Dialer{Timeout: rtmpDialTimeout}
	var conn net.Conn
	var err error
	if s.u.Scheme == "rtmps" {
		cfg := s.cfg.TLS
		if cfg == nil {
			cfg = &tls.Config{ServerName: s.u.Hostname()}
		}
		conn, err = tls.DialWithDialer(&d, "tcp", host, cfg)
	} else {
		conn, err = d.Dial("tcp", host)
	}
	if err != nil {
		return fmt.Errorf("connecting: %w", err)
	}
	// Close unblocks the reads below.
	stop := make(chan struct{})
	defer close(stop)
	go func() { // owned by session: ends when it returns
		select {
		case <-s.quit:
			conn.Close()
		case <-stop:
		}
	}()
	defer conn.Close()

	c := rtmp.NewRtmpClient(rtmp.WithComplexHandshake(), rtmp.WithEnablePublish(), rtmp.WithChunkSize(rtmpChunkSize))
	var streamID uint32
	var sniffed bool
	c.SetOutput(func(b []byte) error {
		if id, ok := publishStreamID(b); ok {
			streamID, sniffed = id, true
		}
		conn.SetWriteDeadline(time.Now().Add(rtmpWriteTimeout))
		_, err := conn.Write(b)
		return err
	})
	var state rtmp.RtmpState
	var status string
	c.OnStateChange(func(st rtmp.RtmpState) { state = st })
	c.OnStatus(func(code, level, desc string) { status = code + " " + desc })
	c.Start(s.publish)
	var guard rtmpguard.Guard
	buf := make([]byte, 4096)
	conn.SetReadDeadline(time.Now().Add(rtmpPublishTimeout))
	for state != rtmp.STATE_RTMP_PUBLISH_START {
		n, err := conn.Read(buf)
		if err != nil {
			return fmt.Errorf("publishing: %w", err)
		}
		if err := clientInput(&guard, c, buf[:n]); err != nil {
			return fmt.Errorf("publishing: %w", err)
		}
		if state == rtmp.STATE_RTMP_PUBLISH_FAILED {
			return fmt.Errorf("publishing refused: %s", strings.TrimSpace(status))
		}
	}
	if !sniffed {
		s.log.Warn("stream id of the publish command not seen, using 0")
	}
	conn.SetReadDeadline(time.Time{})
	s.mu.Lock()
	s.conn, s.streamID = conn, streamID
	s.started, s.aacSent, s.sentSPS, s.sentPPS = false, false, nil, nil
	s.st.State = RTMPPublishing
	s.st.Connects++
	s.lastKeyReq = time.Time{}
	s.requestKeyframe()
	s.mu.Unlock()
	s.log.Info("rtmp publishing")
	var readErr error
	for {
		n, err := conn.Read(buf)
		if err != nil {
			readErr = err
			break
		}
		if err := clientInput(&guard, c, buf[:n]); err != nil {
			readErr = err
			break
		}
	}
	s.mu.Lock()
	if s.conn == conn {
		s.conn = nil
	}
	s.mu.Unlock()
	return fmt.Errorf("connection lost: %w", readErr)
}

// clientInput feeds the server's bytes to gomedia's client, after the
// guard (gomedia spins forever on some malformed input), turning its
// panics on malformed input into errors.
func clientInput(g *rtmpguard.Guard, c *rtmp.RtmpClient, b []byte) (err error) {
	if err := g.Check(b); err != nil {
		return err
	}
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("malformed message from the server: %v", r)
		}
	}()
	return c.Input(b)
}

// publishStreamID returns the message stream id of gomedia's "publish"
// command in its output b: a type 0 chunk on chunk stream 3 of an AMF0
// command (20) whose name is "publish". The sink writes its media on that
// stream.
func publishStreamID(b []byte) (uint32, bool) {
	const name = "\x02\x00\x07publish"
	if len(b) < 12+len(name) || b[0] != 0x03 || b[7] != 20 || string(b[12:12+len(name)]) != name {
		return 0, false
	}
	return binary.LittleEndian.Uint32(b[8:12]), true
}
