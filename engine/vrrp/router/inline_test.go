package router

import (
	"context"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/keepwatch/keepwatch/engine/event"
	"github.com/keepwatch/keepwatch/engine/event/eventtest"
	"github.com/keepwatch/keepwatch/engine/netif"
	"github.com/keepwatch/keepwatch/engine/netif/netiftest"
	"github.com/keepwatch/keepwatch/engine/vrrp"
	"github.com/keepwatch/keepwatch/engine/vrrp/fsm"
	"github.com/keepwatch/keepwatch/engine/vrrp/receive"
)

// These tests drive the instance through a recording fake network: they
// check the split between the socket goroutine (routine adverts) and the
// instance's goroutine (everything else), which is pure logic. The real
// socket and netlink are in router_linux_test.go.

var (
	inlineSelf = netip.MustParseAddr("192.0.2.2")
	inlinePeer = netip.MustParseAddr("192.0.2.1")
	inlineVIP  = netip.MustParsePrefix("192.0.2.100/24")
)

// blockingAddrs is a fake netlink whose RemoveAddress waits until release
// is closed, as a slow netlink round trip would.
type blockingAddrs struct {
	*netiftest.Network
	entered chan struct{}
	release chan struct{}
	once    sync.Once
}

func (a *blockingAddrs) RemoveAddress(x netif.Address) error {
	a.once.Do(func() { close(a.entered) })
	<-a.release
	return a.Network.RemoveAddress(x)
}

type fakeNode struct {
	inst *Instance
	net  *netiftest.Network
	rec  *eventtest.Recorder
}

func startFake(t testing.TB, prio int, interval time.Duration, addrs Addresses, sink event.Sink) *fakeNode {
	t.Helper()
	f := newFake(t, prio, interval, addrs, sink)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = f.inst.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	return f
}

// newFake is startFake's instance, not running.
func newFake(t testing.TB, prio int, interval time.Duration, addrs Addresses, sink event.Sink) *fakeNode {
	t.Helper()
	f := &fakeNode{net: &netiftest.Network{}, rec: &eventtest.Recorder{}}
	if addrs == nil {
		addrs = f.net
	}
	if sink == nil {
		sink = f.rec
	}
	fc := fsm.DefaultConfig()
	fc.Name, fc.VRID, fc.Interface, fc.Family = "VI_1", 42, "eth0", vrrp.IPv4
	fc.Version, fc.Priority, fc.AdvertInterval = 3, prio, interval
	fc.Addr = inlineSelf
	cfg := Config{
		FSM: fc,
		Receive: receive.Instance{Family: vrrp.IPv4, Version: vrrp.Version3, VRID: 42, Interval: interval,
			VIPs: []netip.Addr{inlineVIP.Addr()}},
		Src:  inlineSelf,
		Dsts: []netip.Addr{netif.GroupIPv4},
		TTL:  255,
		VIPs: []netif.Address{{Prefix: inlineVIP, Dev: "eth0"}},
	}
	var err error
	f.inst, err = New(cfg, Deps{Conn: f.net, Addrs: addrs, Sink: sink})
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// advert is a valid v3 advert from inlinePeer with its IPv4 header.
func advert(t testing.TB, prio int, interval time.Duration) *netif.Packet {
	t.Helper()
	a := vrrp.Advertisement{Version: vrrp.Version3, Type: vrrp.TypeAdvertisement, VRID: 42, Priority: uint8(prio),
		Family: vrrp.IPv4, Addresses: []netip.Addr{inlineVIP.Addr()}}
	if err := a.SetInterval(interval); err != nil {
		t.Fatal(err)
	}
	msg, err := a.AppendWithChecksum(nil, inlinePeer, netif.GroupIPv4, vrrp.ChecksumPseudoHeader)
	if err != nil {
		t.Fatal(err)
	}
	ih := vrrp.NewIPv4Header(inlinePeer, netif.GroupIPv4, 1, 255, len(msg))
	h, err := ih.AppendBinary(nil)
	if err != nil {
		t.Fatal(err)
	}
	return &netif.Packet{Src: inlinePeer, Dst: netif.GroupIPv4, TTL: 255, IPHeader: h, VRRP: msg}
}

func waitFor(t testing.TB, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("after %v: %s", within, what)
		}
		time.Sleep(time.Millisecond)
	}
}

