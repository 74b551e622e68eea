package tracing

import (
	"context"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/keepwatch/keepwatch/engine/event"
)

// SinkOptions tune a Sink.
type SinkOptions struct {
	// QueueSize bounds the events waiting for the span worker; when it is
	// full, events are dropped and counted, never waited for. Default 4096,
	// or DefaultAdvertQueueSize when adverts are sampled.
	QueueSize int
	// Causes bounds how many recent events are remembered as possible
	// parents (by event ID, for Event.Cause). Rounded up to a power of two;
	// default 4096. A cause older than that starts a new trace.
	Causes int
	// AdvertSampleRatio is the fraction of adverts (sent, received,
	// dropped) that become vrrp.advert spans: at 1/s per instance they
	// would drown everything else. Default 0: none.
	AdvertSampleRatio float64
	// ProbeSampleRatio is the fraction of successful probes that become
	// check.probe spans; failed probes always do. Negative means 0; zero
	// means the default, 1 (every probe).
	ProbeSampleRatio float64
}

// DefaultAdvertQueueSize is the default QueueSize when adverts become
// spans: 250 instances at 0.05 s are 5,000 a second, so 4,096 events are
// under a second of them, less than the span worker can be held off the
// CPU on a loaded host (issue 12 saw drops). 16,384 queued events are
// about 5 MiB (328 bytes each), made only when advert tracing is on.
const DefaultAdvertQueueSize = 16384

// Sink is an event.Sink that turns events into spans: one per transition,
// priority change, probe, IPVS reconcile, notify script and mail (and the
// other non-advert events), adverts only when sampled. An event's Cause
// becomes its span's parent, so a failed probe → priority change →
// transition chain is one trace.
//
// Emit only chooses the span's ids and queues a copy of the event: it
// never waits for span building or export (DESIGN.md §3). Run builds the
// spans.
type Sink struct {
	provider *Provider
	tracer   trace.Tracer
	enabled  bool
	queue    chan queued
	dropped  atomic.Uint64

	advertThreshold uint64 // sample when mix(ID) < threshold
	probeThreshold  uint64
	advertAll       bool
	probeAll        bool

	mu    sync.Mutex
	slots []slot // direct-mapped by event ID: a bounded map of recent spans
	mask  uint64

	// The span worker's buffers, reused for every span: each would
	// otherwise be a heap allocation per span, which at thousands of
	// advert spans a second is GC work (issue 12).
	attrs     []attribute.KeyValue     // attributes
	start     startCtx                 // the start context
	startOpts [2]trace.SpanStartOption // timestamp, kind
	endOpts   [1]trace.SpanEndOption   // timestamp
	addrs     addrCache                // addresses as attribute text
}

// kindOptions are the span kinds as start options, made once: a
// trace.WithSpanKind made per span is an allocation.
var kindOptions = func() (o [trace.SpanKindConsumer + 1]trace.SpanStartOption) {
	for k := range o {
		o[k] = trace.WithSpanKind(trace.SpanKind(k))
	}
	return o
}()

// slot remembers the span ids of one recent event.
type slot struct {
	id     uint64
	ids    ids
	parent trace.SpanID
}

type queued struct {
	e      event.Event
	ids    ids
	parent trace.SpanID // zero: a root span
}

var _ event.Sink = (*Sink)(nil)

