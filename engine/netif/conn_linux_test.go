package netif_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/keepwatch/keepwatch/engine/netif"
	"github.com/keepwatch/keepwatch/engine/netif/nskit"
	"github.com/keepwatch/keepwatch/engine/netif/nskit/nskittest"
)

// checksum is the RFC 1071 Internet checksum of the pseudo-header (if any)
// followed by b.
func checksum(pseudo, b []byte) uint16 {
	var sum uint32
	for _, s := range [][]byte{pseudo, b} {
		for i := 0; i+1 < len(s); i += 2 {
			sum += uint32(s[i])<<8 | uint32(s[i+1])
		}
		if len(s)%2 == 1 {
			sum += uint32(s[len(s)-1]) << 8
		}
	}
	for sum > 0xffff {
		sum = sum&0xffff + sum>>16
	}
	return ^uint16(sum)
}

// vrrp3 builds a VRRPv3 advertisement (RFC 9568 §5.1) with one address,
// its checksum over the pseudo-header of src and dst (§5.2.8). The tests
// build bytes by hand: netif does not depend on the codec.
func vrrp3(vrid, prio uint8, src, dst, vip netip.Addr) []byte {
	msg := []byte{0x31, vrid, prio, 1, 0x00, 0x0a, 0, 0}
	msg = append(msg, vip.AsSlice()...)
	var pseudo []byte
	if src.Is4() {
		pseudo = append(append(src.AsSlice(), dst.AsSlice()...), 0, netif.ProtocolVRRP, 0, byte(len(msg)))
	} else {
		pseudo = append(append(src.AsSlice(), dst.AsSlice()...), 0, 0, 0, byte(len(msg)), 0, 0, 0, netif.ProtocolVRRP)
	}
	binary.BigEndian.PutUint16(msg[6:], checksum(pseudo, msg))
	return msg
}

// ip4 wraps msg in the IPv4 header keepalived builds: TOS 0xc0, TTL 255,
// no DF, protocol 112 (reference §2.1).
func ip4(src, dst netip.Addr, id uint16, msg []byte) []byte {
	h := []byte{0x45, 0xc0, 0, 0, 0, 0, 0, 0, 255, netif.ProtocolVRRP, 0, 0}
	binary.BigEndian.PutUint16(h[2:], uint16(20+len(msg)))
	binary.BigEndian.PutUint16(h[4:], id)
	h = append(append(h, src.AsSlice()...), dst.AsSlice()...)
	binary.BigEndian.PutUint16(h[10:], checksum(nil, h))
	return append(h, msg...)
}

var cmpAddr = cmpopts.EquateComparable(netip.Addr{})

// got is a copy of a received packet.
type got struct {
	Src, Dst netip.Addr
	TTL, TOS uint8
	VRRP     []byte
}

// collector gathers copies of what a handler receives.
type collector struct{ ch chan got }

func newCollector() *collector { return &collector{ch: make(chan got, 64)} }

func (c *collector) HandleVRRP(p *netif.Packet) {
	c.ch <- got{Src: p.Src, Dst: p.Dst, TTL: p.TTL, TOS: p.TOS, VRRP: bytes.Clone(p.VRRP)}
}

func (c *collector) next(t *testing.T) got {
	t.Helper()
	select {
	case g := <-c.ch:
		return g
	case <-time.After(2 * time.Second):
		t.Fatal("no packet within 2s")
	}
	return got{}
}

func (c *collector) none(t *testing.T, wait time.Duration) {
	t.Helper()
	select {
	case g := <-c.ch:
		t.Fatalf("unexpected packet %+v", g)
	case <-time.After(wait):
	}
}

// listen opens n's VRRP socket of one family and runs it until the test ends.
func listen(t *testing.T, n *nskit.Node, v6 bool, cfg netif.Config) *netif.Conn {
	return listenCfg(t, n, v6, cfg)
}

func listenTB(t testing.TB, n *nskit.Node, v6 bool) *netif.Conn {
	return listenCfg(t, n, v6, netif.Config{})
}

func listenCfg(t testing.TB, n *nskit.Node, v6 bool, cfg netif.Config) *netif.Conn {
	t.Helper()
	var c *netif.Conn
	if err := n.Do(func() (err error) {
		if v6 {
			c, err = netif.ListenIPv6(n.Link, cfg)
		} else {
			c, err = netif.ListenIPv4(n.Link, cfg)
		}
		return err
	}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		if err := c.Run(ctx); !errors.Is(err, context.Canceled) {
			t.Errorf("Run on %s: %v", n.NS, err)
		}
	}()
	t.Cleanup(func() {
		cancel()
		wg.Wait()
		c.Close()
	})
	return c
}

