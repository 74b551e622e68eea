//go:build !race

package vrrp_test

import (
	"net/netip"
	"testing"

	"github.com/keepwatch/keepwatch/engine/vrrp"
)

// TestZeroAllocs pins the allocation-free contract of the hot paths (the
// race detector allocates, hence the build tag). Speed is in the benchmarks.
func TestZeroAllocs(t *testing.T) {
	a := benchAdvert()
	buf := make([]byte, 0, 128)
	var d vrrp.Advertisement
	d.Addresses = make([]netip.Addr, 0, 8)
	var h vrrp.IPv4Header
	for name, fn := range map[string]func(){
		"AppendBinary": func() { buf, _ = a.AppendBinary(buf[:0]) },
		"AppendWithChecksum": func() {
			buf, _ = a.AppendWithChecksum(buf[:0], benchSrc, vrrp.GroupIPv4, vrrp.ChecksumPseudoHeader)
		},
		"Decode":          func() { _ = d.Decode(benchMsg, vrrp.IPv4) },
		"UnmarshalBinary": func() { _ = d.UnmarshalBinary(benchMsg) },
		"Decode error":    func() { _ = d.Decode(benchMsg[:9], vrrp.IPv4) },
		"AH seal and verify": func() {
			h = vrrp.NewIPv4Header(benchSrc, vrrp.GroupIPv4, 1, vrrp.TTL, vrrp.AHLen+len(benchMsg))
			h.Protocol = vrrp.ProtocolAH
			buf, _ = h.AppendBinary(buf[:0])
			ah := vrrp.NewAH(benchSrc.As4(), 7)
			buf, _ = ah.AppendBinary(buf)
			buf = append(buf, benchMsg...)
			_ = vrrp.SealAH(ahKey, buf, vrrp.IPv4HeaderLen, false)
			var p vrrp.AH
			_ = p.Parse(buf[20:])
			_ = vrrp.VerifyAH(ahKey, buf[:20], buf[20:44], buf[44:], false)
		},
		"IPv4 header": func() {
			h = vrrp.NewIPv4Header(benchSrc, vrrp.GroupIPv4, 1, vrrp.TTL, 20)
			buf, _ = h.AppendBinary(buf[:0])
			_ = h.Parse(buf)
		},
	} {
		if n := testing.AllocsPerRun(100, fn); n != 0 {
			t.Errorf("%s: %v allocs/op, want 0", name, n)
		}
	}
}

var ahKey = vrrp.PassAuthData("s3cret")
