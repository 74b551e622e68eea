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
	"github.com/keepwatch/keepwatch/engine/netif/nskit"
	"github.com/keepwatch/keepwatch/engine/netif/nskit/nskittest"
	"github.com/keepwatch/keepwatch/engine/vrrp"
	"github.com/keepwatch/keepwatch/engine/vrrp/fsm"
	"github.com/keepwatch/keepwatch/engine/vrrp/receive"
)

// node is one keepwatch VRRP instance running in a lab namespace over the
// real socket and netlink.
type node struct {
	n      *nskit.Node
	conn   *netif.Conn
	sys    *netif.System
	inst   *Instance
	rec    *eventtest.Recorder
	cancel context.CancelFunc
	done   chan struct{}
}

var vip4 = netip.MustParsePrefix("192.0.2.100/24")

func startNode(t *testing.T, n *nskit.Node, prio int, interval time.Duration, mutate func(*Config)) *node {
	t.Helper()
	return startNodeWith(t, n, prio, interval, mutate, nil)
}

// startNodeWith is startNode with a hook that can change the instance's
// Deps (wrap Addrs, add an Announcer) before it is made.
func startNodeWith(t *testing.T, n *nskit.Node, prio int, interval time.Duration, mutate func(*Config), deps func(*Deps)) *node {
	t.Helper()
	nd := &node{n: n, rec: &eventtest.Recorder{}, done: make(chan struct{})}
	err := n.Do(func() error {
		var err error
		nd.conn, err = netif.ListenIPv4(n.Link, netif.Config{})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	sys, err := netif.OpenAt(n.NsHandle())
	if err != nil {
		t.Fatal(err)
	}
	nd.sys = sys
	fc := fsm.DefaultConfig()
	fc.Name, fc.VRID, fc.Interface, fc.Family = "VI_1", 42, n.Link, vrrp.IPv4
	fc.Version, fc.Priority, fc.AdvertInterval = 3, prio, interval
	fc.Addr = n.IPv4.Addr()
	cfg := Config{
		FSM: fc,
		Receive: receive.Instance{Family: vrrp.IPv4, Version: vrrp.Version3, VRID: 42, Interval: interval,
			VIPs: []netip.Addr{vip4.Addr()}},
		Src:  n.IPv4.Addr(),
		Dsts: []netip.Addr{netif.GroupIPv4},
		TTL:  255,
		VIPs: []netif.Address{{Prefix: vip4, Dev: n.Link}},
	}
	if mutate != nil {
		mutate(&cfg)
	}
	d := Deps{Conn: nd.conn, Addrs: sys, Sink: nd.rec}
	if deps != nil {
		deps(&d)
	}
	nd.inst, err = New(cfg, d)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	nd.cancel = cancel
	// The socket outlives the instance: a stopping master still sends its
	// priority-0 advert through it.
	connCtx, connCancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); _ = nd.conn.Run(connCtx) }()
	go func() {
		_ = nd.inst.Run(ctx)
		connCancel()
		nd.conn.Close()
		wg.Wait()
		close(nd.done)
	}()
	t.Cleanup(nd.stop)
	return nd
}

func (nd *node) stop() {
	select {
	case <-nd.done:
		return
	default:
	}
	nd.cancel()
	<-nd.done
	nd.sys.Close()
}