func TestIPv4(t *testing.T) {
	t.Parallel()
	l := nskittest.New(t, "raw4", 2)
	a, b := l.Node(1), l.Node(2)
	unknown := newCollector()
	ca := listen(t, a, false, netif.Config{})
	cb := listen(t, b, false, netif.Config{Unknown: unknown})
	onA, onB := newCollector(), newCollector()
	ca.Handle(42, onA)
	cb.Handle(42, onB)
	vip := netip.MustParseAddr("192.0.2.100")
	src := a.IPv4.Addr()

	for _, dst := range []netip.Addr{netif.GroupIPv4, b.IPv4.Addr()} {
		t.Run(dst.String(), func(t *testing.T) {
			msg := vrrp3(42, 150, src, dst, vip)
			if err := ca.WriteIPv4(ip4(src, dst, 1, msg)); err != nil {
				t.Fatal(err)
			}
			want := got{Src: src, Dst: dst, TTL: 255, TOS: 0xc0, VRRP: msg}
			if diff := cmp.Diff(want, onB.next(t), cmpAddr); diff != "" {
				t.Errorf("received (-want +got):\n%s", diff)
			}
		})
	}

	t.Run("no loopback", func(t *testing.T) {
		// IP_MULTICAST_LOOP=0: a's own multicast advert does not come back to a.
		onA.none(t, 100*time.Millisecond)
		if s := ca.Stats(); s.Received != 0 || s.Unknown != 0 {
			t.Fatalf("sender's socket saw its own packets: %+v", s)
		}
	})

	t.Run("vrid demux", func(t *testing.T) {
		before := cb.Stats()
		other := newCollector()
		cb.Handle(43, other)
		for _, vrid := range []uint8{43, 7, 42} {
			msg := vrrp3(vrid, 100, src, netif.GroupIPv4, vip)
			if err := ca.WriteIPv4(ip4(src, netif.GroupIPv4, 2, msg)); err != nil {
				t.Fatal(err)
			}
		}
		if g := other.next(t); g.VRRP[1] != 43 {
			t.Errorf("VRID 43's handler got VRID %d", g.VRRP[1])
		}
		if g := unknown.next(t); g.VRRP[1] != 7 {
			t.Errorf("unknown handler got VRID %d", g.VRRP[1])
		}
		if g := onB.next(t); g.VRRP[1] != 42 {
			t.Errorf("VRID 42's handler got VRID %d", g.VRRP[1])
		}
		after := cb.Stats()
		if after.Received-before.Received != 2 || after.Unknown-before.Unknown != 1 {
			t.Errorf("stats before %+v after %+v: want 2 more received, 1 more unknown", before, after)
		}
		cb.Handle(43, nil)
		msg := vrrp3(43, 100, src, netif.GroupIPv4, vip)
		if err := ca.WriteIPv4(ip4(src, netif.GroupIPv4, 3, msg)); err != nil {
			t.Fatal(err)
		}
		if g := unknown.next(t); g.VRRP[1] != 43 {
			t.Errorf("removed VRID: unknown handler got VRID %d", g.VRRP[1])
		}
		other.none(t, 50*time.Millisecond)
	})

	t.Run("family", func(t *testing.T) {
		if err := ca.WriteIPv6([]byte{0x31}, netip.Addr{}, netif.GroupIPv6, 0); !errors.Is(err, netif.ErrFamily) {
			t.Fatalf("WriteIPv6 on an IPv4 socket: %v", err)
		}
	})
}

