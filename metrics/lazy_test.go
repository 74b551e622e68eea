package metrics

import (
	"sync"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"

	"github.com/keepwatch/keepwatch/engine/event"
	"github.com/keepwatch/keepwatch/engine/vrrp"
)

// TestHistogramLazyCounts: a histogram holds no counts until observed and
// is written with zero buckets meanwhile; observations racing the first
// one are all counted (run under -race on the unit tier).
func TestHistogramLazyCounts(t *testing.T) {
	h := newAtomicHistogram(gapBuckets)
	var d dto.Metric
	h.write(&d)
	if got := d.GetHistogram(); h.counts.Load() != nil || got.GetSampleCount() != 0 || len(got.GetBucket()) != len(gapBuckets) {
		t.Fatalf("unobserved: counts made %v, %d samples, %d buckets; want none, 0, %d", h.counts.Load() != nil, got.GetSampleCount(), len(got.GetBucket()), len(gapBuckets))
	}
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 100 {
				h.observe(0.05)
			}
		})
	}
	wg.Wait()
	h.write(&d)
	if got := d.GetHistogram().GetSampleCount(); got != 800 {
		t.Errorf("%d samples after 800 concurrent observations, want 800", got)
	}
	if got := d.GetHistogram().GetBucket()[2].GetCumulativeCount(); got != 800 {
		t.Errorf("le=0.05 bucket %d, want 800", got)
	}
	if newAtomicHistogram(latenessBuckets).bounds == nil {
		t.Error("lateness histogram has no bounds")
	}
}

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
