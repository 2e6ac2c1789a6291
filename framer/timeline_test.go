package framer

import (
	"math/rand"
	"sort"
	"testing"
	"time"

	"github.com/pion/rtp"

	"github.com/janusbridge/janusbridge/media"
)

// ntpOf returns the 64-bit NTP timestamp of t.
func ntpOf(t time.Time) uint64 {
	sec := uint64(t.Unix() + ntpUnixOffset)
	frac := uint64(t.Nanosecond()) << 32 / 1e9
	return sec<<32 | frac
}

func TestNTPConversion(t *testing.T) {
	c := NewClock(t0)
	for _, d := range []time.Duration{0, time.Millisecond, -3 * time.Hour, 1234567891 * time.Nanosecond} {
		got := time.Duration(c.ntpSince(ntpOf(t0.Add(d))))
		if diff := got - d; diff < -time.Microsecond || diff > time.Microsecond {
			t.Errorf("%v: got %v", d, got)
		}
	}
}

func TestTicksToNs(t *testing.T) {
	for _, tc := range []struct{ d, rate, want int64 }{
		{90000, 90000, 1e9},
		{-90000, 90000, -1e9},
		{1, 48000, 20833},
		{100 * 3600 * 90000, 90000, 100 * 3600 * 1e9}, // 100 h: d*1e9 would overflow
		{1 << 40, 8000, 137438953472000000},
	} {
		if got := ticksToNs(tc.d, tc.rate); got != tc.want {
			t.Errorf("ticksToNs(%d, %d) = %d, want %d", tc.d, tc.rate, got, tc.want)
		}
	}
}

// event is one thing arriving at a bridge.
type event struct {
	at    time.Time
	f     *Framer
	p     *rtp.Packet
	sr    bool
	ntp   uint64
	srRTP uint32
}

func run(events []event) {
	sort.SliceStable(events, func(i, j int) bool { return events[i].at.Before(events[j].at) })
	for _, e := range events {
		if e.sr {
			e.f.SenderReport(e.ntp, e.srRTP)
		} else {
			e.f.Push(e.p, e.at)
		}
	}
}

// avSender simulates one sender of audio (48 kHz, 20 ms) and video (90 kHz,
// 40 ms, 3 packets a frame) captured on the same clock, with network
// delays and sender reports.
type avSender struct {
	start      time.Time     // local time of the first capture
	ntpAhead   time.Duration // sender NTP clock minus local clock
	dur        time.Duration
	srEvery    time.Duration
	srNoise    time.Duration // error of the reports' RTP time (as Janus's)
	audioDelay time.Duration
	videoDelay time.Duration
	jitter     time.Duration
	tsA, tsV   uint32
	rng        *rand.Rand
}

func (s *avSender) events(fa, fv *Framer) []event {
	var ev []event
	jit := func() time.Duration { return time.Duration(s.rng.Int63n(int64(s.jitter) + 1)) }
	sa := &stream{ssrc: 1, seq: 100, ts: s.tsA, pt: 111}
	for k := 0; time.Duration(k)*20*time.Millisecond < s.dur; k++ {
		capture := s.start.Add(time.Duration(k) * 20 * time.Millisecond)
		for _, p := range sa.packets([][]byte{{0xfc, byte(k)}}, 960) {
			ev = append(ev, event{at: capture.Add(s.audioDelay + jit()), f: fa, p: p})
		}
	}
	sv := &stream{ssrc: 2, seq: 5000, ts: s.tsV, pt: 96}
	for j := 0; time.Duration(j)*40*time.Millisecond < s.dur; j++ {
		capture := s.start.Add(time.Duration(j) * 40 * time.Millisecond)
		pl, _ := testCodecs[0].frame(j, j%25 == 0)
		for n, p := range sv.packets(pl, 3600) {
			ev = append(ev, event{at: capture.Add(s.videoDelay + time.Duration(n)*time.Millisecond + jit()), f: fv, p: p})
		}
	}
	for T := s.srEvery; T < s.dur; T += s.srEvery {
		local := s.start.Add(T)
		noise := func() time.Duration {
			if s.srNoise == 0 {
				return 0
			}
			// Late only: Janus stamps a report from the forwarding time
			// of the newest packet, which may be late, never early.
			return -time.Duration(s.rng.Int63n(2 * int64(s.srNoise)))
		}
		ev = append(ev,
			event{at: local.Add(s.audioDelay), f: fa, sr: true, ntp: ntpOf(local.Add(s.ntpAhead)),
				srRTP: s.tsA + uint32((T+noise()).Seconds()*48000)},
			event{at: local.Add(s.audioDelay + 3*time.Millisecond), f: fv, sr: true, ntp: ntpOf(local.Add(s.ntpAhead)),
				srRTP: s.tsV + uint32((T+noise()).Seconds()*90000)})
	}
	return ev
}

