package sinks

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/janusbridge/janusbridge/media"
	"github.com/pion/rtp"
)

const (
	// rtpReportInterval is how often each track gets an RTCP sender report.
	rtpReportInterval = time.Second
	// rtpResync is the change of a track's RTP-to-wall-clock offset beyond
	// which the timeline is taken to have jumped, and the reports follow.
	// Smaller changes are ignored: receivers such as ffmpeg apply each
	// report at once, so any step shows as jitter in their timestamps.
	rtpResync = 500 * time.Millisecond
)

// RTPConfig configures an [RTP] sink.
type RTPConfig struct {
	// Host is where the packets go: an IPv4 or IPv6 address or a host name
	// (resolved once, by NewRTP).
	Host string
	// Port is the base port: the track with Index i goes to Port+2*i, its
	// RTCP sender reports to Port+2*i+1.
	Port int
	// SDP is the path of the session description written for receivers
	// (ffplay, ffmpeg, GStreamer); "" writes none.
	SDP string
	// Name names the sink in logs and in the SDP's session name.
	Name string
	// Logger receives the sink's log lines; nil discards them.
	Logger *slog.Logger
}

// RTPStats are the counters of an [RTP] sink.
type RTPStats struct {
	// Packets and Bytes count the RTP packets sent and their size on the
	// wire (headers included).
	Packets, Bytes uint64
	// Errors counts packets that could not be sent (send failures, packets
	// of unknown tracks, packets too large to marshal).
	Errors uint64
}

// RTP is a [media.PacketSink] that forwards each RTP packet on arrival, as
// plain RTP over UDP, to one port pair per track, and describes the session
// in an SDP file that ffplay, ffmpeg or GStreamer can open. It adds no
// jitter buffer and no latency: a packet leaves in the WritePacket call that
// brings it. Per track it also sends RTCP sender reports, mapping the
// packets' RTP timestamps to the wall clock of their arrival so that a
// receiver can align audio and video: one just before a stream's first
// packet, then one a second from a goroutine, off the packet path.
type RTP struct {
	cfg    RTPConfig
	host   netip.Addr
	conn   *net.UDPConn
	log    *slog.Logger
	start  time.Time // monotonic origin of the arrival times
	cname  string
	buf    []byte // marshal buffer, reused for every packet
	srBuf  []byte // the first sender report of a stream, sent by WritePacket
	sdp    string // the SDP text last written
	closed atomic.Bool

	// tracks is indexed by media.Track.Index; it is written by SetTracks
	// (under mu) and read by WritePacket (same goroutine) and the report
	// loop (under mu).
	mu     sync.Mutex
	tracks []*rtpTrack

	packets, bytes, errors atomic.Uint64
	lastErr                atomic.Pointer[error] // only set on the error path

	stop      chan struct{}
	done      sync.WaitGroup
	closeOnce sync.Once
	closeErr  error
}

// rtpTrack is the state of one track's forward. The description fields are
// written by SetTracks under RTP.mu; the fields below "shared" are written by
// WritePacket and read by the report loop.
type rtpTrack struct {
	t         media.Track
	active    bool
	pt        uint8
	clockRate uint32
	rtpAddr   netip.AddrPort
	rtcpAddr  netip.AddrPort

	// Owned by the writing goroutine: the timestamp unwrapped to 64 bits.
	haveTS bool
	lastTS uint32
	extTS  int64

	// shared
	ssrc   atomic.Uint32
	sent   atomic.Uint32 // packets, for the SR's sender's packet count
	octets atomic.Uint32 // payload octets, for the SR's sender's octet count
	// minOff is the least offset (arrival time in clock ticks minus the
	// unwrapped RTP timestamp) since the last report: the least delayed
	// packet, which for video is a frame's first.
	minOff atomic.Int64
	// epoch counts the starts of the stream (first packet, new SSRC);
	// startOff is the offset of the start's first packet.
	epoch    atomic.Uint32
	startOff atomic.Int64

	// Report loop only: the offset the reports use, moved towards minOff by
	// at most rtpSlew per report so a receiver's timeline never steps back
	// by more than that.
	est      int64
	estEpoch uint32
	lastSR   time.Time
}

var _ media.PacketSink = (*RTP)(nil)

