package vrrp

import (
	"encoding"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"time"
)

// Version is the VRRP version in the high nibble of the first byte.
type Version uint8

// The versions this package speaks.
const (
	Version2 Version = 2 // RFC 3768
	Version3 Version = 3 // RFC 9568
)

// Type is the VRRP packet type in the low nibble of the first byte.
type Type uint8

// TypeAdvertisement is the only type RFC 3768 §5.3.2 and RFC 9568 §5.2.2 define.
const TypeAdvertisement Type = 1

func (t Type) String() string {
	if t == TypeAdvertisement {
		return "advertisement"
	}
	return fmt.Sprintf("type(%d)", uint8(t))
}

// AuthType is the VRRPv2 Auth Type field (RFC 3768 §5.3.6; keepalived keeps
// PASS and AH, which RFC 3768 deprecated).
type AuthType uint8

// The v2 authentication types keepalived accepts (reference §2.3 row 6).
const (
	AuthNone AuthType = 0
	AuthPass AuthType = 1
	AuthAH   AuthType = 2
)

func (a AuthType) String() string {
	switch a {
	case AuthNone:
		return "none"
	case AuthPass:
		return "pass"
	case AuthAH:
		return "ah"
	}
	return fmt.Sprintf("auth(%d)", uint8(a))
}

// Sizes on the wire.
const (
	HeaderLen     = 8  // fixed header, both versions
	AuthDataLen   = 8  // v2 over IPv4 only
	HMACLen       = 28 // keepalived auth_hmac trailer (reference §2.10)
	MaxAddresses  = 255
	maxV2Interval = 0xff
	maxV3Interval = 0x0fff
)

// Errors. Decoding and encoding wrap these with %w; compare with errors.Is.
// Input too short to hold what its header announces is io.ErrUnexpectedEOF.
var (
	// ErrVersion: the version nibble is neither 2 nor 3.
	ErrVersion = errors.New("vrrp: unsupported version")
	// ErrLength: the message is longer than its address count allows and
	// the excess is not a 28-byte auth_hmac trailer.
	ErrLength = errors.New("vrrp: length does not match address count")
	// ErrFamily: an address is not of the advert's family, carries a zone,
	// or the family is unknown.
	ErrFamily = errors.New("vrrp: address family mismatch")
	// ErrRange: a field does not fit its wire width.
	ErrRange = errors.New("vrrp: field out of range")
)

// Pre-wrapped decode errors, so that a flood of bad packets does not allocate.
var (
	errTrailing   = fmt.Errorf("%w: trailing bytes", ErrLength)
	errBadVersion = fmt.Errorf("%w: version nibble not 2 or 3", ErrVersion)
	errNoFamily   = fmt.Errorf("%w: length fits neither IPv4 nor IPv6 addresses", ErrLength)
	errDecodeFam  = fmt.Errorf("%w: decode family must be IPv4 or IPv6", ErrFamily)
)

// HMACTrailer is keepalived 2.4's auth_hmac extension, 28 bytes appended after
// the VRRP message (reference §2.10, draft-cassen-vrrp-auth-hmac). This
// package keeps it so that the message re-encodes identically; it does not
// verify the HMAC.
type HMACTrailer struct {
	ExtType  uint8 // 1 = HMAC-SHA256/128
	KeyID    uint8
	Reserved uint16
	Sec      uint32
	Subsec   uint16
	Counter  uint16
	MAC      [16]byte
}

// Advertisement is a VRRP advertisement, v2 or v3, over IPv4 or IPv6.
//
// Decoding into a reused Advertisement does not allocate while Addresses has
// capacity for the addresses received.
type Advertisement struct {
	Version  Version
	Type     Type
	VRID     uint8
	Priority uint8

	// AuthType and AuthData are VRRPv2 only (RFC 3768 §5.3.6, §5.3.10). Over
	// IPv6 keepalived's v2 has no authentication data field.
	AuthType AuthType
	AuthData [AuthDataLen]byte

	// AdvertInt is the interval in wire units: whole seconds in v2 (8 bits),
	// centiseconds in v3 (12 bits, RFC 9568 §5.2.7). Interval converts it.
	AdvertInt uint16
	// Reserved is v3's 4 bits before Max Adver Int, kept as read so that
	// re-encoding is byte-identical. Senders leave it 0.
	Reserved uint8

	// Checksum is the field as read; AppendBinary writes it back unchanged.
	// Use AppendWithChecksum or PutChecksum to compute one.
	Checksum uint16

	// Family says whether Addresses are 4 or 16 bytes on the wire. Decoding
	// sets it. When encoding, zero means: the family of the first address,
	// or IPv4 with no addresses.
	Family Family
	// Addresses are the virtual addresses, in packet order. The count byte
	// on the wire is len(Addresses).
	Addresses []netip.Addr

	// HasHMAC says an auth_hmac trailer was present (or is to be sent).
	HasHMAC bool
	HMAC    HMACTrailer
}

