package bridge

import (
	"log/slog"
	"sync"
	"time"

	"github.com/pion/rtp"

	"github.com/janusbridge/janusbridge/media"
)

// queueLen bounds each file sink's queue: about 5 s of a 25 fps + 50 pps
// stream, enough to ride out a slow disk without holding much memory.
const queueLen = 384

// sinkQueue runs a frame sink on its own goroutine behind a bounded queue,
// so a slow or failed sink never stalls the bridge or the other sinks:
// when the queue is full the frame is dropped and counted, and the drops
// are logged at most once a second.
type sinkQueue struct {
	name  string
	sink  media.FrameSink
	stats *SinkStats
	log   *slog.Logger
	work  chan sinkWork
	wg    sync.WaitGroup
	// takesVideo tells a video track the sink writes (for
	// SinkStats.FirstVideoFrame).
	takesVideo func(media.Track) bool

	// mu guards closed against sends on the closed queue: a reader may
	// still push while its output is closed (a publisher left).
	mu          sync.RWMutex
	closed      bool
	dropMu      sync.Mutex // guards the drop log below (overflow path only)
	lastDropLog time.Time
	dropsLogged uint64
}

// sinkWork is either a frame or a new track set.
type sinkWork struct {
	frame  *media.Frame
	tracks []media.Track
}

func newSinkQueue(name string, sink media.FrameSink, stats *SinkStats, log *slog.Logger, takesVideo func(media.Track) bool) *sinkQueue {
	q := &sinkQueue{name: name, sink: sink, stats: stats, log: log, work: make(chan sinkWork, queueLen), takesVideo: takesVideo}
	q.wg.Add(1)
	go q.run()
	return q
}

func (q *sinkQueue) run() {
	defer q.wg.Done()
	var video []bool // by track index: a video track the sink writes
	for w := range q.work {
		var err error
		if w.frame != nil {
			track := w.frame.Track // the frame is the sink's from here
			err = q.sink.WriteFrame(w.frame)
			if err == nil && track < len(video) && video[track] && q.stats.FirstVideoFrame.Load() == nil {
				now := time.Now()
				q.stats.FirstVideoFrame.Store(&now)
			}
		} else {
			err = q.sink.SetTracks(w.tracks)
			video = video[:0]
			for _, t := range w.tracks {
				for len(video) <= t.Index {
					video = append(video, false)
				}
				video[t.Index] = q.takesVideo(t)
			}
		}
		if err != nil {
			q.stats.Errors.Add(1)
			q.log.Debug("sink write failed", "sink", q.name, "err", err)
		}
	}
}

// setTracks queues a track change; it waits for room so it is never lost.
func (q *sinkQueue) setTracks(tracks []media.Track) {
	q.mu.RLock()
	defer q.mu.RUnlock()
	if !q.closed {
		q.work <- sinkWork{tracks: tracks}
	}
}

// push queues a frame, or drops it when the sink is behind.
func (q *sinkQueue) push(f *media.Frame) {
	q.mu.RLock()
	defer q.mu.RUnlock()
	if q.closed {
		return
	}
	select {
	case q.work <- sinkWork{frame: f}:
	default:
		n := q.stats.Dropped.Add(1)
		q.dropMu.Lock()
		if now := time.Now(); now.Sub(q.lastDropLog) >= time.Second {
			q.log.Warn("sink is too slow, discarding frames", "sink", q.name, "dropped", n-q.dropsLogged)
			q.lastDropLog, q.dropsLogged = now, n
		}
		q.dropMu.Unlock()
	}
}

// close drains the queue, then closes the sink.
func (q *sinkQueue) close() error {
	q.mu.Lock()
	q.closed = true
	close(q.work)
	q.mu.Unlock()
	q.wg.Wait()
	return q.sink.Close()
}

// packetSink serialises the calls to a packet sink: every track's reader
// forwards to it on arrival, from its own goroutine, and a sink is called
// from one goroutine at a time (media.Output).
type packetSink struct {
	mu     sync.Mutex
	sink   media.PacketSink
	closed bool
}

func (p *packetSink) write(track int, pkt *rtp.Packet) {
	p.mu.Lock()
	if !p.closed {
		p.sink.WritePacket(track, pkt) // failures are counted by the sink
	}
	p.mu.Unlock()
}

func (p *packetSink) setTracks(tracks []media.Track) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return nil
	}
	return p.sink.SetTracks(tracks)
}

func (p *packetSink) close() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.closed = true
	return p.sink.Close()
}
