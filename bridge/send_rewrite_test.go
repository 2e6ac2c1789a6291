package bridge

import (
	"testing"
	"time"

	"github.com/pion/rtp"
)

// TestRewriter feeds the rewriter the streams a track sees: a source,
// reordering, a replacement source whose numbering is behind, and a
// looping file starting over. The output must stay one stream: sequence
// numbers +1 per new packet, timestamps advancing with the wall clock
// across switches, old packets keeping their mapping.
func TestRewriter(t *testing.T) {
	var r rewriter
	a, b := &input{}, &input{}
	t0 := time.Unix(1000, 0)
	const clock = 90000
	type step struct {
		from    *input
		ssrc    uint32
		seq     uint16
		ts      uint32
		at      time.Duration // since t0
		wantSeq uint16
		wantTS  uint32
	}
	loopTS := uint32(3050)
	loopTS -= clock // one second back
	steps := []step{
		{from: a, ssrc: 1, seq: 65534, ts: 1000, at: 0, wantSeq: 65534, wantTS: 1000},
		{from: a, ssrc: 1, seq: 65535, ts: 4000, at: 33 * time.Millisecond, wantSeq: 65535, wantTS: 4000},
		{from: a, ssrc: 1, seq: 0, ts: 4000, at: 34 * time.Millisecond, wantSeq: 0, wantTS: 4000}, // wraps
		{from: a, ssrc: 1, seq: 65535, ts: 4000, at: 35 * time.Millisecond, wantSeq: 65535, wantTS: 4000},
		// A replacement source, far behind: continues at 1, 100 ms later.
		{from: b, ssrc: 7, seq: 100, ts: 50, at: 134 * time.Millisecond, wantSeq: 1, wantTS: 4000 + 9000},
		{from: b, ssrc: 7, seq: 101, ts: 3050, at: 167 * time.Millisecond, wantSeq: 2, wantTS: 4000 + 9000 + 3000},
		// The same source starting over (a file loop): timestamps back.
		{from: b, ssrc: 7, seq: 102, ts: loopTS, at: 200 * time.Millisecond, wantSeq: 3, wantTS: 4000 + 9000 + 3000 + 2970},
		// A sequence jump forward.
		{from: b, ssrc: 7, seq: 5000, ts: loopTS + 3000, at: 233 * time.Millisecond, wantSeq: 4, wantTS: 4000 + 9000 + 3000 + 2970 + 2970},
		// A retransmission of the previous packet keeps its mapping.
		{from: b, ssrc: 7, seq: 5000, ts: loopTS + 3000, at: 240 * time.Millisecond, wantSeq: 4, wantTS: 4000 + 9000 + 3000 + 2970 + 2970},
		// A change of SSRC, without a gap in numbering: a new stream.
		{from: b, ssrc: 8, seq: 5001, ts: 6050, at: 266 * time.Millisecond, wantSeq: 5, wantTS: 4000 + 9000 + 3000 + 2970 + 2970 + 2970},
	}
	for i, s := range steps {
		p := rtp.Packet{Header: rtp.Header{SSRC: s.ssrc, SequenceNumber: s.seq, Timestamp: s.ts}}
		r.rewrite(s.from, &p, t0.Add(s.at), clock)
		if p.SequenceNumber != s.wantSeq || p.Timestamp != s.wantTS {
			t.Errorf("step %d: seq %d ts %d, want seq %d ts %d", i, p.SequenceNumber, p.Timestamp, s.wantSeq, s.wantTS)
		}
	}
}
