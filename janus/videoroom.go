package janus

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
)

// VideoRoom plugin error codes (JANUS_VIDEOROOM_ERROR_*).
const (
	VideoRoomErrJoinFirst        = 424
	VideoRoomErrAlreadyJoined    = 425
	VideoRoomErrNoSuchRoom       = 426
	VideoRoomErrNoSuchFeed       = 428
	VideoRoomErrPublishersFull   = 432
	VideoRoomErrUnauthorized     = 433
	VideoRoomErrAlreadyPublished = 434
	VideoRoomErrNotPublished     = 435
	VideoRoomErrIDExists         = 436
)

// VideoRoomPublishedStream is one stream of a publisher, as announced in
// "joined" and "event" (new publishers) and in the reply to publish.
type VideoRoomPublishedStream struct {
	Type   string `json:"type"` // "audio", "video" or "data"
	MIndex int    `json:"mindex"`
	MID    string `json:"mid"`
	// Disabled streams carry no codec or description.
	Disabled    bool   `json:"disabled,omitempty"`
	Codec       string `json:"codec,omitempty"` // e.g. "opus", "vp8", "h264"
	Description string `json:"description,omitempty"`
	H264Profile string `json:"h264_profile,omitempty"`
	VP9Profile  string `json:"vp9_profile,omitempty"`
	Simulcast   bool   `json:"simulcast,omitempty"`
	SVC         bool   `json:"svc,omitempty"`
	Moderated   bool   `json:"moderated,omitempty"`
	// Talking is set for audio when the room uses audio levels.
	Talking *bool `json:"talking,omitempty"`
}

// VideoRoomPublisher is an active publisher of a room.
type VideoRoomPublisher struct {
	ID      ID                         `json:"id"`
	Display string                     `json:"display,omitempty"`
	Dummy   bool                       `json:"dummy,omitempty"`
	Streams []VideoRoomPublishedStream `json:"streams"`
	Talking *bool                      `json:"talking,omitempty"`
	// AudioCodec and VideoCodec are the codecs of the first audio and video
	// streams (kept by Janus for backwards compatibility).
	AudioCodec string `json:"audio_codec,omitempty"`
	VideoCodec string `json:"video_codec,omitempty"`
}

// VideoRoomAttendee is a participant that does not publish (listed only in
// rooms with notify_joining).
type VideoRoomAttendee struct {
	ID      ID     `json:"id"`
	Display string `json:"display,omitempty"`
}

// VideoRoomJoined is the reply to VideoRoomJoinPublisher.
type VideoRoomJoined struct {
	Room        ID
	Description string
	ID          ID     // the participant's id in the room
	PrivateID   uint64 // pass to VideoRoomJoinSubscriber to tie subscriptions to this participant
	Publishers  []VideoRoomPublisher
	Attendees   []VideoRoomAttendee
}

// VideoRoomSubscribedStream is one m-line of a subscription: it maps the
// subscriber's mid to the publisher stream feeding it.
type VideoRoomSubscribedStream struct {
	MIndex int    `json:"mindex"`
	MID    string `json:"mid"` // the subscriber's mid
	Type   string `json:"type"`
	// Active is false when the m-line has no source any more (e.g. the
	// publisher left and the m-line awaits reuse).
	Active          bool   `json:"active"`
	Ready           bool   `json:"ready"`
	Send            bool   `json:"send"`
	FeedID          ID     `json:"feed_id,omitzero"`
	FeedMID         string `json:"feed_mid,omitempty"`
	FeedDisplay     string `json:"feed_display,omitempty"`
	FeedDescription string `json:"feed_description,omitempty"`
	Codec           string `json:"codec,omitempty"`
	CrossRefID      string `json:"crossrefid,omitempty"`
}

// VideoRoomAttached is the reply to VideoRoomJoinSubscriber.
type VideoRoomAttached struct {
	Room    ID
	Streams []VideoRoomSubscribedStream
}