// TestSRAlignment: audio and video of one sender, with different network
// delays, get PTSs within 1 ms for the same capture instant once the
// sender reports are in; the sender's NTP clock being 3.7 s off ours does
// not matter.
func TestSRAlignment(t *testing.T) {
	c := NewClock(t0)
	fa, ca := newFramer(t, c, media.Track{Index: 0, Kind: "audio", Codec: media.Opus, PayloadType: 111}, Options{})
	fv, cv := newFramer(t, c, media.Track{Index: 1, Kind: "video", Codec: media.VP8, PayloadType: 96}, Options{})
	s := &avSender{
		start: t0.Add(500 * time.Millisecond), ntpAhead: 3700 * time.Millisecond, dur: 20 * time.Second,
		srEvery: time.Second, audioDelay: 10 * time.Millisecond, videoDelay: 45 * time.Millisecond,
		jitter: 8 * time.Millisecond, tsA: 0xfff00000, tsV: 0x12345678, rng: rand.New(rand.NewSource(2)),
	}
	run(s.events(fa, fv))
	checkAligned(t, ca.frames, cv.frames, s, 1500*time.Millisecond, time.Millisecond)
	for _, f := range []*Framer{fa, fv} {
		if st := f.Stats(); st.SenderReports < 19 || st.IgnoredSenderReports != 0 || st.TimeJumps != 0 {
			t.Errorf("stats %+v", st)
		}
	}
}

// TestSRAlignmentNoisy: reports stamped up to 16 ms late (Janus computes
// them from the forwarding time of the newest packet) keep the tracks
// within a few ms over a minute: the least late track moves later until it
// is as late as the other (each judged from its earliest reports), which
// undoes the first reports' errors within seconds, by steps that never
// shorten a frame.
func TestSRAlignmentNoisy(t *testing.T) {
	c := NewClock(t0)
	fa, ca := newFramer(t, c, media.Track{Index: 0, Kind: "audio", Codec: media.Opus, PayloadType: 111}, Options{})
	fv, cv := newFramer(t, c, media.Track{Index: 1, Kind: "video", Codec: media.VP8, PayloadType: 96}, Options{})
	s := &avSender{
		start: t0.Add(500 * time.Millisecond), dur: 60 * time.Second, srEvery: time.Second,
		srNoise: 8 * time.Millisecond, audioDelay: 10 * time.Millisecond, videoDelay: 45 * time.Millisecond,
		jitter: 8 * time.Millisecond, tsA: 1, tsV: 2, rng: rand.New(rand.NewSource(3)),
	}
	run(s.events(fa, fv))
	// Within the first report's own error (up to 16 ms each) from the
	// start, within a few ms once the earliest reports are found.
	checkAligned(t, ca.frames, cv.frames, s, 1500*time.Millisecond, 16*time.Millisecond)
	// (The deadband, 2 ms, plus what the earliest of 10-20 reports still
	// errs.)
	checkAligned(t, ca.frames, cv.frames, s, 15*time.Second, 4*time.Millisecond)
	for _, f := range []*Framer{fa, fv} {
		if st := f.Stats(); st.Clamped != 0 || st.TimeJumps != 0 {
			t.Errorf("stats %+v", st)
		}
	}
}