// TestBackupAdvertsStepInline: a BACKUP's adverts are stepped on the
// caller's (the socket's) goroutine, with no allocation, and they keep
// re-arming the down timer there: the instance stays BACKUP over many
// Master_Down_Intervals of adverts, and takes over once they stop.
func TestBackupAdvertsStepInline(t *testing.T) {
	const interval = 50 * time.Millisecond
	f := startFake(t, 100, interval, nil, nil)
	p := advert(t, 200, interval)
	waitFor(t, time.Second, "no handler registered", func() bool { return f.net.Deliver(p) })
	waitFor(t, time.Second, "not BACKUP following the peer", func() bool {
		s := f.inst.Snapshot()
		return s.State == vrrp.StateBackup && s.Master == inlinePeer
	})

	// Inline: when HandleVRRP returns, the advert has been counted.
	for range 10 {
		n := len(f.rec.Of(event.KindAdvertReceived))
		f.inst.ms[0].HandleVRRP(p)
		if got := len(f.rec.Of(event.KindAdvertReceived)); got != n+1 {
			t.Fatalf("advert received events %d after HandleVRRP, want %d: not stepped inline", got, n+1)
		}
	}
	if allocs := testing.AllocsPerRun(200, func() { f.inst.ms[0].HandleVRRP(p) }); allocs != 0 {
		t.Errorf("%.1f allocations per routine advert, want 0", allocs)
	}

	// Five down intervals (3×50 ms + skew) of adverts keep it BACKUP.
	md := f.inst.Snapshot().MasterDown
	end := time.Now().Add(5 * md)
	var last time.Time
	for time.Now().Before(end) {
		f.net.Deliver(p)
		last = time.Now()
		time.Sleep(interval)
	}
	if s := f.inst.Snapshot(); s.State != vrrp.StateBackup {
		t.Fatalf("state %v while the master advertises, want BACKUP", s.State)
	}
	if n := len(f.rec.Of(event.KindTransition)); n != 1 {
		t.Errorf("%d transitions, want only the startup one", n)
	}
	// Silence: the timer the socket goroutine armed last fires, no
	// earlier than Master_Down_Interval after the last advert.
	waitFor(t, 10*md, "no takeover after the master fell silent", func() bool {
		return f.inst.Snapshot().State == vrrp.StateMaster
	})
	tr, ok := f.rec.Wait(time.Second, func(e event.Event) bool {
		return e.Kind == event.KindTransition && e.To == vrrp.StateMaster
	})
	if !ok || tr.Reason != event.ReasonMasterDown {
		t.Errorf("takeover %+v, want reason master_down", tr)
	}
	if took := tr.Time.Sub(last); took < md-time.Millisecond {
		t.Errorf("took over %v after the last advert, before Master_Down_Interval %v", took, md)
	}
}

// TestSlowStepNeverBlocksSocket: a master yielding to a higher priority
// removes its VIPs through netlink. That step runs on the instance's
// goroutine; while it is stuck there, HandleVRRP (every instance on the
// socket waits for it) still returns at once, and the adverts it queues
// are stepped, in order, once netlink answers.
func TestSlowStepNeverBlocksSocket(t *testing.T) {
	const interval = 20 * time.Millisecond
	addrs := &blockingAddrs{Network: &netiftest.Network{}, entered: make(chan struct{}), release: make(chan struct{})}
	f := startFake(t, 150, interval, addrs, nil)
	waitFor(t, 2*time.Second, "not MASTER", func() bool { return f.inst.Snapshot().State == vrrp.StateMaster })
	released := false
	release := func() {
		if !released {
			close(addrs.release)
			released = true
		}
	}
	defer release()

	p := advert(t, 200, interval)
	f.net.Deliver(p)
	select {
	case <-addrs.entered:
	case <-time.After(2 * time.Second):
		t.Fatal("the yielding master never removed its VIP")
	}
	returned := make(chan struct{})
	go func() {
		for range 3 * rxQueue {
			f.net.Deliver(p)
		}
		close(returned)
	}()
	select {
	case <-returned:
	case <-time.After(time.Second):
		t.Fatal("HandleVRRP blocked behind the instance's netlink call")
	}
	n := len(f.rec.Of(event.KindAdvertReceived))
	release()
	// The queued adverts (at most rxQueue; the rest were dropped) are
	// stepped after the removal.
	waitFor(t, time.Second, "queued adverts not stepped", func() bool {
		return len(f.rec.Of(event.KindAdvertReceived)) > n
	})
	waitFor(t, time.Second, "not BACKUP", func() bool {
		s := f.inst.Snapshot()
		return s.State == vrrp.StateBackup && !s.VIPsHeld
	})
	var order []event.Kind
	for _, e := range f.rec.Events() {
		switch e.Kind {
		case event.KindVIPRemoved, event.KindAdvertReceived:
			order = append(order, e.Kind)
		}
	}
	// received (the yield), VIP removed, then the queued ones.
	k := 0
	for k < len(order) && order[k] != event.KindVIPRemoved {
		k++
	}
	if k == len(order) || k+1 == len(order) {
		t.Fatalf("events %v: no VIP removal followed by the queued adverts", order)
	}
	if f.inst.queued.Load() != 0 {
		t.Errorf("queued = %d after draining", f.inst.queued.Load())
	}
}

