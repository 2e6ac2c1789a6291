package rtmpguard

import (
	"errors"
	"os"
	"testing"
)

// capture is a real ffmpeg publish session (the sources package's fuzz seed).
func capture(t *testing.T) []byte {
	t.Helper()
	b, err := os.ReadFile("../../sources/testdata/rtmp-publish.bin")
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestCaptureAccepted: a real session passes, however the reads split it.
func TestCaptureAccepted(t *testing.T) {
	data := capture(t)
	for _, size := range []int{1, 7, 128, 1000, 4096, len(data)} {
		var g Guard
		for b := data; len(b) > 0; {
			n := min(size, len(b))
			if err := g.Check(b[:n]); err != nil {
				t.Fatalf("reads of %d: %v at %d", size, err, len(data)-len(b))
			}
			b = b[n:]
		}
		if g.state != basicHead || g.chunkSize == 128 {
			t.Errorf("reads of %d: ends in state %d, chunk size %d", size, g.state, g.chunkSize)
		}
	}
}

func TestRefusals(t *testing.T) {
	hs := make([]byte, handshakeLen)
	for name, tc := range map[string][]byte{
		"chunk size 0":        {0x02, 0, 0, 0, 0, 0, 4, 1, 0, 0, 0, 0, 0, 0, 0, 0},
		"chunk size 2^31":     {0x02, 0, 0, 0, 0, 0, 4, 1, 0, 0, 0, 0, 0x80, 0, 0, 0},
		"empty message":       {0x03, 0, 0, 0, 0, 0, 0, 20, 0, 0, 0, 0},
		"fmt 3 on a new csid": {0xc5, 1, 2, 3},
		"long string command": {0x03, 0, 0, 0, 0, 0, 20, 20, 0, 0, 0, 0,
			2, 0, 7, 'c', 'o', 'n', 'n', 'e', 'c', 't', 0, 0x3f, 0xf0, 0, 0, 0, 0, 0, 0, 0x0c, 0xff, 0xff, 0xff, 0xff},
		"length changed": append(append([]byte{0x04, 0, 0, 0, 0, 0, 200, 9, 1, 0, 0, 0}, make([]byte, 128)...),
			0x44, 0, 0, 0, 0, 0, 100, 9),
	} {
		var g Guard
		err := g.Check(append(append([]byte(nil), hs...), tc...))
		if !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: %v", name, err)
		}
	}
}
