package bench

import (
	"encoding/binary"
	"fmt"
	"hash/maphash"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"github.com/janusbridge/janusbridge/internal/janustest"
)

// defaultForwards is the number of forwarding viewers of BenchmarkForward
// (JB_BENCH_FORWARDS overrides it).
const defaultForwards = 100

// BenchmarkForward is the "RTP forward" scenario: N viewers of the
// mountpoint (as BenchmarkRecv) each forwarding its packets as plain RTP to
// a local UDP port, for janusbridge (forward/streams=N: N recv bridges with
// one `rtp` sink each) and for a plain pion reader that writes each packet
// it reads (TrackRemote.Read) to a UDP socket (fwdreader/streams=N).
//
// Besides the figures of BenchmarkRecv, it measures the end-to-end latency
// of every packet: the benchmark itself relays ffmpeg's RTP into the
// mountpoint (see relay), stamping the time each packet leaves keyed by a
// hash of its payload (Janus rewrites sequence numbers, timestamps and SSRC,
// not the payload), and receives every forwarded packet (see fwdReceiver),
// stamping its arrival. p50_ms and p99_ms are relay-to-destination for
// each side; the bridge's added latency is the difference between the two
// sides' percentiles (both paths share Janus and the relay), printed as
//
//	forward-added streams=100 p50_ms=0.05 p99_ms=0.40
//
// The relay and the receivers are locked to OS threads of their own, whose
// CPU time (/proc/self/task) is taken off the measured CPU: they cost the
// same on both sides and are not part of what is measured.
func BenchmarkForward(b *testing.B) {
	n := envInt(b, "JB_BENCH_FORWARDS", defaultForwards)
	window := envDuration(b, "JB_BENCH_WINDOW", defaultWindow)
	warmup := envDuration(b, "JB_BENCH_WARMUP", defaultWarmup)
	rounds := envInt(b, "JB_BENCH_ROUNDS", defaultRounds)
	raiseFileLimit(b)

	ports := janustest.FreeUDPPorts(b, 2)
	j := janustest.StartJanus(b, janustest.Options{
		Plugins:    []string{"streaming"},
		Streaming:  janustest.MountpointConfig(mountpointID, "vp8", ports[0], ports[1]),
		DebugLevel: 3,
	})
	nft := newCounters(b, ports[0], ports[1])
	ins := &instruments{}
	b.Cleanup(ins.close)
	stamps := [2]*stampTable{newStampTable(), newStampTable()} // by track: 0 audio, 1 video
	relayPorts := janustest.FreeUDPPorts(b, 2)                 // not ephemeral ones: they could fall into the counted ranges
	rl := startRelay(b, ins, stamps, [2]int{relayPorts[0], relayPorts[1]}, [2]int{ports[0], ports[1]})
	feedKind := startFeed(b, rl.ports[0], rl.ports[1])
	feedPPS := waitFeed(b, nft)
	rx := startFwdReceiver(b, ins, stamps, n)
	fmt.Printf("forward: %s relayed by the benchmark, %.0f RTP packets/s into the mountpoint; %d forwards to port %d (+2 video; RTCP +1, +3); %d rounds of %v after %v of warm-up per side\n",
		feedKind, feedPPS, n, rx.base, rounds, window, warmup)

	sides := [2]side{
		{name: "forward", counter: "recv", ratioTag: "forward ", start: func(b *testing.B, j *janustest.Janus, n int, dir string) (viewers, error) {
			return startDaemon(j, n, func(i int) string {
				// Every bridge its own target (the configuration refuses
				// two sinks on one host:port): loopback addresses
				// 127.1.x.y, all received by one socket on the port.
				return fmt.Sprintf("[[bridge]]\nname = \"f%03d\"\nplugin = \"streaming\"\nmountpoint = %d\n", i, mountpointID) +
					fmt.Sprintf("  [[bridge.sink]]\n  type = \"rtp\"\n  host = \"127.1.%d.%d\"\n  port = %d\n", i/250, i%250+1, rx.base)
			})
		}},
		{name: "fwdreader", counter: "reader", start: func(b *testing.B, j *janustest.Janus, n int, dir string) (viewers, error) {
			return startReaders(j, n, func(int) trackReader { return forwardTrack(rx.base) })
		}},
	}
	for i := range sides {
		sides[i].cpuExcluded = ins.cpu
		sides[i].window = rx.record
		sides[i].extra = func(r *result) { r.lat = rx.take() }
	}
	lines := runRounds(b, j, nft, sides, n, rounds, window, warmup, feedExpect)
	if lines[0].lat != nil && lines[1].lat != nil && lines[0].lat.n() > 0 && lines[1].lat.n() > 0 {
		fmt.Printf("forward-added streams=%d p50_ms=%.3f p99_ms=%.3f\n", n,
			lines[0].lat.quantile(0.5)-lines[1].lat.quantile(0.5), lines[0].lat.quantile(0.99)-lines[1].lat.quantile(0.99))
	}
	if u := rx.unmatched.Load(); u > 0 {
		fmt.Printf("forward: %d of %d forwarded packets had no send stamp (payload seen twice within 2 s, or before the relay), left out of the latencies\n",
			u, u+rx.matched.Load())
	}
}