func checkAligned(t *testing.T, af, vf []*media.Frame, s *avSender, from, tol time.Duration) {
	t.Helper()
	// Frames come in order and none is lost: frame k of audio was
	// captured at 20k ms, frame j of video at 40j ms.
	audio := map[time.Duration]time.Duration{}
	for k, fr := range af {
		audio[time.Duration(k)*20*time.Millisecond] = fr.PTS
	}
	video := map[time.Duration]time.Duration{}
	for j, fr := range vf {
		video[time.Duration(j)*40*time.Millisecond] = fr.PTS
	}
	if len(af) != int(s.dur/(20*time.Millisecond)) || len(vf) != int(s.dur/(40*time.Millisecond)) {
		t.Fatalf("%d audio and %d video frames", len(af), len(vf))
	}
	worst := time.Duration(0)
	for capture, pv := range video {
		if capture < from {
			continue
		}
		pa, ok := audio[capture]
		if !ok {
			continue
		}
		d := pv - pa
		if d < 0 {
			d = -d
		}
		worst = max(worst, d)
	}
	if worst > tol {
		t.Errorf("A/V offset up to %v, want <= %v", worst, tol)
	}
	t.Logf("worst A/V offset %v", worst)
	// And the timeline is wall-clock time: the capture instant plus about
	// the network delay.
	if pa := audio[from]; pa < s.start.Add(from).Sub(t0) || pa > s.start.Add(from+100*time.Millisecond).Sub(t0) {
		t.Errorf("audio captured at %v has PTS %v", s.start.Add(from).Sub(t0), pa)
	}
}

// TestGapKept: a 2 s pause gives a 2 s gap, whether the sender's
// timestamps went on (a proper sender) or froze (Janus switching sources),
// with and without sender reports.
func TestGapKept(t *testing.T) {
	for _, tc := range []struct {
		name   string
		frozen bool
		sr     bool
		codec  codecCase
	}{
		{"opus timestamps advance", false, false, testCodecs[4]},
		{"opus timestamps frozen", true, false, testCodecs[4]},
		{"opus frozen with sender reports", true, true, testCodecs[4]},
		{"vp8 timestamps advance with sender reports", false, true, testCodecs[0]},
		{"vp8 timestamps frozen", true, false, testCodecs[0]},
		{"vp8 frozen with sender reports", true, true, testCodecs[0]},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := tc.codec
			f, col := newFramer(t, NewClock(t0), c.track, Options{})
			s := &stream{ssrc: 1, seq: 1, ts: 1000, pt: c.track.PayloadType}
			d := frameDur(c)
			frames, _ := genStream(c, s, 100, 50)
			pk := schedule(frames[:50], t0, d)
			rest := schedule(frames[50:], t0.Add(50*d+2*time.Second), d)
			if !tc.frozen {
				for _, fr := range frames[50:] {
					for _, p := range fr {
						p.Timestamp += uint32(2 * int64(c.track.ClockRate))
					}
				}
			}
			for _, x := range pk {
				f.Push(x.p, x.at)
				if tc.sr && x.p.SequenceNumber == 10 {
					f.SenderReport(ntpOf(x.at.Add(time.Hour)), x.p.Timestamp)
				}
			}
			for _, x := range rest {
				f.Push(x.p, x.at)
			}
			f.Tick(rest[len(rest)-1].at.Add(time.Second))
			if len(col.frames) != 100 {
				t.Fatalf("%d frames", len(col.frames))
			}
			gap := col.frames[50].PTS - col.frames[49].PTS
			if want := 2*time.Second + d; gap < want-2*time.Millisecond || gap > want+2*time.Millisecond {
				t.Errorf("gap %v, want %v", gap, want)
			}
			for i := 51; i < 100; i++ {
				if step := col.frames[i].PTS - col.frames[i-1].PTS; step != d {
					t.Fatalf("frame %d: step %v after the gap", i, step)
				}
			}
			if st := f.Stats(); (st.TimeJumps == 1) != tc.frozen {
				t.Errorf("%d time jumps", st.TimeJumps)
			}
		})
	}
}

// TestTimestampJump: a sender jumping its timestamps (same SSRC, sequence
// going on, no pause) does not open a gap.
func TestTimestampJump(t *testing.T) {
	for _, jump := range []int64{3600 * 48000, -3600 * 48000, 5 * 48000} {
		c := testCodecs[4]
		f, col := newFramer(t, NewClock(t0), c.track, Options{})
		s := &stream{ssrc: 1, seq: 1, ts: 1000, pt: 111}
		frames, _ := genStream(c, s, 100, 1)
		for _, fr := range frames[50:] {
			fr[0].Timestamp += uint32(jump)
		}
		for _, x := range schedule(frames, t0, 20*time.Millisecond) {
			f.Push(x.p, x.at)
		}
		f.Tick(t0.Add(time.Hour))
		if len(col.frames) != 100 {
			t.Fatalf("jump %d: %d frames", jump, len(col.frames))
		}
		for i := 1; i < 100; i++ {
			if step := col.frames[i].PTS - col.frames[i-1].PTS; step != 20*time.Millisecond {
				t.Errorf("jump %d: frame %d: step %v", jump, i, step)
			}
		}
		if st := f.Stats(); st.TimeJumps != 1 {
			t.Errorf("jump %d: %d time jumps", jump, st.TimeJumps)
		}
	}
}