func TestIPv6(t *testing.T) {
	t.Parallel()
	l := nskittest.New(t, "raw6", 2)
	a, b := l.Node(1), l.Node(2)
	ca := listen(t, a, true, netif.Config{})
	cb := listen(t, b, true, netif.Config{})
	onA, onB := newCollector(), newCollector()
	ca.Handle(42, onA)
	cb.Handle(42, onB)
	vip := netip.MustParseAddr("2001:db8::100")

	if ll, err := ca.LinkLocal(); err != nil || ll != a.LinkLocal {
		t.Fatalf("LinkLocal() = %s, %v; want %s", ll, err, a.LinkLocal)
	}

	tests := []struct {
		name     string
		src, dst netip.Addr
		hopLimit int
		wantSrc  netip.Addr
		wantTTL  uint8
	}{
		// Multicast from the link-local address with hop limit 255 (RFC 9568 §5.1.2.1, §5.1.2.3).
		{"multicast", netip.Addr{}, netif.GroupIPv6, 0, a.LinkLocal, 255},
		// Unicast keeps the kernel's default hop limit unless unicast_ttl is set.
		{"unicast", a.IPv6.Addr(), b.IPv6.Addr(), 0, a.IPv6.Addr(), 64},
		{"unicast ttl", a.IPv6.Addr(), b.IPv6.Addr(), 255, a.IPv6.Addr(), 255},
		{"unicast link-local", netip.Addr{}, b.LinkLocal, 0, a.LinkLocal, 64},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			msg := vrrp3(42, 150, tt.wantSrc, tt.dst, vip)
			sent := bytes.Clone(msg)
			sent[6], sent[7] = 0, 0 // the kernel computes it (IPV6_CHECKSUM)
			if err := ca.WriteIPv6(sent, tt.src, tt.dst, tt.hopLimit); err != nil {
				t.Fatal(err)
			}
			want := got{Src: tt.wantSrc, Dst: tt.dst, TTL: tt.wantTTL, TOS: 0xc0, VRRP: msg}
			if diff := cmp.Diff(want, onB.next(t), cmpAddr); diff != "" {
				t.Errorf("received (-want +got):\n%s", diff)
			}
		})
	}
	onA.none(t, 50*time.Millisecond)
	if err := ca.WriteIPv4(make([]byte, 40)); !errors.Is(err, netif.ErrFamily) {
		t.Fatalf("WriteIPv4 on an IPv6 socket: %v", err)
	}
}

func TestClosed(t *testing.T) {
	t.Parallel()
	l := nskittest.New(t, "rawcl", 1)
	n := l.Node(1)
	var c *netif.Conn
	if err := n.Do(func() (err error) {
		c, err = netif.ListenIPv4(n.Link, netif.Config{})
		return err
	}); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- c.Run(context.Background()) }()
	time.Sleep(20 * time.Millisecond)
	c.Close()
	select {
	case err := <-done:
		if !errors.Is(err, netif.ErrClosed) {
			t.Fatalf("Run after Close: %v", err)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("Run did not return after Close")
	}
	src := n.IPv4.Addr()
	if err := c.WriteIPv4(ip4(src, netif.GroupIPv4, 1, vrrp3(1, 1, src, netif.GroupIPv4, src))); !errors.Is(err, netif.ErrClosed) {
		t.Fatalf("WriteIPv4 after Close: %v", err)
	}
	if _, err := netif.ListenIPv4("kwnosuchif0", netif.Config{}); err == nil {
		t.Fatal("ListenIPv4 on a missing interface succeeded")
	}
}

// TestIPv4AH: an AH socket (Config.AH) receives IP protocol 51 and not
// 112, splits the AH header from the message and demultiplexes by the
// message's VRID; a VRRP socket beside it receives 112 and not 51, as
// keepalived's two receive sockets do.
func TestIPv4AH(t *testing.T) {
	t.Parallel()
	l := nskittest.New(t, "raw4ah", 2)
	a, b := l.Node(1), l.Node(2)
	ca := listen(t, a, false, netif.Config{})
	ahB := listen(t, b, false, netif.Config{AH: true})
	plainB := listen(t, b, false, netif.Config{})
	onAH, onPlain := newCollector(), newCollector()
	ahHdr := make(chan []byte, 4)
	ahB.Handle(42, netif.HandlerFunc(func(p *netif.Packet) {
		ahHdr <- bytes.Clone(p.AH)
		onAH.HandleVRRP(p)
	}))
	plainB.Handle(42, onPlain)
	src, vip := a.IPv4.Addr(), netip.MustParseAddr("192.0.2.100")

	msg := vrrp3(42, 150, src, netif.GroupIPv4, vip)
	ah := make([]byte, 24)
	ah[0], ah[1] = netif.ProtocolVRRP, 4
	copy(ah[4:8], src.AsSlice())
	ah[11] = 1
	pkt := ip4(src, netif.GroupIPv4, 1, append(bytes.Clone(ah), msg...))
	pkt[9] = netif.ProtocolAH
	binary.BigEndian.PutUint16(pkt[10:], 0)
	binary.BigEndian.PutUint16(pkt[10:], checksum(nil, pkt[:20]))
	if err := ca.WriteIPv4(pkt); err != nil {
		t.Fatal(err)
	}
	want := got{Src: src, Dst: netif.GroupIPv4, TTL: 255, TOS: 0xc0, VRRP: msg}
	if diff := cmp.Diff(want, onAH.next(t), cmpAddr); diff != "" {
		t.Errorf("AH socket received (-want +got):\n%s", diff)
	}
	if h := <-ahHdr; !bytes.Equal(h, ah) {
		t.Errorf("AH header %x, want %x", h, ah)
	}
	onPlain.none(t, 100*time.Millisecond)

	if err := ca.WriteIPv4(ip4(src, netif.GroupIPv4, 2, msg)); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, onPlain.next(t), cmpAddr); diff != "" {
		t.Errorf("VRRP socket received (-want +got):\n%s", diff)
	}
	onAH.none(t, 100*time.Millisecond)

	if _, err := netif.ListenIPv6(b.Link, netif.Config{AH: true}); !errors.Is(err, netif.ErrFamily) {
		t.Errorf("an IPv6 AH socket: %v, want ErrFamily", err)
	}
}

