package janus

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"strings"
	"time"

	"github.com/pion/ice/v4"
	"github.com/pion/interceptor"
	"github.com/pion/interceptor/pkg/nack"
	"github.com/pion/logging"
	"github.com/pion/stun/v4"
	piontransport "github.com/pion/transport/v5"
	"github.com/pion/transport/v5/stdnet"
	"github.com/pion/webrtc/v4"
)

// WebRTCOptions are the WebRTC settings shared by every PeerConnection of a
// process (the [webrtc] section of the configuration). The zero value is
// usable: any port, every interface but loopback, pion's ICE timeouts.
type WebRTCOptions struct {
	// ICEServers are the STUN and TURN servers. They are not part of the
	// API that NewAPI builds: pass them on in PeerConfig.ICEServers.
	ICEServers []webrtc.ICEServer
	// UDPPortMin and UDPPortMax bound the local UDP ports of ICE candidates;
	// both 0 means any ephemeral port.
	UDPPortMin, UDPPortMax uint16
	// NAT1To1IPs are the public addresses of a 1:1 NAT in front of this
	// host, advertised instead of the local addresses in host candidates.
	// An entry is "EXTERNAL" (for every local address of its IP family) or
	// "EXTERNAL/LOCAL" (for one local address).
	NAT1To1IPs []string
	// Interfaces restricts ICE gathering to the network interfaces named;
	// empty means every interface.
	Interfaces []string
	// LoopbackCandidates gathers candidates on loopback addresses too (for
	// tests and for a Janus on the same host).
	LoopbackCandidates bool
	// ICEDisconnectedTimeout is how long without network activity before ICE
	// reports disconnected; 0 means pion's default (5s).
	ICEDisconnectedTimeout time.Duration
	// ICEFailedTimeout is how long after disconnected before ICE reports
	// failed; 0 means pion's default (25s).
	ICEFailedTimeout time.Duration
	// UDPMux, when set, carries the ICE traffic of every PeerConnection over
	// one shared UDP socket (one recvmsg loop for all of them instead of one
	// per PeerConnection). Create it with webrtc.NewICEUDPMux and close it
	// after the last PeerConnection of the API is closed. It excludes
	// UDPPortMin and UDPPortMax.
	UDPMux ice.UDPMux
	// Logger receives pion's log lines (scope in the "pion" attribute, pion's
	// trace level below slog.LevelDebug); nil discards them.
	Logger *slog.Logger
	// Feedback, when set, counts the NACKs the PeerConnections send.
	Feedback *FeedbackCounter
}

// Validate checks o. Errors name the configuration key, as in the [webrtc]
// section.
func (o *WebRTCOptions) Validate() error {
	var errs []error
	for i, s := range o.ICEServers {
		if err := validateICEServer(s); err != nil {
			errs = append(errs, fmt.Errorf("ice_servers[%d]: %w", i, err))
		}
	}
	switch {
	case o.UDPPortMin == 0 && o.UDPPortMax == 0:
	case o.UDPPortMax == 0:
		errs = append(errs, errors.New("udp_port_max: required when udp_port_min is set"))
	case o.UDPPortMin > o.UDPPortMax:
		errs = append(errs, fmt.Errorf("udp_port_min: %d is above udp_port_max %d", o.UDPPortMin, o.UDPPortMax))
	}
	if o.UDPMux != nil && (o.UDPPortMin != 0 || o.UDPPortMax != 0) {
		errs = append(errs, errors.New("udp_port_min, udp_port_max: not used with a shared UDP socket"))
	}
	if _, err := addressRewriteRules(o.NAT1To1IPs); err != nil {
		errs = append(errs, err)
	}
	for i, name := range o.Interfaces {
		if strings.TrimSpace(name) == "" {
			errs = append(errs, fmt.Errorf("interfaces[%d]: empty name", i))
		}
	}
	if o.ICEDisconnectedTimeout < 0 {
		errs = append(errs, fmt.Errorf("ice_disconnected_timeout: negative (%s)", o.ICEDisconnectedTimeout))
	}
	if o.ICEFailedTimeout < 0 {
		errs = append(errs, fmt.Errorf("ice_failed_timeout: negative (%s)", o.ICEFailedTimeout))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("janus: webrtc options: %w", err)
	}
	return nil
}

