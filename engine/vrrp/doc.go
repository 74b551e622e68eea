// Package vrrp implements VRRP advertisements, as described in RFC 9568 (VRRPv3) and RFC 3768 (VRRPv2).
//
// It is a codec and nothing else: no sockets, no clocks. The receive checks
// that keepalived runs on a decoded advert live in the receive sub-package
// (they report drop reasons from engine/event, which imports this package).
//
// # Wire layout
//
// VRRPv2 (RFC 3768 §5.1), IPv4, IP protocol 112:
//
//	 0                   1                   2                   3
//	 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|Version| Type  | Virtual Rtr ID|   Priority    | Count IP Addrs|
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|   Auth Type   |   Adver Int   |          Checksum             |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                         IP Address (1)                        |
//	|                            ...                                |
//	|                         IP Address (n)                        |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                     Authentication Data (1)                   |
//	|                     Authentication Data (2)                   |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//
// Adver Int is whole seconds. The 8 bytes of authentication data are always
// present over IPv4, zero unless Auth Type is 1 (PASS: the password, NUL
// padded or truncated to 8 bytes; reference §2.2). keepalived can also send
// v2 over IPv6 (non-standard): 16-byte addresses and no authentication data.
// The checksum covers the VRRP message only.
//
// With auth_type AH (Auth Type 2, IPv4 only) the authentication data is zero
// and the message travels behind an RFC 2402 authentication header, IP
// protocol 51 (ah.go):
//
//	| next hdr(1)=112 | len(1)=4 | reserved(2) | SPI(4)=src | seq(4) | ICV(12) |
//
// The ICV is HMAC-MD5-96 keyed by the NUL-padded password over the IPv4
// header (TOS, fragment offset, checksum and, for unicast, TTL zeroed), the
// AH header with a zero ICV and the message (keepalived vrrp.c).
//
// VRRPv3 (RFC 9568 §5.1), IPv4 or IPv6:
//
//	 0                   1                   2                   3
//	 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|Version| Type  | Virtual Rtr ID|   Priority    |Count IPvX Addr|
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|(rsvd) |     Max Adver Int     |          Checksum             |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|            IPvX Address(es) (4 or 16 bytes each)              |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//
// Max Adver Int is 12 bits of centiseconds. The checksum (RFC 9568 §5.2.8)
// covers a pseudo-header {src, dst, 0, 112, length} and the message; keepalived
// uses the real destination, so a unicast peer's address in unicast mode, and
// its v3_checksum_as_v2 option drops the pseudo-header (reference §2.2).
//
// keepalived 2.4 may append a 28-byte auth_hmac trailer after either message
// (reference §2.10), recognised purely by length:
//
//	| ext type(1)=1 | key id(1) | reserved(2) | sec(4) | subsec(2) | ctr(2) | hmac(16) |
//
// The Count field is never trusted for bounds: a message whose length does not
// match it is rejected, never read past.
package vrrp
