package janus

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"

	"github.com/pion/rtcp"
	"github.com/pion/webrtc/v4"
)

// signaller is what a Peer needs of its Handle: a way to send our ICE
// candidates to Janus. Offers and answers travel in plugin messages, which
// the caller sends itself.
type signaller interface {
	Trickle(ctx context.Context, candidates ...webrtc.ICECandidateInit) error
	TrickleComplete(ctx context.Context) error
}

var _ signaller = (*Handle)(nil)

// PeerConfig configures a Peer.
type PeerConfig struct {
	// ICEServers are the STUN and TURN servers of the PeerConnection
	// (usually WebRTCOptions.ICEServers).
	ICEServers []webrtc.ICEServer
	// DisableTrickle puts every local candidate in the SDP instead of
	// trickling them: CreateOffer and CreateAnswer wait for ICE gathering to
	// complete and return a JSEP with "trickle": false. By default (false)
	// the SDP carries no candidates and each one is sent with
	// Handle.Trickle as pion gathers it, then Handle.TrickleComplete, as
	// janus.js does.
	DisableTrickle bool
	// CustomizeSDP, when set, may edit each offer and answer of ours before
	// it is returned for Janus (janus.js's customizeSdp). Unlike a browser,
	// pion refuses a local description that differs from the one it created,
	// so the edit applies to what Janus receives only: our PeerConnection
	// keeps pion's SDP. Edits that restrict what Janus may send (drop a
	// codec, add b=AS, set Opus stereo) are safe; edits that promise what
	// pion does not do are not.
	CustomizeSDP func(*webrtc.SessionDescription)
	// OnRTCP, when set, receives the RTCP packets Janus sends about the
	// tracks added with Peer.AddTrack (PLI and FIR keyframe requests,
	// receiver reports, REMB...). It runs on the sender's reading goroutine:
	// it must not block.
	OnRTCP func(sender *webrtc.RTPSender, pkts []rtcp.Packet)
	// Logger receives the Peer's log lines; nil discards them.
	Logger *slog.Logger
}

// OfferOptions are the options of Peer.CreateOffer.
type OfferOptions struct {
	// ICERestart makes the offer with new ICE credentials, restarting ICE
	// when Janus answers it.
	ICERestart bool
}

// localCandidate is a local ICE candidate waiting to be trickled, or the end
// of a gathering when end is set.
type localCandidate struct {
	init webrtc.ICECandidateInit
	end  bool
}

// Peer negotiates a pion PeerConnection with a Janus plugin through a
// Handle, with janus.js's semantics:
//
//   - Janus offers (Streaming watch, VideoRoom subscribe): send the request
//     with Handle.Message, pass the event's JSEP to CreateAnswer, and send the
//     returned answer with the plugin's "start" request.
//   - We offer (EchoTest, VideoRoom publish): add tracks (AddTrack, or
//     transceivers on PC) and data channels (CreateDataChannel), call
//     CreateOffer, send the returned JSEP with the plugin's request, and pass
//     the JSEP of the plugin's answer to HandleRemoteJSEP.
//   - Janus's candidates: pass the Candidate of every "trickle" event of the
//     handle to AddRemoteCandidate.
//   - ICE restart: RestartICE (then as for any offer of ours), or, when Janus
//     re-offers with new credentials (Streaming watch with restart, VideoRoom
//     subscriber configure with restart), CreateAnswer again.
//   - Renegotiation: CreateOffer or CreateAnswer again on the established
//     connection.
//
// Our ICE candidates are trickled only while no offer of ours is pending: a
// candidate gathered between CreateOffer and HandleRemoteJSEP waits for the
// answer, so that Janus never gets candidates of an ICE generation before
// the offer that starts it. Janus's candidates likewise wait until the
// remote description they belong to is applied.
//
// A Peer owns its PeerConnection's OnICECandidate callback; every other
// callback (OnTrack, OnConnectionStateChange...) is the caller's. A Peer is
// safe for concurrent use; negotiation calls are serialised.
type Peer struct {
	pc  *webrtc.PeerConnection
	sig signaller
	cfg PeerConfig
	log *slog.Logger

	negMu sync.Mutex // serialises CreateOffer, CreateAnswer, HandleRemoteJSEP

	lmu        sync.Mutex
	localReady bool             // our candidates may go to Janus
	localQ     []localCandidate // in gathering order
	kick       chan struct{}    // wakes the trickle loop; capacity 1

	rmu         sync.Mutex
	remoteReady bool                      // Janus's candidates may be applied
	remoteQ     []webrtc.ICECandidateInit // received before that

	ctx    context.Context // ends with Close; bounds trickle requests
	cancel context.CancelFunc

	mu        sync.Mutex // guards closed and wg.Add
	closed    bool
	closeOnce sync.Once
	closeErr  error
	wg        sync.WaitGroup
}

