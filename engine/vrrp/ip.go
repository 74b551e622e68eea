package vrrp

import (
	"encoding"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net/netip"
)

// IP-level constants keepalived sends with (reference §2.1). TTL / hop limit
// 255 is RFC 9568 §5.1.1.3 / §5.1.2.3, and receivers drop anything else on
// multicast. TOS / traffic class 0xc0 (internetwork control) is keepalived's.
const (
	TTL             = 255
	TOS             = 0xc0
	IPv4HeaderLen   = 20
	IPv6HeaderLen   = 40
	ipv4VersionIHL5 = 0x45
)

// ErrIPHeader: the bytes are not an IPv4 (or IPv6) header this package reads.
var ErrIPHeader = errors.New("vrrp: bad IP header")

var (
	errIPVersion = fmt.Errorf("%w: wrong version", ErrIPHeader)
	errIPIHL     = fmt.Errorf("%w: header length below 20", ErrIPHeader)
)

// IPv4Header is the IPv4 header of a VRRP packet (RFC 791 §3.1). A raw
// IPPROTO_VRRP socket delivers it in front of every received message, and
// keepalived sends with IP_HDRINCL, building it itself (reference §2.1).
type IPv4Header struct {
	HeaderLen int // bytes, from IHL; set by Parse, ignored by AppendBinary (20)
	TOS       uint8
	TotalLen  uint16
	ID        uint16
	FragOff   uint16 // flags and fragment offset; keepalived sends 0 (no DF)
	TTL       uint8
	Protocol  uint8
	Checksum  uint16 // as read; AppendBinary computes its own
	Src, Dst  netip.Addr
}

var (
	_ encoding.BinaryAppender  = (*IPv4Header)(nil)
	_ encoding.BinaryMarshaler = (*IPv4Header)(nil)
)

// NewIPv4Header returns the header keepalived puts in front of a VRRP
// message of payloadLen bytes: TOS 0xc0, no DF, protocol 112, the given ID
// (keepalived counts from 1 per instance and never sends 0) and TTL (255,
// also for unicast unless unicast_ttl is set; reference §2.1).
func NewIPv4Header(src, dst netip.Addr, id uint16, ttl uint8, payloadLen int) IPv4Header {
	return IPv4Header{
		HeaderLen: IPv4HeaderLen,
		TOS:       TOS,
		TotalLen:  uint16(IPv4HeaderLen + payloadLen),
		ID:        id,
		TTL:       ttl,
		Protocol:  ProtocolVRRP,
		Src:       src,
		Dst:       dst,
	}
}

// AppendBinary appends a 20-byte header (no options) with its header
// checksum computed (RFC 791 §3.1). It does not allocate when b has room.
func (h *IPv4Header) AppendBinary(b []byte) ([]byte, error) {
	if !h.Src.Is4() || !h.Dst.Is4() {
		return b, fmt.Errorf("%w: %v -> %v is not IPv4", ErrIPHeader, h.Src, h.Dst)
	}
	if h.TotalLen < IPv4HeaderLen {
		return b, fmt.Errorf("%w: total length %d", ErrIPHeader, h.TotalLen)
	}
	start := len(b)
	s, d := h.Src.As4(), h.Dst.As4()
	b = append(b, ipv4VersionIHL5, h.TOS)
	b = binary.BigEndian.AppendUint16(b, h.TotalLen)
	b = binary.BigEndian.AppendUint16(b, h.ID)
	b = binary.BigEndian.AppendUint16(b, h.FragOff)
	b = append(b, h.TTL, h.Protocol, 0, 0)
	b = append(b, s[:]...)
	b = append(b, d[:]...)
	binary.BigEndian.PutUint16(b[start+10:], Fold16(Sum16(b[start:], 0)))
	return b, nil
}

// MarshalBinary returns AppendBinary(nil).
func (h *IPv4Header) MarshalBinary() ([]byte, error) {
	return h.AppendBinary(make([]byte, 0, IPv4HeaderLen))
}

// Parse reads an IPv4 header from the front of b, options skipped; the
// payload starts at b[h.HeaderLen:]. It does not check the header checksum
// (the kernel has) nor TotalLen against len(b) (keepalived's receive checks
// do that, in their order). It does not allocate.
func (h *IPv4Header) Parse(b []byte) error {
	if len(b) < IPv4HeaderLen {
		return io.ErrUnexpectedEOF
	}
	if b[0]>>4 != 4 {
		return errIPVersion
	}
	ihl := int(b[0]&0x0f) * 4
	if ihl < IPv4HeaderLen {
		return errIPIHL
	}
	if len(b) < ihl {
		return io.ErrUnexpectedEOF
	}
	*h = IPv4Header{
		HeaderLen: ihl,
		TOS:       b[1],
		TotalLen:  binary.BigEndian.Uint16(b[2:4]),
		ID:        binary.BigEndian.Uint16(b[4:6]),
		FragOff:   binary.BigEndian.Uint16(b[6:8]),
		TTL:       b[8],
		Protocol:  b[9],
		Checksum:  binary.BigEndian.Uint16(b[10:12]),
		Src:       netip.AddrFrom4([4]byte(b[12:16])),
		Dst:       netip.AddrFrom4([4]byte(b[16:20])),
	}
	return nil
}

// IPv6Header is what a VRRP receiver knows of an IPv6 packet. The kernel
// strips the header on raw IPv6 sockets, so a receiver fills it from the
// sender address and the IPV6_PKTINFO, IPV6_HOPLIMIT and IPV6_TCLASS control
// messages; Parse fills it from a captured fixed header (RFC 8200 §3).
type IPv6Header struct {
	TrafficClass uint8
	HopLimit     uint8
	NextHeader   uint8
	PayloadLen   uint16
	Src, Dst     netip.Addr
}

// Parse reads a fixed 40-byte IPv6 header from the front of b. Extension
// headers are not walked. It does not allocate.
func (h *IPv6Header) Parse(b []byte) error {
	if len(b) < IPv6HeaderLen {
		return io.ErrUnexpectedEOF
	}
	if b[0]>>4 != 6 {
		return errIPVersion
	}
	*h = IPv6Header{
		TrafficClass: b[0]<<4 | b[1]>>4,
		PayloadLen:   binary.BigEndian.Uint16(b[4:6]),
		NextHeader:   b[6],
		HopLimit:     b[7],
		Src:          netip.AddrFrom16([16]byte(b[8:24])),
		Dst:          netip.AddrFrom16([16]byte(b[24:40])),
	}
	return nil
}
