package framer

import (
	"math/rand"
	"testing"
	"time"

	"github.com/pion/rtp"

	"github.com/janusbridge/janusbridge/media"
)

func TestNewErrors(t *testing.T) {
	c := NewClock(t0)
	ok := func(*media.Frame) {}
	for _, tc := range []struct {
		name  string
		track media.Track
		c     *Clock
		o     Options
	}{
		{"unknown codec", media.Track{Codec: "h265"}, c, Options{OnFrame: ok}},
		{"no OnFrame", media.Track{Codec: media.VP8}, c, Options{}},
		{"no clock", media.Track{Codec: media.VP8}, nil, Options{OnFrame: ok}},
	} {
		if _, err := New(tc.track, tc.c, tc.o); err == nil {
			t.Errorf("%s: New succeeded", tc.name)
		}
	}
	if _, err := New(media.Track{Codec: "VP8"}, c, Options{OnFrame: ok}); err != nil {
		t.Errorf("codec names are case-insensitive: %v", err)
	}
}

// TestInOrder: every codec, every frame out, identical, keyframes marked.
func TestInOrder(t *testing.T) {
	for _, c := range testCodecs {
		t.Run(c.name, func(t *testing.T) {
			f, col := newFramer(t, NewClock(t0), c.track, Options{})
			s := &stream{ssrc: 1, seq: 100, ts: 5000, pt: c.track.PayloadType}
			frames, want := genStream(c, s, 30, 10)
			for _, x := range schedule(frames, t0.Add(time.Second), frameDur(c)) {
				f.Push(x.p, x.at)
			}
			checkFrames(t, col.frames, want, seqRange(0, 30))
			for i, fr := range col.frames {
				wantKey := c.audio() || i%10 == 0
				if fr.Keyframe != wantKey {
					t.Errorf("frame %d: keyframe %v, want %v", i, fr.Keyframe, wantKey)
				}
				// Arrival-based until a sender report: first frame at its
				// arrival, then by timestamp.
				if wantPTS := time.Second + time.Duration(i)*frameDur(c); fr.PTS != wantPTS {
					t.Errorf("frame %d: PTS %v, want %v", i, fr.PTS, wantPTS)
				}
				if !fr.Wall.Equal(t0.Add(fr.PTS)) {
					t.Errorf("frame %d: Wall %v, want %v", i, fr.Wall, t0.Add(fr.PTS))
				}
			}
			st := f.Stats()
			if st.Lost != 0 || st.DroppedFrames != 0 || st.Frames != 30 || st.Invalid != 0 {
				t.Errorf("stats %+v", st)
			}
			if col.keyReqs != 0 {
				t.Errorf("%d keyframe requests on a clean stream", col.keyReqs)
			}
		})
	}
}

// TestReorder: packets shuffled within a window are put back in order.
func TestReorder(t *testing.T) {
	for _, c := range testCodecs {
		t.Run(c.name, func(t *testing.T) {
			f, col := newFramer(t, NewClock(t0), c.track, Options{})
			s := &stream{ssrc: 7, seq: 65000, ts: 1, pt: c.track.PayloadType}
			frames, want := genStream(c, s, 40, 10)
			pk := schedule(frames, t0, frameDur(c))
			// Shuffle within windows of 5 packets, keeping arrival times in
			// place (the packets swap, the clock goes on).
			// The first packet stays first: what comes before a stream's
			// first packet is late by definition.
			rng := rand.New(rand.NewSource(1))
			for w := 1; w < len(pk); w += 5 {
				end := min(w+5, len(pk))
				rng.Shuffle(end-w, func(i, j int) { pk[w+i].p, pk[w+j].p = pk[w+j].p, pk[w+i].p })
			}
			for _, x := range pk {
				f.Push(x.p, x.at)
			}
			f.Tick(pk[len(pk)-1].at.Add(time.Second))
			checkFrames(t, col.frames, want, seqRange(0, 40))
			if st := f.Stats(); st.Lost != 0 || st.Late != 0 || st.DroppedFrames != 0 {
				t.Errorf("stats %+v", st)
			}
		})
	}
}

