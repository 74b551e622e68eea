package metrics

import (
	"fmt"
	"net/netip"
	"runtime"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/keepwatch/keepwatch/engine/event"
	"github.com/keepwatch/keepwatch/engine/vrrp"
)

// TestInstanceHeapCost keeps the per-instance series cheap (issue 12,
// deploy/bench.d/FOOTPRINT.md): 250 declared instances with a VIP, a
// transition and an advert sent each must hold under 1.25 KiB of heap
// apiece. As client_golang children (71 per instance) they held about 30
// KiB; as atomics written by the collector about 4.1 KiB; with the state and drop reason pairs shared
// rather than copied per instance (series.extra) about 2.7 KiB; with the
// transitions' from, to and reason pairs and every pair's name shared
// (pair, transitionPairs) about 2.4 KiB; with an instance's VIPs,
// transitions and unusual drop reasons in copy-on-write lists rather than
// maps of one or two entries (cowList) about 1.8 KiB; with the family,
// vrid, interface, segment and address pairs shared by the instances one
// Declare makes (sharedPairs) and only the identity and segment kept of the
// declaration (declared) about 1.4 KiB; with a VIP's and the segment's
// series written from the identity pairs and one shared pair
// (series.extra), not a slice each, about 1.25 KiB; with a histogram's
// counts made at its first observation (a master observes lateness, a
// backup gaps, never both) about 1.1 KiB; with the drop counters made at
// the first dropped advert (dropCounts) about 1 KiB. Both histograms'
// counts are inline again, so that an advert writes one cache line of its
// instance (TestInstanceHotLines; the CPU budget of issue 12 outweighs
// the ~130 bytes): about 1.1 KiB.
func TestInstanceHeapCost(t *testing.T) {
	heap := func() uint64 {
		runtime.GC()
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		return ms.HeapAlloc
	}
	const n = 250
	m, err := New(prometheus.NewRegistry(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	var d Declaration
	for i := range n {
		d.Instances = append(d.Instances, Instance{Name: fmt.Sprintf("VI_%d", i), VRID: uint8(i), Interface: "eth0",
			Priority: 100, Interval: 50 * time.Millisecond, Version: 3, Segment: "192.0.2.0/24",
			VIPs: []netip.Addr{netip.AddrFrom4([4]byte{192, 0, 2, byte(i)})}})
	}
	before := heap()
	m.Declare(d)
	for _, in := range d.Instances {
		m.Emit(event.Event{Kind: event.KindTransition, Instance: in.Name, From: vrrp.StateInit, To: vrrp.StateBackup, Reason: "startup"})
		// An advert sent, as a running master: its lateness histogram
		// holds counts from then on.
		m.Emit(event.Event{Kind: event.KindAdvertSent, Instance: in.Name, VRID: in.VRID, Interface: in.Interface, Family: vrrp.IPv4, Duration: time.Millisecond})
	}
	after := heap()
	runtime.KeepAlive(m)
	per := float64(after-before) / n
	t.Logf("%.0f bytes of heap per instance", per)
	if per > 1.25*(1<<10) {
		t.Errorf("%.0f bytes of heap per instance, want under 1.25 KiB", per)
	}
}