// TestFirstSRNeverBack: a track places its frames on arrival times until
// its first sender report; a report that puts it earlier than that (its
// first packets came late, and its frames were out before the packets on
// time showed it) does not move it back: no PTS goes back, no frame is
// shortened, the track keeps its placement.
func TestFirstSRNeverBack(t *testing.T) {
	c := testCodecs[4]
	f, col := newFramer(t, NewClock(t0), c.track, Options{})
	s := &stream{ssrc: 1, seq: 1, ts: 1000, pt: 111}
	frames, _ := genStream(c, s, 200, 1)
	pk := schedule(frames, t0, 20*time.Millisecond)
	for i := range 10 { // the first packets came late
		pk[i].at = pk[i].at.Add(100 * time.Millisecond)
	}
	for i, x := range pk {
		f.Push(x.p, x.at)
		if i == 100 { // a report with the sender's clock = ours
			if len(col.frames) < 90 {
				t.Fatalf("%d frames out before the first report, want them on arrival", len(col.frames))
			}
			f.SenderReport(ntpOf(x.at), x.p.Timestamp)
		}
	}
	f.Tick(t0.Add(time.Hour))
	if st := f.Stats(); st.Clamped != 0 || st.TimeJumps != 0 || st.SenderReports != 1 {
		t.Errorf("stats %+v", st)
	}
	for i := 1; i < len(col.frames); i++ {
		if step := col.frames[i].PTS - col.frames[i-1].PTS; step != 20*time.Millisecond {
			t.Fatalf("frame %d: step %v", i, step)
		}
	}
	if got, want := col.frames[199].PTS, 199*20*time.Millisecond+100*time.Millisecond; got != want {
		t.Errorf("last PTS %v, want %v (the first packet's placement)", got, want)
	}
}

