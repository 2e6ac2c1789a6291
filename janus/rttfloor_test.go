package janus

import (
	"testing"

	"github.com/pion/rtcp"
)

func TestShortenDLSR(t *testing.T) {
	reports := []rtcp.ReceptionReport{
		{LastSenderReport: 0, Delay: 0}, // no sender report yet: untouched
		{LastSenderReport: 0x12345678, Delay: 1000},
		{LastSenderReport: 0x12345678, Delay: 30}, // less than the bias: 0, never negative
	}
	shortenDLSR(reports)
	if got := []uint32{reports[0].Delay, reports[1].Delay, reports[2].Delay}; got[0] != 0 || got[1] != 1000-dlsrBias || got[2] != 0 {
		t.Errorf("delays after shortenDLSR: %v, want [0 %d 0]", got, 1000-dlsrBias)
	}
}