func (nd *node) waitState(t *testing.T, s vrrp.State, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for time.Now().Before(deadline) {
		if nd.inst.Snapshot().State == s {
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatalf("%s: state %v after %v, want %v", nd.n.NS, nd.inst.Snapshot().State, within, s)
}

func (nd *node) hasVIP(t *testing.T) bool {
	t.Helper()
	ok, err := nd.sys.HasAddress(netif.Address{Prefix: vip4, Dev: nd.n.Link})
	if err != nil {
		t.Fatal(err)
	}
	return ok
}

// TestElectionAndResignation: two keepwatch routers over a real bridge. The
// higher priority wins and holds the VIP; when it stops it resigns with
// priority 0, and the backup takes over after only its skew time.
func TestElectionAndResignation(t *testing.T) {
	nskittest.Require(t)
	lab := nskittest.New(t, "rtelect", 2)
	const interval = 50 * time.Millisecond
	a := startNode(t, lab.Node(1), 150, interval, nil)
	b := startNode(t, lab.Node(2), 100, interval, nil)

	a.waitState(t, vrrp.StateMaster, 2*time.Second)
	b.waitState(t, vrrp.StateBackup, time.Second)
	time.Sleep(5 * interval)
	if !a.hasVIP(t) || b.hasVIP(t) {
		t.Fatalf("VIP on A=%v B=%v, want only A", a.hasVIP(t), b.hasVIP(t))
	}
	if got := b.inst.Snapshot(); got.Master != lab.Node(1).IPv4.Addr() || got.MasterPriority != 150 {
		t.Errorf("B hears master %v prio %d, want A at 150", got.Master, got.MasterPriority)
	}
	// A's takeover order on the event stream: transition, then the advert, then the VIP.
	evs := a.rec.Events()
	order := []event.Kind{}
	for _, e := range evs {
		switch e.Kind {
		case event.KindTransition:
			if e.To == vrrp.StateMaster {
				order = append(order, e.Kind)
			}
		case event.KindAdvertSent, event.KindVIPAdded:
			if len(order) > 0 && len(order) < 3 && order[len(order)-1] != e.Kind {
				order = append(order, e.Kind)
			}
		}
	}
	if len(order) < 3 || order[1] != event.KindAdvertSent || order[2] != event.KindVIPAdded {
		for _, e := range evs {
			t.Logf("%v %v->%v %v", e.Kind, e.From, e.To, e.Addr)
		}
		t.Errorf("takeover order %v, want transition, advert, VIP", order)
	}
	if n := len(b.rec.Of(event.KindAdvertReceived)); n < 3 {
		t.Errorf("B received %d adverts", n)
	}

	// A stops: priority 0, VIP removed; B becomes master after its skew,
	// (256-100)/256 × 50ms ≈ 30ms, well before its 3-interval down timer.
	stopped := time.Now()
	a.stop()
	b.waitState(t, vrrp.StateMaster, time.Second)
	took := time.Since(stopped)
	if a.hasVIP(t) {
		t.Error("A still holds the VIP after stopping")
	}
	if !b.hasVIP(t) {
		t.Error("B took over without the VIP")
	}
	tr, ok := b.rec.Wait(time.Second, func(e event.Event) bool {
		return e.Kind == event.KindTransition && e.To == vrrp.StateMaster && e.Time.After(stopped)
	})
	if !ok || tr.Reason != event.ReasonPriorityZero {
		t.Errorf("B's transition = %+v, want reason priority_zero", tr)
	}
	if len(a.rec.Of(event.KindVIPRemoved)) != 1 {
		t.Errorf("A's VIP removed events: %d", len(a.rec.Of(event.KindVIPRemoved)))
	}
	t.Logf("takeover after resignation: %v", took)
}

// TestPreemptionAndDrops: a higher-priority router joining later preempts;
// adverts with the wrong version are dropped and counted.
func TestPreemptionAndDrops(t *testing.T) {
	nskittest.Require(t)
	lab := nskittest.New(t, "rtpreempt", 3)
	const interval = 50 * time.Millisecond
	b := startNode(t, lab.Node(2), 100, interval, nil)
	b.waitState(t, vrrp.StateMaster, 2*time.Second)
	a := startNode(t, lab.Node(1), 200, interval, nil)
	a.waitState(t, vrrp.StateMaster, 2*time.Second)
	b.waitState(t, vrrp.StateBackup, time.Second)
	if tr, ok := a.rec.Wait(time.Second, func(e event.Event) bool {
		return e.Kind == event.KindTransition && e.To == vrrp.StateMaster
	}); !ok || tr.Reason != event.ReasonPreempted {
		t.Errorf("A's takeover = %+v, want preempted", tr)
	}
	// A v2 router on the same VRID drops A's v3 adverts, by version.
	c := startNode(t, lab.Node(3), 50, time.Second, func(c *Config) {
		c.FSM.Version = 2
		c.Receive.Version = vrrp.Version2
		c.Receive.Interval = time.Second
	})
	if _, ok := c.rec.Wait(time.Second, func(e event.Event) bool {
		return e.Kind == event.KindAdvertDropped && e.Reason == event.DropVersion && e.Addr == lab.Node(1).IPv4.Addr()
	}); !ok {
		t.Error("no version drop recorded on the v2 router")
	}
	if a.inst.Snapshot().State != vrrp.StateMaster {
		t.Error("A lost mastership to a v2 advert")
	}
}
