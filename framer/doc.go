// Package framer turns the RTP packets of one received track into whole
// media frames (media.Frame) for the file sinks.
//
// A Framer puts the packets back in order in a small fixed ring, waits a
// bounded time for missing ones, drops what cannot be completed, depacketizes
// per codec and places each frame on the bridge's timeline:
//
//	f, err := framer.New(track, clock, framer.Options{
//		OnFrame:          func(fr *media.Frame) { sinkQueue <- fr },
//		OnKeyframeNeeded: func() { sendPLI(ssrc) },
//	})
//	for { // the track's reader goroutine
//		p, arrival := read()
//		f.Push(p, arrival)           // also call f.Tick(now) every 20-50 ms
//	}
//	// and on an RTCP sender report for the SSRC: f.SenderReport(sr.NTPTime, sr.RTPTime)
//
// # Order and loss
//
// Packets go through a ring of Options.RingSize slots (512 by default; a
// slot holds a payload copy only while its packet waits, in a buffer reused
// from a free list, so a steady stream allocates nothing per packet). A
// packet that is next in sequence is depacketized at once, without a copy. A
// missing packet is waited for Options.MaxDelay (200 ms by default) from the
// arrival of the first packet after it: NACK retransmissions come back with
// their original sequence numbers (no RTX is negotiated with Janus), so a
// retransmission in time fills the hole. After that the packet is lost. The
// start of a stream is held 50 ms (MaxDelay if shorter), so that packets
// sent before the first one to arrive, reordered, still count.
//
// A lost packet drops the video frame it belonged to (a frame is emitted
// only when its start and its end are certain and every packet in between
// was delivered), and video then drops frames until the next keyframe,
// asking for one through Options.OnKeyframeNeeded at most every 500 ms.
// Audio (Opus, G.711: one packet is one frame) just misses the lost packet.
// Duplicates are dropped; so are packets that arrive after their hole was
// given up (late). Padding-only packets and packets of another payload type
// (RED, FEC, comfort noise) take their sequence numbers without media.
// Sequence numbers and timestamps are extended to 64 bits, so they wrap
// freely. A sender restart (a new SSRC, a sequence number jump larger than
// the ring, a run of packets far behind the stream) ends the old stream and
// starts over at the new one instead of waiting for numbers that will not
// come.
//
// # Codecs
//
// VP8 (RFC 7741), VP9 (RFC 9628; several spatial layers of a picture become
// a superframe), H.264 (RFC 6184 single NAL unit, STAP-A, FU-A, into an
// Annex-B access unit with 4-byte start codes; the last SPS and PPS, or the
// fmtp's sprop-parameter-sets, are put in front of an IDR access unit that
// lacks them, so that every keyframe starts a decoder), AV1 (the AV1 RTP
// payload format, into a temporal unit of OBUs with size fields and without
// temporal delimiters, as Matroska and MP4 store it; the last sequence
// header is put in front of a key frame that lacks one), Opus, PCMU and PCMA.
// The payload headers are parsed here, not with pion/rtp/codecs, to keep the
// per-packet path free of allocations; pion's VP9Packet also accumulates
// reference indices across calls on a reused packet.
//
// # Timeline
//
// A Clock is shared by the Framers of one bridge: Frame.PTS counts from its
// epoch, Frame.Wall is the mapped wall-clock time. Until the first RTCP
// sender report a track maps RTP timestamps to time from its first packet's
// arrival, and its frames go out at once on that provisional mapping (a
// recording starts with the first keyframe, not at the first report, a
// second later; Janus forwards the tracks of a publisher at nearly the same
// moment, so they start close to aligned). From the first sender report on,
// a track maps timestamps through the report's NTP time, converted to local
// time with an offset that the Clock shares between its tracks, so they
// stay aligned to the sender's clock. Frames never move earlier: a track
// whose frames are out keeps its own offset at its first report when that is
// later than the shared one, and raises the shared one to it; a track that
// the shared offset puts later than it stands moves later (no frame shorter
// than its interval): audio by at most 4 ms per frame, or at once when it is
// more than 100 ms behind; video at once (one frame shows longer: many
// frames a little longer at the start of a file make players guess a lower
// frame rate). A track that gets a report before its first frame
// takes the shared offset at once (the first such track sets it from its
// minimum packet delay).
// Later reports only slew the mapping (1 ms per report at most, after
// smoothing), following clock drift without visible steps; a report more
// than 500 ms off is taken only when the packets' arrival agrees with it,
// and ignored otherwise (three in a row: the sender's NTP clock stepped, and
// the track starts over as at its first report).
//
// Gaps stay gaps: a sender that pauses advances its timestamps, and the
// mapping keeps the pause; a sender that pauses without advancing them
// (Janus switching a mountpoint's source keeps timestamps continuous) is
// caught by the arrival times: a packet arriving more than
// Options.GapThreshold (1 s) later than its timestamp says, against the
// track's minimum delay, moves the mapping forward by the difference; a
// timestamp jump with no pause in the arrivals is removed the same way. PTS
// always increases within a track: a frame that would not is given the
// previous frame's PTS plus 1 ms (counted in Stats.Clamped).
//
// # Ownership and concurrency
//
// Push does not keep the packet or its payload. Each emitted Frame and its
// Data are new allocations owned by the callee (two allocations per frame,
// none per packet). A Framer belongs to one goroutine, the track's reader:
// it is not safe for concurrent use, and its callbacks run on that
// goroutine. A Clock is safe for concurrent use.
package framer
