package janus

import (
	"context"
	"encoding/json"
	"fmt"
)

// AudioBridge plugin error codes (JANUS_AUDIOBRIDGE_ERROR_*).
const (
	AudioBridgeErrNoSuchRoom    = 485
	AudioBridgeErrNotJoined     = 487
	AudioBridgeErrUnauthorized  = 489
	AudioBridgeErrIDExists      = 490
	AudioBridgeErrAlreadyJoined = 491
	AudioBridgeErrNoSuchUser    = 492
	AudioBridgeErrInvalidSDP    = 493
)

// AudioBridgeJoinRequest holds the settings of an AudioBridge join.
type AudioBridgeJoinRequest struct {
	ID      ID // zero: Janus chooses
	Display string
	Pin     string
	Token   string
	Muted   bool
	Codec   string // "opus" (default), "pcma" or "pcmu"
	// GenerateOffer makes Janus offer (the joined event carries the offer;
	// answer it with AudioBridgeConfigure). By default the client offers,
	// with AudioBridgeConfigure after the join.
	GenerateOffer bool
	// RTP, when set, joins as a plain RTP participant instead of over
	// WebRTC (the room needs allow_rtp_participants): Janus answers with
	// the address to send the participant's audio to
	// (AudioBridgeJoined.RTP) and sends the mix to RTP.IP:RTP.Port, if
	// given, once it has received a first packet.
	RTP *AudioBridgeRTP
}

// AudioBridgeRTP describes one side of a plain RTP participant: in a join,
// where the participant wants the mix sent (IP and Port, both optional) and
// the Opus payload type it sends (0: Janus's default, 100); in
// AudioBridgeJoined, where Janus expects the participant's audio.
type AudioBridgeRTP struct {
	IP          string `json:"ip,omitempty"`
	Port        int    `json:"port,omitempty"`
	PayloadType int    `json:"payload_type,omitempty"`
	// AudioLevelExt is the id of the audio level RTP header extension the
	// participant sends, 0 for none (join only).
	AudioLevelExt int `json:"audiolevel_ext,omitempty"`
	// FEC enables Opus in-band FEC in the mix sent (join only).
	FEC bool `json:"fec,omitempty"`
}

// AudioBridgeParticipant is a participant of an AudioBridge room.
type AudioBridgeParticipant struct {
	ID      ID     `json:"id"`
	Display string `json:"display,omitempty"`
	// Setup tells whether the participant's PeerConnection is up.
	Setup   bool  `json:"setup"`
	Muted   bool  `json:"muted"`
	Talking *bool `json:"talking,omitempty"`
	// SpatialPosition is the panning (0 left, 50 center, 100 right) in
	// rooms with spatial audio.
	SpatialPosition *int `json:"spatial_position,omitempty"`
}

// AudioBridgeJoined is the reply to AudioBridgeJoin.
type AudioBridgeJoined struct {
	Room         ID
	ID           ID // the participant's id in the room
	Participants []AudioBridgeParticipant
	// JSEP is Janus's offer when the join asked for GenerateOffer.
	JSEP *JSEP
	// RTP is where Janus expects a plain RTP participant's audio.
	RTP *AudioBridgeRTP
}

// AudioBridgeConfigureRequest holds the settings of an AudioBridge
// configure; zero fields are left unchanged.
type AudioBridgeConfigureRequest struct {
	Muted   *bool
	Display string
	Bitrate int // Opus encoder bitrate in bit/s
	// GenerateOffer makes Janus offer (instead of answering the client's
	// offer) when the PeerConnection is set up by this configure.
	GenerateOffer bool
	// Update asks Janus for a new offer on a session Janus offered.
	Update bool
}

// AudioBridgeInfo is one room of AudioBridgeList.
type AudioBridgeInfo struct {
	Room            ID     `json:"room"`
	Description     string `json:"description"`
	PinRequired     bool   `json:"pin_required"`
	SamplingRate    int    `json:"sampling_rate"`
	SpatialAudio    bool   `json:"spatial_audio"`
	Record          bool   `json:"record"`
	Muted           bool   `json:"muted"`
	NumParticipants int    `json:"num_participants"`
}

