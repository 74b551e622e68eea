package lab

import (
	"slices"
	"sync"
	"time"
)

// Watcher samples who holds each VIP of a cluster and records every change.
type Watcher struct {
	c     *Cluster
	start time.Time
	stop  chan struct{}
	done  chan struct{}
	mu    sync.Mutex
	tl    Timeline
	last  [][]int
	onRec func(Record)
}

// Watch starts sampling the cluster's VIP holders every period (by netlink
// in each namespace). onRecord, if set, is called for each new record.
func (c *Cluster) Watch(period time.Duration, onRecord func(Record)) *Watcher {
	w := &Watcher{c: c, start: time.Now(), stop: make(chan struct{}), done: make(chan struct{}), onRec: onRecord}
	for _, v := range c.VIPs() {
		w.tl.VIPs = append(w.tl.VIPs, v.Addr())
	}
	w.sample()
	go func() {
		defer close(w.done)
		t := time.NewTicker(period)
		defer t.Stop()
		for {
			select {
			case <-w.stop:
				return
			case <-t.C:
				w.sample()
			}
		}
	}()
	return w
}

// Since is the time since the watcher started.
func (w *Watcher) Since() time.Duration { return time.Since(w.start) }

func (w *Watcher) holders() [][]int {
	out := make([][]int, len(w.tl.VIPs))
	for v, vip := range w.tl.VIPs {
		// On a netlink error the VIP counts as held by nobody.
		out[v], _ = w.c.Holders(vip)
	}
	return out
}

func (w *Watcher) sample() {
	h := w.holders()
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.last != nil && slices.EqualFunc(h, w.last, slices.Equal[[]int]) {
		return
	}
	w.last = h
	w.add(Record{At: time.Since(w.start), Holders: h})
}

func (w *Watcher) add(r Record) {
	w.tl.Records = append(w.tl.Records, r)
	if w.onRec != nil {
		w.onRec(r)
	}
}

// Mark records an event (such as "cut 1") with the holders at that moment.
func (w *Watcher) Mark(event string) {
	h := w.holders()
	w.mu.Lock()
	defer w.mu.Unlock()
	w.last = h
	w.add(Record{At: time.Since(w.start), Event: event, Holders: h})
}

// Timeline returns what has been recorded so far.
func (w *Watcher) Timeline() Timeline {
	w.mu.Lock()
	defer w.mu.Unlock()
	tl := w.tl
	tl.Records = slices.Clone(tl.Records)
	tl.End = time.Since(w.start)
	return tl
}

// Stop ends sampling and returns the timeline.
func (w *Watcher) Stop() Timeline {
	select {
	case <-w.stop:
	default:
		close(w.stop)
	}
	<-w.done
	w.sample() // what a caller just waited for is in the timeline
	return w.Timeline()
}
