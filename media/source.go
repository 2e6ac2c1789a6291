package media

import (
	"context"

	"github.com/pion/rtp"
)

// PacketWriter takes the RTP packets of a source, one call per packet, for
// the track of that index. The packet is only valid during the call. An
// error ends the source's Run with that error.
type PacketWriter func(track int, p *rtp.Packet) error

// Source is what a send bridge puts into Janus: an RTP listener, a media
// file, an RTMP publisher. Its tracks are described before Run; Run hands
// each track's RTP packets (the source's own sequence numbers, timestamps
// and SSRC: the bridge rewrites them onto its long-lived outgoing tracks)
// to w, paced in real time, until ctx ends (nil) or the source ends: io.EOF
// when a file without loop is done, another error when it fails.
type Source interface {
	// Tracks describes the source's tracks. Index is the position in the
	// slice; ClockRate, Codec, PayloadType and Fmtp are those of the
	// packets Run writes.
	Tracks() []Track
	// Run produces the packets until ctx ends or the source ends.
	Run(ctx context.Context, w PacketWriter) error
	// RequestKeyframe asks for a keyframe on the video track of that
	// index, as a viewer's PLI/FIR relayed by Janus; a source that cannot
	// act on it ignores it. Safe to call from any goroutine.
	RequestKeyframe(track int)
}
