package framer

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/pion/rtp"

	"github.com/janusbridge/janusbridge/media"
)

// Defaults of Options.
const (
	// DefaultMaxDelay is how long a missing packet is waited for.
	DefaultMaxDelay = 200 * time.Millisecond
	// DefaultRingSize is the number of reorder slots.
	DefaultRingSize = 512
	// DefaultKeyframeRequestInterval is the least time between two
	// OnKeyframeNeeded calls.
	DefaultKeyframeRequestInterval = 500 * time.Millisecond
	// DefaultGapThreshold is how far arrival and timestamp may disagree
	// before the timeline believes the arrival.
	DefaultGapThreshold = time.Second
)

// seqBase is the extended sequence number of a stream's first packet: far
// from zero so that a packet from before it is still positive.
const seqBase = 1 << 32

// startHold is how long the start of a stream waits for packets sent
// before its first one (reordered on the way; a lost one cannot be asked
// for: nothing tells it exists). It delays the first frame, often the
// first keyframe of a recording, so it is short.
const startHold = 50 * time.Millisecond

// staleResync is how many packets in a row far behind the stream (by
// sequence number or timestamp) are taken as a sender restart.
const staleResync = 4

// Options configures a Framer.
type Options struct {
	// OnFrame receives every complete frame, in order, from within Push,
	// Tick or Flush. The frame and its Data belong to the callee. It must
	// not call back into the Framer. Required.
	OnFrame func(*media.Frame)
	// OnKeyframeNeeded, if set, is called when a video track waits for a
	// keyframe (at the start, and after a loss or a dropped frame), at most
	// once per KeyframeRequestInterval, so that the bridge can send a PLI.
	// Same calling rules as OnFrame.
	OnKeyframeNeeded func()
	// MaxDelay is how long a missing packet is waited for (counted from the
	// arrival of the first packet after it) before it is declared lost.
	// Default DefaultMaxDelay.
	MaxDelay time.Duration
	// KeyframeRequestInterval rate-limits OnKeyframeNeeded. Default
	// DefaultKeyframeRequestInterval.
	KeyframeRequestInterval time.Duration
	// RingSize is the number of reorder slots, rounded up to a power of
	// two: how far ahead of a missing packet the stream may run. Default
	// DefaultRingSize.
	RingSize int
	// GapThreshold is how far a packet's arrival may depart from where its
	// timestamp puts it before the framer believes the sender paused
	// without advancing its timestamps (the pause is kept as a gap) or
	// jumped them (the jump is removed). Default DefaultGapThreshold.
	GapThreshold time.Duration
	// KeepAfterLoss keeps emitting a video stream's frames after one is
	// lost mid-stream (a packet never recovered): the damaged frame is
	// dropped and a keyframe asked for, but the frames that follow are
	// written, so a player shows artefacts for a moment instead of freezing
	// until the next keyframe (a GOP away when the sender ignores keyframe
	// requests). Without it they are skipped until a keyframe. The first
	// frame of a stream is a keyframe either way.
	KeepAfterLoss bool
}

// Stats counts what a Framer saw and did. Packets = in-order deliveries +
// Duplicates + Late (+ packets still waiting in the ring).
type Stats struct {
	// Packets is the number of packets pushed; Bytes their payload bytes.
	Packets, Bytes uint64
	// Lost counts packets given up after MaxDelay (or pushed out of the
	// ring), Duplicates packets seen twice, Late packets that arrived after
	// they were given up.
	Lost, Duplicates, Late uint64
	// Fillers counts packets without media that still take a sequence
	// number: padding-only packets and packets of another payload type.
	Fillers uint64
	// Invalid counts payloads the depacketizer rejected (their frame is
	// dropped).
	Invalid uint64
	// Frames and Keyframes count emitted frames (for audio every frame is
	// a keyframe).
	Frames, Keyframes uint64
	// DroppedFrames counts incomplete or malformed frames, never emitted.
	DroppedFrames uint64
	// SkippedFrames counts complete video frames dropped while waiting for
	// a keyframe.
	SkippedFrames uint64
	// KeyframeRequests counts OnKeyframeNeeded calls.
	KeyframeRequests uint64
	// Clamped counts frames whose PTS was raised to 1 ms after the
	// previous one's.
	Clamped uint64
	// Resyncs counts sender restarts: SSRC changes and sequence number
	// jumps the ring cannot bridge.
	Resyncs uint64
	// TimeJumps counts timeline re-anchors: pauses without timestamp
	// progress, timestamp jumps, sender reports far off the mapping.
	TimeJumps uint64
	// SenderReports counts sender reports used; IgnoredSenderReports those
	// that agreed neither with the mapping nor with the arrival times.
	SenderReports, IgnoredSenderReports uint64
	// FirstKeyframe is the arrival time of the first packet of the first
	// keyframe of a video track, zero before it is emitted: where a
	// recording's start-up latency counts from.
	FirstKeyframe time.Time
}

