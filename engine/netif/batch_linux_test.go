package netif_test

import (
	"bytes"
	"errors"
	"net/netip"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/keepwatch/keepwatch/engine/netif"
	"github.com/keepwatch/keepwatch/engine/netif/nskit/nskittest"
)

// TestBatchSend sends adverts with one Batch over a real veth pair: every
// packet reaches the peer's socket, in order and as WriteIPv4/WriteIPv6
// would have sent it (multicast and unicast mixed, which takes more than
// one sendmmsg); a packet the kernel refuses fails alone; a closed socket
// fails the lot.
func TestBatchSend(t *testing.T) {
	t.Parallel()
	l := nskittest.New(t, "txbt", 2)
	a, b := l.Node(1), l.Node(2)
	for _, v6 := range []bool{false, true} {
		t.Run(map[bool]string{false: "ipv4", true: "ipv6"}[v6], func(t *testing.T) {
			ca := listen(t, a, v6, netif.Config{})
			cb := listen(t, b, v6, netif.Config{})
			onB := newCollector()
			cb.Handle(42, onB)
			src, uni, group, vip := a.IPv4.Addr(), b.IPv4.Addr(), netif.GroupIPv4, netip.MustParseAddr("192.0.2.100")
			// The kernel refuses it: broadcast without SO_BROADCAST
			// (EACCES); for IPv6 a prefix with no route (ENETUNREACH).
			bad := netip.AddrFrom4([4]byte{255, 255, 255, 255})
			if v6 {
				src, uni, group, vip = a.LinkLocal, b.LinkLocal, netif.GroupIPv6, netip.MustParseAddr("2001:db8::100")
				bad = netip.MustParseAddr("2001:db8:ffff::9")
			}
			batch := ca.NewBatch()
			var want []got
			const n = 20
			badAt := 7
			for k := range n {
				dst := group
				switch {
				case k == badAt:
					dst = bad
				case k%4 == 1, k >= 12 && k < 15:
					dst = uni
				}
				msg := vrrp3(42, uint8(k+1), src, dst, vip)
				var err error
				if v6 {
					sent := bytes.Clone(msg)
					sent[6], sent[7] = 0, 0 // the kernel's to fill (IPV6_CHECKSUM)
					hop := 0
					if !dst.IsMulticast() {
						hop = 255 // RFC 9568 §7.1: the peer drops any other
					}
					err = batch.AddIPv6(sent, netip.Addr{}, dst, hop)
				} else {
					err = batch.AddIPv4(ip4(src, dst, uint16(k+1), msg))
				}
				if err != nil {
					t.Fatal(err)
				}
				if k != badAt {
					want = append(want, got{Src: src, Dst: dst, TTL: 255, TOS: 0xc0, VRRP: msg})
				}
			}
			if batch.Len() != n {
				t.Fatalf("Len() = %d, want %d", batch.Len(), n)
			}
			sent, err := batch.Flush()
			if sent != n || err != nil {
				t.Fatalf("Flush() = %d, %v; want %d, nil", sent, err, n)
			}
			for k := range n {
				if err := batch.Err(k); (err != nil) != (k == badAt) {
					t.Errorf("packet %d: Err = %v", k, err)
				}
			}
			if batch.Len() != 0 {
				t.Errorf("Len() after Flush = %d", batch.Len())
			}
			for k := range want {
				if diff := cmp.Diff(want[k], onB.next(t), cmpAddr); diff != "" {
					t.Fatalf("datagram %d (-want +got):\n%s", k, diff)
				}
			}
			onB.none(t, 50*time.Millisecond)

			// The family's checks are WriteIPv4/WriteIPv6's.
			if v6 {
				if err := batch.AddIPv4(ip4(a.IPv4.Addr(), netif.GroupIPv4, 1, []byte{0x31})); !errors.Is(err, netif.ErrFamily) {
					t.Errorf("AddIPv4 on an IPv6 socket: %v", err)
				}
			} else if err := batch.AddIPv6([]byte{0x31}, netip.Addr{}, netif.GroupIPv6, 0); !errors.Is(err, netif.ErrFamily) {
				t.Errorf("AddIPv6 on an IPv4 socket: %v", err)
			}
		})
	}

	t.Run("closed", func(t *testing.T) {
		var c *netif.Conn
		if err := a.Do(func() (err error) { c, err = netif.ListenIPv4(a.Link, netif.Config{}); return err }); err != nil {
			t.Fatal(err)
		}
		batch := c.NewBatch()
		src := a.IPv4.Addr()
		for k := range 3 {
			if err := batch.AddIPv4(ip4(src, netif.GroupIPv4, uint16(k+1), vrrp3(42, 100, src, netif.GroupIPv4, netip.MustParseAddr("192.0.2.100")))); err != nil {
				t.Fatal(err)
			}
		}
		c.Close()
		if n, err := batch.Flush(); n != 3 || !errors.Is(err, netif.ErrClosed) || !errors.Is(batch.Err(2), netif.ErrClosed) {
			t.Fatalf("Flush on a closed socket = %d, %v (Err(2) %v); want 3, ErrClosed", n, err, batch.Err(2))
		}
	})
}

