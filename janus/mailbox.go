package janus

import "sync"

// mailbox is a queue drained into a channel by its own goroutine, so that
// whoever posts (a transport's read loop) never blocks on a slow reader.
// Events are rare next to media; a limit, when set, bounds what a reader
// that fell far behind (or a peer flooding it) can make it hold.
type mailbox[T any] struct {
	mu     sync.Mutex
	items  []T
	queued int // posted, not yet delivered
	limit  int // 0: unbounded
	ending bool
	wake   chan struct{}
	out    chan T
}

// newMailbox starts the mailbox's pump, tracked by wg. The pump gives up on
// undelivered items when abort is closed. limit bounds the items queued
// (0: no bound).
func newMailbox[T any](wg *sync.WaitGroup, abort <-chan struct{}, limit int) *mailbox[T] {
	m := &mailbox[T]{wake: make(chan struct{}, 1), out: make(chan T), limit: limit}
	wg.Add(1)
	go m.pump(wg, abort)
	return m
}

// post queues v; it reports false when v is dropped because the mailbox
// holds its limit.
func (m *mailbox[T]) post(v T) bool {
	m.mu.Lock()
	if m.limit > 0 && m.queued >= m.limit {
		m.mu.Unlock()
		return false
	}
	if !m.ending {
		m.items = append(m.items, v)
		m.queued++
	}
	m.mu.Unlock()
	m.signal()
	return true
}

// end delivers what is queued, then closes the output channel.
func (m *mailbox[T]) end() {
	m.mu.Lock()
	m.ending = true
	m.mu.Unlock()
	m.signal()
}

func (m *mailbox[T]) signal() {
	select {
	case m.wake <- struct{}{}:
	default:
	}
}

func (m *mailbox[T]) pump(wg *sync.WaitGroup, abort <-chan struct{}) {
	defer wg.Done()
	defer close(m.out)
	for {
		m.mu.Lock()
		items, ending := m.items, m.ending
		m.items = nil
		m.mu.Unlock()
		for _, v := range items {
			select {
			case m.out <- v:
				m.mu.Lock()
				m.queued--
				m.mu.Unlock()
			case <-abort:
				return
			}
		}
		if ending && len(items) == 0 {
			return
		}
		if len(items) > 0 {
			continue
		}
		select {
		case <-m.wake:
		case <-abort:
			return
		}
	}
}
