package bridge

import (
	"encoding/json"
	"slices"
	"testing"

	"github.com/janusbridge/janusbridge/config"
	"github.com/janusbridge/janusbridge/janus"
)

// TestAudioBridgeJoin checks the join of an AudioBridge recv bridge: a
// muted listener, with the room's pin, Janus offering.
func TestAudioBridgeJoin(t *testing.T) {
	a := audioBridgePlugin{cfg: &config.Bridge{Name: "mix", Room: config.ID{Num: 5678}, Pin: "1234"}}
	want := janus.AudioBridgeJoinRequest{Display: "janusbridge mix", Pin: "1234", Muted: true, GenerateOffer: true}
	if got := a.join(); got != want {
		t.Errorf("join %+v, want %+v", got, want)
	}
}

// TestVideoRoomPick checks which publishers of a room a VideoRoom recv
// bridge subscribes to: listed feeds whoever publishes them, with "all"
// every publisher but the daemon's own unless include_own.
func TestVideoRoomPick(t *testing.T) {
	room := janus.NumID(1234)
	parts := []janus.VideoRoomParticipant{
		{ID: janus.NumID(1), Publisher: true},
		{ID: janus.NumID(2), Publisher: true}, // ours
		{ID: janus.NumID(3), Publisher: false},
		{ID: janus.NumID(4), Publisher: true},
	}
	own := &OwnFeeds{}
	own.Add(room, janus.NumID(2))
	own.Add(janus.NumID(99), janus.NumID(4)) // ours, but in another room
	for _, tt := range []struct {
		name string
		cfg  config.Bridge
		own  *OwnFeeds
		want []uint64
	}{
		{"all", config.Bridge{Feeds: config.Feeds{All: true}}, own, []uint64{1, 4}},
		{"all include_own", config.Bridge{Feeds: config.Feeds{All: true}, IncludeOwn: true}, own, []uint64{1, 2, 4}},
		{"all, no registry", config.Bridge{Feeds: config.Feeds{All: true}}, nil, []uint64{1, 2, 4}},
		{"list", config.Bridge{Feeds: config.Feeds{IDs: []config.ID{{Num: 2}, {Num: 3}, {Num: 4}}}}, own, []uint64{2, 4}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			tt.cfg.Room = config.ID{Num: 1234}
			var got []uint64
			for _, id := range newVideoRoomPlugin(&tt.cfg, tt.own).pick(parts) {
				got = append(got, id.Uint64())
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("picked %v, want %v", got, tt.want)
			}
		})
	}
}

// TestSubstreamRequests checks that substream goes into the VideoRoom
// subscription's streams and into a Streaming configure, and nowhere
// without it.
func TestSubstreamRequests(t *testing.T) {
	two := 2
	vr := newVideoRoomPlugin(&config.Bridge{Room: config.ID{Num: 1}, Feeds: config.Feeds{All: true}, Substream: &two}, nil)
	if got := jsonOf(t, vr.stream(janus.NumID(5))); got != `{"Feed":5,"MID":"","SubMID":"","Substream":2}` {
		t.Errorf("videoroom stream %s", got)
	}
	vr = newVideoRoomPlugin(&config.Bridge{Room: config.ID{Num: 1}, Feeds: config.Feeds{All: true}}, nil)
	if s := vr.stream(janus.NumID(5)); s.Substream != nil {
		t.Errorf("videoroom stream without substream has one: %d", *s.Substream)
	}
	zero := 0
	st := streamingPlugin{cfg: &config.Bridge{Mountpoint: config.ID{Num: 1}, Substream: &zero}}
	if c := st.configure(); c == nil || c.Substream == nil || *c.Substream != 0 || c.MID != "" || c.Temporal != nil || c.Send != nil {
		t.Errorf("streaming configure %+v, want substream 0 on every stream", c)
	}
	st = streamingPlugin{cfg: &config.Bridge{Mountpoint: config.ID{Num: 1}}}
	if c := st.configure(); c != nil {
		t.Errorf("streaming configure %+v without substream", c)
	}
}

func jsonOf(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
