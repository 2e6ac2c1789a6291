package bridge

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/pion/rtcp"
	"github.com/pion/rtp"

	"github.com/janusbridge/janusbridge/janus"
	"github.com/janusbridge/janusbridge/media"
)

// senderReportInterval is how often a Streaming send bridge sends RTCP
// sender reports to the mountpoint (which also tells Janus where to send
// its keyframe requests).
const senderReportInterval = time.Second

// plainOut sends one track's RTP to a Streaming mountpoint's port, and
// keeps what its sender reports need. Guarded by its track's mu.
type plainOut struct {
	conn    *net.UDPConn // RTP, connected to the mountpoint's port
	ssrc    uint32
	pt      uint8
	buf     []byte
	packets uint32
	octets  uint32
	lastTS  uint32
	lastAt  time.Time
}

func (o *plainOut) write(p *rtp.Packet, now time.Time) error {
	p.SSRC, p.PayloadType = o.ssrc, o.pt
	n, err := p.MarshalTo(o.buf)
	if err != nil {
		return err
	}
	if _, err := o.conn.Write(o.buf[:n]); err != nil {
		return err
	}
	o.packets++
	o.octets += uint32(len(p.Payload))
	o.lastTS, o.lastAt = p.Timestamp, now
	return nil
}

// senderReport describes what was sent, with the RTP time of now
// extrapolated from the last packet.
func (o *plainOut) senderReport(now time.Time, clock uint32) *rtcp.SenderReport {
	ts := o.lastTS
	if !o.lastAt.IsZero() {
		ts += uint32(now.Sub(o.lastAt).Seconds() * float64(clock))
	}
	return &rtcp.SenderReport{SSRC: o.ssrc, NTPTime: ntpTime(now), RTPTime: ts, PacketCount: o.packets, OctetCount: o.octets}
}

// ntpTime is t in the NTP format of sender reports.
func ntpTime(t time.Time) uint64 {
	const ntpEpochOffset = 2208988800
	secs := uint64(t.Unix()) + ntpEpochOffset
	frac := (uint64(t.Nanosecond()) << 32) / 1e9
	return secs<<32 | frac
}

// errMismatch: what the bridge would feed does not fit what exists in
// Janus (a mountpoint with other codecs): the bridge fails, retried slowly.
var errMismatch = errors.New("does not fit the source")

// mountpointMedia is one stream of the mountpoint the bridge feeds: its
// mid, codec and ports.
type mountpointMedia struct {
	mid      string
	kind     string
	codec    string
	pt       int
	port     int
	rtcpPort int
}

