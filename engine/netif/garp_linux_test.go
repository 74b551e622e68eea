package netif_test

import (
	"bytes"
	"net/netip"
	"os"
	"path/filepath"
	"testing"

	"github.com/keepwatch/keepwatch/engine/netif"
	"github.com/keepwatch/keepwatch/engine/netif/nskit/nskittest"
)

// TestAnnounceOnTheWire sends gratuitous ARPs and NAs from one node and
// checks, in a tcpdump capture on the other, that the frames on the wire
// are exactly the ones TestFramesMatchKeepalived proves equal to
// keepalived's.
func TestAnnounceOnTheWire(t *testing.T) {
	t.Parallel()
	l := nskittest.New(t, "garp", 2, "tcpdump")
	a, b := l.Node(1), l.Node(2)
	var g *netif.Gratuitous
	if err := a.Do(func() (err error) {
		g, err = netif.NewGratuitous(a.Link)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	if !bytes.Equal(g.MAC(), a.MAC) {
		t.Fatalf("MAC %s, want %s", g.MAC(), a.MAC)
	}

	path := filepath.Join(t.TempDir(), "garp.pcap")
	c, err := b.Capture(path, "ether src "+a.MAC.String()+" and (arp or (icmp6 and ip6[40] == 136))")
	if err != nil {
		t.Fatal(err)
	}
	v4 := netip.MustParseAddr("192.0.2.100")
	v6 := netip.MustParseAddr("2001:db8::100")
	want := [][]byte{
		netif.AppendGARP(nil, a.MAC, v4),
		netif.AppendUnsolicitedNA(nil, a.MAC, v6, false),
		netif.AppendGARP(nil, a.MAC, v4),
		netif.AppendUnsolicitedNA(nil, a.MAC, v6, true),
	}
	for _, vip := range []netip.Addr{v4, v6} {
		if err := g.Announce(vip); err != nil {
			t.Fatal(err)
		}
	}
	// With IPv6 forwarding on, the NA carries the Router flag.
	if err := a.Do(func() error {
		return os.WriteFile("/proc/sys/net/ipv6/conf/"+a.Link+"/forwarding", []byte("1"), 0o644)
	}); err != nil {
		t.Fatal(err)
	}
	for _, vip := range []netip.Addr{v4, v6} {
		if err := g.Announce(vip); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.Stop(); err != nil {
		t.Fatal(err)
	}
	got := readPcap(t, path)
	if len(got) != len(want) {
		t.Fatalf("captured %d frames, want %d; tcpdump: %s", len(got), len(want), c.Log())
	}
	for i := range want {
		if !bytes.Equal(got[i], want[i]) {
			t.Errorf("frame %d\n got %x\nwant %x", i, got[i], want[i])
		}
	}
	if err := g.Announce(netip.Addr{}); err == nil {
		t.Error("announcing an invalid address succeeded")
	}
	g.Close()
	if err := g.Announce(v4); err == nil {
		t.Error("announcing after Close succeeded")
	}
}
