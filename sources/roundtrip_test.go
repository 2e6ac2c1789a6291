package sources

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/janusbridge/janusbridge/media"
	"github.com/janusbridge/janusbridge/sinks"
	"github.com/pion/rtp"
)

// TestFilePlaysOwnRecordings records the frames of a fixture with the
// project's own file sinks (Matroska/WebM with unknown-size clusters,
// fragmented MP4) and plays the recordings with a file source: every
// frame must come back, so a recording can be published again as it is.
func TestFilePlaysOwnRecordings(t *testing.T) {
	for _, c := range []struct{ fixture, sink string }{
		{"vp8-opus.webm", "webm"},
		{"h264-opus.mkv", "mkv"},
		{"h264-opus.mp4", "mp4"},
		{"vp9-opus.mp4", "mp4"},
	} {
		t.Run(c.fixture+"->"+c.sink, func(t *testing.T) {
			in := newTestFile(t, fixture(t, c.fixture), false, 0, false)
			dir := t.TempDir()
			sink, err := sinks.NewFile(sinks.FileConfig{Type: c.sink, Name: "rt", Template: filepath.Join(dir, "rt."+c.sink), Bridge: "rt"})
			if err != nil {
				t.Fatal(err)
			}
			if err := sink.SetTracks(in.Tracks()); err != nil {
				t.Fatal(err)
			}
			d, f, err := in.open()
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			counts := make([]int, len(in.Tracks()))
			wall := time.Now()
			for {
				fr, err := d.next()
				if err == io.EOF {
					break
				}
				if err != nil {
					t.Fatal(err)
				}
				o := in.byIn[fr.track]
				data := append([]byte(nil), in.convert(o, &fr)...)
				err = sink.WriteFrame(&media.Frame{Track: o.track.Index, PTS: fr.pts, Wall: wall.Add(fr.pts), Keyframe: fr.keyframe, Data: data})
				if err != nil {
					t.Fatal(err)
				}
				counts[o.track.Index]++
			}
			if err := sink.Close(); err != nil {
				t.Fatal(err)
			}
			out := filepath.Join(dir, "rt."+c.sink)
			if _, err := os.Stat(out); err != nil {
				t.Fatal(err)
			}
			replay := newTestFile(t, out, false, 0, false)
			if len(replay.Tracks()) != len(in.Tracks()) {
				t.Fatalf("recording has tracks %+v, the fixture %+v", replay.Tracks(), in.Tracks())
			}
			got := make([]int, len(counts))
			err = replay.Run(context.Background(), func(int, *rtp.Packet) error { return nil })
			if !errors.Is(err, io.EOF) {
				t.Fatalf("replay: %v", err)
			}
			// Count the frames the replay read, per track.
			d2, f2, err := replay.open()
			if err != nil {
				t.Fatal(err)
			}
			defer f2.Close()
			for {
				fr, err := d2.next()
				if err == io.EOF {
					break
				}
				if err != nil {
					t.Fatalf("replay: %v", err)
				}
				if o := replay.byIn[fr.track]; o != nil {
					got[o.track.Index]++
				}
			}
			for i := range counts {
				// A sink starts at the first video keyframe and may hold the
				// last audio frame back: allow one frame less.
				if got[i] < counts[i]-1 || got[i] > counts[i] {
					t.Errorf("track %d (%s): %d frames in the recording, %d written", i, in.Tracks()[i].Codec, got[i], counts[i])
				}
			}
			t.Logf("frames written %v, read back %v", counts, got)
		})
	}
}
