package lab_test

import (
	"bytes"
	"encoding/hex"
	"fmt"
	"net/netip"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/keepwatch/keepwatch/deploy/lab"
	"github.com/keepwatch/keepwatch/engine/vrrp"
	"github.com/keepwatch/keepwatch/engine/vrrp/vrrptest"
)

// The frames keepwatch puts on the wire for a config are keepalived's for
// the same config, byte for byte, apart from what must differ: the source
// address (each node's own), the IPv4 ID (a per-sender counter), the
// destination in unicast (each sends to the other), the IPv6 flow label
// (the kernel's) and, as a consequence, the checksums. Both are decoded
// with engine/vrrp's codec and their checksums verified.
func TestWireFrames(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name string
		p    lab.Params
	}{
		{"v2pass4", lab.Params{Version: 2, Interval: time.Second, Pass: "secret12", Family: 4}},
		{"v3ipv4", lab.Params{Family: 4}},
		{"v3ipv6", lab.Params{Family: 6}},
		{"v3ipv4u", lab.Params{Family: 4, Unicast: true}},
		{"v3ipv6u", lab.Params{Family: 6, Unicast: true}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			// Same priority, so the two adverts carry the same fields; the
			// nodes run one after the other, each alone and so master.
			c := newCluster(t, "w"+tc.name, lab.Options{Nodes: 2, Params: tc.p, Keepalived: []int{2},
				Priorities: []int{150, 150}, Stopped: []int{1, 2}})
			kw := captureMaster(t, c.Node(1), tc.p)
			ka := captureMaster(t, c.Node(2), tc.p)
			compareFrames(t, tc.p, kw, ka)
		})
	}
}

// captureMaster starts the node alone, waits until it is master and
// returns the last advert it sent.
func captureMaster(t *testing.T, n *lab.Node, p lab.Params) vrrptest.Frame {
	t.Helper()
	capture, err := n.Capture(filepath.Join(t.TempDir(), fmt.Sprintf("n%d.pcap", n.Index)), "ip proto 112 or ip6 proto 112")
	if err != nil {
		t.Fatal(err)
	}
	if err := n.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	vip := vip4
	if p.Family == 6 {
		vip = vip6
	}
	ctx := t.Context()
	if _, err := n.WaitAddr(ctx, vip, true); err != nil {
		t.Fatal(err)
	}
	// A few adverts as master (v2: 1 s apart).
	time.Sleep(max(3*p.Interval, 300*time.Millisecond) + 50*time.Millisecond)
	if err := capture.Stop(); err != nil {
		t.Fatal(err)
	}
	if err := n.Stop(); err != nil {
		t.Fatal(err)
	}
	frames := vrrptest.ReadFile(t, capture.Path)
	last := frames[len(frames)-1]
	var a vrrp.Advertisement
	if err := a.Decode(last.Msg, last.Family); err != nil || a.Priority != 150 {
		t.Fatalf("node %d (%s): last advert %x: %v, priority %d, want a decodable advert at 150", n.Index, n.Impl, last.Msg, err, a.Priority)
	}
	return last
}

func compareFrames(t *testing.T, p lab.Params, kw, ka vrrptest.Frame) {
	t.Helper()
	t.Logf("keepwatch:  %s | %s", hex.EncodeToString(kw.Header), hex.EncodeToString(kw.Msg))
	t.Logf("keepalived: %s | %s", hex.EncodeToString(ka.Header), hex.EncodeToString(ka.Msg))
	if kw.Family != ka.Family {
		t.Fatalf("families differ: keepwatch %v, keepalived %v", kw.Family, ka.Family)
	}
	// Decoded, the adverts are equal but for the checksum.
	var akw, aka vrrp.Advertisement
	if err := akw.Decode(kw.Msg, kw.Family); err != nil {
		t.Fatal(err)
	}
	if err := aka.Decode(ka.Msg, ka.Family); err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff(aka, akw, cmpopts.IgnoreFields(vrrp.Advertisement{}, "Checksum"), cmpopts.EquateComparable(netip.Addr{})); d != "" {
		t.Errorf("decoded adverts differ (-keepalived +keepwatch):\n%s", d)
	}
	// And on the wire, byte for byte but for the checksum field.
	mask := func(b []byte, from, to int) []byte {
		c := bytes.Clone(b)
		for i := from; i < to && i < len(c); i++ {
			c[i] = 0
		}
		return c
	}
	if !bytes.Equal(mask(kw.Msg, 6, 8), mask(ka.Msg, 6, 8)) {
		t.Errorf("VRRP messages differ beyond the checksum:\nkeepwatch  %x\nkeepalived %x", kw.Msg, ka.Msg)
	}
	addrs := func(f vrrptest.Frame) (src, dst netip.Addr) {
		if f.Family == vrrp.IPv4 {
			return f.IPv4.Src, f.IPv4.Dst
		}
		return f.IPv6.Src, f.IPv6.Dst
	}
	for _, f := range []vrrptest.Frame{kw, ka} {
		// v3 over IPv4: keepalived's default pseudo-header checksum;
		// IPv6: the standard one; v2: the plain sum (the mode is ignored).
		s, d := addrs(f)
		if !vrrp.VerifyChecksum(f.Msg, s, d, vrrp.ChecksumPseudoHeader) {
			t.Errorf("advert %x from %s: bad checksum", f.Msg, s)
		}
	}
	if kw.Family == vrrp.IPv4 {
		// 0 ver/IHL, 1 TOS, 2-3 length, 4-5 ID, 6-7 flags, 8 TTL, 9 proto,
		// 10-11 checksum, 12-15 source, 16-19 destination.
		ign := [][2]int{{4, 6}, {10, 12}, {12, 16}}
		if p.Unicast {
			ign = append(ign, [2]int{16, 20})
		}
		h1, h2 := kw.Header, ka.Header
		for _, r := range ign {
			h1, h2 = mask(h1, r[0], r[1]), mask(h2, r[0], r[1])
		}
		if !bytes.Equal(h1, h2) {
			t.Errorf("IPv4 headers differ beyond ID, checksum and addresses:\nkeepwatch  %x\nkeepalived %x", kw.Header, ka.Header)
		}
		return
	}
	// IPv6: traffic class, payload length, next header and hop limit equal;
	// the flow label is the kernel's; addresses are each node's.
	if kw.IPv6.TrafficClass != ka.IPv6.TrafficClass || kw.IPv6.PayloadLen != ka.IPv6.PayloadLen ||
		kw.IPv6.NextHeader != ka.IPv6.NextHeader || kw.IPv6.HopLimit != ka.IPv6.HopLimit {
		t.Errorf("IPv6 headers differ:\nkeepwatch  %+v\nkeepalived %+v", kw.IPv6, ka.IPv6)
	}
	if !p.Unicast && kw.IPv6.Dst != ka.IPv6.Dst {
		t.Errorf("IPv6 destinations differ: keepwatch %s, keepalived %s", kw.IPv6.Dst, ka.IPv6.Dst)
	}
	if kw.IPv6.Src.IsLinkLocalUnicast() != ka.IPv6.Src.IsLinkLocalUnicast() {
		t.Errorf("IPv6 sources of different kinds: keepwatch %s, keepalived %s", kw.IPv6.Src, ka.IPv6.Src)
	}
}
