package transcode

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Packet is one encoded audio packet on its stream's timeline.
type Packet struct {
	// PTS is the presentation time of the packet's first sample, on the
	// timeline of the input packets' PTS.
	PTS time.Duration
	// Data is an ADTS frame (AAC output) or an Opus packet (Opus output).
	// It is valid only during the Output call.
	Data []byte
	// Samples is the packet's duration in samples of Rate.
	Samples int
	Rate    int
}

// Transcoder re-encodes one audio stream. Write is called from one
// goroutine at a time; the output packets go to Config.Output, in order.
type Transcoder interface {
	// Write hands over one input packet (an Opus packet, or an ADTS frame)
	// and its PTS. It never blocks: while the transcoder is behind or
	// restarting, the packet is dropped and counted. data is copied.
	Write(pts time.Duration, data []byte)
	// Stats returns the transcoder's counters. Safe from any goroutine.
	Stats() Stats
	// Close flushes what the encoder holds (to Output), stops the
	// transcoder and waits for it. Output is not called after Close
	// returns. It is idempotent.
	Close() error
}

// Stats are the counters of a Transcoder.
type Stats struct {
	// In and Out count the packets written and produced; Dropped counts the
	// input packets dropped (queue full, restarting, unparsable).
	In, Out, Dropped uint64
	// Restarts counts the times the ffmpeg child was restarted after failing.
	Restarts uint64
	// Latency is how long an input sample takes to come out encoded
	// (moving average): the transcoder's added latency.
	Latency time.Duration
	// CPU is the CPU time (user + system) of the ffmpeg children so far.
	CPU time.Duration
	// PID is the process id of the running ffmpeg child, 0 when none.
	PID int
}

// Config configures a transcoder.
type Config struct {
	// Bitrate is the output bitrate in bit/s; 0 means 128000 for AAC and
	// 64000 for Opus.
	Bitrate int
	// Channels is the output's channel count, 1 or 2; 0 means 2.
	Channels int
	// Output receives the output packets, from the transcoder's own
	// goroutine. It must not call back into the transcoder.
	Output func(Packet)
	// Logger receives the transcoder's log lines (starts, failures); nil
	// discards them.
	Logger *slog.Logger
	// FFmpeg is the ffmpeg program; "" means "ffmpeg" from PATH.
	FFmpeg string
}

// queueLen bounds the packets waiting for the child: 2.5 s of 20 ms
// packets, enough to ride out a child's start.
const queueLen = 128

// maxPacket is the largest input packet accepted (an ADTS frame is at most
// 8191 bytes, an Opus packet far less).
const maxPacket = 8192

// FFmpeg is a Transcoder run by an ffmpeg child process.
type FFmpeg struct {
	cfg    Config
	newLeg func() leg
	log    *slog.Logger
	work   chan work
	free   chan []byte
	quit   chan struct{}
	once   sync.Once
	done   sync.WaitGroup

	clock clock

	in, out, dropped, restarts atomic.Uint64
	pid                        atomic.Int64
	cpuPast                    atomic.Int64 // ns, of the children that ended
}

var _ Transcoder = (*FFmpeg)(nil)

// work is one input packet waiting for the child.
type work struct {
	pts time.Duration
	buf []byte
	at  time.Time
}

// leg is what differs between the two directions.
type leg interface {
	// args are ffmpeg's arguments after the common ones.
	args(cfg Config) []string
	// samples returns an input packet's sample count and rate.
	samples(pkt []byte) (n, rate int, err error)
	// start writes what goes before the first packet into a new child.
	start(w io.Writer) error
	// write writes one input packet; end is its end sample position.
	write(w io.Writer, pkt []byte, end int64) error
	// read reads the child's output until it ends, calling emit for each
	// packet with its sample count and rate; delay is the encoder's delay in
	// output samples, known once read has seen the stream's header.
	read(r io.Reader, emit func(pkt []byte, samples, rate, delay int)) error
}

// NewOpusToAAC returns a transcoder from Opus packets (48 kHz) to AAC-LC
// ADTS frames at 48 kHz.
func NewOpusToAAC(cfg Config) (*FFmpeg, error) {
	if cfg.Bitrate == 0 {
		cfg.Bitrate = 128000
	}
	return start(cfg, func() leg { return &opusToAAC{} })
}

