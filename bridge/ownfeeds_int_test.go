package bridge_test

import (
	"fmt"
	"path/filepath"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/janusbridge/janusbridge/bridge"
	"github.com/janusbridge/janusbridge/internal/janustest"
	"github.com/janusbridge/janusbridge/janus"
)

// TestFollowAllSkipsOwnFeeds records a room with two publishers, one of
// them registered as this daemon's own: a bridge with feeds = "all" must
// record only the other, one with include_own = true both.
func TestFollowAllSkipsOwnFeeds(t *testing.T) {
	j := janustest.StartJanus(t, janustest.Options{
		Plugins:   []string{"videoroom"},
		VideoRoom: janustest.VideoRoomConfig(1234, "vp8"),
	})
	pub := func(display string) *janustest.Publisher {
		return janustest.StartPublisher(t, janustest.PublisherOptions{Server: j.WSURL(), Room: 1234, Display: display, NoAudio: true})
	}
	alice, ours := pub("alice"), pub("ours")
	own := func(o *bridge.OwnFeeds) { o.Add(janus.NumID(1234), janus.NumID(ours.ID())) }
	cfg := func(name, includeOwn, dir string) string {
		return fmt.Sprintf(`
[janus]
servers = [%q]
[webrtc]
loopback_candidates = true
[[bridge]]
name = %q
plugin = "videoroom"
room = 1234
feeds = "all"
%s
  [[bridge.sink]]
  type = "mkv"
  path = "%s/{feed}.mkv"
`, j.WSURL(), name, includeOwn, dir)
	}
	skipDir, allDir := t.TempDir(), t.TempDir()
	skip := startBridge(t, cfg("skip", "", skipDir), own)
	all := startBridge(t, cfg("all", "include_own = true", allDir), own)

	feeds := func(rb *runningBridge) []string {
		var ids []string
		for _, tr := range rb.B.Stats().Tracks {
			if !slices.Contains(ids, tr.Feed) {
				ids = append(ids, tr.Feed)
			}
		}
		slices.Sort(ids)
		return ids
	}
	aliceID, ourID := strconv.FormatUint(alice.ID(), 10), strconv.FormatUint(ours.ID(), 10)
	both := []string{aliceID, ourID}
	slices.Sort(both)
	waitUntil(t, "include_own bridge records both publishers", 20*time.Second, func() bool { return slices.Equal(feeds(all), both) })
	waitUntil(t, "bridge records alice", 20*time.Second, func() bool { return slices.Contains(feeds(skip), aliceID) })
	// A file opens at the first keyframe that reaches its sink: seconds on
	// a loaded machine.
	waitFile(t, filepath.Join(allDir, aliceID+".mkv"), 30*time.Second)
	waitFile(t, filepath.Join(allDir, ourID+".mkv"), 30*time.Second)
	waitFile(t, filepath.Join(skipDir, aliceID+".mkv"), 30*time.Second)
	// The skipping bridge has seen the same room for a while: two follow
	// polls later it still has not subscribed to our own publisher (a
	// wait for something that must not happen: a sleep).
	time.Sleep(5 * time.Second)
	if got := feeds(skip); !slices.Equal(got, []string{aliceID}) {
		t.Errorf("feeds = \"all\" records feeds %v, want only alice's %s (ours is %s)", got, aliceID, ourID)
	}
	skip.stop(t)
	all.stop(t)
	for dir, want := range map[string][]string{skipDir: {aliceID}, allDir: both} {
		files, _ := filepath.Glob(filepath.Join(dir, "*.mkv"))
		var got []string
		for _, f := range files {
			got = append(got, filepath.Base(f[:len(f)-len(".mkv")]))
		}
		slices.Sort(got)
		if !slices.Equal(got, want) {
			t.Errorf("%s: files of feeds %v, want %v", dir, got, want)
		}
	}
}