// VideoRoomStream addresses publisher streams in subscribe and unsubscribe
// lists: Feed alone means all the streams of that publisher, Feed and MID
// one stream. SubMID (unsubscribe only) addresses the subscriber's m-line.
// Substream (subscribe only, nil to omit) picks the simulcast substream
// (0-2, lowest to highest) of the video streams addressed.
type VideoRoomStream struct {
	Feed      ID
	MID       string
	SubMID    string
	Substream *int
}

// VideoRoomDescription labels a published stream (e.g. "camera").
type VideoRoomDescription struct {
	MID         string `json:"mid"`
	Description string `json:"description"`
}

// VideoRoomPublishRequest holds the optional settings of a publish request.
type VideoRoomPublishRequest struct {
	AudioCodec   string // preferred among the negotiated ones
	VideoCodec   string
	Bitrate      int // REMB cap in bit/s; 0 keeps the room's
	Display      string
	Descriptions []VideoRoomDescription
}

// VideoRoomConfigureRequest holds the settings of a publisher configure request;
// zero fields are left unchanged.
type VideoRoomConfigureRequest struct {
	Bitrate      int  // REMB cap in bit/s
	Keyframe     bool // ask Janus to send the publisher a PLI
	Display      string
	Descriptions []VideoRoomDescription
}

// VideoRoomStreamConfigure tunes one m-line of a subscription; nil fields
// are left unchanged.
type VideoRoomStreamConfigure struct {
	MID       string // the subscriber's mid
	Send      *bool
	Substream *int // simulcast substream (0-2)
	Temporal  *int // simulcast temporal layer (0-2)
}

// VideoRoomSubscriberConfigureRequest holds the settings of a subscriber configure
// request.
type VideoRoomSubscriberConfigureRequest struct {
	Streams []VideoRoomStreamConfigure
	// Restart asks Janus for a new offer with new ICE credentials.
	Restart bool
}

// VideoRoomParticipant is one entry of VideoRoomListParticipants.
type VideoRoomParticipant struct {
	ID        ID     `json:"id"`
	Display   string `json:"display,omitempty"`
	Publisher bool   `json:"publisher"` // publishing right now
	Dummy     bool   `json:"dummy,omitempty"`
	Talking   *bool  `json:"talking,omitempty"`
}

// VideoRoomInfo is one room of VideoRoomList.
type VideoRoomInfo struct {
	Room            ID     `json:"room"`
	Description     string `json:"description"`
	PinRequired     bool   `json:"pin_required"`
	IsPrivate       bool   `json:"is_private"`
	MaxPublishers   int    `json:"max_publishers"`
	Bitrate         int    `json:"bitrate"`
	FIRFreq         int    `json:"fir_freq"`
	RequirePvtID    bool   `json:"require_pvtid"`
	RequireE2EE     bool   `json:"require_e2ee"`
	NotifyJoining   bool   `json:"notify_joining"`
	AudioCodec      string `json:"audiocodec"` // comma-separated, in order of preference
	VideoCodec      string `json:"videocodec"`
	Record          bool   `json:"record"`
	NumParticipants int    `json:"num_participants"`
}

// AudioCodecs returns the audio codecs the room allows, in order of
// preference.
func (r *VideoRoomInfo) AudioCodecs() []string { return splitCodecs(r.AudioCodec) }

// VideoCodecs returns the video codecs the room allows, in order of
// preference (e.g. ["vp8"] for a VP8-only room).
func (r *VideoRoomInfo) VideoCodecs() []string { return splitCodecs(r.VideoCodec) }

func splitCodecs(s string) []string {
	var out []string
	for _, c := range strings.Split(s, ",") {
		if c = strings.TrimSpace(c); c != "" {
			out = append(out, c)
		}
	}
	return out
}