// streamingSession feeds a Streaming mountpoint (created, or existing)
// with plain RTP until the handle fails or ctx ends; a mountpoint it
// created is destroyed when it ends.
func (s *send) streamingSession(ctx context.Context) error {
	b := s.b
	b.setState(StateNegotiating, nil)
	h, err := b.attach(ctx, janus.PluginStreaming)
	if err != nil {
		return err
	}
	defer b.detach(h, nil)
	tracks := s.activeTracks()
	if len(tracks) == 0 {
		return errNoSource
	}
	media, created, err := s.mountpoint(ctx, h, tracks)
	if err != nil {
		return err
	}
	if created {
		// Ours until destroyed, even when a later session finds it still
		// there (its session lost while Janus lived).
		s.ownsMountpoint = true
	}
	if s.ownsMountpoint {
		defer func() {
			if h.Err() != nil {
				return // the handle is gone, with Janus or our session; a later session sees to it
			}
			dctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer cancel()
			if err := janus.StreamingDestroy(dctx, h, JanusID(b.cfg.Mountpoint), b.cfg.Secret); err != nil {
				b.log.Warn("destroying the mountpoint", "err", err)
			} else {
				b.log.Info("mountpoint destroyed", "mountpoint", b.cfg.Mountpoint.String())
				s.ownsMountpoint = false
			}
		}()
	}
	host, err := janusHost(b.env.Session.Server())
	if err != nil {
		return err
	}

	var readers sync.WaitGroup
	var conns []*net.UDPConn
	type rtcpOut struct {
		t    *sendTrack
		conn *net.UDPConn
	}
	var reports []rtcpOut
	defer func() {
		for _, t := range tracks {
			t.mu.Lock()
			t.plain, t.mid = nil, ""
			t.mu.Unlock()
		}
		for _, c := range conns {
			c.Close()
		}
		readers.Wait()
	}()
	for i, t := range tracks {
		m := media[i]
		conn, err := net.DialUDP("udp", nil, &net.UDPAddr{IP: host, Port: m.port})
		if err != nil {
			return fmt.Errorf("mid %s: %w", m.mid, err)
		}
		conns = append(conns, conn)
		out := &plainOut{conn: conn, ssrc: rand.Uint32(), pt: uint8(m.pt), buf: make([]byte, 1500)}
		if m.rtcpPort > 0 {
			rc, err := net.DialUDP("udp", nil, &net.UDPAddr{IP: host, Port: m.rtcpPort})
			if err != nil {
				return fmt.Errorf("mid %s rtcp: %w", m.mid, err)
			}
			conns = append(conns, rc)
			reports = append(reports, rtcpOut{t, rc})
			readers.Add(1)
			go func() {
				defer readers.Done()
				readPlainRTCP(rc, t)
			}()
		}
		t.mu.Lock()
		t.plain, t.mid = out, m.mid
		t.mu.Unlock()
	}
	b.setState(StateUp, nil)
	b.log.Info("feeding the mountpoint", "mountpoint", b.cfg.Mountpoint.String(), "created", created)
	s.requestKeyframes()

	tick := time.NewTicker(senderReportInterval)
	defer tick.Stop()
	sendReports := func() {
		now := time.Now()
		for _, r := range reports {
			r.t.mu.Lock()
			sr := r.t.plain.senderReport(now, r.t.desc.ClockRate)
			r.t.mu.Unlock()
			data, err := sr.Marshal()
			if err == nil {
				_, err = r.conn.Write(data)
			}
			if err != nil {
				b.log.Debug("sender report", "err", err)
			}
		}
	}
	sendReports()
	idle := time.NewTicker(idleCheckEvery)
	defer idle.Stop()
	var watch idleWatch
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-s.done:
			return nil
		case m, ok := <-h.Events():
			if !ok {
				return fmt.Errorf("handle gone: %w", h.Err())
			}
			if m.Janus == "hangup" {
				return fmt.Errorf("janus hung up: %s", m.Reason)
			}
		case <-tick.C:
			sendReports()
		case now := <-idle.C:
			s.checkIdle(&watch, now)
		}
	}
}

// readPlainRTCP reads the RTCP Janus sends back on a mountpoint's RTCP
// port (keyframe requests from its viewers) until conn is closed.
func readPlainRTCP(conn *net.UDPConn, t *sendTrack) {
	buf := make([]byte, 1500)
	for {
		n, err := conn.Read(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue // e.g. ICMP port unreachable before Janus listens
		}
		pkts, err := rtcp.Unmarshal(buf[:n])
		if err != nil {
			continue
		}
		t.onRTCP(pkts)
	}
}