// ---- instruments: the benchmark's own threads ----

// instruments are the benchmark's goroutines that handle packets (relay,
// receivers), each locked to an OS thread, so that their CPU time can be
// read (and taken off the measured process's).
type instruments struct {
	mu   sync.Mutex
	tids []int
	wg   sync.WaitGroup
	stop atomic.Bool
}

// close stops the instruments (their reads time out within 200 ms) and
// waits for them.
func (in *instruments) close() {
	in.stop.Store(true)
	in.wg.Wait()
}

// run runs f on a goroutine locked to a thread of its own, at nice -10 (as
// Janus and ffmpeg: the instruments should not wait for the CPU more than
// the measured paths), until f returns.
func (in *instruments) run(f func()) {
	in.wg.Add(1)
	go func() {
		defer in.wg.Done()
		runtime.LockOSThread() // never unlocked: the thread ends with the goroutine
		tid := syscall.Gettid()
		_ = syscall.Setpriority(syscall.PRIO_PROCESS, tid, -10) // not root: as it is
		in.mu.Lock()
		in.tids = append(in.tids, tid)
		in.mu.Unlock()
		f()
	}()
}

// cpu is the CPU time of the instruments' threads so far.
func (in *instruments) cpu() time.Duration {
	in.mu.Lock()
	defer in.mu.Unlock()
	var d time.Duration
	for _, tid := range in.tids {
		d += statCPU(fmt.Sprintf("/proc/self/task/%d/stat", tid))
	}
	return d
}

// statCPU is utime+stime of a /proc stat file (0 if it cannot be read).
func statCPU(path string) time.Duration {
	data, err := os.ReadFile(path)
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

// udpSocket is a blocking IPv4 UDP socket bound to port on addr (0: any
// port) whose reads time out after 200 ms, so that its reader notices a
// stop; its receive buffer is 4 MiB.
func udpSocket(addr [4]byte, port int) (int, int, error) {
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_DGRAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		return -1, 0, fmt.Errorf("socket: %w", err)
	}
	fail := func(what string, err error) (int, int, error) {
		syscall.Close(fd)
		return -1, 0, fmt.Errorf("%s: %w", what, err)
	}
	if err := syscall.SetsockoptInt(fd, syscall.SOL_SOCKET, syscall.SO_RCVBUFFORCE, 4<<20); err != nil {
		_ = syscall.SetsockoptInt(fd, syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4<<20) // not root: what the kernel allows
	}
	// Receive timestamps: when the packet reached the socket, whenever its
	// reader gets to run.
	if err := syscall.SetsockoptInt(fd, syscall.SOL_SOCKET, syscall.SO_TIMESTAMPNS, 1); err != nil {
		return fail("SO_TIMESTAMPNS", err)
	}
	tv := syscall.NsecToTimeval((200 * time.Millisecond).Nanoseconds())
	if err := syscall.SetsockoptTimeval(fd, syscall.SOL_SOCKET, syscall.SO_RCVTIMEO, &tv); err != nil {
		return fail("SO_RCVTIMEO", err)
	}
	if err := syscall.Bind(fd, &syscall.SockaddrInet4{Addr: addr, Port: port}); err != nil {
		return fail(fmt.Sprintf("bind %v:%d", addr, port), err)
	}
	sa, err := syscall.Getsockname(fd)
	if err != nil {
		return fail("getsockname", err)
	}
	return fd, sa.(*syscall.SockaddrInet4).Port, nil
}