// TestProvisionalStart: audio and video of one sender start at once on
// their arrival times, before any sender report (a recording starts at the
// first keyframe, not a report later). At the first reports the track that
// is earlier than the other moves later, never shortening a frame: audio by
// srFastSlew per frame at most (none longer than its interval by more than
// 4 ms), or at once when it is more than catchUpJump behind; video at once
// (one longer frame). From then on the tracks are aligned as if they had
// waited for the reports.
func TestProvisionalStart(t *testing.T) {
	for _, tc := range []struct {
		name         string
		audio, video time.Duration // network delays
		jump         bool
	}{
		{"video later", 10 * time.Millisecond, 45 * time.Millisecond, false},
		{"audio later", 70 * time.Millisecond, 5 * time.Millisecond, false},
		{"video far later", 10 * time.Millisecond, 250 * time.Millisecond, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := NewClock(t0)
			fa, ca := newFramer(t, c, media.Track{Index: 0, Kind: "audio", Codec: media.Opus, PayloadType: 111}, Options{})
			fv, cv := newFramer(t, c, media.Track{Index: 1, Kind: "video", Codec: media.VP8, PayloadType: 96}, Options{})
			s := &avSender{
				start: t0.Add(500 * time.Millisecond), ntpAhead: -2 * time.Second, dur: 10 * time.Second,
				srEvery: time.Second, audioDelay: tc.audio, videoDelay: tc.video,
				jitter: 8 * time.Millisecond, tsA: 7, tsV: 0xfffff000, rng: rand.New(rand.NewSource(5)),
			}
			ev := s.events(fa, fv)
			sort.SliceStable(ev, func(i, j int) bool { return ev[i].at.Before(ev[j].at) })
			var firstVideo time.Time // arrival of the first packet of video frame 0
			for _, e := range ev {
				if e.f == fv && !e.sr && e.p.SequenceNumber == 5000 {
					firstVideo = e.at
				}
			}
			for _, e := range ev {
				if e.sr {
					if len(ca.frames) == 0 || len(cv.frames) == 0 {
						t.Fatalf("%d audio and %d video frames before the first report", len(ca.frames), len(cv.frames))
					}
					e.f.SenderReport(e.ntp, e.srRTP)
					continue
				}
				e.f.Push(e.p, e.at)
				if len(cv.frames) == 1 && e.at.Sub(firstVideo) > DefaultMaxDelay+10*time.Millisecond {
					// (the start of a stream waits DefaultMaxDelay for
					// packets reordered before its first one)
					t.Fatalf("the first video frame came %v after its first packet", e.at.Sub(firstVideo))
				}
			}
			if got := fv.Stats().FirstKeyframe; !got.Equal(firstVideo) {
				t.Errorf("video FirstKeyframe %v, want %v", got.Sub(t0), firstVideo.Sub(t0))
			}
			if got := fa.Stats().FirstKeyframe; !got.IsZero() {
				t.Errorf("audio FirstKeyframe %v, want none", got)
			}
			jumps := 0
			for _, tr := range []struct {
				col      *collector
				f        *Framer
				interval time.Duration
			}{{ca, fa, 20 * time.Millisecond}, {cv, fv, 40 * time.Millisecond}} {
				if n := len(tr.col.frames); n != int(s.dur/tr.interval) {
					t.Fatalf("%d frames, want %d", n, s.dur/tr.interval)
				}
				long := 0
				for i := 1; i < len(tr.col.frames); i++ {
					step := tr.col.frames[i].PTS - tr.col.frames[i-1].PTS
					if step < tr.interval {
						t.Errorf("frame %d: step %v, interval %v", i, step, tr.interval)
					}
					if step > tr.interval+time.Duration(srFastSlew) {
						long++
					}
				}
				// Audio pays in small steps unless it is far behind; video
				// pays at once.
				owes := tc.jump // audio, far behind
				if tr.f == fv {
					owes = tc.audio > tc.video
				}
				if want := map[bool]int{false: 0, true: 1}[owes]; long != want {
					t.Errorf("%d steps longer than the interval by more than %v, want %d", long, time.Duration(srFastSlew), want)
				}
				st := tr.f.Stats()
				if st.Clamped != 0 || st.SenderReports != uint64(s.dur/s.srEvery)-1 {
					t.Errorf("stats %+v", st)
				}
				jumps += int(st.TimeJumps)
			}
			if want := map[bool]int{false: 0, true: 1}[tc.jump]; jumps != want {
				t.Errorf("%d time jumps, want %d", jumps, want)
			}
			// Audio frame 2k and video frame k were captured together: in
			// step once the reports are in (1 s) and the catch-up is done
			// (35 ms at 4 ms per 20 ms audio frame: 0.18 s).
			worst := time.Duration(0)
			for k := 1500 / 40; k < len(cv.frames); k++ {
				worst = max(worst, (ca.frames[2*k].PTS - cv.frames[k].PTS).Abs())
			}
			if worst > time.Millisecond {
				t.Errorf("A/V offset up to %v from 1.5 s, want within 1 ms", worst)
			}
			// Placed as late as the later track's first packet, no later.
			late := max(tc.audio, tc.video)
			if d := ca.frames[len(ca.frames)-1].PTS - s.start.Add(s.dur-20*time.Millisecond).Sub(t0); d < late || d > late+s.jitter {
				t.Errorf("audio placed %v after its capture, want %v plus jitter", d, late)
			}
		})
	}
}

// TestStartBacklog: the video track's reader starts 1.5 s late and reads
// what waited for it in a burst. The provisional mapping takes the earliest
// arrival before its first frame goes out (the end of the burst), not the
// first packet's: no track is placed 1.5 s late, none has to jump to match.
func TestStartBacklog(t *testing.T) {
	c := NewClock(t0)
	fa, ca := newFramer(t, c, media.Track{Index: 0, Kind: "audio", Codec: media.Opus, PayloadType: 111}, Options{})
	fv, cv := newFramer(t, c, media.Track{Index: 1, Kind: "video", Codec: media.VP8, PayloadType: 96}, Options{})
	s := &avSender{
		start: t0.Add(500 * time.Millisecond), dur: 5 * time.Second, srEvery: time.Second,
		audioDelay: 10 * time.Millisecond, videoDelay: 12 * time.Millisecond,
		tsA: 1, tsV: 2, rng: rand.New(rand.NewSource(1)),
	}
	ev := s.events(fa, fv)
	read := s.start.Add(1500 * time.Millisecond)
	for i, e := range ev {
		if e.f == fv && !e.sr && e.at.Before(read) {
			ev[i].at = read
		}
	}
	run(ev)
	for _, f := range []*Framer{fa, fv} {
		if st := f.Stats(); st.Clamped != 0 || st.TimeJumps != 0 {
			t.Errorf("stats %+v", st)
		}
	}
	if d := cv.frames[0].PTS - s.start.Sub(t0); d < 0 || d > 20*time.Millisecond {
		t.Errorf("the first video frame placed %v after its capture, want its network delay", d)
	}
	worst := time.Duration(0)
	for k := range cv.frames {
		worst = max(worst, (ca.frames[2*k].PTS - cv.frames[k].PTS).Abs())
	}
	if worst > 3*time.Millisecond {
		t.Errorf("A/V offset up to %v, want within 3 ms", worst)
	}
}

