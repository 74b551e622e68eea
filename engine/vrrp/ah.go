package vrrp

import (
	"crypto/md5"
	"crypto/subtle"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// keepalived's auth_type AH: a VRRPv2 advert over IPv4 behind an RFC 2402
// authentication header (IP protocol 51), authenticated with HMAC-MD5-96
// keyed by the 8-byte, NUL-padded auth_pass (keepalived vrrp.c
// vrrp_update_pkt and vrrp_in_chk_ipsecah; verified byte for byte against
// keepalived 2.2.7's adverts in vrrptest/testdata/v2-ipv4-ah.pcap).
//
// The ICV covers the IPv4 header with TOS, fragment offset and header
// checksum zeroed (and the TTL too when the instance has unicast peers: a
// routed unicast advert loses TTL on the way), the AH header with its ICV
// zeroed, and the VRRP message, whose own authentication field is zero.
// Unlike RFC 2402 §3.3.3.1.1.1, the IP ID is not zeroed: keepalived hashes it
// as sent.

// ProtocolAH is IPsec AH's IP protocol number (RFC 2402 §2).
const ProtocolAH = 51

// Sizes of keepalived's AH header on the wire.
const (
	AHLen  = 24 // next header, payload length, reserved, SPI, sequence, ICV
	ICVLen = 12 // HMAC-MD5 truncated to 96 bits (RFC 2403 §2)
	// ahPayloadLen is the AH length field: the header in 32-bit words
	// minus 2 (RFC 2402 §2.2).
	ahPayloadLen = AHLen/4 - 2
)

// maxAHInput bounds what an ICV is computed over: the largest IPv4 header
// (60 bytes), AH, and a v2 message with 255 addresses. Larger input cannot
// be a keepalived advert and never verifies.
const maxAHInput = 60 + AHLen + HeaderLen + 4*MaxAddresses + AuthDataLen

// ErrAH: the bytes are not an AH header keepalived sends.
var ErrAH = errors.New("vrrp: bad AH header")

var errAHLen = fmt.Errorf("%w: payload length is not 4 (a 96-bit ICV)", ErrAH)

// AH is keepalived's IPsec authentication header (RFC 2402 §2).
type AH struct {
	// NextHeader is the protocol that follows: ProtocolVRRP.
	NextHeader uint8
	Reserved   uint16
	// SPI is the sender's IPv4 source address (keepalived's choice: a
	// multicast group has no receiver to pick one).
	SPI uint32
	// Seq is the anti-replay sequence number (RFC 2402 §2.5).
	Seq uint32
	ICV [ICVLen]byte
}

// Parse reads an AH header from the front of b; the VRRP message starts at
// b[AHLen:]. It does not allocate.
func (h *AH) Parse(b []byte) error {
	if len(b) < AHLen {
		return io.ErrUnexpectedEOF
	}
	if b[1] != ahPayloadLen {
		return errAHLen
	}
	h.NextHeader = b[0]
	h.Reserved = binary.BigEndian.Uint16(b[2:4])
	h.SPI = binary.BigEndian.Uint32(b[4:8])
	h.Seq = binary.BigEndian.Uint32(b[8:12])
	copy(h.ICV[:], b[12:AHLen])
	return nil
}

// AppendBinary appends the 24-byte header. It does not allocate when b has
// room.
func (h *AH) AppendBinary(b []byte) ([]byte, error) {
	b = append(b, h.NextHeader, ahPayloadLen)
	b = binary.BigEndian.AppendUint16(b, h.Reserved)
	b = binary.BigEndian.AppendUint32(b, h.SPI)
	b = binary.BigEndian.AppendUint32(b, h.Seq)
	return append(b, h.ICV[:]...), nil
}

// NewAH returns the header keepalived puts in front of an advert from src
// with sequence number seq, ICV not yet computed (SealAH).
func NewAH(src [4]byte, seq uint32) AH {
	return AH{NextHeader: ProtocolVRRP, SPI: binary.BigEndian.Uint32(src[:]), Seq: seq}
}

// AHICV computes keepalived's ICV for an advert: hdr is the IPv4 header as
// sent or received (options included), ah the 24-byte AH header (its ICV
// field is ignored), msg the VRRP message; key is the NUL-padded auth_pass
// (PassAuthData). unicast zeroes the TTL, as keepalived does for an
// instance with unicast peers. It does not allocate; ok is false when the
// input is too long or malformed to be an advert.
func AHICV(key [AuthDataLen]byte, hdr, ah, msg []byte, unicast bool) (icv [ICVLen]byte, ok bool) {
	n := len(hdr) + AHLen + len(msg)
	if len(hdr) < IPv4HeaderLen || len(ah) < AHLen || n > maxAHInput {
		return icv, false
	}
	// HMAC (RFC 2104) with a key shorter than MD5's block: the key, NUL
	// padded to 64 bytes, XOR ipad, then the text.
	var in [md5.BlockSize + maxAHInput]byte
	var out [md5.BlockSize + md5.Size]byte
	for i := range md5.BlockSize {
		in[i], out[i] = 0x36, 0x5c
	}
	for i, k := range key {
		in[i] ^= k
		out[i] ^= k
	}
	p := in[md5.BlockSize:]
	copy(p, hdr)
	// The IP header's mutable fields (RFC 2402 §3.3.3.1.1.1, as keepalived
	// picks them).
	p[1] = 0            // TOS
	p[6], p[7] = 0, 0   // flags, fragment offset
	p[10], p[11] = 0, 0 // header checksum
	if unicast {
		p[8] = 0 // TTL
	}
	q := p[len(hdr):]
	copy(q, ah[:AHLen-ICVLen]) // ICV stays zero
	copy(q[AHLen:], msg)
	inner := md5.Sum(in[:md5.BlockSize+n])
	copy(out[md5.BlockSize:], inner[:])
	sum := md5.Sum(out[:])
	copy(icv[:], sum[:ICVLen])
	return icv, true
}

// SealAH writes the ICV into an IPv4 packet built as header, AH header,
// VRRP message (ihl bytes of header). It does not allocate.
func SealAH(key [AuthDataLen]byte, pkt []byte, ihl int, unicast bool) error {
	if ihl < IPv4HeaderLen || len(pkt) < ihl+AHLen {
		return fmt.Errorf("%w: packet of %d bytes, header %d", ErrAH, len(pkt), ihl)
	}
	icv, ok := AHICV(key, pkt[:ihl], pkt[ihl:ihl+AHLen], pkt[ihl+AHLen:], unicast)
	if !ok {
		return fmt.Errorf("%w: packet of %d bytes is too long", ErrAH, len(pkt))
	}
	copy(pkt[ihl+AHLen-ICVLen:ihl+AHLen], icv[:])
	return nil
}

// VerifyAH reports whether the ICV in ah is the one key gives, in constant
// time. It does not allocate.
func VerifyAH(key [AuthDataLen]byte, hdr, ah, msg []byte, unicast bool) bool {
	icv, ok := AHICV(key, hdr, ah, msg, unicast)
	return ok && subtle.ConstantTimeCompare(icv[:], ah[AHLen-ICVLen:AHLen]) == 1
}
