package janus

import (
	"encoding/json"
	"errors"
	"fmt"
)

// Message is one JSON message received from Janus: a reply to a request
// (success, ack, error, server_info) or an asynchronous event. Fields that a
// message type does not use are left zero.
type Message struct {
	Janus       string `json:"janus"`
	Transaction string `json:"transaction,omitempty"`
	SessionID   uint64 `json:"session_id,omitempty"`
	// Sender is the handle the message is about (events, trickle, media...).
	Sender uint64 `json:"sender,omitempty"`

	// Data carries the new id in the success reply to create and attach.
	Data *struct {
		ID uint64 `json:"id"`
	} `json:"data,omitempty"`
	PluginData *PluginData `json:"plugindata,omitempty"`
	JSEP       *JSEP       `json:"jsep,omitempty"`
	Error      *Error      `json:"error,omitempty"`

	// Media and slowlink events.
	Type      string `json:"type,omitempty"`
	Media     string `json:"media,omitempty"`
	MID       string `json:"mid,omitempty"`
	Receiving *bool  `json:"receiving,omitempty"`
	Uplink    *bool  `json:"uplink,omitempty"`
	Lost      uint64 `json:"lost,omitempty"`
	// Hangup and detached events.
	Reason string `json:"reason,omitempty"`
	// Trickle events from Janus (candidates of the server side).
	Candidate json.RawMessage `json:"candidate,omitempty"`

	// Raw is the message as received, for fields not decoded above.
	Raw json.RawMessage `json:"-"`
}

// DecodePluginData decodes the plugin data of m into v. It fails when m has
// no plugin data, and returns a *PluginError when the plugin reports one.
func (m *Message) DecodePluginData(v any) error {
	if m.PluginData == nil {
		return fmt.Errorf("janus: %q message without plugin data", m.Janus)
	}
	if err := pluginError(m.PluginData); err != nil {
		return err
	}
	if v == nil {
		return nil
	}
	if err := json.Unmarshal(m.PluginData.Data, v); err != nil {
		return fmt.Errorf("janus: %s: decode plugin data: %w", m.PluginData.Plugin, err)
	}
	return nil
}

// PluginData is the plugin part of a success reply or event.
type PluginData struct {
	Plugin string          `json:"plugin"`
	Data   json.RawMessage `json:"data"`
}

// JSEP is a session description exchanged with a plugin.
type JSEP struct {
	Type    string `json:"type"` // "offer" or "answer"
	SDP     string `json:"sdp"`
	Trickle *bool  `json:"trickle,omitempty"`
	// Restart is set by some plugins on an offer made for an ICE restart
	// (not by the Streaming plugin of Janus 1.1.2, which only changes the
	// ICE credentials).
	Restart bool `json:"restart,omitempty"`
	// E2EE is passed through for completeness; janusbridge does not use it.
	E2EE bool `json:"e2ee,omitempty"`
}

// Error is an error returned by the Janus core ({"janus":"error"}).
type Error struct {
	Code   int    `json:"code"`
	Reason string `json:"reason"`
}

// Error codes of the Janus core that callers commonly test for.
const (
	CodeUnauthorized       = 403
	CodeUnauthorizedPlugin = 405
	CodeSessionNotFound    = 458
	CodeHandleNotFound     = 459
)

func (e *Error) Error() string {
	return fmt.Sprintf("janus error %d: %s", e.Code, e.Reason)
}

// Is lets errors.Is match a *Error against another *Error by code.
func (e *Error) Is(target error) bool {
	var t *Error
	return errors.As(target, &t) && t.Code == e.Code
}

// Sentinel errors for errors.Is.
var (
	// ErrUnauthorized matches a Janus 403: wrong api_secret or token.
	ErrUnauthorized = &Error{Code: CodeUnauthorized, Reason: "unauthorized"}
	// ErrSessionNotFound matches a Janus 458: the session is gone.
	ErrSessionNotFound = &Error{Code: CodeSessionNotFound, Reason: "no such session"}
	// ErrHandleNotFound matches a Janus 459: the handle is gone.
	ErrHandleNotFound = &Error{Code: CodeHandleNotFound, Reason: "no such handle"}
	// ErrBadMessage wraps the errors of messages from Janus that cannot be
	// decoded; such messages are dropped.
	ErrBadMessage = errors.New("janus: bad message")
	// ErrClosed is returned by calls on a closed session or detached handle.
	ErrClosed = errors.New("janus: closed")
	// ErrSessionRecreated is returned by calls on a handle whose session was
	// re-created after Janus lost it; attach a new handle.
	ErrSessionRecreated = errors.New("janus: session re-created, handle lost")
)

// PluginError is an error reported by a plugin inside its data
// ({"error_code": N, "error": "..."}).
type PluginError struct {
	Plugin string
	Code   int
	Reason string
}

func (e *PluginError) Error() string {
	return fmt.Sprintf("%s error %d: %s", e.Plugin, e.Code, e.Reason)
}

// pluginError extracts a plugin error from plugin data, or returns nil.
func pluginError(pd *PluginData) error {
	if pd == nil || len(pd.Data) == 0 {
		return nil
	}
	var e struct {
		Code   int    `json:"error_code"`
		Reason string `json:"error"`
	}
	if json.Unmarshal(pd.Data, &e) != nil || (e.Code == 0 && e.Reason == "") {
		return nil
	}
	return &PluginError{Plugin: pd.Plugin, Code: e.Code, Reason: e.Reason}
}

// decodeMessages parses a body holding one message or an array of them (the
// long-poll GET with maxev answers with an array).
func decodeMessages(body []byte) ([]*Message, error) {
	for _, c := range body {
		switch c {
		case ' ', '\t', '\r', '\n':
			continue
		case '[':
			var raws []json.RawMessage
			if err := json.Unmarshal(body, &raws); err != nil {
				return nil, fmt.Errorf("%w: %v", ErrBadMessage, err)
			}
			ms := make([]*Message, len(raws))
			for i, raw := range raws {
				m, err := decodeMessage(raw)
				if err != nil {
					return nil, err
				}
				ms[i] = m
			}
			return ms, nil
		}
		break
	}
	m, err := decodeMessage(body)
	if err != nil {
		return nil, err
	}
	return []*Message{m}, nil
}

func decodeMessage(raw []byte) (*Message, error) {
	m := new(Message)
	if err := json.Unmarshal(raw, m); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadMessage, err)
	}
	if m.Janus == "" {
		return nil, fmt.Errorf("%w: no \"janus\" field", ErrBadMessage)
	}
	m.Raw = raw
	return m, nil
}