// VideoRoomEvent is a VideoRoom event, the reply to an asynchronous
// request or a notification on Handle.Events. Only the fields of its kind
// are set.
type VideoRoomEvent struct {
	// VideoRoom is the kind: "event" (most notifications and replies),
	// "joined", "attached", "updated" (subscription changed, offer attached
	// when renegotiation is needed), "updating" (update postponed: the
	// offer follows on Handle.Events), "talking", "stopped-talking",
	// "destroyed", "slow_link"...
	VideoRoom   string
	Room        ID
	ID          ID     // joined: own id; talking: the publisher
	PrivateID   uint64 // joined
	Description string // joined
	// Publishers lists the active publishers (joined) or the new or
	// updated one ("event" to the other participants).
	Publishers []VideoRoomPublisher
	Attendees  []VideoRoomAttendee
	Joining    *VideoRoomAttendee // with notify_joining
	// Leaving, Unpublished and Kicked name another participant that left,
	// stopped publishing or was kicked; zero when absent.
	Leaving     ID
	Unpublished ID
	Kicked      ID
	// OK names the request Janus acknowledged with "<name>": "ok":
	// "configured", "started", "paused", "switched", "left" (subscriber
	// leave), "leaving" (publisher leave) or "unpublished".
	OK string
	// Streams is the subscription layout (attached, updated, switched).
	Streams []VideoRoomSubscribedStream
	// PublishedStreams are the publisher's streams in the reply to publish
	// or configure with an offer, with AudioCodec and VideoCodec.
	PublishedStreams []VideoRoomPublishedStream
	AudioCodec       string
	VideoCodec       string
	Changes          int     // switched
	MID              string  // talking
	AudioLevel       float64 // talking: average dBov, 127 = muted
	CurrentBitrate   int     // slow_link
	// ErrorCode and Error are set when the event reports a plugin error.
	ErrorCode int
	Error     string
	// JSEP is the offer (subscriber) or answer (publisher) attached.
	JSEP *JSEP
}

// Err returns the plugin error the event carries as a *PluginError, or nil.
func (e *VideoRoomEvent) Err() error { return eventErr(PluginVideoRoom, e.ErrorCode, e.Error) }

// ParseVideoRoomEvent decodes a VideoRoom event. A plugin error is not a
// decoding failure: it is returned in the event (see Err).
func ParseVideoRoomEvent(m *Message) (*VideoRoomEvent, error) {
	var r struct {
		VideoRoom   string               `json:"videoroom"`
		Room        ID                   `json:"room"`
		ID          ID                   `json:"id"`
		PrivateID   uint64               `json:"private_id"`
		Description string               `json:"description"`
		Publishers  []VideoRoomPublisher `json:"publishers"`
		Attendees   []VideoRoomAttendee  `json:"attendees"`
		Joining     *VideoRoomAttendee   `json:"joining"`
		Leaving     json.RawMessage      `json:"leaving"`
		Unpublished json.RawMessage      `json:"unpublished"`
		Kicked      json.RawMessage      `json:"kicked"`
		Configured  string               `json:"configured"`
		Started     string               `json:"started"`
		Paused      string               `json:"paused"`
		Switched    string               `json:"switched"`
		Left        string               `json:"left"`
		Streams     json.RawMessage      `json:"streams"`
		AudioCodec  string               `json:"audio_codec"`
		VideoCodec  string               `json:"video_codec"`
		Changes     int                  `json:"changes"`
		MID         string               `json:"mid"`
		AudioLevel  float64              `json:"audio-level-dBov-avg"`
		Bitrate     int                  `json:"current-bitrate"`
		ErrorCode   int                  `json:"error_code"`
		Error       string               `json:"error"`
	}
	if err := decodeEvent(m, PluginVideoRoom, &r); err != nil {
		return nil, err
	}
	e := &VideoRoomEvent{
		VideoRoom: r.VideoRoom, Room: r.Room, ID: r.ID, PrivateID: r.PrivateID,
		Description: r.Description, Publishers: r.Publishers, Attendees: r.Attendees,
		Joining: r.Joining, AudioCodec: r.AudioCodec, VideoCodec: r.VideoCodec,
		Changes: r.Changes, MID: r.MID, AudioLevel: r.AudioLevel, CurrentBitrate: r.Bitrate,
		ErrorCode: r.ErrorCode, Error: r.Error, JSEP: m.JSEP,
	}
	for _, ok := range []struct {
		name, v string
	}{{"configured", r.Configured}, {"started", r.Started}, {"paused", r.Paused}, {"switched", r.Switched}, {"left", r.Left}} {
		if ok.v == "ok" {
			e.OK = ok.name
		}
	}
	// "leaving", "unpublished" and "kicked" hold "ok" for the participant's
	// own request and the id of someone else otherwise.
	for _, f := range []struct {
		name string
		raw  json.RawMessage
		dst  *ID
	}{{"leaving", r.Leaving, &e.Leaving}, {"unpublished", r.Unpublished, &e.Unpublished}, {"kicked", r.Kicked, &e.Kicked}} {
		if len(f.raw) == 0 {
			continue
		}
		if string(f.raw) == `"ok"` {
			e.OK = f.name
			continue
		}
		if err := json.Unmarshal(f.raw, f.dst); err != nil {
			return nil, fmt.Errorf("janus: videoroom event: %s: %w", f.name, err)
		}
	}
	if len(r.Streams) > 0 && string(r.Streams) != "null" {
		var dst any = &e.Streams
		if r.Configured == "ok" {
			dst = &e.PublishedStreams
		}
		if err := json.Unmarshal(r.Streams, dst); err != nil {
			return nil, fmt.Errorf("janus: videoroom event: streams: %w", err)
		}
	}
	return e, nil
}

