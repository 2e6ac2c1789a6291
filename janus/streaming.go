package janus

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
)

// This file holds the typed helpers of the Streaming plugin and what all the
// plugin helpers share: plugin names, the ID type and decoding helpers.
//
// Every helper is split into a pure builder of the request body, the call on
// the Handle, and a pure parser of the reply, so that the request and reply
// shapes can be tested without a Janus.

// Package names of the plugins janusbridge uses, for Session.Attach.
const (
	PluginStreaming   = "janus.plugin.streaming"
	PluginVideoRoom   = "janus.plugin.videoroom"
	PluginAudioBridge = "janus.plugin.audiobridge"
	PluginEchoTest    = "janus.plugin.echotest"
)

// ID identifies a plugin object: a mountpoint, a room or a participant.
// Janus uses numbers by default and strings when the plugin is configured
// with string_ids = true; an ID holds either and encodes to JSON as the
// same kind it was made or decoded from. The zero ID is the number 0, which
// in requests means "let Janus choose". IDs are comparable and can be map
// keys; NumID(1) and StrID("1") are different IDs.
type ID struct {
	str   string
	num   uint64
	isStr bool
}

// NumID returns a numeric ID.
func NumID(n uint64) ID { return ID{num: n} }

// StrID returns a string ID (for plugins configured with string_ids).
func StrID(s string) ID { return ID{str: s, isStr: true} }

// ParseID returns a numeric ID when s is a decimal unsigned integer, and a
// string ID otherwise. It suits command-line flags; use StrID to force a
// string ID that looks like a number.
func ParseID(s string) ID {
	if n, err := strconv.ParseUint(s, 10, 64); err == nil {
		return NumID(n)
	}
	return StrID(s)
}

// IsZero reports whether id is the number 0 or the empty string.
func (id ID) IsZero() bool {
	if id.isStr {
		return id.str == ""
	}
	return id.num == 0
}

// IsString reports whether id is a string ID.
func (id ID) IsString() bool { return id.isStr }

// Uint64 returns the value of a numeric ID, or 0 for a string ID.
func (id ID) Uint64() uint64 {
	if id.isStr {
		return 0
	}
	return id.num
}

// String returns the decimal number or the string.
func (id ID) String() string {
	if id.isStr {
		return id.str
	}
	return strconv.FormatUint(id.num, 10)
}

// MarshalJSON encodes id as a JSON number or string.
func (id ID) MarshalJSON() ([]byte, error) {
	if id.isStr {
		return json.Marshal(id.str)
	}
	return strconv.AppendUint(nil, id.num, 10), nil
}

// UnmarshalJSON decodes a JSON number (a non-negative integer), a string or
// null (the zero ID).
func (id *ID) UnmarshalJSON(b []byte) error {
	s := string(b)
	switch {
	case s == "null":
		*id = ID{}
		return nil
	case len(s) > 0 && s[0] == '"':
		var str string
		if err := json.Unmarshal(b, &str); err != nil {
			return err
		}
		*id = StrID(str)
		return nil
	}
	n, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		return fmt.Errorf("janus: id %s is neither a non-negative integer nor a string", s)
	}
	*id = NumID(n)
	return nil
}

// decodeReply decodes the data of a synchronous plugin reply into v,
// returning the plugin's error as a *PluginError.
func decodeReply(pd *PluginData, v any) error {
	if pd == nil {
		return errors.New("janus: reply without plugin data")
	}
	if err := pluginError(pd); err != nil {
		return err
	}
	if err := json.Unmarshal(pd.Data, v); err != nil {
		return fmt.Errorf("janus: %s: decode reply: %w", pd.Plugin, err)
	}
	return nil
}

