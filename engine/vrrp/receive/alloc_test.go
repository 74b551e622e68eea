//go:build !race

package receive_test

import (
	"net/netip"
	"testing"

	"github.com/keepwatch/keepwatch/engine/vrrp"
	"github.com/keepwatch/keepwatch/engine/vrrp/receive"
	"github.com/keepwatch/keepwatch/engine/vrrp/vrrptest"
)

// TestValidateZeroAllocs pins the allocation-free receive path, accepted or
// dropped (a flood of bad packets must not make garbage).
func TestValidateZeroAllocs(t *testing.T) {
	var adv vrrp.Advertisement
	adv.Addresses = make([]netip.Addr, 0, 8)
	for _, c := range []struct {
		name string
		p    pkt
		in   receive.Instance
	}{
		{"v3 accepted", build(t, v3mcast()), inV3()},
		{"v2 pass accepted", build(t, v2pass()), inV2()},
		{"ipv6 accepted", build(t, v3ipv6()), inV6()},
		{"unicast old checksum", func() pkt {
			p := build(t, v3ucast())
			vrrp.PutChecksum(p.msg, p.ip.Src, vrrp.GroupIPv4, vrrp.ChecksumPseudoHeader)
			return p
		}(), inV3Unicast()},
		{"dropped", build(t, v2pass()), inV3()},
	} {
		if n := testing.AllocsPerRun(100, func() { receive.Validate(c.p.msg, c.p.ip, &c.in, &adv) }); n != 0 {
			t.Errorf("%s: %v allocs/op, want 0", c.name, n)
		}
	}
	// AH: the ICV is computed on every advert, accepted or refused.
	fr := vrrptest.Read(t, "v2-ipv4-ah.pcap")[0]
	ip := receive.FromIPv4(&fr.IPv4)
	ip.AH, ip.Header = fr.AH, fr.Header
	for name, seq := range map[string]uint32{"AH accepted": 0, "AH replay": 5} {
		in := inAH()
		in.AHSeq = seq
		if n := testing.AllocsPerRun(100, func() { receive.Validate(fr.Msg, ip, &in, &adv) }); n != 0 {
			t.Errorf("%s: %v allocs/op, want 0", name, n)
		}
	}
	for _, c := range []struct {
		name string
		p    pkt
		in   receive.Instance
	}{} {
		if n := testing.AllocsPerRun(100, func() { receive.Validate(c.p.msg, c.p.ip, &c.in, &adv) }); n != 0 {
			t.Errorf("%s: %v allocs/op, want 0", c.name, n)
		}
	}
}
