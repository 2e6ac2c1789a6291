package bridge

// seqLoss counts the packets of a stream that never arrived from their
// sequence numbers alone, as a receiver report does (RFC 3550 A.3:
// expected minus received). It stands in for the framer's count on tracks
// that are only forwarded, which need no framer. A jump of more than
// seqLossJump (a source restarted) starts a new count, keeping what was
// lost before it.
type seqLoss struct {
	started         bool
	base, highest   uint64 // extended sequence numbers
	received, prior uint64
}

// seqLossJump is the largest forward jump taken as loss rather than as a
// restart of the stream (about 10 s of video at 300 packets/s).
const seqLossJump = 3000

// add counts a packet with sequence number seq.
func (l *seqLoss) add(seq uint16) {
	ext := l.highest&^0xffff | uint64(seq)
	switch d := int64(ext) - int64(l.highest); {
	case d < -0x8000:
		ext += 0x10000 // wrapped forward
	case d > 0x8000 && ext >= 0x10000:
		ext -= 0x10000 // a late packet from before a wrap
	}
	if !l.started || ext > l.highest+seqLossJump || ext+seqLossJump < l.base {
		l.prior = l.lost()
		l.started, l.base, l.highest, l.received = true, ext, ext, 0
	}
	l.received++
	if ext > l.highest {
		l.highest = ext
	}
}

// lost is the number of packets expected but not received.
func (l *seqLoss) lost() uint64 {
	if !l.started {
		return l.prior
	}
	expected := l.highest - l.base + 1
	if l.received >= expected {
		return l.prior
	}
	return l.prior + expected - l.received
}
