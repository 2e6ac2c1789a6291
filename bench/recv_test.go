package bench

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
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
//	JB_BENCH_STREAMS  viewer counts, comma-separated (default 1,10,50,100)
//	JB_BENCH_WINDOW   measured window per round (default 15s)
//	JB_BENCH_WARMUP   wait after every stream flows, before the window (default 3s)
//	JB_BENCH_ROUNDS   rounds per side and viewer count (default 2)
//	JB_BENCH_FEED     clip (default: a pre-encoded clip looped) or live (see startFeed)
//	JB_BENCH_PROFILE  a directory: write CPU and heap profiles of every round there
const (
	defaultStreams = "1,10,50,100"
	defaultWindow  = 15 * time.Second
	defaultWarmup  = 3 * time.Second
	defaultRounds  = 2
)

// The local UDP ports of each side's PeerConnections, so that the packets
// they receive can be counted by the kernel (nftables) the same way for
// both: the bridge's usual 40000-40999, the reader's next to it.
const (
	bridgePortMin, bridgePortMax = 40000, 40999
	readerPortMin, readerPortMax = 41000, 41999
)

const mountpointID = 1

// flowShare is the share of the expected packet rate (viewers × feed rate)
// that must reach the viewers' sockets before the warm-up starts.
const flowShare = 0.95

// BenchmarkRecv is the "recv" load scenario of TESTING.md: N viewers of one
// ffmpeg-fed VP8+Opus mountpoint (640x360, 25 fps, 800 kbit/s + Opus
// 64 kbit/s, about 150 RTP packets/s; see startFeed), for janusbridge (sub-benchmarks recv/streams=N: bridge.Run
// with N recv bridges writing WebM) and for a plain pion reader
// (reader/streams=N), one after the other, never at the same time. b.N is
// ignored: each round runs for a fixed window after a warm-up (run with
// -benchtime 1x).
//
// The machine is shared and noisy, so for each N the two sides alternate
// in rounds, A B B A (A B B A A B B A for 4 rounds...), which cancels a
// linear drift of the conditions; each round reports its figures as
// benchmark metrics, and after the rounds of an N one line per side gives
// the pooled figures, in the format of TESTING.md, e.g.
//
//	recv streams=100 pps=11074 cpu_us_per_pkt=7.9 rss_mib_per_stream=0.31 loss=0.000
//	reader streams=100 pps=11002 cpu_us_per_pkt=34.0 rss_mib_per_stream=0.74 loss=0.000
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
//     not read fast enough), over the expected packets, N × the RTP
//     packets ffmpeg sent to the mountpoint in the window (another nftables
//     counter). It is counted before NACK recovery, so it says whether the
//     process kept up, not what the files lack; the drops are the
//     namespace's, Janus's sockets included. What Janus failed to relay
//     (expected minus counted) is logged, not added: Janus's relay delay
//     at the two ends of the window blurs it by tens of milliseconds of
//     traffic. Drops inside pion (a full packetio buffer) or the bridge (a
//     full sink queue) are not seen; the reader's own sequence-number loss
//     is logged for comparison.
//
// Pooled over rounds: pps and cpu_us_per_pkt are total packets over total
// time and total CPU over total packets, rss_mib_per_stream the mean, loss
// from the totals.
func BenchmarkRecv(b *testing.B) {
	streams := envStreams(b)
	window := envDuration(b, "JB_BENCH_WINDOW", defaultWindow)
	warmup := envDuration(b, "JB_BENCH_WARMUP", defaultWarmup)
	rounds := envInt(b, "JB_BENCH_ROUNDS", defaultRounds)
	if os.Getenv("JB_BENCH_PROFILE") != "" {
		runtime.MemProfileRate = 4096 // a heap profile of every 4 KiB allocated
	}

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
	fmt.Printf("feed: %s, %.0f RTP packets/s into the mountpoint; %d rounds of %v after %v of warm-up per side and N; %d CPUs (%s)\n",
		feedKind, feedPPS, rounds, window, warmup, runtime.NumCPU(), cpuModel())

	sides := [2]side{
		{name: "recv", counter: "recv", start: startBridges},
		{name: "reader", counter: "reader", start: startReaders},
	}
	for _, n := range streams {
		var pooled [2]pool
		for r := range rounds {
			order := []int{0, 1}
			if r%2 == 1 {
				order = []int{1, 0}
			}
			for _, i := range order {
				s := sides[i]
				b.Run(fmt.Sprintf("%s/streams=%d", s.name, n), func(b *testing.B) {
					res := measure(b, j, nft, s, n, window, warmup)
					res.report(b)
					b.Logf("round %d: %s", r+1, res.line())
					pooled[i].add(res)
				})
			}
		}
		if pooled[0].rounds == 0 || pooled[1].rounds == 0 {
			continue // a side failed: its sub-benchmark says why
		}
		var lines [2]result
		for i := range sides {
			lines[i] = pooled[i].result()
			fmt.Println(lines[i].line())
		}
		if lines[1].cpuPerPkt() > 0 && lines[1].rssPerStream() > 0 {
			fmt.Printf("ratio streams=%d cpu_us_per_pkt=%.2f rss_mib_per_stream=%.2f\n", n,
				lines[0].cpuPerPkt()/lines[1].cpuPerPkt(), lines[0].rssPerStream()/lines[1].rssPerStream())
		}
	}
}

