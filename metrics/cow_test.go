package metrics

import (
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/keepwatch/keepwatch/engine/event"
)

// TestCowList: entries are found, created once, and dropped by keep; a
// snapshot taken before a change is not changed by it.
func TestCowList(t *testing.T) {
	var l cowList[string, *int]
	made := 0
	mk := func() *int { made++; return new(int) }
	a := l.loadOrCreate("a", mk)
	if got := l.loadOrCreate("a", mk); got != a || made != 1 {
		t.Fatalf("second loadOrCreate of a: %p (made %d), want %p (made 1)", got, made, a)
	}
	b := l.loadOrCreate("b", mk)
	before := l.snapshot()
	l.keep(func(k string) bool { return k != "a" })
	if _, ok := l.load("a"); ok {
		t.Error("a still found after keep dropped it")
	}
	if got, ok := l.load("b"); !ok || got != b {
		t.Errorf("load(b) = %p, %v after keep; want %p, true", got, ok, b)
	}
	if len(before) != 2 || before[0].k != "a" || before[1].k != "b" {
		t.Errorf("snapshot taken before keep changed to %v", before)
	}
	if got := l.snapshot(); len(got) != 1 || cap(got) != 1 {
		t.Errorf("after keep: len %d cap %d, want 1 and 1 (no spare capacity kept)", len(got), cap(got))
	}
}

// TestCowListConcurrent: concurrent loadOrCreate of the same keys makes one
// value per key (run under -race on the unit tier).
func TestCowListConcurrent(t *testing.T) {
	var l cowList[int, *int]
	var wg sync.WaitGroup
	got := make([][8]*int, 4)
	for g := range got {
		wg.Go(func() {
			for k := range 8 {
				got[g][k] = l.loadOrCreate(k, func() *int { return new(int) })
			}
		})
	}
	wg.Wait()
	for g := range got {
		if got[g] != got[0] {
			t.Fatalf("goroutine %d got other values than goroutine 0", g)
		}
	}
	if n := len(l.snapshot()); n != 8 {
		t.Errorf("%d entries, want 8", n)
	}
}

// TestDeclareVIPs: a VIP declared twice has one series; a reload keeps the
// VIPs still declared, with their values, and drops the others.
func TestDeclareVIPs(t *testing.T) {
	m, reg := newTestMetrics(t)
	a, b, c := netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("192.0.2.2"), netip.MustParseAddr("192.0.2.3")
	in := Instance{Name: "VI_9", VRID: 9, Interface: "eth0", Priority: 100, Interval: time.Second, VIPs: []netip.Addr{a, b, a}}
	m.Declare(Declaration{Instances: []Instance{in}})
	if n, err := testutil.GatherAndCount(reg, "keepwatch_vrrp_vip_present"); err != nil || n != 2 {
		t.Fatalf("vip_present: %d series (%v), want 2", n, err)
	}
	m.Emit(event.Event{Kind: event.KindVIPAdded, Instance: "VI_9", VRID: 9, Interface: "eth0", Addr: b})
	in.VIPs = []netip.Addr{b, c}
	m.Declare(Declaration{Instances: []Instance{in}})
	if n, err := testutil.GatherAndCount(reg, "keepwatch_vrrp_vip_present"); err != nil || n != 2 {
		t.Fatalf("vip_present after reload: %d series (%v), want 2", n, err)
	}
	for addr, want := range map[string]float64{"192.0.2.2": 1, "192.0.2.3": 0} {
		if got := gathered(t, reg, "keepwatch_vrrp_vip_present", "VI_9", "9", "eth0", "ipv4", addr).GetGauge().GetValue(); got != want {
			t.Errorf("vip_present %s = %v, want %v", addr, got, want)
		}
	}
}
