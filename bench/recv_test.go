package bench

import (
	"cmp"
	"context"
	"encoding/binary"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/pion/ice/v4"
	"github.com/pion/interceptor"
	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"
	"github.com/pion/webrtc/v4/pkg/media/ivfwriter"
	"github.com/pion/webrtc/v4/pkg/media/oggwriter"

	"github.com/janusbridge/janusbridge/bridge"
	"github.com/janusbridge/janusbridge/config"
	"github.com/janusbridge/janusbridge/internal/janustest"
	"github.com/janusbridge/janusbridge/janus"
)

// Knobs of `make bench`, from the environment (the Makefile passes them on).
//
//	JB_BENCH_STREAMS  viewer counts, comma-separated (default 1,10,100,200,500)
//	JB_BENCH_WINDOW   measured window per round (default 15s)
//	JB_BENCH_WARMUP   wait after every stream flows, before the window (default 3s)
//	JB_BENCH_ROUNDS   rounds per side and viewer count (default 2; 1 from
//	                  bigRounds viewers on, see JB_BENCH_BIG_ROUNDS)
//	JB_BENCH_BIG_ROUNDS rounds per side at bigStreams viewers or more (default 1)
//	JB_BENCH_FEED     clip (default: a pre-encoded clip looped) or live (see startFeed)
//	JB_BENCH_PROFILE  a directory: write CPU and heap profiles of every round there
const (
	defaultStreams   = "1,10,100,200,500"
	defaultWindow    = 15 * time.Second
	defaultWarmup    = 3 * time.Second
	defaultRounds    = 2
	defaultBigRounds = 1
	// bigStreams is the viewer count from which JB_BENCH_BIG_ROUNDS applies:
	// starting and stopping hundreds of PeerConnections on 2 cores takes
	// minutes, and one round per side keeps `make bench` under 25 minutes.
	bigStreams = 200
)

// The local UDP ports of each side's PeerConnections, so that the packets
// they receive (or send) can be counted by the kernel (nftables) the same
// way for both: 5000 each, as each PeerConnection gathers on every
// interface of the namespace (lo and v0, IPv4 and IPv6: several sockets),
// and 500 of them must fit.
const (
	bridgePortMin, bridgePortMax = 40000, 44999
	readerPortMin, readerPortMax = 45000, 49999
)

const mountpointID = 1

// flowShare is the share of the expected packet rate (viewers × feed rate)
// that must reach the viewers' sockets before the warm-up starts.
const flowShare = 0.95

// BenchmarkRecv is the "recv" load scenario of TESTING.md: N viewers of one
// ffmpeg-fed VP8+Opus mountpoint (640x360, 25 fps, 800 kbit/s + Opus
// 64 kbit/s, about 150 RTP packets/s; see startFeed), for janusbridge
// (sub-benchmarks recv/streams=N: a bridge.Daemon with N recv bridges
// writing WebM) and for a plain pion reader (reader/streams=N), one after
// the other, never at the same time. b.N is ignored: each round runs for a
// fixed window after a warm-up (run with -benchtime 1x).
//
// The machine is shared and noisy, so for each N the two sides alternate
// in rounds, A B B A (A B B A A B B A for 4 rounds...), which cancels a
// linear drift of the conditions; each round reports its figures as
// benchmark metrics, and after the rounds of an N one line per side gives
// the pooled figures, in the format of TESTING.md, e.g.
//
//	recv streams=100 pps=11074 cpu_us_per_pkt=7.9 rss_mib_per_stream=0.31 loss=0.000 delivered=1.000 sink_drops=0 unrecovered=0.0000
//	reader streams=100 pps=11002 cpu_us_per_pkt=34.0 rss_mib_per_stream=0.74 loss=0.000 delivered=1.000 sink_drops=0 unrecovered=0.0000
//	ratio streams=100 cpu_us_per_pkt=0.23 rss_mib_per_stream=0.42
//
// How the figures are made, identically for both sides:
//   - pps: RTP packets per second that reached the viewers' UDP sockets
//     during the window, summed over all viewers, counted by an nftables
//     counter on the side's local port range (an RTP version byte, then a
//     payload type >= 96: SRTP media only, not SRTCP nor STUN), minus the
//     network namespace's UDP receive-buffer drops in the window;
//   - cpu_us_per_pkt: user+system CPU time of this process in the window
//     (getrusage RUSAGE_SELF; Janus and ffmpeg are other processes) per
//     packet counted above;
//   - rss_mib_per_stream: VmRSS at the end of the window minus VmRSS before
//     the viewers started (after a GC that returns freed memory), over N;
//   - loss: the UDP datagrams the kernel dropped at a full socket receive
//     buffer in the window (/proc/net/snmp RcvbufErrors: the process did
//     not read fast enough), plus the packets of the frames the bridge's
//     sinks dropped at a full queue (sink_drops, frames; counted as one
//     packet each, a lower bound), over the expected packets, N × the RTP
//     packets ffmpeg sent to the mountpoint in the window (another nftables
//     counter). The kernel's drops are counted before NACK recovery, so they
//     say whether the process kept up, not what the files lack; the drops
//     are the namespace's, Janus's sockets included;
//   - delivered: the packets counted at the viewers' sockets over the
//     expected ones: below 1 when Janus did not relay everything (at
//     hundreds of viewers on 2 cores, Janus saturates first). Janus's relay
//     delay at the two ends of the window blurs it by tens of milliseconds
//     of traffic;
//   - sink_drops: frames the bridge's sinks dropped at a full queue (from
//     the bridges' Stats; 0 for the reader, which has no queue);
//   - unrecovered: packets missing for good over the packets the side saw:
//     for the bridge, what its framer declared lost after NACKs; for the
//     reader, the gaps in the sequence numbers it read.
//
// Pooled over rounds: pps and cpu_us_per_pkt are total packets over total
// time and total CPU over total packets, rss_mib_per_stream the mean, the
// ratios from the totals.
func BenchmarkRecv(b *testing.B) {
	streams := envStreams(b)
	window := envDuration(b, "JB_BENCH_WINDOW", defaultWindow)
	warmup := envDuration(b, "JB_BENCH_WARMUP", defaultWarmup)
	rounds := envInt(b, "JB_BENCH_ROUNDS", defaultRounds)
	bigRounds := envInt(b, "JB_BENCH_BIG_ROUNDS", defaultBigRounds)
	if os.Getenv("JB_BENCH_PROFILE") != "" {
		runtime.MemProfileRate = 4096 // a heap profile of every 4 KiB allocated
	}
	raiseFileLimit(b)

	ports := janustest.FreeUDPPorts(b, 2)
	j := janustest.StartJanus(b, janustest.Options{
		Plugins:    []string{"streaming"},
		Streaming:  janustest.MountpointConfig(mountpointID, "vp8", ports[0], ports[1]),
		DebugLevel: 3, // warnings: no log line per viewer event
	})
	nft := newCounters(b, ports[0], ports[1])
	feedKind := startFeed(b, ports[0], ports[1])
	feedPPS := waitFeed(b, nft)
	// On stdout: the parent of sub-benchmarks prints no log of its own.
	fmt.Printf("feed: %s, %.0f RTP packets/s into the mountpoint; %d rounds (%d from %d viewers on) of %v after %v of warm-up per side and N; %d CPUs (%s)\n",
		feedKind, feedPPS, rounds, bigRounds, bigStreams, window, warmup, runtime.NumCPU(), cpuModel())

	sides := [2]side{
		{name: "recv", counter: "recv", start: startBridges},
		{name: "reader", counter: "reader", start: func(b *testing.B, j *janustest.Janus, n int, dir string) (viewers, error) {
			return startReaders(j, n, func(i int) trackReader { return fileTrack(filepath.Join(dir, fmt.Sprintf("v%03d", i))) })
		}},
	}
	for _, n := range streams {
		r := rounds
		if n >= bigStreams {
			r = bigRounds
		}
		runRounds(b, j, nft, sides, n, r, window, warmup, feedExpect)
	}
}

