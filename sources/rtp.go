package sources

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/janusbridge/janusbridge/config"
	"github.com/janusbridge/janusbridge/media"
	"github.com/pion/rtcp"
	"github.com/pion/rtp"
)

// rtpBufSize is the read buffer of each socket: the largest UDP payload, so
// no datagram is cut short.
const rtpBufSize = 1 << 16

// RTPStats are the counters of an [RTP] source, totals over its tracks.
type RTPStats struct {
	// Packets and Bytes count the RTP packets handed on and their size on
	// the wire.
	Packets, Bytes uint64
	// Malformed counts datagrams that are neither RTP nor RTCP, or RTP that
	// does not parse (dropped).
	Malformed uint64
	// WrongPayloadType counts RTP packets whose payload type is not the
	// track's (dropped).
	WrongPayloadType uint64
	// ForeignSSRC counts RTP packets of another SSRC than the track's
	// sender while that sender is active, and RTCP compounds that name no
	// SSRC of the sender (dropped): stray or hostile packets. A new SSRC
	// takes over after 1 s of silence of the old one.
	ForeignSSRC uint64
	// RTCP counts RTCP compound packets received from senders;
	// RTCPMalformed those that did not parse.
	RTCP, RTCPMalformed uint64
	// ParamSetsInserted counts the H.264 SPS/PPS packets put in front of a
	// keyframe that came without them.
	ParamSetsInserted uint64
	// KeyframeRequests counts the RTCP keyframe requests (PLI, with FIR for
	// H.264) sent to senders; KeyframeRequestErrors those that could not be
	// sent (no sender known yet, or a send error).
	KeyframeRequests, KeyframeRequestErrors uint64
}

// rtpCounters are the atomic counters behind RTPStats.
type rtpCounters struct {
	packets, bytes, malformed, wrongPT, foreignSSRC      atomic.Uint64
	rtcp, rtcpMalformed, paramSets, kfRequests, kfErrors atomic.Uint64
}

// RTP is a [media.Source] that receives plain RTP over UDP: one socket per
// track at the track's listen address, and its RTCP on the next port (or
// multiplexed on the same port, told apart by packet types 200-211). Each
// packet is parsed into a reused packet and handed on as it arrives, with
// no jitter buffer. For H.264 it remembers the latest parameter sets (SPS,
// PPS, from the SDP's sprop-parameter-sets and from the stream) and puts
// them in front of a keyframe that comes without them, as one STAP-A
// packet, so that a viewer joining late can decode; the sequence numbers
// after it are shifted to make room. Keyframe requests go back to the
// sender as RTCP PLI (and FIR for H.264).
type RTP struct {
	log    *slog.Logger
	tracks []media.Track
	listen []string
	params []*h264Params // per track; nil unless H.264
	ssrc   uint32        // our SSRC as the sender of keyframe requests

	stats rtpCounters

	mu    sync.Mutex // guards peers and conns
	peers []rtpPeer
	conns []rtpConns // while Run runs
}

// rtpPeer is what is known of a track's sender.
type rtpPeer struct {
	rtp    netip.AddrPort // source address of its last RTP packet
	rtcp   netip.AddrPort // source address of its last RTCP packet
	ssrc   uint32         // SSRC of its last RTP packet
	firSeq uint8
}

// rtpConns are a track's sockets; rtcp is nil when port+1 was not free.
type rtpConns struct {
	rtp, rtcp *net.UDPConn
}

var _ media.Source = (*RTP)(nil)

// NewRTP returns the RTP source of cfg (type "rtp"), its tracks from
// cfg.Tracks or from the SDP file cfg.SDP. The sockets are opened by Run.
// log receives the source's log lines; nil discards them.
func NewRTP(cfg *config.Source, log *slog.Logger) (*RTP, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &RTP{log: log, ssrc: rand.Uint32()}
	if cfg.SDP != "" {
		tracks, listen, err := tracksFromSDPFile(cfg.SDP)
		if err != nil {
			return nil, fmt.Errorf("rtp source: %w", err)
		}
		s.tracks, s.listen = tracks, listen
	} else {
		for i, t := range cfg.Tracks {
			tr, err := trackFromConfig(i, &t)
			if err != nil {
				return nil, fmt.Errorf("rtp source: track[%d]: %w", i, err)
			}
			s.tracks = append(s.tracks, tr)
			s.listen = append(s.listen, t.Listen)
		}
	}
	if len(s.tracks) == 0 {
		return nil, errors.New("rtp source: no tracks")
	}
	s.params = make([]*h264Params, len(s.tracks))
	for i, t := range s.tracks {
		if t.Codec == media.H264 {
			s.params[i] = newH264Params(t.Fmtp)
		}
	}
	s.peers = make([]rtpPeer, len(s.tracks))
	return s, nil
}