// parseVideoRoomReply parses the event answering an asynchronous request
// and turns a plugin error into a *PluginError.
func parseVideoRoomReply(m *Message) (*VideoRoomEvent, error) {
	e, err := ParseVideoRoomEvent(m)
	if err != nil {
		return nil, err
	}
	if err := e.Err(); err != nil {
		return nil, err
	}
	return e, nil
}

// parseVideoRoomOK parses a reply acknowledged with "<one of want>": "ok".
func parseVideoRoomOK(m *Message, what string, want ...string) (*VideoRoomEvent, error) {
	e, err := parseVideoRoomReply(m)
	if err != nil {
		return nil, err
	}
	for _, w := range want {
		if e.OK == w {
			return e, nil
		}
	}
	return nil, fmt.Errorf("janus: videoroom %s: unexpected %q event (ok %q)", what, e.VideoRoom, e.OK)
}

// VideoRoomJoinPublisher joins room as a publisher (asynchronous; join with
// ptype "publisher"). The participant does not publish yet but receives
// the room's events (new publishers, leaving, unpublished) on
// Handle.Events.
func VideoRoomJoinPublisher(ctx context.Context, h *Handle, room ID, display, pin string) (*VideoRoomJoined, error) {
	m, err := h.Message(ctx, buildVideoRoomJoinPublisher(room, display, pin), nil)
	if err != nil {
		return nil, err
	}
	return parseVideoRoomJoined(m)
}

func buildVideoRoomJoinPublisher(room ID, display, pin string) map[string]any {
	b := map[string]any{"request": "join", "ptype": "publisher", "room": room}
	setStr(b, "display", display)
	setStr(b, "pin", pin)
	return b
}

func parseVideoRoomJoined(m *Message) (*VideoRoomJoined, error) {
	e, err := parseVideoRoomReply(m)
	if err != nil {
		return nil, err
	}
	if e.VideoRoom != "joined" {
		return nil, fmt.Errorf("janus: videoroom join: unexpected %q event", e.VideoRoom)
	}
	return &VideoRoomJoined{
		Room: e.Room, Description: e.Description, ID: e.ID, PrivateID: e.PrivateID,
		Publishers: e.Publishers, Attendees: e.Attendees,
	}, nil
}

// VideoRoomPublish starts publishing with the client's SDP offer
// (asynchronous) and returns Janus's answer. Other participants get the new
// publisher in an "event" with publishers once the PeerConnection is up.
func VideoRoomPublish(ctx context.Context, h *Handle, p VideoRoomPublishRequest, offer *JSEP) (*JSEP, error) {
	m, err := h.Message(ctx, buildVideoRoomPublish(p), offer)
	if err != nil {
		return nil, err
	}
	return parseVideoRoomAnswer(m, "publish")
}

