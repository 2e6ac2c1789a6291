package janus

import "sync"

// mailbox is an unbounded queue drained into a channel by its own goroutine,
// so that whoever posts (a transport's read loop) never blocks on a slow
// reader. Events are rare next to media, so unbounded is safe in practice.
type mailbox[T any] struct {
	mu     sync.Mutex
	items  []T
	ending bool
	wake   chan struct{}
	out    chan T
}

// newMailbox starts the mailbox's pump, tracked by wg. The pump gives up on
// undelivered items when abort is closed.
func newMailbox[T any](wg *sync.WaitGroup, abort <-chan struct{}) *mailbox[T] {
	m := &mailbox[T]{wake: make(chan struct{}, 1), out: make(chan T)}
	wg.Add(1)
	go m.pump(wg, abort)
	return m
}

func (m *mailbox[T]) post(v T) {
	m.mu.Lock()
	if !m.ending {
		m.items = append(m.items, v)
	}
	m.mu.Unlock()
	m.signal()
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