// NewAACToOpus returns a transcoder from AAC ADTS frames (any rate) to
// 20 ms Opus packets at 48 kHz.
func NewAACToOpus(cfg Config) (*FFmpeg, error) {
	if cfg.Bitrate == 0 {
		cfg.Bitrate = 64000
	}
	return start(cfg, func() leg { return &aacToOpus{} })
}

func start(cfg Config, newLeg func() leg) (*FFmpeg, error) {
	if cfg.Output == nil {
		return nil, errors.New("transcode: no Output")
	}
	if cfg.Channels == 0 {
		cfg.Channels = 2
	}
	if cfg.Channels != 1 && cfg.Channels != 2 {
		return nil, fmt.Errorf("transcode: %d channels, want 1 or 2", cfg.Channels)
	}
	if cfg.Bitrate < 6000 || cfg.Bitrate > 512000 {
		return nil, fmt.Errorf("transcode: bitrate %d bit/s is out of range (6000 to 512000)", cfg.Bitrate)
	}
	if cfg.FFmpeg == "" {
		cfg.FFmpeg = "ffmpeg"
	}
	if _, err := exec.LookPath(cfg.FFmpeg); err != nil {
		return nil, fmt.Errorf("transcode: %w", err)
	}
	t := &FFmpeg{
		cfg:    cfg,
		newLeg: newLeg,
		log:    cfg.Logger,
		work:   make(chan work, queueLen),
		free:   make(chan []byte, queueLen),
		quit:   make(chan struct{}),
	}
	if t.log == nil {
		t.log = slog.New(slog.DiscardHandler)
	}
	for i := 0; i < queueLen; i++ {
		t.free <- make([]byte, 0, 2048)
	}
	t.done.Add(1)
	go t.run()
	return t, nil
}

// Write queues an input packet for the child; see Transcoder.
func (t *FFmpeg) Write(pts time.Duration, data []byte) {
	if len(data) == 0 || len(data) > maxPacket {
		t.dropped.Add(1)
		return
	}
	select {
	case buf := <-t.free:
		select {
		case t.work <- work{pts: pts, buf: append(buf[:0], data...), at: time.Now()}:
		case <-t.quit:
		}
	default:
		t.dropped.Add(1)
	}
}

// Stats returns the counters; see Transcoder.
func (t *FFmpeg) Stats() Stats {
	s := Stats{
		In: t.in.Load(), Out: t.out.Load(), Dropped: t.dropped.Load(), Restarts: t.restarts.Load(),
		Latency: t.clock.latency(), CPU: time.Duration(t.cpuPast.Load()), PID: int(t.pid.Load()),
	}
	if s.PID != 0 {
		s.CPU += procCPU(s.PID)
	}
	return s
}

// Close stops the transcoder; see Transcoder.
func (t *FFmpeg) Close() error {
	t.once.Do(func() { close(t.quit) })
	t.done.Wait()
	return nil
}

// run keeps a child running until Close, restarting it with backoff.
func (t *FFmpeg) run() {
	defer t.done.Done()
	const minBackoff, maxBackoff = 200 * time.Millisecond, 10 * time.Second
	backoff := minBackoff
	for {
		began := time.Now()
		err := t.child()
		if err == nil { // closed
			return
		}
		t.restarts.Add(1)
		if time.Since(began) > time.Minute {
			backoff = minBackoff
		}
		t.log.Warn("transcoder failed, restarting", "err", err, "in", backoff)
		timer := time.NewTimer(backoff)
		for waiting := true; waiting; {
			select {
			case <-t.quit:
				timer.Stop()
				return
			case w := <-t.work: // stale by the time a child is back
				t.dropped.Add(1)
				t.free <- w.buf
			case <-timer.C:
				waiting = false
			}
		}
		backoff = min(2*backoff, maxBackoff)
	}
}

