package framer

import "time"

const (
	// resyncThreshold is the discrepancy between the current mapping and a
	// later sender report beyond which the mapping is re-anchored (when the
	// report agrees with the packets' arrival times) instead of slewed.
	resyncThreshold = int64(500 * time.Millisecond)
	// srSlew is the most a later sender report moves the mapping: following
	// drift without visible jumps. The reports' discrepancies are smoothed
	// first (srSmooth: weight 1/8) and ignored within srDeadband, so that
	// noisy reports (Janus stamps them from its forwarding times) do not
	// make the mapping wander.
	srSlew     = int64(time.Millisecond)
	srSmooth   = 8
	srDeadband = int64(2 * time.Millisecond)
	// arrivalSlew is the most the arrival-based mapping (before any sender
	// report) moves per delay window to follow the sender's clock drift.
	arrivalSlew = int64(time.Millisecond)
	// delayWindow is the length of one bucket of the minimum-delay tracker.
	delayWindow = int64(5 * time.Second)
	// srIgnoreLimit is how many consecutive sender reports that agree
	// neither with the mapping nor with the arrival times make the framer
	// start over as if the next one were the first (the sender's NTP clock
	// stepped).
	srIgnoreLimit = 3
)

// timeline maps a track's extended RTP timestamps to local time, in
// nanoseconds since the Clock's epoch:
//
//	at(ts) = anchorNs + (ts - anchorTS) / rate
//
// Before the first sender report the anchor is the first packet's arrival;
// afterwards it comes from the sender reports, converted to local time with
// the Clock's shared offset. Alongside, it tracks the delay of each new
// packet (arrival minus mapped time) and its minimum over the last 5-10 s
// (the baseline): a packet whose delay departs from the baseline by more
// than the gap threshold means that the sender paused without advancing its
// timestamps (time must not be compressed) or jumped its timestamps ahead
// (time must not be stretched), and the anchor moves so that the packet sits
// on the baseline again.
type timeline struct {
	rate int64
	gap  int64 // gap threshold, ns

	anchored bool
	anchorTS int64
	anchorNs int64

	sr        bool   // mapping comes from sender reports
	offset    int64  // sender NTP -> local, when sr
	offsetGen uint64 // the Clock's generation of offset
	lastSRNs  int64  // the latest applied report, to realign with
	lastSRTS  int64
	srIgnored int
	srErr     int64 // smoothed discrepancy of the later reports

	pending    bool // a sender report came before the first packet
	pendingNTP uint64
	pendingRTP uint32

	// minimum delay (arrival - at(ts)) in the current and previous window
	winStart  int64
	curMin    int64
	prevMin   int64
	lastDelay int64 // of the newest packet
}

// ticksToNs converts a timestamp difference to nanoseconds without
// overflowing for long sessions.
func ticksToNs(d, rate int64) int64 {
	return d/rate*1e9 + d%rate*1e9/rate
}

func (t *timeline) at(ts int64) int64 { return t.anchorNs + ticksToNs(ts-t.anchorTS, t.rate) }

func (t *timeline) baseline() int64 { return min(t.curMin, t.prevMin) }

// reanchor sets a new mapping and restarts the delay tracker from the
// newest packet's delay under it.
func (t *timeline) reanchor(ts, ns, d int64) {
	t.anchorTS, t.anchorNs = ts, ns
	t.lastDelay -= d
	t.curMin, t.prevMin = t.lastDelay, t.lastDelay
	t.srErr = 0
}

// reset forgets the mapping (a new stream: SSRC change or sender restart);
// the next packet anchors it again.
func (t *timeline) reset() {
	t.anchored = false
	t.sr = false
	t.srIgnored = 0
	t.srErr = 0
	t.pending = false
}

// move shifts the mapping by d nanoseconds, keeping the delay tracker
// consistent with it.
func (t *timeline) move(d int64) {
	t.anchorNs += d
	t.curMin -= d
	t.prevMin -= d
	t.lastDelay -= d
}