// side is one of the two things measured.
type side struct {
	name    string // "recv" (janusbridge) or "reader" (plain pion)
	counter string // the nftables counter of its port range
	start   func(b *testing.B, j *janustest.Janus, n int, dir string) (viewers, error)
}

// viewers are N running viewers of the mountpoint.
type viewers interface {
	// Stop stops every viewer and waits until they are gone.
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

// snapshot is the state of the counters at one instant.
type snapshot struct {
	at            time.Time
	cpu           time.Duration
	feed, packets uint64 // nftables
	others        uint64 // nftables: the other side's port range
	rcvbufErrors  uint64
	selfRead      uint64
	selfHighest   uint64
	janusCPU      time.Duration
	busy, total   time.Duration // the machine's CPUs, all of them (/proc/stat)
}

func take(b *testing.B, nft *counters, j *janustest.Janus, s side, v viewers) snapshot {
	b.Helper()
	c := nft.read(b)
	snap := snapshot{at: time.Now(), cpu: cpuTime(b), feed: c["feed"], packets: c[s.counter], rcvbufErrors: udpRcvbufErrors(b)}
	snap.janusCPU = processCPU(j.PID())
	snap.busy, snap.total = machineCPU()
	for name, n := range c {
		if name != "feed" && name != s.counter {
			snap.others += n
		}
	}
	if sc, ok := v.(selfCounter); ok {
		snap.selfRead, snap.selfHighest = sc.Counts()
	}
	return snap
}

// result is what one round (or the pool of several) measured.
type result struct {
	side     string
	streams  int
	elapsed  time.Duration
	cpu      time.Duration
	received uint64  // counted by the kernel, minus receive-buffer drops
	lost     uint64  // receive-buffer drops
	expected uint64  // streams × the feed's packets
	rssMiB   float64 // per stream
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

// line is the figures in the format of TESTING.md.
func (r result) line() string {
	return fmt.Sprintf("%s streams=%d pps=%.0f cpu_us_per_pkt=%.1f rss_mib_per_stream=%.2f loss=%.3f",
		r.side, r.streams, r.pps(), r.cpuPerPkt(), r.rssPerStream(), r.loss())
}

func (r result) report(b *testing.B) {
	b.ReportMetric(0, "ns/op") // the duration of a round means nothing
	b.ReportMetric(r.pps(), "pps")
	b.ReportMetric(r.cpuPerPkt(), "cpu_us/pkt")
	b.ReportMetric(r.rssPerStream(), "rss_MiB/stream")
	b.ReportMetric(r.loss(), "loss")
}

// pool adds up rounds.
type pool struct {
	sum    result
	rounds int
}

func (p *pool) add(r result) {
	p.sum.side, p.sum.streams = r.side, r.streams
	p.sum.elapsed += r.elapsed
	p.sum.cpu += r.cpu
	p.sum.received += r.received
	p.sum.lost += r.lost
	p.sum.expected += r.expected
	p.sum.rssMiB += r.rssMiB
	p.rounds++
}

func (p *pool) result() result {
	r := p.sum
	if p.rounds > 0 {
		r.rssMiB /= float64(p.rounds)
	}
	return r
}

// measure runs one round of one side with n viewers.
func measure(b *testing.B, j *janustest.Janus, nft *counters, s side, n int, window, warmup time.Duration) result {
	dir := b.TempDir()
	settle()
	rss0 := vmRSS(b)
	started := time.Now()
	v, err := s.start(b, j, n, dir)
	if err != nil {
		b.Fatalf("starting %d viewers: %v", n, err)
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

	// Wait until the viewers' sockets receive (nearly) n times the feed.
	flowing := false
	prev := nft.read(b)
	deadline := time.Now().Add(30*time.Second + time.Duration(n)*300*time.Millisecond)
	for time.Now().Before(deadline) {
		time.Sleep(time.Second)
		c := nft.read(b)
		feed, got := c["feed"]-prev["feed"], c[s.counter]-prev[s.counter]
		prev = c
		if feed > 0 && float64(got) >= flowShare*float64(n)*float64(feed) {
			flowing = true
			break
		}
	}
	upTime := time.Since(started)
	if !flowing {
		b.Logf("WARNING: the %d viewers did not reach %.0f%% of the expected packet rate within %v; measuring anyway",
			n, 100*flowShare, upTime.Round(time.Second))
	}
	time.Sleep(warmup)

	prof := startProfile(b)
	s0 := take(b, nft, j, s, v)
	time.Sleep(window)
	s1 := take(b, nft, j, s, v)
	rss1 := vmRSS(b)
	goroutines := runtime.NumGoroutine()
	prof.stop()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	prof.heap()
	stop()

	drops := s1.rcvbufErrors - s0.rcvbufErrors
	counted := s1.packets - s0.packets
	feed := s1.feed - s0.feed
	res := result{
		side:     s.name,
		streams:  n,
		elapsed:  s1.at.Sub(s0.at),
		cpu:      s1.cpu - s0.cpu,
		received: counted - min(drops, counted),
		lost:     drops,
		expected: uint64(n) * feed,
		rssMiB:   float64(int64(rss1)-int64(rss0)) / float64(n) / (1 << 20),
	}
	secs := res.elapsed.Seconds()
	b.Logf("flowing after %v; window %.1fs; feed %.0f pps; CPU %.2fs (%.0f%% of one core); packets counted by the kernel %d, %d UDP receive-buffer drops, %d expected (%+d); RSS %.1f -> %.1f MiB; live heap after GC %.2f MiB per stream; %d goroutines",
		upTime.Round(100*time.Millisecond), secs, float64(feed)/secs, res.cpu.Seconds(), 100*res.cpu.Seconds()/secs,
		counted, drops, res.expected, int64(counted)-int64(res.expected), float64(rss0)/(1<<20), float64(rss1)/(1<<20),
		float64(ms.HeapAlloc)/float64(n)/(1<<20), goroutines)
	if total := s1.total - s0.total; total > 0 {
		cores := func(d time.Duration) float64 { return 100 * d.Seconds() / secs }
		machine := float64(runtime.NumCPU()) * 100 * float64(s1.busy-s0.busy) / float64(total)
		janusCPU := cores(s1.janusCPU - s0.janusCPU)
		b.Logf("machine %.0f%% busy (%% of one core, %d CPUs): this process %.0f%%, Janus %.0f%%, everything else (ffmpeg, other tenants of the machine) %.0f%%",
			machine, runtime.NumCPU(), cores(res.cpu), janusCPU, machine-cores(res.cpu)-janusCPU)
	}
	if foreign := s1.others - s0.others; foreign > 0 {
		b.Logf("WARNING: %d packets reached the other side's port range during the window: something else runs in this network namespace, the counts are not trustworthy", foreign)
	}
	if _, ok := v.(selfCounter); ok {
		read, highest := s1.selfRead-s0.selfRead, s1.selfHighest-s0.selfHighest
		b.Logf("read %d packets itself (kernel count %+.2f%% off); sequence-number loss %.4f",
			read, 100*(float64(counted)-float64(read))/float64(max(read, 1)),
			1-float64(read)/float64(max(highest, 1)))
	}
	if notes := v.Notes(); notes != "" {
		b.Logf("%s", notes)
	}
	return res
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
	name := strings.NewReplacer("/", "_", "=", "", "#", "_").Replace(strings.TrimPrefix(b.Name(), "BenchmarkRecv/"))
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

// startBridges runs bridge.Run with n streaming recv bridges of the
// mountpoint, each writing a WebM file into dir.
func startBridges(b *testing.B, j *janustest.Janus, n int, dir string) (viewers, error) {
	var sb strings.Builder
	fmt.Fprintf(&sb, "[janus]\nservers = [%q]\n", j.WSURL())
	fmt.Fprintf(&sb, "[webrtc]\nloopback_candidates = true\nudp_port_min = %d\nudp_port_max = %d\n", bridgePortMin, bridgePortMax)
	fmt.Fprintf(&sb, "[defaults]\nshutdown_timeout = \"60s\"\n")
	for i := range n {
		fmt.Fprintf(&sb, "[[bridge]]\nname = \"v%03d\"\nplugin = \"streaming\"\nmountpoint = %d\n", i, mountpointID)
		fmt.Fprintf(&sb, "  [[bridge.sink]]\n  type = \"webm\"\n  path = %q\n", filepath.Join(dir, "{bridge}.webm"))
	}
	cfg, err := config.Parse("bench.toml", []byte(sb.String()))
	if err != nil {
		return nil, err
	}
	logs := &logState{}
	ctx, cancel := context.WithCancel(context.Background())
	bv := &bridgeViewers{cancel: cancel, done: make(chan error, 1), logs: logs}
	go func() { bv.done <- bridge.Run(ctx, cfg, slog.New(logHandler{logs})) }()
	return bv, nil
}

type bridgeViewers struct {
	cancel context.CancelFunc
	done   chan error
	logs   *logState
}

func (v *bridgeViewers) Stop() error {
	v.cancel()
	return <-v.done
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
		keys := slices.Sorted(maps.Keys(m))
		for _, msg := range keys {
			parts = append(parts, fmt.Sprintf("%d × %q", m[msg], msg))
		}
	}
	if len(parts) == 0 {
		return ""
	}
	return "logged: " + strings.Join(parts, ", ")
}

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
		(*m)[r.Message]++
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
// session, negotiating concurrently as bridge.Run does. Signalling goes
// through the janus package (it is not on the media path); each track is
// read by its own goroutine with ReadRTP and written with pion's ivfwriter
// (VP8) or oggwriter (Opus) into dir.
func startReaders(b *testing.B, j *janustest.Janus, n int, dir string) (viewers, error) {
	api, err := plainAPI()
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
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
			rv.peers[i], errs[i] = rv.startPeer(ctx, api, filepath.Join(dir, fmt.Sprintf("v%03d", i)))
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			rv.Stop()
			return nil, err
		}
	}
	return rv, nil
}

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
}