// TestBatchAllocs: a warm batch sends without allocating (DESIGN.md §9, the
// advert path allocates nothing per advert).
func TestBatchAllocs(t *testing.T) {
	l := nskittest.New(t, "txba", 2)
	a, b := l.Node(1), l.Node(2)
	for _, v6 := range []bool{false, true} {
		ca := listen(t, a, v6, netif.Config{})
		listen(t, b, v6, netif.Config{})
		batch := ca.NewBatch()
		src, dst := a.IPv4.Addr(), netif.GroupIPv4
		msg := ip4(src, dst, 1, vrrp3(42, 100, src, dst, netip.MustParseAddr("192.0.2.100")))
		if v6 {
			src, dst = a.LinkLocal, netif.GroupIPv6
			msg = vrrp3(42, 100, src, dst, netip.MustParseAddr("2001:db8::100"))
		}
		round := func() {
			for range 25 {
				var err error
				if v6 {
					err = batch.AddIPv6(msg, src, dst, 0)
				} else {
					err = batch.AddIPv4(msg)
				}
				if err != nil {
					t.Fatal(err)
				}
			}
			if _, err := batch.Flush(); err != nil || batch.Err(0) != nil {
				t.Fatal(err, batch.Err(0))
			}
		}
		round()
		if n := testing.AllocsPerRun(20, round); n != 0 {
			t.Errorf("v6=%v: %v allocations per batch of 25, want 0", v6, n)
		}
	}
}

// BenchmarkBatchSend is 25 adverts (a 250-instance master's one wake-up at
// 0.05 s with a 5 ms window) sent with one Batch, against 25 WriteIPv4
// calls: the system calls a batch saves, with the kernel's per-packet work
// (and the peer's receive, on the same CPU through the veth) in both.
func BenchmarkBatchSend(b *testing.B) {
	l := nskittest.New(b, "txbb", 2)
	n1, n2 := l.Node(1), l.Node(2)
	ca := listenTB(b, n1, false)
	listenTB(b, n2, false)
	src, dst := n1.IPv4.Addr(), netif.GroupIPv4
	pkt := ip4(src, dst, 1, vrrp3(42, 100, src, dst, netip.MustParseAddr("192.0.2.100")))
	const per = 25
	b.Run("batch", func(b *testing.B) {
		batch := ca.NewBatch()
		b.ReportAllocs()
		for b.Loop() {
			for range per {
				if err := batch.AddIPv4(pkt); err != nil {
					b.Fatal(err)
				}
			}
			if _, err := batch.Flush(); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("write", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			for range per {
				if err := ca.WriteIPv4(pkt); err != nil {
					b.Fatal(err)
				}
			}
		}
	})
}
