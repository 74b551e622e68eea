package router

import (
	"net/netip"
	"testing"
	"time"

	"github.com/keepwatch/keepwatch/engine/event"
	"github.com/keepwatch/keepwatch/engine/netif"
	"github.com/keepwatch/keepwatch/engine/vrrp"
)

// advertVIPs is advert with another address list.
func advertVIPs(t testing.TB, prio int, interval time.Duration, vips ...netip.Addr) *netif.Packet {
	t.Helper()
	a := vrrp.Advertisement{Version: vrrp.Version3, Type: vrrp.TypeAdvertisement, VRID: 42, Priority: uint8(prio),
		Family: vrrp.IPv4, Addresses: vips}
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

// TestSkipCheckAdvAddr: with skip_check_adv_addr, a BACKUP does not check
// (so does not count as address_list) the address list of its master's
// adverts; without it, the same advert is counted. keepalived 2.2.7,
// tried in a namespace: a backup without the keyword logged "ip address
// associated with VRID 54 not present in MASTER advert" for each such
// advert; with it, nothing, and it kept following the master.
func TestSkipCheckAdvAddr(t *testing.T) {
	const interval = 50 * time.Millisecond
	f := startFake(t, 100, interval, nil, nil)
	setSkip := func(on bool) {
		f.inst.mu.Lock()
		f.inst.ms[0].cfg.SkipCheckAdvAddr = on
		f.inst.mu.Unlock()
	}
	mismatches := func() int {
		n := 0
		for _, e := range f.rec.Of(event.KindAdvertDropped) {
			if e.Reason == event.DropAddressList {
				n++
			}
		}
		return n
	}
	setSkip(true)
	// Until it follows a master, the check runs: a new master is checked.
	other := advertVIPs(t, 200, interval, netip.MustParseAddr("192.0.2.199"))
	waitFor(t, time.Second, "no handler registered", func() bool { return f.net.Deliver(other) })
	waitFor(t, time.Second, "not BACKUP following the peer", func() bool {
		s := f.inst.Snapshot()
		return s.State == vrrp.StateBackup && s.Master == inlinePeer
	})
	waitFor(t, time.Second, "first advert of a new master not checked", func() bool { return mismatches() == 1 })
	for range 5 {
		f.net.Deliver(other)
	}
	waitFor(t, time.Second, "adverts not received", func() bool { return len(f.rec.Of(event.KindAdvertReceived)) >= 6 })
	time.Sleep(3 * interval)
	if n := mismatches(); n != 1 {
		t.Fatalf("%d address_list counts with skip_check_adv_addr, want only the new master's first", n)
	}
	setSkip(false)
	f.net.Deliver(other)
	waitFor(t, time.Second, "mismatch not counted without skip_check_adv_addr", func() bool { return mismatches() == 2 })
	if s := f.inst.Snapshot(); s.State != vrrp.StateBackup {
		t.Errorf("state %v, want BACKUP following the master (a mismatch is accepted)", s.State)
	}
}
