package janus

import (
	"errors"
	"testing"
)

func TestDecodeMessages(t *testing.T) {
	tests := []struct {
		name  string
		body  string
		check func(t *testing.T, ms []*Message)
		err   error
	}{
		{
			name: "create success with 53-bit id",
			body: `{"janus":"success","transaction":"t1","data":{"id":9007199254740991}}`,
			check: func(t *testing.T, ms []*Message) {
				if ms[0].Data == nil || ms[0].Data.ID != 9007199254740991 {
					t.Fatalf("id = %+v", ms[0].Data)
				}
			},
		},
		{
			name: "plugin success",
			body: `{"janus":"success","session_id":1,"transaction":"t","sender":2,"plugindata":{"plugin":"janus.plugin.streaming","data":{"streaming":"list","list":[]}}}`,
			check: func(t *testing.T, ms []*Message) {
				m := ms[0]
				if m.Sender != 2 || m.PluginData.Plugin != "janus.plugin.streaming" || string(m.PluginData.Data) != `{"streaming":"list","list":[]}` {
					t.Fatalf("got %+v", m)
				}
			},
		},
		{
			name: "event with jsep",
			body: `{"janus":"event","session_id":1,"sender":2,"transaction":"t","plugindata":{"plugin":"p","data":{"x":1}},"jsep":{"type":"offer","sdp":"v=0\r\n","restart":true}}`,
			check: func(t *testing.T, ms []*Message) {
				j := ms[0].JSEP
				if j == nil || j.Type != "offer" || j.SDP != "v=0\r\n" || !j.Restart {
					t.Fatalf("jsep = %+v", j)
				}
			},
		},
		{
			name: "error",
			body: `{"janus":"error","transaction":"t","error":{"code":403,"reason":"Unauthorized request (wrong or missing secret/token)"}}`,
			check: func(t *testing.T, ms []*Message) {
				if !errors.Is(ms[0].Error, ErrUnauthorized) {
					t.Fatalf("error %v is not ErrUnauthorized", ms[0].Error)
				}
			},
		},
		{
			name: "media",
			body: `{"janus":"media","session_id":1,"sender":2,"mid":"1","type":"video","receiving":false}`,
			check: func(t *testing.T, ms []*Message) {
				m := ms[0]
				if m.MID != "1" || m.Type != "video" || m.Receiving == nil || *m.Receiving {
					t.Fatalf("got %+v", m)
				}
			},
		},
		{
			name: "slowlink",
			body: `{"janus":"slowlink","session_id":1,"sender":2,"mid":"0","media":"audio","uplink":true,"lost":12}`,
			check: func(t *testing.T, ms []*Message) {
				m := ms[0]
				if m.Media != "audio" || m.Uplink == nil || !*m.Uplink || m.Lost != 12 {
					t.Fatalf("got %+v", m)
				}
			},
		},
		{
			name: "hangup",
			body: `{"janus":"hangup","session_id":1,"sender":2,"reason":"DTLS alert"}`,
			check: func(t *testing.T, ms []*Message) {
				if ms[0].Reason != "DTLS alert" {
					t.Fatalf("got %+v", ms[0])
				}
			},
		},
		{
			name: "trickle",
			body: `{"janus":"trickle","session_id":1,"sender":2,"candidate":{"sdpMid":"0","sdpMLineIndex":0,"candidate":"candidate:1 1 udp 1 127.0.0.2 5000 typ host"}}`,
			check: func(t *testing.T, ms []*Message) {
				if len(ms[0].Candidate) == 0 {
					t.Fatal("candidate missing")
				}
			},
		},
		{
			name: "long-poll array keeps raw per message",
			body: ` [{"janus":"keepalive"},{"janus":"webrtcup","session_id":1,"sender":2}]`,
			check: func(t *testing.T, ms []*Message) {
				if len(ms) != 2 || ms[1].Janus != "webrtcup" || string(ms[1].Raw) != `{"janus":"webrtcup","session_id":1,"sender":2}` {
					t.Fatalf("got %+v", ms)
				}
			},
		},
		{name: "empty array", body: `[]`, check: func(t *testing.T, ms []*Message) {
			if len(ms) != 0 {
				t.Fatalf("got %d", len(ms))
			}
		}},
		{name: "not json", body: `<html>`, err: ErrBadMessage},
		{name: "no janus field", body: `{"transaction":"x"}`, err: ErrBadMessage},
		{name: "array element without janus", body: `[{"janus":"ack"},{}]`, err: ErrBadMessage},
		{name: "null element", body: `[null]`, err: ErrBadMessage},
		{name: "negative id", body: `{"janus":"success","data":{"id":-1}}`, err: ErrBadMessage},
		{name: "empty body", body: ``, err: ErrBadMessage},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ms, err := decodeMessages([]byte(tc.body))
			if tc.err != nil {
				if !errors.Is(err, tc.err) {
					t.Fatalf("err = %v, want %v", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tc.check(t, ms)
		})
	}
}

func TestPluginError(t *testing.T) {
	m := &Message{Janus: "success", PluginData: &PluginData{Plugin: "janus.plugin.streaming",
		Data: []byte(`{"streaming":"event","error_code":455,"error":"No such mountpoint/stream 7"}`)}}
	var pe *PluginError
	if err := m.DecodePluginData(nil); !errors.As(err, &pe) || pe.Code != 455 {
		t.Fatalf("err = %v", err)
	}
	ok := &Message{Janus: "success", PluginData: &PluginData{Plugin: "p", Data: []byte(`{"streaming":"list"}`)}}
	var v struct{ Streaming string }
	if err := ok.DecodePluginData(&v); err != nil || v.Streaming != "list" {
		t.Fatalf("v = %+v, err = %v", v, err)
	}
}

func TestErrorIs(t *testing.T) {
	err := error(&Error{Code: 458, Reason: "No such session 12"})
	if !errors.Is(err, ErrSessionNotFound) || errors.Is(err, ErrHandleNotFound) {
		t.Fatal("errors.Is does not match by code")
	}
}

// FuzzDecodeMessages feeds arbitrary bodies to the decoder of everything
// Janus sends: it must never panic, and whatever it accepts has a type.
func FuzzDecodeMessages(f *testing.F) {
	for _, s := range []string{
		`{"janus":"success","transaction":"t1","data":{"id":9007199254740991}}`,
		`[{"janus":"keepalive"},{"janus":"webrtcup","session_id":1,"sender":2}]`,
		`{"janus":"event","sender":2,"plugindata":{"plugin":"p","data":{"error_code":1,"error":"x"}},"jsep":{"type":"offer","sdp":""}}`,
		`{"janus":"error","error":{"code":458,"reason":"x"}}`,
		`{"janus":"trickle","candidate":{"completed":true}}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		ms, err := decodeMessages(body)
		if err != nil {
			if !errors.Is(err, ErrBadMessage) {
				t.Fatalf("error %v does not wrap ErrBadMessage", err)
			}
			return
		}
		for _, m := range ms {
			if m.Janus == "" {
				t.Fatal("accepted a message without type")
			}
			_ = pluginError(m.PluginData)
		}
	})
}