// TestLoss: a lost packet costs video its frame and the frames up to the
// next keyframe (and asks for one); audio just skips it.
func TestLoss(t *testing.T) {
	for _, c := range testCodecs {
		t.Run(c.name, func(t *testing.T) {
			f, col := newFramer(t, NewClock(t0), c.track, Options{})
			s := &stream{ssrc: 7, seq: 10, ts: 1, pt: c.track.PayloadType}
			frames, want := genStream(c, s, 30, 10)
			// Lose the last packet of frame 3.
			lost := frames[3][len(frames[3])-1]
			pk := schedule(frames, t0, frameDur(c))
			var last time.Time
			for _, x := range pk {
				if x.p != lost {
					f.Push(x.p, x.at)
					last = x.at
				}
			}
			f.Tick(last.Add(time.Second))
			st := f.Stats()
			if st.Lost != 1 {
				t.Errorf("lost %d, want 1", st.Lost)
			}
			if c.audio() {
				idx := append(seqRange(0, 3), seqRange(4, 30)...)
				checkFrames(t, col.frames, want, idx)
				if col.keyReqs != 0 {
					t.Errorf("audio asked for %d keyframes", col.keyReqs)
				}
				return
			}
			// Frame 3 is incomplete, 4-9 wait for the keyframe at 10.
			checkFrames(t, col.frames, want, append(seqRange(0, 3), seqRange(10, 30)...))
			// (AV1 cannot tell that frame 4 starts at its first packet
			// when the packet before was lost: dropped, not skipped.)
			if st.DroppedFrames+st.SkippedFrames != 7 || st.DroppedFrames > 2 {
				t.Errorf("dropped %d skipped %d, want 7 in all", st.DroppedFrames, st.SkippedFrames)
			}
			// 6 frames of 40 ms wait: at most one request per 500 ms.
			if col.keyReqs != 1 || st.KeyframeRequests != 1 {
				t.Errorf("%d keyframe requests (stats %d), want 1", col.keyReqs, st.KeyframeRequests)
			}
			if f.NeedKeyframe() {
				t.Error("still waiting for a keyframe after one came")
			}
		})
	}
}

// TestLossKeepAfterLoss: with KeepAfterLoss, a lost packet costs video only
// its own frame (a keyframe is still asked for); a stream that starts with
// a loss still waits for its first keyframe.
func TestLossKeepAfterLoss(t *testing.T) {
	for _, c := range testCodecs {
		if c.audio() {
			continue
		}
		t.Run(c.name, func(t *testing.T) {
			f, col := newFramer(t, NewClock(t0), c.track, Options{KeepAfterLoss: true})
			s := &stream{ssrc: 7, seq: 10, ts: 1, pt: c.track.PayloadType}
			frames, want := genStream(c, s, 30, 10)
			// Lose the last packet of frame 3.
			lost := frames[3][len(frames[3])-1]
			var last time.Time
			for _, x := range schedule(frames, t0, frameDur(c)) {
				if x.p != lost {
					f.Push(x.p, x.at)
					last = x.at
				}
			}
			f.Tick(last.Add(time.Second))
			st := f.Stats()
			if st.Lost != 1 {
				t.Errorf("lost %d, want 1", st.Lost)
			}
			// Frame 3 is incomplete; AV1 cannot tell that frame 4 starts
			// at its first packet when the packet before was lost.
			idx := append(seqRange(0, 3), seqRange(4, 30)...)
			if c.name == "av1" {
				idx = append(seqRange(0, 3), seqRange(5, 30)...)
			}
			checkFrames(t, col.frames, want, idx)
			if st.SkippedFrames != 0 {
				t.Errorf("skipped %d frames, want 0", st.SkippedFrames)
			}
			if col.keyReqs != 1 {
				t.Errorf("%d keyframe requests, want 1", col.keyReqs)
			}
		})
	}
}