// NewPeer creates a PeerConnection from api (see NewAPI) and binds it to h:
// our ICE candidates are trickled on h. The Peer does not own h: closing
// the Peer neither hangs up nor detaches it.
func NewPeer(api *webrtc.API, h *Handle, cfg PeerConfig) (*Peer, error) {
	if h == nil {
		return nil, errors.New("janus: new peer: nil handle")
	}
	return newPeer(api, h, cfg)
}

func newPeer(api *webrtc.API, sig signaller, cfg PeerConfig) (*Peer, error) {
	if api == nil {
		return nil, errors.New("janus: new peer: nil API")
	}
	pc, err := api.NewPeerConnection(webrtc.Configuration{ICEServers: cfg.ICEServers})
	if err != nil {
		return nil, fmt.Errorf("janus: new peer: %w", err)
	}
	p := &Peer{
		pc:   pc,
		sig:  sig,
		cfg:  cfg,
		log:  logger(cfg.Logger),
		kick: make(chan struct{}, 1),
	}
	p.ctx, p.cancel = context.WithCancel(context.Background())
	pc.OnICECandidate(p.onICECandidate)
	p.wg.Add(1)
	go p.trickleLoop()
	return p, nil
}

// PC returns the PeerConnection, for adding transceivers, tracks and
// callbacks. Do not replace its OnICECandidate callback, and negotiate
// through the Peer, not on the PeerConnection.
func (p *Peer) PC() *webrtc.PeerConnection { return p.pc }

// CreateOffer creates our offer, applies it as the local description and
// returns it for a plugin request (EchoTest, VideoRoom publish or
// configure...). Add tracks, transceivers and data channels before. The
// plugin's answer goes to HandleRemoteJSEP. With trickle disabled it waits,
// within ctx, for ICE gathering to complete.
func (p *Peer) CreateOffer(ctx context.Context, o OfferOptions) (*JSEP, error) {
	if err := p.check(ctx); err != nil {
		return nil, fmt.Errorf("janus: create offer: %w", err)
	}
	p.negMu.Lock()
	defer p.negMu.Unlock()
	// Hold our candidates until the answer: with ICERestart pion starts
	// gathering the new generation inside CreateOffer already.
	p.setReady(false)
	offer, err := p.pc.CreateOffer(&webrtc.OfferOptions{ICERestart: o.ICERestart})
	if err != nil {
		p.updateReady()
		return nil, fmt.Errorf("janus: create offer: %w", err)
	}
	jsep, err := p.setLocal(ctx, offer)
	if err != nil {
		p.updateReady()
		return nil, fmt.Errorf("janus: create offer: %w", err)
	}
	return jsep, nil
}

// RestartICE creates an offer with new ICE credentials, like CreateOffer
// with ICERestart. Send it as any offer (EchoTest: a message with the JSEP;
// VideoRoom publisher: configure) and pass the answer to HandleRemoteJSEP.
func (p *Peer) RestartICE(ctx context.Context) (*JSEP, error) {
	return p.CreateOffer(ctx, OfferOptions{ICERestart: true})
}

// CreateAnswer applies a plugin's offer as the remote description, then
// creates our answer, applies it as the local description and returns it
// for the plugin's "start" (or equivalent) request. It serves the first
// offer, a renegotiation and an ICE restart offer alike. With trickle
// disabled it waits, within ctx, for ICE gathering to complete.
func (p *Peer) CreateAnswer(ctx context.Context, offer *JSEP) (*JSEP, error) {
	if err := p.check(ctx); err != nil {
		return nil, fmt.Errorf("janus: create answer: %w", err)
	}
	if offer == nil || offer.Type != webrtc.SDPTypeOffer.String() {
		return nil, fmt.Errorf("janus: create answer: want an offer JSEP, got %s", jsepType(offer))
	}
	p.negMu.Lock()
	defer p.negMu.Unlock()
	if err := p.pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeOffer, SDP: offer.SDP}); err != nil {
		return nil, fmt.Errorf("janus: create answer: set remote offer: %w", err)
	}
	p.updateReady()
	answer, err := p.pc.CreateAnswer(nil)
	if err != nil {
		return nil, fmt.Errorf("janus: create answer: %w", err)
	}
	jsep, err := p.setLocal(ctx, answer)
	if err != nil {
		return nil, fmt.Errorf("janus: create answer: %w", err)
	}
	return jsep, nil
}