// feedExpect is the packets one viewer of the mountpoint should receive
// between two readings of the counters: what ffmpeg sent into it.
func feedExpect(prev, cur map[string]uint64, _ time.Duration) float64 {
	return float64(cur["feed"] - prev["feed"])
}

// runRounds measures the two sides of a scenario with n streams in rounds,
// alternating A B B A..., and prints the pooled line of each side and their
// ratio.
func runRounds(b *testing.B, j *janustest.Janus, nft *counters, sides [2]side, n, rounds int, window, warmup time.Duration, expect expectFunc) [2]result {
	var pooled [2]pool
	for r := range rounds {
		order := []int{0, 1}
		if r%2 == 1 {
			order = []int{1, 0}
		}
		for _, i := range order {
			s := sides[i]
			if !j.Running() {
				// Janus 1.1.2's Streaming relay thread has died (SIGSEGV in
				// glib) at 500 viewers: say so, and go on with a new one.
				fmt.Printf("WARNING: Janus is not running (it died in the previous round; dmesg may show why); restarting it for %s streams=%d. Log tail:\n%s\n", s.name, n, j.LogTail(5))
				j.Restart(b)
			}
			b.Run(fmt.Sprintf("%s/streams=%d", s.name, n), func(b *testing.B) {
				res := measure(b, j, nft, s, n, window, warmup, expect)
				res.report(b)
				b.Logf("round %d: %s", r+1, res.line())
				pooled[i].add(res)
			})
		}
	}
	var lines [2]result
	if pooled[0].rounds == 0 || pooled[1].rounds == 0 {
		return lines // a side failed: its sub-benchmark says why
	}
	for i := range sides {
		lines[i] = pooled[i].result()
		fmt.Println(lines[i].line())
	}
	if lines[1].cpuPerPkt() > 0 && lines[1].rssPerStream() > 0 {
		fmt.Printf("ratio %sstreams=%d cpu_us_per_pkt=%.2f rss_mib_per_stream=%.2f\n", sides[0].ratioTag, n,
			lines[0].cpuPerPkt()/lines[1].cpuPerPkt(), lines[0].rssPerStream()/lines[1].rssPerStream())
	}
	return lines
}

// expectFunc returns the packets one stream should carry between two
// readings of the counters, dt apart.
type expectFunc func(prev, cur map[string]uint64, dt time.Duration) float64

// side is one of the two things measured in a scenario.
type side struct {
	name     string // "recv" (janusbridge) or "reader" (plain pion), "forward"...
	counter  string // the nftables counter of its packets
	ratioTag string // the scenario's tag on the ratio line ("" for recv, "forward " ...)
	start    func(b *testing.B, j *janustest.Janus, n int, dir string) (viewers, error)
	// cpuExcluded, if set, is CPU time spent in this process by the
	// benchmark's own instruments (the forward scenario's receivers), the
	// same for both sides, taken off the side's CPU.
	cpuExcluded func() time.Duration
	// extra, if set, adds the scenario's own figures to the round's result
	// between the two snapshots (latency).
	extra func(r *result)
	// window, if set, is called when the measured window opens and closes.
	window func(open bool)
	// sendOnly marks a send scenario: no receive-side figures.
	sendOnly bool
}