// TestLossWaitsMaxDelay: a hole is given up only after MaxDelay, and a
// retransmission before that fills it.
func TestLossWaitsMaxDelay(t *testing.T) {
	c := testCodecs[0] // vp8
	f, col := newFramer(t, NewClock(t0), c.track, Options{MaxDelay: 100 * time.Millisecond})
	s := &stream{ssrc: 7, seq: 10, ts: 1, pt: 96}
	frames, want := genStream(c, s, 4, 10)
	at := t0
	push := func(p *rtp.Packet) { f.Push(p, at) }
	for _, p := range frames[0] {
		push(p)
	}
	at = at.Add(100 * time.Millisecond) // the start is held for MaxDelay
	f.Tick(at)
	// Frame 1's first packet is missing for 90 ms: retransmitted in time.
	for _, p := range frames[1][1:] {
		push(p)
	}
	at = at.Add(90 * time.Millisecond)
	f.Tick(at)
	if len(col.frames) != 1 {
		t.Fatalf("%d frames before the retransmission", len(col.frames))
	}
	push(frames[1][0])
	if len(col.frames) != 2 {
		t.Fatalf("%d frames after the retransmission, want 2", len(col.frames))
	}
	// Frame 2's first packet never comes: given up 100 ms after the packet
	// behind it arrived, not earlier.
	for _, p := range frames[2][1:] {
		push(p)
	}
	hole := at
	f.Tick(hole.Add(99 * time.Millisecond))
	if f.Stats().Lost != 0 {
		t.Fatal("hole given up before MaxDelay")
	}
	f.Tick(hole.Add(100 * time.Millisecond))
	if f.Stats().Lost != 1 {
		t.Fatal("hole not given up at MaxDelay")
	}
	// The retransmission arriving now is late.
	at = hole.Add(150 * time.Millisecond)
	push(frames[2][0])
	for _, p := range frames[3] {
		push(p)
	}
	st := f.Stats()
	if st.Late != 1 || st.DroppedFrames != 1 || st.SkippedFrames != 1 {
		t.Errorf("stats %+v", st)
	}
	checkFrames(t, col.frames, want, []int{0, 1})
	if !f.NeedKeyframe() || col.keyReqs == 0 {
		t.Errorf("NeedKeyframe %v, %d requests", f.NeedKeyframe(), col.keyReqs)
	}
}

// TestStartsAtKeyframe: video before the first keyframe is skipped and a
// keyframe asked for, rate-limited.
func TestStartsAtKeyframe(t *testing.T) {
	c := testCodecs[0]
	f, col := newFramer(t, NewClock(t0), c.track, Options{})
	s := &stream{ssrc: 7, seq: 10, ts: 1, pt: 96}
	var frames [][]*rtp.Packet
	var want [][]byte
	for i := 0; i < 40; i++ { // keyframe only at 30
		pl, w := c.frame(i, i == 30)
		frames = append(frames, s.packets(pl, c.step))
		want = append(want, w)
	}
	for _, x := range schedule(frames, t0, 40*time.Millisecond) {
		f.Push(x.p, x.at)
	}
	checkFrames(t, col.frames, want, seqRange(30, 40))
	// The start is held 50 ms, then more than a second of waiting: three
	// requests (rate-limited to one per 500 ms) before the keyframe comes
	// at 1.2 s.
	if st := f.Stats(); st.SkippedFrames != 30 || col.keyReqs != 3 {
		t.Errorf("skipped %d, %d keyframe requests; want 30 and 3", st.SkippedFrames, col.keyReqs)
	}
}

// TestDuplicates: every packet twice, some long after.
func TestDuplicates(t *testing.T) {
	for _, c := range testCodecs {
		t.Run(c.name, func(t *testing.T) {
			f, col := newFramer(t, NewClock(t0), c.track, Options{})
			s := &stream{ssrc: 7, seq: 65530, ts: 1, pt: c.track.PayloadType}
			frames, want := genStream(c, s, 20, 10)
			pk := schedule(frames, t0, frameDur(c))
			n := 0
			for i, x := range pk {
				f.Push(x.p, x.at)
				f.Push(x.p, x.at) // immediate duplicate
				n++
				if i >= 3 { // and an old one
					f.Push(pk[i-3].p, x.at)
					n++
				}
			}
			checkFrames(t, col.frames, want, seqRange(0, 20))
			if st := f.Stats(); st.Duplicates != uint64(n) || st.Late != 0 || st.Lost != 0 {
				t.Errorf("stats %+v, want %d duplicates", st, n)
			}
		})
	}
}

// TestDuplicateWhileWaiting: a duplicate of a packet waiting in the ring.
func TestDuplicateWhileWaiting(t *testing.T) {
	c := testCodecs[0]
	f, col := newFramer(t, NewClock(t0), c.track, Options{})
	s := &stream{ssrc: 7, seq: 1, ts: 1, pt: 96}
	frames, want := genStream(c, s, 2, 10)
	f.Push(frames[0][1], t0)
	f.Push(frames[0][1], t0)
	for _, p := range frames[0] {
		f.Push(p, t0)
	}
	for _, p := range frames[1] {
		f.Push(p, t0)
	}
	f.Tick(t0.Add(time.Second))
	checkFrames(t, col.frames, want, []int{0, 1})
	if st := f.Stats(); st.Duplicates != 2 {
		t.Errorf("duplicates %d, want 2", st.Duplicates)
	}
}