func buildVideoRoomPublish(p VideoRoomPublishRequest) map[string]any {
	b := map[string]any{"request": "publish"}
	setStr(b, "audiocodec", p.AudioCodec)
	setStr(b, "videocodec", p.VideoCodec)
	if p.Bitrate > 0 {
		b["bitrate"] = p.Bitrate
	}
	setStr(b, "display", p.Display)
	if len(p.Descriptions) > 0 {
		b["descriptions"] = p.Descriptions
	}
	return b
}

func parseVideoRoomAnswer(m *Message, what string) (*JSEP, error) {
	e, err := parseVideoRoomOK(m, what, "configured")
	if err != nil {
		return nil, err
	}
	return wantJSEP(PluginVideoRoom, what, "answer", e.JSEP)
}

// VideoRoomConfigure changes a publisher's settings (asynchronous). With an
// offer it renegotiates the published PeerConnection (adding or removing
// streams, or a client-side ICE restart: an offer with new ICE credentials
// is enough) and returns Janus's answer; without one the answer is nil.
func VideoRoomConfigure(ctx context.Context, h *Handle, c VideoRoomConfigureRequest, offer *JSEP) (*JSEP, error) {
	m, err := h.Message(ctx, buildVideoRoomConfigure(c), offer)
	if err != nil {
		return nil, err
	}
	if offer == nil {
		_, err := parseVideoRoomOK(m, "configure", "configured")
		return nil, err
	}
	return parseVideoRoomAnswer(m, "configure")
}

func buildVideoRoomConfigure(c VideoRoomConfigureRequest) map[string]any {
	b := map[string]any{"request": "configure"}
	if c.Bitrate > 0 {
		b["bitrate"] = c.Bitrate
	}
	if c.Keyframe {
		b["keyframe"] = true
	}
	setStr(b, "display", c.Display)
	if len(c.Descriptions) > 0 {
		b["descriptions"] = c.Descriptions
	}
	return b
}

// VideoRoomUnpublish stops publishing (asynchronous): Janus closes the
// PeerConnection and the participant stays in the room.
func VideoRoomUnpublish(ctx context.Context, h *Handle) error {
	m, err := h.Message(ctx, buildVideoRoomUnpublish(), nil)
	if err != nil {
		return err
	}
	_, err = parseVideoRoomOK(m, "unpublish", "unpublished")
	return err
}

// VideoRoomLeave leaves the room (asynchronous). On a publisher handle it
// also unpublishes; on a subscriber handle it ends the subscription and
// closes its PeerConnection.
func VideoRoomLeave(ctx context.Context, h *Handle) error {
	m, err := h.Message(ctx, buildVideoRoomLeave(), nil)
	if err != nil {
		return err
	}
	_, err = parseVideoRoomOK(m, "leave", "leaving", "left")
	return err
}

// VideoRoomJoinSubscriber creates a subscription in room to streams
// (asynchronous; join with ptype "subscriber") and returns Janus's SDP
// offer and the subscription layout. Answer the offer with VideoRoomStart.
// privateID (0 to omit) is the private_id of the participant the
// subscription belongs to; rooms with require_pvtid need it.
func VideoRoomJoinSubscriber(ctx context.Context, h *Handle, room ID, pin string, streams []VideoRoomStream, privateID uint64) (*JSEP, *VideoRoomAttached, error) {
	m, err := h.Message(ctx, buildVideoRoomJoinSubscriber(room, pin, streams, privateID), nil)
	if err != nil {
		return nil, nil, err
	}
	return parseVideoRoomAttached(m)
}

func buildVideoRoomJoinSubscriber(room ID, pin string, streams []VideoRoomStream, privateID uint64) map[string]any {
	b := map[string]any{"request": "join", "ptype": "subscriber", "room": room, "streams": streamList(streams)}
	setStr(b, "pin", pin)
	if privateID != 0 {
		b["private_id"] = privateID
	}
	return b
}

