package media

import "github.com/pion/rtp"

// Output is what every sink is: told its tracks, then fed, then closed.
// The bridge calls a sink from one goroutine at a time (each sink runs
// behind its own bounded queue), so implementations need no locking.
type Output interface {
	// SetTracks describes the tracks that follow; it is called before the
	// first write and again whenever the track set changes (a file sink then
	// starts a new segment). Tracks keep their Index across calls.
	SetTracks(tracks []Track) error
	// Close finalises the output (a file gets its duration and index) and
	// releases it. It is idempotent.
	Close() error
}

// FrameSink is an Output that takes whole frames: the file sinks.
type FrameSink interface {
	Output
	// WriteFrame writes one frame. Frames of a track arrive in PTS order;
	// the tracks are interleaved in arrival order. f belongs to the sink
	// after the call, but f.Data is shared with the other sinks: read it,
	// never modify it.
	WriteFrame(f *Frame) error
}

// PacketSink is an Output that takes RTP packets as they arrive: the rtp
// forward. The packet is only valid during the call.
type PacketSink interface {
	Output
	WritePacket(track int, p *rtp.Packet) error
}