// TestWraparound: sequence numbers and timestamps wrap while the frames go
// on with exact PTS steps.
func TestWraparound(t *testing.T) {
	for _, c := range testCodecs {
		t.Run(c.name, func(t *testing.T) {
			f, col := newFramer(t, NewClock(t0), c.track, Options{})
			s := &stream{ssrc: 7, seq: 65530, ts: 0xffffffff - 3*c.step, pt: c.track.PayloadType}
			frames, want := genStream(c, s, 12, 6)
			pk := schedule(frames, t0, frameDur(c))
			// A little reordering across the wrap.
			for i := 1; i+1 < len(pk); i += 3 {
				pk[i].p, pk[i+1].p = pk[i+1].p, pk[i].p
			}
			for _, x := range pk {
				f.Push(x.p, x.at)
			}
			checkFrames(t, col.frames, want, seqRange(0, 12))
			// (from the first frame's: a packet arriving early moved the
			// start of the mapping to it)
			for i, fr := range col.frames {
				if want := time.Duration(i) * frameDur(c); fr.PTS-col.frames[0].PTS != want {
					t.Errorf("frame %d: PTS %v, want %v after the first", i, fr.PTS-col.frames[0].PTS, want)
				}
			}
		})
	}
}

// TestLongSession: timestamps wrap many times (days of media) without the
// PTS arithmetic overflowing: one packet an hour for 100 hours.
func TestLongSession(t *testing.T) {
	for _, c := range []codecCase{testCodecs[4], testCodecs[5]} {
		t.Run(c.name, func(t *testing.T) {
			f, col := newFramer(t, NewClock(t0), c.track, Options{})
			s := &stream{ssrc: 7, seq: 1, ts: 0xfffff000, pt: c.track.PayloadType}
			for h := 0; h < 100; h++ {
				pl, _ := c.frame(h, true)
				f.Push(s.packets(pl, 0)[0], t0.Add(time.Duration(h)*time.Hour))
				s.ts += 3600 * c.track.ClockRate
			}
			for h, fr := range col.frames {
				if fr.PTS != time.Duration(h)*time.Hour {
					t.Fatalf("frame %d: PTS %v", h, fr.PTS)
				}
			}
			if len(col.frames) != 100 || f.Stats().TimeJumps != 0 {
				t.Errorf("%d frames, stats %+v", len(col.frames), f.Stats())
			}
		})
	}
}

// TestSSRCChange: a sender restart with a new SSRC, sequence and timestamp
// resyncs at once; the pause in between stays a gap.
func TestSSRCChange(t *testing.T) {
	for _, c := range testCodecs {
		t.Run(c.name, func(t *testing.T) {
			f, col := newFramer(t, NewClock(t0), c.track, Options{})
			s := &stream{ssrc: 1, seq: 100, ts: 1000, pt: c.track.PayloadType}
			frames, want := genStream(c, s, 10, 10)
			// Frame 9's last packet is lost in the restart.
			lastPkt := frames[9][len(frames[9])-1]
			var last time.Time
			for _, x := range schedule(frames, t0, frameDur(c)) {
				if x.p != lastPkt || c.audio() {
					f.Push(x.p, x.at)
					last = x.at
				}
			}
			s2 := &stream{ssrc: 2, seq: 3, ts: 99999999, pt: c.track.PayloadType}
			frames2, want2 := genStream(c, s2, 10, 10)
			restart := last.Add(3 * time.Second)
			for _, x := range schedule(frames2, restart, frameDur(c)) {
				f.Push(x.p, x.at)
			}
			f.Tick(restart.Add(time.Minute))
			n := 10
			if !c.audio() {
				n = 9
			}
			checkFrames(t, col.frames[:n], want, seqRange(0, n))
			checkFrames(t, col.frames[n:], want2, seqRange(0, 10))
			if st := f.Stats(); st.Resyncs != 1 {
				t.Errorf("resyncs %d", st.Resyncs)
			}
			if got := col.frames[n].PTS; got != restart.Sub(t0) {
				t.Errorf("first frame after restart at %v, want its arrival %v", got, restart.Sub(t0))
			}
		})
	}
}