// trackFromConfig describes a [[bridge.source.track]].
func trackFromConfig(i int, t *config.SourceTrack) (media.Track, error) {
	codec := strings.ToLower(t.Codec)
	kind := media.KindOf(codec)
	if kind == "" {
		return media.Track{}, fmt.Errorf("unknown codec %q", t.Codec)
	}
	if t.PayloadType < 0 || t.PayloadType > 127 {
		return media.Track{}, fmt.Errorf("payload type %d out of range", t.PayloadType)
	}
	clock := t.ClockRate
	if clock <= 0 {
		clock = defaultClockRate(codec)
	}
	return media.Track{
		Index:       i,
		Kind:        kind,
		Codec:       codec,
		ClockRate:   uint32(clock),
		Channels:    uint16(t.Channels),
		PayloadType: uint8(t.PayloadType),
		Fmtp:        t.Fmtp,
	}, nil
}

// defaultClockRate is the RTP clock rate of a codec.
func defaultClockRate(codec string) int {
	switch codec {
	case media.Opus:
		return 48000
	case media.PCMU, media.PCMA:
		return 8000
	}
	return 90000
}

// Tracks describes the source's tracks, in the order of the configuration
// or of the SDP's media sections.
func (s *RTP) Tracks() []media.Track { return append([]media.Track(nil), s.tracks...) }

// Listen returns the UDP address each track's RTP is received at.
func (s *RTP) Listen() []string { return append([]string(nil), s.listen...) }

// Stats returns the source's counters.
func (s *RTP) Stats() RTPStats {
	c := &s.stats
	return RTPStats{
		Packets: c.packets.Load(), Bytes: c.bytes.Load(),
		Malformed: c.malformed.Load(), WrongPayloadType: c.wrongPT.Load(), ForeignSSRC: c.foreignSSRC.Load(),
		RTCP: c.rtcp.Load(), RTCPMalformed: c.rtcpMalformed.Load(),
		ParamSetsInserted: c.paramSets.Load(),
		KeyframeRequests:  c.kfRequests.Load(), KeyframeRequestErrors: c.kfErrors.Load(),
	}
}

// Run opens the tracks' sockets and hands every RTP packet to w (never two
// calls at once) until ctx ends (nil), w fails (its error) or a socket
// fails. The sockets are closed when it returns.
func (s *RTP) Run(ctx context.Context, w media.PacketWriter) error {
	conns, err := s.open()
	if err != nil {
		return err
	}
	s.mu.Lock()
	s.conns = conns
	s.mu.Unlock()

	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var wg sync.WaitGroup
	var wmu sync.Mutex // serialises calls to w
	for i, c := range conns {
		wg.Go(func() { s.readRTP(cancel, i, c.rtp, w, &wmu) })
		if c.rtcp != nil {
			wg.Go(func() { s.readRTCP(cancel, i, c.rtcp) })
		}
	}
	wg.Go(func() { s.report(ctx) })
	<-ctx.Done()
	s.mu.Lock()
	s.conns = nil
	s.mu.Unlock()
	for _, c := range conns {
		c.close()
	}
	wg.Wait()
	st := s.Stats()
	s.log.Info("rtp source stopped", "packets", st.Packets, "bytes", st.Bytes, "malformed", st.Malformed,
		"wrong_payload_type", st.WrongPayloadType, "foreign_ssrc", st.ForeignSSRC, "rtcp", st.RTCP, "rtcp_malformed", st.RTCPMalformed,
		"param_sets_inserted", st.ParamSetsInserted, "keyframe_requests", st.KeyframeRequests)
	if err := context.Cause(ctx); !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	return nil
}