// TestStartHold: the start of a stream waits startHold for packets sent
// before the first one to arrive (reordered), no longer: a keyframe whose
// second packet came first is emitted whole startHold after it.
func TestStartHold(t *testing.T) {
	c := testCodecs[0] // vp8
	f, col := newFramer(t, NewClock(t0), c.track, Options{})
	s := &stream{ssrc: 1, seq: 1, ts: 1, pt: c.track.PayloadType}
	frames, want := genStream(c, s, 1, 1)
	if len(frames[0]) < 3 {
		t.Fatalf("a keyframe of %d packets, want 3 or more", len(frames[0]))
	}
	pk := frames[0]
	f.Push(pk[1], t0)
	f.Push(pk[0], t0.Add(30*time.Millisecond))
	for _, p := range pk[2:] {
		f.Push(p, t0.Add(31*time.Millisecond))
	}
	f.Tick(t0.Add(startHold - time.Millisecond))
	if len(col.frames) != 0 {
		t.Fatalf("%d frames before the start hold's end", len(col.frames))
	}
	f.Tick(t0.Add(startHold))
	checkFrames(t, col.frames, want, []int{0})
	if got := f.Stats().FirstKeyframe; !got.Equal(t0.Add(30 * time.Millisecond)) {
		t.Errorf("FirstKeyframe %v, want the arrival of its first packet (30ms)", got.Sub(t0))
	}
}

// TestSRDrift: the sender's media clock runs 100 ppm slow against its NTP
// clock; later reports bring the mapping along without any step over a
// millisecond.
func TestSRDrift(t *testing.T) {
	c := testCodecs[4]
	f, col := newFramer(t, NewClock(t0), c.track, Options{})
	s := &stream{ssrc: 1, seq: 1, ts: 1000, pt: 111}
	period := 20*time.Millisecond + 2*time.Microsecond // 960 ticks take 20.002 ms
	n := 30000                                         // 10 minutes
	var ev []event
	for k := 0; k < n; k++ {
		capture := t0.Add(time.Duration(k) * period)
		pl, _ := c.frame(k, true)
		ev = append(ev, event{at: capture.Add(5 * time.Millisecond), f: f, p: s.packets(pl, 960)[0]})
		if k%50 == 25 {
			ev = append(ev, event{at: capture.Add(5 * time.Millisecond), f: f, sr: true,
				ntp: ntpOf(capture), srRTP: 1000 + uint32(k*960)})
		}
	}
	run(ev)
	if len(col.frames) != n {
		t.Fatalf("%d frames", len(col.frames))
	}
	for k := 1; k < n; k++ {
		if step := col.frames[k].PTS - col.frames[k-1].PTS; step < 19*time.Millisecond || step > 21*time.Millisecond {
			t.Fatalf("frame %d: step %v", k, step)
		}
	}
	// At the end the PTS is the capture time (plus the 5 ms delay the
	// first report's offset absorbed), within a few ms: 60 ms of drift
	// followed.
	last := col.frames[n-1].PTS
	want := time.Duration(n-1)*period + 5*time.Millisecond
	if d := last - want; d < -4*time.Millisecond || d > 4*time.Millisecond {
		t.Errorf("last PTS %v, want %v (off %v)", last, want, d)
	}
	if st := f.Stats(); st.TimeJumps != 0 || st.IgnoredSenderReports != 0 {
		t.Errorf("stats %+v", st)
	}
}