// decodeEvent decodes the plugin data of an event from plugin into v. A
// plugin error is decoded like any other data, not returned.
func decodeEvent(m *Message, plugin string, v any) error {
	if m == nil || m.PluginData == nil {
		return errors.New("janus: event without plugin data")
	}
	if p := m.PluginData.Plugin; p != "" && p != plugin {
		return fmt.Errorf("janus: event from %s, want %s", p, plugin)
	}
	if err := json.Unmarshal(m.PluginData.Data, v); err != nil {
		return fmt.Errorf("janus: %s: decode event: %w", plugin, err)
	}
	return nil
}

// eventErr returns the plugin error carried by an event, or nil.
func eventErr(plugin string, code int, reason string) error {
	if code == 0 && reason == "" {
		return nil
	}
	return &PluginError{Plugin: plugin, Code: code, Reason: reason}
}

// wantJSEP checks that an event carries a JSEP of the given type.
func wantJSEP(plugin, what, typ string, j *JSEP) (*JSEP, error) {
	if j == nil {
		return nil, fmt.Errorf("janus: %s %s: event without %s", plugin, what, typ)
	}
	if j.Type != typ {
		return nil, fmt.Errorf("janus: %s %s: got %q JSEP, want %q", plugin, what, j.Type, typ)
	}
	return j, nil
}

// Streaming plugin error codes (JANUS_STREAMING_ERROR_*).
const (
	StreamingErrNoSuchMountpoint = 455
	StreamingErrCantCreate       = 456
	StreamingErrUnauthorized     = 457
	StreamingErrInvalidState     = 460
)

// StreamingMedia describes one stream of a mountpoint, as listed by
// StreamingList and StreamingInfo. Which fields are set depends on the
// request and the mountpoint type.
type StreamingMedia struct {
	MID    string `json:"mid"`
	MIndex int    `json:"mindex"` // info only
	Type   string `json:"type"`   // "audio", "video" or "data"
	Label  string `json:"label,omitempty"`
	MSID   string `json:"msid,omitempty"`
	// AgeMS is the time since Janus last received media for the stream (or
	// since the stream was created, if it never received any); nil when
	// the mountpoint has no socket for it.
	AgeMS *int64 `json:"age_ms,omitempty"`

	// Info only, for RTP mountpoints with a configured codec.
	PT     int    `json:"pt,omitempty"`
	Codec  string `json:"codec,omitempty"`
	RTPMap string `json:"rtpmap,omitempty"`
	FMTP   string `json:"fmtp,omitempty"`

	// Info only, and only when the right secret was given (or the mountpoint
	// has none): the ports Janus listens on.
	Port      int    `json:"port,omitempty"`
	RTCPPort  int    `json:"rtcpport,omitempty"`
	Port2     int    `json:"port2,omitempty"`
	Port3     int    `json:"port3,omitempty"`
	Recording string `json:"recording,omitempty"`
}

// StreamingMountpoint is one entry of StreamingList.
type StreamingMountpoint struct {
	ID ID `json:"id"`
	// Type is "live" or "on demand" (RTP mountpoints are "live").
	Type        string           `json:"type"`
	Description string           `json:"description,omitempty"`
	Metadata    string           `json:"metadata,omitempty"`
	Enabled     bool             `json:"enabled"`
	Media       []StreamingMedia `json:"media,omitempty"`
}

// StreamingMountpointInfo is the reply to StreamingInfo. Name, Secret, Pin,
// IsPrivate, Viewers, Host and the media ports are only returned when the
// mountpoint has no secret or the right one was given.
type StreamingMountpointInfo struct {
	ID          ID               `json:"id"`
	Name        string           `json:"name,omitempty"`
	Description string           `json:"description,omitempty"`
	Metadata    string           `json:"metadata,omitempty"`
	Secret      string           `json:"secret,omitempty"`
	Pin         string           `json:"pin,omitempty"`
	IsPrivate   bool             `json:"is_private,omitempty"`
	Enabled     bool             `json:"enabled"`
	Viewers     int              `json:"viewers,omitempty"`
	Type        string           `json:"type"`
	RTSP        bool             `json:"rtsp,omitempty"`
	Host        string           `json:"host,omitempty"`
	Media       []StreamingMedia `json:"media"`
}

