package router

import (
	"context"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/keepwatch/keepwatch/engine/event/eventtest"
	"github.com/keepwatch/keepwatch/engine/netif"
	"github.com/keepwatch/keepwatch/engine/netif/netiftest"
	"github.com/keepwatch/keepwatch/engine/vrrp"
	"github.com/keepwatch/keepwatch/engine/vrrp/fsm"
	"github.com/keepwatch/keepwatch/engine/vrrp/receive"
)

// orderLog records announcements and VIP removals in the order they happen.
type orderLog struct {
	*netiftest.Network
	mu  sync.Mutex
	log []string
}

func (o *orderLog) Announce(string, netip.Addr) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.log = append(o.log, "announce")
	return nil
}

func (o *orderLog) RemoveAddress(a netif.Address) error {
	o.mu.Lock()
	o.log = append(o.log, "remove")
	o.mu.Unlock()
	return o.Network.RemoveAddress(a)
}

// check fails if an announcement follows a removal, and returns how many
// announcements there were.
func (o *orderLog) check(t *testing.T) int {
	t.Helper()
	o.mu.Lock()
	defer o.mu.Unlock()
	n, removed := 0, false
	for _, e := range o.log {
		switch {
		case e == "remove":
			removed = true
		case removed:
			t.Fatalf("gratuitous announcement after the VIP's removal: %v", o.log[max(0, n-3):])
		default:
			n++
		}
	}
	if !removed {
		t.Fatal("the VIP was never removed")
	}
	return n
}

func (o *orderLog) announced() int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return len(o.log)
}

// startBursting runs a master whose takeover burst is long and spaced, on
// the fake network, and waits until the burst is under way.
func startBursting(t *testing.T, prio int) (*Instance, *orderLog, context.CancelFunc, chan struct{}) {
	t.Helper()
	const interval = 20 * time.Millisecond
	o := &orderLog{Network: &netiftest.Network{}}
	fc := fsm.DefaultConfig()
	fc.Name, fc.VRID, fc.Interface, fc.Family = "VI_1", 42, "eth0", vrrp.IPv4
	fc.Version, fc.Priority, fc.AdvertInterval, fc.Addr = 3, prio, interval, inlineSelf
	fc.GARP.MasterRepeat, fc.GARP.MasterDelay = 100000, 0
	inst, err := New(Config{FSM: fc,
		Receive: receive.Instance{Family: vrrp.IPv4, Version: vrrp.Version3, VRID: 42, Interval: interval,
			VIPs: []netip.Addr{inlineVIP.Addr()}},
		Src: inlineSelf, Dsts: []netip.Addr{netif.GroupIPv4}, TTL: 255,
		VIPs:        []netif.Address{{Prefix: inlineVIP, Dev: "eth0"}},
		GarpSpacing: 100 * time.Microsecond,
	}, Deps{Conn: o.Network, Addrs: o, Announcer: o, Sink: &eventtest.Recorder{}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = inst.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	waitFor(t, 2*time.Second, "no burst", func() bool { return o.announced() >= 20 })
	return inst, o, cancel, done
}

// A spaced burst is the member's child task: it stops before the VIP is
// removed when the master yields to a higher priority (RFC 9568 §6.4.3)
// and when it stops, and it never touches the instance's guarded state
// (the race detector watches both).
func TestBurstStopsBeforeRemoval(t *testing.T) {
	t.Run("preempted", func(t *testing.T) {
		inst, o, _, _ := startBursting(t, 150)
		o.Deliver(advert(t, 200, 20*time.Millisecond))
		waitFor(t, 2*time.Second, "not BACKUP", func() bool {
			s := inst.Snapshot()
			return s.State == vrrp.StateBackup && !s.VIPsHeld
		})
		time.Sleep(20 * time.Millisecond)
		if n := o.check(t); n >= 100000 {
			t.Errorf("%d announcements: the burst ran to its end", n)
		}
	})
	t.Run("stopped", func(t *testing.T) {
		_, o, cancel, done := startBursting(t, 250)
		cancel()
		<-done
		time.Sleep(20 * time.Millisecond)
		o.check(t)
	})
}
