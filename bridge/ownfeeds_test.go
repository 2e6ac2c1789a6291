package bridge

import (
	"sync"
	"testing"

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