// StreamingCreateRequest describes an RTP mountpoint to create with
// StreamingCreateRTP.
type StreamingCreateRequest struct {
	ID          ID // zero: Janus chooses
	Name        string
	Description string
	Metadata    string
	Secret      string // needed later for info with ports, and destroy
	Pin         string // needed by viewers to watch
	AdminKey    string // the plugin's admin_key, if configured
	IsPrivate   bool   // hide from list
	Permanent   bool   // save to the plugin's configuration file
	Media       []StreamingCreateMedia
}

// StreamingCreateMedia is one stream of a new RTP mountpoint.
type StreamingCreateMedia struct {
	Type  string // "audio", "video" or "data"
	MID   string // mandatory and unique in the mountpoint
	Label string
	// Port to receive RTP on; 0 lets Janus pick one in its rtp_port_range.
	Port int
	// RTCP opens an RTCP port too, RTCPPort (0: Janus picks one).
	RTCP     bool
	RTCPPort int
	// PT, Codec and FMTP describe the RTP of audio and video streams; PT is
	// always sent for them since 0 (PCMU) is valid. H.264 wants FMTP
	// "profile-level-id=42e01f;packetization-mode=1".
	PT    int
	Codec string
	FMTP  string
	Iface string // interface or IP to bind to; all by default
}

// StreamingPort is the port Janus bound for one stream of a created RTP
// mountpoint.
type StreamingPort struct {
	Type     string `json:"type"`
	MID      string `json:"mid"`
	MSID     string `json:"msid,omitempty"`
	Port     int    `json:"port"`
	RTCPPort int    `json:"rtcp_port,omitempty"`
	Port2    int    `json:"port_2,omitempty"` // simulcast
	Port3    int    `json:"port_3,omitempty"` // simulcast
}

// StreamingCreated is the reply to StreamingCreateRTP.
type StreamingCreated struct {
	Name      string // the unique name of the mountpoint
	Permanent bool   // whether it was saved to the configuration file
	ID        ID
	// Type is "live" for RTP mountpoints.
	Type        string
	Description string
	IsPrivate   bool
	// Host is the address Janus bound to, when it bound to one.
	Host  string
	Ports []StreamingPort
}

// Port returns the ports of the stream with the given mid.
func (c *StreamingCreated) Port(mid string) (StreamingPort, bool) {
	for _, p := range c.Ports {
		if p.MID == mid {
			return p, true
		}
	}
	return StreamingPort{}, false
}

// StreamingWatchRequest selects a mountpoint to watch.
type StreamingWatchRequest struct {
	ID  ID
	Pin string
	// Media lists the mids to receive; empty receives all streams.
	Media []string
}

// StreamingConfigureRequest changes what a viewer receives. Nil fields are left
// unchanged.
type StreamingConfigureRequest struct {
	MID       string // the stream the other fields apply to; all when empty
	Send      *bool  // relay the stream or not
	Substream *int   // simulcast substream (0-2)
	Temporal  *int   // simulcast temporal layer (0-2)
}

// StreamingEvent is an asynchronous Streaming event: the reply to watch,
// start, configure, pause and stop, or a notification on Handle.Events.
type StreamingEvent struct {
	// Streaming is the "streaming" field: "event" for viewer events.
	Streaming string
	// Status is "preparing" (watch: offer attached), "updating" (watch with
	// restart: offer attached), "starting" (start accepted), "started"
	// (media flows: PeerConnection up), "pausing", "stopping" (stop
	// accepted), "stopped" (the mountpoint is gone or stopped), or
	// "kicked_all".
	Status string
	// Event is "configured" in the reply to configure.
	Event string
	// Layer changes of simulcast or SVC mountpoints, with the mid they
	// concern (nil when not part of the event).
	MID           string
	Substream     *int
	Temporal      *int
	SpatialLayer  *int
	TemporalLayer *int
	// ErrorCode and Error are set when the event reports a plugin error.
	ErrorCode int
	Error     string
	// JSEP is the offer of a "preparing" or "updating" event.
	JSEP *JSEP
}