// TestSRFarOff: later reports far from the mapping never move it. When the
// packets agree with them the stream lags (a stall, a pause shorter than
// the gap threshold): the timestamps place the frames; a pause longer than
// the gap threshold is kept by the packets' arrivals, and the reports after
// it agree. When the packets do not agree (the sender's NTP clock stepped),
// the reports are ignored until they persist.
func TestSRFarOff(t *testing.T) {
	c := testCodecs[4]
	t.Run("pause", func(t *testing.T) {
		f, col := newFramer(t, NewClock(t0), c.track, Options{})
		s := &stream{ssrc: 1, seq: 1, ts: 1000, pt: 111}
		frames, _ := genStream(c, s, 200, 1)
		pk := schedule(frames, t0, 20*time.Millisecond)
		for i := 100; i < 200; i++ { // a 1.5 s pause with frozen timestamps
			pk[i].at = pk[i].at.Add(1500 * time.Millisecond)
		}
		for i, x := range pk {
			f.Push(x.p, x.at)
			if i%25 == 0 { // reports made from forwarding times
				f.SenderReport(ntpOf(x.at), x.p.Timestamp)
			}
		}
		f.Tick(t0.Add(time.Hour))
		if gap := col.frames[100].PTS - col.frames[99].PTS; gap < 1500*time.Millisecond {
			t.Errorf("the pause is not kept: step %v", gap)
		}
		for i := 101; i < len(col.frames); i++ {
			if step := col.frames[i].PTS - col.frames[i-1].PTS; step != 20*time.Millisecond {
				t.Errorf("frame %d: step %v", i, step)
			}
		}
		if st := f.Stats(); st.TimeJumps != 1 || st.IgnoredSenderReports != 0 {
			t.Errorf("stats %+v", st)
		}
	})
	t.Run("stall", func(t *testing.T) {
		f, col := newFramer(t, NewClock(t0), c.track, Options{})
		s := &stream{ssrc: 1, seq: 1, ts: 1000, pt: 111}
		frames, _ := genStream(c, s, 300, 1)
		pk := schedule(frames, t0, 20*time.Millisecond)
		// The sender stalls for 0.8 s at packet 100 (less than the gap
		// threshold) and then catches up: packets 100-139 come in a burst
		// at the end of the stall.
		for i := 100; i < 140; i++ {
			pk[i].at = pk[140].at
		}
		for i, x := range pk {
			f.Push(x.p, x.at)
			if i%25 == 0 {
				f.SenderReport(ntpOf(x.at), x.p.Timestamp)
			}
		}
		f.Tick(t0.Add(time.Hour))
		for i := 1; i < len(col.frames); i++ {
			if step := col.frames[i].PTS - col.frames[i-1].PTS; step != 20*time.Millisecond {
				t.Errorf("frame %d: step %v", i, step)
			}
		}
		if st := f.Stats(); st.TimeJumps != 0 {
			t.Errorf("stats %+v", st)
		}
	})
	t.Run("ntp step", func(t *testing.T) {
		f, col := newFramer(t, NewClock(t0), c.track, Options{})
		s := &stream{ssrc: 1, seq: 1, ts: 1000, pt: 111}
		frames, _ := genStream(c, s, 500, 1)
		pk := schedule(frames, t0, 20*time.Millisecond)
		for i, x := range pk {
			f.Push(x.p, x.at)
			if i%50 == 0 {
				ntp := x.at
				if i >= 200 {
					ntp = ntp.Add(800 * time.Millisecond)
				}
				f.SenderReport(ntpOf(ntp), x.p.Timestamp)
			}
		}
		f.Tick(t0.Add(time.Hour))
		for i := 1; i < len(col.frames); i++ {
			if step := col.frames[i].PTS - col.frames[i-1].PTS; step != 20*time.Millisecond {
				t.Errorf("frame %d: step %v", i, step)
			}
		}
		if st := f.Stats(); st.IgnoredSenderReports != srIgnoreLimit-1 {
			t.Errorf("stats %+v, want %d reports ignored", st, srIgnoreLimit-1)
		}
	})
}

