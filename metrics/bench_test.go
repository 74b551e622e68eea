package metrics

import (
	"testing"
	"time"

	"github.com/keepwatch/keepwatch/engine/event"
	"github.com/keepwatch/keepwatch/engine/vrrp"
)

// BenchmarkEmit measures the per-event cost on the VRRP hot path: it must
// be 0 allocs/op (DESIGN.md §9).
func BenchmarkEmit(b *testing.B) {
	id := event.Event{Instance: "VI_1", VRID: 51, Interface: "eth0", Family: vrrp.IPv4, Priority: 150, Interval: time.Second}
	sent, recv, drop := id, id, id
	sent.Kind = event.KindAdvertSent
	recv.Kind = event.KindAdvertReceived
	drop.Kind, drop.Reason = event.KindAdvertDropped, event.DropAuth
	for _, bc := range []struct {
		name string
		e    event.Event
	}{{"advert_sent", sent}, {"advert_received", recv}, {"advert_dropped", drop}} {
		b.Run(bc.name, func(b *testing.B) {
			m, _ := newTestMetrics(b)
			m.Emit(event.Event{Kind: event.KindTransition, Instance: "VI_1", From: vrrp.StateInit, To: vrrp.StateBackup})
			e := bc.e
			b.ReportAllocs()
			for i := 0; b.Loop(); i++ {
				e.ID = uint64(i)
				e.Time = t0.Add(time.Duration(i) * time.Second)
				m.Emit(e)
			}
		})
	}
}