// viewers are N running streams of one side.
type viewers interface {
	// Stop stops every stream and waits until they are gone.
	Stop() error
	// Notes says what went wrong meanwhile (reconnects, warnings), if anything.
	Notes() string
}

// selfCounter is a side that counts its packets itself (the reader), to
// check the kernel's count against.
type selfCounter interface {
	// Counts returns the RTP packets read so far and the packets expected by
	// the sequence numbers (highest extended sequence number seen, summed).
	Counts() (read, highest uint64)
}

// bridgeCounter is the janusbridge side: the bridges' own counters.
type bridgeCounter interface {
	// BridgeCounts returns every bridge's Stats summed, by bridge name.
	BridgeCounts() map[string]bridgeCounts
}

// bridgeCounts are sums over a bridge's Stats.
type bridgeCounts struct {
	tracks    int    // tracks of its outputs (0: none, e.g. while reconnecting)
	packets   uint64 // RTP packets the tracks read (retransmissions included) or sent
	lost      uint64 // packets the framers declared lost for good
	sinkDrops uint64 // frames the sinks' queues dropped
	sinkErrs  uint64 // sink errors (failed writes, packets an rtp sink could not send)
}

// snapshot is the state of the counters at one instant.
type snapshot struct {
	at            time.Time
	cpu           time.Duration
	excluded      time.Duration // the benchmark's own instruments' CPU
	counters      map[string]uint64
	feed, packets uint64 // nftables
	others        uint64 // nftables: the other sides' counters
	rcvbufErrors  uint64
	selfRead      uint64
	selfHighest   uint64
	bridge        map[string]bridgeCounts
	janusCPU      time.Duration
	busy, total   time.Duration // the machine's CPUs, all of them (/proc/stat)
}

// take reads the counters. The side's own counters (the bridges' Stats
// take a while at hundreds of bridges) are read outside the instants of the
// kernel's and CPU counters: before them when the window opens, after them
// when it closes, so that the window's CPU and packets are measured over
// the same span and the side's own losses over a span that covers it.
func take(b *testing.B, nft *counters, j *janustest.Janus, s side, v viewers, opening bool) snapshot {
	b.Helper()
	var own snapshot
	if opening {
		own = takeOwn(v)
	}
	c := nft.read(b)
	snap := snapshot{at: time.Now(), cpu: cpuTime(b), counters: c, feed: c["feed"], packets: c[s.counter], rcvbufErrors: udpRcvbufErrors(b)}
	if s.cpuExcluded != nil {
		snap.excluded = s.cpuExcluded()
	}
	snap.janusCPU = processCPU(j.PID())
	snap.busy, snap.total = machineCPU()
	for name, n := range c {
		if name != "feed" && name != s.counter {
			snap.others += n
		}
	}
	if !opening {
		own = takeOwn(v)
	}
	snap.selfRead, snap.selfHighest, snap.bridge = own.selfRead, own.selfHighest, own.bridge
	return snap
}

// takeOwn reads the side's own counters.
func takeOwn(v viewers) snapshot {
	var own snapshot
	if sc, ok := v.(selfCounter); ok {
		own.selfRead, own.selfHighest = sc.Counts()
	}
	if bc, ok := v.(bridgeCounter); ok {
		own.bridge = bc.BridgeCounts()
	}
	return own
}

// result is what one round (or the pool of several) measured.
type result struct {
	side      string
	streams   int
	elapsed   time.Duration
	cpu       time.Duration
	counted   uint64  // counted by the kernel
	received  uint64  // counted by the kernel, minus receive-buffer drops
	lost      uint64  // receive-buffer drops, plus the sinks' dropped frames
	sinkDrops uint64  // frames the sinks dropped (bridge only)
	seen      uint64  // packets the side counted itself (bridge tracks, reader reads)
	missing   uint64  // packets missing for good (framer's lost, reader's sequence gaps)
	expected  uint64  // streams × the packets each should have carried
	rssMiB    float64 // per stream
	sendOnly  bool    // a send scenario: no receive-side figures
	// latency, of the forward scenario: end-to-end p50 and p99 in ms, and
	// the packets they were measured on (pooled: the rounds' samples).
	lat *latencies
}

func (r result) pps() float64 { return float64(r.received) / r.elapsed.Seconds() }

func (r result) cpuPerPkt() float64 {
	if r.received == 0 {
		return 0
	}
	return float64(r.cpu.Microseconds()) / float64(r.received)
}

func (r result) rssPerStream() float64 { return r.rssMiB }

func (r result) loss() float64 {
	if r.expected == 0 {
		return 0
	}
	return float64(r.lost) / float64(r.expected)
}

func (r result) delivered() float64 {
	if r.expected == 0 {
		return 0
	}
	return float64(r.counted) / float64(r.expected)
}

func (r result) unrecovered() float64 {
	if r.seen+r.missing == 0 {
		return 0
	}
	return float64(r.missing) / float64(r.seen+r.missing)
}

// line is the figures in the format of TESTING.md.
func (r result) line() string {
	if r.sendOnly {
		return fmt.Sprintf("%s streams=%d pps=%.0f cpu_us_per_pkt=%.1f rss_mib_per_stream=%.2f delivered=%.3f",
			r.side, r.streams, r.pps(), r.cpuPerPkt(), r.rssPerStream(), r.delivered())
	}
	line := fmt.Sprintf("%s streams=%d pps=%.0f cpu_us_per_pkt=%.1f rss_mib_per_stream=%.2f loss=%.3f delivered=%.3f sink_drops=%d unrecovered=%.4f",
		r.side, r.streams, r.pps(), r.cpuPerPkt(), r.rssPerStream(), r.loss(), r.delivered(), r.sinkDrops, r.unrecovered())
	if r.lat != nil {
		line += " " + r.lat.String()
	}
	return line
}

