package bench

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os/exec"
	"strings"
	"testing"

	"github.com/janusbridge/janusbridge/internal/janustest"
)

// nftTable is the nftables table of the packet counters (in the test
// network namespace, which the benchmark runs in).
const nftTable = "jbbench"

// counters are nftables counters of the UDP packets entering the network
// namespace: "feed" counts ffmpeg's RTP into the mountpoint, "recv" and
// "reader" the SRTP media packets reaching each side's port range,
// "send" and "publisher" the SRTP media packets each side's port range
// sends to Janus's media ports. The
// kernel counts them, so both sides are counted the same way and neither
// has to be instrumented; the count is taken before the sockets' receive
// buffers (see udpRcvbufErrors for the drops there).
type counters struct{}

// newCounters installs the counters, replacing any left by an earlier run;
// they are removed when the benchmark ends.
func newCounters(b *testing.B, audioPort, videoPort int) *counters {
	b.Helper()
	if _, err := exec.LookPath("nft"); err != nil {
		b.Fatal("nft (nftables) not installed: it counts the packets (run `make deps` as root)")
	}
	// RTP media: version 2 in the top bits of the first byte, and a payload
	// type of 96 or above in the low 7 bits of the second (SRTCP packet
	// types 200-207 read as 72-79 there; STUN starts with 0 or 1).
	media := "@th,64,2 2 @th,73,7 >= 96"
	ruleset := fmt.Sprintf(`table inet %[1]s
delete table inet %[1]s
table inet %[1]s {
	counter feed { }
	counter recv { }
	counter reader { }
	counter send { }
	counter publisher { }
	chain in {
		type filter hook input priority raw; policy accept;
		udp dport { %[2]d, %[3]d } counter name feed
		udp dport %[4]d-%[5]d %[8]s counter name recv
		udp dport %[6]d-%[7]d %[8]s counter name reader
		udp sport %[4]d-%[5]d udp dport %[9]s %[8]s counter name send
		udp sport %[6]d-%[7]d udp dport %[9]s %[8]s counter name publisher
	}
}
`, nftTable, audioPort, videoPort, bridgePortMin, bridgePortMax, readerPortMin, readerPortMax, media, janustest.DefaultRTPPortRange)
	cmd := exec.Command("nft", "-f", "-")
	cmd.Stdin = strings.NewReader(ruleset)
	if out, err := cmd.CombinedOutput(); err != nil {
		b.Fatalf("nft: installing the packet counters: %v: %s", err, out)
	}
	b.Cleanup(func() {
		if out, err := exec.Command("nft", "delete", "table", "inet", nftTable).CombinedOutput(); err != nil {
			b.Logf("nft: removing the packet counters: %v: %s", err, out)
		}
	})
	return &counters{}
}

// read returns the packet count of every counter by name.
func (*counters) read(b *testing.B) map[string]uint64 {
	b.Helper()
	out, err := exec.Command("nft", "-j", "list", "counters", "table", "inet", nftTable).Output()
	if err != nil {
		b.Fatalf("nft: reading the packet counters: %v", err)
	}
	var doc struct {
		Nftables []struct {
			Counter *struct {
				Name    string `json:"name"`
				Packets uint64 `json:"packets"`
			} `json:"counter"`
		} `json:"nftables"`
	}
	if err := json.NewDecoder(bytes.NewReader(out)).Decode(&doc); err != nil {
		b.Fatalf("nft: decoding the packet counters: %v", err)
	}
	c := map[string]uint64{}
	for _, e := range doc.Nftables {
		if e.Counter != nil {
			c[e.Counter.Name] = e.Counter.Packets
		}
	}
	return c
}
