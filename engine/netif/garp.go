package netif

import (
	"encoding/binary"
	"net"
	"net/netip"
)

// Frame sizes: Ethernet (14) + ARP for IPv4 over Ethernet (28); Ethernet +
// IPv6 (40) + neighbour advertisement (24) + target link-layer option (8).
const (
	GARPLen = 14 + 28
	NALen   = 14 + 40 + 24 + 8
)

// Ethernet types.
const (
	etherTypeARP  = 0x0806
	etherTypeIPv6 = 0x86dd
)

// AllNodes is ff02::1, where unsolicited neighbour advertisements go
// (RFC 4861 §7.2.6).
var AllNodes = netip.MustParseAddr("ff02::1")

// AppendGARP appends the gratuitous ARP frame keepalived sends for a VIP
// (reference §2.6, vrrp_arp.c): an ARP request (op 1) with sender IP =
// target IP = vip, target MAC ff:ff:ff:ff:ff:ff, from mac to the Ethernet
// broadcast. A request rather than a reply is what every host updates its
// cache from (RFC 5227 §3).
func AppendGARP(b []byte, mac net.HardwareAddr, vip netip.Addr) []byte {
	ip, m := vip.As4(), mac6(mac)
	b = append(b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff)
	b = append(b, m[:]...)
	b = binary.BigEndian.AppendUint16(b, etherTypeARP)
	b = append(b,
		0x00, 0x01, // hardware type Ethernet
		0x08, 0x00, // protocol type IPv4
		6, 4, // address lengths
		0x00, 0x01, // op: request
	)
	b = append(b, m[:]...)
	b = append(b, ip[:]...)
	b = append(b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff)
	return append(b, ip[:]...)
}

// AppendUnsolicitedNA appends the unsolicited neighbour advertisement
// keepalived sends for an IPv6 VIP (reference §2.6, vrrp_ndisc.c; RFC 4861
// §7.2.6): from vip to ff02::1 (Ethernet 33:33:00:00:00:01), hop limit
// 255, Override set, Router set when the interface forwards, Solicited
// clear, and a target link-layer address option carrying mac.
func AppendUnsolicitedNA(b []byte, mac net.HardwareAddr, vip netip.Addr, router bool) []byte {
	src, dst, m := vip.As16(), AllNodes.As16(), mac6(mac)
	b = append(b, 0x33, 0x33, 0, 0, 0, 1)
	b = append(b, m[:]...)
	b = binary.BigEndian.AppendUint16(b, etherTypeIPv6)
	b = append(b, 0x60, 0, 0, 0) // version 6, traffic class 0, flow 0
	b = binary.BigEndian.AppendUint16(b, 32)
	b = append(b, 58, 255) // next header ICMPv6, hop limit 255 (RFC 4861 §7.1.2)
	b = append(b, src[:]...)
	b = append(b, dst[:]...)
	icmp := len(b)
	flags := byte(0x20) // Override
	if router {
		flags |= 0x80
	}
	b = append(b, 136, 0, 0, 0, flags, 0, 0, 0) // type NA, code 0, checksum, flags, reserved
	b = append(b, src[:]...)                    // target address
	b = append(b, 2, 1)                         // option: target link-layer address, 8 bytes
	b = append(b, m[:]...)
	binary.BigEndian.PutUint16(b[icmp+2:], icmp6Checksum(src, dst, b[icmp:]))
	return b
}

// mac6 is mac as a 6-byte Ethernet address (zero-padded or truncated, so
// a wrong length cannot panic).
func mac6(mac net.HardwareAddr) (m [6]byte) {
	copy(m[:], mac)
	return m
}

// icmp6Checksum is the ICMPv6 checksum over the IPv6 pseudo-header (RFC
// 8200 §8.1) and msg, whose checksum field must be zero.
func icmp6Checksum(src, dst [16]byte, msg []byte) uint16 {
	var sum uint32
	add := func(b []byte) {
		for i := 0; i+1 < len(b); i += 2 {
			sum += uint32(b[i])<<8 | uint32(b[i+1])
		}
		if len(b)%2 == 1 {
			sum += uint32(b[len(b)-1]) << 8
		}
	}
	add(src[:])
	add(dst[:])
	sum += uint32(len(msg)) + 58
	add(msg)
	for sum > 0xffff {
		sum = sum&0xffff + sum>>16
	}
	return ^uint16(sum)
}

// Announcer sends gratuitous ARPs and unsolicited neighbour advertisements
// for VIPs. It is what a VRRP instance needs after it has added its VIPs.
type Announcer interface {
	// Announce sends one gratuitous ARP (IPv4 vip) or unsolicited NA (IPv6).
	Announce(vip netip.Addr) error
}
