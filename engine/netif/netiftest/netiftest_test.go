package netiftest_test

import (
	"errors"
	"net/netip"
	"testing"

	"github.com/keepwatch/keepwatch/engine/netif"
	"github.com/keepwatch/keepwatch/engine/netif/netiftest"
)

func TestNetwork(t *testing.T) {
	var n netiftest.Network
	var got []uint8
	n.Handle(42, netif.HandlerFunc(func(p *netif.Packet) { got = append(got, p.VRID()) }))
	if !n.Deliver(&netif.Packet{VRRP: []byte{0x31, 42}}) || n.Deliver(&netif.Packet{VRRP: []byte{0x31, 7}}) {
		t.Fatal("Deliver routed wrongly")
	}
	if len(got) != 1 || got[0] != 42 || n.Unknown() != 1 {
		t.Fatalf("handled %v, unknown %d", got, n.Unknown())
	}

	pkt := []byte{0x45, 0xc0}
	if err := n.WriteIPv4(pkt); err != nil {
		t.Fatal(err)
	}
	pkt[0] = 0 // the recorded copy is the caller's no longer
	if s := n.Sent(); len(s) != 1 || s[0].Packet[0] != 0x45 {
		t.Fatalf("sent %+v", s)
	}

	a := netif.Address{Prefix: netip.MustParsePrefix("192.0.2.100/32"), Dev: "eth0"}
	for range 2 {
		if err := n.AddAddress(a); err != nil {
			t.Fatal(err)
		}
	}
	if got := n.Addresses(); len(got) != 1 || got[0] != a {
		t.Fatalf("addresses %v", got)
	}
	if err := n.RemoveAddress(a); err != nil || len(n.Addresses()) != 0 {
		t.Fatalf("remove: %v, left %v", err, n.Addresses())
	}

	n.Fail = errors.New("boom")
	if err := n.Announce(a.Prefix.Addr()); err == nil || len(n.Announced()) != 0 {
		t.Fatal("Fail not honoured")
	}
}
