package vrrp_test

import (
	"bytes"
	"net/netip"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/keepwatch/keepwatch/engine/vrrp"
	"github.com/keepwatch/keepwatch/engine/vrrp/vrrptest"
)

// seeds are every table case and every captured frame.
func seeds(f *testing.F) [][]byte {
	var out [][]byte
	for _, tc := range codecCases {
		out = append(out, unhex(f, tc.hex))
	}
	for _, tc := range hexCases {
		out = append(out, unhex(f, tc.msg))
	}
	for _, fr := range vrrptest.ReadAll(f) {
		out = append(out, fr.Msg)
	}
	return out
}

// FuzzUnmarshal: whatever decodes re-encodes to the same bytes and decodes
// to the same value, whether the family is inferred or given.
func FuzzUnmarshal(f *testing.F) {
	for _, s := range seeds(f) {
		f.Add(s)
	}
	opts := []cmp.Option{cmpopts.EquateEmpty(), addrCmp}
	f.Fuzz(func(t *testing.T, b []byte) {
		decoders := []func(*vrrp.Advertisement, []byte) error{
			(*vrrp.Advertisement).UnmarshalBinary,
			func(a *vrrp.Advertisement, b []byte) error { return a.Decode(b, vrrp.IPv4) },
			func(a *vrrp.Advertisement, b []byte) error { return a.Decode(b, vrrp.IPv6) },
		}
		for i, decode := range decoders {
			var a vrrp.Advertisement
			if decode(&a, b) != nil {
				continue
			}
			out, err := a.MarshalBinary()
			if err != nil {
				t.Fatalf("decoder %d: decoded %x but cannot re-encode: %v", i, b, err)
			}
			if !bytes.Equal(out, b) {
				t.Fatalf("decoder %d: re-encoded\n%x\nfrom\n%x", i, out, b)
			}
			if a.Len() != len(b) {
				t.Fatalf("decoder %d: Len() = %d for %d bytes", i, a.Len(), len(b))
			}
			var a2 vrrp.Advertisement
			if err := decode(&a2, out); err != nil {
				t.Fatalf("decoder %d: re-encoded bytes do not decode: %v", i, err)
			}
			if diff := cmp.Diff(a, a2, opts...); diff != "" {
				t.Fatalf("decoder %d: second decode differs (-first +second):\n%s", i, diff)
			}
			src, dst := netip.MustParseAddr("192.0.2.1"), vrrp.GroupIPv4
			if a.Family == vrrp.IPv6 {
				src, dst = netip.MustParseAddr("fe80::1"), vrrp.GroupIPv6
			}
			msg := bytes.Clone(b[:a.MessageLen()])
			vrrp.PutChecksum(msg, src, dst, vrrp.ChecksumPseudoHeader)
			if !vrrp.VerifyChecksum(msg, src, dst, vrrp.ChecksumPseudoHeader) {
				t.Fatalf("decoder %d: PutChecksum result does not verify: %x", i, msg)
			}
		}
	})
}

// FuzzIPHeader: header parsing never panics, and a parsed 20-byte IPv4
// header re-encodes to the same bytes apart from the checksum.
func FuzzIPHeader(f *testing.F) {
	for _, fr := range vrrptest.ReadAll(f) {
		f.Add(fr.Header)
	}
	f.Add(unhex(f, "46c00030 00010000 ff700000 c000020a e0000012 01010100"))
	f.Fuzz(func(t *testing.T, b []byte) {
		var h6 vrrp.IPv6Header
		_ = h6.Parse(b)
		var h vrrp.IPv4Header
		if h.Parse(b) != nil || h.HeaderLen != vrrp.IPv4HeaderLen || h.TotalLen < vrrp.IPv4HeaderLen {
			return
		}
		out, err := h.AppendBinary(nil)
		if err != nil {
			t.Fatalf("parsed %x but cannot re-encode: %v", b[:20], err)
		}
		want := bytes.Clone(b[:20])
		want[10], want[11] = out[10], out[11]
		if !bytes.Equal(out, want) {
			t.Fatalf("re-encoded %x from %x", out, b[:20])
		}
	})
}

// FuzzAH: any bytes as an AH-protected IPv4 packet (header, AH, message)
// parse or fail without panicking, and verification agrees with sealing:
// whatever SealAH writes, VerifyAH accepts, and a flipped ICV bit is refused.
func FuzzAH(f *testing.F) {
	for _, name := range vrrptest.AHFiles {
		for _, fr := range vrrptest.Read(f, name) {
			f.Add(append(append(bytes.Clone(fr.Header), fr.AH...), fr.Msg...), false)
		}
	}
	f.Add(make([]byte, 44), true)
	key := vrrp.PassAuthData("s3cret")
	f.Fuzz(func(t *testing.T, b []byte, unicast bool) {
		var h vrrp.IPv4Header
		if h.Parse(b) != nil {
			return
		}
		rest := b[h.HeaderLen:]
		var ah vrrp.AH
		if err := ah.Parse(rest); err != nil {
			return
		}
		again, _ := ah.AppendBinary(nil)
		if !bytes.Equal(again, rest[:vrrp.AHLen]) {
			t.Fatalf("AH re-encodes as %x, read %x", again, rest[:vrrp.AHLen])
		}
		hdr, msg := b[:h.HeaderLen], rest[vrrp.AHLen:]
		_ = vrrp.VerifyAH(key, hdr, rest, msg, unicast)
		pkt := bytes.Clone(b)
		if err := vrrp.SealAH(key, pkt, h.HeaderLen, unicast); err != nil {
			return
		}
		p := pkt[h.HeaderLen:]
		if !vrrp.VerifyAH(key, pkt[:h.HeaderLen], p, p[vrrp.AHLen:], unicast) {
			t.Fatal("a sealed packet does not verify")
		}
		p[vrrp.AHLen-1] ^= 1
		if vrrp.VerifyAH(key, pkt[:h.HeaderLen], p, p[vrrp.AHLen:], unicast) {
			t.Fatal("a flipped ICV verifies")
		}
	})
}
