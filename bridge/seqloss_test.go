package bridge

import "testing"

func TestSeqLoss(t *testing.T) {
	for _, c := range []struct {
		name string
		seqs []uint16
		lost uint64
	}{
		{"none", []uint16{1, 2, 3, 4}, 0},
		{"gap", []uint16{1, 2, 5, 6}, 2},
		{"reordered", []uint16{1, 3, 2, 4}, 0},
		{"a duplicate makes up for a loss, as in RFC 3550", []uint16{1, 2, 2, 4}, 0},
		{"wrap", []uint16{65534, 65535, 1, 2}, 1},
		{"late across a wrap", []uint16{65534, 0, 65535, 1}, 0},
		{"restart keeps earlier loss", []uint16{1, 3, 40000, 40001, 40003}, 2},
		{"first packets lost are not counted", []uint16{100, 101}, 0},
	} {
		t.Run(c.name, func(t *testing.T) {
			var l seqLoss
			for _, s := range c.seqs {
				l.add(s)
			}
			if got := l.lost(); got != c.lost {
				t.Errorf("lost %d, want %d", got, c.lost)
			}
		})
	}
}