// Slot states in the reorder ring.
const (
	slotEmpty  = iota
	slotStored // received, waiting for the packets before it
	slotDone   // delivered (kept to recognise a duplicate)
	slotLost   // given up (a later arrival is late)
)

type slot struct {
	seq     int64 // extended sequence number this slot's state is about
	ts      int64 // extended timestamp
	arrival int64 // ns since epoch
	state   uint8
	marker  bool
	filler  bool
	buf     []byte // payload copy, from the free list while stored
}

// Framer turns one track's RTP packets into frames. See the package
// documentation; not safe for concurrent use.
type Framer struct {
	track    media.Track
	clock    *Clock
	opts     Options
	video    bool
	checkPT  bool
	maxDelay int64
	keyEvery int64
	dep      depacketizer

	// sequence and reorder state
	started   bool
	ssrc      uint32
	next      int64 // next sequence number to deliver
	highest   int64 // highest sequence number received
	tsRef     int64 // extended timestamp of the highest packet
	ring      []slot
	mask      int64
	free      [][]byte
	holeSeq   int64 // the hole holeDue is about
	holeDue   int64
	staleRun  int
	holding   bool // the start is held until holdUntil
	holdUntil int64

	// frame assembly (video)
	inFrame  bool
	frameTS  int64
	frameAt  int64 // arrival of the frame's first packet
	corrupt  bool
	startOK  bool
	lastLoss bool // the item delivered last was a loss or a discontinuity
	waitKey  bool
	keyed    bool // a keyframe of the current stream was emitted
	buf      []byte

	keyAsked   bool
	lastKeyAsk int64

	tl      timeline
	lastNow int64 // time of the last Push or Tick, ns since epoch
	lastPTS time.Duration
	havePTS bool
	stats   Stats
}

// New returns a Framer for track t on clock c. The track's Codec must be
// one of media's codec names; a ClockRate of 0 takes the codec's usual rate.
// Packets whose payload type differs from t.PayloadType are counted as
// fillers (a PayloadType of 0 on a codec other than PCMU accepts every
// payload type).
func New(t media.Track, c *Clock, o Options) (*Framer, error) {
	if c == nil {
		return nil, errors.New("framer: nil Clock")
	}
	if o.OnFrame == nil {
		return nil, errors.New("framer: Options.OnFrame is required")
	}
	if o.MaxDelay <= 0 {
		o.MaxDelay = DefaultMaxDelay
	}
	if o.KeyframeRequestInterval <= 0 {
		o.KeyframeRequestInterval = DefaultKeyframeRequestInterval
	}
	if o.GapThreshold <= 0 {
		o.GapThreshold = DefaultGapThreshold
	}
	size := DefaultRingSize
	if o.RingSize > 0 {
		size = 16
		for size < o.RingSize && size < 1<<15 {
			size <<= 1
		}
	}
	f := &Framer{
		track:    t,
		clock:    c,
		opts:     o,
		maxDelay: int64(o.MaxDelay),
		keyEvery: int64(o.KeyframeRequestInterval),
		ring:     make([]slot, size),
		mask:     int64(size - 1),
	}
	codec := strings.ToLower(t.Codec)
	rate := int64(90000)
	switch codec {
	case media.Opus:
		rate = 48000
	case media.PCMU, media.PCMA:
		rate = 8000
	case media.VP8:
		f.dep = &vp8{}
	case media.VP9:
		f.dep = &vp9{}
	case media.H264:
		d := &h264{}
		d.seed(t.Fmtp)
		f.dep = d
	case media.AV1:
		f.dep = &av1{}
	default:
		return nil, fmt.Errorf("framer: codec %q is not supported", t.Codec)
	}
	if t.ClockRate > 0 {
		rate = int64(t.ClockRate)
	}
	f.video = f.dep != nil
	f.waitKey = f.video
	f.checkPT = t.PayloadType != 0 || codec == media.PCMU
	f.tl = timeline{rate: rate, gap: int64(o.GapThreshold), video: f.video}
	return f, nil
}

