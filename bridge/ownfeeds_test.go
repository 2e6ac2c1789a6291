package bridge

import (
	"encoding/json"
	"slices"
	"sync"
	"testing"

	"github.com/janusbridge/janusbridge/config"
	"github.com/janusbridge/janusbridge/janus"
)

func TestOwnFeeds(t *testing.T) {
	var nilFeeds *OwnFeeds
	if nilFeeds.Has(janus.NumID(1), janus.NumID(2)) {
		t.Error("a nil registry has a feed")
	}
	var o OwnFeeds
	room, other := janus.NumID(1234), janus.StrID("1234")
	o.Add(room, janus.NumID(7))
	o.Add(room, janus.NumID(7)) // re-joined before the old join was removed
	o.Add(room, janus.NumID(8))
	for _, tt := range []struct {
		room, feed janus.ID
		want       bool
	}{
		{room, janus.NumID(7), true},
		{room, janus.NumID(8), true},
		{room, janus.NumID(9), false},
		{other, janus.NumID(7), false}, // a string room id is another room
		{janus.NumID(1), janus.NumID(7), false},
	} {
		if got := o.Has(tt.room, tt.feed); got != tt.want {
			t.Errorf("Has(%v, %v) = %v, want %v", tt.room, tt.feed, got, tt.want)
		}
	}
	o.Remove(room, janus.NumID(7))
	if !o.Has(room, janus.NumID(7)) {
		t.Error("feed 7 gone after one of its two Adds was removed")
	}
	o.Remove(room, janus.NumID(7))
	o.Remove(room, janus.NumID(9)) // never added: no effect
	if o.Has(room, janus.NumID(7)) || !o.Has(room, janus.NumID(8)) {
		t.Error("Remove removed the wrong feed")
	}
}

func TestOwnFeedsConcurrent(t *testing.T) {
	var o OwnFeeds
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			id := janus.NumID(uint64(i))
			for range 100 {
				o.Add(janus.NumID(1), id)
				o.Has(janus.NumID(1), janus.NumID(0))
				o.Remove(janus.NumID(1), id)
			}
		}()
	}
	wg.Wait()
	for i := range 8 {
		if o.Has(janus.NumID(1), janus.NumID(uint64(i))) {
			t.Errorf("feed %d left behind", i)
		}
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
