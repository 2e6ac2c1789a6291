// Package sinks holds where a recv bridge's media goes (SPEC §4, §5): file
// sinks (WebM, MKV, Ogg, fragmented MP4), the RTP forward and RTMP push.
//
// A file sink is a [File]: a [media.FrameSink] that picks the tracks its
// container can hold, names each file from a path template, starts it at a
// video keyframe (asking for one), rotates segments, keeps the file
// playable after a SIGKILL (buffered writes flushed twice a second of
// media), finalises it on close (the container's index, fsync, a JSON
// sidecar, the on_close command, retention), pauses below min_free and
// recovers from write errors on its own with backoff. The container itself
// is written by a muxer, one per type (ogg.go: Ogg Opus with granule
// positions from the frames' PTS, so gaps stay gaps).
package sinks
