package janustest

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// recordingTB records Skipf/Fatalf instead of ending the test.
type recordingTB struct {
	testing.TB
	skipped, failed string
}

func (r *recordingTB) Helper()                        {}
func (r *recordingTB) Skipf(format string, a ...any)  { r.skipped = fmt.Sprintf(format, a...) }
func (r *recordingTB) Fatalf(format string, a ...any) { r.failed = fmt.Sprintf(format, a...) }

func TestUnusableSkipsOrFailsInCI(t *testing.T) {
	t.Setenv("CI", "")
	r := &recordingTB{TB: t}
	unusable(r, "no %s", "janus")
	if r.skipped == "" || r.failed != "" {
		t.Errorf("outside CI: skipped=%q failed=%q, want a skip", r.skipped, r.failed)
	}

	t.Setenv("CI", "true")
	r = &recordingTB{TB: t}
	unusable(r, "no %s", "janus")
	if r.failed == "" || r.skipped != "" {
		t.Errorf("CI=true: skipped=%q failed=%q, want a failure", r.skipped, r.failed)
	}
}

func TestFeedArgs(t *testing.T) {
	args, err := feedArgs(FeedOptions{VideoCodec: "h264", VideoPort: 20000, AudioPort: 20002, Duration: 1500 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	cmd := strings.Join(args, " ")
	for _, want := range []string{
		"-map 0:v -t 1.500 -c:v libx264", "-profile:v baseline", "-g 25 -keyint_min 25",
		"-payload_type 96 -f rtp rtp://127.0.0.1:20000?pkt_size=1200",
		"-map 1:a -t 1.500 -c:a libopus", "-payload_type 111 -f rtp rtp://127.0.0.1:20002?pkt_size=1200",
	} {
		if !strings.Contains(cmd, want) {
			t.Errorf("ffmpeg args lack %q:\n%s", want, cmd)
		}
	}
	if _, err := feedArgs(FeedOptions{VideoCodec: "av1", VideoPort: 20000}); err == nil {
		t.Error("av1 accepted")
	}
	if _, err := feedArgs(FeedOptions{}); err == nil {
		t.Error("a feed without ports accepted")
	}
}

// TestFeedDuration runs a short real feed (needs only ffmpeg) and checks that it ends by itself.
func TestFeedDuration(t *testing.T) {
	if _, err := exec.LookPath("ffmpeg"); err != nil {
		unusable(t, "ffmpeg not installed")
	}
	ports := FreeUDPPorts(t, 2)
	f := StartFeed(t, FeedOptions{AudioPort: ports[0], VideoPort: ports[1], Width: 160, Height: 120, Duration: 500 * time.Millisecond})
	select {
	case <-f.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("feed still running 10 s after a 0.5 s Duration")
	}
	if f.Err() != nil {
		t.Errorf("feed ended with %v; stderr:\n%s", f.Err(), f.Stderr())
	}
	sdp, err := os.ReadFile(f.SDPPath())
	if err != nil || !strings.Contains(string(sdp), "VP8/90000") || !strings.Contains(string(sdp), "opus/48000/2") {
		t.Errorf("feed SDP (%v):\n%s", err, sdp)
	}
}

// TestReservePortAcrossProcesses holds a port's lock file the way another test binary would
// (flock on a file description of its own): FreeUDPPorts must not hand that port out, and a
// port it hands out must be locked against the others.
func TestReservePortAcrossProcesses(t *testing.T) {
	if err := os.MkdirAll(portLockDir, 0o777); err != nil {
		t.Fatal(err)
	}
	lock := func(key string) (*os.File, bool) {
		t.Helper()
		f, err := os.OpenFile(filepath.Join(portLockDir, strings.ReplaceAll(key, "/", "-")+".lock"), os.O_RDWR|os.O_CREATE, 0o666)
		if err != nil {
			t.Fatal(err)
		}
		if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
			f.Close()
			return nil, false
		}
		return f, true
	}
	// The first even port of FreeUDPPorts's range that no test binary running now holds.
	var f *os.File
	other := 20000
	for ; other < 20200; other += 2 {
		var ok bool
		if f, ok = lock("udp/" + strconv.Itoa(other)); ok {
			break
		}
	}
	if f == nil {
		t.Fatal("ports 20000-20198 all held by test binaries running now")
	}
	defer f.Close()
	if fresh, err := reservePort("udp/" + strconv.Itoa(other)); err != nil || fresh {
		t.Fatalf("reservePort of a port another process holds: fresh=%v err=%v", fresh, err)
	}
	for _, p := range FreeUDPPorts(t, 20) {
		if p == other {
			t.Fatalf("FreeUDPPorts handed out %d, held by another process", p)
		}
		if g, ok := lock("udp/" + strconv.Itoa(p)); ok {
			g.Close()
			t.Fatalf("port %d handed out without its lock held", p)
		}
	}
	p := FreePort(t)
	if g, ok := lock("tcp/" + strconv.Itoa(p)); ok {
		g.Close()
		t.Fatalf("TCP port %d handed out without its lock held", p)
	}
}
