package router

import (
	"errors"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/gopacket/gopacket/pcapgo"

	"github.com/keepwatch/keepwatch/engine/event"
	"github.com/keepwatch/keepwatch/engine/netif"
	"github.com/keepwatch/keepwatch/engine/netif/nskit/nskittest"
	"github.com/keepwatch/keepwatch/engine/vrrp"
)

// ifAnnouncer sends through one interface's packet socket.
type ifAnnouncer struct{ g *netif.Gratuitous }

func (a ifAnnouncer) Announce(_ string, vip netip.Addr) error { return a.g.Announce(vip) }

// removals records when each VIP removal started.
type removals struct {
	Addresses
	mu sync.Mutex
	at []time.Time
}

func (r *removals) RemoveAddress(a netif.Address) error {
	r.mu.Lock()
	r.at = append(r.at, time.Now())
	r.mu.Unlock()
	return r.Addresses.RemoveAddress(a)
}

func (r *removals) times() []time.Time {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]time.Time(nil), r.at...)
}

// TestNoGratuitousAfterRemoval: a master in the middle of a long spaced
// burst (garp_master_repeat 200, vrrp_garp_interval 20 ms: four seconds of
// gratuitous ARPs) leaves MASTER twice, once preempted by a higher priority
// and once resigning as it stops. The burst is the instance's child task:
// a capture on the peer sees no gratuitous ARP from it after either
// removal of the VIP began, since the router that took over owns the
// address then (RFC 9568 §6.4.3).
func TestNoGratuitousAfterRemoval(t *testing.T) {
	nskittest.Require(t, "tcpdump")
	lab := nskittest.New(t, "rtgarp", 2)
	na, nb := lab.Node(1), lab.Node(2)
	const interval = 50 * time.Millisecond
	path := filepath.Join(t.TempDir(), "garp.pcap")
	capt, err := nb.Capture(path, "arp and ether src "+na.MAC.String())
	if err != nil {
		t.Fatal(err)
	}
	var g *netif.Gratuitous
	if err := na.Do(func() (err error) { g, err = netif.NewGratuitous(na.Link); return err }); err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	rm := &removals{}
	a := startNodeWith(t, na, 150, interval, func(c *Config) {
		c.FSM.GARP.MasterRepeat, c.FSM.GARP.MasterDelay = 200, 0
		c.GarpSpacing = 20 * time.Millisecond
	}, func(d *Deps) {
		rm.Addresses = d.Addrs
		d.Addrs, d.Announcer = rm, ifAnnouncer{g}
	})
	a.waitState(t, vrrp.StateMaster, 2*time.Second)
	burstRunning := func(after time.Time) {
		t.Helper()
		for n := 0; n < 5; {
			e, ok := a.rec.Wait(2*time.Second, func(e event.Event) bool {
				return e.Kind == event.KindGratuitousSent && e.Time.After(after)
			})
			if !ok {
				t.Fatal("no gratuitous ARPs from the master")
			}
			after = e.Time
			n++
		}
	}
	burstRunning(time.Time{})

	// Preempted mid-burst.
	b := startNode(t, nb, 200, interval, nil)
	a.waitState(t, vrrp.StateBackup, 2*time.Second)
	time.Sleep(300 * time.Millisecond)
	// B resigns: A is master again, with a new burst; then A stops.
	again := time.Now()
	b.stop()
	a.waitState(t, vrrp.StateMaster, 2*time.Second)
	burstRunning(again)
	a.stop()
	time.Sleep(300 * time.Millisecond) // 15 spacings: a leftover burst would show
	if err := capt.Stop(); err != nil {
		t.Fatal(err)
	}

	removed := rm.times()
	if len(removed) != 2 {
		t.Fatalf("VIP removals at %v, want 2 (preempted, stopped)", removed)
	}
	// A frame is stamped by the peer's kernel just after A wrote it.
	const slack = 5 * time.Millisecond
	var before [2]int
	for _, ts := range pcapTimes(t, path) {
		switch {
		case ts.Before(removed[0].Add(slack)):
			before[0]++
		case ts.Before(again):
			t.Errorf("gratuitous ARP at %s, %s after the VIP's removal began (preempted)",
				ts.Format("15:04:05.000"), ts.Sub(removed[0]).Round(time.Millisecond))
		case ts.Before(removed[1].Add(slack)):
			before[1]++
		default:
			t.Errorf("gratuitous ARP at %s, %s after the VIP's removal began (stopped)",
				ts.Format("15:04:05.000"), ts.Sub(removed[1]).Round(time.Millisecond))
		}
	}
	// The capture saw each burst, so the check above looked at something.
	if before[0] < 5 || before[1] < 5 {
		t.Errorf("captured %v gratuitous ARPs in the two master periods, want at least 5 each; tcpdump: %s", before, capt.Log())
	}
	if len(a.rec.Of(event.KindGratuitousSent)) >= 200 {
		t.Error("a burst ran to its end")
	}
}

func pcapTimes(t *testing.T, path string) []time.Time {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r, err := pcapgo.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	var out []time.Time
	for {
		_, ci, err := r.ReadPacketData()
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, ci.Timestamp)
	}
}