// kernelStamp returns the SO_TIMESTAMPNS receive time (wall clock, ns)
// from a control message buffer, parsed in place (no allocation).
func kernelStamp(oob []byte) (int64, bool) {
	for len(oob) >= syscall.SizeofCmsghdr {
		h := (*syscall.Cmsghdr)(unsafe.Pointer(&oob[0]))
		l := int(h.Len)
		if l < syscall.SizeofCmsghdr || l > len(oob) {
			return 0, false
		}
		if h.Level == syscall.SOL_SOCKET && h.Type == syscall.SCM_TIMESTAMPNS && l >= syscall.SizeofCmsghdr+16 {
			d := oob[syscall.SizeofCmsghdr:]
			sec := int64(binary.NativeEndian.Uint64(d))
			nsec := int64(binary.NativeEndian.Uint64(d[8:]))
			return sec*1e9 + nsec, true
		}
		next := (l + 7) &^ 7
		if next >= len(oob) {
			break
		}
		oob = oob[next:]
	}
	return 0, false
}

// rtpPayload returns the payload of an RTP packet (after the CSRCs and the
// header extension, before the padding); nil if p is not one.
func rtpPayload(p []byte) []byte {
	if len(p) < 12 || p[0]>>6 != 2 {
		return nil
	}
	off := 12 + 4*int(p[0]&0x0f)
	if p[0]&0x10 != 0 {
		if len(p) < off+4 {
			return nil
		}
		off += 4 + 4*int(binary.BigEndian.Uint16(p[off+2:]))
	}
	end := len(p)
	if p[0]&0x20 != 0 && end > 0 {
		end -= int(p[end-1])
	}
	if off > end {
		return nil
	}
	return p[off:end]
}

// ---- send stamps ----

// stampTable maps a payload hash to the time the relay sent that payload:
// a fixed open table (no allocation per packet), one writer (the relay of a
// track), readers (the receivers). A slot is overwritten by a later
// payload of the same index; a payload sent twice within 2 s (a looped clip
// repeats its audio after 30 s, a steady tone may repeat sooner) is marked
// ambiguous and not matched.
type stampTable struct {
	seed  maphash.Seed
	slots []stampSlot
}

type stampSlot struct {
	hash atomic.Uint64
	at   atomic.Int64 // wall clock (as the kernel's receive stamps), ns since 1970; -1: ambiguous
}

const stampSlots = 1 << 16 // about 7 minutes of one track at 150 packets/s

func newStampTable() *stampTable {
	return &stampTable{seed: maphash.MakeSeed(), slots: make([]stampSlot, stampSlots)}
}

func (t *stampTable) hash(payload []byte) uint64 {
	h := maphash.Bytes(t.seed, payload)
	if h == 0 {
		h = 1 // 0 marks a slot being written
	}
	return h
}

// stamp records that the payload with hash h leaves now.
func (t *stampTable) stamp(h uint64, now int64) {
	s := &t.slots[h&(stampSlots-1)]
	at := now
	if s.hash.Load() == h && now-s.at.Load() < int64(2*time.Second) {
		at = -1
	}
	s.hash.Store(0)
	s.at.Store(at)
	s.hash.Store(h)
}

// lookup returns when the payload with hash h left, if known.
func (t *stampTable) lookup(h uint64) (int64, bool) {
	s := &t.slots[h&(stampSlots-1)]
	if s.hash.Load() != h {
		return 0, false
	}
	at := s.at.Load()
	if s.hash.Load() != h || at < 0 {
		return 0, false
	}
	return at, true
}

// relay receives ffmpeg's RTP on two local ports (audio, video) and sends
// every packet on to the mountpoint's ports, stamping it.
type relay struct {
	ports [2]int // where ffmpeg sends
}

func startRelay(b *testing.B, ins *instruments, stamps [2]*stampTable, from, to [2]int) *relay {
	b.Helper()
	rl := &relay{}
	loopback := [4]byte{127, 0, 0, 1}
	for k := range 2 {
		fd, port, err := udpSocket(loopback, from[k])
		if err != nil {
			b.Fatalf("relay: %v", err)
		}
		rl.ports[k] = port
		dst := &syscall.SockaddrInet4{Addr: loopback, Port: to[k]}
		ins.run(func() {
			defer syscall.Close(fd)
			buf := make([]byte, 1500)
			for !ins.stop.Load() {
				n, _, err := syscall.Recvfrom(fd, buf, 0)
				if err != nil || n <= 0 {
					continue // a timeout: check stop
				}
				if p := rtpPayload(buf[:n]); p != nil {
					h := stamps[k].hash(p)
					stamps[k].stamp(h, time.Now().UnixNano())
				}
				_ = syscall.Sendto(fd, buf[:n], 0, dst) // a failure shows as packets missing at the mountpoint
			}
		})
	}
	return rl
}