var (
	_ encoding.BinaryMarshaler   = (*Advertisement)(nil)
	_ encoding.BinaryAppender    = (*Advertisement)(nil)
	_ encoding.BinaryUnmarshaler = (*Advertisement)(nil)
)

// Interval is the advertisement interval the packet carries.
func (a *Advertisement) Interval() time.Duration {
	if a.Version == Version2 {
		return time.Duration(a.AdvertInt) * time.Second
	}
	return time.Duration(a.AdvertInt) * 10 * time.Millisecond
}

// SetInterval sets AdvertInt from d for a.Version, rounding to the nearest
// second (v2) or centisecond (v3) as keepalived does when it reads
// advert_int (reference §2.2). Set Version first.
func (a *Advertisement) SetInterval(d time.Duration) error {
	unit, limit := 10*time.Millisecond, time.Duration(maxV3Interval)
	if a.Version == Version2 {
		unit, limit = time.Second, maxV2Interval
	}
	n := (d + unit/2) / unit
	if d < 0 || n > limit {
		return fmt.Errorf("%w: interval %v for version %d", ErrRange, d, a.Version)
	}
	a.AdvertInt = uint16(n)
	return nil
}

// PassAuthData returns a v2 PASS password as it goes on the wire: truncated
// to 8 bytes or NUL padded (reference §2.2, keepalived's auth_pass).
func PassAuthData(password string) [AuthDataLen]byte {
	var d [AuthDataLen]byte
	copy(d[:], password)
	return d
}

// family resolves the family used to encode a.
func (a *Advertisement) family() Family {
	if a.Family != 0 {
		return a.Family
	}
	if len(a.Addresses) > 0 && a.Addresses[0].Is6() {
		return IPv6
	}
	return IPv4
}

// WireLen is the length of a VRRP message without any trailer, for version
// v, family f and n addresses: 8 + n×4 (+ 8 bytes of authentication data
// for v2) over IPv4, 8 + n×16 over IPv6. A version other than 2 is laid
// out as v3, as keepalived computes the length it expects (reference §2.3
// row 2).
func WireLen(v Version, f Family, n int) int { return pduLen(v, f, n) }

func pduLen(v Version, f Family, n int) int {
	if f == IPv6 {
		return HeaderLen + 16*n
	}
	l := HeaderLen + 4*n
	if v == Version2 {
		l += AuthDataLen
	}
	return l
}

// Len is the encoded length of a, trailer included.
func (a *Advertisement) Len() int {
	l := pduLen(a.Version, a.family(), len(a.Addresses))
	if a.HasHMAC {
		l += HMACLen
	}
	return l
}

// MessageLen is the encoded length of the VRRP message without the auth_hmac
// trailer: what checksums cover (reference §2.10).
func (a *Advertisement) MessageLen() int {
	return pduLen(a.Version, a.family(), len(a.Addresses))
}

// MarshalBinary encodes a, writing Checksum as it is.
func (a *Advertisement) MarshalBinary() ([]byte, error) {
	return a.AppendBinary(make([]byte, 0, a.Len()))
}

// AppendBinary appends the encoding of a to b, writing Checksum as it is. It
// does not allocate when b has room for a.Len() more bytes.
func (a *Advertisement) AppendBinary(b []byte) ([]byte, error) {
	if a.Version != Version2 && a.Version != Version3 {
		return b, fmt.Errorf("%w: %d", ErrVersion, a.Version)
	}
	if a.Type > 0x0f {
		return b, fmt.Errorf("%w: type %d", ErrRange, a.Type)
	}
	if len(a.Addresses) > MaxAddresses {
		return b, fmt.Errorf("%w: %d addresses", ErrRange, len(a.Addresses))
	}
	fam := a.family()
	if fam != IPv4 && fam != IPv6 {
		return b, fmt.Errorf("%w: family %d", ErrFamily, fam)
	}
	var b4, b5 byte
	if a.Version == Version2 {
		if a.AdvertInt > maxV2Interval {
			return b, fmt.Errorf("%w: v2 interval %d s", ErrRange, a.AdvertInt)
		}
		b4, b5 = byte(a.AuthType), byte(a.AdvertInt)
	} else {
		if a.AdvertInt > maxV3Interval || a.Reserved > 0x0f {
			return b, fmt.Errorf("%w: v3 interval %d cs, reserved %#x", ErrRange, a.AdvertInt, a.Reserved)
		}
		w := uint16(a.Reserved)<<12 | a.AdvertInt
		b4, b5 = byte(w>>8), byte(w)
	}
	for i, ip := range a.Addresses {
		ok := ip.Zone() == ""
		if fam == IPv4 {
			ok = ok && ip.Is4()
		} else {
			ok = ok && ip.Is6()
		}
		if !ok {
			return b, fmt.Errorf("%w: address %d (%v) in an %v advert", ErrFamily, i, ip, fam)
		}
	}

	b = append(b,
		byte(a.Version)<<4|byte(a.Type), a.VRID, a.Priority, byte(len(a.Addresses)),
		b4, b5, byte(a.Checksum>>8), byte(a.Checksum))
	for _, ip := range a.Addresses {
		if fam == IPv4 {
			v := ip.As4()
			b = append(b, v[:]...)
		} else {
			v := ip.As16()
			b = append(b, v[:]...)
		}
	}
	if a.Version == Version2 && fam == IPv4 {
		b = append(b, a.AuthData[:]...)
	}
	if a.HasHMAC {
		h := &a.HMAC
		b = append(b, h.ExtType, h.KeyID)
		b = binary.BigEndian.AppendUint16(b, h.Reserved)
		b = binary.BigEndian.AppendUint32(b, h.Sec)
		b = binary.BigEndian.AppendUint16(b, h.Subsec)
		b = binary.BigEndian.AppendUint16(b, h.Counter)
		b = append(b, h.MAC[:]...)
	}
	return b, nil
}