// mountpoint finds or creates the mountpoint the bridge feeds and returns
// its streams, one per track in order, and whether it created it.
func (s *send) mountpoint(ctx context.Context, h *janus.Handle, tracks []*sendTrack) ([]mountpointMedia, bool, error) {
	cfg := s.b.cfg
	id := JanusID(cfg.Mountpoint)
	info, err := janus.StreamingInfo(ctx, h, id, cfg.Secret)
	var pe *janus.PluginError
	switch {
	case err == nil:
		got, err := infoMedia(info, tracks)
		if err != nil {
			return nil, false, fmt.Errorf("%w: mountpoint %s: %w", errMismatch, cfg.Mountpoint, err)
		}
		if cfg.Create && !s.ownsMountpoint {
			s.b.log.Info("mountpoint exists with the same codecs: feeding it, leaving it in place", "mountpoint", cfg.Mountpoint.String())
		}
		return got, false, nil
	case !cfg.Create || !errors.As(err, &pe) || pe.Code != janus.StreamingErrNoSuchMountpoint:
		return nil, false, err
	}
	req := janus.StreamingCreateRequest{
		ID: id, Name: "janusbridge-" + cfg.Name, Description: "janusbridge " + cfg.Name,
		Secret: cfg.Secret, Pin: cfg.Pin, AdminKey: cfg.AdminKey,
	}
	for _, t := range tracks {
		req.Media = append(req.Media, janus.StreamingCreateMedia{
			Type: t.desc.Kind, MID: strconv.Itoa(t.desc.Index), RTCP: true,
			PT: mountpointPT(t.desc), Codec: t.desc.Codec, FMTP: mountpointFmtp(t.desc),
		})
	}
	created, err := janus.StreamingCreateRTP(ctx, h, req)
	if err != nil {
		return nil, false, fmt.Errorf("creating mountpoint %s: %w", cfg.Mountpoint, err)
	}
	var out []mountpointMedia
	for i, m := range req.Media {
		p, ok := created.Port(m.MID)
		if !ok || p.Port == 0 {
			return nil, true, fmt.Errorf("created mountpoint %s: no port for mid %s", cfg.Mountpoint, m.MID)
		}
		out = append(out, mountpointMedia{mid: m.MID, kind: tracks[i].desc.Kind, codec: m.Codec, pt: m.PT, port: p.Port, rtcpPort: p.RTCPPort})
	}
	s.b.log.Info("mountpoint created", "mountpoint", cfg.Mountpoint.String())
	return out, true, nil
}

// infoMedia matches an existing mountpoint's streams to the tracks: each
// track to a stream of its kind and codec (in order when several fit),
// every stream fed, ports known (the secret lets Janus tell them).
func infoMedia(info *janus.StreamingMountpointInfo, tracks []*sendTrack) ([]mountpointMedia, error) {
	var ms []janus.StreamingMedia
	for _, m := range info.Media {
		if m.Type == "audio" || m.Type == "video" {
			ms = append(ms, m)
		}
	}
	if len(ms) != len(tracks) {
		return nil, fmt.Errorf("has %d audio/video streams, the source %d tracks", len(ms), len(tracks))
	}
	used := make([]bool, len(ms))
	var out []mountpointMedia
	for i, t := range tracks {
		j := -1
		for k, m := range ms {
			if !used[k] && m.Type == t.desc.Kind && strings.EqualFold(m.Codec, t.desc.Codec) {
				j = k
				break
			}
		}
		if j < 0 {
			return nil, fmt.Errorf("no %s %s stream for the source's track %d", t.desc.Kind, t.desc.Codec, i)
		}
		m := ms[j]
		used[j] = true
		if m.Port == 0 {
			return nil, fmt.Errorf("stream %s: Janus tells no port (wrong or missing secret?)", m.MID)
		}
		out = append(out, mountpointMedia{mid: m.MID, kind: m.Type, codec: m.Codec, pt: m.PT, port: m.Port, rtcpPort: m.RTCPPort})
	}
	return out, nil
}

// mountpointPT is the payload type of a created mountpoint's stream: the
// source's, or a dynamic one.
func mountpointPT(t media.Track) int {
	switch {
	case t.Codec == media.PCMU:
		return 0
	case t.Codec == media.PCMA:
		return 8
	case t.PayloadType >= 96:
		return int(t.PayloadType)
	}
	return 96 + t.Index%32
}

// mountpointFmtp is the fmtp of a created mountpoint's stream.
func mountpointFmtp(t media.Track) string {
	if t.Codec == media.H264 {
		return "profile-level-id=" + h264Profile(t.Fmtp) + ";packetization-mode=1"
	}
	return ""
}

// janusHost is the address of the Janus server of a session's URL: where
// its Streaming plugin receives RTP.
func janusHost(server string) (net.IP, error) {
	u, err := url.Parse(server)
	if err != nil {
		return nil, fmt.Errorf("janus server %q: %w", server, err)
	}
	host := u.Hostname()
	if ip := net.ParseIP(host); ip != nil {
		return ip, nil
	}
	ips, err := net.LookupIP(host)
	if err != nil || len(ips) == 0 {
		return nil, fmt.Errorf("janus server %q: cannot resolve %q: %v", server, host, err)
	}
	return ips[0], nil
}