// HandleRemoteJSEP applies the plugin's answer to our last offer (janus.js's
// handleRemoteJsep), then lets the candidates held for it go both ways. An
// offer from the plugin is answered with CreateAnswer instead.
func (p *Peer) HandleRemoteJSEP(ctx context.Context, jsep *JSEP) error {
	if err := p.check(ctx); err != nil {
		return fmt.Errorf("janus: remote jsep: %w", err)
	}
	if jsep == nil || jsep.Type != webrtc.SDPTypeAnswer.String() {
		return fmt.Errorf("janus: remote jsep: want an answer, got %s (answer offers with CreateAnswer)", jsepType(jsep))
	}
	p.negMu.Lock()
	defer p.negMu.Unlock()
	if err := p.pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: jsep.SDP}); err != nil {
		return fmt.Errorf("janus: remote jsep: set remote answer: %w", err)
	}
	p.updateReady()
	return nil
}

func jsepType(j *JSEP) string {
	if j == nil {
		return "none"
	}
	return fmt.Sprintf("%q", j.Type)
}

// setLocal applies desc and returns it as a JSEP, customised; without
// trickle, once gathering is complete and with every candidate.
func (p *Peer) setLocal(ctx context.Context, desc webrtc.SessionDescription) (*JSEP, error) {
	if err := p.pc.SetLocalDescription(desc); err != nil {
		return nil, fmt.Errorf("set local %s: %w", desc.Type, err)
	}
	if !p.cfg.DisableTrickle {
		return p.jsep(desc, nil), nil
	}
	// After SetLocalDescription: gathering has started (a restart starts it
	// in CreateOffer), so a "complete" state is this generation's.
	gathered := webrtc.GatheringCompletePromise(p.pc)
	select {
	case <-gathered:
	case <-ctx.Done():
		return nil, fmt.Errorf("waiting for ICE gathering: %w", ctx.Err())
	case <-p.ctx.Done():
		return nil, ErrClosed
	}
	ld := p.pc.LocalDescription()
	if ld == nil {
		return nil, errors.New("no local description after gathering")
	}
	noTrickle := false
	return p.jsep(*ld, &noTrickle), nil
}

// jsep makes the JSEP for Janus of desc, passing it through CustomizeSDP.
func (p *Peer) jsep(desc webrtc.SessionDescription, trickle *bool) *JSEP {
	if p.cfg.CustomizeSDP != nil {
		p.cfg.CustomizeSDP(&desc)
	}
	return &JSEP{Type: desc.Type.String(), SDP: desc.SDP, Trickle: trickle}
}

// setReady holds (false) or releases (true) the candidates both ways.
func (p *Peer) setReady(ready bool) {
	p.rmu.Lock()
	p.remoteReady = ready
	queued := p.remoteQ
	if ready {
		p.remoteQ = nil
		for _, c := range queued {
			if err := p.pc.AddICECandidate(c); err != nil {
				p.log.Warn("janus peer: remote candidate rejected", "candidate", c.Candidate, "err", err)
			}
		}
	}
	p.rmu.Unlock()

	p.lmu.Lock()
	p.localReady = ready
	p.lmu.Unlock()
	if ready {
		p.wake()
	}
}

// updateReady releases the candidates when a remote description is applied
// and no offer of ours awaits its answer, and holds them otherwise.
func (p *Peer) updateReady() {
	p.setReady(p.pc.RemoteDescription() != nil && p.pc.SignalingState() != webrtc.SignalingStateHaveLocalOffer)
}

func (p *Peer) wake() {
	select {
	case p.kick <- struct{}{}:
	default:
	}
}

// onICECandidate queues a local candidate (nil: gathering complete).
func (p *Peer) onICECandidate(c *webrtc.ICECandidate) {
	if p.cfg.DisableTrickle {
		return
	}
	lc := localCandidate{end: c == nil}
	if c != nil {
		lc.init = c.ToJSON()
	}
	p.lmu.Lock()
	p.localQ = append(p.localQ, lc)
	ready := p.localReady
	p.lmu.Unlock()
	if ready {
		p.wake()
	}
}

