package bridge

import (
	"sync"

	"github.com/janusbridge/janusbridge/janus"
)

// OwnFeeds is the registry of the VideoRoom publishers that this daemon's
// own send bridges publish, by room and feed id. A recv bridge following a
// whole room (feeds = "all") skips them unless include_own = true, so that
// a daemon that publishes into a room and records it does not record its
// own feeds back.
//
// A send bridge adds its feed id as soon as Janus has told it (the
// "joined" reply of its publisher join), before it publishes: a following
// bridge subscribes to publishers it sees publishing and does not drop one
// registered later. It removes the id when it leaves or its handle goes
// (a re-join gets a new id). The zero value is ready to use, a nil *OwnFeeds is an empty
// registry, and it is safe for concurrent use.
type OwnFeeds struct {
	mu    sync.Mutex
	feeds map[ownFeed]int // a count: a publisher re-joining may be added before it is removed
}

type ownFeed struct{ room, feed janus.ID }

// Add registers feed in room as one of this daemon's own publishers.
func (o *OwnFeeds) Add(room, feed janus.ID) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.feeds == nil {
		o.feeds = map[ownFeed]int{}
	}
	o.feeds[ownFeed{room, feed}]++
}

// Remove undoes one Add of feed in room.
func (o *OwnFeeds) Remove(room, feed janus.ID) {
	o.mu.Lock()
	defer o.mu.Unlock()
	k := ownFeed{room, feed}
	if o.feeds[k] <= 1 {
		delete(o.feeds, k)
		return
	}
	o.feeds[k]--
}

// Has reports whether feed in room is one of this daemon's own publishers.
func (o *OwnFeeds) Has(room, feed janus.ID) bool {
	if o == nil {
		return false
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.feeds[ownFeed{room, feed}] > 0
}