// NewSink returns a Sink that builds spans with p's tracer. With a disabled
// Provider, Emit returns at once and TraceID reports nothing.
func NewSink(p *Provider, opts SinkOptions) *Sink {
	if opts.QueueSize <= 0 {
		opts.QueueSize = 4096
		if opts.AdvertSampleRatio > 0 {
			opts.QueueSize = DefaultAdvertQueueSize
		}
	}
	n := 4096
	if opts.Causes > 0 {
		n = 1
		for n < opts.Causes {
			n <<= 1
		}
	}
	if opts.ProbeSampleRatio == 0 {
		opts.ProbeSampleRatio = 1
	}
	s := &Sink{provider: p, tracer: p.Tracer(), enabled: p.Enabled(), start: startCtx{Context: context.Background()}}
	if !s.enabled {
		// Export off: Emit and TraceID return before touching the queue or
		// the slots, so none are made. Together they are about 1.6 MiB of
		// heap (4,096 queued events of ~350 bytes, 4,096 slots), which the
		// GC's heap goal would double (issue 12). Run waits on a nil
		// channel until ctx ends.
		return s
	}
	s.queue = make(chan queued, opts.QueueSize)
	s.slots, s.mask = make([]slot, n), uint64(n-1)
	s.advertThreshold, s.advertAll = threshold(opts.AdvertSampleRatio)
	s.probeThreshold, s.probeAll = threshold(opts.ProbeSampleRatio)
	return s
}

func threshold(ratio float64) (uint64, bool) {
	switch {
	case ratio >= 1:
		return math.MaxUint64, true
	case ratio <= 0 || math.IsNaN(ratio):
		return 0, false
	}
	f := ratio * (1 << 64)
	if f >= math.MaxUint64 {
		return math.MaxUint64, true
	}
	return uint64(f), false
}

// mix is splitmix64's finaliser: it spreads sequential event IDs evenly,
// so sampling by ID is deterministic and unbiased.
func mix(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return x
}

// traced reports whether e becomes a span.
func (s *Sink) traced(e *event.Event) bool {
	switch e.Kind {
	case event.KindUnknown:
		return false
	case event.KindAdvertSent, event.KindAdvertReceived, event.KindAdvertDropped:
		return s.advertAll || (s.advertThreshold != 0 && mix(e.ID) < s.advertThreshold)
	case event.KindProbe:
		return !e.OK || s.probeAll || (s.probeThreshold != 0 && mix(e.ID) < s.probeThreshold)
	}
	return true
}

// assign returns the ids of e's span, choosing them on first call: a fresh
// span id, and the trace id of e's cause if it is still remembered, else a
// fresh one. Later calls for the same event ID return the same ids, so the
// metrics sink may ask (TraceID) before or after this sink's Emit.
func (s *Sink) assign(e *event.Event) (ids, trace.SpanID) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if e.ID != 0 {
		if sl := &s.slots[e.ID&s.mask]; sl.id == e.ID {
			return sl.ids, sl.parent
		}
	}
	var parent trace.SpanID
	var tid trace.TraceID
	if e.Cause != 0 {
		if sl := &s.slots[e.Cause&s.mask]; sl.id == e.Cause {
			tid, parent = sl.ids.trace, sl.ids.span
		}
	}
	if !tid.IsValid() {
		tid = randomTraceID()
	}
	v := ids{trace: tid, span: randomSpanID()}
	if e.ID != 0 {
		s.slots[e.ID&s.mask] = slot{id: e.ID, ids: v, parent: parent}
	}
	return v, parent
}

// Emit queues e for the span worker if it is traced. It never blocks: a
// full queue drops the event and counts it (QueueDropped).
func (s *Sink) Emit(e event.Event) {
	if !s.enabled || !s.traced(&e) {
		return
	}
	v, parent := s.assign(&e)
	select {
	case s.queue <- queued{e: e, ids: v, parent: parent}:
	default:
		s.dropped.Add(1)
	}
}

// TraceID returns the hex trace id e's span has (or will have), for a
// metrics exemplar. It implements metrics.TraceIDSource.
func (s *Sink) TraceID(e event.Event) (string, bool) {
	if !s.enabled || e.ID == 0 || !s.traced(&e) {
		return "", false
	}
	v, _ := s.assign(&e)
	return v.trace.String(), true
}

// QueueName, QueueLen and QueueDropped implement metrics.Queue.
func (s *Sink) QueueName() string { return "tracing" }

// QueueLen returns the number of events waiting for the span worker.
func (s *Sink) QueueLen() int { return len(s.queue) }