// nextLocal takes the queued candidates up to and including the next end of
// gathering, if candidates may go now.
func (p *Peer) nextLocal() (batch []webrtc.ICECandidateInit, end, ok bool) {
	p.lmu.Lock()
	defer p.lmu.Unlock()
	if !p.localReady || len(p.localQ) == 0 {
		return nil, false, false
	}
	n := 0
	for n < len(p.localQ) && !end {
		if p.localQ[n].end {
			end = true
		} else {
			batch = append(batch, p.localQ[n].init)
		}
		n++
	}
	p.localQ = p.localQ[n:]
	return batch, end, true
}

// trickleLoop sends our candidates to Janus in gathering order, each
// gathering's batch in one request, then the end of candidates.
func (p *Peer) trickleLoop() {
	defer p.wg.Done()
	for {
		select {
		case <-p.ctx.Done():
			return
		case <-p.kick:
		}
		for {
			batch, end, ok := p.nextLocal()
			if !ok {
				break
			}
			if len(batch) > 0 {
				if err := p.sig.Trickle(p.ctx, batch...); err != nil && p.ctx.Err() == nil {
					p.log.Warn("janus peer: trickle failed", "candidates", len(batch), "err", err)
				}
			}
			if end {
				if err := p.sig.TrickleComplete(p.ctx); err != nil && p.ctx.Err() == nil {
					p.log.Warn("janus peer: trickle complete failed", "err", err)
				}
			}
		}
	}
}

// AddRemoteCandidate applies the candidate of a "trickle" event from Janus
// (Message.Candidate): a candidate object {candidate, sdpMid,
// sdpMLineIndex}, {"completed": true} for the end of candidates, or an array
// of those. Candidates that arrive before the remote description they
// belong to (e.g. before CreateAnswer or HandleRemoteJSEP) are kept and
// applied then, in order.
func (p *Peer) AddRemoteCandidate(raw json.RawMessage) error {
	cands, err := parseRemoteCandidates(raw)
	if err != nil {
		return fmt.Errorf("janus: remote candidate: %w", err)
	}
	p.rmu.Lock()
	defer p.rmu.Unlock()
	if p.ctx.Err() != nil {
		return fmt.Errorf("janus: remote candidate: %w", ErrClosed)
	}
	if !p.remoteReady {
		p.remoteQ = append(p.remoteQ, cands...)
		return nil
	}
	for _, c := range cands {
		if err := p.pc.AddICECandidate(c); err != nil {
			if p.ctx.Err() != nil { // Close ran meanwhile: pion's agent is gone
				return fmt.Errorf("janus: remote candidate: %w", ErrClosed)
			}
			return fmt.Errorf("janus: remote candidate %q: %w", c.Candidate, err)
		}
	}
	return nil
}

// remoteCandidate is a candidate of a Janus "trickle" event.
type remoteCandidate struct {
	Completed        bool    `json:"completed"`
	Candidate        string  `json:"candidate"`
	SDPMid           *string `json:"sdpMid"`
	SDPMLineIndex    *uint16 `json:"sdpMLineIndex"`
	UsernameFragment *string `json:"usernameFragment"`
}

// parseRemoteCandidates decodes a trickle event's candidate, or array of
// candidates. The end of candidates becomes an empty candidate, which pion
// takes as end-of-candidates.
func parseRemoteCandidates(raw json.RawMessage) ([]webrtc.ICECandidateInit, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || bytes.Equal(raw, []byte("null")) {
		return nil, fmt.Errorf("%w: no candidate", ErrBadMessage)
	}
	var rcs []remoteCandidate
	if raw[0] == '[' {
		if err := json.Unmarshal(raw, &rcs); err != nil {
			return nil, fmt.Errorf("%w: %v", ErrBadMessage, err)
		}
	} else {
		var rc remoteCandidate
		if err := json.Unmarshal(raw, &rc); err != nil {
			return nil, fmt.Errorf("%w: %v", ErrBadMessage, err)
		}
		rcs = []remoteCandidate{rc}
	}
	out := make([]webrtc.ICECandidateInit, 0, len(rcs))
	for _, rc := range rcs {
		if rc.Completed {
			out = append(out, webrtc.ICECandidateInit{})
			continue
		}
		out = append(out, webrtc.ICECandidateInit{
			Candidate:        rc.Candidate,
			SDPMid:           rc.SDPMid,
			SDPMLineIndex:    rc.SDPMLineIndex,
			UsernameFragment: rc.UsernameFragment,
		})
	}
	return out, nil
}

