package tracing

import (
	"context"
	"sync"
	"testing"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
)

// recordingExporter keeps the size of every export; gate, if set, holds
// each export until it is closed (an exporter that is down).
type recordingExporter struct {
	mu      sync.Mutex
	batches []int
	gate    chan struct{}
	entered chan struct{}
	shut    bool
}

func (r *recordingExporter) ExportSpans(ctx context.Context, spans []sdktrace.ReadOnlySpan) error {
	if r.entered != nil {
		select {
		case r.entered <- struct{}{}:
		default:
		}
	}
	if r.gate != nil {
		select {
		case <-r.gate:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.batches = append(r.batches, len(spans))
	return nil
}

func (r *recordingExporter) Shutdown(context.Context) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.shut = true
	return nil
}

func (r *recordingExporter) sizes() []int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]int(nil), r.batches...)
}

func endSpans(p *Provider, n int) {
	tr := p.Tracer()
	for range n {
		_, sp := tr.Start(context.Background(), "x")
		sp.End()
	}
}

// TestBatcherFullBatches: a full batch is exported at once, in one export
// of ExportBatch spans, without waiting for the interval; the rest waits
// for ForceFlush (or the interval).
func TestBatcherFullBatches(t *testing.T) {
	exp := &recordingExporter{}
	p, err := NewProvider(context.Background(), Config{Exporter: exp, ExportBatch: 10, ExportInterval: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	endSpans(p, 25)
	deadline := time.Now().Add(10 * time.Second)
	for len(exp.sizes()) < 2 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if got := exp.sizes(); len(got) != 2 || got[0] != 10 || got[1] != 10 {
		t.Fatalf("exports %v before any flush, want [10 10]", got)
	}
	if err := p.ForceFlush(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := exp.sizes(); len(got) != 3 || got[2] != 5 {
		t.Fatalf("exports %v after ForceFlush, want [10 10 5]", got)
	}
	if err := p.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	if !exp.shut {
		t.Error("exporter not shut down")
	}
	endSpans(p, 1) // after Shutdown: ignored, no panic
	if p.Dropped() != 0 {
		t.Errorf("dropped %d, want 0", p.Dropped())
	}
}

// TestBatcherInterval: a partial batch goes out after ExportInterval.
func TestBatcherInterval(t *testing.T) {
	exp := &recordingExporter{}
	p, err := NewProvider(context.Background(), Config{Exporter: exp, ExportBatch: 1000, ExportInterval: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Shutdown(context.Background()) })
	endSpans(p, 3)
	deadline := time.Now().Add(10 * time.Second)
	for len(exp.sizes()) == 0 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if got := exp.sizes(); len(got) != 1 || got[0] != 3 {
		t.Fatalf("exports %v, want [3] after the interval", got)
	}
}

// TestBatcherStuckExporter: with the exporter stuck, one batch is in its
// hands, pendingBatches wait, and later full batches are dropped and
// counted (in the Sink's QueueDropped too), never blocking the caller.
func TestBatcherStuckExporter(t *testing.T) {
	exp := &recordingExporter{gate: make(chan struct{}), entered: make(chan struct{}, 1)}
	p, err := NewProvider(context.Background(), Config{Exporter: exp, ExportBatch: 4, ExportInterval: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	s := NewSink(p, SinkOptions{})
	endSpans(p, 4) // batch 1: taken by the export goroutine, stuck
	select {
	case <-exp.entered:
	case <-time.After(10 * time.Second):
		t.Fatal("first batch never reached the exporter")
	}
	done := make(chan struct{})
	go func() { endSpans(p, 4*(pendingBatches+2)); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("ending spans blocked on a stuck exporter")
	}
	if got, want := p.Dropped(), uint64(4*2); got != want {
		t.Errorf("dropped %d spans, want %d", got, want)
	}
	if s.QueueDropped() != p.Dropped() {
		t.Errorf("sink QueueDropped %d, want the provider's %d", s.QueueDropped(), p.Dropped())
	}
	close(exp.gate)
	if err := p.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	total := 0
	for _, n := range exp.sizes() {
		total += n
	}
	if want := 4 * (1 + pendingBatches); total != want {
		t.Errorf("exported %d spans, want %d (%v)", total, want, exp.sizes())
	}
}

// TestBatcherShutdownStuck: Shutdown and ForceFlush give up when their
// context ends, even with an export stuck in the exporter (the agent's exit
// waits 5 s for spans, not the 30 s export timeout).
func TestBatcherShutdownStuck(t *testing.T) {
	exp := &recordingExporter{gate: make(chan struct{}), entered: make(chan struct{}, 1)}
	t.Cleanup(func() { close(exp.gate) })
	p, err := NewProvider(context.Background(), Config{Exporter: exp, ExportBatch: 2, ExportInterval: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	endSpans(p, 2)
	select {
	case <-exp.entered:
	case <-time.After(10 * time.Second):
		t.Fatal("batch never reached the exporter")
	}
	endSpans(p, 1)
	for _, f := range []func(context.Context) error{p.ForceFlush, p.Shutdown} {
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		t0 := time.Now()
		err := f(ctx)
		cancel()
		if err == nil || time.Since(t0) > 5*time.Second {
			t.Errorf("with the exporter stuck: %v after %v, want the context's error at once", err, time.Since(t0))
		}
	}
}