// Push takes one received RTP packet and its arrival time. The packet,
// including its payload, may be reused by the caller when Push returns.
// Complete frames are passed to Options.OnFrame before Push returns.
func (f *Framer) Push(p *rtp.Packet, arrival time.Time) {
	if p == nil {
		return
	}
	now := f.clock.since(arrival)
	f.lastNow = now
	f.stats.Packets++
	f.stats.Bytes += uint64(len(p.Payload))
	filler := len(p.Payload) == 0 || (f.checkPT && p.PayloadType != f.track.PayloadType)
	if filler {
		f.stats.Fillers++
	}
	switch {
	case !f.started:
		f.begin(p, now)
	case p.SSRC != f.ssrc:
		f.resync(p, now, true)
	}
	seq := f.highest + int64(int16(p.SequenceNumber-uint16(f.highest)))
	ts := f.tsRef + int64(int32(p.Timestamp-uint32(f.tsRef)))
	size := int64(len(f.ring))

	if seq < f.next && f.holding && f.highest-seq < size {
		f.next = seq // the stream began earlier than its first packet
	}
	if seq < f.next {
		// Far behind by sequence number or timestamp: a few in a row are
		// a sender restart, not late retransmissions.
		far := f.next-seq >= size || abs64(ts-f.tsRef) >= 10*f.tl.rate
		if far {
			f.staleRun++
		}
		if !far || f.staleRun < staleResync {
			if s := &f.ring[seq&f.mask]; s.seq == seq && s.state == slotDone {
				f.stats.Duplicates++
			} else {
				f.stats.Late++
			}
			return
		}
		f.resync(p, now, true)
		seq, ts = f.next, f.tsRef
	} else if seq-f.highest >= size {
		// A jump the ring cannot bridge: give up what is pending and
		// restart the sequence here (the timeline judges the timestamps).
		f.resync(p, now, false)
		seq, ts = f.next, f.tsRef
	}
	f.staleRun = 0

	if seq-f.next >= size { // make room: the oldest holes are lost
		f.releaseTo(seq-size+1, now)
	}
	if seq > f.highest {
		f.highest = seq
		if !filler { // (padding may carry any timestamp)
			f.tsRef = ts
			anchored := f.tl.anchored
			f.tl.follow(f.clock, f.tsRef)
			if f.tl.observe(ts, now) {
				f.stats.TimeJumps++
			}
			if !anchored && f.tl.pending {
				f.tl.pending = false
				f.SenderReport(f.tl.pendingNTP, f.tl.pendingRTP)
			}
		}
	}
	if seq == f.next && !f.holding {
		f.ring[seq&f.mask] = slot{seq: seq, state: slotDone}
		f.next++
		f.deliver(p.Payload, p.Marker, ts, filler, now, now)
	} else {
		s := &f.ring[seq&f.mask]
		if s.seq == seq && s.state == slotStored {
			f.stats.Duplicates++
			return
		}
		*s = slot{
			seq: seq, ts: ts, arrival: now, state: slotStored,
			marker: p.Marker, filler: filler,
			buf: append(f.getBuf(), p.Payload...),
		}
	}
	f.drain(now)
}

// Tick releases what the reorder delay allows at time now: call it
// periodically (every 20-50 ms) so that a missing packet is given up even
// when no further packets arrive.
func (f *Framer) Tick(now time.Time) {
	if f.started {
		f.lastNow = f.clock.since(now)
		f.drain(f.lastNow)
	}
}

// Flush gives up every missing packet, delivers what waits behind them and
// drops a frame left incomplete: call it when the track ends.
func (f *Framer) Flush() {
	if !f.started {
		return
	}
	f.releaseTo(f.highest+1, f.lastNow)
	if f.inFrame {
		f.inFrame = false
		f.stats.DroppedFrames++
	}
}

// SenderReport takes the NTP time (64-bit NTP format) and RTP timestamp
// of an RTCP sender report for the SSRC the Framer receives: from the first
// one on, frames are placed from sender reports, which aligns the tracks of
// one sender. The caller drops reports of other SSRCs.
func (f *Framer) SenderReport(ntpTime uint64, rtpTime uint32) {
	if !f.tl.anchored {
		f.tl.pending, f.tl.pendingNTP, f.tl.pendingRTP = true, ntpTime, rtpTime
		return
	}
	ts := f.tsRef + int64(int32(rtpTime-uint32(f.tsRef)))
	result := f.tl.senderReport(f.clock, f.track.Index, f.clock.ntpSince(ntpTime), ts, f.tsRef)
	switch result {
	case srApplied:
		f.stats.SenderReports++
	case srJumped:
		f.stats.SenderReports++
		f.stats.TimeJumps++
	case srIgnored:
		f.stats.IgnoredSenderReports++
	}
}

