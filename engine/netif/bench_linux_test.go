package netif_test

import (
	"net/netip"
	"testing"
	"time"

	"github.com/keepwatch/keepwatch/engine/netif"
	"github.com/keepwatch/keepwatch/engine/netif/nskit/nskittest"
)

// signal is an allocation-free handler: it wakes the benchmark loop.
type signal chan struct{}

func (s signal) HandleVRRP(*netif.Packet) { s <- struct{}{} }

// BenchmarkAdvert sends an advert over a real veth pair and waits until the
// other side's handler has it: the whole send and receive path, per advert.
// Allocations must be 0 (DESIGN.md §9).
func BenchmarkAdvert(b *testing.B) {
	for _, fam := range []string{"ipv4", "ipv6"} {
		b.Run(fam, func(b *testing.B) {
			l := nskittest.New(b, "bench", 2)
			v6 := fam == "ipv6"
			ca := listenTB(b, l.Node(1), v6)
			cb := listenTB(b, l.Node(2), v6)
			got := make(signal, 1)
			cb.Handle(42, got)
			src, dst := l.Node(1).IPv4.Addr(), netif.GroupIPv4
			var pkt []byte
			if v6 {
				src, dst = l.Node(1).LinkLocal, netif.GroupIPv6
				pkt = vrrp3(42, 150, src, dst, netip.MustParseAddr("2001:db8::100"))
			} else {
				pkt = ip4(src, dst, 1, vrrp3(42, 150, src, dst, netip.MustParseAddr("192.0.2.100")))
			}
			send := func() {
				var err error
				if v6 {
					err = ca.WriteIPv6(pkt, src, dst, 0)
				} else {
					err = ca.WriteIPv4(pkt)
				}
				if err != nil {
					b.Fatal(err)
				}
			}
			// Warm up: the first packets grow runtime structures.
			for range 10 {
				send()
				<-got
			}
			timeout := time.NewTimer(time.Hour)
			defer timeout.Stop()
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				timeout.Reset(2 * time.Second)
				send()
				select {
				case <-got:
				case <-timeout.C:
					b.Fatal("advert lost")
				}
			}
		})
	}
}

// BenchmarkAnnounce is one gratuitous ARP or NA onto a veth: part of the
// takeover path (DESIGN.md §5), so it must not allocate.
func BenchmarkAnnounce(b *testing.B) {
	l := nskittest.New(b, "bgarp", 1)
	n := l.Node(1)
	var g *netif.Gratuitous
	if err := n.Do(func() (err error) { g, err = netif.NewGratuitous(n.Link); return err }); err != nil {
		b.Fatal(err)
	}
	defer g.Close()
	for _, vip := range []netip.Addr{netip.MustParseAddr("192.0.2.100"), netip.MustParseAddr("2001:db8::100")} {
		b.Run(vip.String(), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if err := g.Announce(vip); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkVIP adds and removes one VIP over netlink: the other part of
// the takeover path.
func BenchmarkVIP(b *testing.B) {
	l := nskittest.New(b, "bvip", 1)
	n := l.Node(1)
	s, err := netif.OpenAt(n.NsHandle())
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	a := netif.Address{Prefix: netip.MustParsePrefix("192.0.2.100/32"), Dev: n.Link}
	b.ReportAllocs()
	for b.Loop() {
		if err := s.AddAddress(a); err != nil {
			b.Fatal(err)
		}
		if err := s.RemoveAddress(a); err != nil {
			b.Fatal(err)
		}
	}
}