func (rv *readerViewers) startPeer(ctx context.Context, api *webrtc.API, prefix string) (*readerPeer, error) {
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
		rv.readTrack(tr, prefix)
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

// readTrack is the plain reader's media path: ReadRTP, count, write.
func (rv *readerViewers) readTrack(tr *webrtc.TrackRemote, prefix string) {
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
	c := &trackCount{}
	rv.mu.Lock()
	rv.counts = append(rv.counts, c)
	rv.mu.Unlock()
	var first, cycles uint64
	var last uint16
	for n := 0; ; n++ {
		pkt, _, err := tr.ReadRTP()
		if err != nil {
			break
		}
		c.read.Add(1)
		seq := pkt.SequenceNumber
		switch {
		case n == 0:
			first = uint64(seq)
		case seq < last && last-seq > 1<<15:
			cycles += 1 << 16
		}
		if n == 0 || seq-last < 1<<15 {
			last = seq
			c.highest.Store(cycles + uint64(seq) - first + 1)
		}
		if err := w.WriteRTP(pkt); err != nil {
			rv.noteErr(err)
		}
	}
	if err := w.Close(); err != nil {
		rv.noteErr(err)
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
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	_, rest, ok := strings.Cut(string(data), ") ") // the command may hold spaces
	f := strings.Fields(rest)
	if !ok || len(f) < 13 {
		return 0
	}
	utime, _ := strconv.ParseUint(f[11], 10, 64)
	stime, _ := strconv.ParseUint(f[12], 10, 64)
	return time.Duration(utime+stime) * time.Second / clockTicks
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