// TestBatch: datagrams queued before the reader wakes are taken several
// at a time (recvmmsg); each still reaches its handler once, in order,
// with its own source, destination and hop limit from its own slot's
// address and control messages.
func TestBatch(t *testing.T) {
	t.Parallel()
	l := nskittest.New(t, "rawbt", 2)
	a, b := l.Node(1), l.Node(2)
	for _, v6 := range []bool{false, true} {
		t.Run(map[bool]string{false: "ipv4", true: "ipv6"}[v6], func(t *testing.T) {
			ca := listen(t, a, v6, netif.Config{})
			var cb *netif.Conn
			if err := b.Do(func() (err error) {
				if v6 {
					cb, err = netif.ListenIPv6(b.Link, netif.Config{})
				} else {
					cb, err = netif.ListenIPv4(b.Link, netif.Config{})
				}
				return err
			}); err != nil {
				t.Fatal(err)
			}
			defer cb.Close()
			onB := newCollector()
			cb.Handle(42, onB)
			// More than two full batches and a short one, queued on the
			// socket before its reader runs; multicast and unicast mixed so
			// that each slot's destination differs from its neighbours'.
			const n = 27
			src, uni, group, vip := a.IPv4.Addr(), b.IPv4.Addr(), netif.GroupIPv4, netip.MustParseAddr("192.0.2.100")
			if v6 {
				src, uni, group, vip = a.LinkLocal, b.LinkLocal, netif.GroupIPv6, netip.MustParseAddr("2001:db8::100")
			}
			var want []got
			for k := range n {
				dst := group
				if k%3 == 1 {
					dst = uni
				}
				msg := vrrp3(42, uint8(k+1), src, dst, vip)
				var err error
				if v6 {
					sent := bytes.Clone(msg)
					sent[6], sent[7] = 0, 0
					err = ca.WriteIPv6(sent, netip.Addr{}, dst, 255)
				} else {
					err = ca.WriteIPv4(ip4(src, dst, uint16(k+1), msg))
				}
				if err != nil {
					t.Fatal(err)
				}
				want = append(want, got{Src: src, Dst: dst, TTL: 255, TOS: 0xc0, VRRP: msg})
			}
			time.Sleep(100 * time.Millisecond) // all queued on b's socket
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			go func() { done <- cb.Run(ctx) }()
			for k := range n {
				if diff := cmp.Diff(want[k], onB.next(t), cmpAddr); diff != "" {
					t.Fatalf("datagram %d (-want +got):\n%s", k, diff)
				}
			}
			// And one sent once the reader waits again still arrives.
			msg := vrrp3(42, 200, src, group, vip)
			if v6 {
				sent := bytes.Clone(msg)
				sent[6], sent[7] = 0, 0
				if err := ca.WriteIPv6(sent, netip.Addr{}, group, 255); err != nil {
					t.Fatal(err)
				}
			} else if err := ca.WriteIPv4(ip4(src, group, 99, msg)); err != nil {
				t.Fatal(err)
			}
			if g := onB.next(t); g.VRRP[2] != 200 {
				t.Fatalf("after the batches: priority %d, want 200", g.VRRP[2])
			}
			onB.none(t, 50*time.Millisecond)
			if s := cb.Stats(); s.Received != n+1 {
				t.Errorf("Received = %d, want %d", s.Received, n+1)
			}
			cancel()
			if err := <-done; !errors.Is(err, context.Canceled) {
				t.Errorf("Run: %v", err)
			}
		})
	}
}