func validateICEServer(s webrtc.ICEServer) error {
	if len(s.URLs) == 0 {
		return errors.New("urls: empty")
	}
	for j, u := range s.URLs {
		uri, err := stun.ParseURI(u)
		if err != nil {
			return fmt.Errorf("urls[%d] %q: %w", j, u, err)
		}
		if uri.Scheme != stun.SchemeTypeTURN && uri.Scheme != stun.SchemeTypeTURNS {
			continue
		}
		if s.Username == "" {
			return fmt.Errorf("urls[%d] %q: username required for TURN", j, u)
		}
		if s.CredentialType == webrtc.ICECredentialTypePassword {
			if c, ok := s.Credential.(string); !ok || c == "" {
				return fmt.Errorf("urls[%d] %q: credential (a password) required for TURN", j, u)
			}
		}
	}
	return nil
}

// addressRewriteRules turns nat_1to1_ips entries into pion rewrite rules:
// one catch-all rule for the bare addresses, one rule per "EXT/LOCAL" pair.
// Host candidates are replaced, as with Janus's nat_1_1_mapping.
func addressRewriteRules(ips []string) ([]webrtc.ICEAddressRewriteRule, error) {
	var catchAll []string
	var rules []webrtc.ICEAddressRewriteRule
	for i, entry := range ips {
		ext, local, pair := strings.Cut(strings.TrimSpace(entry), "/")
		if net.ParseIP(ext) == nil {
			return nil, fmt.Errorf("nat_1to1_ips[%d]: %q is not an IP address", i, entry)
		}
		if !pair {
			catchAll = append(catchAll, ext)
			continue
		}
		if net.ParseIP(local) == nil {
			return nil, fmt.Errorf("nat_1to1_ips[%d]: local address in %q is not an IP address", i, entry)
		}
		rules = append(rules, webrtc.ICEAddressRewriteRule{
			External:        []string{ext},
			Local:           local,
			AsCandidateType: webrtc.ICECandidateTypeHost,
			Mode:            webrtc.ICEAddressRewriteReplace,
		})
	}
	if len(catchAll) > 0 {
		rules = append(rules, webrtc.ICEAddressRewriteRule{
			External:        catchAll,
			AsCandidateType: webrtc.ICECandidateTypeHost,
			Mode:            webrtc.ICEAddressRewriteReplace,
		})
	}
	return rules, nil
}

// NewAPI builds the pion API for o: the one place that decides the codecs,
// the interceptors and the ICE settings of janusbridge's PeerConnections.
// The same API serves receiving and sending PeerConnections: each
// interceptor acts only on the streams of its direction.
func NewAPI(o WebRTCOptions) (*webrtc.API, error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	m := &webrtc.MediaEngine{}
	if err := registerCodecs(m); err != nil {
		return nil, fmt.Errorf("janus: webrtc codecs: %w", err)
	}
	ir := &interceptor.Registry{}
	if err := registerInterceptors(m, ir, o.Feedback); err != nil {
		return nil, fmt.Errorf("janus: webrtc interceptors: %w", err)
	}
	se, err := settingEngine(o)
	if err != nil {
		return nil, fmt.Errorf("janus: webrtc settings: %w", err)
	}
	return webrtc.NewAPI(
		webrtc.WithMediaEngine(m),
		webrtc.WithInterceptorRegistry(ir),
		webrtc.WithSettingEngine(se),
	), nil
}

// Payload types of the codecs below: pion's defaults where pion has one, so
// that SDPs read the same as pion's; Janus maps payload types per
// PeerConnection anyway.
const (
	ptOpus        = 111
	ptPCMU        = 0
	ptPCMA        = 8
	ptVP8         = 96
	ptVP9         = 98
	ptH264Base    = 102 // 42001f
	ptH264CB      = 106 // 42e01f
	ptH264Main    = 127 // 4d001f
	ptH264High    = 112 // 64001f
	ptH264HighC   = 123 // 640c1f
	ptAV1         = 45
	h264FmtpStart = "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id="
)

