package vrrp_test

import (
	"net/netip"
	"testing"

	"github.com/keepwatch/keepwatch/engine/vrrp"
)

func benchAdvert() *vrrp.Advertisement {
	return &vrrp.Advertisement{
		Version: vrrp.Version3, Type: vrrp.TypeAdvertisement, VRID: 42, Priority: 150,
		AdvertInt: 100, Family: vrrp.IPv4,
		Addresses: addrs("192.0.2.100", "192.0.2.101", "192.0.2.102"),
	}
}

var (
	benchSrc = netip.MustParseAddr("192.0.2.1")
	benchMsg = []byte{0x31, 0x2a, 0x96, 0x03, 0x00, 0x64, 0x4e, 0xa4,
		192, 0, 2, 100, 192, 0, 2, 101, 192, 0, 2, 102}
)

// BenchmarkAppendBinary is the send path: encode into a reused buffer with
// the v3 pseudo-header checksum, as a master does every advert_int.
func BenchmarkAppendBinary(b *testing.B) {
	a := benchAdvert()
	buf := make([]byte, 0, 64)
	b.ReportAllocs()
	for b.Loop() {
		var err error
		buf, err = a.AppendWithChecksum(buf[:0], benchSrc, vrrp.GroupIPv4, vrrp.ChecksumPseudoHeader)
		if err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkUnmarshal decodes into a reused Advertisement.
func BenchmarkUnmarshal(b *testing.B) {
	var a vrrp.Advertisement
	a.Addresses = make([]netip.Addr, 0, 8)
	b.ReportAllocs()
	for b.Loop() {
		if err := a.Decode(benchMsg, vrrp.IPv4); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkIPv4Header builds the IP_HDRINCL header.
func BenchmarkIPv4Header(b *testing.B) {
	buf := make([]byte, 0, 64)
	b.ReportAllocs()
	for b.Loop() {
		h := vrrp.NewIPv4Header(benchSrc, vrrp.GroupIPv4, 1, vrrp.TTL, len(benchMsg))
		buf, _ = h.AppendBinary(buf[:0])
	}
}
