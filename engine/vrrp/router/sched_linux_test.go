package router

import (
	"context"
	"fmt"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/keepwatch/keepwatch/engine/event/eventtest"
	"github.com/keepwatch/keepwatch/engine/netif"
	"github.com/keepwatch/keepwatch/engine/netif/netiftest"
	"github.com/keepwatch/keepwatch/engine/netif/nskit"
	"github.com/keepwatch/keepwatch/engine/netif/nskit/nskittest"
	"github.com/keepwatch/keepwatch/engine/vrrp"
	"github.com/keepwatch/keepwatch/engine/vrrp/fsm"
	"github.com/keepwatch/keepwatch/engine/vrrp/receive"
)

// schedVIP is instance k's VIP in the scheduler tests.
func schedVIP(k int) netip.Prefix {
	return netip.PrefixFrom(netip.AddrFrom4([4]byte{192, 0, 2, byte(100 + k)}), 24)
}

// wireLog records, per VRID, when each advert reached a raw socket and
// whether it passed keepalived's receive checks as the VRID's instance.
type wireLog struct {
	mu       sync.Mutex
	interval time.Duration
	prio     uint8
	at       map[uint8][]time.Time
	bad      []string
	adv      vrrp.Advertisement
}

func (w *wireLog) HandleVRRP(p *netif.Packet) {
	w.mu.Lock()
	defer w.mu.Unlock()
	vrid := p.VRID()
	in := receive.Instance{Family: vrrp.IPv4, Version: vrrp.Version3, VRID: vrid, Interval: w.interval,
		VIPs: []netip.Addr{schedVIP(int(vrid)).Addr()}}
	r := receive.Validate(p.VRRP, ipOf(p), &in, &w.adv)
	switch {
	case !r.Accepted() || r.AddressMismatch:
		w.bad = append(w.bad, fmt.Sprintf("VRID %d: %s (mismatch %v)", vrid, r.Drop, r.AddressMismatch))
	case w.adv.Priority != w.prio || p.Dst != netif.GroupIPv4 || p.TOS != 0xc0:
		w.bad = append(w.bad, fmt.Sprintf("VRID %d: priority %d, to %s, TOS %#x", vrid, w.adv.Priority, p.Dst, p.TOS))
	}
	w.at[vrid] = append(w.at[vrid], time.Now())
}