// registerCodecs registers what Janus relays and our sinks and sources
// handle, in order of preference when we offer: Opus then G.711 for audio;
// VP8, VP9 profile 0, H.264 (packetization-mode 1 only: Janus and the
// depacketisers want it; the constrained-baseline, baseline, main and the two
// high profile-level-ids browsers publish, since pion matches the profile
// bytes exactly) and AV1 for video. RTX, RED and FEC are left out: Janus
// retransmits on the original SSRC without RTX, and every repair stream is
// one more goroutine and buffer per track.
func registerCodecs(m *webrtc.MediaEngine) error {
	// Keyframe requests; "nack" itself is added by ConfigureNack with the
	// interceptors that implement it.
	videoFB := []webrtc.RTCPFeedback{{Type: "nack", Parameter: "pli"}, {Type: "ccm", Parameter: "fir"}}
	audio := []webrtc.RTPCodecParameters{
		{RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus, ClockRate: 48000, Channels: 2, SDPFmtpLine: "minptime=10;useinbandfec=1"}, PayloadType: ptOpus},
		{RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypePCMU, ClockRate: 8000}, PayloadType: ptPCMU},
		{RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypePCMA, ClockRate: 8000}, PayloadType: ptPCMA},
	}
	video := []webrtc.RTPCodecParameters{
		{RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP8, ClockRate: 90000, RTCPFeedback: videoFB}, PayloadType: ptVP8},
		{RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP9, ClockRate: 90000, SDPFmtpLine: "profile-id=0", RTCPFeedback: videoFB}, PayloadType: ptVP9},
		{RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeH264, ClockRate: 90000, SDPFmtpLine: h264FmtpStart + "42e01f", RTCPFeedback: videoFB}, PayloadType: ptH264CB},
		{RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeH264, ClockRate: 90000, SDPFmtpLine: h264FmtpStart + "42001f", RTCPFeedback: videoFB}, PayloadType: ptH264Base},
		{RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeH264, ClockRate: 90000, SDPFmtpLine: h264FmtpStart + "4d001f", RTCPFeedback: videoFB}, PayloadType: ptH264Main},
		{RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeH264, ClockRate: 90000, SDPFmtpLine: h264FmtpStart + "640c1f", RTCPFeedback: videoFB}, PayloadType: ptH264HighC},
		{RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeH264, ClockRate: 90000, SDPFmtpLine: h264FmtpStart + "64001f", RTCPFeedback: videoFB}, PayloadType: ptH264High},
		{RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeAV1, ClockRate: 90000, RTCPFeedback: videoFB}, PayloadType: ptAV1},
	}
	for _, c := range audio {
		if err := m.RegisterCodec(c, webrtc.RTPCodecTypeAudio); err != nil {
			return fmt.Errorf("%s: %w", c.MimeType, err)
		}
	}
	for _, c := range video {
		if err := m.RegisterCodec(c, webrtc.RTPCodecTypeVideo); err != nil {
			return fmt.Errorf("%s %s: %w", c.MimeType, c.SDPFmtpLine, err)
		}
	}
	// The mid header extension lets pion route a stream whose SSRC the SDP
	// did not declare to its m-line; Janus sends it when negotiated.
	for _, kind := range []webrtc.RTPCodecType{webrtc.RTPCodecTypeAudio, webrtc.RTPCodecTypeVideo} {
		if err := m.RegisterHeaderExtension(webrtc.RTPHeaderExtensionCapability{URI: "urn:ietf:params:rtp-hdrext:sdes:mid"}, kind); err != nil {
			return fmt.Errorf("mid extension: %w", err)
		}
	}
	return nil
}

// nackInterval is how often the NACK generator asks for missing packets.
const nackInterval = 40 * time.Millisecond

