package tracing

import (
	"context"
	"encoding/binary"
	"math/rand/v2"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
)

// ids are a span's trace and span ids, chosen when its event is emitted,
// before the span exists: the metrics sink needs the trace id at once for
// its exemplar, and a child event may be emitted before its parent's span
// has been built by the queue worker.
type ids struct {
	trace trace.TraceID
	span  trace.SpanID
}

type idsKey struct{}

// startCtx carries the ids of the span being started to the IDGenerator
// (as *ids under idsKey). The Sink's worker keeps one and overwrites it per
// span instead of allocating a context.WithValue (and boxing the ids) for
// each: NewIDs reads it synchronously inside Start, and nothing keeps the
// start context afterwards.
type startCtx struct {
	context.Context
	ids ids
}

func (c *startCtx) Value(key any) any {
	if key == (idsKey{}) {
		return &c.ids
	}
	return c.Context.Value(key)
}

// IDGenerator returns the sdktrace.IDGenerator the Sink depends on: it
// gives a span the ids the Sink chose for its event (carried in the start
// context) and random ids otherwise. NewProvider installs it; a caller
// building its own sdktrace.TracerProvider for a Sink must install it too.
func IDGenerator() sdktrace.IDGenerator { return idGenerator{} }

type idGenerator struct{}

func (idGenerator) NewIDs(ctx context.Context) (trace.TraceID, trace.SpanID) {
	if v, ok := ctx.Value(idsKey{}).(*ids); ok {
		return v.trace, v.span
	}
	return randomTraceID(), randomSpanID()
}

func (idGenerator) NewSpanID(ctx context.Context, traceID trace.TraceID) trace.SpanID {
	if v, ok := ctx.Value(idsKey{}).(*ids); ok && v.trace == traceID {
		return v.span
	}
	return randomSpanID()
}

func randomTraceID() (t trace.TraceID) {
	for !t.IsValid() {
		binary.BigEndian.PutUint64(t[:8], rand.Uint64())
		binary.BigEndian.PutUint64(t[8:], rand.Uint64())
	}
	return t
}

func randomSpanID() (s trace.SpanID) {
	for !s.IsValid() {
		binary.BigEndian.PutUint64(s[:], rand.Uint64())
	}
	return s
}