// QueueDropped returns the number of events dropped on a full queue, plus
// the spans the provider dropped because its exporter was behind: either
// way an event that never reached the collector.
func (s *Sink) QueueDropped() uint64 { return s.dropped.Load() + s.provider.Dropped() }

// Run builds and ends the spans of queued events until ctx is cancelled,
// then builds those still queued and returns. Spans go to the Provider's
// batch processor; call Provider.Shutdown after Run returns to flush them.
//
// The worker does not wake for every event: after a wake it builds what is
// queued, then waits runPause before looking again, so at thousands of
// traced adverts a second it wakes about 1/runPause times a second and
// builds the spans in runs, instead of being woken by each Emit (a wake-up
// and its scheduler work cost about as much as building the span, issue
// 12). A queue of QueueSize events covers runPause at up to QueueSize /
// runPause events a second; at rest, an event still wakes it at once.
func (s *Sink) Run(ctx context.Context) error {
	pause := time.NewTimer(runPause)
	defer pause.Stop()
	for {
		select {
		case q := <-s.queue:
			s.span(&q)
		case <-ctx.Done():
			s.drain()
			return nil
		}
		s.drain()
		pause.Reset(runPause)
		select {
		case <-pause.C:
		case <-ctx.Done():
			s.drain()
			return nil
		}
	}
}

// runPause is how long Run waits between runs of span building: spans wait
// for an export batch for up to a second anyway (DefaultExportInterval).
const runPause = 20 * time.Millisecond

// drain builds the spans of the events queued now.
func (s *Sink) drain() {
	for {
		select {
		case q := <-s.queue:
			s.span(&q)
		default:
			return
		}
	}
}

// span builds the span of one event. Its start is the event's time less
// its duration (a probe, a script), its end the event's time.
func (s *Sink) span(q *queued) {
	e := &q.e
	end := e.Time
	if end.IsZero() {
		end = time.Now()
	}
	start := end.Add(-e.Duration)

	s.start.ids = q.ids
	var ctx context.Context = &s.start
	if q.parent.IsValid() {
		ctx = trace.ContextWithRemoteSpanContext(ctx, trace.NewSpanContext(trace.SpanContextConfig{
			TraceID:    q.ids.trace,
			SpanID:     q.parent,
			TraceFlags: trace.FlagsSampled,
		}))
	}
	name, kind := spanName(e)
	// The options go in the worker's arrays, not in a variadic slice made
	// per call; the SDK reads them inside Start and End and keeps none.
	// One timestamp option serves as start and end when the event has no
	// duration (a timestamp is boxed, an allocation, each time).
	ts := trace.WithTimestamp(end)
	s.startOpts[0], s.startOpts[1], s.endOpts[0] = ts, kindOptions[kind], ts
	if e.Duration != 0 {
		s.startOpts[0] = trace.WithTimestamp(start)
	}
	_, sp := s.tracer.Start(ctx, name, s.startOpts[:]...)
	// Set after Start rather than trace.WithAttributes, which copies them
	// into the start config first; the SDK copies them into the span
	// either way, so the worker's buffer is reused. The sampler (always
	// sample, provider.go) does not look at attributes.
	s.attrs = appendAttributes(s.attrs[:0], e, &s.addrs)
	sp.SetAttributes(s.attrs...)
	setStatus(sp, e)
	sp.End(s.endOpts[:]...)
}

// SpanContext returns the trace and span ids e's span has (or will have),
// so a log record about e can carry them. Like TraceID, it may be called
// before or after Emit; ok is false for events that do not become spans.
func (s *Sink) SpanContext(e event.Event) (sc trace.SpanContext, ok bool) {
	if !s.enabled || e.ID == 0 || !s.traced(&e) {
		return sc, false
	}
	v, _ := s.assign(&e)
	return trace.NewSpanContext(trace.SpanContextConfig{TraceID: v.trace, SpanID: v.span, TraceFlags: trace.FlagsSampled}), true
}
