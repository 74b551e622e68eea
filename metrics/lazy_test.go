package metrics

import (
	"testing"
	"time"

	"github.com/keepwatch/keepwatch/engine/event"
	"github.com/keepwatch/keepwatch/engine/vrrp"
)

// TestDropCountsLazy: an instance holds no drop counters until its first
// dropped advert, and every drop reason's series is there, at 0, before.
func TestDropCountsLazy(t *testing.T) {
	m, reg := newTestMetrics(t)
	m.Declare(Declaration{Instances: []Instance{{Name: "VI_9", VRID: 9, Interface: "eth0", Priority: 100, Interval: time.Second}}})
	in, _ := m.instances.load("VI_9")
	if in.dropped.Load() != nil {
		t.Fatal("drop counters made before any drop")
	}
	if got := gathered(t, reg, "keepwatch_vrrp_adverts_dropped_total", "VI_9", "9", "eth0", "ipv4", "auth").GetCounter().GetValue(); got != 0 {
		t.Errorf("auth drops before any = %v, want 0", got)
	}
	m.Emit(event.Event{Kind: event.KindAdvertDropped, Instance: "VI_9", VRID: 9, Interface: "eth0", Family: vrrp.IPv4, Reason: event.DropAuth})
	m.Emit(event.Event{Kind: event.KindAdvertDropped, Instance: "VI_9", VRID: 9, Interface: "eth0", Family: vrrp.IPv4, Reason: event.DropAuth})
	if got := gathered(t, reg, "keepwatch_vrrp_adverts_dropped_total", "VI_9", "9", "eth0", "ipv4", "auth").GetCounter().GetValue(); got != 2 {
		t.Errorf("auth drops = %v, want 2", got)
	}
	if got := gathered(t, reg, "keepwatch_vrrp_adverts_dropped_total", "VI_9", "9", "eth0", "ipv4", "ttl").GetCounter().GetValue(); got != 0 {
		t.Errorf("ttl drops = %v, want 0", got)
	}
}
