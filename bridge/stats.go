package bridge

import (
	"sync/atomic"
)

// TrackStats are the counters of one track, kept in one place for the
// status API and the metrics. Updated with atomics on the media path.
type TrackStats struct {
	Packets atomic.Uint64
	Bytes   atomic.Uint64
	// Lost counts packets never recovered (declared lost by the framer).
	Lost atomic.Uint64
	// NACKs counts the packets our NACKs asked Janus to resend (a packet
	// asked for twice counts twice), as Janus counts the NACKs it receives.
	NACKs atomic.Uint64
	// PLIs counts the keyframe requests we sent.
	PLIs atomic.Uint64
}

// SinkStats are the counters of one sink.
type SinkStats struct {
	Bytes   atomic.Uint64
	Errors  atomic.Uint64
	Dropped atomic.Uint64
}
