package netif_test

import (
	"bytes"
	"net/netip"
	"path/filepath"
	"slices"
	"testing"

	"github.com/vishvananda/netlink"

	"github.com/keepwatch/keepwatch/engine/netif"
	"github.com/keepwatch/keepwatch/engine/netif/nskit/nskittest"
)

// TestRemoveLeftovers plays a run killed while master: a VIP on the link
// (with another prefix length than the config's), a VIP on a VMAC, and one
// on an interface the config no longer names. All go, the VMAC with them;
// an address the config does not name and a VIP held on loopback stay.
func TestRemoveLeftovers(t *testing.T) {
	t.Parallel()
	l := nskittest.New(t, "leftover", 1)
	n := l.Node(1)
	s := openSystem(t, n)
	h := n.Handle()
	vmac := netif.VMAC{Parent: n.Link, VRID: 61}
	if err := s.AddVMAC(vmac); err != nil {
		t.Fatal(err)
	}
	parent, err := h.LinkByName(n.Link)
	if err != nil {
		t.Fatal(err)
	}
	other := &netlink.Macvlan{LinkAttrs: netlink.LinkAttrs{Name: "kwold0", ParentIndex: parent.Attrs().Index}, Mode: netlink.MACVLAN_MODE_BRIDGE}
	if err := h.LinkAdd(other); err != nil {
		t.Fatal(err)
	}
	put := func(dev, prefix string) {
		t.Helper()
		if err := s.AddAddress(netif.Address{Prefix: netip.MustParsePrefix(prefix), Dev: dev, NoDAD: true}); err != nil {
			t.Fatal(err)
		}
	}
	put(n.Link, "192.0.2.100/32") // config says /24
	put(vmac.LinkName(), "192.0.2.101/24")
	put(vmac.LinkName(), "2001:db8::101/64")
	put("kwold0", "192.0.2.102/24") // an interface the config dropped
	put(n.Link, "192.0.2.200/24")   // not a VIP
	put("lo", "192.0.2.103/32")     // deliberate (LVS-DR real server)
	vips := []netif.Address{
		{Prefix: netip.MustParsePrefix("192.0.2.100/24"), Dev: n.Link},
		{Prefix: netip.MustParsePrefix("192.0.2.101/24"), Dev: n.Link},
		{Prefix: netip.MustParsePrefix("2001:db8::101/64"), Dev: n.Link},
		{Prefix: netip.MustParsePrefix("192.0.2.102/24"), Dev: n.Link},
		{Prefix: netip.MustParsePrefix("192.0.2.103/32"), Dev: n.Link},
		{Prefix: netip.MustParsePrefix("192.0.2.104/24"), Dev: n.Link}, // nowhere
	}
	got, err := s.RemoveLeftovers(vips, []netif.VMAC{vmac, {Parent: n.Link, VRID: 62}})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got.VMACs, []string{"vrrp.61"}) {
		t.Errorf("VMACs removed %v, want [vrrp.61]", got.VMACs)
	}
	var removed []string
	for _, a := range got.VIPs {
		removed = append(removed, a.Prefix.String()+"@"+a.Dev)
	}
	slices.Sort(removed)
	want := []string{"192.0.2.100/32@" + n.Link, "192.0.2.101/24@vrrp.61", "192.0.2.102/24@kwold0", "2001:db8::101/64@vrrp.61"}
	if !slices.Equal(removed, want) {
		t.Errorf("removed %v, want %v", removed, want)
	}
	if _, err := h.LinkByName("vrrp.61"); err == nil {
		t.Error("the leftover VMAC is still there")
	}
	for _, a := range []netif.Address{
		{Prefix: netip.MustParsePrefix("192.0.2.100/24"), Dev: n.Link},
		{Prefix: netip.MustParsePrefix("192.0.2.102/24"), Dev: "kwold0"},
	} {
		if ok, err := s.HasAddress(a); err != nil || ok {
			t.Errorf("%s still on %s (%v)", a.Prefix, a.Dev, err)
		}
	}
	for _, a := range []netif.Address{
		{Prefix: netip.MustParsePrefix("192.0.2.200/24"), Dev: n.Link},
		{Prefix: netip.MustParsePrefix("192.0.2.103/32"), Dev: "lo"},
		{Prefix: n.IPv4, Dev: n.Link},
	} {
		if ok, err := s.HasAddress(a); err != nil || !ok {
			t.Errorf("%s removed from %s (%v)", a.Prefix, a.Dev, err)
		}
	}
	// A second start finds nothing left.
	if got, err := s.RemoveLeftovers(vips, []netif.VMAC{vmac}); err != nil || len(got.VIPs)+len(got.VMACs) != 0 {
		t.Errorf("second pass removed %+v (%v), want nothing", got, err)
	}
}

// TestAnnouncerFollowsRecreatedVMAC: an announcer opened on a VMAC keeps
// working when the VMAC is deleted and made again (a new ifindex), and its
// frames still carry the virtual MAC.
func TestAnnouncerFollowsRecreatedVMAC(t *testing.T) {
	t.Parallel()
	l := nskittest.New(t, "follow", 2, "tcpdump")
	a, b := l.Node(1), l.Node(2)
	s := openSystem(t, a)
	v := netif.VMAC{Parent: a.Link, VRID: 63}
	if err := s.AddVMAC(v); err != nil {
		t.Fatal(err)
	}
	var g *netif.Gratuitous
	if err := a.Do(func() (err error) { g, err = netif.NewGratuitous(v.LinkName()); return err }); err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	path := filepath.Join(t.TempDir(), "follow.pcap")
	c, err := b.Capture(path, "arp and ether src "+v.MAC().String())
	if err != nil {
		t.Fatal(err)
	}
	vip := netip.MustParseAddr("192.0.2.100")
	announce := func() error { return a.Do(func() error { return g.Announce(vip) }) }
	if err := announce(); err != nil {
		t.Fatal(err)
	}
	if err := s.RemoveVMAC(v); err != nil {
		t.Fatal(err)
	}
	if err := announce(); err == nil {
		t.Error("announcing on a deleted VMAC succeeded")
	}
	if err := s.AddVMAC(v); err != nil {
		t.Fatal(err)
	}
	if err := announce(); err != nil {
		t.Fatalf("announcing on the recreated VMAC: %v", err)
	}
	if err := c.Stop(); err != nil {
		t.Fatal(err)
	}
	frames := readPcap(t, path)
	wantFrame := netif.AppendGARP(nil, v.MAC(), vip)
	if len(frames) != 2 || !bytes.Equal(frames[0], wantFrame) || !bytes.Equal(frames[1], wantFrame) {
		t.Errorf("captured %d frames %x, want 2 of %x; tcpdump: %s", len(frames), frames, wantFrame, c.Log())
	}
}