// reportInterval is how often a source logs the problems it counted.
const reportInterval = time.Second

// report logs, once a second while ctx lasts, the dropped packets counted
// in that second, if any.
func (s *RTP) report(ctx context.Context) {
	t := time.NewTicker(reportInterval)
	defer t.Stop()
	var prev RTPStats
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		st := s.Stats()
		if st.Malformed != prev.Malformed || st.WrongPayloadType != prev.WrongPayloadType ||
			st.ForeignSSRC != prev.ForeignSSRC || st.RTCPMalformed != prev.RTCPMalformed || st.KeyframeRequestErrors != prev.KeyframeRequestErrors {
			s.log.Warn("rtp source: packets dropped in the last second",
				"malformed", st.Malformed-prev.Malformed, "wrong_payload_type", st.WrongPayloadType-prev.WrongPayloadType,
				"foreign_ssrc", st.ForeignSSRC-prev.ForeignSSRC,
				"rtcp_malformed", st.RTCPMalformed-prev.RTCPMalformed,
				"keyframe_requests_not_sent", st.KeyframeRequestErrors-prev.KeyframeRequestErrors)
		}
		prev = st
	}
}

// open binds each track's RTP socket and, when it is free, its RTCP socket
// on the next port.
func (s *RTP) open() ([]rtpConns, error) {
	conns := make([]rtpConns, len(s.tracks))
	closeAll := func() {
		for _, c := range conns {
			c.close()
		}
	}
	for i, l := range s.listen {
		ap, err := netip.ParseAddrPort(l)
		if err != nil {
			addr, rerr := net.ResolveUDPAddr("udp", l)
			if rerr != nil {
				closeAll()
				return nil, fmt.Errorf("rtp source: track %d: listen %q: %w", i, l, rerr)
			}
			ap = addr.AddrPort()
		}
		c, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(ap))
		if err != nil {
			closeAll()
			return nil, fmt.Errorf("rtp source: track %d: %w", i, err)
		}
		conns[i].rtp = c
		if ap.Port() == 0 || ap.Port() == 65535 {
			continue
		}
		rc, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(ap.Addr(), ap.Port()+1)))
		if err != nil {
			s.log.Warn("rtp source: no RTCP socket on the next port; RTCP is taken multiplexed only",
				"track", i, "listen", l, "error", err)
			continue
		}
		conns[i].rtcp = rc
	}
	return conns, nil
}

func (c rtpConns) close() {
	if c.rtp != nil {
		c.rtp.Close()
	}
	if c.rtcp != nil {
		c.rtcp.Close()
	}
}

// isRTCP tells RTCP from RTP on a multiplexed port by the packet type
// (RFC 5761: 200-211 are RTCP's; an RTP payload type there would be
// 72-83 with the marker bit set, which must not be used).
func isRTCP(b []byte) bool { return len(b) >= 2 && b[1] >= 200 && b[1] <= 211 }

// readRTP reads track i's RTP socket until it is closed.
func (s *RTP) readRTP(cancel context.CancelCauseFunc, i int, conn *net.UDPConn, w media.PacketWriter, wmu *sync.Mutex) {
	buf := make([]byte, rtpBufSize)
	in := s.newRTPIn(i)
	emit := func(p *rtp.Packet) error {
		wmu.Lock()
		defer wmu.Unlock()
		return w(i, p)
	}
	for {
		n, from, err := conn.ReadFromUDPAddrPort(buf)
		if err != nil {
			if !errors.Is(err, net.ErrClosed) {
				cancel(fmt.Errorf("rtp source: track %d: read: %w", i, err))
			}
			return
		}
		ps, pkt := in.take(buf[:n], from, time.Now())
		if ps != nil {
			if err := emit(ps); err != nil {
				cancel(err)
				return
			}
		}
		if pkt != nil {
			if err := emit(pkt); err != nil {
				cancel(err)
				return
			}
		}
	}
}

// ssrcTakeover is how long a track's sender must have been silent before
// RTP of another SSRC replaces it (a restarted camera or encoder picks a
// new SSRC). Until then, packets of other SSRCs are stray or hostile:
// counted and dropped, so that they cannot break the stream sent on.
const ssrcTakeover = time.Second