func (r result) report(b *testing.B) {
	b.ReportMetric(0, "ns/op") // the duration of a round means nothing
	b.ReportMetric(r.pps(), "pps")
	b.ReportMetric(r.cpuPerPkt(), "cpu_us/pkt")
	b.ReportMetric(r.rssPerStream(), "rss_MiB/stream")
	if !r.sendOnly {
		b.ReportMetric(r.loss(), "loss")
	}
	if r.lat != nil && r.lat.n() > 0 {
		b.ReportMetric(r.lat.quantile(0.5), "p50_ms")
		b.ReportMetric(r.lat.quantile(0.99), "p99_ms")
	}
}

// pool adds up rounds.
type pool struct {
	sum    result
	rounds int
}

func (p *pool) add(r result) {
	p.sum.side, p.sum.streams, p.sum.sendOnly = r.side, r.streams, r.sendOnly
	p.sum.elapsed += r.elapsed
	p.sum.cpu += r.cpu
	p.sum.counted += r.counted
	p.sum.received += r.received
	p.sum.lost += r.lost
	p.sum.sinkDrops += r.sinkDrops
	p.sum.seen += r.seen
	p.sum.missing += r.missing
	p.sum.expected += r.expected
	p.sum.rssMiB += r.rssMiB
	if r.lat != nil {
		if p.sum.lat == nil {
			p.sum.lat = &latencies{}
		}
		p.sum.lat.merge(r.lat)
	}
	p.rounds++
}

func (p *pool) result() result {
	r := p.sum
	if p.rounds > 0 {
		r.rssMiB /= float64(p.rounds)
	}
	return r
}

// measure runs one round of one side with n streams.
func measure(b *testing.B, j *janustest.Janus, nft *counters, s side, n int, window, warmup time.Duration, expect expectFunc) result {
	dir := b.TempDir()
	settle()
	rss0 := vmRSS(b)
	v, err := s.start(b, j, n, dir)
	if err != nil {
		b.Fatalf("starting %d streams: %v", n, err)
	}
	stopped := false
	stop := func() {
		if !stopped {
			stopped = true
			if err := v.Stop(); err != nil {
				b.Errorf("stopping: %v", err)
			}
		}
	}
	defer stop()

	upTime, flowing := waitFlow(b, nft, s, n, expect)
	if !flowing {
		b.Logf("WARNING: the %d streams did not reach %.0f%% of the expected packet rate within %v (the rate stopped growing, or the deadline passed); measuring anyway",
			n, 100*flowShare, upTime.Round(time.Second))
	}
	time.Sleep(warmup)

	prof := startProfile(b)
	s0 := take(b, nft, j, s, v, true)
	if s.window != nil {
		s.window(true)
	}
	time.Sleep(window)
	if s.window != nil {
		s.window(false)
	}
	s1 := take(b, nft, j, s, v, false)
	rss1 := vmRSS(b)
	goroutines := runtime.NumGoroutine()
	prof.stop()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	prof.heap()
	stop()

	if !j.Running() {
		b.Logf("WARNING: Janus died during this round (%s streams=%d)", s.name, n)
		fmt.Printf("WARNING: Janus died during the round %s streams=%d\n", s.name, n)
	}
	drops := s1.rcvbufErrors - s0.rcvbufErrors
	counted := s1.packets - s0.packets
	res := result{
		side:     s.name,
		streams:  n,
		elapsed:  s1.at.Sub(s0.at),
		cpu:      (s1.cpu - s0.cpu) - (s1.excluded - s0.excluded),
		counted:  counted,
		received: counted - min(drops, counted),
		lost:     drops,
		expected: uint64(float64(n)*expect(s0.counters, s1.counters, s1.at.Sub(s0.at)) + 0.5),
		rssMiB:   float64(int64(rss1)-int64(rss0)) / float64(n) / (1 << 20),
		sendOnly: s.sendOnly,
	}
	if _, ok := v.(bridgeCounter); ok {
		// A bridge's counters are its current outputs': they start again
		// when a reconnect re-creates them. Such a bridge's packets and
		// losses are left out (its count does not cover the window); its
		// sinks' drops since the re-creation are kept (an overcount, not an
		// undercount, of the window's).
		var restarted int
		var sinkErrs uint64
		for name, c := range s1.bridge {
			p, ok := s0.bridge[name]
			if !ok || p.tracks == 0 || c.tracks != p.tracks || c.packets < p.packets || c.sinkDrops < p.sinkDrops {
				restarted++
				res.sinkDrops += c.sinkDrops
				sinkErrs += c.sinkErrs
				continue
			}
			res.sinkDrops += c.sinkDrops - p.sinkDrops
			sinkErrs += c.sinkErrs - min(p.sinkErrs, c.sinkErrs)
			res.seen += c.packets - p.packets
			res.missing += c.lost - min(p.lost, c.lost)
		}
		res.lost += res.sinkDrops
		if restarted > 0 {
			b.Logf("WARNING: %d of %d bridges lost their outputs during the window (reconnects): their packets are not in unrecovered, their sinks' drops since are in sink_drops", restarted, n)
		}
		if sinkErrs > 0 {
			b.Logf("WARNING: %d sink errors in the window", sinkErrs)
		}
	}
	if _, ok := v.(selfCounter); ok {
		res.seen = s1.selfRead - s0.selfRead
		highest := s1.selfHighest - s0.selfHighest
		res.missing = highest - min(highest, res.seen)
	}
	if s.extra != nil {
		s.extra(&res)
	}
	secs := res.elapsed.Seconds()
	b.Logf("flowing after %v; window %.1fs; CPU %.2fs (%.0f%% of one core; instruments' %.2fs taken off); packets counted by the kernel %d, %d UDP receive-buffer drops, %d expected (%+d); the side's own count %d; RSS %.1f -> %.1f MiB; live heap after GC %.2f MiB per stream; %d goroutines",
		upTime.Round(100*time.Millisecond), secs, res.cpu.Seconds(), 100*res.cpu.Seconds()/secs, (s1.excluded - s0.excluded).Seconds(),
		counted, drops, res.expected, int64(counted)-int64(res.expected), res.seen, float64(rss0)/(1<<20), float64(rss1)/(1<<20),
		float64(ms.HeapAlloc)/float64(n)/(1<<20), goroutines)
	if total := s1.total - s0.total; total > 0 {
		cores := func(d time.Duration) float64 { return 100 * d.Seconds() / secs }
		machine := float64(runtime.NumCPU()) * 100 * float64(s1.busy-s0.busy) / float64(total)
		self := cores(s1.cpu - s0.cpu)
		janusCPU := cores(s1.janusCPU - s0.janusCPU)
		b.Logf("machine %.0f%% busy (%% of one core, %d CPUs): this process %.0f%%, Janus %.0f%%, everything else (ffmpeg, other tenants of the machine) %.0f%%",
			machine, runtime.NumCPU(), self, janusCPU, machine-self-janusCPU)
	}
	if foreign := s1.others - s0.others; foreign > 0 {
		b.Logf("WARNING: %d packets reached the other sides' counters during the window: something else runs in this network namespace, the counts are not trustworthy", foreign)
	}
	if notes := v.Notes(); notes != "" {
		b.Logf("%s", notes)
	}
	return res
}

