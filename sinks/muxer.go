package sinks

import "github.com/janusbridge/janusbridge/media"

// muxer writes one container file. Calls come from one goroutine.
type muxer interface {
	// WriteFrame appends a frame; f.PTS is relative to the file's start (>= 0), per track non-decreasing.
	WriteFrame(f *media.Frame) error
	// Flush pushes buffered bytes to the file so that a SIGKILL loses at most what came after it.
	Flush() error
	// Close finalises the file (duration, cues) and closes nothing else: the caller owns w.
	Close() error
}
