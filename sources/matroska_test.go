package sources

import (
	"fmt"
	"testing"
)

// TestMatroskaLacing splits blocks of three frames (3, 5 and 2 bytes, or
// 4 each for fixed lacing) in each lacing mode, and refuses broken ones.
func TestMatroskaLacing(t *testing.T) {
	data := []byte("aaabbbbbcc")
	fixed := []byte("aaaabbbbcccc")
	for _, c := range []struct {
		name string
		mode byte
		in   []byte
		want string
	}{
		{"xiph", 1, append([]byte{2, 3, 5}, data...), "[aaa bbbbb cc]"},
		{"fixed", 2, append([]byte{2}, fixed...), "[aaaa bbbb cccc]"},
		{"ebml", 3, append([]byte{2, 0x83, 0xc1}, data...), "[aaa bbbbb cc]"}, // 3, then +2 (signed, bias 63)
		{"xiph long size", 1, append([]byte{1, 255, 0}, make([]byte, 256)...), "[255 1]"},
	} {
		frames, err := mkvLaces(nil, c.in, c.mode)
		if err != nil {
			t.Errorf("%s: %v", c.name, err)
			continue
		}
		got := fmt.Sprintf("%s", frames)
		if c.name == "xiph long size" {
			got = fmt.Sprint([]int{len(frames[0]), len(frames[1])})
		}
		if got != c.want {
			t.Errorf("%s: %s, want %s", c.name, got, c.want)
		}
	}
	for _, c := range []struct {
		name string
		mode byte
		in   []byte
	}{
		{"empty", 1, nil},
		{"xiph size past the end", 1, []byte{1, 200, 1, 2}},
		{"fixed not dividing", 2, []byte{2, 1, 2, 3, 4}},
		{"ebml size past the end", 3, []byte{1, 0x90, 1}},
		{"ebml negative size", 3, []byte{2, 0x81, 0x80, 1, 2}},
	} {
		if frames, err := mkvLaces(nil, c.in, c.mode); err == nil {
			t.Errorf("%s: %q, want an error", c.name, frames)
		}
	}
}
