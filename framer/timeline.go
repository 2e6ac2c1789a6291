package framer

import "time"

const (
	// resyncThreshold is the discrepancy between the current mapping and a
	// later sender report beyond which the report is ignored. When every
	// packet since the previous report agrees with it, the sender's stream
	// is late (a stall it may catch up, or a pause shorter than the gap
	// threshold: the timestamps, not the arrivals, place the frames, as for
	// the packets themselves). Otherwise the sender's NTP clock may have
	// stepped: srIgnoreLimit such reports in a row make the framer start
	// over with the next one.
	resyncThreshold = int64(500 * time.Millisecond)
	// srLagConfirm is how many far-off reports in a row, each agreeing
	// with every packet since the one before, tell that a track's stream
	// came late for good. When every track of the Clock says so, the
	// sender's source fell behind the time (starved, or paused with its
	// timestamps): every track moves later at once by the least of their
	// lags (Clock.lagged), a gap in the recording that keeps it as long as
	// the time it covers, A/V still aligned. One track late alone (its
	// encoder fell behind, not the clock) moves nothing: the timestamps
	// keep it aligned with the others. An early stream (a stall caught up)
	// moves nothing either.
	srLagConfirm = 3
	// Later sender reports steer the mapping. Janus stamps a report from
	// the time it forwarded the stream's newest packet, so a report errs
	// late by however late that packet was (a starved sender or Janus),
	// never early: the earliest report of the last srWindow to 2*srWindow
	// tells how late the mapping is (its lateness; the first report's own
	// error, mostly). What matters is that the tracks of a sender are
	// equally late: a track less late than another of its Clock moves
	// later by up to srFastSlew per report until they match. Moving only
	// later keeps video frames at least their interval apart (a step
	// shorter than the frame interval can give two frames one slot in a
	// frame-rate time base, which ffmpeg's null muxer calls non-monotonic).
	// When every report of the window is later than the mapping (the
	// sender's clock runs slow), the mapping follows by up to srSlew per
	// report; within srDeadband nothing moves.
	srWindow   = int64(10 * time.Second)
	srFastSlew = int64(4 * time.Millisecond)
	srSlew     = int64(time.Millisecond)
	srDeadband = int64(2 * time.Millisecond)
	// arrivalSlew is the most the arrival-based mapping (before any sender
	// report) moves per delay window to follow the sender's clock drift.
	arrivalSlew = int64(time.Millisecond)
	// delayWindow is the length of one bucket of the minimum-delay tracker.
	delayWindow = int64(5 * time.Second)
	// resumeJitter is how late the packet after Framer.Resume may come
	// before its lateness is taken for a pause.
	resumeJitter = int64(100 * time.Millisecond)
	// srIgnoreLimit is how many consecutive sender reports far from the
	// mapping (beyond resyncThreshold, not a confirmed pause or jump) make
	// the framer start over as if the next one were the first: the
	// sender's NTP clock stepped, or its stream is now late for good.
	srIgnoreLimit = 5
	// catchUpJump bounds what an audio track pays in small steps when it
	// starts on its arrival times and its first sender report (or another
	// track's) puts it later: srFastSlew per frame, so a frame is at most
	// that much longer than its interval and never shorter (25 frames,
	// 0.5 s, for 100 ms). A track owing more (a first packet that came very
	// late) moves at once: one gap rather than tracks out of step for
	// seconds. Video always pays at once: one frame shows longer. Steps on
	// many frames in a row, at the start of a file, make players and ffmpeg
	// guess a lower frame rate (seen: 23 fps for a 25 fps stream, and then
	// two frames in one frame slot: "non monotonically increasing dts").
	catchUpJump = int64(100 * time.Millisecond)
)

