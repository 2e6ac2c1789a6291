package janus

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
)

// samePluginJSON reports whether a and b hold the same JSON value.
func samePluginJSON(t *testing.T, a, b []byte) bool {
	t.Helper()
	var va, vb any
	if err := json.Unmarshal(a, &va); err != nil {
		t.Fatalf("bad JSON %s: %v", a, err)
	}
	if err := json.Unmarshal(b, &vb); err != nil {
		t.Fatalf("bad JSON %s: %v", b, err)
	}
	return reflect.DeepEqual(va, vb)
}

func pluginData(plugin, data string) *PluginData {
	return &PluginData{Plugin: plugin, Data: json.RawMessage(data)}
}

func pluginEvent(plugin, data string, jsep *JSEP) *Message {
	return &Message{Janus: "event", PluginData: pluginData(plugin, data), JSEP: jsep}
}

var (
	pluginTestOffer  = &JSEP{Type: "offer", SDP: "v=0 offer"}
	pluginTestAnswer = &JSEP{Type: "answer", SDP: "v=0 answer"}
)

func ptrOf[T any](v T) *T { return &v }

func TestID(t *testing.T) {
	tests := []struct {
		name   string
		id     ID
		json   string
		str    string
		zero   bool
		isStr  bool
		number uint64
	}{
		{"zero value", ID{}, `0`, "0", true, false, 0},
		{"number", NumID(1234), `1234`, "1234", false, false, 1234},
		{"53-bit number", NumID(1<<53 - 1), `9007199254740991`, "9007199254740991", false, false, 1<<53 - 1},
		{"max uint64", NumID(^uint64(0)), `18446744073709551615`, "18446744073709551615", false, false, ^uint64(0)},
		{"string", StrID("lobby"), `"lobby"`, "lobby", false, true, 0},
		{"numeric string", StrID("42"), `"42"`, "42", false, true, 0},
		{"empty string", StrID(""), `""`, "", true, true, 0},
		{"escaped string", StrID(`a"b`), `"a\"b"`, `a"b`, false, true, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := json.Marshal(tt.id)
			if err != nil || string(b) != tt.json {
				t.Fatalf("Marshal = %s, %v; want %s", b, err, tt.json)
			}
			var back ID
			if err := json.Unmarshal(b, &back); err != nil || back != tt.id {
				t.Fatalf("Unmarshal(%s) = %#v, %v; want %#v", b, back, err, tt.id)
			}
			if got := tt.id.String(); got != tt.str {
				t.Errorf("String = %q, want %q", got, tt.str)
			}
			if got := tt.id.IsZero(); got != tt.zero {
				t.Errorf("IsZero = %v, want %v", got, tt.zero)
			}
			if got := tt.id.IsString(); got != tt.isStr {
				t.Errorf("IsString = %v, want %v", got, tt.isStr)
			}
			if got := tt.id.Uint64(); got != tt.number {
				t.Errorf("Uint64 = %d, want %d", got, tt.number)
			}
		})
	}

	t.Run("unmarshal", func(t *testing.T) {
		for _, c := range []struct {
			in   string
			want ID
			err  bool
		}{
			{`null`, ID{}, false},
			{` 7 `, NumID(7), false},
			{`"7"`, StrID("7"), false},
			{`-1`, ID{}, true},
			{`1.5`, ID{}, true},
			{`1e3`, ID{}, true},
			{`true`, ID{}, true},
			{`{}`, ID{}, true},
			{`18446744073709551616`, ID{}, true},
		} {
			var got ID
			err := json.Unmarshal([]byte(c.in), &got)
			if (err != nil) != c.err || (!c.err && got != c.want) {
				t.Errorf("Unmarshal(%s) = %#v, %v; want %#v, error %v", c.in, got, err, c.want, c.err)
			}
		}
	})

	t.Run("ParseID", func(t *testing.T) {
		for in, want := range map[string]ID{
			"1234": NumID(1234), "0": NumID(0), "lobby": StrID("lobby"), "-1": StrID("-1"),
			"": StrID(""), "12a": StrID("12a"), "99999999999999999999": StrID("99999999999999999999"),
		} {
			if got := ParseID(in); got != want {
				t.Errorf("ParseID(%q) = %#v, want %#v", in, got, want)
			}
		}
	})

	t.Run("in structs and maps", func(t *testing.T) {
		var v struct {
			Room ID `json:"room"`
			Feed ID `json:"feed,omitzero"`
		}
		if err := json.Unmarshal([]byte(`{"room":"r1"}`), &v); err != nil || v.Room != StrID("r1") || !v.Feed.IsZero() {
			t.Fatalf("got %#v, %v", v, err)
		}
		b, _ := json.Marshal(v)
		if string(b) != `{"room":"r1"}` {
			t.Errorf("omitzero: got %s", b)
		}
		seen := map[ID]bool{NumID(1): true}
		if seen[StrID("1")] || !seen[NumID(1)] {
			t.Error("NumID(1) and StrID(\"1\") must be distinct map keys")
		}
	})
}

