package control

import (
	_ "embed"
	"fmt"
	"html/template"
	"net/http"
	"strings"
	"time"
)

//go:embed page.html
var pageHTML string

var pageTmpl = template.Must(template.New("page").Funcs(template.FuncMap{
	"bitrate":   formatBitrate,
	"bytes":     formatBytes,
	"sparkline": sparkline,
	"ago": func(t time.Time) string {
		return time.Since(t).Truncate(time.Second).String()
	},
}).Parse(pageHTML))

// pageData is what the status page shows.
type pageData struct {
	Ready   Ready
	Server  string
	Bridges []Bridge
	Now     time.Time
	Every   time.Duration
	Span    time.Duration
}

// page renders the status page: every bridge with its state, tracks (with
// a chart of their bitrate over the kept samples) and sinks. It is one
// self-contained HTML document (inline CSS and SVG, no script, no external
// assets) that refreshes itself (reloading its own URL, ?token= included).
func (s *Server) page(w http.ResponseWriter, r *http.Request) {
	d := s.opts.Daemon
	data := pageData{Ready: s.ready(), Server: d.JanusServer(), Now: time.Now(), Every: s.opts.SampleEvery,
		Span: s.opts.SampleEvery * time.Duration(s.opts.HistoryLen)}
	for _, b := range d.Bridges() {
		data.Bridges = append(data.Bridges, s.view(b, true))
	}
	var sb strings.Builder
	if err := pageTmpl.Execute(&sb, data); err != nil {
		s.fail(w, r, http.StatusInternalServerError, fmt.Errorf("status page: %w", err))
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; img-src data:")
	w.Write([]byte(sb.String()))
}

// sparkline draws samples (bit/s) as an inline SVG polyline scaled to its
// maximum.
func sparkline(samples []uint64) template.HTML {
	const w, h = 240, 40
	var peak uint64
	for _, v := range samples {
		peak = max(peak, v)
	}
	var pts strings.Builder
	n := len(samples)
	for i, v := range samples {
		x := float64(w)
		if n > 1 {
			x = float64(i) * w / float64(n-1)
		}
		y := float64(h - 1)
		if peak > 0 {
			y = float64(h-1) - float64(v)*float64(h-2)/float64(peak)
		}
		fmt.Fprintf(&pts, "%.1f,%.1f ", x, y)
	}
	return template.HTML(fmt.Sprintf( // numbers only: nothing to escape
		`<svg class="chart" width="%d" height="%d" viewBox="0 0 %d %d" role="img" aria-label="bitrate, peak %s">`+
			`<rect width="%d" height="%d" class="bg"/><polyline points="%s" class="line"/></svg>`,
		w, h, w, h, formatBitrate(peak), w, h, strings.TrimSpace(pts.String())))
}

func formatBitrate(bps uint64) string {
	switch {
	case bps >= 1e6:
		return fmt.Sprintf("%.2f Mbit/s", float64(bps)/1e6)
	case bps >= 1e3:
		return fmt.Sprintf("%.0f kbit/s", float64(bps)/1e3)
	}
	return fmt.Sprintf("%d bit/s", bps)
}

func formatBytes(n uint64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.2f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}