// registerInterceptors lists every interceptor of the chain. Each one costs
// work on every packet of every stream, so only those that earn it are here
// (see webrtc.RegisterDefaultInterceptors for what is left out).
//
// Left out on purpose:
//   - stats (webrtc.ConfigureStatsInterceptor): a locked map update per
//     packet in the read path, about a sixth of the CPU of a plain pion
//     reader in our profile; the bridge counts packets and bytes itself.
//   - TWCC (webrtc.ConfigureTWCCSender and the header extension sender): a
//     header extension written into every outgoing packet and a feedback
//     loop per PeerConnection, for a congestion controller we do not run;
//     Janus does not adapt what it relays to our feedback either.
//   - intervalpli: the bridge asks for keyframes itself (when a sink or a
//     segment starts, or on its keyframe_interval), not on a blind timer.
//   - REMB (goog-remb): no bandwidth estimator to feed it.
func registerInterceptors(m *webrtc.MediaEngine, r *interceptor.Registry, feedback *FeedbackCounter) error {
	// RTP header parsed once per received packet, without allocating, for
	// the interceptors below (headercache.go). First: innermost.
	r.Add(headerCacheFactory{})
	// NACK counter (when asked for): first, so that the NACK generator
	// writes through it. A type switch per RTCP packet written, a few a
	// second; nothing on the RTP path.
	if feedback != nil {
		r.Add(feedback)
	}
	// NACK generator (receive side): asks Janus to resend lost video packets
	// from its retransmission buffer; a lost packet costs a broken frame
	// until the next keyframe otherwise. NACK responder (send side): keeps
	// the last packets of each video stream we send and resends those Janus
	// asks for. Also advertises "nack" for the video codecs.
	// Janus keeps a packet for resending for 200 ms after it sent it and
	// resends it once: the generator asks every nackInterval rather than
	// pion's 100 ms, so that the request reaches Janus in time even when
	// our reader ran late.
	if err := webrtc.ConfigureNackWithOptions(m, r, []nack.GeneratorOption{nack.GeneratorInterval(nackInterval)}); err != nil {
		return err
	}
	// Receiver reports that make Janus's RTT to us at least 1 ms, without
	// which Janus answers no NACK from a bridge next to it (rttfloor.go).
	// Before the report interceptor: its reports pass through this one.
	r.Add(rttFloorFactory{})
	// Sender and receiver reports: Janus needs our receiver reports for its
	// loss and RTT figures and slowlink events, and our sender reports to
	// map our RTP timestamps to wall clock (lip sync, recordings).
	return webrtc.ConfigureRTCPReports(r)
}

func settingEngine(o WebRTCOptions) (webrtc.SettingEngine, error) {
	var se webrtc.SettingEngine
	se.LoggerFactory = slogLoggerFactory{logger(o.Logger)}
	// mDNS would hide our host candidates behind .local names Janus has to
	// resolve; a server-to-server link has nothing to hide.
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	if o.UDPPortMin != 0 || o.UDPPortMax != 0 {
		if err := se.SetEphemeralUDPPortRange(o.UDPPortMin, o.UDPPortMax); err != nil {
			return se, err
		}
	}
	if o.UDPMux != nil {
		se.SetICEUDPMux(o.UDPMux)
	}
	rules, err := addressRewriteRules(o.NAT1To1IPs)
	if err != nil {
		return se, err
	}
	if len(rules) > 0 {
		if err := se.SetICEAddressRewriteRules(rules...); err != nil {
			return se, err
		}
	}
	if len(o.Interfaces) > 0 {
		names := slices.Clone(o.Interfaces)
		se.SetInterfaceFilter(func(name string) bool { return slices.Contains(names, name) })
	}
	se.SetIncludeLoopbackCandidate(o.LoopbackCandidates)
	if o.UDPMux == nil {
		se.SetNet(&bufferedNet{})
	}
	if o.ICEDisconnectedTimeout != 0 || o.ICEFailedTimeout != 0 {
		disconnected, failed := o.ICEDisconnectedTimeout, o.ICEFailedTimeout
		if disconnected == 0 {
			disconnected = 5 * time.Second
		}
		if failed == 0 {
			failed = 25 * time.Second
		}
		// The keepalive interval must be set with them; 2s is pion's default.
		se.SetICETimeouts(disconnected, failed, 2*time.Second)
	}
	return se, nil
}

// udpReadBuffer is the receive buffer asked for each ICE socket. The
// default (about 200 KiB) holds well under a second of a video stream: a
// reader that a loaded machine stalls for longer loses packets that Janus
// will not resend. The memory is the kernel's and is used only while
// packets wait. Without CAP_NET_ADMIN the kernel caps it at
// net.core.rmem_max (README: raise it).
const udpReadBuffer = 1 << 20

// bufferedNet is pion's standard network with larger receive buffers on the
// UDP sockets ICE opens. The sockets stay *net.UDPConn, so pion reads them
// as before. The network interfaces are listed afresh on every call, as
// pion does when each ICE agent makes its own network, so that a daemon
// sees addresses that changed since it started.
type bufferedNet struct{ stdnet.Net }