// TestPluginRequestBodies checks the exact body every helper sends.
func TestPluginRequestBodies(t *testing.T) {
	tests := []struct {
		name string
		body any
		want string
	}{
		// Streaming.
		{"streaming list", buildStreamingList(), `{"request":"list"}`},
		{"streaming info", buildStreamingInfo(NumID(7), ""), `{"request":"info","id":7}`},
		{"streaming info secret", buildStreamingInfo(StrID("cam"), "s3"), `{"request":"info","id":"cam","secret":"s3"}`},
		{"streaming create minimal", buildStreamingCreateRTP(StreamingCreateRequest{
			Media: []StreamingCreateMedia{{Type: "audio", MID: "a", PT: 111, Codec: "opus"}},
		}), `{"request":"create","type":"rtp","permanent":false,
			"media":[{"type":"audio","mid":"a","port":0,"pt":111,"codec":"opus"}]}`},
		{"streaming create full", buildStreamingCreateRTP(StreamingCreateRequest{
			ID: NumID(1234), Name: "bridge-1234", Description: "bridge", Metadata: "{}",
			Secret: "s", Pin: "p", AdminKey: "k", IsPrivate: true, Permanent: true,
			Media: []StreamingCreateMedia{
				{Type: "audio", MID: "a", Label: "mic", Port: 5002, RTCP: true, RTCPPort: 5003, PT: 0, Codec: "pcmu"},
				{Type: "video", MID: "v", PT: 96, Codec: "h264", FMTP: "profile-level-id=42e01f;packetization-mode=1", RTCP: true, Iface: "127.0.0.1"},
				{Type: "data", MID: "d", Port: 5006},
			},
		}), `{"request":"create","type":"rtp","id":1234,"name":"bridge-1234","description":"bridge",
			"metadata":"{}","secret":"s","pin":"p","admin_key":"k","is_private":true,"permanent":true,
			"media":[
				{"type":"audio","mid":"a","label":"mic","port":5002,"rtcpport":5003,"pt":0,"codec":"pcmu"},
				{"type":"video","mid":"v","port":0,"rtcpport":0,"pt":96,"codec":"h264",
				 "fmtp":"profile-level-id=42e01f;packetization-mode=1","iface":"127.0.0.1"},
				{"type":"data","mid":"d","port":5006}]}`},
		{"streaming destroy", buildStreamingDestroy(NumID(1234), "s"), `{"request":"destroy","id":1234,"secret":"s","permanent":false}`},
		{"streaming destroy no secret", buildStreamingDestroy(StrID("x"), ""), `{"request":"destroy","id":"x","permanent":false}`},
		{"streaming watch", buildStreamingWatch(StreamingWatchRequest{ID: NumID(1)}, false), `{"request":"watch","id":1}`},
		{"streaming watch pin media", buildStreamingWatch(StreamingWatchRequest{ID: NumID(1), Pin: "p", Media: []string{"a", "v1"}}, false),
			`{"request":"watch","id":1,"pin":"p","media":["a","v1"]}`},
		{"streaming watch restart", buildStreamingWatch(StreamingWatchRequest{ID: NumID(1), Pin: "p"}, true),
			`{"request":"watch","id":1,"pin":"p","restart":true}`},
		{"streaming start", buildStreamingStart(), `{"request":"start"}`},
		{"streaming stop", buildStreamingStop(), `{"request":"stop"}`},
		{"streaming configure empty", buildStreamingConfigure(StreamingConfigureRequest{}), `{"request":"configure"}`},
		{"streaming configure", buildStreamingConfigure(StreamingConfigureRequest{MID: "v", Send: ptrOf(false), Substream: ptrOf(0), Temporal: ptrOf(2)}),
			`{"request":"configure","mid":"v","send":false,"substream":0,"temporal":2}`},

		// VideoRoom publisher.
		{"videoroom join publisher", buildVideoRoomJoinPublisher(NumID(1234), "", ""), `{"request":"join","ptype":"publisher","room":1234}`},
		{"videoroom join publisher full", buildVideoRoomJoinPublisher(StrID("lobby"), "bridge", "pin"),
			`{"request":"join","ptype":"publisher","room":"lobby","display":"bridge","pin":"pin"}`},
		{"videoroom publish", buildVideoRoomPublish(VideoRoomPublishRequest{}), `{"request":"publish"}`},
		{"videoroom publish full", buildVideoRoomPublish(VideoRoomPublishRequest{
			AudioCodec: "opus", VideoCodec: "h264", Bitrate: 512000, Display: "rtmp",
			Descriptions: []VideoRoomDescription{{MID: "0", Description: "audio"}, {MID: "1", Description: "camera"}},
		}), `{"request":"publish","audiocodec":"opus","videocodec":"h264","bitrate":512000,"display":"rtmp",
			"descriptions":[{"mid":"0","description":"audio"},{"mid":"1","description":"camera"}]}`},
		{"videoroom configure", buildVideoRoomConfigure(VideoRoomConfigureRequest{}), `{"request":"configure"}`},
		{"videoroom configure full", buildVideoRoomConfigure(VideoRoomConfigureRequest{
			Bitrate: 256000, Keyframe: true, Display: "x", Descriptions: []VideoRoomDescription{{MID: "1", Description: "screen"}},
		}), `{"request":"configure","bitrate":256000,"keyframe":true,"display":"x","descriptions":[{"mid":"1","description":"screen"}]}`},
		{"videoroom unpublish", buildVideoRoomUnpublish(), `{"request":"unpublish"}`},
		{"videoroom leave", buildVideoRoomLeave(), `{"request":"leave"}`},

		// VideoRoom subscriber.
		{"videoroom join subscriber", buildVideoRoomJoinSubscriber(NumID(1234), "", []VideoRoomStream{{Feed: NumID(11)}, {Feed: NumID(12), MID: "1"}}, 0),
			`{"request":"join","ptype":"subscriber","room":1234,"streams":[{"feed":11},{"feed":12,"mid":"1"}]}`},
		{"videoroom join subscriber full", buildVideoRoomJoinSubscriber(StrID("lobby"), "pin", []VideoRoomStream{{Feed: StrID("alice"), MID: "0"}}, 987654),
			`{"request":"join","ptype":"subscriber","room":"lobby","pin":"pin","private_id":987654,"streams":[{"feed":"alice","mid":"0"}]}`},
		{"videoroom join subscriber substream", buildVideoRoomJoinSubscriber(NumID(1234), "", []VideoRoomStream{{Feed: NumID(11), Substream: ptrOf(0)}, {Feed: NumID(12), Substream: ptrOf(2)}}, 0),
			`{"request":"join","ptype":"subscriber","room":1234,"streams":[{"feed":11,"substream":0},{"feed":12,"substream":2}]}`},
		{"videoroom start", buildVideoRoomStart(), `{"request":"start"}`},
		{"videoroom update substream", buildVideoRoomUpdate([]VideoRoomStream{{Feed: NumID(13), Substream: ptrOf(1)}}, nil),
			`{"request":"update","subscribe":[{"feed":13,"substream":1}]}`},
		{"videoroom update", buildVideoRoomUpdate([]VideoRoomStream{{Feed: NumID(13)}}, []VideoRoomStream{{Feed: NumID(11)}, {SubMID: "3"}, {Feed: NumID(12), MID: "1"}}),
			`{"request":"update","subscribe":[{"feed":13}],"unsubscribe":[{"feed":11},{"sub_mid":"3"},{"feed":12,"mid":"1"}]}`},
		{"videoroom update subscribe only", buildVideoRoomUpdate([]VideoRoomStream{{Feed: NumID(13), MID: "0"}}, nil),
			`{"request":"update","subscribe":[{"feed":13,"mid":"0"}]}`},
		{"videoroom update unsubscribe only", buildVideoRoomUpdate(nil, []VideoRoomStream{{SubMID: "2"}}),
			`{"request":"update","unsubscribe":[{"sub_mid":"2"}]}`},
		{"videoroom subscriber configure restart", buildVideoRoomSubscriberConfigure(VideoRoomSubscriberConfigureRequest{Restart: true}),
			`{"request":"configure","restart":true}`},
		{"videoroom subscriber configure streams", buildVideoRoomSubscriberConfigure(VideoRoomSubscriberConfigureRequest{
			Streams: []VideoRoomStreamConfigure{{MID: "1", Substream: ptrOf(2), Temporal: ptrOf(1)}, {MID: "0", Send: ptrOf(false)}},
		}), `{"request":"configure","streams":[{"mid":"1","substream":2,"temporal":1},{"mid":"0","send":false}]}`},

		// VideoRoom queries.
		{"videoroom exists", buildVideoRoomExists(NumID(1234)), `{"request":"exists","room":1234}`},
		{"videoroom listparticipants", buildVideoRoomListParticipants(StrID("lobby")), `{"request":"listparticipants","room":"lobby"}`},
		{"videoroom list", buildVideoRoomList(), `{"request":"list"}`},

		// AudioBridge.
		{"audiobridge join", buildAudioBridgeJoin(NumID(5678), AudioBridgeJoinRequest{}), `{"request":"join","room":5678,"muted":false}`},
		{"audiobridge join full", buildAudioBridgeJoin(StrID("conf"), AudioBridgeJoinRequest{
			ID: NumID(42), Display: "bridge", Pin: "p", Token: "t", Muted: true, Codec: "pcmu", GenerateOffer: true,
		}), `{"request":"join","room":"conf","id":42,"display":"bridge","pin":"p","token":"t","muted":true,"codec":"pcmu","generate_offer":true}`},
		{"audiobridge join rtp", buildAudioBridgeJoin(NumID(5678), AudioBridgeJoinRequest{RTP: &AudioBridgeRTP{PayloadType: 111}}),
			`{"request":"join","room":5678,"muted":false,"rtp":{"payload_type":111}}`},
		{"audiobridge join rtp full", buildAudioBridgeJoin(NumID(5678), AudioBridgeJoinRequest{RTP: &AudioBridgeRTP{IP: "10.0.0.1", Port: 5004, PayloadType: 111, AudioLevelExt: 1, FEC: true}}),
			`{"request":"join","room":5678,"muted":false,"rtp":{"ip":"10.0.0.1","port":5004,"payload_type":111,"audiolevel_ext":1,"fec":true}}`},
		{"audiobridge configure", buildAudioBridgeConfigure(AudioBridgeConfigureRequest{}), `{"request":"configure"}`},
		{"audiobridge configure full", buildAudioBridgeConfigure(AudioBridgeConfigureRequest{
			Muted: ptrOf(false), Display: "x", Bitrate: 32000, GenerateOffer: true, Update: true,
		}), `{"request":"configure","muted":false,"display":"x","bitrate":32000,"generate_offer":true,"update":true}`},
		{"audiobridge leave", buildAudioBridgeLeave(), `{"request":"leave"}`},
		{"audiobridge exists", buildAudioBridgeExists(NumID(5678)), `{"request":"exists","room":5678}`},
		{"audiobridge list", buildAudioBridgeList(), `{"request":"list"}`},

		// EchoTest.
		{"echotest empty", buildEchoTest(EchoTestRequest{}), `{}`},
		{"echotest full", buildEchoTest(EchoTestRequest{Audio: ptrOf(true), Video: ptrOf(false), AudioCodec: "opus", VideoCodec: "vp9", Bitrate: 128000}),
			`{"audio":true,"video":false,"audiocodec":"opus","videocodec":"vp9","bitrate":128000}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := json.Marshal(tt.body)
			if err != nil {
				t.Fatal(err)
			}
			if !samePluginJSON(t, got, []byte(tt.want)) {
				t.Errorf("body\n got %s\nwant %s", got, strings.Join(strings.Fields(tt.want), " "))
			}
		})
	}
}

// wantPluginError checks that err is a *PluginError with code.
func wantPluginError(t *testing.T, err error, plugin string, code int) {
	t.Helper()
	var pe *PluginError
	if !errors.As(err, &pe) || pe.Code != code || pe.Plugin != plugin {
		t.Fatalf("error = %v, want %s plugin error %d", err, plugin, code)
	}
}

func TestStreamingReplies(t *testing.T) {
	t.Run("list", func(t *testing.T) {
		got, err := parseStreamingList(pluginData(PluginStreaming, `{"streaming":"list","list":[
			{"id":1,"type":"live","description":"Opus/VP8 live stream coming from external source","metadata":"m","enabled":true,
			 "media":[{"mid":"a","type":"audio","label":"audio","age_ms":1200},{"mid":"v","type":"video","label":"video","msid":"s t"}]},
			{"id":"cam","type":"on demand","description":"file","enabled":false}]}`))
		if err != nil {
			t.Fatal(err)
		}
		want := []StreamingMountpoint{
			{ID: NumID(1), Type: "live", Description: "Opus/VP8 live stream coming from external source", Metadata: "m", Enabled: true,
				Media: []StreamingMedia{{MID: "a", Type: "audio", Label: "audio", AgeMS: ptrOf(int64(1200))}, {MID: "v", Type: "video", Label: "video", MSID: "s t"}}},
			{ID: StrID("cam"), Type: "on demand", Description: "file"},
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("got %+v\nwant %+v", got, want)
		}
	})

	t.Run("info with secret", func(t *testing.T) {
		got, err := parseStreamingInfo(pluginData(PluginStreaming, `{"streaming":"info","info":{
			"id":1234,"name":"bridge-1234","description":"bridge","secret":"s","pin":"p","is_private":true,
			"enabled":true,"viewers":2,"type":"live","host":"127.0.0.1",
			"media":[
				{"mindex":0,"type":"audio","mid":"a","label":"a","pt":111,"codec":"opus","rtpmap":"opus/48000/2",
				 "port":10000,"rtcpport":10001,"age_ms":20},
				{"mindex":1,"type":"video","mid":"v","label":"v","pt":96,"codec":"h264","rtpmap":"H264/90000",
				 "fmtp":"profile-level-id=42e01f;packetization-mode=1","port":10002,"port2":10004,"port3":10006,"recording":"/rec/x"}]}}`))
		if err != nil {
			t.Fatal(err)
		}
		want := &StreamingMountpointInfo{ID: NumID(1234), Name: "bridge-1234", Description: "bridge", Secret: "s", Pin: "p",
			IsPrivate: true, Enabled: true, Viewers: 2, Type: "live", Host: "127.0.0.1",
			Media: []StreamingMedia{
				{MIndex: 0, Type: "audio", MID: "a", Label: "a", PT: 111, Codec: "opus", RTPMap: "opus/48000/2", Port: 10000, RTCPPort: 10001, AgeMS: ptrOf(int64(20))},
				{MIndex: 1, Type: "video", MID: "v", Label: "v", PT: 96, Codec: "h264", RTPMap: "H264/90000",
					FMTP: "profile-level-id=42e01f;packetization-mode=1", Port: 10002, Port2: 10004, Port3: 10006, Recording: "/rec/x"},
			}}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("got %+v\nwant %+v", got, want)
		}
	})

	t.Run("info without secret has no ports", func(t *testing.T) {
		got, err := parseStreamingInfo(pluginData(PluginStreaming, `{"streaming":"info","info":{"id":5,"enabled":true,"type":"live",
			"media":[{"mindex":0,"type":"video","mid":"v","label":"v","pt":100,"codec":"vp8","rtpmap":"VP8/90000"}]}}`))
		if err != nil {
			t.Fatal(err)
		}
		if m := got.Media[0]; m.Port != 0 || m.Codec != "vp8" || m.AgeMS != nil {
			t.Errorf("media = %+v", m)
		}
	})

	t.Run("info error", func(t *testing.T) {
		_, err := parseStreamingInfo(pluginData(PluginStreaming, `{"streaming":"event","error_code":455,"error":"No such mountpoint/stream 9"}`))
		wantPluginError(t, err, PluginStreaming, StreamingErrNoSuchMountpoint)
	})

	t.Run("created", func(t *testing.T) {
		got, err := parseStreamingCreated(pluginData(PluginStreaming, `{"streaming":"created","created":"bridge-1234","permanent":false,
			"stream":{"id":1234,"type":"live","description":"bridge","is_private":false,"host":"127.0.0.1",
			"ports":[{"type":"audio","mid":"a","port":10000,"rtcp_port":10001},{"type":"video","mid":"v","port":10002,"port_2":10004,"port_3":10006},
			         {"type":"data","mid":"d","port":10008}]}}`))
		if err != nil {
			t.Fatal(err)
		}
		want := &StreamingCreated{Name: "bridge-1234", ID: NumID(1234), Type: "live", Description: "bridge", Host: "127.0.0.1",
			Ports: []StreamingPort{
				{Type: "audio", MID: "a", Port: 10000, RTCPPort: 10001},
				{Type: "video", MID: "v", Port: 10002, Port2: 10004, Port3: 10006},
				{Type: "data", MID: "d", Port: 10008},
			}}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("got %+v\nwant %+v", got, want)
		}
		if p, ok := got.Port("v"); !ok || p.Port != 10002 {
			t.Errorf("Port(v) = %+v, %v", p, ok)
		}
		if _, ok := got.Port("x"); ok {
			t.Error("Port(x) found")
		}
	})

	t.Run("create errors", func(t *testing.T) {
		_, err := parseStreamingCreated(pluginData(PluginStreaming, `{"streaming":"event","error_code":456,"error":"Can't add 'rtp' stream"}`))
		wantPluginError(t, err, PluginStreaming, StreamingErrCantCreate)
		if _, err := parseStreamingCreated(pluginData(PluginStreaming, `{"streaming":"ok"}`)); err == nil {
			t.Error("no error for a reply that is not created")
		}
	})

	t.Run("destroyed", func(t *testing.T) {
		if err := parseStreamingDestroyed(pluginData(PluginStreaming, `{"streaming":"destroyed","id":1234}`)); err != nil {
			t.Error(err)
		}
		wantPluginError(t, parseStreamingDestroyed(pluginData(PluginStreaming, `{"streaming":"event","error_code":457,"error":"Unauthorized (wrong secret)"}`)),
			PluginStreaming, StreamingErrUnauthorized)
	})

	watch := []struct {
		name    string
		msg     *Message
		restart bool
		ok      bool
		code    int
	}{
		{"watch", pluginEvent(PluginStreaming, `{"streaming":"event","result":{"status":"preparing"}}`, pluginTestOffer), false, true, 0},
		{"watch restart", pluginEvent(PluginStreaming, `{"streaming":"event","result":{"status":"updating"}}`, &JSEP{Type: "offer", SDP: "x", Restart: true}), true, true, 0},
		{"watch without offer", pluginEvent(PluginStreaming, `{"streaming":"event","result":{"status":"preparing"}}`, nil), false, false, 0},
		{"watch with answer", pluginEvent(PluginStreaming, `{"streaming":"event","result":{"status":"preparing"}}`, pluginTestAnswer), false, false, 0},
		{"watch restart wrong status", pluginEvent(PluginStreaming, `{"streaming":"event","result":{"status":"preparing"}}`, pluginTestOffer), true, false, 0},
		{"watch error", pluginEvent(PluginStreaming, `{"streaming":"event","error_code":460,"error":"Already watching mountpoint 1"}`, nil), false, false, StreamingErrInvalidState},
		{"watch wrong plugin", pluginEvent(PluginVideoRoom, `{"videoroom":"attached"}`, pluginTestOffer), false, false, 0},
	}
	for _, tt := range watch {
		t.Run(tt.name, func(t *testing.T) {
			offer, err := parseStreamingWatch(tt.msg, tt.restart)
			switch {
			case tt.code != 0:
				wantPluginError(t, err, PluginStreaming, tt.code)
			case tt.ok && (err != nil || offer != tt.msg.JSEP):
				t.Errorf("got %v, %v; want the offer", offer, err)
			case !tt.ok && err == nil:
				t.Errorf("no error, offer %v", offer)
			}
		})
	}

	status := []struct {
		name string
		data string
		want []string
		ok   bool
	}{
		{"start starting", `{"streaming":"event","result":{"status":"starting"}}`, []string{"starting", "started"}, true},
		{"start started", `{"streaming":"event","result":{"status":"started"}}`, []string{"starting", "started"}, true},
		{"stop", `{"streaming":"event","result":{"status":"stopping"}}`, []string{"stopping"}, true},
		{"stop unexpected", `{"streaming":"event","result":{"status":"pausing"}}`, []string{"stopping"}, false},
		{"start error", `{"streaming":"event","error_code":455,"error":"Can't start: no mountpoint set"}`, []string{"starting"}, false},
	}
	for _, tt := range status {
		t.Run(tt.name, func(t *testing.T) {
			err := parseStreamingStatus(pluginEvent(PluginStreaming, tt.data, nil), "x", tt.want...)
			if (err == nil) != tt.ok {
				t.Errorf("error = %v, want ok %v", err, tt.ok)
			}
		})
	}

	t.Run("configured", func(t *testing.T) {
		if err := parseStreamingConfigured(pluginEvent(PluginStreaming, `{"streaming":"event","result":{"event":"configured"}}`, nil)); err != nil {
			t.Error(err)
		}
		if err := parseStreamingConfigured(pluginEvent(PluginStreaming, `{"streaming":"event","result":{"status":"starting"}}`, nil)); err == nil {
			t.Error("no error for a reply that is not configured")
		}
	})
}

func TestStreamingEvent(t *testing.T) {
	tests := []struct {
		name string
		msg  *Message
		want StreamingEvent
		err  bool
	}{
		{"started", pluginEvent(PluginStreaming, `{"streaming":"event","result":{"status":"started"}}`, nil),
			StreamingEvent{Streaming: "event", Status: "started"}, false},
		{"stopped", pluginEvent(PluginStreaming, `{"streaming":"event","result":{"status":"stopped"}}`, nil),
			StreamingEvent{Streaming: "event", Status: "stopped"}, false},
		{"preparing with offer", pluginEvent(PluginStreaming, `{"streaming":"event","result":{"status":"preparing"}}`, pluginTestOffer),
			StreamingEvent{Streaming: "event", Status: "preparing", JSEP: pluginTestOffer}, false},
		{"simulcast substream", pluginEvent(PluginStreaming, `{"streaming":"event","result":{"mid":"v","substream":1}}`, nil),
			StreamingEvent{Streaming: "event", MID: "v", Substream: ptrOf(1)}, false},
		{"simulcast temporal", pluginEvent(PluginStreaming, `{"streaming":"event","result":{"mid":"v","temporal":0}}`, nil),
			StreamingEvent{Streaming: "event", MID: "v", Temporal: ptrOf(0)}, false},
		{"svc", pluginEvent(PluginStreaming, `{"streaming":"event","result":{"mid":"v","spatial_layer":1,"temporal_layer":2}}`, nil),
			StreamingEvent{Streaming: "event", MID: "v", SpatialLayer: ptrOf(1), TemporalLayer: ptrOf(2)}, false},
		{"error", pluginEvent(PluginStreaming, `{"streaming":"event","error_code":455,"error":"No such mountpoint/stream 3"}`, nil),
			StreamingEvent{Streaming: "event", ErrorCode: 455, Error: "No such mountpoint/stream 3"}, false},
		{"no plugin data", &Message{Janus: "webrtcup"}, StreamingEvent{}, true},
		{"other plugin", pluginEvent(PluginEchoTest, `{"echotest":"event","result":"done"}`, nil), StreamingEvent{}, true},
		{"bad data", pluginEvent(PluginStreaming, `{"streaming":"event","result":"nope"}`, nil), StreamingEvent{}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseStreamingEvent(tt.msg)
			if tt.err {
				if err == nil {
					t.Fatalf("no error, got %+v", got)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(*got, tt.want) {
				t.Errorf("got %+v\nwant %+v", *got, tt.want)
			}
			if (got.Err() != nil) != (tt.want.ErrorCode != 0) {
				t.Errorf("Err() = %v", got.Err())
			}
		})
	}
}

const vrJoined = `{"videoroom":"joined","room":1234,"description":"Demo Room","id":5555,"private_id":424242,
	"publishers":[{"id":11,"display":"alice","audio_codec":"opus","video_codec":"vp8","talking":false,
		"streams":[
			{"type":"audio","mindex":0,"mid":"0","codec":"opus","fec":true,"talking":false},
			{"type":"video","mindex":1,"mid":"1","codec":"vp8","simulcast":true,"description":"camera"},
			{"type":"video","mindex":2,"mid":"2","disabled":true}]}],
	"attendees":[{"id":12,"display":"lurker"}]}`

func TestVideoRoomReplies(t *testing.T) {
	t.Run("joined", func(t *testing.T) {
		got, err := parseVideoRoomJoined(pluginEvent(PluginVideoRoom, vrJoined, nil))
		if err != nil {
			t.Fatal(err)
		}
		want := &VideoRoomJoined{Room: NumID(1234), Description: "Demo Room", ID: NumID(5555), PrivateID: 424242,
			Publishers: []VideoRoomPublisher{{ID: NumID(11), Display: "alice", AudioCodec: "opus", VideoCodec: "vp8", Talking: ptrOf(false),
				Streams: []VideoRoomPublishedStream{
					{Type: "audio", MIndex: 0, MID: "0", Codec: "opus", Talking: ptrOf(false)},
					{Type: "video", MIndex: 1, MID: "1", Codec: "vp8", Simulcast: true, Description: "camera"},
					{Type: "video", MIndex: 2, MID: "2", Disabled: true},
				}}},
			Attendees: []VideoRoomAttendee{{ID: NumID(12), Display: "lurker"}},
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("got %+v\nwant %+v", got, want)
		}
	})

	t.Run("joined string ids", func(t *testing.T) {
		got, err := parseVideoRoomJoined(pluginEvent(PluginVideoRoom, `{"videoroom":"joined","room":"lobby","id":"me","private_id":7,"publishers":[]}`, nil))
		if err != nil || got.Room != StrID("lobby") || got.ID != StrID("me") || got.PrivateID != 7 {
			t.Errorf("got %+v, %v", got, err)
		}
	})

	t.Run("joined as plain RTP participant", func(t *testing.T) {
		got, err := parseAudioBridgeJoined(pluginEvent(PluginAudioBridge, `{"audiobridge":"joined","room":5678,"id":42,"participants":[],
			"rtp":{"ip":"127.0.0.2","port":30012,"payload_type":111}}`, nil), false)
		if err != nil || got.RTP == nil || *got.RTP != (AudioBridgeRTP{IP: "127.0.0.2", Port: 30012, PayloadType: 111}) {
			t.Errorf("got %+v, %v", got, err)
		}
	})

	t.Run("join errors", func(t *testing.T) {
		_, err := parseVideoRoomJoined(pluginEvent(PluginVideoRoom, `{"videoroom":"event","error_code":426,"error":"No such room (1)"}`, nil))
		wantPluginError(t, err, PluginVideoRoom, VideoRoomErrNoSuchRoom)
		if _, err := parseVideoRoomJoined(pluginEvent(PluginVideoRoom, `{"videoroom":"attached","room":1}`, nil)); err == nil {
			t.Error("no error for attached")
		}
	})

	answers := []struct {
		name string
		msg  *Message
		ok   bool
		code int
	}{
		{"publish answer", pluginEvent(PluginVideoRoom, `{"videoroom":"event","room":1234,"configured":"ok","audio_codec":"opus","video_codec":"h264",
			"streams":[{"type":"audio","mindex":0,"mid":"0","codec":"opus"},{"type":"video","mindex":1,"mid":"1","codec":"h264","h264_profile":"42e01f"}]}`, pluginTestAnswer), true, 0},
		{"publish without answer", pluginEvent(PluginVideoRoom, `{"videoroom":"event","room":1234,"configured":"ok"}`, nil), false, 0},
		{"publish with offer", pluginEvent(PluginVideoRoom, `{"videoroom":"event","room":1234,"configured":"ok"}`, pluginTestOffer), false, 0},
		{"publish not configured", pluginEvent(PluginVideoRoom, `{"videoroom":"event","room":1234,"started":"ok"}`, pluginTestAnswer), false, 0},
		{"publish twice", pluginEvent(PluginVideoRoom, `{"videoroom":"event","error_code":434,"error":"Can't publish, already published"}`, nil), false, VideoRoomErrAlreadyPublished},
	}
	for _, tt := range answers {
		t.Run(tt.name, func(t *testing.T) {
			answer, err := parseVideoRoomAnswer(tt.msg, "publish")
			switch {
			case tt.code != 0:
				wantPluginError(t, err, PluginVideoRoom, tt.code)
			case tt.ok && (err != nil || answer != pluginTestAnswer):
				t.Errorf("got %v, %v", answer, err)
			case !tt.ok && err == nil:
				t.Errorf("no error, answer %v", answer)
			}
		})
	}

	oks := []struct {
		name string
		data string
		want []string
		ok   bool
	}{
		{"unpublish", `{"videoroom":"event","room":1234,"unpublished":"ok"}`, []string{"unpublished"}, true},
		{"publisher leave", `{"videoroom":"event","room":1234,"leaving":"ok"}`, []string{"leaving", "left"}, true},
		{"subscriber leave", `{"videoroom":"event","left":"ok"}`, []string{"leaving", "left"}, true},
		{"start", `{"videoroom":"event","room":1234,"started":"ok"}`, []string{"started"}, true},
		{"configure", `{"videoroom":"event","room":1234,"configured":"ok"}`, []string{"configured"}, true},
		{"someone else leaving", `{"videoroom":"event","room":1234,"leaving":11}`, []string{"leaving"}, false},
		{"not published", `{"videoroom":"event","error_code":435,"error":"Can't unpublish, not published"}`, []string{"unpublished"}, false},
	}
	for _, tt := range oks {
		t.Run(tt.name, func(t *testing.T) {
			_, err := parseVideoRoomOK(pluginEvent(PluginVideoRoom, tt.data, nil), "x", tt.want...)
			if (err == nil) != tt.ok {
				t.Errorf("error = %v, want ok %v", err, tt.ok)
			}
		})
	}

	t.Run("attached", func(t *testing.T) {
		offer, got, err := parseVideoRoomAttached(pluginEvent(PluginVideoRoom, `{"videoroom":"attached","room":1234,"streams":[
			{"type":"audio","active":true,"mindex":0,"mid":"0","ready":false,"send":true,"feed_id":11,"feed_display":"alice","feed_mid":"0","codec":"opus"},
			{"type":"video","active":true,"mindex":1,"mid":"1","ready":false,"send":true,"feed_id":11,"feed_display":"alice","feed_mid":"1",
			 "feed_description":"camera","codec":"vp8","simulcast":{"substream":0,"substream-target":2,"temporal-layer":0,"temporal-layer-target":2}},
			{"type":"data","active":true,"mindex":2,"mid":"2","ready":false,"send":true,"sources":1,"source_ids":[11]}]}`, pluginTestOffer))
		if err != nil {
			t.Fatal(err)
		}
		if offer != pluginTestOffer {
			t.Errorf("offer = %v", offer)
		}
		want := &VideoRoomAttached{Room: NumID(1234), Streams: []VideoRoomSubscribedStream{
			{Type: "audio", Active: true, MIndex: 0, MID: "0", Send: true, FeedID: NumID(11), FeedDisplay: "alice", FeedMID: "0", Codec: "opus"},
			{Type: "video", Active: true, MIndex: 1, MID: "1", Send: true, FeedID: NumID(11), FeedDisplay: "alice", FeedMID: "1", FeedDescription: "camera", Codec: "vp8"},
			{Type: "data", Active: true, MIndex: 2, MID: "2", Send: true},
		}}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("got %+v\nwant %+v", got, want)
		}
	})

	t.Run("attach errors", func(t *testing.T) {
		_, _, err := parseVideoRoomAttached(pluginEvent(PluginVideoRoom, `{"videoroom":"event","error_code":428,"error":"No such feed (99)"}`, nil))
		wantPluginError(t, err, PluginVideoRoom, VideoRoomErrNoSuchFeed)
		if _, _, err := parseVideoRoomAttached(pluginEvent(PluginVideoRoom, `{"videoroom":"attached","room":1,"streams":[]}`, nil)); err == nil {
			t.Error("no error without offer")
		}
	})

	updates := []struct {
		name      string
		msg       *Message
		offer     bool
		kind      string
		nstreams  int
		wantError bool
	}{
		{"updated with offer", pluginEvent(PluginVideoRoom, `{"videoroom":"updated","room":1234,"streams":[
			{"type":"audio","active":true,"mindex":0,"mid":"0","ready":true,"send":true,"feed_id":11,"feed_mid":"0","codec":"opus"},
			{"type":"video","active":false,"mindex":1,"mid":"1","ready":true,"send":true},
			{"type":"video","active":true,"mindex":2,"mid":"2","ready":false,"send":true,"feed_id":13,"feed_mid":"1","codec":"h264"}]}`, pluginTestOffer),
			true, "updated", 3, false},
		{"updated without changes", pluginEvent(PluginVideoRoom, `{"videoroom":"updated","room":1234}`, nil), false, "updated", 0, false},
		{"updating postponed", pluginEvent(PluginVideoRoom, `{"videoroom":"updating","room":1234}`, nil), false, "updating", 0, false},
		{"updated with answer", pluginEvent(PluginVideoRoom, `{"videoroom":"updated","room":1234}`, pluginTestAnswer), false, "", 0, true},
		{"unexpected", pluginEvent(PluginVideoRoom, `{"videoroom":"event","room":1234,"started":"ok"}`, nil), false, "", 0, true},
		{"error", pluginEvent(PluginVideoRoom, `{"videoroom":"event","error_code":429,"error":"Missing element (subscribe or unsubscribe)"}`, nil), false, "", 0, true},
	}
	for _, tt := range updates {
		t.Run(tt.name, func(t *testing.T) {
			offer, e, err := parseVideoRoomUpdated(tt.msg)
			if tt.wantError {
				if err == nil {
					t.Errorf("no error: %v %+v", offer, e)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if (offer != nil) != tt.offer || e.VideoRoom != tt.kind || len(e.Streams) != tt.nstreams {
				t.Errorf("offer %v, event %+v", offer, e)
			}
		})
	}

	t.Run("subscriber configured", func(t *testing.T) {
		restart := &JSEP{Type: "offer", SDP: "x", Restart: true}
		offer, err := parseVideoRoomSubscriberConfigured(pluginEvent(PluginVideoRoom, `{"videoroom":"event","room":1234,"configured":"ok"}`, restart), true)
		if err != nil || offer != restart {
			t.Errorf("restart: %v, %v", offer, err)
		}
		offer, err = parseVideoRoomSubscriberConfigured(pluginEvent(PluginVideoRoom, `{"videoroom":"event","room":1234,"configured":"ok"}`, nil), false)
		if err != nil || offer != nil {
			t.Errorf("no restart: %v, %v", offer, err)
		}
		if _, err := parseVideoRoomSubscriberConfigured(pluginEvent(PluginVideoRoom, `{"videoroom":"event","room":1234,"configured":"ok"}`, nil), true); err == nil {
			t.Error("restart without offer: no error")
		}
	})

	t.Run("exists", func(t *testing.T) {
		for data, want := range map[string]bool{
			`{"videoroom":"success","room":1234,"exists":true}`:  true,
			`{"videoroom":"success","room":1234,"exists":false}`: false,
		} {
			got, err := parseExists(pluginData(PluginVideoRoom, data))
			if err != nil || got != want {
				t.Errorf("%s: %v, %v", data, got, err)
			}
		}
		if _, err := parseExists(pluginData(PluginVideoRoom, `{"videoroom":"success"}`)); err == nil {
			t.Error("no error without exists")
		}
	})

	t.Run("participants", func(t *testing.T) {
		got, err := parseVideoRoomParticipants(pluginData(PluginVideoRoom, `{"videoroom":"participants","room":1234,"participants":[
			{"id":11,"display":"alice","publisher":true,"talking":true},{"id":12,"publisher":false},{"id":13,"dummy":true,"publisher":true}]}`))
		if err != nil {
			t.Fatal(err)
		}
		want := []VideoRoomParticipant{
			{ID: NumID(11), Display: "alice", Publisher: true, Talking: ptrOf(true)},
			{ID: NumID(12)},
			{ID: NumID(13), Dummy: true, Publisher: true},
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("got %+v\nwant %+v", got, want)
		}
		_, err = parseVideoRoomParticipants(pluginData(PluginVideoRoom, `{"videoroom":"event","error_code":426,"error":"No such room (9)"}`))
		wantPluginError(t, err, PluginVideoRoom, VideoRoomErrNoSuchRoom)
	})

	t.Run("list", func(t *testing.T) {
		got, err := parseVideoRoomList(pluginData(PluginVideoRoom, `{"videoroom":"success","list":[
			{"room":1234,"description":"Demo Room","pin_required":false,"is_private":false,"max_publishers":6,"bitrate":128000,
			 "fir_freq":10,"require_pvtid":false,"require_e2ee":false,"dummy_publisher":false,"notify_joining":false,
			 "audiocodec":"opus","videocodec":"vp8","record":false,"rec_dir":"","lock_record":false,"num_participants":2,
			 "audiolevel_ext":true,"audiolevel_event":false,"videoorient_ext":true,"playoutdelay_ext":true,"transport_wide_cc_ext":true},
			{"room":"multi","description":"Multi","pin_required":true,"is_private":false,"max_publishers":3,"bitrate":0,"fir_freq":0,
			 "require_pvtid":true,"audiocodec":"opus,pcmu","videocodec":"vp9,vp8,h264","record":true,"num_participants":0}]}`))
		if err != nil {
			t.Fatal(err)
		}
		want := []VideoRoomInfo{
			{Room: NumID(1234), Description: "Demo Room", MaxPublishers: 6, Bitrate: 128000, FIRFreq: 10,
				AudioCodec: "opus", VideoCodec: "vp8", NumParticipants: 2},
			{Room: StrID("multi"), Description: "Multi", PinRequired: true, MaxPublishers: 3, RequirePvtID: true,
				AudioCodec: "opus,pcmu", VideoCodec: "vp9,vp8,h264", Record: true},
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("got %+v\nwant %+v", got, want)
		}
		if c := got[0].VideoCodecs(); !reflect.DeepEqual(c, []string{"vp8"}) {
			t.Errorf("VideoCodecs = %q", c)
		}
		if c := got[1].VideoCodecs(); !reflect.DeepEqual(c, []string{"vp9", "vp8", "h264"}) {
			t.Errorf("VideoCodecs = %q", c)
		}
		if c := got[1].AudioCodecs(); !reflect.DeepEqual(c, []string{"opus", "pcmu"}) {
			t.Errorf("AudioCodecs = %q", c)
		}
		if c := (&VideoRoomInfo{}).AudioCodecs(); c != nil {
			t.Errorf("empty AudioCodecs = %q", c)
		}
	})
}

func TestVideoRoomEvent(t *testing.T) {
	tests := []struct {
		name string
		msg  *Message
		want VideoRoomEvent
		err  bool
	}{
		{"new publisher", pluginEvent(PluginVideoRoom, `{"videoroom":"event","room":1234,"publishers":[{"id":13,"display":"bob","video_codec":"h264",
			"streams":[{"type":"video","mindex":0,"mid":"0","codec":"h264","h264_profile":"42e01f"}]}]}`, nil),
			VideoRoomEvent{VideoRoom: "event", Room: NumID(1234), Publishers: []VideoRoomPublisher{{ID: NumID(13), Display: "bob", VideoCodec: "h264",
				Streams: []VideoRoomPublishedStream{{Type: "video", MID: "0", Codec: "h264", H264Profile: "42e01f"}}}}}, false},
		{"leaving other", pluginEvent(PluginVideoRoom, `{"videoroom":"event","room":1234,"leaving":13}`, nil),
			VideoRoomEvent{VideoRoom: "event", Room: NumID(1234), Leaving: NumID(13)}, false},
		{"leaving string id", pluginEvent(PluginVideoRoom, `{"videoroom":"event","room":"lobby","leaving":"bob"}`, nil),
			VideoRoomEvent{VideoRoom: "event", Room: StrID("lobby"), Leaving: StrID("bob")}, false},
		{"leaving own", pluginEvent(PluginVideoRoom, `{"videoroom":"event","room":1234,"leaving":"ok"}`, nil),
			VideoRoomEvent{VideoRoom: "event", Room: NumID(1234), OK: "leaving"}, false},
		{"unpublished other", pluginEvent(PluginVideoRoom, `{"videoroom":"event","room":1234,"unpublished":13}`, nil),
			VideoRoomEvent{VideoRoom: "event", Room: NumID(1234), Unpublished: NumID(13)}, false},
		{"unpublished own", pluginEvent(PluginVideoRoom, `{"videoroom":"event","room":1234,"unpublished":"ok"}`, nil),
			VideoRoomEvent{VideoRoom: "event", Room: NumID(1234), OK: "unpublished"}, false},
		{"kicked", pluginEvent(PluginVideoRoom, `{"videoroom":"event","room":1234,"kicked":14}`, nil),
			VideoRoomEvent{VideoRoom: "event", Room: NumID(1234), Kicked: NumID(14)}, false},
		{"joining", pluginEvent(PluginVideoRoom, `{"videoroom":"event","room":1234,"joining":{"id":15,"display":"carol"}}`, nil),
			VideoRoomEvent{VideoRoom: "event", Room: NumID(1234), Joining: &VideoRoomAttendee{ID: NumID(15), Display: "carol"}}, false},
		{"talking", pluginEvent(PluginVideoRoom, `{"videoroom":"talking","room":1234,"id":11,"mindex":0,"mid":"0","audio-level-dBov-avg":-42.5}`, nil),
			VideoRoomEvent{VideoRoom: "talking", Room: NumID(1234), ID: NumID(11), MID: "0", AudioLevel: -42.5}, false},
		{"updated offer on events", pluginEvent(PluginVideoRoom, `{"videoroom":"updated","room":1234,"streams":[
			{"type":"video","active":false,"mindex":0,"mid":"0","ready":true,"send":true}]}`, &JSEP{Type: "offer", SDP: "x"}),
			VideoRoomEvent{VideoRoom: "updated", Room: NumID(1234), JSEP: &JSEP{Type: "offer", SDP: "x"},
				Streams: []VideoRoomSubscribedStream{{Type: "video", MID: "0", Ready: true, Send: true}}}, false},
		{"switched", pluginEvent(PluginVideoRoom, `{"videoroom":"event","room":1234,"switched":"ok","changes":1,"streams":[
			{"type":"video","active":true,"mindex":0,"mid":"0","ready":true,"send":true,"feed_id":13,"feed_mid":"0","codec":"vp8"}]}`, nil),
			VideoRoomEvent{VideoRoom: "event", Room: NumID(1234), OK: "switched", Changes: 1,
				Streams: []VideoRoomSubscribedStream{{Type: "video", Active: true, MID: "0", Ready: true, Send: true, FeedID: NumID(13), FeedMID: "0", Codec: "vp8"}}}, false},
		{"publish configured", pluginEvent(PluginVideoRoom, `{"videoroom":"event","room":1234,"configured":"ok","audio_codec":"opus",
			"streams":[{"type":"audio","mindex":0,"mid":"0","codec":"opus","fec":true}]}`, pluginTestAnswer),
			VideoRoomEvent{VideoRoom: "event", Room: NumID(1234), OK: "configured", AudioCodec: "opus", JSEP: pluginTestAnswer,
				PublishedStreams: []VideoRoomPublishedStream{{Type: "audio", MID: "0", Codec: "opus"}}}, false},
		{"paused", pluginEvent(PluginVideoRoom, `{"videoroom":"event","room":1234,"paused":"ok"}`, nil),
			VideoRoomEvent{VideoRoom: "event", Room: NumID(1234), OK: "paused"}, false},
		{"destroyed", pluginEvent(PluginVideoRoom, `{"videoroom":"destroyed","room":1234}`, nil),
			VideoRoomEvent{VideoRoom: "destroyed", Room: NumID(1234)}, false},
		{"slow link", pluginEvent(PluginVideoRoom, `{"videoroom":"slow_link","current-bitrate":256000}`, nil),
			VideoRoomEvent{VideoRoom: "slow_link", CurrentBitrate: 256000}, false},
		{"error", pluginEvent(PluginVideoRoom, `{"videoroom":"event","error_code":433,"error":"Unauthorized (wrong pin)"}`, nil),
			VideoRoomEvent{VideoRoom: "event", ErrorCode: 433, Error: "Unauthorized (wrong pin)"}, false},
		{"bad leaving", pluginEvent(PluginVideoRoom, `{"videoroom":"event","leaving":true}`, nil), VideoRoomEvent{}, true},
		{"bad streams", pluginEvent(PluginVideoRoom, `{"videoroom":"updated","streams":{}}`, nil), VideoRoomEvent{}, true},
		{"other plugin", pluginEvent(PluginAudioBridge, `{"audiobridge":"joined"}`, nil), VideoRoomEvent{}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseVideoRoomEvent(tt.msg)
			if tt.err {
				if err == nil {
					t.Fatalf("no error, got %+v", got)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(*got, tt.want) {
				t.Errorf("got %+v\nwant %+v", *got, tt.want)
			}
			if tt.want.ErrorCode != 0 {
				wantPluginError(t, got.Err(), PluginVideoRoom, tt.want.ErrorCode)
			} else if got.Err() != nil {
				t.Errorf("Err() = %v", got.Err())
			}
		})
	}
}

func TestAudioBridgeReplies(t *testing.T) {
	t.Run("joined", func(t *testing.T) {
		got, err := parseAudioBridgeJoined(pluginEvent(PluginAudioBridge, `{"audiobridge":"joined","room":5678,"id":42,"participants":[
			{"id":7,"display":"alice","setup":true,"muted":false,"talking":true},{"id":8,"setup":false,"muted":true,"spatial_position":50}]}`, nil), false)
		if err != nil {
			t.Fatal(err)
		}
		want := &AudioBridgeJoined{Room: NumID(5678), ID: NumID(42), Participants: []AudioBridgeParticipant{
			{ID: NumID(7), Display: "alice", Setup: true, Talking: ptrOf(true)},
			{ID: NumID(8), Muted: true, SpatialPosition: ptrOf(50)},
		}}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("got %+v\nwant %+v", got, want)
		}
	})

	t.Run("joined with generated offer", func(t *testing.T) {
		got, err := parseAudioBridgeJoined(pluginEvent(PluginAudioBridge, `{"audiobridge":"joined","room":"conf","id":"me","participants":[]}`, pluginTestOffer), true)
		if err != nil || got.JSEP != pluginTestOffer || got.Room != StrID("conf") {
			t.Errorf("got %+v, %v", got, err)
		}
		if _, err := parseAudioBridgeJoined(pluginEvent(PluginAudioBridge, `{"audiobridge":"joined","room":1,"id":2}`, nil), true); err == nil {
			t.Error("no error without the asked-for offer")
		}
	})

	t.Run("join errors", func(t *testing.T) {
		_, err := parseAudioBridgeJoined(pluginEvent(PluginAudioBridge, `{"audiobridge":"event","error_code":485,"error":"No such room (1)"}`, nil), false)
		wantPluginError(t, err, PluginAudioBridge, AudioBridgeErrNoSuchRoom)
		if _, err := parseAudioBridgeJoined(pluginEvent(PluginAudioBridge, `{"audiobridge":"left","room":1,"id":2}`, nil), false); err == nil {
			t.Error("no error for left")
		}
	})

	configure := []struct {
		name string
		req  AudioBridgeConfigureRequest
		sent *JSEP
		got  *JSEP
		want *JSEP
		err  bool
	}{
		{"client offer", AudioBridgeConfigureRequest{}, pluginTestOffer, pluginTestAnswer, pluginTestAnswer, false},
		{"client offer, no answer", AudioBridgeConfigureRequest{}, pluginTestOffer, nil, nil, true},
		{"answer to janus offer", AudioBridgeConfigureRequest{}, pluginTestAnswer, nil, nil, false},
		{"mute only", AudioBridgeConfigureRequest{Muted: ptrOf(true)}, nil, nil, nil, false},
		{"generate offer", AudioBridgeConfigureRequest{GenerateOffer: true}, nil, pluginTestOffer, pluginTestOffer, false},
		{"update", AudioBridgeConfigureRequest{Update: true}, nil, pluginTestOffer, pluginTestOffer, false},
		{"generate offer, none", AudioBridgeConfigureRequest{GenerateOffer: true}, nil, nil, nil, true},
	}
	for _, tt := range configure {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseAudioBridgeConfigured(pluginEvent(PluginAudioBridge, `{"audiobridge":"event","result":"ok"}`, tt.got), tt.req, tt.sent)
			if (err != nil) != tt.err || got != tt.want {
				t.Errorf("got %v, %v; want %v, error %v", got, err, tt.want, tt.err)
			}
		})
	}

	t.Run("configure errors", func(t *testing.T) {
		_, err := parseAudioBridgeConfigured(pluginEvent(PluginAudioBridge, `{"audiobridge":"event","error_code":493,"error":"Received an offer on a plugin-offered session"}`, nil),
			AudioBridgeConfigureRequest{}, pluginTestOffer)
		wantPluginError(t, err, PluginAudioBridge, AudioBridgeErrInvalidSDP)
		if _, err := parseAudioBridgeConfigured(pluginEvent(PluginAudioBridge, `{"audiobridge":"joined","room":1}`, nil), AudioBridgeConfigureRequest{}, nil); err == nil {
			t.Error("no error without result ok")
		}
	})

	t.Run("list", func(t *testing.T) {
		want := []AudioBridgeInfo{{Room: NumID(5678), Description: "Demo", SamplingRate: 16000, NumParticipants: 3},
			{Room: StrID("conf"), PinRequired: true, SamplingRate: 48000, SpatialAudio: true, Record: true, Muted: true}}
		for _, key := range []string{"list", "rooms"} {
			got, err := parseAudioBridgeList(pluginData(PluginAudioBridge, `{"audiobridge":"success","`+key+`":[
				{"room":5678,"description":"Demo","sampling_rate":16000,"spatial_audio":false,"pin_required":false,"record":false,"muted":false,"num_participants":3},
				{"room":"conf","sampling_rate":48000,"spatial_audio":true,"pin_required":true,"record":true,"muted":true,"num_participants":0}]}`))
			if err != nil || !reflect.DeepEqual(got, want) {
				t.Errorf("%s: got %+v, %v", key, got, err)
			}
		}
	})

	t.Run("exists", func(t *testing.T) {
		got, err := parseExists(pluginData(PluginAudioBridge, `{"audiobridge":"success","room":5678,"exists":true}`))
		if err != nil || !got {
			t.Errorf("got %v, %v", got, err)
		}
	})
}

func TestAudioBridgeEvent(t *testing.T) {
	tests := []struct {
		name string
		msg  *Message
		want AudioBridgeEvent
		err  bool
	}{
		{"other joined", pluginEvent(PluginAudioBridge, `{"audiobridge":"joined","room":5678,"participants":[{"id":9,"display":"dan","setup":false,"muted":false}]}`, nil),
			AudioBridgeEvent{AudioBridge: "joined", Room: NumID(5678), Participants: []AudioBridgeParticipant{{ID: NumID(9), Display: "dan"}}}, false},
		{"participant update", pluginEvent(PluginAudioBridge, `{"audiobridge":"event","room":5678,"participants":[{"id":9,"setup":true,"muted":true}]}`, nil),
			AudioBridgeEvent{AudioBridge: "event", Room: NumID(5678), Participants: []AudioBridgeParticipant{{ID: NumID(9), Setup: true, Muted: true}}}, false},
		{"leaving", pluginEvent(PluginAudioBridge, `{"audiobridge":"event","room":5678,"leaving":9}`, nil),
			AudioBridgeEvent{AudioBridge: "event", Room: NumID(5678), Leaving: NumID(9)}, false},
		{"left", pluginEvent(PluginAudioBridge, `{"audiobridge":"left","room":5678,"id":42}`, nil),
			AudioBridgeEvent{AudioBridge: "left", Room: NumID(5678), ID: NumID(42)}, false},
		{"talking", pluginEvent(PluginAudioBridge, `{"audiobridge":"talking","room":5678,"id":7}`, nil),
			AudioBridgeEvent{AudioBridge: "talking", Room: NumID(5678), ID: NumID(7)}, false},
		{"configured with answer", pluginEvent(PluginAudioBridge, `{"audiobridge":"event","result":"ok"}`, pluginTestAnswer),
			AudioBridgeEvent{AudioBridge: "event", Result: "ok", JSEP: pluginTestAnswer}, false},
		{"error", pluginEvent(PluginAudioBridge, `{"audiobridge":"event","error_code":487,"error":"Can't configure (not in a room)"}`, nil),
			AudioBridgeEvent{AudioBridge: "event", ErrorCode: 487, Error: "Can't configure (not in a room)"}, false},
		{"other plugin", pluginEvent(PluginStreaming, `{"streaming":"event"}`, nil), AudioBridgeEvent{}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseAudioBridgeEvent(tt.msg)
			if tt.err {
				if err == nil {
					t.Fatalf("no error, got %+v", got)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(*got, tt.want) {
				t.Errorf("got %+v\nwant %+v", *got, tt.want)
			}
			if tt.want.ErrorCode != 0 {
				wantPluginError(t, got.Err(), PluginAudioBridge, tt.want.ErrorCode)
			}
		})
	}
}

func TestEchoTestReplies(t *testing.T) {
	tests := []struct {
		name string
		msg  *Message
		ok   bool
		code int
	}{
		{"ok with answer", pluginEvent(PluginEchoTest, `{"echotest":"event","result":"ok"}`, pluginTestAnswer), true, 0},
		{"ok", pluginEvent(PluginEchoTest, `{"echotest":"event","result":"ok"}`, nil), true, 0},
		{"done", pluginEvent(PluginEchoTest, `{"echotest":"event","result":"done"}`, nil), false, 0},
		{"error", pluginEvent(PluginEchoTest, `{"echotest":"event","error_code":414,"error":"Error parsing offer"}`, nil), false, 414},
		{"other plugin", pluginEvent(PluginStreaming, `{"streaming":"event"}`, nil), false, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e, err := parseEchoTestOK(tt.msg)
			switch {
			case tt.code != 0:
				wantPluginError(t, err, PluginEchoTest, tt.code)
			case tt.ok && (err != nil || e.JSEP != tt.msg.JSEP):
				t.Errorf("got %+v, %v", e, err)
			case !tt.ok && err == nil:
				t.Errorf("no error: %+v", e)
			}
		})
	}

	t.Run("done event", func(t *testing.T) {
		e, err := ParseEchoTestEvent(pluginEvent(PluginEchoTest, `{"echotest":"event","result":"done"}`, nil))
		if err != nil || e.Result != "done" || e.Err() != nil {
			t.Errorf("got %+v, %v", e, err)
		}
	})
}

func TestPluginDecodeReplyErrors(t *testing.T) {
	if _, err := parseStreamingList(nil); err == nil {
		t.Error("nil plugin data: no error")
	}
	if _, err := parseStreamingList(pluginData(PluginStreaming, `{"list":{}}`)); err == nil {
		t.Error("bad list: no error")
	}
	if _, err := parseVideoRoomList(pluginData(PluginVideoRoom, `{"list":[{"room":-3}]}`)); err == nil {
		t.Error("negative room id: no error")
	}
	if _, err := parseStreamingInfo(pluginData(PluginStreaming, `{"streaming":"info"}`)); err == nil {
		t.Error("info without info: no error")
	}
}
