package metrics

import (
	"net/netip"
	"testing"

	"github.com/keepwatch/keepwatch/engine/vrrp"
)

func TestSegment(t *testing.T) {
	pfx := func(ss ...string) []netip.Prefix {
		var out []netip.Prefix
		for _, s := range ss {
			out = append(out, netip.MustParsePrefix(s))
		}
		return out
	}
	addr := netip.MustParseAddr
	vip := []netip.Addr{addr("192.0.2.100")}
	for _, tc := range []struct {
		name  string
		fam   vrrp.Family
		addrs []netip.Prefix
		vips  []netip.Addr
		self  netip.Addr
		peers []netip.Addr
		want  string
	}{
		{"primary prefix", vrrp.IPv4, pfx("192.0.2.7/24"), vip, netip.Addr{}, nil, "192.0.2.0/24"},
		// A master holds the VIP on the same interface; a VIP first in the
		// list (no primary yet) must not name the segment.
		{"vip skipped", vrrp.IPv4, pfx("192.0.2.100/24", "198.51.100.9/25"), vip, netip.Addr{}, nil, "198.51.100.0/25"},
		{"no address", vrrp.IPv4, nil, vip, netip.Addr{}, nil, ""},
		{"ipv6 global", vrrp.IPv6, pfx("fe80::1/64", "192.0.2.7/24", "2001:db8:5::7/64"), nil, netip.Addr{}, nil, "2001:db8:5::/64"},
		{"ipv6 link-local only", vrrp.IPv6, pfx("fe80::1/64", "203.0.113.7/24"), nil, netip.Addr{}, nil, "203.0.113.0/24"},
	} {
		if got := Segment(tc.fam, tc.addrs, tc.vips, tc.self, tc.peers); got != tc.want {
			t.Errorf("%s: Segment = %q, want %q", tc.name, got, tc.want)
		}
	}

	// Unicast: both peers compute the same name, from their own side; a
	// third pair gets another.
	a, b, c := addr("192.0.2.1"), addr("192.0.2.2"), addr("192.0.2.3")
	sa := Segment(vrrp.IPv4, nil, nil, a, []netip.Addr{b})
	sb := Segment(vrrp.IPv4, pfx("192.0.2.2/24"), nil, netip.Addr{}, []netip.Addr{a})
	if sa != sb || len(sa) != len("unicast:")+16 {
		t.Errorf("unicast peers disagree: %q vs %q", sa, sb)
	}
	if sc := Segment(vrrp.IPv4, nil, nil, a, []netip.Addr{c}); sc == sa {
		t.Errorf("peer sets {a,b} and {a,c} share segment %q", sa)
	}
	if s3 := Segment(vrrp.IPv4, nil, nil, c, []netip.Addr{b, a, a}); s3 != Segment(vrrp.IPv4, nil, nil, a, []netip.Addr{c, b}) {
		t.Errorf("three peers: order or duplicates change the name")
	}
}
