package vrrp

import (
	"encoding/binary"
	"fmt"
	"net/netip"
)

// ChecksumMode says what a VRRPv3 checksum over IPv4 covers.
type ChecksumMode uint8

// Checksum modes (reference §2.2).
const (
	// ChecksumPseudoHeader is RFC 9568 §5.2.8 and keepalived's default for
	// v3: the IPv4 or IPv6 pseudo-header, then the message. v2 ignores it.
	ChecksumPseudoHeader ChecksumMode = iota
	// ChecksumAsV2 is keepalived's v3_checksum_as_v2: v3 over IPv4 sums the
	// message only, as v2 does (what Cisco and Juniper send, keepalived #2324).
	// IPv6 is unaffected: its checksum comes from the kernel (IPV6_CHECKSUM),
	// always with the pseudo-header.
	ChecksumAsV2
)

func (m ChecksumMode) String() string {
	switch m {
	case ChecksumPseudoHeader:
		return "pseudo_header"
	case ChecksumAsV2:
		return "as_v2"
	}
	return fmt.Sprintf("mode(%d)", uint8(m))
}

// ProtocolVRRP is VRRP's IP protocol number (RFC 9568 §5.1.1.4).
const ProtocolVRRP = 112

// Multicast groups (RFC 9568 §5.1.1.2, §5.1.2.2).
var (
	GroupIPv4 = netip.AddrFrom4([4]byte{224, 0, 0, 18})
	GroupIPv6 = netip.MustParseAddr("ff02::12")
)

// Sum16 is the RFC 1071 one's-complement sum of b, added to acc. Fold with
// Fold16. It does not allocate.
func Sum16(b []byte, acc uint64) uint64 {
	for len(b) >= 8 {
		acc += uint64(binary.BigEndian.Uint16(b[0:])) + uint64(binary.BigEndian.Uint16(b[2:])) +
			uint64(binary.BigEndian.Uint16(b[4:])) + uint64(binary.BigEndian.Uint16(b[6:]))
		b = b[8:]
	}
	for len(b) >= 2 {
		acc += uint64(binary.BigEndian.Uint16(b))
		b = b[2:]
	}
	if len(b) == 1 {
		acc += uint64(b[0]) << 8 // RFC 1071 §4.1: pad the odd byte with zero
	}
	return acc
}

// Fold16 folds a sum to 16 bits and complements it: the checksum value.
func Fold16(acc uint64) uint16 {
	for acc>>16 != 0 {
		acc = acc&0xffff + acc>>16
	}
	return ^uint16(acc)
}

// pseudoSum sums the pseudo-header {src, dst, 0, 112, length} of RFC 768
// style (IPv4) or RFC 8200 §8.1 (IPv6); both reduce to the same words.
func pseudoSum(src, dst netip.Addr, length int) uint64 {
	var acc uint64
	if src.Is4() {
		s := src.As4()
		var d [4]byte
		if dst.Is4() || dst.Is4In6() { // As4 would panic on anything else
			d = dst.As4()
		}
		acc = Sum16(s[:], acc)
		acc = Sum16(d[:], acc)
	} else {
		s, d := src.As16(), dst.As16()
		acc = Sum16(s[:], acc)
		acc = Sum16(d[:], acc)
	}
	return acc + ProtocolVRRP + uint64(length)
}

// usesPseudoHeader reports whether a version-v message between src and dst
// is checksummed with the pseudo-header under mode m: v3 over IPv4 unless
// m is ChecksumAsV2; anything over IPv6 (the kernel's IPV6_CHECKSUM).
func usesPseudoHeader(v Version, src netip.Addr, m ChecksumMode) bool {
	if src.Is6() && !src.Is4In6() {
		return true
	}
	return v == Version3 && m == ChecksumPseudoHeader
}

// Checksum computes the checksum of the VRRP message msg (without any
// auth_hmac trailer: see Advertisement.MessageLen), treating its checksum
// field as zero. src and dst are the IP source and the real destination:
// the group, or the unicast peer in unicast mode (reference §2.2). For the
// old unicast checksum of keepalived ≤ 1.3.6, pass the group as dst. v2 over
// IPv4 ignores src, dst and m. msg must hold at least HeaderLen bytes.
func Checksum(msg []byte, src, dst netip.Addr, m ChecksumMode) uint16 {
	if len(msg) < HeaderLen {
		return 0
	}
	var acc uint64
	if usesPseudoHeader(Version(msg[0]>>4), src, m) {
		acc = pseudoSum(src, dst, len(msg))
	}
	acc = Sum16(msg[:6], acc)
	acc = Sum16(msg[8:], acc)
	return Fold16(acc)
}

// PutChecksum computes the checksum of msg (as Checksum) and writes it into
// msg, e.g. to patch the destination per unicast peer without re-encoding.
func PutChecksum(msg []byte, src, dst netip.Addr, m ChecksumMode) {
	if len(msg) < HeaderLen {
		return
	}
	binary.BigEndian.PutUint16(msg[6:8], Checksum(msg, src, dst, m))
}

// VerifyChecksum reports whether msg's checksum field is right for src, dst
// and m: the one's-complement sum over everything, field included, is zero
// (RFC 1071 §1), so 0x0000 and 0xffff are both accepted where they are equal.
func VerifyChecksum(msg []byte, src, dst netip.Addr, m ChecksumMode) bool {
	if len(msg) < HeaderLen {
		return false
	}
	var acc uint64
	if usesPseudoHeader(Version(msg[0]>>4), src, m) {
		acc = pseudoSum(src, dst, len(msg))
	}
	return Fold16(Sum16(msg, acc)) == 0
}

// AppendWithChecksum appends the encoding of a to b with the checksum
// computed for src → dst under m (a.Checksum is ignored and left alone). It
// does not allocate when b has room for a.Len() more bytes.
func (a *Advertisement) AppendWithChecksum(b []byte, src, dst netip.Addr, m ChecksumMode) ([]byte, error) {
	start := len(b)
	b, err := a.AppendBinary(b)
	if err != nil {
		return b, err
	}
	PutChecksum(b[start:start+a.MessageLen()], src, dst, m)
	return b, nil
}
