//go:build !race

package tracing

import (
	"context"
	"net/netip"
	"testing"

	"github.com/keepwatch/keepwatch/engine/event"
	"github.com/keepwatch/keepwatch/engine/vrrp"
)

// TestAdvertSpanAllocs bounds the heap allocations of building one advert
// span: with every advert a span (issue 12), each is GC work thousands of
// times a second. What remains is the SDK's (the span, its attributes, its
// snapshot at End, the context Start returns, the boxed timestamp); the
// worker's own (option slices, span kind, address text) are reused.
// (Not under -race, which adds an allocation of its own.)
func TestAdvertSpanAllocs(t *testing.T) {
	p, err := NewProvider(context.Background(), Config{Exporter: discardExporter{}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Shutdown(context.Background()) })
	s := NewSink(p, SinkOptions{AdvertSampleRatio: 1})
	e := event.Event{Kind: event.KindAdvertSent, ID: 7, Time: t0, Instance: "VI_1", VRID: 51, Interface: "eth0",
		Family: vrrp.IPv4, Priority: 200, Addr: netip.MustParseAddr("224.0.0.18")}
	v, parent := s.assign(&e)
	q := queued{e: e, ids: v, parent: parent}
	got := testing.AllocsPerRun(1000, func() { s.span(&q) })
	t.Logf("%.1f allocations per advert span", got)
	if got > 5 {
		t.Errorf("an advert span allocates %.1f times, want at most 5 (the SDK's)", got)
	}
}
