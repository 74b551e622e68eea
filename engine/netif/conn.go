package netif

import (
	"errors"
	"net/netip"
)

// ProtocolVRRP is the IP protocol number of VRRP (RFC 9568 §5.1.1.4).
const ProtocolVRRP = 112

// ProtocolAH is IPsec AH's IP protocol number (RFC 2402 §2): keepalived's
// auth_type AH adverts are VRRP behind an AH header.
const ProtocolAH = 51

// ahLen is the length of keepalived's AH header (engine/vrrp.AHLen).
const ahLen = 24

// The VRRP multicast groups (RFC 9568 §5.1.1.2, §5.1.2.2); keepalived's
// vrrp_mcast_group4 / vrrp_mcast_group6 override them.
var (
	GroupIPv4 = netip.AddrFrom4([4]byte{224, 0, 0, 18})
	GroupIPv6 = netip.MustParseAddr("ff02::12")
)

// Packet is one received VRRP packet and what the IP layer said about it.
// Its slices point into the socket's buffer: they are valid only until the
// handler returns, so a handler that keeps bytes copies them.
type Packet struct {
	Ifindex int
	Src     netip.Addr
	Dst     netip.Addr
	// TTL is the IPv4 TTL or the IPv6 hop limit; RFC 9568 §7.1 drops adverts
	// where it is not 255.
	TTL uint8
	// TOS is the IPv4 type of service or the IPv6 traffic class.
	TOS uint8
	// IPHeader is the IPv4 header as received (nil for IPv6, whose header
	// the kernel does not pass to raw sockets).
	IPHeader []byte
	// AH is the IPsec AH header in front of the message on an AH socket
	// (Config.AH): 24 bytes, or fewer when the packet was truncated; nil on
	// a VRRP socket.
	AH []byte
	// VRRP is the VRRP message: header, addresses and any trailer.
	VRRP []byte
}

// VRID is the virtual router ID, byte 1 of the VRRP header; 0 if the
// message is too short to carry one.
func (p *Packet) VRID() uint8 {
	if len(p.VRRP) < 2 {
		return 0
	}
	return p.VRRP[1]
}

// Handler receives the packets for one VRID. It runs on the socket's read
// goroutine, so it must return quickly and never block (engine/vrrp/router
// steps routine adverts right there, in well under a microsecond, and
// queues the rest), and must not keep p or its slices.
type Handler interface {
	HandleVRRP(p *Packet)
}

// HandlerFunc adapts a function to Handler.
type HandlerFunc func(p *Packet)

// HandleVRRP calls f(p).
func (f HandlerFunc) HandleVRRP(p *Packet) { f(p) }

// Stats counts what a socket's read loop saw.
type Stats struct {
	Received uint64 // packets handed to a VRID's handler
	Unknown  uint64 // packets for a VRID nobody registered (drop reason vrid_unknown)
	Short    uint64 // packets too short to carry a VRID, or a malformed IP header
}

// Sender sends VRRP adverts on one interface. It is what a VRRP instance
// needs from the network to send, so the instance runner can be tested with
// the real socket or a recording fake.
type Sender interface {
	// WriteIPv4 sends a complete IPv4 packet (header built by the caller,
	// as keepalived does) to the destination in its header.
	WriteIPv4(pkt []byte) error
	// WriteIPv6 sends a VRRP message from src (invalid: the link's
	// link-local address) to dst; the kernel adds the IPv6 header and the
	// checksum. hopLimit 0 means 255 for multicast and the kernel's default
	// for unicast.
	WriteIPv6(msg []byte, src, dst netip.Addr, hopLimit int) error
}

// Registrar routes received adverts to per-VRID handlers.
type Registrar interface {
	// Handle registers h for vrid, replacing any earlier handler; nil removes it.
	Handle(vrid uint8, h Handler)
}

// Sentinel errors.
var (
	// ErrClosed is returned by Run and the Write methods once the socket is closed.
	ErrClosed = errors.New("netif: socket closed")
	// ErrFamily is returned when a write does not match the socket's family.
	ErrFamily = errors.New("netif: address family does not match the socket")
	// ErrNoLinkLocal is returned when an IPv6 socket's interface has no
	// usable link-local address (RFC 9568 §5.1.2.1 requires it as source).
	ErrNoLinkLocal = errors.New("netif: interface has no usable IPv6 link-local address")
)
