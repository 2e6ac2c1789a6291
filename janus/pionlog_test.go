package janus

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
)

// TestPionWarningLevels: pion's warnings reach the log as warnings, but for
// those every PeerConnection prints in normal operation, which are debug.
func TestPionWarningLevels(t *testing.T) {
	var buf bytes.Buffer
	l := slogLoggerFactory{slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))}.NewLogger("pc")
	cases := []struct {
		log  func()
		want string
	}{
		{func() { l.Warnf("Failed to accept RTP %v", "stream is already closed") }, "level=DEBUG"},
		{func() { l.Warn("Failed to ping without candidate pairs. Connection is not possible yet.") }, "level=DEBUG"},
		{func() { l.Warnf("undeclaredMediaProcessor failed to open SrtpSession: %v", "boom") }, "level=WARN"},
		{func() { l.Warn("Failed to open RTCP stream") }, "level=WARN"},
	}
	for _, c := range cases {
		buf.Reset()
		c.log()
		if line := buf.String(); !strings.Contains(line, c.want) || !strings.Contains(line, "pion=pc") {
			t.Errorf("logged %q, want %s with pion=pc", strings.TrimSpace(line), c.want)
		}
	}
}
