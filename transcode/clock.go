package transcode

import (
	"sync"
	"sync/atomic"
	"time"
)

// clock maps the child's output samples back to the input's timeline. The
// input side counts the samples written to the child and records an anchor
// (sample position, PTS) at the first packet and wherever the input's PTS
// departs from the sample count by more than anchorTolerance (loss, a pause,
// a new publisher); an output packet's first sample, less the encoder's
// delay and converted to the input's rate, is then placed after the last
// anchor at or before it.
type clock struct {
	mu      sync.Mutex
	inRate  int
	inPos   int64         // input samples written
	expect  time.Duration // PTS the input packet should have, from the last anchor
	anchors []anchor
	outPos  int64 // output samples produced
	writes  [64]written
	nwrites int

	latencyNS atomic.Int64 // moving average
}

type anchor struct {
	pos int64 // input sample position
	pts time.Duration
}

type written struct {
	end int64 // input sample position after the packet
	at  time.Time
}

// anchorTolerance is how far an input packet's PTS may be from where its
// samples put it before it starts a new anchor: more than RTMP's
// millisecond rounding, less than a lost 10 ms Opus frame.
const anchorTolerance = 5 * time.Millisecond

// reset starts over for a new child.
func (c *clock) reset() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.inRate, c.inPos, c.outPos, c.nwrites = 0, 0, 0, 0
	c.anchors = c.anchors[:0]
}

// in records an input packet of n samples at rate written at wall time at.
// It returns the packet's end sample position, or false when the rate
// differs from the earlier packets' (the child must start over).
func (c *clock) in(pts time.Duration, n, rate int, at time.Time) (int64, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.inRate == 0 {
		c.inRate = rate
	} else if rate != c.inRate {
		return 0, false
	}
	// Where the samples put this packet: from the last anchor, so that a
	// slow drift of the input's PTS against its sample count (a sender's
	// clock corrected bit by bit) re-anchors too once it adds up.
	if len(c.anchors) > 0 {
		a := c.anchors[len(c.anchors)-1]
		c.expect = a.pts + samplesDur(c.inPos-a.pos, rate)
	}
	if d := pts - c.expect; len(c.anchors) == 0 || d > anchorTolerance || d < -anchorTolerance {
		c.anchors = append(c.anchors, anchor{pos: c.inPos, pts: pts})
	}
	c.inPos += int64(n)
	c.writes[c.nwrites%len(c.writes)] = written{end: c.inPos, at: at}
	c.nwrites++
	return c.inPos, true
}

// out places an output packet of n samples at rate (the encoder delaying
// its output by delay samples) and updates the latency average with now.
func (c *clock) out(n, rate, delay int, now time.Time) (time.Duration, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	start := c.outPos - int64(delay)
	c.outPos += int64(n)
	if len(c.anchors) == 0 || c.inRate == 0 {
		return 0, false
	}
	pos := start * int64(c.inRate) / int64(rate) // on the input's sample scale
	for len(c.anchors) > 1 && c.anchors[1].pos <= pos {
		c.anchors = c.anchors[1:]
	}
	a := c.anchors[0]
	// In nanoseconds, not input samples: no rounding to the input's rate.
	pts := a.pts + samplesDur(start, rate) - samplesDur(a.pos, c.inRate)
	// Latency: from the write of the input holding this packet's last
	// sample to now.
	end := (c.outPos - int64(delay)) * int64(c.inRate) / int64(rate)
	for i := max(0, c.nwrites-len(c.writes)); i < c.nwrites; i++ {
		if w := c.writes[i%len(c.writes)]; w.end >= end {
			l := now.Sub(w.at)
			old := c.latencyNS.Load()
			if old == 0 {
				c.latencyNS.Store(int64(l))
			} else {
				c.latencyNS.Store(old + (int64(l)-old)/16)
			}
			break
		}
	}
	return pts, true
}

func (c *clock) latency() time.Duration { return time.Duration(c.latencyNS.Load()) }

// samplesDur is the duration of n samples at rate.
func samplesDur(n int64, rate int) time.Duration {
	return time.Duration(n) * time.Second / time.Duration(rate)
}
