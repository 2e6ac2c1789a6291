package framer

import (
	"sync"
	"sync/atomic"
	"time"
)

// ntpUnixOffset is the number of seconds from the NTP era (1900-01-01) to
// the Unix epoch (1970-01-01).
const ntpUnixOffset = 2208988800

// clockStepThreshold is how far a track's first sender report may put the
// sender's NTP clock from the one the Clock already knows before the Clock
// believes the sender's clock changed (a sender restart on another host)
// rather than the usual spread of arrival delays between tracks.
const clockStepThreshold = 2 * time.Second

// Clock is the timeline shared by all Framers of one bridge: it fixes the
// origin of Frame.PTS (the epoch) and the offset between the sender's NTP
// clock (the one its RTCP sender reports speak in) and the local clock.
// Because every track of the bridge maps its sender reports through the
// same offset, tracks whose reports share an NTP clock stay aligned.
//
// A Clock is safe for concurrent use by the Framers of its bridge.
type Clock struct {
	epoch     time.Time // as given: keeps the monotonic reading for Sub
	epochWall time.Time // wall-clock reading only, for Frame.Wall
	epochUnix int64     // epoch in Unix nanoseconds

	mu         sync.Mutex
	offset     int64 // local time (ns since epoch) minus sender NTP time (ns since epoch)
	haveOffset bool
	// gen counts the changes of offset; read without the lock on every
	// packet, so that a track notices at once when it must realign.
	gen atomic.Uint64
	// shift is how much later, in all, the tracks' mappings moved because
	// the sender came late for good (see srLagConfirm); read on every
	// packet like gen.
	shift atomic.Int64
	// raise is how much later, in all, the shared offset moved for tracks
	// that started on their arrival times and were later than it at their
	// first sender report (see senderOffset); read on every packet like
	// gen. The other tracks move later to match (timeline.advance).
	raise atomic.Int64
	// late is each track's lateness (see srWindow), and lag its confirmed
	// lag (see srLagConfirm), by track index, with the sender time of the
	// report that measured it.
	late map[int]trackValue
	lag  map[int]trackValue
}

// trackValue is a value of one track (a lateness, a lag) and the sender
// time it was measured at.
type trackValue struct{ v, at int64 }

// record stores v, measured at sender time at, for track id in *m (made
// on first use), and calls f with the value of every track measured
// within 2*srWindow of at. c.mu must be held.
func record(m *map[int]trackValue, id int, v, at int64, f func(int64)) {
	if *m == nil {
		*m = map[int]trackValue{}
	}
	(*m)[id] = trackValue{v: v, at: at}
	for _, tv := range *m {
		if at-tv.at <= 2*srWindow {
			f(tv.v)
		}
	}
}

// NewClock returns the Clock of one bridge. Frame.PTS of every Framer that
// uses it counts from epoch; a bridge typically passes its start time.
func NewClock(epoch time.Time) *Clock {
	return &Clock{
		epoch:     epoch,
		epochWall: epoch.Round(0),
		epochUnix: epoch.UnixNano(),
	}
}

// Epoch returns the time that Frame.PTS counts from.
func (c *Clock) Epoch() time.Time { return c.epoch }

// since returns t in nanoseconds since the epoch (monotonic when both carry
// a monotonic reading).
func (c *Clock) since(t time.Time) int64 { return int64(t.Sub(c.epoch)) }

// local returns the time ns nanoseconds after the epoch, with the epoch's
// monotonic reading.
func (c *Clock) local(ns int64) time.Time { return c.epoch.Add(time.Duration(ns)) }

// wall returns the wall-clock time ns nanoseconds after the epoch.
func (c *Clock) wall(ns int64) time.Time { return c.epochWall.Add(time.Duration(ns)) }

// ntpSince converts a 64-bit NTP timestamp (seconds since 1900 in the high
// 32 bits, binary fraction in the low 32) to nanoseconds since the epoch on
// the sender's clock.
func (c *Clock) ntpSince(ntp uint64) int64 {
	sec := int64(ntp>>32) - ntpUnixOffset
	frac := int64((ntp & 0xffffffff) * 1e9 >> 32)
	return sec*1e9 + frac - c.epochUnix
}

// senderOffset returns the offset from sender NTP time to local time that a
// track starting to use sender reports must use, its generation, and the
// Clock's raise (the track's mapping is sender time + offset + raise +
// shift). implied is the offset that track measured itself (from its
// packets' arrival times). The first track sets the shared offset; later
// tracks reuse it so that they stay aligned with the first, unless theirs
// differs by more than clockStepThreshold (the sender's NTP clock changed),
// which replaces it and makes the other tracks follow at once.
// With force (a track whose sender reports keep disagreeing with its
// packets), any difference beyond resyncThreshold replaces it.
// A provisional track (its frames are out already, placed on its arrival
// times) cannot move earlier: when its implied offset is later than the
// shared one, it raises the shared one to it instead, and the other tracks
// move later to match (through raise).
func (c *Clock) senderOffset(implied int64, force, provisional bool) (int64, uint64, int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	limit := int64(clockStepThreshold)
	if force {
		limit = resyncThreshold
	}
	raise := c.raise.Load()
	switch total := c.offset + raise; {
	case !c.haveOffset || abs64(implied-total) > limit:
		c.offset, c.haveOffset = implied-raise, true
		c.gen.Add(1)
	case provisional && implied > total:
		raise = c.raise.Add(implied - total)
	}
	return c.offset, c.gen.Load(), raise
}

// lateness records how late the mapping of track id is (late, measured
// from the report of sender time at) and returns the most any track of the
// Clock is late, over the tracks measured within 2*srWindow of at.
func (c *Clock) lateness(id int, late, at int64) int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	most := late
	record(&c.late, id, late, at, func(v int64) { most = max(most, v) })
	return most
}

// lagged records the confirmed lag of track id (0: none), measured from
// the report of sender time at. When every track measured within
// 2*srWindow of at has a lag, it moves every track's mapping later by the
// least of them (each track applies it at its next packet, through
// shift), forgets the lags and returns the move; else it returns 0.
func (c *Clock) lagged(id int, lag, at int64) int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	least := lag
	record(&c.lag, id, lag, at, func(v int64) { least = min(least, v) })
	if least <= 0 {
		return 0
	}
	c.shift.Add(least)
	clear(c.lag)
	return least
}

// currentOffset returns the shared offset, its generation and the raise.
func (c *Clock) currentOffset() (int64, uint64, int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.offset, c.gen.Load(), c.raise.Load()
}

func abs64(v int64) int64 {
	if v < 0 {
		return -v
	}
	return v
}