// timeline maps a track's extended RTP timestamps to local time, in
// nanoseconds since the Clock's epoch:
//
//	at(ts) = anchorNs + (ts - anchorTS) / rate
//
// Before the first sender report the anchor is the earliest arrival (the
// first packet's, moved earlier by a packet that arrives earlier than the
// mapping says until a frame is placed), and frames are placed with it at once (a provisional mapping: Janus
// forwards the tracks of a sender at nearly the same moment, so it is close
// to aligned). Afterwards the mapping comes from the sender reports,
// converted to local time with the Clock's shared offset. The first report
// of a track that placed frames already never moves it earlier (PTSs would
// go back): if the shared offset puts the track later, the mapping moves
// later (advance: audio in small steps, video at once); if it puts the
// track earlier, the track raises the shared offset to its own and the
// other tracks move later. Alongside, it tracks the delay of each new
// packet (arrival minus mapped time) and its minimum over the last 5-10 s
// (the baseline): a packet whose delay departs from the baseline by more
// than the gap threshold means that the sender paused without advancing its
// timestamps (time must not be compressed) or jumped its timestamps ahead
// (time must not be stretched), and the anchor moves so that the packet sits
// on the baseline again.
type timeline struct {
	rate  int64
	gap   int64 // gap threshold, ns
	video bool  // pays what it owes at once (see catchUpJump)

	anchored bool
	anchorTS int64
	anchorNs int64
	resume   bool // Framer.Resume: the next packet's lateness is a pause

	sr        bool   // mapping comes from sender reports
	offset    int64  // sender NTP -> local, when sr
	offsetGen uint64 // the Clock's generation of offset
	raised    int64  // the Clock's raise this mapping has taken (paid or owed)
	owed      int64  // how much later the mapping has yet to move (advance)
	placed    bool   // a frame of the stream was placed: never move earlier
	lastSRNs  int64  // the latest applied report, to realign with
	lastSRTS  int64
	srIgnored int   // consecutive reports that disagree with the packets
	srLag     int   // consecutive far-off reports that the packets confirm
	shifted   int64 // the Clock's shift applied to this mapping
	sinceSR   int64 // the least packet delay since the latest report
	// the earliest discrepancy of the later reports in the current and the
	// previous srWindow (sender time), relative to the current mapping
	srWinStart int64
	srMinCur   int64
	srMinPrev  int64

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
	t.curMin, t.prevMin, t.sinceSR = t.lastDelay, t.lastDelay, t.lastDelay
	t.srMinCur, t.srMinPrev, t.srWinStart = 0, 0, t.lastSRNs
}

// reset forgets the mapping (a new stream: SSRC change or sender restart);
// the next packet anchors it again.
func (t *timeline) reset() {
	t.anchored = false
	t.sr = false
	t.srIgnored, t.srLag = 0, 0
	t.pending = false
	t.owed, t.placed = 0, false
}

// move shifts the mapping by d nanoseconds, keeping the delay tracker
// consistent with it.
func (t *timeline) move(d int64) {
	t.anchorNs += d
	t.curMin -= d
	t.prevMin -= d
	t.lastDelay -= d
	t.sinceSR -= d
	t.srMinCur -= d
	t.srMinPrev -= d
}

