package media

import "time"

// Track describes one media track of a bridge: what a sink is told before
// the track's frames or packets arrive.
type Track struct {
	// Index is the track's stable number within its output (a file, an RTP
	// forward): the order of first negotiation; a later track takes the
	// next index, and indices are never reused.
	Index int
	// MID is the track's media id in the PeerConnection.
	MID string
	// Kind is "audio" or "video".
	Kind string
	// Codec is a codec name of this package (Opus, VP8...).
	Codec       string
	ClockRate   uint32
	Channels    uint16
	PayloadType uint8
	// Fmtp is the SDP fmtp line of the codec, e.g. H.264's
	// "profile-level-id=42e01f;packetization-mode=1".
	Fmtp string
}

// Frame is one access unit of a track, depacketised and placed on the
// output's timeline: a whole video picture (H.264 in Annex-B, VP8/VP9/AV1 as
// their bitstreams) or one audio packet (an Opus or G.711 payload).
type Frame struct {
	Track int
	// PTS is the presentation time on the bridge's clock: aligned across
	// the tracks of a bridge (from RTCP sender reports), never going
	// backwards within a track, gaps kept as gaps. Its origin is arbitrary
	// but shared by all tracks; a file sink rebases it to its file's start.
	PTS time.Duration
	// Wall is the wall-clock time of the frame (from the sender reports'
	// NTP time once known, else from arrival), for sidecars and {start}.
	Wall     time.Time
	Keyframe bool
	Data     []byte
}