func streamList(streams []VideoRoomStream) []map[string]any {
	out := make([]map[string]any, 0, len(streams))
	for _, s := range streams {
		m := map[string]any{}
		if !s.Feed.IsZero() {
			m["feed"] = s.Feed
		}
		setStr(m, "mid", s.MID)
		setStr(m, "sub_mid", s.SubMID)
		if s.Substream != nil {
			m["substream"] = *s.Substream
		}
		out = append(out, m)
	}
	return out
}

func parseVideoRoomAttached(m *Message) (*JSEP, *VideoRoomAttached, error) {
	e, err := parseVideoRoomReply(m)
	if err != nil {
		return nil, nil, err
	}
	if e.VideoRoom != "attached" {
		return nil, nil, fmt.Errorf("janus: videoroom subscribe: unexpected %q event", e.VideoRoom)
	}
	offer, err := wantJSEP(PluginVideoRoom, "subscribe", "offer", e.JSEP)
	if err != nil {
		return nil, nil, err
	}
	return offer, &VideoRoomAttached{Room: e.Room, Streams: e.Streams}, nil
}

// VideoRoomStart sends a subscriber's SDP answer (asynchronous). If Janus
// postponed an update while waiting for this answer, its new offer follows
// as an "updated" event on Handle.Events. With a nil answer it resumes a
// paused subscription.
func VideoRoomStart(ctx context.Context, h *Handle, answer *JSEP) error {
	m, err := h.Message(ctx, buildVideoRoomStart(), answer)
	if err != nil {
		return err
	}
	_, err = parseVideoRoomOK(m, "start", "started")
	return err
}

// VideoRoomUpdate adds and removes streams of a subscription in one
// request (asynchronous). The event is "updated" with the new layout and an
// offer to answer with VideoRoomStart; "updated" without offer or streams
// when nothing changed; or "updating" without offer when Janus is still
// waiting for the answer to a previous offer: the combined offer then comes
// later as an "updated" event on Handle.Events.
func VideoRoomUpdate(ctx context.Context, h *Handle, subscribe, unsubscribe []VideoRoomStream) (*JSEP, *VideoRoomEvent, error) {
	if len(subscribe) == 0 && len(unsubscribe) == 0 {
		return nil, nil, errors.New("janus: videoroom update: nothing to subscribe or unsubscribe")
	}
	m, err := h.Message(ctx, buildVideoRoomUpdate(subscribe, unsubscribe), nil)
	if err != nil {
		return nil, nil, err
	}
	return parseVideoRoomUpdated(m)
}

func buildVideoRoomUpdate(subscribe, unsubscribe []VideoRoomStream) map[string]any {
	b := map[string]any{"request": "update"}
	if len(subscribe) > 0 {
		b["subscribe"] = streamList(subscribe)
	}
	if len(unsubscribe) > 0 {
		b["unsubscribe"] = streamList(unsubscribe)
	}
	return b
}

func parseVideoRoomUpdated(m *Message) (*JSEP, *VideoRoomEvent, error) {
	e, err := parseVideoRoomReply(m)
	if err != nil {
		return nil, nil, err
	}
	switch e.VideoRoom {
	case "updating":
		return nil, e, nil
	case "updated":
		if e.JSEP == nil {
			return nil, e, nil
		}
		offer, err := wantJSEP(PluginVideoRoom, "update", "offer", e.JSEP)
		return offer, e, err
	}
	return nil, nil, fmt.Errorf("janus: videoroom update: unexpected %q event", e.VideoRoom)
}

// VideoRoomSubscriberConfigure tunes a subscription (asynchronous). With
// Restart it returns Janus's new offer with new ICE credentials, to answer
// with VideoRoomStart; otherwise the offer is nil.
//
// Janus 1.1.2 does not answer a restart while an earlier offer is still
// unanswered: it only schedules the offer, which then comes as an "updated"
// event on Handle.Events after the pending answer, and this call waits
// until ctx or the session's request timeout ends.
func VideoRoomSubscriberConfigure(ctx context.Context, h *Handle, c VideoRoomSubscriberConfigureRequest) (*JSEP, error) {
	m, err := h.Message(ctx, buildVideoRoomSubscriberConfigure(c), nil)
	if err != nil {
		return nil, err
	}
	return parseVideoRoomSubscriberConfigured(m, c.Restart)
}