// AudioBridgeEvent is an AudioBridge event, the reply to an asynchronous
// request or a notification on Handle.Events.
type AudioBridgeEvent struct {
	// AudioBridge is the kind: "joined" (own join, or others joining),
	// "event" (configure result, participant changes, leaving), "left"
	// (own leave), "roomchanged", "talking", "stopped-talking",
	// "destroyed"...
	AudioBridge  string
	Room         ID
	ID           ID // joined, left, talking: the participant
	Participants []AudioBridgeParticipant
	Leaving      ID     // another participant left
	Kicked       ID     // another participant was kicked
	Result       string // "ok" in the reply to configure
	// RTP is Janus's side of a plain RTP participant (joined).
	RTP *AudioBridgeRTP
	// ErrorCode and Error are set when the event reports a plugin error.
	ErrorCode int
	Error     string
	JSEP      *JSEP
}

// Err returns the plugin error the event carries as a *PluginError, or nil.
func (e *AudioBridgeEvent) Err() error { return eventErr(PluginAudioBridge, e.ErrorCode, e.Error) }

// ParseAudioBridgeEvent decodes an AudioBridge event. A plugin error is not
// a decoding failure: it is returned in the event (see Err).
func ParseAudioBridgeEvent(m *Message) (*AudioBridgeEvent, error) {
	var r struct {
		AudioBridge  string                   `json:"audiobridge"`
		Room         ID                       `json:"room"`
		ID           ID                       `json:"id"`
		Participants []AudioBridgeParticipant `json:"participants"`
		Leaving      ID                       `json:"leaving"`
		Kicked       ID                       `json:"kicked"`
		Result       json.RawMessage          `json:"result"`
		RTP          *AudioBridgeRTP          `json:"rtp"`
		ErrorCode    int                      `json:"error_code"`
		Error        string                   `json:"error"`
	}
	if err := decodeEvent(m, PluginAudioBridge, &r); err != nil {
		return nil, err
	}
	e := &AudioBridgeEvent{
		AudioBridge: r.AudioBridge, Room: r.Room, ID: r.ID, Participants: r.Participants,
		Leaving: r.Leaving, Kicked: r.Kicked, ErrorCode: r.ErrorCode, Error: r.Error, JSEP: m.JSEP, RTP: r.RTP,
	}
	// "result" is "ok" for configure; some notifications carry an object.
	if len(r.Result) > 0 && r.Result[0] == '"' {
		if err := json.Unmarshal(r.Result, &e.Result); err != nil {
			return nil, fmt.Errorf("janus: audiobridge event: result: %w", err)
		}
	}
	return e, nil
}

func parseAudioBridgeReply(m *Message) (*AudioBridgeEvent, error) {
	e, err := ParseAudioBridgeEvent(m)
	if err != nil {
		return nil, err
	}
	if err := e.Err(); err != nil {
		return nil, err
	}
	return e, nil
}

// AudioBridgeJoin joins an AudioBridge room (asynchronous). By default no
// PeerConnection exists yet: send the client's audio offer with
// AudioBridgeConfigure. With GenerateOffer the reply carries Janus's offer.
func AudioBridgeJoin(ctx context.Context, h *Handle, room ID, j AudioBridgeJoinRequest) (*AudioBridgeJoined, error) {
	m, err := h.Message(ctx, buildAudioBridgeJoin(room, j), nil)
	if err != nil {
		return nil, err
	}
	return parseAudioBridgeJoined(m, j.GenerateOffer)
}

func buildAudioBridgeJoin(room ID, j AudioBridgeJoinRequest) map[string]any {
	b := map[string]any{"request": "join", "room": room, "muted": j.Muted}
	if !j.ID.IsZero() {
		b["id"] = j.ID
	}
	setStr(b, "display", j.Display)
	setStr(b, "pin", j.Pin)
	setStr(b, "token", j.Token)
	setStr(b, "codec", j.Codec)
	if j.GenerateOffer {
		b["generate_offer"] = true
	}
	if j.RTP != nil {
		b["rtp"] = j.RTP
	}
	return b
}

func parseAudioBridgeJoined(m *Message, offer bool) (*AudioBridgeJoined, error) {
	e, err := parseAudioBridgeReply(m)
	if err != nil {
		return nil, err
	}
	if e.AudioBridge != "joined" {
		return nil, fmt.Errorf("janus: audiobridge join: unexpected %q event", e.AudioBridge)
	}
	j := &AudioBridgeJoined{Room: e.Room, ID: e.ID, Participants: e.Participants, RTP: e.RTP}
	if offer {
		if j.JSEP, err = wantJSEP(PluginAudioBridge, "join", "offer", e.JSEP); err != nil {
			return nil, err
		}
	}
	return j, nil
}

