package bridge_test

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/janusbridge/janusbridge/bridge"
	"github.com/janusbridge/janusbridge/internal/janustest"
)

// dropUDPIn makes the kernel drop percent% of the UDP packets arriving on
// ports (e.g. "40000-40999", the bridge's ICE ports), in an nftables table
// of its own, deleted with the test.
func dropUDPIn(t *testing.T, ports string, percent int) {
	t.Helper()
	table := fmt.Sprintf("jbnack%08x", rand.Uint32())
	nft := func(args ...string) {
		t.Helper()
		if out, err := exec.Command("nft", args...).CombinedOutput(); err != nil {
			t.Fatalf("nft %s: %v: %s", strings.Join(args, " "), err, out)
		}
	}
	nft("add", "table", "inet", table)
	t.Cleanup(func() {
		if out, err := exec.Command("nft", "delete", "table", "inet", table).CombinedOutput(); err != nil {
			t.Errorf("nft delete table inet %s: %v: %s", table, err, out)
		}
	})
	nft("add", "chain", "inet", table, "in", "{ type filter hook input priority 0; }")
	nft("add", "rule", "inet", table, "in", "udp", "dport", ports, "numgen", "random", "mod", "100", "<", fmt.Sprint(percent), "drop")
}

// janusNACKsIn asks Janus's Admin API how many NACKed packets a handle's
// PeerConnection received, by mid (handle_info, webrtc.media.<mid>.stats.in.nacks).
func janusNACKsIn(t *testing.T, j *janustest.Janus, session, handle uint64) map[string]uint64 {
	t.Helper()
	resp := j.AdminRequest(t, map[string]any{"janus": "handle_info", "session_id": session, "handle_id": handle})
	raw, _ := json.Marshal(resp)
	var info struct {
		Info struct {
			WebRTC struct {
				Media map[string]struct {
					Stats struct {
						In struct {
							NACKs uint64 `json:"nacks"`
						} `json:"in"`
					} `json:"stats"`
				} `json:"media"`
			} `json:"webrtc"`
		} `json:"info"`
	}
	if err := json.Unmarshal(raw, &info); err != nil || len(info.Info.WebRTC.Media) == 0 {
		t.Fatalf("Janus handle_info: no media statistics (%v) in %.2000s", err, raw)
	}
	out := map[string]uint64{}
	for mid, m := range info.Info.WebRTC.Media {
		out[mid] = m.Stats.In.NACKs
	}
	return out
}

// TestNACKCounter watches a VP8+Opus mountpoint while the kernel drops 5%
// of the packets arriving on the bridge's ICE ports. The NACKs the bridge
// sends must show in its video track's counter and agree with the count of
// NACKed packets Janus received; the audio track has no NACKs (none
// negotiated); the video track counts the keyframe requests of its
// keyframe_interval.
func TestNACKCounter(t *testing.T) {
	janustest.RequireTools(t, "nft")
	ports := janustest.FreeUDPPorts(t, 2)
	j := janustest.StartJanus(t, janustest.Options{
		Plugins:   []string{"streaming"},
		Admin:     true,
		Streaming: janustest.MountpointConfig(1, "vp8", ports[0], ports[1]),
	})
	janustest.StartFeed(t, janustest.FeedOptions{VideoCodec: "vp8", AudioPort: ports[0], VideoPort: ports[1]})
	dropUDPIn(t, "40000-40999", 5)
	rb := startBridge(t, fmt.Sprintf(`
[janus]
servers = [%q]
[webrtc]
udp_port_min = 40000
udp_port_max = 40999
loopback_candidates = true
[[bridge]]
name = "nacks"
plugin = "streaming"
mountpoint = 1
keyframe_interval = "1s"
  [[bridge.sink]]
  type = "webm"
  path = "%s/{bridge}.webm"
`, j.WSURL(), t.TempDir()), nil)

	video := func() bridge.TrackSnapshot {
		for _, tr := range rb.B.Stats().Tracks {
			if tr.Kind == "video" {
				return tr
			}
		}
		return bridge.TrackSnapshot{}
	}
	// About 100 video packets a second, 5 of them dropped: NACKs within
	// seconds.
	waitUntil(t, "video NACKs counted", 20*time.Second, func() bool { return video().NACKs >= 20 })
	waitUntil(t, "video PLIs counted", 10*time.Second, func() bool { return video().PLIs >= 1 })
	st := rb.B.Status()
	before := video()
	atJanus := janusNACKsIn(t, j, st.SessionID, st.HandleID)
	after := video()
	t.Logf("bridge counted %d..%d NACKed video packets (%d packets read, %d lost, %d PLIs); Janus received %d",
		before.NACKs, after.NACKs, after.Packets, after.Lost, after.PLIs, atJanus[after.MID])
	// Each NACK is counted just before it is written: Janus has at most
	// what the bridge counted after asking, and at least what it counted
	// before, but for NACKs still on their way.
	if got := atJanus[after.MID]; got > after.NACKs || float64(got) < 0.9*float64(before.NACKs)-5 {
		t.Errorf("Janus received %d NACKed video packets; the bridge counted %d before asking, %d after", got, before.NACKs, after.NACKs)
	}
	for _, tr := range rb.B.Stats().Tracks {
		if tr.Kind == "audio" && tr.NACKs != 0 {
			t.Errorf("audio track: %d NACKs counted, but none are negotiated for audio", tr.NACKs)
		}
	}
}