// Resume tells the Framer that the next packet may come after a pause
// that its timestamps do not show (Janus relaying again after an ICE
// restart keeps them still while it relays nothing): if it arrives later
// than its timestamp says, by more than jitter, the mapping moves later by
// that much, keeping the pause as a gap (Options.GapThreshold does so only
// for long pauses). The tracks' alignment is kept. Call it from the
// goroutine that pushes.
func (f *Framer) Resume() { f.tl.resume = true }

// Stats returns the counters so far.
func (f *Framer) Stats() Stats { return f.stats }

// NeedKeyframe reports whether a video track is waiting for a keyframe
// (dropping frames until one comes).
func (f *Framer) NeedKeyframe() bool { return f.waitKey }

// begin starts the sequence at packet p. Its timestamp is extended next
// to the previous stream's so that the timeline, when it carries on, sees
// the true distance.
func (f *Framer) begin(p *rtp.Packet, now int64) {
	if f.started {
		f.tsRef += int64(int32(p.Timestamp - uint32(f.tsRef)))
	} else {
		f.tsRef = seqBase + int64(p.Timestamp)
	}
	f.started = true
	f.ssrc = p.SSRC
	f.next = seqBase + int64(p.SequenceNumber)
	f.highest = f.next - 1
	f.holeSeq = 0
	f.staleRun = 0
	f.lastLoss = true // what came before is unknown
	// Hold the start (startHold, MaxDelay if shorter): packets sent before
	// this one may still arrive (reordered), and the first frame is often
	// the keyframe.
	f.holding, f.holdUntil = true, now+min(f.maxDelay, int64(startHold))
}

// resync ends the current stream (what waits in the ring is delivered, the
// holes are lost, an unfinished frame dropped) and begins a new one at p.
// With newStream (another SSRC, a restart) the timeline starts over too.
func (f *Framer) resync(p *rtp.Packet, now int64, newStream bool) {
	f.stats.Resyncs++
	if newStream {
		f.keyed = false // a new encoder: start at its keyframe
	}
	f.releaseTo(f.highest+1, now)
	f.discontinuity(now)
	if f.inFrame {
		f.inFrame = false
		f.stats.DroppedFrames++
	}
	for i := range f.ring {
		s := &f.ring[i]
		if s.state == slotStored {
			f.putBuf(s.buf)
			s.buf = nil
		}
		s.state = slotEmpty
	}
	if newStream {
		f.tl.reset()
	}
	f.begin(p, now)
}

// drain delivers the packets that are next in order and gives up the
// missing ones whose wait is over at now.
func (f *Framer) drain(now int64) {
	if f.holding {
		if now < f.holdUntil {
			return
		}
		f.holding = false
	}
	for f.next <= f.highest {
		s := &f.ring[f.next&f.mask]
		if s.seq == f.next && s.state == slotStored {
			f.deliverSlot(s, now)
			continue
		}
		if f.holeSeq != f.next {
			// The wait counts from the arrival of the first packet after
			// the hole (the one that revealed it).
			f.holeSeq = f.next
			f.holeDue = now + f.maxDelay
			for q := f.next + 1; q <= f.highest; q++ {
				if t := &f.ring[q&f.mask]; t.seq == q && t.state == slotStored {
					f.holeDue = t.arrival + f.maxDelay
					break
				}
			}
		}
		if now < f.holeDue {
			return
		}
		f.loseNext(now)
	}
}

// releaseTo delivers or gives up everything before sequence number to.
func (f *Framer) releaseTo(to, now int64) {
	f.holding = false
	for f.next < to && f.next <= f.highest {
		if s := &f.ring[f.next&f.mask]; s.seq == f.next && s.state == slotStored {
			f.deliverSlot(s, now)
		} else {
			f.loseNext(now)
		}
	}
}

func (f *Framer) deliverSlot(s *slot, now int64) {
	f.next++
	s.state = slotDone
	f.deliver(s.buf, s.marker, s.ts, s.filler, s.arrival, now)
	f.putBuf(s.buf)
	s.buf = nil
}

