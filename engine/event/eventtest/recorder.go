// Package eventtest provides a recording event.Sink for tests.
package eventtest

import (
	"sync"
	"time"

	"github.com/keepwatch/keepwatch/engine/event"
)

// Recorder is an event.Sink that keeps every event, safe for concurrent use.
type Recorder struct {
	mu     sync.Mutex
	events []event.Event
	notify chan struct{}
}

var _ event.Sink = (*Recorder)(nil)

// Emit records e.
func (r *Recorder) Emit(e event.Event) {
	r.mu.Lock()
	r.events = append(r.events, e)
	if r.notify != nil {
		close(r.notify)
		r.notify = nil
	}
	r.mu.Unlock()
}

// Events returns a copy of what was recorded so far.
func (r *Recorder) Events() []event.Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]event.Event(nil), r.events...)
}

// Of returns the recorded events of one kind.
func (r *Recorder) Of(k event.Kind) []event.Event {
	var out []event.Event
	for _, e := range r.Events() {
		if e.Kind == k {
			out = append(out, e)
		}
	}
	return out
}

// Wait blocks until match returns true for some recorded event, or timeout
// passes; it returns the matching event and whether one was found.
func (r *Recorder) Wait(timeout time.Duration, match func(event.Event) bool) (event.Event, bool) {
	deadline := time.After(timeout)
	seen := 0
	for {
		r.mu.Lock()
		for ; seen < len(r.events); seen++ {
			if match(r.events[seen]) {
				e := r.events[seen]
				r.mu.Unlock()
				return e, true
			}
		}
		if r.notify == nil {
			r.notify = make(chan struct{})
		}
		ch := r.notify
		r.mu.Unlock()
		select {
		case <-ch:
		case <-deadline:
			return event.Event{}, false
		}
	}
}
