// Package sources holds what a send bridge feeds into Janus (SPEC §1, §4):
// each source type is a [media.Source] in its own file.
//
// An [RTP] source listens for plain RTP over UDP, one socket per track, and
// hands each packet on as it arrives; it relays keyframe requests to the
// sender as RTCP. A [File] source demuxes a media file (WebM/Matroska, Ogg
// Opus, IVF, MP4, Annex-B H.264), packetizes its frames with pion's
// payloaders and paces them in real time, optionally in a loop with
// continuous RTP timestamps and sequence numbers; AAC audio is re-encoded
// to Opus by package transcode. An [RTMP] source accepts a publisher or
// pulls a URL (H.264 passed through, AAC re-encoded to Opus).
package sources
