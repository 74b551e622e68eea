package notify

import (
	"testing"
	"time"

	"github.com/keepwatch/keepwatch/engine/config"
	"github.com/keepwatch/keepwatch/engine/event"
	"github.com/keepwatch/keepwatch/engine/vrrp"
)

// TestQueueOverflow fills the queues behind a slow script: Emit must keep
// returning at once, what does not fit must be counted, and every event
// must be either run or counted as dropped.
func TestQueueOverflow(t *testing.T) {
	dir := t.TempDir()
	slow := writeScript(t, dir, "slow.sh", `sleep 0.2`)
	c := &config.Config{Global: config.Global{ScriptUser: me(t)}}
	c.Instances = []config.Instance{{Name: "VI_1", Notify: config.Notify{Master: cmd(slow)}}}
	n, rec, stop := start(t, c, Options{QueueSize: 4, LaneSize: 2, DrainTimeout: 5 * time.Second})

	const events = 200
	var slowest time.Duration
	t0 := time.Now()
	for range events {
		e0 := time.Now()
		n.Emit(transition("VI_1", vrrp.StateMaster, 100))
		slowest = max(slowest, time.Since(e0))
	}
	total := time.Since(t0)
	// One run of the script takes 200 ms; a blocking Emit would wait for
	// it, and the loop would take tens of seconds. The bounds are far
	// looser than a non-blocking Emit needs, so a loaded machine passes.
	if slowest > 190*time.Millisecond || total > time.Second {
		t.Errorf("Emit blocked: slowest %v, %d events in %v", slowest, events, total)
	}
	if n.QueueDropped() == 0 {
		t.Fatal("nothing dropped with a 4-event queue and a 2-script lane behind a 200 ms script")
	}
	stop()
	ran := len(rec.Of(event.KindNotifyRun))
	if ran == 0 || uint64(ran)+n.QueueDropped() != events {
		t.Errorf("%d ran + %d dropped != %d emitted", ran, n.QueueDropped(), events)
	}
	if n.QueueName() != "notify" || n.QueueLen() != 0 {
		t.Errorf("queue %q len %d", n.QueueName(), n.QueueLen())
	}
}

// TestEmitIgnores: events the notifier does not act on never take queue room.
func TestEmitIgnores(t *testing.T) {
	n := New(&config.Config{}, Options{QueueSize: 1})
	for _, k := range []event.Kind{event.KindAdvertSent, event.KindProbe, event.KindNotifyRun, event.KindMailSent} {
		n.Emit(event.Event{Kind: k})
	}
	if n.QueueLen() != 0 || n.QueueDropped() != 0 {
		t.Errorf("len %d dropped %d", n.QueueLen(), n.QueueDropped())
	}
	n.Emit(event.Event{Kind: event.KindTransition})
	n.Emit(event.Event{Kind: event.KindQuorum})
	if n.QueueLen() != 1 || n.QueueDropped() != 1 {
		t.Errorf("len %d dropped %d", n.QueueLen(), n.QueueDropped())
	}
}

// BenchmarkEmit measures the emitter's cost: a copy into the queue, no
// allocation. The queue is drained by Run so it never fills.
func BenchmarkEmit(b *testing.B) {
	n := New(&config.Config{}, Options{QueueSize: 1 << 16})
	stop := make(chan struct{})
	go func() {
		for {
			select {
			case <-n.queue.Ready():
				for _, ok := n.queue.Pop(); ok; _, ok = n.queue.Pop() {
				}
			case <-stop:
				return
			}
		}
	}()
	defer close(stop)
	e := transition("VI_1", vrrp.StateMaster, 100)
	b.ReportAllocs()
	for b.Loop() {
		n.Emit(e)
	}
	b.ReportMetric(float64(n.QueueDropped())/float64(b.N), "dropped/op")
}

// BenchmarkEmitFull is Emit on a full queue: the drop path.
func BenchmarkEmitFull(b *testing.B) {
	n := New(&config.Config{}, Options{QueueSize: 1})
	e := transition("VI_1", vrrp.StateMaster, 100)
	n.Emit(e)
	b.ReportAllocs()
	for b.Loop() {
		n.Emit(e)
	}
}