// Err returns the plugin error the event carries as a *PluginError, or nil.
func (e *StreamingEvent) Err() error { return eventErr(PluginStreaming, e.ErrorCode, e.Error) }

// ParseStreamingEvent decodes a Streaming event. A plugin error is not a
// decoding failure: it is returned in the event (see Err).
func ParseStreamingEvent(m *Message) (*StreamingEvent, error) {
	var raw struct {
		Streaming string `json:"streaming"`
		Result    *struct {
			Status        string `json:"status"`
			Event         string `json:"event"`
			MID           string `json:"mid"`
			Substream     *int   `json:"substream"`
			Temporal      *int   `json:"temporal"`
			SpatialLayer  *int   `json:"spatial_layer"`
			TemporalLayer *int   `json:"temporal_layer"`
		} `json:"result"`
		ErrorCode int    `json:"error_code"`
		Error     string `json:"error"`
	}
	if err := decodeEvent(m, PluginStreaming, &raw); err != nil {
		return nil, err
	}
	e := &StreamingEvent{Streaming: raw.Streaming, ErrorCode: raw.ErrorCode, Error: raw.Error, JSEP: m.JSEP}
	if r := raw.Result; r != nil {
		e.Status, e.Event, e.MID = r.Status, r.Event, r.MID
		e.Substream, e.Temporal = r.Substream, r.Temporal
		e.SpatialLayer, e.TemporalLayer = r.SpatialLayer, r.TemporalLayer
	}
	return e, nil
}

// StreamingList lists the public mountpoints (synchronous).
func StreamingList(ctx context.Context, h *Handle) ([]StreamingMountpoint, error) {
	pd, err := h.Request(ctx, buildStreamingList())
	if err != nil {
		return nil, err
	}
	return parseStreamingList(pd)
}

func buildStreamingList() map[string]any { return map[string]any{"request": "list"} }

func parseStreamingList(pd *PluginData) ([]StreamingMountpoint, error) {
	var r struct {
		List []StreamingMountpoint `json:"list"`
	}
	if err := decodeReply(pd, &r); err != nil {
		return nil, err
	}
	return r.List, nil
}

// StreamingInfo returns the details of a mountpoint (synchronous). With the
// mountpoint's secret (or when it has none) the reply includes the ports
// Janus listens on, its name, pin and viewer count.
func StreamingInfo(ctx context.Context, h *Handle, id ID, secret string) (*StreamingMountpointInfo, error) {
	pd, err := h.Request(ctx, buildStreamingInfo(id, secret))
	if err != nil {
		return nil, err
	}
	return parseStreamingInfo(pd)
}

func buildStreamingInfo(id ID, secret string) map[string]any {
	b := map[string]any{"request": "info", "id": id}
	if secret != "" {
		b["secret"] = secret
	}
	return b
}

func parseStreamingInfo(pd *PluginData) (*StreamingMountpointInfo, error) {
	var r struct {
		Info *StreamingMountpointInfo `json:"info"`
	}
	if err := decodeReply(pd, &r); err != nil {
		return nil, err
	}
	if r.Info == nil {
		return nil, errors.New("janus: streaming info: reply without info")
	}
	return r.Info, nil
}

// StreamingCreateRTP creates an RTP mountpoint (synchronous) and returns
// the ports Janus bound, one entry per stream, in Ports.
func StreamingCreateRTP(ctx context.Context, h *Handle, c StreamingCreateRequest) (*StreamingCreated, error) {
	pd, err := h.Request(ctx, buildStreamingCreateRTP(c))
	if err != nil {
		return nil, err
	}
	return parseStreamingCreated(pd)
}