func buildVideoRoomSubscriberConfigure(c VideoRoomSubscriberConfigureRequest) map[string]any {
	b := map[string]any{"request": "configure"}
	if len(c.Streams) > 0 {
		streams := make([]map[string]any, 0, len(c.Streams))
		for _, s := range c.Streams {
			m := map[string]any{"mid": s.MID}
			if s.Send != nil {
				m["send"] = *s.Send
			}
			if s.Substream != nil {
				m["substream"] = *s.Substream
			}
			if s.Temporal != nil {
				m["temporal"] = *s.Temporal
			}
			streams = append(streams, m)
		}
		b["streams"] = streams
	}
	if c.Restart {
		b["restart"] = true
	}
	return b
}

func parseVideoRoomSubscriberConfigured(m *Message, restart bool) (*JSEP, error) {
	e, err := parseVideoRoomOK(m, "configure", "configured")
	if err != nil {
		return nil, err
	}
	if !restart {
		return nil, nil
	}
	return wantJSEP(PluginVideoRoom, "configure", "offer", e.JSEP)
}

// VideoRoomExists reports whether room exists (synchronous).
func VideoRoomExists(ctx context.Context, h *Handle, room ID) (bool, error) {
	pd, err := h.Request(ctx, buildVideoRoomExists(room))
	if err != nil {
		return false, err
	}
	return parseExists(pd)
}

func parseExists(pd *PluginData) (bool, error) {
	var r struct {
		Exists *bool `json:"exists"`
	}
	if err := decodeReply(pd, &r); err != nil {
		return false, err
	}
	if r.Exists == nil {
		return false, fmt.Errorf("janus: %s exists: reply without exists", pd.Plugin)
	}
	return *r.Exists, nil
}

// VideoRoomListParticipants lists the participants of room, publishing or
// not (synchronous).
func VideoRoomListParticipants(ctx context.Context, h *Handle, room ID) ([]VideoRoomParticipant, error) {
	pd, err := h.Request(ctx, buildVideoRoomListParticipants(room))
	if err != nil {
		return nil, err
	}
	return parseVideoRoomParticipants(pd)
}

func parseVideoRoomParticipants(pd *PluginData) ([]VideoRoomParticipant, error) {
	var r struct {
		VideoRoom    string                 `json:"videoroom"`
		Participants []VideoRoomParticipant `json:"participants"`
	}
	if err := decodeReply(pd, &r); err != nil {
		return nil, err
	}
	if r.VideoRoom != "participants" {
		return nil, fmt.Errorf("janus: videoroom listparticipants: unexpected %q reply", r.VideoRoom)
	}
	return r.Participants, nil
}

// VideoRoomList lists the public rooms with their settings, including the
// codecs they allow (synchronous).
func VideoRoomList(ctx context.Context, h *Handle) ([]VideoRoomInfo, error) {
	pd, err := h.Request(ctx, buildVideoRoomList())
	if err != nil {
		return nil, err
	}
	return parseVideoRoomList(pd)
}

func parseVideoRoomList(pd *PluginData) ([]VideoRoomInfo, error) {
	var r struct {
		List []VideoRoomInfo `json:"list"`
	}
	if err := decodeReply(pd, &r); err != nil {
		return nil, err
	}
	return r.List, nil
}

func buildVideoRoomUnpublish() map[string]any { return map[string]any{"request": "unpublish"} }

func buildVideoRoomLeave() map[string]any { return map[string]any{"request": "leave"} }

func buildVideoRoomStart() map[string]any { return map[string]any{"request": "start"} }

func buildVideoRoomExists(room ID) map[string]any {
	return map[string]any{"request": "exists", "room": room}
}

func buildVideoRoomListParticipants(room ID) map[string]any {
	return map[string]any{"request": "listparticipants", "room": room}
}

func buildVideoRoomList() map[string]any { return map[string]any{"request": "list"} }