// waitFlow waits until the streams carry (nearly) n times the expected
// rate, or until the rate stops growing (a saturated machine: measured
// anyway), or a deadline. It returns how long it waited and whether the
// rate was reached.
func waitFlow(b *testing.B, nft *counters, s side, n int, expect expectFunc) (time.Duration, bool) {
	started := time.Now()
	prev, prevAt := nft.read(b), time.Now()
	deadline := started.Add(30*time.Second + time.Duration(n)*300*time.Millisecond)
	var best float64
	bestAt := started
	for time.Now().Before(deadline) {
		time.Sleep(time.Second)
		c, at := nft.read(b), time.Now()
		want, got := float64(n)*expect(prev, c, at.Sub(prevAt)), float64(c[s.counter]-prev[s.counter])
		prev, prevAt = c, at
		if want > 0 && got >= flowShare*want {
			return time.Since(started), true
		}
		if got > best*1.02 {
			best, bestAt = got, at
		} else if best > 0 && at.Sub(bestAt) > 10*time.Second {
			return time.Since(started), false // no growth for 10 s: as good as it gets
		}
	}
	return time.Since(started), false
}

// profile writes a CPU profile of the window and a heap profile after it
// into the directory JB_BENCH_PROFILE names, if set (profiling costs CPU:
// figures from such a run are not for BENCHMARKS.md).
type profile struct {
	b    *testing.B
	base string
	cpu  *os.File
}

