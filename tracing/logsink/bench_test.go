package logsink_test

import (
	"log/slog"
	"testing"

	"github.com/keepwatch/keepwatch/engine/event"
	"github.com/keepwatch/keepwatch/tracing/logsink"
)

// BenchmarkEmit is the log sink's cost on the emitting goroutine: nothing
// for an advert, a queue send for a transition (written by Run elsewhere).
func BenchmarkEmit(b *testing.B) {
	for _, k := range []event.Kind{event.KindAdvertSent, event.KindTransition} {
		b.Run(k.String(), func(b *testing.B) {
			s := logsink.New(slog.New(slog.DiscardHandler), logsink.Options{QueueSize: 1})
			e := id()
			e.Kind = k
			b.ReportAllocs()
			for b.Loop() {
				s.Emit(e) // a full queue: counted and dropped
			}
		})
	}
}
