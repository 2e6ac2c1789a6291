package janustest

import (
	"fmt"
	"os/exec"
	"strconv"
	"strings"
)

// DTSIncrease checks with ffprobe that the decoding timestamps of every
// stream of the media file at path increase strictly. Tests use it where
// ffmpeg's null muxer complains of "non monotonically increasing dts": it
// retimes video to the frame rate it guessed, and two frames of uneven
// spacing can land in one slot of it although the file is in order.
func DTSIncrease(path string) error {
	out, err := exec.Command("ffprobe", "-v", "error", "-show_entries", "packet=stream_index,dts", "-of", "csv=p=0", path).Output()
	if err != nil {
		return fmt.Errorf("ffprobe %s: %w", path, err)
	}
	last := map[string]int64{}
	for _, l := range strings.Fields(string(out)) {
		stream, dts, ok := strings.Cut(strings.TrimSuffix(l, ","), ",")
		v, err := strconv.ParseInt(dts, 10, 64)
		if !ok || err != nil {
			continue // N/A
		}
		if prev, seen := last[stream]; seen && v <= prev {
			return fmt.Errorf("%s: stream %s: dts %d after %d", path, stream, v, prev)
		}
		last[stream] = v
	}
	return nil
}