// CreateDataChannel creates a data channel (SCTP, as Janus's data
// channels). Create the first one before the first offer or answer: the
// SDP gets its application m-line only then; a later first channel needs a
// renegotiation.
func (p *Peer) CreateDataChannel(label string, init *webrtc.DataChannelInit) (*webrtc.DataChannel, error) {
	dc, err := p.pc.CreateDataChannel(label, init)
	if err != nil {
		return nil, fmt.Errorf("janus: data channel %q: %w", label, err)
	}
	return dc, nil
}

// AddTrack adds a transceiver sending track, with direction Sendonly or
// Sendrecv (EchoTest), and reads the RTCP Janus sends about it (which the
// NACK responder and sender reports need), passing it to PeerConfig.OnRTCP.
// When the track has a codec (TrackLocalStaticRTP, TrackLocalStaticSample),
// only the codecs of its MIME type are offered for the transceiver, so that
// Janus cannot pick one the track cannot bind. A track added after the first
// negotiation needs a new offer (CreateOffer). To stop sending, use
// PC().RemoveTrack on the transceiver's sender and renegotiate; to switch
// sources without renegotiating, the sender's ReplaceTrack.
func (p *Peer) AddTrack(track webrtc.TrackLocal, dir webrtc.RTPTransceiverDirection) (*webrtc.RTPTransceiver, error) {
	if dir != webrtc.RTPTransceiverDirectionSendonly && dir != webrtc.RTPTransceiverDirectionSendrecv {
		return nil, fmt.Errorf("janus: add track: direction %s, want sendonly or sendrecv", dir)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return nil, fmt.Errorf("janus: add track: %w", ErrClosed)
	}
	tr, err := p.pc.AddTransceiverFromTrack(track, webrtc.RTPTransceiverInit{Direction: dir})
	if err != nil {
		return nil, fmt.Errorf("janus: add track: %w", err)
	}
	if ct, ok := track.(interface {
		Codec() webrtc.RTPCodecCapability
	}); ok {
		if err := preferCodec(tr, ct.Codec().MimeType); err != nil {
			return nil, errors.Join(fmt.Errorf("janus: add track: %w", err), p.pc.RemoveTrack(tr.Sender()))
		}
	}
	sender := tr.Sender()
	p.wg.Add(1)
	go p.readRTCP(sender)
	return tr, nil
}

// preferCodec restricts the codecs offered on tr to those of mimeType, in
// the API's order of preference.
func preferCodec(tr *webrtc.RTPTransceiver, mimeType string) error {
	var codecs []webrtc.RTPCodecParameters
	for _, c := range tr.Sender().GetParameters().Codecs {
		if strings.EqualFold(c.MimeType, mimeType) {
			codecs = append(codecs, c)
		}
	}
	if len(codecs) == 0 {
		return fmt.Errorf("codec %s not registered in the API", mimeType)
	}
	return tr.SetCodecPreferences(codecs)
}

// readRTCP reads the RTCP of sender until it stops or the PeerConnection
// closes.
func (p *Peer) readRTCP(sender *webrtc.RTPSender) {
	defer p.wg.Done()
	buf := make([]byte, 1500)
	for {
		n, _, err := sender.Read(buf)
		if err != nil {
			return
		}
		if p.cfg.OnRTCP == nil {
			continue
		}
		pkts, err := rtcp.Unmarshal(buf[:n])
		if err != nil {
			continue
		}
		p.cfg.OnRTCP(sender, pkts)
	}
}

func (p *Peer) check(ctx context.Context) error {
	if p.ctx.Err() != nil {
		return ErrClosed
	}
	return ctx.Err()
}

// Close closes the PeerConnection and waits for the goroutines of the Peer
// and of pion to end. It is idempotent. It neither hangs up nor detaches
// the Handle. Do not call it from a pion callback (it waits for them); use
// a goroutine there.
func (p *Peer) Close() error {
	p.closeOnce.Do(func() {
		p.mu.Lock()
		p.closed = true
		p.mu.Unlock()
		p.cancel()
		if err := p.pc.GracefulClose(); err != nil {
			p.closeErr = fmt.Errorf("janus: close peer: %w", err)
		}
		p.wg.Wait()
	})
	return p.closeErr
}
