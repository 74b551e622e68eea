package tracing

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
)

// Export batching defaults, sized for adverts as spans: 250 instances at
// 0.05 s are 5,000 spans/s, a full batch every 0.4 s.
const (
	DefaultExportBatch    = 2048
	DefaultExportInterval = time.Second
	// exportTimeout bounds one export, as the SDK's batch processor does.
	exportTimeout = 30 * time.Second
	// pendingBatches is how many full batches may wait for an export in
	// progress before new ones are dropped (and counted): with the one
	// being exported, 10,240 spans, 2 s of 250 instances at 0.05 s, held
	// only while the collector is slow to answer.
	pendingBatches = 4
)

// batcher is the span processor NewProvider installs in place of the SDK's
// batch span processor. That processor puts every ended span on a channel
// read by its own goroutine, so each span wakes a second goroutine behind
// the Sink's worker (which is already the bounded queue of DESIGN.md §3):
// with every advert a span, those wake-ups and the scheduler work they
// cause were the largest single share of the spans' CPU (issue 12). Here
// an ended span is appended to a slice under a mutex, and the export
// goroutine wakes once per full batch or per interval.
type batcher struct {
	exp      sdktrace.SpanExporter
	max      int
	interval time.Duration

	mu      sync.Mutex
	batch   []sdktrace.ReadOnlySpan
	stopped bool
	full    chan []sdktrace.ReadOnlySpan
	dropped atomic.Uint64
	// queued counts the full batches handed to full and not yet exported,
	// so that ForceFlush also waits for one the goroutine has taken.
	queued sync.WaitGroup

	// exporting serialises ExportSpans (a semaphore, so a flush can give
	// up waiting when its context ends): the SDK never calls an exporter
	// concurrently, and the OTLP exporters are written for that.
	exporting chan struct{}
	stop      chan struct{}
	done      chan struct{}
	once      sync.Once
}

var _ sdktrace.SpanProcessor = (*batcher)(nil)

func newBatcher(exp sdktrace.SpanExporter, max int, interval time.Duration) *batcher {
	if max <= 0 {
		max = DefaultExportBatch
	}
	if interval <= 0 {
		interval = DefaultExportInterval
	}
	b := &batcher{
		exp: exp, max: max, interval: interval,
		batch: make([]sdktrace.ReadOnlySpan, 0, max),
		full:  make(chan []sdktrace.ReadOnlySpan, pendingBatches),
		stop:  make(chan struct{}), done: make(chan struct{}),
		exporting: make(chan struct{}, 1),
	}
	go b.run()
	return b
}

func (b *batcher) OnStart(context.Context, sdktrace.ReadWriteSpan) {}

// OnEnd adds s to the batch; a full batch goes to the export goroutine, or
// is dropped if pendingBatches already wait (an exporter that is down must
// not grow the heap without bound, nor block the span worker).
func (b *batcher) OnEnd(s sdktrace.ReadOnlySpan) {
	if !s.SpanContext().IsSampled() {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.stopped {
		return
	}
	b.batch = append(b.batch, s)
	if len(b.batch) < b.max {
		return
	}
	b.queued.Add(1) // before the send: the goroutine may be done with it first
	select {
	case b.full <- b.batch:
		b.batch = make([]sdktrace.ReadOnlySpan, 0, b.max)
	default:
		b.queued.Done()
		b.dropped.Add(uint64(len(b.batch)))
		clear(b.batch)
		b.batch = b.batch[:0]
	}
}

// take returns the partial batch and starts a new one.
func (b *batcher) take() []sdktrace.ReadOnlySpan {
	b.mu.Lock()
	defer b.mu.Unlock()
	v := b.batch
	if len(v) == 0 {
		return nil
	}
	b.batch = make([]sdktrace.ReadOnlySpan, 0, b.max)
	return v
}

func (b *batcher) run() {
	defer close(b.done)
	t := time.NewTicker(b.interval)
	defer t.Stop()
	for {
		select {
		case v := <-b.full:
			b.export(context.Background(), v)
			b.queued.Done()
		case <-t.C:
			b.export(context.Background(), b.take())
		case <-b.stop:
			return
		}
	}
}

func (b *batcher) export(ctx context.Context, v []sdktrace.ReadOnlySpan) {
	if len(v) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, exportTimeout)
	defer cancel()
	select {
	case b.exporting <- struct{}{}:
	case <-ctx.Done():
		b.dropped.Add(uint64(len(v)))
		return
	}
	defer func() { <-b.exporting }()
	if err := b.exp.ExportSpans(ctx, v); err != nil {
		otel.Handle(err)
	}
}

// flush exports the waiting full batches and the partial one.
func (b *batcher) flush(ctx context.Context) error {
	for len(b.full) > 0 {
		select {
		case v := <-b.full:
			b.export(ctx, v)
			b.queued.Done()
		default: // the export goroutine took it
		}
	}
	b.export(ctx, b.take())
	waited := make(chan struct{})
	go func() { b.queued.Wait(); close(waited) }()
	select {
	case <-waited:
	case <-ctx.Done():
	}
	return ctx.Err()
}

// ForceFlush exports every span ended so far.
func (b *batcher) ForceFlush(ctx context.Context) error { return b.flush(ctx) }

// Shutdown stops the export goroutine, exports what is left and shuts the
// exporter down; spans ended afterwards are ignored. A second call does
// nothing.
func (b *batcher) Shutdown(ctx context.Context) error {
	var err error
	b.once.Do(func() {
		b.mu.Lock()
		b.stopped = true
		b.mu.Unlock()
		close(b.stop)
		select {
		case <-b.done:
		case <-ctx.Done():
			err = ctx.Err() // an export is stuck: leave it, and the rest
			return
		}
		if err = b.flush(ctx); err == nil {
			err = b.exp.Shutdown(ctx)
		}
	})
	return err
}

// Dropped returns the number of spans dropped because the exporter was
// pendingBatches full batches behind.
func (b *batcher) Dropped() uint64 { return b.dropped.Load() }