// observe takes the extended timestamp and arrival time of a packet that is
// the newest of its stream so far. It reports whether the mapping jumped.
func (t *timeline) observe(ts, now int64) bool {
	if !t.anchored {
		t.anchored = true
		t.anchorTS, t.anchorNs = ts, now
		t.winStart, t.curMin, t.prevMin, t.lastDelay = now, 0, 0, 0
		return false
	}
	jumped := false
	delay := now - t.at(ts)
	if excess := delay - t.baseline(); excess > t.gap || excess < -t.gap {
		// A pause with frozen timestamps (excess > 0) or a timestamp jump
		// (excess < 0): put this packet on the baseline.
		t.anchorNs += excess
		delay -= excess
		t.srErr = 0
		jumped = true
	}
	t.lastDelay = delay
	if now-t.winStart >= delayWindow {
		t.prevMin, t.curMin, t.winStart = t.curMin, delay, now
		if !t.sr {
			// Follow the drift between the sender's media clock and ours,
			// a millisecond per window at most.
			t.move(max(-arrivalSlew, min(arrivalSlew, t.prevMin)))
		}
	} else if delay < t.curMin {
		t.curMin = delay
	}
	return jumped
}

// follow realigns a track that maps through sender reports when another
// track changed the Clock's shared offset since (the sender's clock
// stepped): the track jumps onto the new offset at once. refTS is the newest packet's extended timestamp. It reports whether
// the mapping moved. Cheap when nothing changed: one atomic load.
func (t *timeline) follow(c *Clock, refTS int64) bool {
	if !t.sr || c.gen.Load() == t.offsetGen {
		return false
	}
	off, gen := c.currentOffset()
	t.offset, t.offsetGen = off, gen
	d := t.lastSRNs + ticksToNs(refTS-t.lastSRTS, t.rate) + t.offset - t.at(refTS)
	t.reanchor(t.lastSRTS, t.lastSRNs+t.offset, d)
	return true
}

// srResult says what a sender report did to the mapping.
type srResult int

const (
	srApplied srResult = iota // first report, or a small correction
	srJumped                  // re-anchored on a big discrepancy
	srIgnored                 // disagrees with both mapping and arrivals
)

// senderReport applies an RTCP sender report: srNs is its NTP time on the
// sender's clock (ns since the epoch), srTS its RTP timestamp extended next
// to refTS, the newest packet's extended timestamp.
func (t *timeline) senderReport(c *Clock, srNs, srTS, refTS int64) srResult {
	return t.applySR(c, srNs, srTS, refTS, false)
}

func (t *timeline) applySR(c *Clock, srNs, srTS, refTS int64, force bool) srResult {
	srAt := func(ts int64) int64 { return srNs + ticksToNs(ts-srTS, t.rate) }
	cur := t.at(refTS)
	base := t.baseline()
	t.lastSRNs, t.lastSRTS = srNs, srTS
	if t.sr {
		if t.follow(c, refTS) {
			return srJumped
		}
	} else {
		// The offset that would put this track's minimum delay at zero
		// (its first packet may have come late); the Clock shares it so
		// that all tracks align on the sender's clock. The frames held
		// for this report (Options.SyncHold) are placed with it.
		implied := cur + base - srAt(refTS)
		t.offset, t.offsetGen = c.senderOffset(implied, force)
		t.sr = true
		t.srIgnored = 0
		t.srErr = 0
		d := srAt(refTS) + t.offset - cur
		t.anchorTS, t.anchorNs = srTS, srNs+t.offset
		t.curMin -= d
		t.prevMin -= d
		t.lastDelay -= d
		return srApplied
	}
	d := srAt(refTS) + t.offset - cur
	switch {
	case abs64(d) <= resyncThreshold:
		t.srIgnored = 0
		t.srErr += (d - t.srErr) / srSmooth
		if abs64(t.srErr) > srDeadband {
			slew := max(-srSlew, min(srSlew, t.srErr))
			t.move(slew)
			t.srErr -= slew
		}
		return srApplied
	case abs64(t.lastDelay-d) <= resyncThreshold:
		// The report agrees with the newest packet's arrival: our mapping
		// is off (a pause the gap threshold let through, a restart); take
		// the report's.
		t.srIgnored = 0
		t.reanchor(srTS, srNs+t.offset, d)
		return srJumped
	}
	t.srIgnored++
	if t.srIgnored >= srIgnoreLimit {
		// Consistently elsewhere: the sender's NTP clock stepped. Start over
		// with this report as the first one.
		t.sr = false
		t.applySR(c, srNs, srTS, refTS, true)
		return srJumped
	}
	return srIgnored
}