var errRTPUnknownTrack = errors.New("rtp: packet for a track that is not set")

// NewRTP opens the sink's UDP socket. No SDP is written before SetTracks.
func NewRTP(cfg RTPConfig) (*RTP, error) {
	if cfg.Port < 1 || cfg.Port > 65534 {
		return nil, fmt.Errorf("rtp: port %d out of range", cfg.Port)
	}
	host, err := rtpResolve(cfg.Host)
	if err != nil {
		return nil, err
	}
	network := "udp4"
	if host.Is6() {
		network = "udp6"
	}
	conn, err := net.ListenUDP(network, nil)
	if err != nil {
		return nil, fmt.Errorf("rtp: %w", err)
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	name := rtpSDPSafe(cfg.Name)
	if name == "" {
		name = "janusbridge"
	}
	r := &RTP{
		cfg:   cfg,
		host:  host,
		conn:  conn,
		log:   log,
		start: time.Now(),
		cname: name,
		buf:   make([]byte, 1500),
		srBuf: make([]byte, 0, 28),
		stop:  make(chan struct{}),
	}
	r.done.Add(1)
	go r.reportLoop(rtpReportInterval)
	return r, nil
}

// rtpResolve returns the address of host, preferring IPv4 for names.
func rtpResolve(host string) (netip.Addr, error) {
	if host == "" {
		return netip.Addr{}, errors.New("rtp: host is empty")
	}
	if a, err := netip.ParseAddr(strings.Trim(host, "[]")); err == nil {
		return a.Unmap(), nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	addrs, err := net.DefaultResolver.LookupNetIP(ctx, "ip", host)
	if err != nil || len(addrs) == 0 {
		return netip.Addr{}, fmt.Errorf("rtp: resolving host %q: %w", host, err)
	}
	for _, a := range addrs {
		if a.Unmap().Is4() {
			return a.Unmap(), nil
		}
	}
	return addrs[0], nil
}

// SetTracks implements [media.Output]. A track keeps its ports for the
// sink's life; tracks not in the list leave the SDP (their index, and so
// their ports, are not reused). The SDP file is rewritten atomically when
// its text changes.
func (r *RTP) SetTracks(tracks []media.Track) error {
	if r.closed.Load() {
		return errors.New("rtp: sink is closed")
	}
	maxIndex := -1
	for _, t := range tracks {
		if t.Index < 0 {
			return fmt.Errorf("rtp: track %q has negative index %d", t.MID, t.Index)
		}
		if r.cfg.Port+2*t.Index+1 > 65535 {
			return fmt.Errorf("rtp: track %d needs port %d, beyond 65535", t.Index, r.cfg.Port+2*t.Index+1)
		}
		if rtpEncoding(t) == "" {
			return fmt.Errorf("rtp: codec %q of track %d is not supported by rtp", t.Codec, t.Index)
		}
		maxIndex = max(maxIndex, t.Index)
	}
	r.mu.Lock()
	list := r.tracks
	if n := maxIndex + 1; n > len(list) {
		list = append(make([]*rtpTrack, 0, n), list...)
		list = list[:n]
	}
	for _, tr := range list {
		if tr != nil {
			tr.active = false
		}
	}
	for _, t := range tracks {
		tr := list[t.Index]
		if tr == nil || tr.t.Codec != t.Codec || tr.t.ClockRate != t.ClockRate {
			tr = &rtpTrack{}
			tr.minOff.Store(math.MaxInt64)
			list[t.Index] = tr
		}
		tr.t, tr.active = t, true
		tr.pt = rtpPayloadType(t)
		tr.clockRate = rtpClockRate(t)
		port := r.cfg.Port + 2*t.Index
		tr.rtpAddr = netip.AddrPortFrom(r.host, uint16(port))
		tr.rtcpAddr = netip.AddrPortFrom(r.host, uint16(port+1))
	}
	r.tracks = list
	r.mu.Unlock()

	if r.cfg.SDP == "" {
		return nil
	}
	text := r.sdpText()
	if text == r.sdp {
		return nil
	}
	if err := rtpWriteFileAtomic(r.cfg.SDP, []byte(text)); err != nil {
		return fmt.Errorf("rtp: writing SDP: %w", err)
	}
	r.sdp = text
	r.log.Info("rtp sink: SDP written", "path", r.cfg.SDP, "tracks", len(tracks))
	return nil
}

// WritePacket implements [media.PacketSink]: it sends p to the track's
// port at once, with the track's payload type, without allocating.
func (r *RTP) WritePacket(track int, p *rtp.Packet) error {
	if track < 0 || track >= len(r.tracks) || r.tracks[track] == nil || !r.tracks[track].active {
		r.fail(errRTPUnknownTrack)
		return errRTPUnknownTrack
	}
	tr := r.tracks[track]
	if size := p.MarshalSize(); size > len(r.buf) {
		if size > 65507 {
			r.fail(errRTPTooLarge)
			return errRTPTooLarge
		}
		r.buf = make([]byte, size)
	}
	n, err := p.MarshalTo(r.buf)
	if err != nil {
		r.fail(err)
		return fmt.Errorf("rtp: %w", err)
	}
	b := r.buf[:n]
	b[1] = b[1]&0x80 | tr.pt&0x7f // keep the marker bit, set the track's payload type
	if arrival := time.Since(r.start); tr.note(p, arrival) {
		// A stream starts: its first sender report goes before its first
		// packet, so that a receiver places the stream on the shared
		// timeline from its first packet (ffmpeg reads RTCP first).
		r.srBuf = rtpAppendSR(r.srBuf[:0], p.SSRC, rtpNTP(r.start.Add(arrival)), p.Timestamp, 0, 0)
		if _, err := r.conn.WriteToUDPAddrPort(r.srBuf, tr.rtcpAddr); err != nil && !r.closed.Load() {
			r.fail(err)
		}
	}
	if _, err := r.conn.WriteToUDPAddrPort(b, tr.rtpAddr); err != nil {
		if r.closed.Load() {
			return net.ErrClosed
		}
		r.fail(err)
		return fmt.Errorf("rtp: %w", err)
	}
	r.packets.Add(1)
	r.bytes.Add(uint64(n))
	tr.sent.Add(1)
	tr.octets.Add(uint32(len(p.Payload)))
	return nil
}

var errRTPTooLarge = errors.New("rtp: packet larger than a UDP datagram")

func (r *RTP) fail(err error) {
	r.errors.Add(1)
	r.lastErr.Store(&err)
}

// note records what the sender reports need: the SSRC and the offset of
// the packet's arrival from its RTP time. It reports whether the packet
// starts a stream (the track's first, or a new SSRC).
func (tr *rtpTrack) note(p *rtp.Packet, arrival time.Duration) (start bool) {
	ticks := mp4Ticks(arrival, tr.clockRate)
	if !tr.haveTS || p.SSRC != tr.ssrc.Load() {
		tr.haveTS, tr.lastTS, tr.extTS = true, p.Timestamp, int64(p.Timestamp)
		tr.ssrc.Store(p.SSRC)
		tr.sent.Store(0)
		tr.octets.Store(0)
		tr.minOff.Store(ticks - tr.extTS)
		tr.startOff.Store(ticks - tr.extTS)
		tr.epoch.Add(1)
		return true
	}
	tr.extTS += int64(int32(p.Timestamp - tr.lastTS))
	tr.lastTS = p.Timestamp
	off := ticks - tr.extTS
	for {
		cur := tr.minOff.Load()
		if off >= cur || tr.minOff.CompareAndSwap(cur, off) {
			return false
		}
	}
}

// Stats returns the sink's counters; it may be called from any goroutine.
func (r *RTP) Stats() RTPStats {
	return RTPStats{Packets: r.packets.Load(), Bytes: r.bytes.Load(), Errors: r.errors.Load()}
}

// Close implements [media.Output]: it stops the reports and closes the
// socket. The SDP file stays. Close is idempotent.
func (r *RTP) Close() error {
	r.closeOnce.Do(func() {
		r.closed.Store(true)
		close(r.stop)
		r.done.Wait()
		if err := r.conn.Close(); err != nil {
			r.closeErr = fmt.Errorf("rtp: %w", err)
		}
	})
	return r.closeErr
}

// reportLoop sends the sender reports (after a stream's first, which
// WritePacket sends, one per interval while packets flow) and logs send
// errors, at most once a second.
func (r *RTP) reportLoop(interval time.Duration) {
	defer r.done.Done()
	tick := time.NewTicker(interval / 5)
	defer tick.Stop()
	var loggedErrors uint64
	lastLog := time.Now()
	for {
		select {
		case <-r.stop:
			return
		case now := <-tick.C:
			// Under mu: SetTracks may change a track's address or clock.
			r.mu.Lock()
			for _, tr := range r.tracks {
				if tr != nil && tr.active {
					r.report(tr, now, interval)
				}
			}
			r.mu.Unlock()
			if now.Sub(lastLog) >= time.Second {
				lastLog = now
				if n := r.errors.Load(); n != loggedErrors {
					var last error
					if p := r.lastErr.Load(); p != nil {
						last = *p
					}
					r.log.Warn("rtp sink: packets not sent", "count", n-loggedErrors, "last_error", last)
					loggedErrors = n
				}
			}
		}
	}
}

// report sends a sender report for tr when one is due and packets arrived
// since the last. The report maps the RTP clock to the wall clock through
// the track's offset estimate, which is fixed by the stream's first packet
// and moves only when the stream's timeline jumps.
func (r *RTP) report(tr *rtpTrack, now time.Time, interval time.Duration) {
	epoch := tr.epoch.Load()
	if epoch == 0 {
		return // no packet yet
	}
	if epoch != tr.estEpoch {
		// A stream started; WritePacket sent its first report.
		tr.estEpoch, tr.est, tr.lastSR = epoch, tr.startOff.Load(), now
		return
	}
	if now.Sub(tr.lastSR) < interval-interval/10 {
		return
	}
	target := tr.minOff.Swap(math.MaxInt64)
	if target == math.MaxInt64 {
		return // no packets: nothing to report
	}
	tr.lastSR = now
	if resync := mp4Ticks(rtpResync, tr.clockRate); target-tr.est > resync || tr.est-target > resync {
		tr.est = target
	}
	ssrc := tr.ssrc.Load()
	rtpTime := uint32(mp4Ticks(now.Sub(r.start), tr.clockRate) - tr.est)
	b := rtpAppendSR(make([]byte, 0, 64), ssrc, rtpNTP(now), rtpTime, tr.sent.Load(), tr.octets.Load())
	b = rtpAppendSDES(b, ssrc, r.cname)
	if _, err := r.conn.WriteToUDPAddrPort(b, tr.rtcpAddr); err != nil && !r.closed.Load() {
		r.fail(err)
	}
}

// rtpAppendSR appends an RTCP sender report without report blocks (RFC 3550
// 6.4.1).
func rtpAppendSR(b []byte, ssrc uint32, ntp uint64, rtpTime, packets, octets uint32) []byte {
	b = append(b, 0x80, 200, 0, 6) // V=2, RC=0, PT=SR, length 6 words
	b = binary.BigEndian.AppendUint32(b, ssrc)
	b = binary.BigEndian.AppendUint64(b, ntp)
	b = binary.BigEndian.AppendUint32(b, rtpTime)
	b = binary.BigEndian.AppendUint32(b, packets)
	return binary.BigEndian.AppendUint32(b, octets)
}

// rtpAppendSDES appends an RTCP source description with the CNAME item
// (RFC 3550 6.5), which completes a compound packet.
func rtpAppendSDES(b []byte, ssrc uint32, cname string) []byte {
	if len(cname) > 255 {
		cname = cname[:255]
	}
	at := len(b)
	b = append(b, 0x81, 202, 0, 0) // V=2, SC=1, PT=SDES, length set below
	b = binary.BigEndian.AppendUint32(b, ssrc)
	b = append(b, 1, byte(len(cname))) // CNAME
	b = append(b, cname...)
	b = append(b, 0) // end of the item list
	for (len(b)-at)%4 != 0 {
		b = append(b, 0)
	}
	binary.BigEndian.PutUint16(b[at+2:], uint16((len(b)-at)/4-1))
	return b
}

// rtpNTP converts t to the 64-bit NTP format (seconds since 1900, 32.32).
func rtpNTP(t time.Time) uint64 {
	const ntpEpochOffset = 2208988800
	secs := uint64(t.Unix() + ntpEpochOffset)
	frac := uint64(t.Nanosecond()) << 32 / 1e9
	return secs<<32 | frac
}

// sdpText is the session description of the active tracks, in index order.
func (r *RTP) sdpText() string {
	ipv := "IP4"
	if r.host.Is6() {
		ipv = "IP6"
	}
	var b strings.Builder
	b.WriteString("v=0\r\n")
	fmt.Fprintf(&b, "o=- 0 0 IN %s %s\r\n", ipv, r.host)
	fmt.Fprintf(&b, "s=%s\r\n", r.cname)
	fmt.Fprintf(&b, "c=IN %s %s\r\n", ipv, r.host)
	b.WriteString("t=0 0\r\n")
	b.WriteString("a=tool:janusbridge\r\n")
	b.WriteString("a=recvonly\r\n")
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, tr := range r.tracks {
		if tr == nil || !tr.active {
			continue
		}
		port := r.cfg.Port + 2*tr.t.Index
		fmt.Fprintf(&b, "m=%s %d RTP/AVP %d\r\n", media.KindOf(tr.t.Codec), port, tr.pt)
		fmt.Fprintf(&b, "a=rtpmap:%d %s\r\n", tr.pt, rtpEncoding(tr.t))
		if fmtp := rtpSDPSafe(rtpFmtp(tr.t)); fmtp != "" {
			fmt.Fprintf(&b, "a=fmtp:%d %s\r\n", tr.pt, fmtp)
		}
		fmt.Fprintf(&b, "a=rtcp:%d\r\n", port+1)
		if mid := rtpSDPSafe(tr.t.MID); mid != "" {
			fmt.Fprintf(&b, "a=mid:%s\r\n", mid)
		}
	}
	return b.String()
}

// rtpSDPSafe drops the control characters (line breaks) of a value that
// goes into an SDP line.
func rtpSDPSafe(s string) string {
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return -1
		}
		return r
	}, s)
}

