package vrrp_test

import (
	"errors"
	"io"
	"net/netip"
	"testing"

	"github.com/keepwatch/keepwatch/engine/vrrp"
)

func TestSum16RFC1071(t *testing.T) {
	// RFC 1071 §3's worked example: the sum of 0001 f203 f4f5 f6f7 is ddf2.
	b := []byte{0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7}
	if got := vrrp.Fold16(vrrp.Sum16(b, 0)); got != ^uint16(0xddf2) {
		t.Errorf("checksum = %#04x, want %#04x", got, ^uint16(0xddf2))
	}
	// An odd length pads with a zero byte (RFC 1071 §4.1).
	if got, want := vrrp.Fold16(vrrp.Sum16([]byte{0x01, 0x02, 0x03}, 0)), ^uint16(0x0102+0x0300); got != want {
		t.Errorf("odd: %#04x, want %#04x", got, want)
	}
	// Carries fold around.
	if got := vrrp.Fold16(vrrp.Sum16([]byte{0xff, 0xff, 0x00, 0x01}, 0)); got != ^uint16(0x0001) {
		t.Errorf("carry: %#04x", got)
	}
}

func TestChecksumEdges(t *testing.T) {
	src, dst := netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("198.51.100.1")
	short := []byte{0x31, 0x2a}
	if vrrp.VerifyChecksum(short, src, dst, vrrp.ChecksumPseudoHeader) {
		t.Error("short message verifies")
	}
	vrrp.PutChecksum(short, src, dst, vrrp.ChecksumPseudoHeader) // must not panic
	if vrrp.Checksum(short, src, dst, vrrp.ChecksumPseudoHeader) != 0 {
		t.Error("checksum of a short message")
	}
	// Mismatched or missing addresses never panic (netip.Addr.As4 would).
	msg := unhex(t, "312a9601 00640000 c0000264")
	for _, d := range []netip.Addr{{}, netip.MustParseAddr("2001:db8::1")} {
		vrrp.PutChecksum(msg, src, d, vrrp.ChecksumPseudoHeader)
		vrrp.PutChecksum(msg, netip.Addr{}, d, vrrp.ChecksumPseudoHeader)
	}
	// PutChecksum then VerifyChecksum agree, and a flipped bit fails.
	vrrp.PutChecksum(msg, src, dst, vrrp.ChecksumPseudoHeader)
	if !vrrp.VerifyChecksum(msg, src, dst, vrrp.ChecksumPseudoHeader) {
		t.Error("PutChecksum result does not verify")
	}
	msg[2] ^= 1
	if vrrp.VerifyChecksum(msg, src, dst, vrrp.ChecksumPseudoHeader) {
		t.Error("corrupted message verifies")
	}
}

func TestIPv4Header(t *testing.T) {
	// keepalived's first advert of reference §2.2.
	raw := unhex(t, "45 c0 00 2c 00 01 00 00 ff 70 18 84 c0 00 02 0a e0 00 00 12")
	var h vrrp.IPv4Header
	if err := h.Parse(raw); err != nil {
		t.Fatal(err)
	}
	want := vrrp.IPv4Header{HeaderLen: 20, TOS: 0xc0, TotalLen: 44, ID: 1, TTL: 255, Protocol: 112,
		Checksum: 0x1884, Src: netip.MustParseAddr("192.0.2.10"), Dst: vrrp.GroupIPv4}
	if h != want {
		t.Errorf("Parse = %+v, want %+v", h, want)
	}
	b, err := h.MarshalBinary()
	if err != nil || string(b) != string(raw) {
		t.Errorf("MarshalBinary = %x (%v), want %x", b, err, raw)
	}
	// unicast_ttl.
	u := vrrp.NewIPv4Header(h.Src, netip.MustParseAddr("192.0.2.20"), 7, 64, 12)
	b, _ = u.AppendBinary(nil)
	if b[8] != 64 || b[1] != 0xc0 || b[6] != 0 || vrrp.Fold16(vrrp.Sum16(b, 0)) != 0 {
		t.Errorf("unicast header %x", b)
	}

	// With options: payload starts after IHL.
	opt := append(unhex(t, "46c00030 00010000 ff700000 c000020a e0000012"), 1, 1, 1, 0)
	if err := h.Parse(opt); err != nil || h.HeaderLen != 24 {
		t.Errorf("options: %v, HeaderLen %d", err, h.HeaderLen)
	}

	for _, tc := range []struct {
		name string
		b    []byte
		want error
	}{
		{"short", raw[:19], io.ErrUnexpectedEOF},
		{"ipv6", append([]byte{0x60}, raw[1:]...), vrrp.ErrIPHeader},
		{"ihl 4", append([]byte{0x44}, raw[1:]...), vrrp.ErrIPHeader},
		{"ihl past end", append([]byte{0x4f}, raw[1:]...), io.ErrUnexpectedEOF},
	} {
		if err := h.Parse(tc.b); !errors.Is(err, tc.want) {
			t.Errorf("%s: %v, want %v", tc.name, err, tc.want)
		}
	}
	for _, bad := range []vrrp.IPv4Header{
		{Src: netip.MustParseAddr("2001:db8::1"), Dst: vrrp.GroupIPv4, TotalLen: 40},
		{Src: h.Src, Dst: vrrp.GroupIPv4, TotalLen: 19},
	} {
		if _, err := bad.AppendBinary(nil); !errors.Is(err, vrrp.ErrIPHeader) {
			t.Errorf("AppendBinary(%+v) err = %v", bad, err)
		}
	}
}

func TestIPv6Header(t *testing.T) {
	raw := unhex(t, "6c07af10 002870ff fe800000000000000000000000000001 ff020000000000000000000000000012")
	var h vrrp.IPv6Header
	if err := h.Parse(raw); err != nil {
		t.Fatal(err)
	}
	want := vrrp.IPv6Header{TrafficClass: 0xc0, HopLimit: 255, NextHeader: 112, PayloadLen: 40,
		Src: netip.MustParseAddr("fe80::1"), Dst: vrrp.GroupIPv6}
	if h != want {
		t.Errorf("Parse = %+v, want %+v", h, want)
	}
	if err := h.Parse(raw[:39]); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("short: %v", err)
	}
	if err := h.Parse(append([]byte{0x45}, raw[1:]...)); !errors.Is(err, vrrp.ErrIPHeader) {
		t.Errorf("v4: %v", err)
	}
}