// TestSchedulerBatchKeepalived: masters sharing a socket's Scheduler send
// their adverts in batches (one sendmmsg for several instances), and what
// reaches the peer is right: a raw socket there sees every VRID advertise
// at its interval, each advert passing the receive checks, no gap near
// Master_Down_Interval; and keepalived 2.2.7 running the same instances as
// BACKUP at lower priority follows them all the while, never taking over.
func TestSchedulerBatchKeepalived(t *testing.T) {
	nskittest.Require(t, "keepalived")
	const (
		n        = 10
		interval = 50 * time.Millisecond
		prio     = 200
	)
	l := nskittest.New(t, "schbt", 2)
	a, b := l.Node(1), l.Node(2)
	dir := t.TempDir()

	// keepalived as the BACKUP of every instance.
	var conf strings.Builder
	conf.WriteString("global_defs {\n  router_id kwsched\n  vrrp_version 3\n}\n")
	for k := 1; k <= n; k++ {
		fmt.Fprintf(&conf, "vrrp_instance VI_%d {\n  state BACKUP\n  interface %s\n  virtual_router_id %d\n  priority 100\n  advert_int %g\n  virtual_ipaddress {\n    %s\n  }\n}\n",
			k, b.Link, k, interval.Seconds(), schedVIP(k))
	}
	ka := startKeepalived(t, b, dir, "ka", conf.String())

	// A raw socket beside keepalived sees the same packets.
	wire := &wireLog{interval: interval, prio: prio, at: map[uint8][]time.Time{}}
	rx := listenOn(t, b)
	for k := 1; k <= n; k++ {
		rx.Handle(uint8(k), wire)
	}

	// n keepwatch masters on one socket and one Scheduler.
	conn := listenOn(t, a)
	sched := NewScheduler()
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	t.Cleanup(func() { cancel(); wg.Wait() })
	var insts []*Instance
	for k := 1; k <= n; k++ {
		fc := fsm.DefaultConfig()
		fc.Name, fc.VRID, fc.Interface, fc.Family = fmt.Sprintf("VI_%d", k), uint8(k), a.Link, vrrp.IPv4
		fc.Version, fc.Priority, fc.AdvertInterval = 3, prio, interval
		fc.Addr = a.IPv4.Addr()
		vip := schedVIP(k)
		cfg := Config{
			FSM: fc,
			Receive: receive.Instance{Family: vrrp.IPv4, Version: vrrp.Version3, VRID: uint8(k), Interval: interval,
				VIPs: []netip.Addr{vip.Addr()}},
			Src: a.IPv4.Addr(), Dsts: []netip.Addr{netif.GroupIPv4}, TTL: 255,
			VIPs: []netif.Address{{Prefix: vip, Dev: a.Link}},
		}
		inst, err := New(cfg, Deps{Conn: conn, Addrs: &netiftest.Network{}, Sink: &eventtest.Recorder{}, Sched: sched})
		if err != nil {
			t.Fatal(err)
		}
		insts = append(insts, inst)
		wg.Add(1)
		go func() { defer wg.Done(); _ = inst.Run(ctx) }()
	}
	deadline := time.Now().Add(5 * time.Second)
	for _, inst := range insts {
		for inst.Snapshot().State != vrrp.StateMaster {
			if time.Now().After(deadline) {
				t.Fatalf("%s: %v, want MASTER", inst.Name(), inst.Snapshot().State)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}

	// A window of steady state.
	time.Sleep(3 * interval)
	wire.mu.Lock()
	clear(wire.at)
	wire.mu.Unlock()
	sched.runMu.Lock()
	flushes0, flushed0 := sched.flushes, sched.flushed
	sched.runMu.Unlock()
	const window = 2 * time.Second
	for end := time.Now().Add(window); time.Now().Before(end); time.Sleep(20 * time.Millisecond) {
		if strings.Contains(ka.log.String(), "Entering MASTER STATE") {
			t.Fatal("keepalived became master: it did not take our batched adverts")
		}
	}
	sched.runMu.Lock()
	flushes, flushed := sched.flushes-flushes0, sched.flushed-flushed0
	sched.runMu.Unlock()

	wire.mu.Lock()
	defer wire.mu.Unlock()
	for _, s := range wire.bad {
		t.Error(s)
	}
	want := int(window / interval)
	md := insts[0].Snapshot().MasterDown
	for k := 1; k <= n; k++ {
		at := wire.at[uint8(k)]
		if len(at) < want*8/10 || len(at) > want*12/10+1 {
			t.Errorf("VRID %d: %d adverts in %v, want about %d", k, len(at), window, want)
		}
		var gap time.Duration
		for j := 1; j < len(at); j++ {
			gap = max(gap, at[j].Sub(at[j-1]))
		}
		// A gap near Master_Down_Interval would let a backup take over.
		if gap >= md*2/3 {
			t.Errorf("VRID %d: %v between two adverts; Master_Down_Interval is %v", k, gap, md)
		}
	}
	// Started together, the instances' adverts fall due within the
	// coalescing window of each other: most wake-ups send several.
	if flushes == 0 || flushed < 2*flushes {
		t.Errorf("%d adverts in %d batches: not coalesced", flushed, flushes)
	}
	t.Logf("%d adverts in %d batches (%.1f per sendmmsg)", flushed, flushes, float64(flushed)/float64(max(flushes, 1)))
}

// listenOn opens n's IPv4 VRRP socket and runs it until the test ends.
func listenOn(t *testing.T, n *nskit.Node) *netif.Conn {
	t.Helper()
	return listenOnTB(t, n)
}

// TestSchedulerBatchAllocs: a MASTER's advert stepped by the scheduler and
// sent in its batch allocates nothing (DESIGN.md §9), as the direct path.
func TestSchedulerBatchAllocs(t *testing.T) {
	const interval = 50 * time.Millisecond
	l := nskittest.New(t, "schal", 2)
	a := l.Node(1)
	listenOn(t, l.Node(2))
	conn := listenOn(t, a)
	sched := NewScheduler()
	fc := fsm.DefaultConfig()
	fc.Name, fc.VRID, fc.Interface, fc.Family = "VI_1", 42, a.Link, vrrp.IPv4
	fc.Version, fc.Priority, fc.AdvertInterval = 3, 255, interval // the owner: MASTER at once
	fc.Addr = a.IPv4.Addr()
	cfg := Config{
		FSM:     fc,
		Receive: receive.Instance{Family: vrrp.IPv4, Version: vrrp.Version3, VRID: 42, Interval: interval, VIPs: []netip.Addr{vip4.Addr()}},
		Src:     a.IPv4.Addr(), Dsts: []netip.Addr{netif.GroupIPv4}, TTL: 255,
		VIPs: []netif.Address{{Prefix: vip4, Dev: a.Link}},
	}
	inst, err := New(cfg, Deps{Conn: conn, Addrs: &netiftest.Network{}, Sched: sched})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = inst.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	waitFor(t, 2*time.Second, "not MASTER", func() bool { return inst.Snapshot().State == vrrp.StateMaster })
	// Each round makes the next advert due now (the instance's clock moves
	// to it, as a coalesced wake-up does) and runs the scheduler's work.
	round := func() {
		sched.runMu.Lock()
		defer sched.runMu.Unlock()
		inst.mu.Lock()
		inst.floor = inst.due
		inst.mu.Unlock()
		if !inst.tickInline(sched) {
			t.Fatal("a MASTER's due advert was not stepped inline")
		}
		if len(sched.sent) != 1 {
			t.Fatalf("%d adverts in the batch, want 1", len(sched.sent))
		}
		sched.flush()
	}
	for range 5 {
		round()
	}
	if n := testing.AllocsPerRun(100, round); n != 0 {
		t.Errorf("%v allocations per batched advert, want 0", n)
	}
}

// BenchmarkSchedulerMasters is the CPU one advert costs the process with
// 250 MASTERs at 0.05 s on one socket (issue 12's size): "shared", one
// Scheduler for all, as the agent runs them (coalesced wake-ups, one
// sendmmsg per batch); "own", a Scheduler per instance (a wake-up and a
// send per advert, as a timer per instance was). CPU is the process's
// user+system time over a 3 s window per b.N, divided by the adverts sent;
// the peer's raw socket, in this process too, receives them in both.
func BenchmarkSchedulerMasters(b *testing.B) {
	const (
		n        = 250
		interval = 50 * time.Millisecond
	)
	for _, mode := range []string{"shared", "own"} {
		b.Run(mode, func(b *testing.B) {
			l := nskittest.New(b, "schbm", 2)
			a := l.Node(1)
			listenOnTB(b, l.Node(2))
			conn := listenOnTB(b, a)
			var sched *Scheduler
			if mode == "shared" {
				sched = NewScheduler()
			}
			ctx, cancel := context.WithCancel(context.Background())
			var wg sync.WaitGroup
			defer func() { cancel(); wg.Wait() }()
			var insts []*Instance
			for k := 1; k <= n; k++ {
				fc := fsm.DefaultConfig()
				fc.Name, fc.VRID, fc.Interface, fc.Family = fmt.Sprintf("VI_%d", k), uint8(k), a.Link, vrrp.IPv4
				fc.Version, fc.Priority, fc.AdvertInterval = 3, 255, interval
				fc.Addr = a.IPv4.Addr()
				cfg := Config{FSM: fc, Src: a.IPv4.Addr(), Dsts: []netip.Addr{netif.GroupIPv4}, TTL: 255,
					Receive: receive.Instance{Family: vrrp.IPv4, Version: vrrp.Version3, VRID: uint8(k), Interval: interval}}
				inst, err := New(cfg, Deps{Conn: conn, Addrs: &netiftest.Network{}, Sched: sched})
				if err != nil {
					b.Fatal(err)
				}
				insts = append(insts, inst)
				wg.Add(1)
				go func() { defer wg.Done(); _ = inst.Run(ctx) }()
			}
			waitFor(b, 5*time.Second, "not all MASTER", func() bool {
				for _, inst := range insts {
					if inst.Snapshot().State != vrrp.StateMaster {
						return false
					}
				}
				return true
			})
			time.Sleep(time.Second)
			var cpu time.Duration
			var sent float64
			for b.Loop() {
				c0 := cpuTime(b)
				time.Sleep(3 * time.Second)
				cpu += cpuTime(b) - c0
				sent += float64(n) * 3 * float64(time.Second/interval)
			}
			b.ReportMetric(float64(cpu.Nanoseconds())/sent, "cpu-ns/advert")
			b.ReportMetric(float64(cpu)/float64(time.Duration(b.N)*3*time.Second)*100, "cpu%")
		})
	}
}

func cpuTime(tb testing.TB) time.Duration {
	var ru unix.Rusage
	if err := unix.Getrusage(unix.RUSAGE_SELF, &ru); err != nil {
		tb.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func listenOnTB(tb testing.TB, n *nskit.Node) *netif.Conn {
	tb.Helper()
	var c *netif.Conn
	if err := n.Do(func() (err error) { c, err = netif.ListenIPv4(n.Link, netif.Config{}); return err }); err != nil {
		tb.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = c.Run(ctx); close(done) }()
	tb.Cleanup(func() { cancel(); c.Close(); <-done })
	return c
}
