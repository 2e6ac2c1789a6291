package framer

import "errors"

// depacketizer assembles one video frame from the payloads of its packets,
// given in sequence order with nothing missing. Implementations keep their
// per-frame state between begin and finish and may remember things across
// frames (H.264 parameter sets, the AV1 sequence header). They append into
// the Framer's reused buffer and never allocate per packet once warm.
type depacketizer interface {
	// start reports whether payload certainly begins a frame. afterLoss
	// says the packet before it was lost: when false, the previous packet
	// ended a frame, which some codecs take as proof enough.
	start(payload []byte, afterLoss bool) bool
	// begin resets the per-frame state.
	begin()
	// add appends the media of one packet's payload to buf.
	add(buf, payload []byte) ([]byte, error)
	// finish checks the frame in buf and returns its bytes (buf itself or
	// a scratch buffer of the depacketizer, valid until the next call) and
	// whether it is a keyframe a decoder can start from.
	finish(buf []byte) ([]byte, bool, error)
}

var (
	errShort      = errors.New("framer: payload too short")
	errNotStart   = errors.New("framer: frame does not begin with a frame start")
	errFragment   = errors.New("framer: fragment out of place")
	errIncomplete = errors.New("framer: frame ends inside a fragment")
	errEmpty      = errors.New("framer: frame carries no media")
	errUnsupport  = errors.New("framer: unsupported packetization")
	errMalformed  = errors.New("framer: malformed payload")
)