// observe takes the extended timestamp and arrival time of a packet that is
// the newest of its stream so far. It reports whether the mapping jumped.
func (t *timeline) observe(ts, now int64) bool {
	if !t.anchored {
		t.anchored = true
		t.anchorTS, t.anchorNs = ts, now
		t.winStart, t.curMin, t.prevMin, t.lastDelay, t.sinceSR = now, 0, 0, 0, 0
		return false
	}
	jumped := false
	delay := now - t.at(ts)
	if delay < 0 && !t.placed && !t.sr {
		// No frame is out yet: the provisional mapping may still move
		// earlier, to the earliest arrival so far (the first packets may
		// have waited for the reader, and come in a burst).
		t.move(delay)
		delay = 0
	}
	resume := t.resume
	t.resume = false
	if excess := delay - t.baseline(); excess > t.gap || excess < -t.gap || resume && excess > resumeJitter {
		// A pause with frozen timestamps (excess > 0) or a timestamp jump
		// (excess < 0): put this packet on the baseline.
		t.anchorNs += excess
		delay -= excess
		t.srMinCur, t.srMinPrev, t.srWinStart = 0, 0, t.lastSRNs
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
	t.sinceSR = min(t.sinceSR, delay)
	return jumped
}

// follow realigns a track that maps through sender reports when another
// track changed the Clock's shared offset since (the sender's clock
// stepped): the track jumps onto the new offset at once. refTS is the newest packet's extended timestamp. It reports whether
// the mapping moved. Cheap when nothing changed: one atomic load.
func (t *timeline) follow(c *Clock, refTS int64) bool {
	if !t.sr {
		return false
	}
	if s := c.shift.Load(); s != t.shifted {
		// Another track found the sender late for good (srLagConfirm).
		t.move(s - t.shifted)
		t.shifted = s
		return true
	}
	if r := c.raise.Load(); r != t.raised {
		// A provisional track raised the shared offset: move as much
		// later (advance).
		t.owed += r - t.raised
		t.raised = r
	}
	if c.gen.Load() == t.offsetGen {
		return false
	}
	t.offset, t.offsetGen, t.raised = c.currentOffset()
	t.owed = 0
	ns := t.lastSRNs + t.offset + t.raised + t.shifted
	d := ns + ticksToNs(refTS-t.lastSRTS, t.rate) - t.at(refTS)
	t.reanchor(t.lastSRTS, ns, d)
	return true
}

// advance pays, before a frame is placed, what the mapping owes (see
// owed): srFastSlew per frame, all at once before the stream's first
// frame, for video, or beyond catchUpJump. It reports a jump beyond
// catchUpJump (a gap in the track).
func (t *timeline) advance() bool {
	if t.owed <= 0 {
		return false
	}
	step := t.owed
	jump := t.placed && step > catchUpJump
	if t.placed && !jump && !t.video {
		step = min(step, srFastSlew)
	}
	t.move(step)
	t.owed -= step
	// The reports are judged from where the mapping goes (applySR): that
	// does not change.
	t.srMinCur += step
	t.srMinPrev += step
	return jump
}

// place returns where a frame of extended timestamp ts goes, moving the
// mapping by what it owes first. It reports a jump as advance does.
func (t *timeline) place(ts int64) (int64, bool) {
	jump := t.advance()
	t.placed = true
	return t.at(ts), jump
}

// steer takes a later sender report's discrepancy d (its mapping minus
// ours at the newest packet; positive: the report puts it later) and moves
// the mapping later, by small steps, when the Clock's other tracks are
// later than this one or when every recent report is (see srWindow).
func (t *timeline) steer(c *Clock, id int, srNs, d int64) {
	if srNs-t.srWinStart >= srWindow {
		t.srMinPrev, t.srMinCur, t.srWinStart = t.srMinCur, d, srNs
	} else {
		t.srMinCur = min(t.srMinCur, d)
	}
	lo := min(t.srMinCur, t.srMinPrev)
	late := max(0, -lo)
	switch most := c.lateness(id, late, srNs); {
	case lo > srDeadband:
		t.move(min(lo, srSlew))
	case most-late > srDeadband:
		t.move(min(most-late, srFastSlew))
	}
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
// id tells the track apart from the Clock's others.
func (t *timeline) senderReport(c *Clock, id int, srNs, srTS, refTS int64) srResult {
	return t.applySR(c, id, srNs, srTS, refTS, false)
}

func (t *timeline) applySR(c *Clock, id int, srNs, srTS, refTS int64, force bool) srResult {
	srAt := func(ts int64) int64 { return srNs + ticksToNs(ts-srTS, t.rate) }
	// Judged from where the mapping stands once it has paid what it owes.
	cur := t.at(refTS) + t.owed
	base := t.baseline() - t.owed
	sinceSR := t.sinceSR - t.owed
	t.sinceSR = t.lastDelay // the next report's arrivals start here
	t.lastSRNs, t.lastSRTS = srNs, srTS
	if t.sr {
		if t.follow(c, refTS) {
			return srJumped
		}
	} else {
		// The offset that would put this track's minimum delay at zero
		// (its first packet may have come late); the Clock shares it so
		// that all tracks align on the sender's clock. A track that placed
		// frames on its arrival times keeps its own offset instead, or a
		// later shared one (it never moves earlier).
		provisional := t.placed && !force
		implied := cur + base - srAt(refTS) - c.shift.Load()
		if provisional {
			implied = cur - srAt(refTS) - c.shift.Load()
		}
		t.offset, t.offsetGen, t.raised = c.senderOffset(implied, force, provisional)
		t.sr = true
		t.srIgnored = 0
		t.shifted = c.shift.Load() // the other tracks' mappings have it
		t.srMinCur, t.srMinPrev, t.srWinStart = 0, 0, srNs
		ns := srNs + t.offset + t.raised + t.shifted
		d := srAt(refTS) - srNs + ns - cur
		if provisional && d >= 0 {
			t.owed += d // paid by advance, frame by frame
			return srApplied
		}
		d += t.owed // from the current mapping
		t.owed = 0
		t.anchorTS, t.anchorNs = srTS, ns
		t.curMin -= d
		t.prevMin -= d
		t.lastDelay -= d
		t.sinceSR -= d
		return srApplied
	}
	d := srAt(refTS) + t.offset + t.raised + t.shifted - cur
	switch {
	case abs64(d) <= resyncThreshold:
		t.srIgnored, t.srLag = 0, 0
		c.lagged(id, 0, srNs)
		t.steer(c, id, srNs, d)
		return srApplied
	case abs64(sinceSR-d) <= resyncThreshold:
		// The packets since the previous report are as late (or early)
		// as this report says: the stream lags, the clocks agree.
		t.srIgnored = 0
		if d < 0 {
			t.srLag = 0
			c.lagged(id, 0, srNs)
			return srIgnored
		}
		if t.srLag++; t.srLag < srLagConfirm {
			return srIgnored
		}
		if c.lagged(id, d, srNs) > 0 && t.follow(c, refTS) {
			t.srLag = 0
			return srJumped
		}
		return srIgnored
	}
	t.srLag = 0
	c.lagged(id, 0, srNs)
	t.srIgnored++
	if t.srIgnored >= srIgnoreLimit {
		// Consistently elsewhere: the sender's NTP clock stepped. Start over
		// with this report as the first one.
		t.sr = false
		t.applySR(c, id, srNs, srTS, refTS, true)
		return srJumped
	}
	return srIgnored
}