// rtpIn is the per-packet state of one track's RTP reader; it is used by
// that reader's goroutine only.
type rtpIn struct {
	s      *RTP
	i      int
	pt     uint8
	params *h264Params // nil unless H.264
	pkt    rtp.Packet  // reused for every datagram

	from   netip.AddrPort // source address of the last packet taken
	ssrc   uint32         // the sender's SSRC, once one is taken
	locked bool
	lastAt time.Time // when the sender's last packet was taken
}

func (s *RTP) newRTPIn(i int) *rtpIn {
	return &rtpIn{s: s, i: i, pt: s.tracks[i].PayloadType, params: s.params[i]}
}

// take handles one datagram received on the track's RTP port at now: RTCP
// (multiplexed) goes to rtcpIn; RTP of the track's payload type and
// sender is returned as pkt (valid until the next call), preceded by ps
// when the H.264 parameter sets must be put in front of it. Anything else
// is counted and dropped (both nil). Every datagram is counted once.
func (in *rtpIn) take(b []byte, from netip.AddrPort, now time.Time) (ps, pkt *rtp.Packet) {
	s := in.s
	if isRTCP(b) {
		s.rtcpIn(in.i, from, b)
		return nil, nil
	}
	p := &in.pkt
	if len(b) < 12 || b[0]>>6 != 2 || p.Unmarshal(b) != nil {
		s.stats.malformed.Add(1)
		return nil, nil
	}
	if p.PayloadType != in.pt {
		s.stats.wrongPT.Add(1)
		return nil, nil
	}
	if in.locked && p.SSRC != in.ssrc && now.Sub(in.lastAt) < ssrcTakeover {
		s.stats.foreignSSRC.Add(1)
		return nil, nil
	}
	if in.params != nil {
		var ok bool
		if ps, ok = in.params.inspect(p); !ok {
			s.stats.malformed.Add(1)
			return nil, nil
		}
	}
	in.lastAt = now
	if !in.locked || from != in.from || p.SSRC != in.ssrc {
		in.from, in.ssrc, in.locked = from, p.SSRC, true
		s.mu.Lock()
		s.peers[in.i].rtp, s.peers[in.i].ssrc = from, p.SSRC
		s.mu.Unlock()
	}
	if ps != nil {
		s.stats.paramSets.Add(1)
	}
	s.stats.packets.Add(1)
	s.stats.bytes.Add(uint64(len(b)))
	return ps, p
}

// readRTCP reads track i's RTCP socket until it is closed.
func (s *RTP) readRTCP(cancel context.CancelCauseFunc, i int, conn *net.UDPConn) {
	buf := make([]byte, rtpBufSize)
	for {
		n, from, err := conn.ReadFromUDPAddrPort(buf)
		if err != nil {
			if !errors.Is(err, net.ErrClosed) {
				cancel(fmt.Errorf("rtp source: track %d: rtcp read: %w", i, err))
			}
			return
		}
		if !isRTCP(buf[:n]) {
			s.stats.rtcpMalformed.Add(1)
			continue
		}
		s.rtcpIn(i, from, buf[:n])
	}
}

