package janus

import (
	"context"
	"fmt"
)

// EchoTestRequest holds the settings of an EchoTest request; nil and zero
// fields are left unchanged (Janus echoes audio and video by default).
type EchoTestRequest struct {
	Audio *bool // echo audio back
	Video *bool // echo video back
	// AudioCodec and VideoCodec force a codec when the PeerConnection is
	// negotiated (e.g. "vp9" instead of the offer's first).
	AudioCodec string
	VideoCodec string
	Bitrate    int // REMB cap in bit/s
}

// EchoTestEvent is an EchoTest event: "ok" replies, and "done" on
// Handle.Events when the PeerConnection is gone.
type EchoTestEvent struct {
	Result string
	// ErrorCode and Error are set when the event reports a plugin error.
	ErrorCode int
	Error     string
	JSEP      *JSEP
}

// Err returns the plugin error the event carries as a *PluginError, or nil.
func (e *EchoTestEvent) Err() error { return eventErr(PluginEchoTest, e.ErrorCode, e.Error) }

// ParseEchoTestEvent decodes an EchoTest event. A plugin error is not a
// decoding failure: it is returned in the event (see Err).
func ParseEchoTestEvent(m *Message) (*EchoTestEvent, error) {
	var r struct {
		Result    string `json:"result"`
		ErrorCode int    `json:"error_code"`
		Error     string `json:"error"`
	}
	if err := decodeEvent(m, PluginEchoTest, &r); err != nil {
		return nil, err
	}
	return &EchoTestEvent{Result: r.Result, ErrorCode: r.ErrorCode, Error: r.Error, JSEP: m.JSEP}, nil
}

// EchoTestOffer negotiates (or renegotiates, e.g. for an ICE restart) the
// PeerConnection with the client's offer (asynchronous) and returns Janus's
// answer.
func EchoTestOffer(ctx context.Context, h *Handle, r EchoTestRequest, offer *JSEP) (*JSEP, error) {
	m, err := h.Message(ctx, buildEchoTest(r), offer)
	if err != nil {
		return nil, err
	}
	e, err := parseEchoTestOK(m)
	if err != nil {
		return nil, err
	}
	return wantJSEP(PluginEchoTest, "offer", "answer", e.JSEP)
}

// EchoTestConfigure changes the settings of a running EchoTest
// (asynchronous).
func EchoTestConfigure(ctx context.Context, h *Handle, r EchoTestRequest) error {
	m, err := h.Message(ctx, buildEchoTest(r), nil)
	if err != nil {
		return err
	}
	_, err = parseEchoTestOK(m)
	return err
}

func buildEchoTest(r EchoTestRequest) map[string]any {
	b := map[string]any{}
	if r.Audio != nil {
		b["audio"] = *r.Audio
	}
	if r.Video != nil {
		b["video"] = *r.Video
	}
	setStr(b, "audiocodec", r.AudioCodec)
	setStr(b, "videocodec", r.VideoCodec)
	if r.Bitrate > 0 {
		b["bitrate"] = r.Bitrate
	}
	return b
}

func parseEchoTestOK(m *Message) (*EchoTestEvent, error) {
	e, err := ParseEchoTestEvent(m)
	if err != nil {
		return nil, err
	}
	if err := e.Err(); err != nil {
		return nil, err
	}
	if e.Result != "ok" {
		return nil, fmt.Errorf("janus: echotest: unexpected result %q", e.Result)
	}
	return e, nil
}