// TestShutdownAfterInlineAdverts: a master that stops resigns with
// priority 0 and removes its VIPs, and a stopped instance ignores adverts.
func TestShutdownAfterInlineAdverts(t *testing.T) {
	const interval = 20 * time.Millisecond
	nw := &netiftest.Network{}
	rec := &eventtest.Recorder{}
	fc := fsm.DefaultConfig()
	fc.Name, fc.VRID, fc.Interface, fc.Family = "VI_1", 42, "eth0", vrrp.IPv4
	fc.Version, fc.Priority, fc.AdvertInterval, fc.Addr = 3, 250, interval, inlineSelf
	inst, err := New(Config{FSM: fc,
		Receive: receive.Instance{Family: vrrp.IPv4, Version: vrrp.Version3, VRID: 42, Interval: interval,
			VIPs: []netip.Addr{inlineVIP.Addr()}},
		Src: inlineSelf, Dsts: []netip.Addr{netif.GroupIPv4}, TTL: 255,
		VIPs: []netif.Address{{Prefix: inlineVIP, Dev: "eth0"}}}, Deps{Conn: nw, Addrs: nw, Sink: rec})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = inst.Run(ctx) }()
	waitFor(t, 2*time.Second, "not MASTER", func() bool { return inst.Snapshot().State == vrrp.StateMaster })
	if len(nw.Addresses()) != 1 {
		t.Fatalf("addresses %v, want the VIP", nw.Addresses())
	}
	nw.Sent()
	cancel()
	<-done
	if len(nw.Addresses()) != 0 {
		t.Errorf("addresses %v after shutdown, want none", nw.Addresses())
	}
	sent := nw.Sent()
	if len(sent) == 0 {
		t.Fatal("no advert on shutdown")
	}
	last := sent[len(sent)-1].Packet
	if prio := last[20+2]; prio != 0 {
		t.Errorf("last advert priority %d, want 0", prio)
	}
	// After Run returned, an advert (the socket may still deliver one
	// before Handle(nil) is seen) changes nothing.
	n := len(rec.Events())
	inst.ms[0].HandleVRRP(advert(t, 200, interval))
	if got := len(rec.Events()); got != n {
		t.Errorf("%d events after a post-shutdown advert", got-n)
	}
}

// BenchmarkBackupAdvert is the backup's cost per received advert on the
// socket goroutine (validate, events, step, timer re-arm), with the
// default event sink.
func BenchmarkBackupAdvert(b *testing.B) {
	const interval = time.Second
	f := startFake(b, 100, interval, nil, event.Discard)
	p := advert(b, 200, interval)
	waitFor(b, time.Second, "no handler registered", func() bool { return f.net.Deliver(p) })
	waitFor(b, time.Second, "not BACKUP", func() bool { return f.inst.Snapshot().Master == inlinePeer })
	if f.inst.Snapshot().State != vrrp.StateBackup {
		b.Fatal("not BACKUP")
	}
	me := f.inst.ms[0]
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		me.HandleVRRP(p)
	}
}