func startProfile(b *testing.B) *profile {
	dir := os.Getenv("JB_BENCH_PROFILE")
	if dir == "" {
		return &profile{}
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		b.Fatal(err)
	}
	name := strings.NewReplacer("/", "_", "=", "", "#", "_").Replace(strings.TrimPrefix(b.Name(), "Benchmark"))
	p := &profile{b: b, base: filepath.Join(dir, name)}
	f, err := os.Create(p.base + ".cpu.pprof")
	if err != nil {
		b.Fatal(err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		b.Fatal(err)
	}
	p.cpu = f
	return p
}

func (p *profile) stop() {
	if p.cpu != nil {
		pprof.StopCPUProfile()
		p.cpu.Close()
	}
}

func (p *profile) heap() {
	if p.base == "" {
		return
	}
	f, err := os.Create(p.base + ".heap.pprof")
	if err != nil {
		p.b.Fatal(err)
	}
	defer f.Close()
	if err := pprof.Lookup("heap").WriteTo(f, 0); err != nil {
		p.b.Fatal(err)
	}
}

// settle collects garbage and returns free memory to the OS, so that RSS
// and the next scenario start from the same state.
func settle() {
	runtime.GC()
	debug.FreeOSMemory()
	time.Sleep(2 * time.Second) // let Janus tear down the previous viewers
	runtime.GC()
	debug.FreeOSMemory()
}

// waitFeed waits until ffmpeg's RTP reaches the mountpoint and returns its
// packet rate.
func waitFeed(b *testing.B, nft *counters) float64 {
	b.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for nft.read(b)["feed"] == 0 {
		if time.Now().After(deadline) {
			b.Fatal("the ffmpeg feed sends nothing")
		}
		time.Sleep(100 * time.Millisecond)
	}
	time.Sleep(2 * time.Second) // encoder start-up
	c0, t0 := nft.read(b)["feed"], time.Now()
	time.Sleep(3 * time.Second)
	c1 := nft.read(b)["feed"]
	return float64(c1-c0) / time.Since(t0).Seconds()
}

// ---- janusbridge ----

// startBridges runs a bridge.Daemon with n streaming recv bridges of the
// mountpoint, each writing a WebM file into dir.
func startBridges(b *testing.B, j *janustest.Janus, n int, dir string) (viewers, error) {
	return startDaemon(j, n, func(i int) string {
		return fmt.Sprintf("[[bridge]]\nname = \"v%03d\"\nplugin = \"streaming\"\nmountpoint = %d\n", i, mountpointID) +
			fmt.Sprintf("  [[bridge.sink]]\n  type = \"webm\"\n  path = %q\n", filepath.Join(dir, "{bridge}.webm"))
	})
}

// startDaemon starts a bridge.Daemon (what `janusbridge` runs) with n
// bridges, the TOML of bridge i from bridgeTOML, on the bridge's port range.
func startDaemon(j *janustest.Janus, n int, bridgeTOML func(i int) string) (viewers, error) {
	var sb strings.Builder
	fmt.Fprintf(&sb, "[janus]\nservers = [%q]\n", j.WSURL())
	fmt.Fprintf(&sb, "[webrtc]\nloopback_candidates = true\nudp_port_min = %d\nudp_port_max = %d\n", bridgePortMin, bridgePortMax)
	fmt.Fprintf(&sb, "[defaults]\nshutdown_timeout = \"60s\"\n")
	for i := range n {
		sb.WriteString(bridgeTOML(i))
	}
	cfg, err := config.Parse("bench.toml", []byte(sb.String()))
	if err != nil {
		return nil, err
	}
	logs := &logState{}
	d, err := bridge.Start(cfg, slog.New(logHandler{logs}))
	if err != nil {
		return nil, err
	}
	return &bridgeViewers{d: d, logs: logs}, nil
}

type bridgeViewers struct {
	d    *bridge.Daemon
	logs *logState
}

func (v *bridgeViewers) Stop() error { return v.d.Close() }

func (v *bridgeViewers) BridgeCounts() map[string]bridgeCounts {
	m := map[string]bridgeCounts{}
	for _, br := range v.d.Bridges() {
		st := br.Stats()
		var c bridgeCounts
		c.tracks = len(st.Tracks)
		for _, t := range st.Tracks {
			c.packets += t.Packets
			c.lost += t.Lost
		}
		for _, s := range st.Sinks {
			c.sinkDrops += s.Dropped
			c.sinkErrs += s.Errors
		}
		m[br.Name()] = c
	}
	return m
}

func (v *bridgeViewers) Notes() string { return v.logs.notes() }

// logState counts what the bridges log: state changes other than the normal
// start-up, and warnings by message.
type logState struct {
	mu       sync.Mutex
	trouble  map[string]int // "bridge reconnecting", "bridge waiting"...
	warnings map[string]int
}

func (s *logState) notes() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var parts []string
	for _, m := range []map[string]int{s.trouble, s.warnings} {
		keys := slices.SortedFunc(maps.Keys(m), func(x, y string) int { return cmp.Or(cmp.Compare(m[y], m[x]), cmp.Compare(x, y)) })
		for i, msg := range keys {
			if i == maxNotes {
				rest := 0
				for _, k := range keys[i:] {
					rest += m[k]
				}
				parts = append(parts, fmt.Sprintf("%d × %d other messages", rest, len(keys)-i))
				break
			}
			parts = append(parts, fmt.Sprintf("%d × %q", m[msg], msg))
		}
	}
	if len(parts) == 0 {
		return ""
	}
	return "logged: " + strings.Join(parts, ", ")
}

// maxNotes is how many distinct messages of each kind notes lists, the most
// frequent first.
const maxNotes = 12

// numbers are what varies within one log message (SSRCs, transaction ids,
// ports, queue sizes): counted as one message.
var numbers = regexp.MustCompile(`0x[0-9a-fA-F]+|[0-9]+`)

// logHandler feeds a logState; it prints nothing.
type logHandler struct{ s *logState }

func (h logHandler) Enabled(_ context.Context, l slog.Level) bool { return l >= slog.LevelInfo }

func (h logHandler) Handle(_ context.Context, r slog.Record) error {
	h.s.mu.Lock()
	defer h.s.mu.Unlock()
	count := func(m *map[string]int) {
		if *m == nil {
			*m = map[string]int{}
		}
		(*m)[numbers.ReplaceAllString(r.Message, "N")]++
	}
	switch {
	case r.Message == "bridge reconnecting", r.Message == "bridge waiting", r.Message == "bridge failed":
		count(&h.s.trouble)
	case r.Level >= slog.LevelWarn:
		count(&h.s.warnings)
	}
	return nil
}

func (h logHandler) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h logHandler) WithGroup(string) slog.Handler      { return h }

// ---- the plain pion reader ----

// plainAPI is a pion API as a minimal pion client builds it: default codecs
// and default interceptors (NACK, reports, stats, TWCC, interval PLI... as
// RegisterDefaultInterceptors has them). Only what the test network needs
// differs from the defaults: loopback candidates (Janus's 127.0.0.2), a
// port range (to count the packets) and no mDNS (as the bridge; it carries
// no media).
func plainAPI() (*webrtc.API, error) {
	m := &webrtc.MediaEngine{}
	if err := m.RegisterDefaultCodecs(); err != nil {
		return nil, err
	}
	ir := &interceptor.Registry{}
	if err := webrtc.RegisterDefaultInterceptors(m, ir); err != nil {
		return nil, err
	}
	var se webrtc.SettingEngine
	se.SetIncludeLoopbackCandidate(true)
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	if err := se.SetEphemeralUDPPortRange(readerPortMin, readerPortMax); err != nil {
		return nil, err
	}
	return webrtc.NewAPI(webrtc.WithMediaEngine(m), webrtc.WithInterceptorRegistry(ir), webrtc.WithSettingEngine(se)), nil
}

