package control_test

import (
	"context"
	"image/png"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/janusbridge/janusbridge/control"
	"github.com/janusbridge/janusbridge/internal/janustest"
)

// chromium runs headless Chromium with args and returns its stdout.
func chromium(t *testing.T, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	base := []string{"--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--disable-dev-shm-usage", "--user-data-dir=" + t.TempDir()}
	cmd := exec.CommandContext(ctx, "chromium", append(base, args...)...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("chromium %v: %v\n%s", args, err, stderr.String())
	}
	return string(out)
}

// TestStatusPage loads the status page of a recording bridge in headless
// Chromium: the DOM it built shows the bridge, its state, its tracks with
// a bitrate chart and its sink's current file; a screenshot is not blank.
func TestStatusPage(t *testing.T) {
	janustest.RequireTools(t, "chromium")
	e := startEnv(t)
	d := startDaemon(t, parse(t, e.header()+e.webmBridge("cam", "{bridge}.webm")))
	const token = "page-token"
	base := startServer(t, control.Options{Daemon: d, Token: token, SampleEvery: 250 * time.Millisecond})
	c := client{t: t, base: base, token: token}
	waitFor(t, 20*time.Second, "a bitrate history and the file open", func() bool {
		code, b := c.do("GET", "/api/v1/bridges/cam?history=1", "")
		return code == http.StatusOK && strings.Count(string(b), `"history"`) == 2 &&
			regexp.MustCompile(`"history": \[\s*\d+,\s*\d+,\s*\d+,\s*\d+`).Match(b) &&
			strings.Contains(string(b), filepath.Join(e.dir, "cam.webm"))
	})
	url := base + "/?token=" + token

	dom := chromium(t, "--dump-dom", url)
	for _, want := range []string{
		`<title>janusbridge</title>`,
		`id="ready" class="ready-true"`,
		`id="bridge-cam" data-state="up"`,
		`class="state state-up">up</span>`,
		`data-sink="archive"`,
		filepath.Join(e.dir, "cam.webm"),
	} {
		if !strings.Contains(dom, want) {
			t.Errorf("DOM has no %q", want)
		}
	}
	if n := strings.Count(dom, `class="track"`); n != 2 {
		t.Errorf("%d track rows, want 2", n)
	}
	// Each track's chart has a line of several points, and a bitrate.
	charts := regexp.MustCompile(`<polyline points="([^"]*)"`).FindAllStringSubmatch(dom, -1)
	if len(charts) != 2 {
		t.Fatalf("%d charts, want 2", len(charts))
	}
	for _, ch := range charts {
		if pts := strings.Fields(ch[1]); len(pts) < 3 {
			t.Errorf("chart with %d points", len(pts))
		}
	}
	if !regexp.MustCompile(`class="bitrate">\d+(\.\d+)? (kbit|Mbit)/s<`).MatchString(dom) {
		t.Errorf("no bitrate in the DOM")
	}

	dir := t.TempDir()
	if d := os.Getenv("JB_KEEP_DIR"); d != "" { // to look at the page
		dir = d
	}
	shot := filepath.Join(dir, "page.png")
	chromium(t, "--screenshot="+shot, "--window-size=1200,700", "--hide-scrollbars", url)
	f, err := os.Open(shot)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatal(err)
	}
	colours := map[[3]uint32]int{}
	b := img.Bounds()
	for y := b.Min.Y; y < b.Max.Y; y += 2 {
		for x := b.Min.X; x < b.Max.X; x += 2 {
			r, g, bl, _ := img.At(x, y).RGBA()
			colours[[3]uint32{r >> 8, g >> 8, bl >> 8}]++
		}
	}
	// Text, the state badges and the chart lines give many colours; a
	// blank or error page has one or a few.
	if len(colours) < 20 {
		t.Errorf("screenshot %dx%d has %d colours: blank?", b.Dx(), b.Dy(), len(colours))
	}
	// The state badge's green is there.
	if colours[[3]uint32{0x1f, 0x9d, 0x55}] == 0 {
		t.Error("screenshot has no pixel of the up badge's colour #1f9d55")
	}
	t.Logf("screenshot %dx%d, %d colours", b.Dx(), b.Dy(), len(colours))
}
