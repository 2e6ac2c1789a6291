// Package transcode re-encodes audio for the RTMP sink and source: Opus to
// AAC-LC (RTMP takes AAC only) and AAC to Opus (Janus takes Opus only).
//
// The codec work is done by a managed ffmpeg child per stream (the audio leg
// only, video is never transcoded), fed and read through pipes: Opus goes in
// as Ogg and AAC comes out as ADTS, AAC goes in as ADTS and Opus comes out as
// Ogg. The child is restarted with backoff when it fails. This keeps the
// binary free of cgo; what it costs (CPU per stream, added latency) is in
// the README.
//
// Timing is kept in Go: a Transcoder counts the samples it hands to the
// child and the samples that come back, and places each output packet on the
// input's timeline (the PTS of the input packet whose samples it encodes,
// minus the encoder's delay). A jump in the input's PTS (loss, a pause)
// starts a new anchor, so gaps stay gaps and never shift later audio.
package transcode
