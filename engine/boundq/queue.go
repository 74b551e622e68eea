// Package boundq is a bounded FIFO whose memory follows what it holds: for event queues sized for a burst but empty nearly all the time.
package boundq

import "sync"

// minRing is the ring's first size; it doubles up to the bound as needed.
const minRing = 8

// keepRing is the largest ring kept once the queue is empty again: a burst
// (250 instances' start-up transitions) grows the ring, and the memory goes
// back when the burst is drained.
const keepRing = 64

// Queue is a bounded FIFO safe for concurrent use. A buffered channel of
// the bound's size allocates every slot up front and, as its ring turns,
// touches every one of them (1,024 events of ~300 bytes: ~0.3 MiB resident
// per queue for the agent's life, issue 12); Queue holds a ring grown on
// demand and drops it when drained.
type Queue[T any] struct {
	mu    sync.Mutex
	ring  []T
	head  int // index of the oldest element
	n     int // elements held
	max   int
	ready chan struct{}
}

// New returns a queue holding at most limit elements (at least 1).
func New[T any](limit int) *Queue[T] {
	return &Queue[T]{max: max(1, limit), ready: make(chan struct{}, 1)}
}

// Push appends v and reports true, or reports false without waiting when the
// queue holds its maximum.
func (q *Queue[T]) Push(v T) bool {
	q.mu.Lock()
	if q.n == q.max {
		q.mu.Unlock()
		return false
	}
	if q.n == len(q.ring) {
		q.grow()
	}
	q.ring[(q.head+q.n)%len(q.ring)] = v
	q.n++
	q.mu.Unlock()
	select {
	case q.ready <- struct{}{}:
	default: // already signalled
	}
	return true
}

// grow doubles the ring (within max), keeping the order.
func (q *Queue[T]) grow() {
	size := min(max(minRing, 2*len(q.ring)), q.max)
	ring := make([]T, size)
	for i := range q.n {
		ring[i] = q.ring[(q.head+i)%len(q.ring)]
	}
	q.ring, q.head = ring, 0
}

// Pop removes and returns the oldest element; false when empty.
func (q *Queue[T]) Pop() (T, bool) {
	var zero T
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.n == 0 {
		return zero, false
	}
	v := q.ring[q.head]
	q.ring[q.head] = zero // let what it referenced go
	q.head = (q.head + 1) % len(q.ring)
	q.n--
	if q.n == 0 {
		q.head = 0
		if len(q.ring) > keepRing {
			q.ring = nil
		}
	}
	return v, true
}

// Ready is signalled after a Push; a consumer waits on it, then Pops until
// Pop reports false.
func (q *Queue[T]) Ready() <-chan struct{} { return q.ready }

// Len is the number of elements held.
func (q *Queue[T]) Len() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.n
}

// Cap is the ring's current size (the elements it can hold without growing).
func (q *Queue[T]) Cap() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.ring)
}
