package router

import (
	"context"
	"testing"
	"time"

	"github.com/keepwatch/keepwatch/engine/event"
	"github.com/keepwatch/keepwatch/engine/vrrp"
)

// These tests are about the instance's worker (Instance.work): what it is
// woken for is a set of flags, so their order after a wake and the wakes
// that race with a worker finishing are the logic to check.

// TestStopWinsOverQueued: a stop signalled while the worker is busy comes
// before the adverts and the priority change queued with it: the master
// resigns with its priority-0 advert (reference §2.4) rather than first
// yielding to the queued higher-priority advert.
func TestStopWinsOverQueued(t *testing.T) {
	const interval = 20 * time.Millisecond
	f := newFake(t, 150, interval, nil, nil)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = f.inst.Run(ctx) }()
	defer func() { cancel(); <-done }()
	waitFor(t, 2*time.Second, "not MASTER", func() bool { return f.inst.Snapshot().State == vrrp.StateMaster })

	// Hold the worker: it takes the priority change from the box, then
	// waits for mu.
	i := f.inst
	i.mu.Lock()
	locked := true
	defer func() {
		if locked {
			i.mu.Unlock()
		}
	}()
	i.SetPriority(0, 140, 0)
	waitFor(t, 2*time.Second, "the worker did not take the priority", func() bool {
		i.boxMu.Lock()
		defer i.boxMu.Unlock()
		return !i.box[0].prio
	})
	received := len(f.rec.Of(event.KindAdvertReceived))
	// Queued behind it: a higher priority's adverts (the socket cannot
	// take mu) and another priority change; then the stop.
	p := advert(t, 200, interval)
	for range rxQueue {
		f.net.Deliver(p)
	}
	if q := i.queued.Load(); q != rxQueue {
		t.Fatalf("%d adverts queued, want %d", q, rxQueue)
	}
	i.SetPriority(0, 120, 0)
	cancel()
	waitFor(t, 2*time.Second, "Run did not signal the stop", func() bool { return i.pend.Load()&wakeStop != 0 })
	f.net.Sent()
	locked = false
	i.mu.Unlock()
	<-done

	if got := len(f.rec.Of(event.KindAdvertReceived)); got != received {
		t.Errorf("%d queued adverts stepped before the shutdown", got-received)
	}
	if p := i.Snapshot().Priority; p != 140 {
		t.Errorf("priority %d, want 140: the change queued with the stop was applied", p)
	}
	sent := f.net.Sent()
	if len(sent) == 0 {
		t.Fatal("no advert on shutdown")
	}
	if prio := sent[len(sent)-1].Packet[20+2]; prio != 0 {
		t.Errorf("last advert priority %d, want 0", prio)
	}
	if len(f.net.Addresses()) != 0 {
		t.Errorf("addresses %v after shutdown, want none", f.net.Addresses())
	}
	// Nothing starts a worker after the shutdown.
	i.SetPriority(0, 130, 0)
	if !i.busy.Load() {
		t.Error("busy cleared after the shutdown: a signal would start a worker on a stopped instance")
	}
}

// TestDrainGivesWayToDeadline: a deadline handed over while the worker
// steps queued adverts is run before the rest of them (a flood of adverts
// does not hold up a takeover), and the adverts left stay flagged, in
// order.
func TestDrainGivesWayToDeadline(t *testing.T) {
	const interval = 20 * time.Millisecond
	f := newFake(t, 100, interval, nil, nil)
	i := f.inst
	// No worker: busy stays set as before Run, and the test is the worker.
	i.start()
	defer func() { i.shutdown(); i.stop() }()
	for prio := 200; prio < 203; prio++ {
		i.ms[0].enqueue(advert(t, prio, interval))
	}
	if q := i.queued.Load(); q != 3 {
		t.Fatalf("%d adverts queued, want 3", q)
	}
	// The worker took wakeRx, then the scheduler handed over a deadline.
	i.pend.Store(wakeTick)
	i.drain()
	if q := i.queued.Load(); q != 3 {
		t.Errorf("%d adverts stepped with a deadline pending, want none", 3-q)
	}
	if f := i.pend.Load(); f != wakeTick|wakeRx {
		t.Errorf("flags %#x after giving way, want the deadline and the adverts (%#x)", f, wakeTick|wakeRx)
	}
	i.pend.Store(0)
	i.drain()
	var prios []int
	for _, e := range f.rec.Of(event.KindAdvertReceived) {
		prios = append(prios, e.Priority)
	}
	if len(prios) != 3 || prios[0] != 200 || prios[1] != 201 || prios[2] != 202 {
		t.Errorf("adverts stepped with priorities %v, want 200 201 202 in arrival order", prios)
	}
	if q := i.queued.Load(); q != 0 {
		t.Errorf("queued = %d after draining", q)
	}
}

// TestNoLostWake: every signal is acted on, also one that comes while the
// worker is finishing (between its last look at the flags and clearing
// busy): each priority change is applied, one after the other, and a lost
// wake would leave one waiting forever.
func TestNoLostWake(t *testing.T) {
	f := startFake(t, 100, time.Second, nil, nil)
	i := f.inst
	for k := range 2000 {
		p := 1 + k%254
		i.SetPriority(0, p, 0)
		deadline := time.Now().Add(2 * time.Second)
		for i.Snapshot().Priority != p {
			if time.Now().After(deadline) {
				t.Fatalf("change %d: priority %d never applied (flags %#x, busy %v)", k, p, i.pend.Load(), i.busy.Load())
			}
			if k%2 == 0 {
				time.Sleep(time.Microsecond) // odd changes signal right as the worker returns
			}
		}
	}
}