// TestSRBeforeFirstPacket: a report that comes first is kept for the first
// packet.
func TestSRBeforeFirstPacket(t *testing.T) {
	c := testCodecs[4]
	f, col := newFramer(t, NewClock(t0), c.track, Options{})
	f.SenderReport(ntpOf(t0.Add(time.Hour)), 500)
	s := &stream{ssrc: 1, seq: 1, ts: 1000, pt: 111}
	frames, _ := genStream(c, s, 20, 1)
	for _, x := range schedule(frames, t0.Add(time.Second), 20*time.Millisecond) {
		f.Push(x.p, x.at)
	}
	f.Tick(t0.Add(time.Hour))
	if st := f.Stats(); st.SenderReports != 1 || len(col.frames) != 20 {
		t.Errorf("stats %+v, %d frames", st, len(col.frames))
	}
	if col.frames[0].PTS != time.Second {
		t.Errorf("first PTS %v", col.frames[0].PTS)
	}
}

// TestSenderLateForGood: a sender whose stream falls 800 ms behind the time
// and stays there (a starved source: its timestamps did not keep up), with
// reports stamped from forwarding times that say so. When both tracks lag,
// after srLagConfirm reports both move 800 ms later at once: a gap in both,
// the recording as long as the time it covers, audio and video still
// aligned. When the video alone lags (its encoder fell behind), nothing
// moves: the timestamps keep it aligned with the audio.
func TestSenderLateForGood(t *testing.T) {
	for _, tc := range []struct {
		name         string
		lateA, lateV bool
	}{{"both", true, true}, {"video alone", false, true}} {
		t.Run(tc.name, func(t *testing.T) {
			c := NewClock(t0)
			audio, video := testCodecs[4], testCodecs[0]
			if audio.track.Kind != "audio" || video.track.Kind != "video" {
				t.Fatal("testCodecs changed: want opus at 4, vp8 at 0")
			}
			fa, ca := newFramer(t, c, media.Track{Index: 0, Kind: "audio", Codec: media.Opus, ClockRate: 48000, PayloadType: 111}, Options{})
			fv, cv := newFramer(t, c, media.Track{Index: 1, Kind: "video", Codec: media.VP8, ClockRate: 90000, PayloadType: 96}, Options{})
			const lagAt, lag = 5 * time.Second, 800 * time.Millisecond
			var ev []event
			add := func(f *Framer, c codecCase, n, tsBase int, every time.Duration, lags bool) {
				late := func(at time.Time) time.Time {
					if lags && at.Sub(t0) >= lagAt {
						return at.Add(lag)
					}
					return at
				}
				s := &stream{ssrc: uint32(tsBase), seq: 1, ts: uint32(tsBase), pt: c.track.PayloadType}
				frames, _ := genStream(c, s, n, 25)
				for _, x := range schedule(frames, t0, every) {
					ev = append(ev, event{at: late(x.at), f: f, p: x.p})
				}
				for T := time.Second; T < time.Duration(n)*every; T += time.Second {
					ts := uint32(tsBase) + uint32(T.Seconds()*float64(c.track.ClockRate))
					fwd := late(t0.Add(T)) // Janus stamps the report when it forwards
					ev = append(ev, event{at: fwd.Add(time.Millisecond), f: f, sr: true, ntp: ntpOf(fwd), srRTP: ts})
				}
			}
			add(fa, audio, 750, 1000, 20*time.Millisecond, tc.lateA) // 15 s
			add(fv, video, 375, 5000, 40*time.Millisecond, tc.lateV)
			run(ev)
			fa.Tick(t0.Add(time.Hour))
			fv.Tick(t0.Add(time.Hour))
			want := 15 * time.Second
			if tc.lateA && tc.lateV {
				want += lag
			}
			for _, col := range []*collector{ca, cv} {
				span := col.frames[len(col.frames)-1].PTS - col.frames[0].PTS
				if (span - want).Abs() > 100*time.Millisecond {
					t.Errorf("first to last frame %v, want about %v", span, want)
				}
			}
			// Audio frame 2k and video frame k were captured together.
			worst := time.Duration(0)
			for k := range 375 {
				worst = max(worst, (ca.frames[2*k].PTS - cv.frames[k].PTS).Abs())
			}
			if worst > 5*time.Millisecond {
				t.Errorf("A/V offset up to %v, want within 5 ms", worst)
			}
			for _, f := range []*Framer{fa, fv} {
				if st := f.Stats(); st.Clamped != 0 || (st.TimeJumps > 0) != (tc.lateA && tc.lateV) {
					t.Errorf("stats %+v: want no clamped frame, a time jump only when both lag", st)
				}
			}
		})
	}
}