func buildStreamingCreateRTP(c StreamingCreateRequest) map[string]any {
	b := map[string]any{"request": "create", "type": "rtp", "permanent": c.Permanent}
	if !c.ID.IsZero() {
		b["id"] = c.ID
	}
	setStr(b, "name", c.Name)
	setStr(b, "description", c.Description)
	setStr(b, "metadata", c.Metadata)
	setStr(b, "secret", c.Secret)
	setStr(b, "pin", c.Pin)
	setStr(b, "admin_key", c.AdminKey)
	if c.IsPrivate {
		b["is_private"] = true
	}
	media := make([]map[string]any, 0, len(c.Media))
	for _, m := range c.Media {
		mm := map[string]any{"type": m.Type, "mid": m.MID, "port": m.Port}
		setStr(mm, "label", m.Label)
		if m.RTCP {
			mm["rtcpport"] = m.RTCPPort
		}
		if m.Type == "audio" || m.Type == "video" {
			mm["pt"] = m.PT
		}
		setStr(mm, "codec", m.Codec)
		setStr(mm, "fmtp", m.FMTP)
		setStr(mm, "iface", m.Iface)
		media = append(media, mm)
	}
	b["media"] = media
	return b
}

func parseStreamingCreated(pd *PluginData) (*StreamingCreated, error) {
	var r struct {
		Streaming string `json:"streaming"`
		Created   string `json:"created"`
		Permanent bool   `json:"permanent"`
		Stream    *struct {
			ID          ID              `json:"id"`
			Type        string          `json:"type"`
			Description string          `json:"description"`
			IsPrivate   bool            `json:"is_private"`
			Host        string          `json:"host"`
			Ports       []StreamingPort `json:"ports"`
		} `json:"stream"`
	}
	if err := decodeReply(pd, &r); err != nil {
		return nil, err
	}
	if r.Streaming != "created" || r.Stream == nil {
		return nil, fmt.Errorf("janus: streaming create: unexpected %q reply", r.Streaming)
	}
	s := r.Stream
	return &StreamingCreated{
		Name: r.Created, Permanent: r.Permanent,
		ID: s.ID, Type: s.Type, Description: s.Description, IsPrivate: s.IsPrivate,
		Host: s.Host, Ports: s.Ports,
	}, nil
}

// StreamingDestroy destroys a mountpoint (synchronous, not permanent);
// its viewers are stopped and their PeerConnections closed.
func StreamingDestroy(ctx context.Context, h *Handle, id ID, secret string) error {
	pd, err := h.Request(ctx, buildStreamingDestroy(id, secret))
	if err != nil {
		return err
	}
	return parseStreamingDestroyed(pd)
}

func buildStreamingDestroy(id ID, secret string) map[string]any {
	b := map[string]any{"request": "destroy", "id": id, "permanent": false}
	setStr(b, "secret", secret)
	return b
}

func parseStreamingDestroyed(pd *PluginData) error {
	var r struct {
		Streaming string `json:"streaming"`
	}
	if err := decodeReply(pd, &r); err != nil {
		return err
	}
	if r.Streaming != "destroyed" {
		return fmt.Errorf("janus: streaming destroy: unexpected %q reply", r.Streaming)
	}
	return nil
}

// StreamingWatch asks to watch a mountpoint (asynchronous) and returns
// Janus's SDP offer. Answer it with StreamingStart.
func StreamingWatch(ctx context.Context, h *Handle, w StreamingWatchRequest) (*JSEP, error) {
	m, err := h.Message(ctx, buildStreamingWatch(w, false), nil)
	if err != nil {
		return nil, err
	}
	return parseStreamingWatch(m, false)
}