func (f *Framer) loseNext(now int64) {
	s := &f.ring[f.next&f.mask]
	if s.state == slotStored { // a packet of an older lap: never delivered
		f.putBuf(s.buf)
	}
	*s = slot{seq: f.next, state: slotLost}
	f.next++
	f.stats.Lost++
	f.discontinuity(now)
}

func (f *Framer) getBuf() []byte {
	if n := len(f.free); n > 0 {
		b := f.free[n-1]
		f.free = f.free[:n-1]
		return b
	}
	return make([]byte, 0, 1500)
}

func (f *Framer) putBuf(b []byte) {
	if b != nil {
		f.free = append(f.free, b[:0])
	}
}

// deliver takes the next packet in sequence order, which arrived at
// arrival.
func (f *Framer) deliver(payload []byte, marker bool, ts int64, filler bool, arrival, now int64) {
	if filler {
		return
	}
	if !f.video {
		// One packet, one frame; a lost one is simply missing.
		f.lastLoss = false
		f.emit(ts, payload, true)
		return
	}
	if f.inFrame && ts != f.frameTS {
		// The previous frame ended without a marker: the timestamp changed
		// with no packet missing in between.
		f.finishFrame(now)
	}
	if !f.inFrame {
		f.inFrame = true
		f.frameTS = ts
		f.frameAt = arrival
		f.corrupt = false
		f.buf = f.buf[:0]
		f.dep.begin()
		f.startOK = f.dep.start(payload, f.lastLoss)
	}
	f.lastLoss = false
	if !f.corrupt {
		var err error
		if f.buf, err = f.dep.add(f.buf, payload); err != nil {
			f.corrupt = true
			f.stats.Invalid++
		}
	}
	if marker {
		f.finishFrame(now)
	}
}

// discontinuity notes that media is missing at this point of the stream.
func (f *Framer) discontinuity(now int64) {
	f.lastLoss = true
	if !f.video {
		return
	}
	if f.inFrame {
		f.corrupt = true
	}
	f.lossWait()
	f.askKeyframe(now)
}

// lossWait makes a video stream that lost media wait for a keyframe,
// unless Options.KeepAfterLoss lets it go on.
func (f *Framer) lossWait() {
	if !f.opts.KeepAfterLoss || !f.keyed {
		f.waitKey = true
	}
}

func (f *Framer) finishFrame(now int64) {
	f.inFrame = false
	if f.corrupt || !f.startOK {
		f.stats.DroppedFrames++
		f.lossWait()
		f.askKeyframe(now)
		return
	}
	data, key, err := f.dep.finish(f.buf)
	if err != nil {
		f.stats.Invalid++
		f.stats.DroppedFrames++
		f.lossWait()
		f.askKeyframe(now)
		return
	}
	if f.waitKey {
		if !key {
			f.stats.SkippedFrames++
			f.askKeyframe(now)
			return
		}
		f.waitKey = false
	}
	if key {
		f.keyed = true
	}
	if key && f.stats.FirstKeyframe.IsZero() {
		f.stats.FirstKeyframe = f.clock.local(f.frameAt)
	}
	f.emit(f.frameTS, data, key)
}

func (f *Framer) askKeyframe(now int64) {
	if f.opts.OnKeyframeNeeded == nil || (f.keyAsked && now-f.lastKeyAsk < f.keyEvery) {
		return
	}
	f.keyAsked, f.lastKeyAsk = true, now
	f.stats.KeyframeRequests++
	f.opts.OnKeyframeNeeded()
}

// emit places a frame on the timeline and hands a copy of data over.
func (f *Framer) emit(ts int64, data []byte, key bool) {
	f.place(ts, append([]byte(nil), data...), key)
}

// place puts a frame on the timeline and hands it over; data is the
// frame's own.
func (f *Framer) place(ts int64, data []byte, key bool) {
	wall, jumped := f.tl.place(ts)
	if jumped {
		f.stats.TimeJumps++
	}
	pts := time.Duration(wall)
	if f.havePTS && pts <= f.lastPTS {
		// Containers want strictly increasing timestamps, at millisecond
		// resolution for Matroska.
		pts = f.lastPTS + time.Millisecond
		f.stats.Clamped++
	}
	f.lastPTS, f.havePTS = pts, true
	f.stats.Frames++
	if key {
		f.stats.Keyframes++
	}
	f.opts.OnFrame(&media.Frame{
		Track:    f.track.Index,
		PTS:      pts,
		Wall:     f.clock.wall(wall),
		Keyframe: key,
		Data:     data,
	})
}