// TestResume: the same SSRC resumes after a 3 s pause with its timestamps
// and sequence numbers running on as if there had been none (Janus after
// an ICE restart). Without Resume the pause is shorter than the gap
// threshold and the timestamps close it; after Resume the first packet
// after the pause is placed at its arrival, the pause kept, on the same
// stream (no resync).
func TestResume(t *testing.T) {
	for _, c := range testCodecs {
		t.Run(c.name, func(t *testing.T) {
			for _, call := range []bool{false, true} {
				f, col := newFramer(t, NewClock(t0), c.track, Options{GapThreshold: 5 * time.Second})
				s := &stream{ssrc: 1, seq: 100, ts: 1000, pt: c.track.PayloadType}
				frames, _ := genStream(c, s, 20, 10)
				var last time.Time
				for _, x := range schedule(frames[:10], t0, frameDur(c)) {
					f.Push(x.p, x.at)
					last = x.at
				}
				if call {
					f.Resume()
				}
				resume := last.Add(3 * time.Second)
				for _, x := range schedule(frames[10:], resume, frameDur(c)) {
					f.Push(x.p, x.at)
				}
				f.Tick(resume.Add(time.Minute))
				if len(col.frames) != 20 {
					t.Fatalf("Resume %v: %d frames, want 20", call, len(col.frames))
				}
				got, want := col.frames[10].PTS, resume.Sub(t0)
				if !call {
					want = 10 * frameDur(c) // on its timestamps
				}
				if got != want {
					t.Errorf("Resume %v: frame 10 at %v, want %v", call, got, want)
				}
				if got, want := col.frames[11].PTS-col.frames[10].PTS, frameDur(c); got != want {
					t.Errorf("Resume %v: frame 11 %v after frame 10, want %v", call, got, want)
				}
				if st := f.Stats(); st.Resyncs != 0 || call != (st.TimeJumps == 1) {
					t.Errorf("Resume %v: %d resyncs, %d time jumps", call, st.Resyncs, st.TimeJumps)
				}
			}
		})
	}
}

// TestSequenceJumps: the same SSRC restarting with other numbers.
func TestSequenceJumps(t *testing.T) {
	c := testCodecs[0] // vp8: the frames after the jump wait for a keyframe
	for _, tc := range []struct {
		name    string
		seq     uint16
		ts      uint32
		skipped int // frames of the new stream lost to the resync
	}{
		// Far ahead: resync on the first packet.
		{"forward", 100 + 20000, 1, 0},
		// Far behind: four packets in a row are taken as a restart (the
		// first three, frame 0 with 3 packets, are late).
		{"backward", 100 - 20000 + 65536, 1, 1},
		// Just behind but with a timestamp far off.
		{"backward timestamp", 0, 1_000_000_000, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f, col := newFramer(t, NewClock(t0), c.track, Options{})
			s := &stream{ssrc: 1, seq: 100, ts: 1000, pt: 96}
			frames, want := genStream(c, s, 10, 10)
			pk := schedule(frames, t0, 40*time.Millisecond)
			for _, x := range pk {
				f.Push(x.p, x.at)
			}
			s2 := &stream{ssrc: 1, seq: tc.seq, ts: tc.ts, pt: 96}
			var frames2 [][]*rtp.Packet
			var want2 [][]byte
			for i := 0; i < 10; i++ {
				pl, w := c.frame(i, i == 0 || i == 5)
				frames2 = append(frames2, s2.packets(pl, c.step))
				want2 = append(want2, w)
			}
			restart := pk[len(pk)-1].at.Add(time.Second)
			for _, x := range schedule(frames2, restart, 40*time.Millisecond) {
				f.Push(x.p, x.at)
			}
			checkFrames(t, col.frames[:10], want, seqRange(0, 10))
			from := 0
			if tc.skipped > 0 {
				from = 5 // the keyframe was lost: wait for the next
			}
			checkFrames(t, col.frames[10:], want2, seqRange(from, 10))
			st := f.Stats()
			if st.Resyncs != 1 {
				t.Errorf("resyncs %d, want 1", st.Resyncs)
			}
			// The timeline follows arrival across the jump.
			if got, want := col.frames[10].PTS, restart.Sub(t0)+time.Duration(from)*40*time.Millisecond; got-want > 5*time.Millisecond || want-got > 5*time.Millisecond {
				t.Errorf("first frame after the jump at %v, want about %v", got, want)
			}
		})
	}
}