// StreamingWatchRestart asks a viewer that is already watching w.ID for a
// new offer with new ICE credentials (a server-side ICE restart; watch
// with restart: true). w must carry the mountpoint's pin, if it has one.
// Answer the offer with StreamingStart.
func StreamingWatchRestart(ctx context.Context, h *Handle, w StreamingWatchRequest) (*JSEP, error) {
	m, err := h.Message(ctx, buildStreamingWatch(w, true), nil)
	if err != nil {
		return nil, err
	}
	return parseStreamingWatch(m, true)
}

func buildStreamingWatch(w StreamingWatchRequest, restart bool) map[string]any {
	b := map[string]any{"request": "watch", "id": w.ID}
	setStr(b, "pin", w.Pin)
	if len(w.Media) > 0 {
		b["media"] = w.Media
	}
	if restart {
		b["restart"] = true
	}
	return b
}

func parseStreamingWatch(m *Message, restart bool) (*JSEP, error) {
	e, err := ParseStreamingEvent(m)
	if err != nil {
		return nil, err
	}
	if err := e.Err(); err != nil {
		return nil, err
	}
	want := "preparing"
	if restart {
		want = "updating"
	}
	if e.Status != want {
		return nil, fmt.Errorf("janus: streaming watch: status %q, want %q", e.Status, want)
	}
	return wantJSEP(PluginStreaming, "watch", "offer", e.JSEP)
}

// StreamingStart sends the viewer's SDP answer (asynchronous); Janus
// replies "starting", or "started" if the PeerConnection is already up, and
// later sends a "started" event on Handle.Events when media can flow. With
// a nil answer it resumes a paused viewer.
func StreamingStart(ctx context.Context, h *Handle, answer *JSEP) error {
	m, err := h.Message(ctx, buildStreamingStart(), answer)
	if err != nil {
		return err
	}
	return parseStreamingStatus(m, "start", "starting", "started")
}

func buildStreamingStart() map[string]any { return map[string]any{"request": "start"} }

// StreamingStop stops watching (asynchronous): Janus replies "stopping"
// and closes the PeerConnection; the handle can watch again afterwards.
func StreamingStop(ctx context.Context, h *Handle) error {
	m, err := h.Message(ctx, buildStreamingStop(), nil)
	if err != nil {
		return err
	}
	return parseStreamingStatus(m, "stop", "stopping")
}

func buildStreamingStop() map[string]any { return map[string]any{"request": "stop"} }

func parseStreamingStatus(m *Message, what string, want ...string) error {
	e, err := ParseStreamingEvent(m)
	if err != nil {
		return err
	}
	if err := e.Err(); err != nil {
		return err
	}
	for _, w := range want {
		if e.Status == w {
			return nil
		}
	}
	return fmt.Errorf("janus: streaming %s: unexpected status %q", what, e.Status)
}

// StreamingConfigure changes what a viewer receives (asynchronous): pause
// or resume one stream, or pick a simulcast substream and temporal layer.
func StreamingConfigure(ctx context.Context, h *Handle, c StreamingConfigureRequest) error {
	m, err := h.Message(ctx, buildStreamingConfigure(c), nil)
	if err != nil {
		return err
	}
	return parseStreamingConfigured(m)
}

func buildStreamingConfigure(c StreamingConfigureRequest) map[string]any {
	b := map[string]any{"request": "configure"}
	setStr(b, "mid", c.MID)
	if c.Send != nil {
		b["send"] = *c.Send
	}
	if c.Substream != nil {
		b["substream"] = *c.Substream
	}
	if c.Temporal != nil {
		b["temporal"] = *c.Temporal
	}
	return b
}

func parseStreamingConfigured(m *Message) error {
	e, err := ParseStreamingEvent(m)
	if err != nil {
		return err
	}
	if err := e.Err(); err != nil {
		return err
	}
	if e.Event != "configured" {
		return fmt.Errorf("janus: streaming configure: unexpected event %q", e.Event)
	}
	return nil
}

// setStr sets b[k] = v when v is not empty.
func setStr(b map[string]any, k, v string) {
	if v != "" {
		b[k] = v
	}
}
