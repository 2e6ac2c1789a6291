package control

import (
	"slices"
	"strings"
	"testing"
	"time"
)

func TestRedactURL(t *testing.T) {
	for in, want := range map[string]string{
		"rtmps://a.rtmp.youtube.com/live2/abcd-1234": "rtmps://a.rtmp.youtube.com/live2/REDACTED",
		"rtmp://user:pw@host/app/key?x=1":            "rtmp://user@host/app/REDACTED",
		"rtmp://host/key":                            "rtmp://host/REDACTED",
	} {
		if got := redactURL(in); got != want {
			t.Errorf("redactURL(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestHistoryRing feeds a series through the ring and reads it back.
func TestHistoryRing(t *testing.T) {
	h := newHistory(time.Second, 3)
	k := trackKey("b", "", 0)
	if last, all := h.get(k, true); last != 0 || all != nil {
		t.Fatalf("empty: %d %v", last, all)
	}
	at := time.Unix(1000, 0)
	// 1000 bytes a second = 8000 bit/s, then 2000, 3000, 4000 bytes/s.
	var total uint64
	record := func(bytes uint64) {
		total += bytes
		h.record([]observation{{k, total}}, at)
		at = at.Add(time.Second)
	}
	record(0)
	record(1000)
	if last, all := h.get(k, true); last != 8000 || !slices.Equal(all, []uint64{8000}) {
		t.Fatalf("one sample: %d %v", last, all)
	}
	record(2000)
	record(3000)
	record(4000)
	last, all := h.get(k, true)
	if last != 32000 || !slices.Equal(all, []uint64{16000, 24000, 32000}) {
		t.Fatalf("wrapped: %d %v", last, all)
	}
	if _, none := h.get(k, false); none != nil {
		t.Errorf("samples without asking: %v", none)
	}
	// A track gone for a whole ring's length is forgotten.
	for range 4 {
		h.record(nil, at)
	}
	if last, _ := h.get(k, false); last != 0 {
		t.Errorf("a gone track kept: %d", last)
	}
}

func TestSparkline(t *testing.T) {
	svg := string(sparkline([]uint64{0, 50, 100}))
	if !strings.Contains(svg, `points="0.0,39.0 120.0,20.0 240.0,1.0"`) {
		t.Errorf("sparkline: %s", svg)
	}
	if svg := string(sparkline(nil)); !strings.Contains(svg, `points=""`) {
		t.Errorf("empty sparkline: %s", svg)
	}
}