// TestRingOverflow: a hole is given up when the stream runs a ring ahead of
// it, even before MaxDelay.
func TestRingOverflow(t *testing.T) {
	c := testCodecs[4] // opus
	f, col := newFramer(t, NewClock(t0), c.track, Options{RingSize: 16, MaxDelay: time.Hour})
	s := &stream{ssrc: 1, seq: 1, ts: 1, pt: 111}
	frames, want := genStream(c, s, 40, 1)
	for i, x := range schedule(frames, t0, 20*time.Millisecond) {
		if i != 5 {
			f.Push(x.p, x.at)
		}
	}
	// 16 slots: packet 5 is given up when packet 21 arrives; 22..39 flow.
	checkFrames(t, col.frames, want, append(seqRange(0, 5), seqRange(6, 40)...))
	if st := f.Stats(); st.Lost != 1 {
		t.Errorf("lost %d", st.Lost)
	}
}

// TestFillers: padding-only packets and other payload types take sequence
// numbers without media and without breaking frames.
func TestFillers(t *testing.T) {
	for _, c := range []codecCase{testCodecs[0], testCodecs[2], testCodecs[5]} {
		t.Run(c.name, func(t *testing.T) {
			f, col := newFramer(t, NewClock(t0), c.track, Options{})
			s := &stream{ssrc: 1, seq: 1, ts: 1, pt: c.track.PayloadType}
			var want [][]byte
			at := t0
			for i := 0; i < 6; i++ {
				pl, w := c.frame(i, i == 0)
				want = append(want, w)
				pk := s.packets(pl, c.step)
				if len(pk) > 1 { // a padding packet inside the frame
					pad := &rtp.Packet{Header: rtp.Header{SSRC: 1, Timestamp: 12345, PayloadType: c.track.PayloadType}}
					pk = append([]*rtp.Packet{pk[0], pad}, pk[1:]...)
				}
				for k, p := range pk {
					p.SequenceNumber = pk[0].SequenceNumber + uint16(k)
					f.Push(p, at)
				}
				s.seq = pk[0].SequenceNumber + uint16(len(pk))
				// A comfort noise / FEC packet of another type between frames.
				f.Push(&rtp.Packet{Header: rtp.Header{SSRC: 1, SequenceNumber: s.seq, Timestamp: s.ts - c.step, PayloadType: 13}, Payload: []byte{1, 2, 3}}, at)
				s.seq++
				at = at.Add(40 * time.Millisecond)
			}
			checkFrames(t, col.frames, want, seqRange(0, 6))
			if st := f.Stats(); st.Fillers == 0 || st.Lost != 0 || st.DroppedFrames != 0 {
				t.Errorf("stats %+v", st)
			}
		})
	}
}

// TestFlush: at the end, what waits behind a hole comes out.
func TestFlush(t *testing.T) {
	c := testCodecs[5] // pcmu
	f, col := newFramer(t, NewClock(t0), c.track, Options{})
	s := &stream{ssrc: 1, seq: 1, ts: 1, pt: 0}
	frames, want := genStream(c, s, 5, 1)
	for i, fr := range frames {
		if i != 2 {
			f.Push(fr[0], t0.Add(time.Duration(i)*50*time.Millisecond))
		}
	}
	f.Tick(t0.Add(250 * time.Millisecond)) // the start hold is over, the hole is not
	if len(col.frames) != 2 {
		t.Fatalf("%d frames before flush", len(col.frames))
	}
	f.Flush()
	checkFrames(t, col.frames, want, []int{0, 1, 3, 4})
}

// TestInvalidPayloads: malformed payloads drop their frame, never panic.
func TestInvalidPayloads(t *testing.T) {
	for _, c := range testCodecs[:4] {
		t.Run(c.name, func(t *testing.T) {
			f, col := newFramer(t, NewClock(t0), c.track, Options{})
			s := &stream{ssrc: 1, seq: 1, ts: 1, pt: c.track.PayloadType}
			frames, want := genStream(c, s, 3, 2)
			frames[1][0].Payload = []byte{0xff}
			for _, x := range schedule(frames, t0, 40*time.Millisecond) {
				f.Push(x.p, x.at)
			}
			f.Tick(t0.Add(time.Second))
			checkFrames(t, col.frames, want, []int{0, 2})
			if st := f.Stats(); st.Invalid == 0 || st.DroppedFrames != 1 {
				t.Errorf("stats %+v", st)
			}
		})
	}
}