// rtpEncoding is the rtpmap encoding of a track: name/clock rate[/channels].
func rtpEncoding(t media.Track) string {
	rate := rtpClockRate(t)
	switch strings.ToLower(t.Codec) {
	case media.Opus:
		ch := t.Channels
		if ch == 0 {
			ch = 2
		}
		return fmt.Sprintf("OPUS/%d/%d", rate, ch)
	case media.PCMU:
		return fmt.Sprintf("PCMU/%d", rate)
	case media.PCMA:
		return fmt.Sprintf("PCMA/%d", rate)
	case media.VP8:
		return fmt.Sprintf("VP8/%d", rate)
	case media.VP9:
		return fmt.Sprintf("VP9/%d", rate)
	case media.H264:
		return fmt.Sprintf("H264/%d", rate)
	case media.AV1:
		return fmt.Sprintf("AV1/%d", rate)
	}
	return ""
}

// rtpFmtp is the fmtp of a track: its own, or for H.264 without one the
// packetization mode WebRTC uses.
func rtpFmtp(t media.Track) string {
	if t.Fmtp == "" && strings.EqualFold(t.Codec, media.H264) {
		return "packetization-mode=1"
	}
	return t.Fmtp
}

func rtpClockRate(t media.Track) uint32 {
	if t.ClockRate != 0 {
		return t.ClockRate
	}
	switch strings.ToLower(t.Codec) {
	case media.Opus:
		return 48000
	case media.PCMU, media.PCMA:
		return 8000
	}
	return 90000
}

// rtpPayloadType is the track's payload type; a track without one (0 for
// anything but PCMU) gets the usual one of its codec.
func rtpPayloadType(t media.Track) uint8 {
	codec := strings.ToLower(t.Codec)
	if t.PayloadType != 0 || codec == media.PCMU {
		return t.PayloadType & 0x7f
	}
	switch codec {
	case media.PCMA:
		return 8
	case media.Opus:
		return 111
	case media.VP8:
		return 96
	case media.VP9:
		return 98
	case media.H264:
		return 102
	}
	return 45 // AV1
}

// rtpWriteFileAtomic replaces path with data: a reader sees the old file or
// the new one, never a part. The parent directory is created.
func rtpWriteFileAtomic(path string, data []byte) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	_, err = f.Write(data)
	if err == nil {
		err = f.Chmod(0o644)
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
	}
	return err
}