// startReaders starts n plain pion readers of the mountpoint on one Janus
// session, negotiating concurrently as the daemon does. Signalling goes
// through the janus package (it is not on the media path); each track is
// read by its own goroutine running the trackReader that newTrack returns
// for viewer i.
func startReaders(j *janustest.Janus, n int, newTrack func(i int) trackReader) (viewers, error) {
	api, err := plainAPI()
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second+time.Duration(n)*200*time.Millisecond)
	defer cancel()
	s, err := janus.Connect(ctx, janus.Options{Servers: []string{j.WSURL()}})
	if err != nil {
		return nil, err
	}
	rv := &readerViewers{session: s}
	rv.peers = make([]*readerPeer, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rv.peers[i], errs[i] = rv.startPeer(ctx, api, newTrack(i))
		}()
	}
	wg.Wait()
	// At hundreds of viewers on a saturated machine, Janus may not answer
	// every watch in time: the viewers that started are measured (the
	// others show as packets not delivered), unless none did.
	var failed int
	var first error
	for _, err := range errs {
		if err != nil {
			failed++
			first = cmp.Or(first, err)
		}
	}
	if failed == n {
		rv.Stop()
		return nil, first
	}
	if failed > 0 {
		rv.noteErr(fmt.Errorf("%d of %d viewers did not start: %w", failed, n, first))
	}
	return rv, nil
}

// trackReader is a reader's media path for one track: read until the track
// ends, counting every packet into c (see trackCount.add).
type trackReader func(rv *readerViewers, tr *webrtc.TrackRemote, c *trackCount)

type readerViewers struct {
	session *janus.Session
	peers   []*readerPeer
	tracks  sync.WaitGroup

	mu     sync.Mutex
	counts []*trackCount
	errs   []string
}

type readerPeer struct {
	h      *janus.Handle
	p      *janus.Peer
	events sync.WaitGroup
}

// trackCount is what a track reader counts, read by the benchmark.
type trackCount struct {
	read    atomic.Uint64
	highest atomic.Uint64 // extended sequence number, from the first one

	// the reading goroutine's own
	n             uint64
	first, cycles uint64
	last          uint16
}

// add counts a packet with sequence number seq.
func (c *trackCount) add(seq uint16) {
	c.read.Add(1)
	switch {
	case c.n == 0:
		c.first = uint64(seq)
	case seq < c.last && c.last-seq > 1<<15:
		c.cycles += 1 << 16
	}
	if c.n == 0 || seq-c.last < 1<<15 {
		c.last = seq
		c.highest.Store(c.cycles + uint64(seq) - c.first + 1)
	}
	c.n++
}

func (rv *readerViewers) startPeer(ctx context.Context, api *webrtc.API, read trackReader) (*readerPeer, error) {
	h, err := rv.session.Attach(ctx, janus.PluginStreaming, "")
	if err != nil {
		return nil, err
	}
	p, err := janus.NewPeer(api, h, janus.PeerConfig{})
	if err != nil {
		h.Detach(ctx)
		return nil, err
	}
	rp := &readerPeer{h: h, p: p}
	rp.events.Add(1)
	go func() {
		defer rp.events.Done()
		for m := range h.Events() {
			if m.Janus == "trickle" {
				p.AddRemoteCandidate(m.Candidate)
			}
		}
	}()
	p.PC().OnTrack(func(tr *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
		rv.tracks.Add(1)
		defer rv.tracks.Done()
		c := &trackCount{}
		rv.mu.Lock()
		rv.counts = append(rv.counts, c)
		rv.mu.Unlock()
		read(rv, tr, c)
	})
	offer, err := janus.StreamingWatch(ctx, h, janus.StreamingWatchRequest{ID: janus.NumID(mountpointID)})
	if err == nil {
		var answer *janus.JSEP
		if answer, err = p.CreateAnswer(ctx, offer); err == nil {
			err = janus.StreamingStart(ctx, h, answer)
		}
	}
	if err != nil {
		rp.close()
		return nil, err
	}
	return rp, nil
}

func (rp *readerPeer) close() {
	rp.p.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	rp.h.Detach(ctx)
	cancel()
	rp.events.Wait()
}

// rtpWriter is what ivfwriter and oggwriter have in common.
type rtpWriter interface {
	WriteRTP(*rtp.Packet) error
	Close() error
}

// fileTrack is the plain reader's recording path: ReadRTP, count, write
// with pion's ivfwriter (VP8) or oggwriter (Opus) to prefix.ivf/.ogg.
func fileTrack(prefix string) trackReader {
	return func(rv *readerViewers, tr *webrtc.TrackRemote, c *trackCount) {
		var w rtpWriter
		var err error
		switch tr.Codec().MimeType {
		case webrtc.MimeTypeVP8:
			w, err = ivfwriter.New(prefix + ".ivf")
		case webrtc.MimeTypeOpus:
			w, err = oggwriter.New(prefix+".ogg", 48000, 2)
		default:
			err = fmt.Errorf("unexpected codec %s", tr.Codec().MimeType)
		}
		if err != nil {
			rv.noteErr(err)
			return
		}
		for {
			pkt, _, err := tr.ReadRTP()
			if err != nil {
				break
			}
			c.add(pkt.SequenceNumber)
			if err := w.WriteRTP(pkt); err != nil {
				rv.noteErr(err)
			}
		}
		if err := w.Close(); err != nil {
			rv.noteErr(err)
		}
	}
}

// forwardTrack is the plain reader's forwarding path, as pion's
// rtp-forwarder example: Read into a buffer, write it to a UDP socket
// (audio to 127.0.0.1:base, video to base+2).
func forwardTrack(base int) trackReader {
	return func(rv *readerViewers, tr *webrtc.TrackRemote, c *trackCount) {
		port := base
		if tr.Kind() == webrtc.RTPCodecTypeVideo {
			port += 2
		}
		conn, err := net.DialUDP("udp4", nil, &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: port})
		if err != nil {
			rv.noteErr(err)
			return
		}
		defer conn.Close()
		buf := make([]byte, 1500)
		for {
			n, _, err := tr.Read(buf)
			if err != nil {
				break
			}
			if n >= 4 {
				c.add(binary.BigEndian.Uint16(buf[2:4]))
			}
			if _, err := conn.Write(buf[:n]); err != nil {
				rv.noteErr(err)
			}
		}
	}
}