// Interfaces implements transport.Net.
func (*bufferedNet) Interfaces() ([]*piontransport.Interface, error) {
	n, err := stdnet.NewNet()
	if err != nil {
		return nil, err
	}
	return n.Interfaces()
}

// InterfaceByIndex implements transport.Net.
func (*bufferedNet) InterfaceByIndex(index int) (*piontransport.Interface, error) {
	n, err := stdnet.NewNet()
	if err != nil {
		return nil, err
	}
	return n.InterfaceByIndex(index)
}

// InterfaceByName implements transport.Net.
func (*bufferedNet) InterfaceByName(name string) (*piontransport.Interface, error) {
	n, err := stdnet.NewNet()
	if err != nil {
		return nil, err
	}
	return n.InterfaceByName(name)
}

// ListenUDP implements transport.Net.
func (n *bufferedNet) ListenUDP(network string, laddr *net.UDPAddr) (piontransport.UDPConn, error) {
	c, err := n.Net.ListenUDP(network, laddr)
	if err != nil {
		return nil, err
	}
	if u, ok := c.(*net.UDPConn); ok {
		setReadBuffer(u, udpReadBuffer) // best effort: a smaller buffer still works
	}
	return c, nil
}

// logger returns l, or a logger that discards everything.
func logger(l *slog.Logger) *slog.Logger {
	if l == nil {
		return slog.New(slog.DiscardHandler)
	}
	return l
}

// levelTrace is the slog level of pion's trace lines.
const levelTrace = slog.LevelDebug - 4

// slogLoggerFactory bridges pion's logging to log/slog.
type slogLoggerFactory struct{ l *slog.Logger }

// NewLogger implements logging.LoggerFactory.
func (f slogLoggerFactory) NewLogger(scope string) logging.LeveledLogger {
	return slogLeveledLogger{f.l.With("pion", scope)}
}

type slogLeveledLogger struct{ l *slog.Logger }

func (s slogLeveledLogger) log(level slog.Level, msg string) {
	s.l.Log(context.Background(), level, msg)
}

func (s slogLeveledLogger) logf(level slog.Level, format string, args ...any) {
	if s.l.Enabled(context.Background(), level) {
		s.l.Log(context.Background(), level, fmt.Sprintf(format, args...))
	}
}

func (s slogLeveledLogger) Trace(msg string)                  { s.log(levelTrace, msg) }
func (s slogLeveledLogger) Tracef(format string, args ...any) { s.logf(levelTrace, format, args...) }
func (s slogLeveledLogger) Debug(msg string)                  { s.log(slog.LevelDebug, msg) }
func (s slogLeveledLogger) Debugf(format string, args ...any) {
	s.logf(slog.LevelDebug, format, args...)
}

// pion's info lines (every signaling and ICE state change) are debug for
// us: the bridge logs the events that matter itself.
func (s slogLeveledLogger) Info(msg string) { s.log(slog.LevelDebug, msg) }
func (s slogLeveledLogger) Infof(format string, args ...any) {
	s.logf(slog.LevelDebug, format, args...)
}

// benignWarnings are parts of pion warnings that every PeerConnection
// prints in normal operation: ICE pings before the remote candidates are
// in, and the SRTP accept loops finding their session closed under them at
// Close. They are debug lines for us, so that a warning means trouble.
var benignWarnings = []string{
	"Failed to ping without candidate pairs",
	"stream is already closed",
}

// warnLevel is the level of a pion warning: debug for benignWarnings.
func warnLevel(msg string) slog.Level {
	for _, b := range benignWarnings {
		if strings.Contains(msg, b) {
			return slog.LevelDebug
		}
	}
	return slog.LevelWarn
}

func (s slogLeveledLogger) Warn(msg string) { s.log(warnLevel(msg), msg) }
func (s slogLeveledLogger) Warnf(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	s.log(warnLevel(msg), msg)
}
func (s slogLeveledLogger) Error(msg string) { s.log(slog.LevelError, msg) }
func (s slogLeveledLogger) Errorf(format string, args ...any) {
	s.logf(slog.LevelError, format, args...)
}
