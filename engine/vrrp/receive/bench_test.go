package receive_test

import (
	"net/netip"
	"testing"

	"github.com/keepwatch/keepwatch/engine/vrrp"
	"github.com/keepwatch/keepwatch/engine/vrrp/receive"
)

// BenchmarkValidate is the receive path of a backup: a v3 IPv4 multicast
// advert, accepted, decoded into a reused Advertisement.
func BenchmarkValidate(b *testing.B) {
	p := build(b, v3mcast())
	in := inV3()
	var adv vrrp.Advertisement
	adv.Addresses = make([]netip.Addr, 0, 8)
	b.ReportAllocs()
	for b.Loop() {
		if r := receive.Validate(p.msg, p.ip, &in, &adv); !r.Accepted() {
			b.Fatal(r)
		}
	}
}

// BenchmarkValidateV2Pass adds the constant-time password compare.
func BenchmarkValidateV2Pass(b *testing.B) {
	p := build(b, v2pass())
	in := inV2()
	var adv vrrp.Advertisement
	adv.Addresses = make([]netip.Addr, 0, 8)
	b.ReportAllocs()
	for b.Loop() {
		if r := receive.Validate(p.msg, p.ip, &in, &adv); !r.Accepted() {
			b.Fatal(r)
		}
	}
}