func (rv *readerViewers) noteErr(err error) {
	rv.mu.Lock()
	defer rv.mu.Unlock()
	if len(rv.errs) < 5 {
		rv.errs = append(rv.errs, err.Error())
	}
}

func (rv *readerViewers) Counts() (read, highest uint64) {
	rv.mu.Lock()
	defer rv.mu.Unlock()
	for _, c := range rv.counts {
		read += c.read.Load()
		highest += c.highest.Load()
	}
	return read, highest
}

func (rv *readerViewers) Stop() error {
	var wg sync.WaitGroup
	for _, p := range rv.peers {
		if p != nil {
			wg.Add(1)
			go func() { defer wg.Done(); p.close() }()
		}
	}
	wg.Wait()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err := rv.session.Close(ctx)
	rv.tracks.Wait()
	return err
}

func (rv *readerViewers) Notes() string {
	rv.mu.Lock()
	defer rv.mu.Unlock()
	if len(rv.errs) == 0 {
		return ""
	}
	return "errors: " + strings.Join(rv.errs, "; ")
}

// ---- measuring ----

// raiseFileLimit raises this process's soft limit of open files to the hard
// limit; Janus, started by the benchmark, inherits it. 500 viewers hold
// thousands of sockets on each side.
func raiseFileLimit(b *testing.B) {
	var l syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &l); err != nil {
		b.Fatalf("getrlimit: %v", err)
	}
	if l.Cur < l.Max {
		l.Cur = l.Max
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &l); err != nil {
			b.Fatalf("setrlimit: %v", err)
		}
	}
	if l.Cur < 16384 {
		b.Logf("WARNING: at most %d open files (ulimit -Hn): not enough for 500 viewers", l.Cur)
	}
}

// envStreams parses JB_BENCH_STREAMS.
func envStreams(b *testing.B) []int {
	v := os.Getenv("JB_BENCH_STREAMS")
	if v == "" {
		v = defaultStreams
	}
	var ns []int
	for f := range strings.SplitSeq(v, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 || n > 500 {
			b.Fatalf("JB_BENCH_STREAMS=%q: %q is not a stream count (1-500)", v, f)
		}
		ns = append(ns, n)
	}
	return ns
}

func envInt(b *testing.B, name string, def int) int {
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 {
		b.Fatalf("%s=%q: not a positive integer", name, v)
	}
	return n
}

func envDuration(b *testing.B, name string, def time.Duration) time.Duration {
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	d, err := time.ParseDuration(v)
	if err != nil || d <= 0 {
		b.Fatalf("%s=%q: not a positive duration", name, v)
	}
	return d
}

// cpuTime is the user+system CPU time of this process so far.
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatalf("getrusage: %v", err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// vmRSS is this process's resident set size in bytes.
func vmRSS(b *testing.B) uint64 {
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		b.Fatalf("reading /proc/self/status: %v", err)
	}
	for line := range strings.SplitSeq(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, err := strconv.ParseUint(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			if err != nil {
				b.Fatalf("VmRSS %q: %v", v, err)
			}
			return kb << 10
		}
	}
	b.Fatal("no VmRSS in /proc/self/status")
	return 0
}

// udpRcvbufErrors is the network namespace's count of UDP datagrams dropped
// because a socket's receive buffer was full (/proc/net/snmp).
func udpRcvbufErrors(b *testing.B) uint64 {
	data, err := os.ReadFile("/proc/net/snmp")
	if err != nil {
		b.Fatalf("reading /proc/net/snmp: %v", err)
	}
	var names []string
	for line := range strings.SplitSeq(string(data), "\n") {
		fields := strings.Fields(line)
		if len(fields) == 0 || fields[0] != "Udp:" {
			continue
		}
		if names == nil {
			names = fields
			continue
		}
		for i, name := range names {
			if name == "RcvbufErrors" && i < len(fields) {
				n, err := strconv.ParseUint(fields[i], 10, 64)
				if err != nil {
					b.Fatalf("/proc/net/snmp RcvbufErrors %q: %v", fields[i], err)
				}
				return n
			}
		}
	}
	b.Fatal("no Udp RcvbufErrors in /proc/net/snmp")
	return 0
}

// processCPU is the user+system CPU time of process pid so far (0 if it
// cannot be read).
func processCPU(pid int) time.Duration {
	return statCPU(fmt.Sprintf("/proc/%d/stat", pid))
}

// clockTicks is USER_HZ, the unit of /proc's CPU times (100 on Linux).
const clockTicks = 100

// machineCPU returns the busy and total CPU time of all the machine's CPUs
// so far (/proc/stat: shared with every container on the machine).
func machineCPU() (busy, total time.Duration) {
	data, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, 0
	}
	line, _, _ := strings.Cut(string(data), "\n")
	f := strings.Fields(line)
	if len(f) < 9 || f[0] != "cpu" {
		return 0, 0
	}
	var sum, idle uint64
	for i, v := range f[1:9] { // user nice system idle iowait irq softirq steal
		n, _ := strconv.ParseUint(v, 10, 64)
		sum += n
		if i == 3 || i == 4 {
			idle += n
		}
	}
	tick := time.Second / clockTicks
	return time.Duration(sum-idle) * tick, time.Duration(sum) * tick
}

func cpuModel() string {
	data, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return "unknown CPU"
	}
	for line := range strings.SplitSeq(string(data), "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return "unknown CPU"
}