// ---- receiving the forwards ----

// fwdReceiver receives the forwarded packets of every viewer on base
// (audio) and base+2 (video), on any local address, and records their
// latency while the window is open; base+1 and base+3 take the RTCP.
type fwdReceiver struct {
	base      int
	recording atomic.Bool
	matched   atomic.Uint64
	unmatched atomic.Uint64

	// By track, written by its receiver while recording: latencies in µs
	// (preallocated) and how many are set.
	samples [2][]int32
	lens    [2]atomic.Int64
}

func startFwdReceiver(b *testing.B, ins *instruments, stamps [2]*stampTable, n int) *fwdReceiver {
	b.Helper()
	rx := &fwdReceiver{}
	var fds [4]int
	// Four consecutive free ports, base even, below the benchmark's port ranges.
	for base := 29000; base > 28000 && rx.base == 0; base -= 4 {
		ok := true
		for k := range 4 {
			fd, _, err := udpSocket([4]byte{}, base+k)
			if err != nil {
				for _, f := range fds[:k] {
					syscall.Close(f)
				}
				ok = false
				break
			}
			fds[k] = fd
		}
		if ok {
			rx.base = base
		}
	}
	if rx.base == 0 {
		b.Fatal("forward receiver: no 4 consecutive free UDP ports in 28000-29003")
	}
	// Room for 30 s of every viewer's packets per track, allocated now.
	capacity := max(1<<16, n*200*30)
	for k := range 2 {
		rx.samples[k] = make([]int32, capacity)
	}
	for k, fd := range fds {
		track := k / 2
		isRTP := k%2 == 0
		ins.run(func() {
			defer syscall.Close(fd)
			buf := make([]byte, 1500)
			oob := make([]byte, 64)
			for !ins.stop.Load() {
				n, oobn, _, _, err := syscall.Recvmsg(fd, buf, oob, 0)
				if err != nil || n <= 0 || !isRTP || !rx.recording.Load() {
					continue
				}
				now, ok := kernelStamp(oob[:oobn])
				if !ok {
					now = time.Now().UnixNano()
				}
				p := rtpPayload(buf[:n])
				if p == nil {
					continue
				}
				at, ok := stamps[track].lookup(stamps[track].hash(p))
				if !ok {
					rx.unmatched.Add(1)
					continue
				}
				rx.matched.Add(1)
				i := rx.lens[track].Load()
				if int(i) < len(rx.samples[track]) {
					rx.samples[track][i] = int32(min((now-at)/1000, 1<<31-1))
					rx.lens[track].Store(i + 1)
				}
			}
		})
	}
	return rx
}

// record opens (true) or closes the measured window.
func (rx *fwdReceiver) record(open bool) {
	if open {
		rx.lens[0].Store(0)
		rx.lens[1].Store(0)
	}
	rx.recording.Store(open)
}

// take returns the latencies recorded in the last window (called after it
// closed).
func (rx *fwdReceiver) take() *latencies {
	time.Sleep(300 * time.Millisecond) // a receiver may be storing its last sample
	l := &latencies{}
	for k := range 2 {
		n := rx.lens[k].Load()
		l.us = append(l.us, rx.samples[k][:n]...)
		if int(n) == len(rx.samples[k]) {
			l.truncated = true
		}
	}
	return l
}

// latencies are end-to-end packet latencies, in µs.
type latencies struct {
	us        []int32
	sorted    bool
	truncated bool
}

func (l *latencies) n() int { return len(l.us) }

func (l *latencies) merge(o *latencies) {
	l.us = append(l.us, o.us...)
	l.sorted = false
	l.truncated = l.truncated || o.truncated
}

// quantile returns the q-quantile in ms (nearest rank).
func (l *latencies) quantile(q float64) float64 {
	if len(l.us) == 0 {
		return 0
	}
	if !l.sorted {
		slices.Sort(l.us)
		l.sorted = true
	}
	i := min(int(q*float64(len(l.us))), len(l.us)-1)
	return float64(l.us[i]) / 1000
}

func (l *latencies) String() string {
	s := fmt.Sprintf("p50_ms=%.3f p99_ms=%.3f latency_pkts=%d", l.quantile(0.5), l.quantile(0.99), l.n())
	if l.truncated {
		s += " (samples truncated)"
	}
	return s
}