// rtcpIn takes an RTCP compound packet from track i's sender: it is
// counted and its source address becomes where keyframe requests go. Once
// the sender's SSRC is known from its RTP, a compound that names none of
// its SSRC (a stray or hostile one: it would otherwise draw the keyframe
// requests) is counted as foreign and dropped.
func (s *RTP) rtcpIn(i int, from netip.AddrPort, b []byte) {
	pkts, err := rtcp.Unmarshal(b)
	if err != nil {
		s.stats.rtcpMalformed.Add(1)
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	p := &s.peers[i]
	if p.rtp.IsValid() && !namesSSRC(pkts, p.ssrc) {
		s.stats.foreignSSRC.Add(1)
		return
	}
	s.stats.rtcp.Add(1)
	p.rtcp = from
}

// namesSSRC tells whether one of pkts is about ssrc.
func namesSSRC(pkts []rtcp.Packet, ssrc uint32) bool {
	for _, p := range pkts {
		for _, x := range p.DestinationSSRC() {
			if x == ssrc {
				return true
			}
		}
	}
	return false
}

// RequestKeyframe sends an RTCP PLI (and a FIR for H.264) for the video
// track of that index to its sender: to where its RTCP comes from, or to
// port+1 of its RTP's source address while no RTCP has come. It does
// nothing for an audio track, an unknown index, before the first packet
// or when Run is not running.
func (s *RTP) RequestKeyframe(track int) {
	if track < 0 || track >= len(s.tracks) || s.tracks[track].Kind != "video" {
		return
	}
	s.mu.Lock()
	if s.conns == nil {
		s.mu.Unlock()
		return
	}
	c := s.conns[track]
	p := &s.peers[track]
	to := p.rtcp
	if !to.IsValid() && p.rtp.IsValid() && p.rtp.Port() < 65535 {
		to = netip.AddrPortFrom(p.rtp.Addr(), p.rtp.Port()+1)
	}
	ssrc := p.ssrc
	p.firSeq++
	firSeq := p.firSeq
	s.mu.Unlock()
	if !to.IsValid() {
		s.stats.kfErrors.Add(1)
		return
	}
	pkts := []rtcp.Packet{&rtcp.PictureLossIndication{SenderSSRC: s.ssrc, MediaSSRC: ssrc}}
	if s.tracks[track].Codec == media.H264 {
		pkts = append(pkts, &rtcp.FullIntraRequest{SenderSSRC: s.ssrc, MediaSSRC: ssrc,
			FIR: []rtcp.FIREntry{{SSRC: ssrc, SequenceNumber: firSeq}}})
	}
	b, err := rtcp.Marshal(pkts)
	if err == nil {
		conn := c.rtcp
		if conn == nil || to == p.rtp { // RTCP multiplexed: answer from the RTP port
			conn = c.rtp
		}
		_, err = conn.WriteToUDPAddrPort(b, to)
	}
	if err != nil {
		s.stats.kfErrors.Add(1)
		s.log.Debug("rtp source: keyframe request not sent", "track", track, "to", to, "error", err)
		return
	}
	s.stats.kfRequests.Add(1)
}

// h264Params keeps an H.264 track's latest parameter sets and puts them in
// front of a keyframe that comes without them. It is used by the track's
// reading goroutine only.
type h264Params struct {
	sps, pps []byte

	// The access unit being received (by RTP timestamp): whether it
	// carried an SPS and a PPS, and whether its IDR has started.
	au               uint32
	auSPS, auPPS     bool
	auIDR, auStarted bool

	seqShift uint16 // sequence numbers added so far
	stap     []byte // the STAP-A payload, reused
	pkt      rtp.Packet
}

// newH264Params starts with the parameter sets of fmtp's
// sprop-parameter-sets, if any.
func newH264Params(fmtp string) *h264Params {
	p := &h264Params{}
	for _, kv := range strings.Split(fmtp, ";") {
		k, v, _ := strings.Cut(strings.TrimSpace(kv), "=")
		if !strings.EqualFold(k, "sprop-parameter-sets") {
			continue
		}
		for _, ps := range strings.Split(v, ",") {
			nal, err := base64.StdEncoding.DecodeString(strings.TrimSpace(ps))
			if err != nil {
				continue
			}
			p.keep(nal)
		}
	}
	return p
}

// keep remembers nal if it is a parameter set; it reports which.
func (p *h264Params) keep(nal []byte) uint8 {
	t := media.H264NALType(nal)
	switch t {
	case media.H264NALSPS:
		p.sps = append(p.sps[:0], nal...)
	case media.H264NALPPS:
		p.pps = append(p.pps[:0], nal...)
	}
	return t
}

// inspect looks at one packet of the track in arrival order. It returns a
// STAP-A packet of the parameter sets to send before pkt when pkt starts
// a keyframe that came without them, and shifts pkt's sequence number past
// the packets inserted so far. ok is false for a malformed payload.
func (p *h264Params) inspect(pkt *rtp.Packet) (insert *rtp.Packet, ok bool) {
	if !p.auStarted || pkt.Timestamp != p.au {
		p.au, p.auStarted = pkt.Timestamp, true
		p.auSPS, p.auPPS, p.auIDR = false, false, false
	}
	b := pkt.Payload
	idr := false
	note := func(nal []byte) {
		switch p.keep(nal) {
		case media.H264NALSPS:
			p.auSPS = true
		case media.H264NALPPS:
			p.auPPS = true
		case media.H264NALIDR:
			idr = true
		}
	}
	switch t := media.H264NALType(b); {
	case len(b) == 0:
		return nil, false
	case t >= 1 && t <= 23:
		note(b)
	case t == 24: // STAP-A
		for r := b[1:]; len(r) > 0; {
			if len(r) < 2 {
				return nil, false
			}
			n := int(r[0])<<8 | int(r[1])
			if n == 0 || len(r) < 2+n {
				return nil, false
			}
			note(r[2 : 2+n])
			r = r[2+n:]
		}
	case t == 28: // FU-A
		if len(b) < 2 {
			return nil, false
		}
		if b[1]&0x80 != 0 && b[1]&0x1f == media.H264NALIDR {
			idr = true
		}
	}
	if idr && !p.auIDR {
		p.auIDR = true
		if !(p.auSPS && p.auPPS) && p.sps != nil && p.pps != nil {
			insert = p.stapA(pkt)
		}
	}
	pkt.SequenceNumber += p.seqShift
	return insert, true
}

// stapA builds the STAP-A packet of the parameter sets for the access unit
// of pkt, with pkt's sequence number, and shifts the following ones by one.
func (p *h264Params) stapA(pkt *rtp.Packet) *rtp.Packet {
	nri := max(p.sps[0], p.pps[0]) & 0x60
	b := append(p.stap[:0], nri|24)
	b = append(b, byte(len(p.sps)>>8), byte(len(p.sps)))
	b = append(b, p.sps...)
	b = append(b, byte(len(p.pps)>>8), byte(len(p.pps)))
	b = append(b, p.pps...)
	p.stap = b
	p.pkt.Header = rtp.Header{
		Version:        2,
		PayloadType:    pkt.PayloadType,
		SequenceNumber: pkt.SequenceNumber + p.seqShift,
		Timestamp:      pkt.Timestamp,
		SSRC:           pkt.SSRC,
	}
	p.pkt.Payload = b
	p.seqShift++
	return &p.pkt
}

// tracksFromSDPFile reads the SDP file at path.
func tracksFromSDPFile(path string) ([]media.Track, []string, error) {
	data, err := readFile(path)
	if err != nil {
		return nil, nil, err
	}
	tracks, listen, err := tracksFromSDP(data)
	if err != nil {
		return nil, nil, fmt.Errorf("sdp %s: %w", path, err)
	}
	return tracks, listen, nil
}

// trackFromSDPFormat returns the track of payload type pt described by
// md's rtpmap and fmtp attributes; ok is false for a codec we do not take.
func trackFromSDPFormat(md *mediaSection, pt int) (media.Track, bool) {
	var codec string
	clock, channels := 0, 0
	if rtpmap, found := md.attr("rtpmap", pt); found {
		parts := strings.Split(rtpmap, "/")
		codec = strings.ToLower(strings.TrimSpace(parts[0]))
		if len(parts) > 1 {
			clock, _ = strconv.Atoi(strings.TrimSpace(parts[1]))
		}
		if len(parts) > 2 {
			channels, _ = strconv.Atoi(strings.TrimSpace(parts[2]))
		}
	} else {
		switch pt { // static payload types (RFC 3551)
		case 0:
			codec, clock = media.PCMU, 8000
		case 8:
			codec, clock = media.PCMA, 8000
		}
	}
	kind := media.KindOf(codec)
	if kind == "" || kind != md.kind {
		return media.Track{}, false
	}
	if clock <= 0 {
		clock = defaultClockRate(codec)
	}
	if kind == "audio" && channels <= 0 {
		channels = 1
		if codec == media.Opus {
			channels = 2
		}
	}
	if kind == "video" {
		channels = 0
	}
	fmtp, _ := md.attr("fmtp", pt)
	return media.Track{
		Kind:        kind,
		Codec:       codec,
		ClockRate:   uint32(clock),
		Channels:    uint16(channels),
		PayloadType: uint8(pt),
		Fmtp:        fmtp,
	}, true
}
