package control

import (
	"context"
	"strconv"
	"sync"
	"time"

	"github.com/janusbridge/janusbridge/bridge"
)

// history samples every track's byte counter periodically and keeps the
// bitrates of the last samples, for the API's bitrate_bps and the status
// page's chart. It reads the bridges' snapshots, so it costs nothing per
// packet.
type history struct {
	every time.Duration
	size  int

	mu     sync.Mutex
	tracks map[string]*series
	round  uint64 // sampling rounds so far
}

// series is one track's samples.
type series struct {
	bytes  uint64
	at     time.Time
	seen   uint64   // the last round that saw the track
	rates  []uint64 // ring of bit/s values
	next   int      // where the next value goes
	filled bool     // the ring has wrapped
}

func newHistory(every time.Duration, size int) *history {
	return &history{every: every, size: size, tracks: map[string]*series{}}
}

// trackKey names a track across the daemon: its bridge, feed and index
// (stable across renegotiations).
func trackKey(bridgeName, feed string, index int) string {
	return bridgeName + "\x00" + feed + "\x00" + strconv.Itoa(index)
}

// run samples until ctx ends.
func (h *history) run(ctx context.Context, d *bridge.Daemon) {
	t := time.NewTicker(h.every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			h.sample(d.Bridges(), now)
		}
	}
}

// observation is one track's byte counter at a sampling round.
type observation struct {
	key   string
	bytes uint64
}

// sample records one round of the bridges' tracks.
func (h *history) sample(bridges []*bridge.Bridge, now time.Time) {
	var seen []observation
	for _, b := range bridges {
		name := b.Name()
		for _, t := range b.Stats().Tracks {
			seen = append(seen, observation{trackKey(name, t.Feed, t.Index), t.Bytes})
		}
	}
	h.record(seen, now)
}

// record adds a round: each track's bitrate since the previous round.
// Tracks not seen for a whole ring's length are forgotten.
func (h *history) record(seen []observation, now time.Time) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.round++
	for _, o := range seen {
		s := h.tracks[o.key]
		if s == nil {
			s = &series{rates: make([]uint64, h.size)}
			h.tracks[o.key] = s
		} else if o.bytes >= s.bytes && now.After(s.at) {
			s.rates[s.next] = uint64(float64(o.bytes-s.bytes) * 8 / now.Sub(s.at).Seconds())
			s.next = (s.next + 1) % h.size
			s.filled = s.filled || s.next == 0
		}
		s.bytes, s.at, s.seen = o.bytes, now, h.round
	}
	for k, s := range h.tracks {
		if h.round-s.seen > uint64(h.size) {
			delete(h.tracks, k)
		}
	}
}

// get returns the track's latest bitrate and, with all, its samples oldest
// first.
func (h *history) get(key string, all bool) (last uint64, samples []uint64) {
	h.mu.Lock()
	defer h.mu.Unlock()
	s := h.tracks[key]
	if s == nil || !s.filled && s.next == 0 {
		return 0, nil
	}
	last = s.rates[(s.next+h.size-1)%h.size]
	if !all {
		return last, nil
	}
	if s.filled {
		samples = append(samples, s.rates[s.next:]...)
	}
	return last, append(samples, s.rates[:s.next]...)
}
