package bridge

import (
	"sync/atomic"
	"time"
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
	// FirstKeyframe is when the first packet of the track's first video
	// keyframe arrived (framer.Stats.FirstKeyframe); nil before.
	FirstKeyframe atomic.Pointer[time.Time]
}

// SinkStats are the counters of one sink.
type SinkStats struct {
	Bytes   atomic.Uint64
	Errors  atomic.Uint64
	Dropped atomic.Uint64
	// FirstVideoFrame is when the sink took its first video frame (its
	// WriteFrame returned); nil before, and for a sink without video.
	FirstVideoFrame atomic.Pointer[time.Time]
}