// UnmarshalBinary decodes an advert, inferring the address family from the
// length and count (Decode takes it explicitly, as the receive path knows
// it). IPv4 wins where both fit: a v3 advert with no addresses, or a v2
// advert of 48 bytes (3 IPv4 addresses + auth + trailer, or 3 IPv6).
func (a *Advertisement) UnmarshalBinary(b []byte) error {
	if len(b) < HeaderLen {
		return io.ErrUnexpectedEOF
	}
	v := Version(b[0] >> 4)
	if v != Version2 && v != Version3 {
		return errBadVersion
	}
	n, rest := int(b[3]), len(b)
	switch {
	case rest == pduLen(v, IPv4, n), rest == pduLen(v, IPv4, n)+HMACLen:
		return a.Decode(b, IPv4)
	case rest == pduLen(v, IPv6, n), rest == pduLen(v, IPv6, n)+HMACLen:
		return a.Decode(b, IPv6)
	case rest < pduLen(v, IPv4, n):
		// Short for either family: report it as IPv4 would.
		return io.ErrUnexpectedEOF
	}
	return errNoFamily
}

// Decode decodes an advert whose addresses are of family f. The message
// must be exactly as long as its count byte says, or 28 bytes longer (an
// auth_hmac trailer, reference §2.10); shorter is io.ErrUnexpectedEOF.
// Type and AuthType are not checked here: the receive checks report them in
// keepalived's order.
func (a *Advertisement) Decode(b []byte, f Family) error {
	if f != IPv4 && f != IPv6 {
		return errDecodeFam
	}
	if len(b) < HeaderLen {
		return io.ErrUnexpectedEOF
	}
	v := Version(b[0] >> 4)
	if v != Version2 && v != Version3 {
		return errBadVersion
	}
	n := int(b[3])
	l := pduLen(v, f, n)
	switch {
	case len(b) < l:
		return io.ErrUnexpectedEOF
	case len(b) != l && len(b) != l+HMACLen:
		return errTrailing
	}

	a.Version = v
	a.Type = Type(b[0] & 0x0f)
	a.VRID = b[1]
	a.Priority = b[2]
	a.Checksum = binary.BigEndian.Uint16(b[6:8])
	a.Family = f
	a.AuthData = [AuthDataLen]byte{}
	if v == Version2 {
		a.AuthType = AuthType(b[4])
		a.AdvertInt = uint16(b[5])
		a.Reserved = 0
	} else {
		w := binary.BigEndian.Uint16(b[4:6])
		a.AuthType = AuthNone
		a.AdvertInt = w & maxV3Interval
		a.Reserved = uint8(w >> 12)
	}

	a.Addresses = a.Addresses[:0]
	p := b[HeaderLen:]
	for range n {
		if f == IPv4 {
			a.Addresses = append(a.Addresses, netip.AddrFrom4([4]byte(p[:4])))
			p = p[4:]
		} else {
			a.Addresses = append(a.Addresses, netip.AddrFrom16([16]byte(p[:16])))
			p = p[16:]
		}
	}
	if v == Version2 && f == IPv4 {
		copy(a.AuthData[:], p[:AuthDataLen])
		p = p[AuthDataLen:]
	}

	a.HasHMAC = len(p) == HMACLen
	a.HMAC = HMACTrailer{}
	if a.HasHMAC {
		h := &a.HMAC
		h.ExtType, h.KeyID = p[0], p[1]
		h.Reserved = binary.BigEndian.Uint16(p[2:4])
		h.Sec = binary.BigEndian.Uint32(p[4:8])
		h.Subsec = binary.BigEndian.Uint16(p[8:10])
		h.Counter = binary.BigEndian.Uint16(p[10:12])
		copy(h.MAC[:], p[12:28])
	}
	return nil
}

// PeekHeader returns the version and VRID of a message without decoding it,
// so a receiver can pick the instance (one socket per interface and family
// demultiplexes by VRID, DESIGN.md §5).
func PeekHeader(b []byte) (Version, uint8, error) {
	if len(b) < HeaderLen {
		return 0, 0, io.ErrUnexpectedEOF
	}
	return Version(b[0] >> 4), b[1], nil
}