// AudioBridgeConfigure changes the participant's settings (asynchronous)
// and carries the negotiation: with the client's offer it returns Janus's
// answer; with the answer to Janus's offer it returns nil; with
// GenerateOffer or Update (no jsep) it returns Janus's offer. A session
// keeps the negotiation roles it started with: Janus rejects an offer on a
// session Janus offered.
func AudioBridgeConfigure(ctx context.Context, h *Handle, c AudioBridgeConfigureRequest, jsep *JSEP) (*JSEP, error) {
	m, err := h.Message(ctx, buildAudioBridgeConfigure(c), jsep)
	if err != nil {
		return nil, err
	}
	return parseAudioBridgeConfigured(m, c, jsep)
}

func buildAudioBridgeConfigure(c AudioBridgeConfigureRequest) map[string]any {
	b := map[string]any{"request": "configure"}
	if c.Muted != nil {
		b["muted"] = *c.Muted
	}
	setStr(b, "display", c.Display)
	if c.Bitrate > 0 {
		b["bitrate"] = c.Bitrate
	}
	if c.GenerateOffer {
		b["generate_offer"] = true
	}
	if c.Update {
		b["update"] = true
	}
	return b
}

func parseAudioBridgeConfigured(m *Message, c AudioBridgeConfigureRequest, jsep *JSEP) (*JSEP, error) {
	e, err := parseAudioBridgeReply(m)
	if err != nil {
		return nil, err
	}
	if e.Result != "ok" {
		return nil, fmt.Errorf("janus: audiobridge configure: unexpected %q event", e.AudioBridge)
	}
	switch {
	case jsep != nil && jsep.Type == "offer":
		return wantJSEP(PluginAudioBridge, "configure", "answer", e.JSEP)
	case jsep == nil && (c.GenerateOffer || c.Update):
		return wantJSEP(PluginAudioBridge, "configure", "offer", e.JSEP)
	}
	return e.JSEP, nil
}

// AudioBridgeLeave leaves the room (asynchronous). The PeerConnection stays
// up and can be reused by a later join plus a configure without JSEP.
func AudioBridgeLeave(ctx context.Context, h *Handle) error {
	m, err := h.Message(ctx, buildAudioBridgeLeave(), nil)
	if err != nil {
		return err
	}
	e, err := parseAudioBridgeReply(m)
	if err != nil {
		return err
	}
	if e.AudioBridge != "left" {
		return fmt.Errorf("janus: audiobridge leave: unexpected %q event", e.AudioBridge)
	}
	return nil
}

func buildAudioBridgeLeave() map[string]any { return map[string]any{"request": "leave"} }

// AudioBridgeExists reports whether room exists (synchronous).
func AudioBridgeExists(ctx context.Context, h *Handle, room ID) (bool, error) {
	pd, err := h.Request(ctx, buildAudioBridgeExists(room))
	if err != nil {
		return false, err
	}
	return parseExists(pd)
}

func buildAudioBridgeExists(room ID) map[string]any {
	return map[string]any{"request": "exists", "room": room}
}

// AudioBridgeList lists the public rooms (synchronous).
func AudioBridgeList(ctx context.Context, h *Handle) ([]AudioBridgeInfo, error) {
	pd, err := h.Request(ctx, buildAudioBridgeList())
	if err != nil {
		return nil, err
	}
	return parseAudioBridgeList(pd)
}

func buildAudioBridgeList() map[string]any { return map[string]any{"request": "list"} }

func parseAudioBridgeList(pd *PluginData) ([]AudioBridgeInfo, error) {
	// Janus 1.1.2 names the array "list"; its documentation says "rooms".
	var r struct {
		List  []AudioBridgeInfo `json:"list"`
		Rooms []AudioBridgeInfo `json:"rooms"`
	}
	if err := decodeReply(pd, &r); err != nil {
		return nil, err
	}
	if r.List == nil {
		return r.Rooms, nil
	}
	return r.List, nil
}
