package janus

import (
	"encoding/json"
	"testing"
)

// FuzzPluginData feeds arbitrary plugin data, as a hostile or broken
// Janus could send it, to the typed parsers of the Streaming, VideoRoom
// and AudioBridge replies and events: they decode or fail with an error,
// never panic; an ID they accept encodes back to itself.
func FuzzPluginData(f *testing.F) {
	for _, s := range []string{
		`{"streaming":"event","result":{"status":"started"}}`,
		`{"streaming":"info","info":{"id":"cam","media":[{"mid":"v","type":"video","codec":"vp8","port":1234}]}}`,
		`{"videoroom":"joined","room":1234,"id":9007199254740991,"private_id":7,"publishers":[{"id":"x","display":"d","streams":[{"type":"video","mid":"1","codec":"h264"}]}]}`,
		`{"videoroom":"event","leaving":"ok","unpublished":123,"kicked":"bob","streams":[{"mid":"0","feed_id":5}]}`,
		`{"videoroom":"event","configured":"ok","streams":null,"error_code":426,"error":"no such room"}`,
		`{"audiobridge":"joined","room":"r","id":3,"participants":[{"id":4,"display":"x","muted":true}],"result":"ok"}`,
		`{"audiobridge":"event","result":{"x":1},"rtp":{"ip":"1.2.3.4","port":5,"payload_type":111}}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, plugin := range []string{PluginStreaming, PluginVideoRoom, PluginAudioBridge} {
			m := &Message{Janus: "event", PluginData: &PluginData{Plugin: plugin, Data: json.RawMessage(data)}}
			if e, err := ParseStreamingEvent(m); err == nil {
				_ = e.Err()
			}
			if e, err := ParseVideoRoomEvent(m); err == nil {
				_ = e.Err()
			}
			if e, err := ParseAudioBridgeEvent(m); err == nil {
				_ = e.Err()
			}
			var info struct {
				Info StreamingMountpointInfo `json:"info"`
			}
			_ = decodeReply(m.PluginData, &info)
			var joined VideoRoomJoined
			_ = decodeReply(m.PluginData, &joined)
			var list struct {
				List []VideoRoomInfo `json:"list"`
			}
			_ = decodeReply(m.PluginData, &list)
		}
		var id ID
		if json.Unmarshal(data, &id) == nil {
			b, err := json.Marshal(id)
			if err != nil {
				t.Fatalf("ID %v does not encode: %v", id, err)
			}
			var back ID
			if err := json.Unmarshal(b, &back); err != nil || back != id {
				t.Fatalf("ID %s -> %s -> %v (%v)", data, b, back, err)
			}
		}
	})
}