// child runs one ffmpeg child: it feeds it until it fails (the error) or
// the transcoder is closed (nil, after the child flushed its output).
func (t *FFmpeg) child() error {
	l := t.newLeg()
	args := append([]string{"-hide_banner", "-nostdin", "-loglevel", "error",
		"-probesize", "32", "-analyzeduration", "0", "-fflags", "+nobuffer"}, l.args(t.cfg)...)
	cmd := exec.Command(t.cfg.FFmpeg, args...)
	stderr := &tail{max: 2048}
	cmd.Stderr = stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return fmt.Errorf("transcode: %w", err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return fmt.Errorf("transcode: %w", err)
	}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("transcode: starting ffmpeg: %w", err)
	}
	t.pid.Store(int64(cmd.Process.Pid))
	t.clock.reset()
	readErr := make(chan error, 1)
	go func() { // owned by child: it waits for readErr below
		readErr <- l.read(bufio.NewReaderSize(stdout, 16384), t.emit)
	}()
	bw := bufio.NewWriterSize(stdin, 8192)
	failed := l.start(bw)
	if failed == nil {
		failed = bw.Flush()
	}
	var readDone bool
	for failed == nil {
		select {
		case w := <-t.work:
			failed = t.feed(l, bw, w)
		case err := <-readErr:
			readDone = true
			failed = fmt.Errorf("output ended: %w", err)
		case <-t.quit:
			failed = errClosed
			// Feed what was queued before Close.
			for drained := false; !drained && failed == errClosed; {
				select {
				case w := <-t.work:
					if err := t.feed(l, bw, w); err != nil {
						failed = err
					}
				default:
					drained = true
				}
			}
			if failed == errClosed {
				if err := bw.Flush(); err != nil {
					failed = err
				}
			}
		}
	}
	stdin.Close()
	if failed == errClosed {
		// Let the child flush the encoder's last packets, briefly.
		select {
		case <-readErr:
			readDone = true
		case <-time.After(2 * time.Second):
		}
	}
	cmd.Process.Kill()
	if !readDone {
		<-readErr
	}
	werr := cmd.Wait()
	t.pid.Store(0)
	if ps := cmd.ProcessState; ps != nil {
		t.cpuPast.Add(int64(ps.UserTime() + ps.SystemTime()))
	}
	if failed == errClosed {
		return nil
	}
	if msg := stderr.String(); msg != "" {
		return fmt.Errorf("transcode: ffmpeg: %w (%v): %s", failed, werr, msg)
	}
	return fmt.Errorf("transcode: ffmpeg: %w (%v)", failed, werr)
}

var errClosed = errors.New("closed")

// feed writes one queued packet to the child.
func (t *FFmpeg) feed(l leg, bw *bufio.Writer, w work) error {
	defer func() { t.free <- w.buf }()
	n, rate, err := l.samples(w.buf)
	if err != nil {
		t.dropped.Add(1)
		return nil
	}
	end, ok := t.clock.in(w.pts, n, rate, w.at)
	if !ok {
		// The input's rate changed: a new child starts from zero.
		t.dropped.Add(1)
		return fmt.Errorf("input rate changed from %d to %d Hz", t.clock.inRate, rate)
	}
	t.in.Add(1)
	if err := l.write(bw, w.buf, end); err != nil {
		return err
	}
	// Flush when nothing else waits: a packet never sits in the buffer.
	if len(t.work) == 0 {
		return bw.Flush()
	}
	return nil
}

// emit places an output packet on the input's timeline and hands it out.
func (t *FFmpeg) emit(pkt []byte, samples, rate, delay int) {
	pts, ok := t.clock.out(samples, rate, delay, time.Now())
	if !ok {
		return // before any input (cannot happen with a sane child)
	}
	t.out.Add(1)
	t.cfg.Output(Packet{PTS: pts, Data: pkt, Samples: samples, Rate: rate})
}

// procCPU returns the CPU time (user + system) of a running process, from
// /proc/PID/stat; 0 when it cannot be read.
func procCPU(pid int) time.Duration {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0
	}
	// Fields after the command name (which may hold spaces) in parentheses.
	s := string(b)
	if i := strings.LastIndexByte(s, ')'); i >= 0 {
		s = s[i+1:]
	}
	f := strings.Fields(s)
	if len(f) < 13 {
		return 0
	}
	ut, _ := strconv.ParseInt(f[11], 10, 64) // field 14: utime
	st, _ := strconv.ParseInt(f[12], 10, 64) // field 15: stime
	const clkTck = 100                       // USER_HZ on Linux
	return time.Duration(ut+st) * time.Second / clkTck
}

// tail keeps the last max bytes written to it (a child's stderr).
type tail struct {
	mu  sync.Mutex
	max int
	b   []byte
}

func (t *tail) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.b = append(t.b, p...)
	if len(t.b) > t.max {
		t.b = t.b[len(t.b)-t.max:]
	}
	return len(p), nil
}

func (t *tail) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return strings.TrimSpace(string(t.b))
}
