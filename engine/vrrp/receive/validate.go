package receive

import (
	"crypto/subtle"
	"encoding/binary"
	"net/netip"
	"time"

	"github.com/keepwatch/keepwatch/engine/event"
	"github.com/keepwatch/keepwatch/engine/vrrp"
)

// TTLUnknown in IP.TTL means the socket did not report the TTL / hop limit,
// so it is not checked (keepalived's rx_ttl_hop_limit of -1).
const TTLUnknown = -1

// IP is what the IP layer says about a received VRRP message.
type IP struct {
	Src, Dst netip.Addr
	// TTL is the IPv4 TTL or the IPv6 hop limit, or TTLUnknown.
	TTL int
	// HeaderLen and TotalLen are the IPv4 header length in bytes and its
	// tot_len field. Both are zero for IPv6.
	HeaderLen, TotalLen int
	// AH is the IPsec AH header that came between the IPv4 header and the
	// message (IP protocol 51, keepalived's auth_type AH), as received: nil
	// when the packet was plain VRRP (protocol 112), shorter than
	// vrrp.AHLen when truncated. Header is the IPv4 header as received,
	// which the AH ICV covers; only AH adverts need it.
	AH, Header []byte
}

// FromIPv4 returns the facts of a parsed IPv4 header.
func FromIPv4(h *vrrp.IPv4Header) IP {
	return IP{Src: h.Src, Dst: h.Dst, TTL: int(h.TTL), HeaderLen: h.HeaderLen, TotalLen: int(h.TotalLen)}
}

// FromIPv6 returns the facts of an IPv6 header (or its control messages).
func FromIPv6(h *vrrp.IPv6Header) IP {
	return IP{Src: h.Src, Dst: h.Dst, TTL: int(h.HopLimit)}
}

// Peer is a unicast_peer.
type Peer struct {
	Addr netip.Addr
	// MinTTL and MaxTTL are keepalived's per-peer min_ttl / max_ttl; both
	// zero means not checked.
	MinTTL, MaxTTL uint8
}

// UnicastChecksum is keepalived's old_unicast_checksum setting: which
// destination the v3 IPv4 pseudo-header of a unicast advert uses.
type UnicastChecksum uint8

// Unicast checksum compatibility modes (reference §2.2).
const (
	// UnicastChecksumAuto checks with the real destination, and if that
	// fails, with the multicast group as keepalived ≤ 1.3.6 sent it; a match
	// then sets Result.OldUnicastChecksum (keepalived's
	// CHKSUM_COMPATIBILITY_AUTO). The default.
	UnicastChecksumAuto UnicastChecksum = iota
	// UnicastChecksumNever checks with the real destination only
	// (old_unicast_checksum never).
	UnicastChecksumNever
	// UnicastChecksumOld checks with the multicast group only
	// (old_unicast_checksum, or once Auto has detected an old peer).
	UnicastChecksumOld
)

// Instance is what a VRRP instance expects of the adverts it receives.
type Instance struct {
	Family  vrrp.Family
	Version vrrp.Version
	// VRID, when not zero, must match: the caller normally demultiplexes by
	// VRID first (vrrp.PeekHeader), so this is a guard.
	VRID uint8

	// AuthType and AuthData (vrrp.PassAuthData) are v2 only. With
	// vrrp.AuthAH, AuthData is the HMAC key of the AH ICV.
	AuthType vrrp.AuthType
	AuthData [vrrp.AuthDataLen]byte
	// AHSeq is keepalived's per-instance AH sequence counter
	// (ipsecah_counter), one for sending and receiving: an AH advert must
	// carry a higher one (anti-replay, RFC 2402 §3.4.3), and the advert an
	// instance sends next carries one more. The caller keeps it: it stores
	// Result.AHSeq back after every receive and its own after every send,
	// so a backup that becomes master continues above its old master's
	// numbers, which the old master, now backup, then accepts (keepalived
	// vrrp_in_chk_ipsecah; the counter survives state changes and
	// reloads).
	AHSeq uint32

	// Interval is the configured advert_int.
	Interval time.Duration
	// VIPs are the configured virtual addresses (virtual_ipaddress).
	VIPs []netip.Addr

	Checksum           vrrp.ChecksumMode
	OldUnicastChecksum UnicastChecksum
	// Group is the multicast group, vrrp.GroupIPv4 or vrrp.GroupIPv6 when
	// not set.
	Group netip.Addr

	// Peers are the unicast_peer addresses; none means a multicast instance.
	Peers []Peer
	// CheckUnicastSrc drops unicast adverts whose source is not a peer
	// (check_unicast_src / vrrp_check_unicast_src).
	CheckUnicastSrc bool

	// RejectHMAC drops adverts that carry a 28-byte auth_hmac trailer, as
	// keepalived ≤ 2.3 does by its exact-length check. Without it the
	// trailer is tolerated and reported in Result.HMAC (reference §2.10).
	RejectHMAC bool
}

// Result is the outcome of Validate. Drop is empty when the advert is
// accepted; the flags describe an accepted advert and are worth a counter.
type Result struct {
	Drop event.Reason

	// AddressMismatch: the advert's address count or list differs from the
	// configured VIPs. Accepted, as keepalived ≥ 2.3.3 does (reference §0
	// item 4); on 2.2.x peers this is the classic split brain, so count it
	// as event.DropAddressList and alert on it.
	AddressMismatch bool
	// IntervalMismatch: a v3 advert whose interval differs from ours.
	// Accepted; a backup adopts the master's interval (RFC 9568 §6.4.2).
	IntervalMismatch bool
	// HMAC: the advert carried a keepalived 2.4 auth_hmac trailer, not
	// verified.
	HMAC bool
	// OldUnicastChecksum: the v3 checksum only matched with the multicast
	// group in the pseudo-header. The instance should send that way too
	// (and pass UnicastChecksumOld from now on), as keepalived does.
	OldUnicastChecksum bool
	// PriorityZero: the master resigned.
	PriorityZero bool
	// AuthType is the auth type the advert carried, set with
	// event.DropAuthType: one above vrrp.AuthAH is keepalived's
	// invalid_authtype, any other its authtype_mismatch (also when the AH
	// header is present without auth_type AH or missing with it).
	AuthType vrrp.AuthType
	// AHSeq is the AH sequence number of an advert whose ICV, SPI and
	// sequence number passed, 0 otherwise; keepalived advances its counter
	// to it even when a later check drops the advert. Store it in
	// Instance.AHSeq.
	AHSeq uint32
}

// Accepted reports whether the advert passed.
func (r Result) Accepted() bool { return r.Drop == "" }

// Validate runs keepalived's receive checks (reference §2.3, in its order)
// on the VRRP message b (what follows the IPv4 header, or the IPv6 payload)
// received with ip, for instance in. It decodes b into adv, which may be
// reused: with room in adv.Addresses, Validate does not allocate. adv is
// meaningful only when the result is accepted.
//
// Not checked here: the auth_hmac HMAC (row 5) and owner_ignore_adverts
// (row 16, a state-machine decision).
func Validate(b []byte, ip IP, in *Instance, adv *vrrp.Advertisement) Result {
	var seq uint32
	r := validate(b, ip, in, adv, &seq)
	r.AHSeq = seq
	return r
}

func validate(b []byte, ip IP, in *Instance, adv *vrrp.Advertisement, ahSeq *uint32) Result {
	var r Result
	// Row 1: an AH header iff auth_type AH (IPv4 only; keepalived counts
	// authtype_mismatch either way).
	if in.Family == vrrp.IPv4 && (ip.AH != nil) != (in.AuthType == vrrp.AuthAH) {
		return Result{Drop: event.DropAuthType}
	}
	ahLen := 0
	if ip.AH != nil {
		if len(ip.AH) < vrrp.AHLen {
			return Result{Drop: event.DropLength}
		}
		ahLen = vrrp.AHLen
	}
	if len(b) < vrrp.HeaderLen {
		return Result{Drop: event.DropLength}
	}
	if in.VRID != 0 && b[1] != in.VRID {
		return Result{Drop: event.DropVRIDUnknown}
	}
	multicast := len(in.Peers) == 0

	// Row 2: the exact length for the count byte. Ethernet pads frames to
	// 60 bytes; a capture (not a raw socket) can hand us that padding, so
	// trim to tot_len where the excess can only be padding.
	if in.Family == vrrp.IPv4 && ip.TotalLen >= ip.HeaderLen+ahLen &&
		ip.HeaderLen+ahLen+len(b) > ip.TotalLen && ip.HeaderLen+ahLen+len(b) <= ethMinPayload {
		b = b[:ip.TotalLen-ip.HeaderLen-ahLen]
		if len(b) < vrrp.HeaderLen {
			return Result{Drop: event.DropLength}
		}
	}
	msgLen := vrrp.WireLen(vrrp.Version(b[0]>>4), in.Family, int(b[3]))
	switch {
	case len(b) == msgLen:
	case len(b) == msgLen+vrrp.HMACLen && !in.RejectHMAC:
		r.HMAC = true
	default:
		return Result{Drop: event.DropLength}
	}

	// Row 3: TTL / hop limit 255, multicast only (RFC 9568 §7.1; keepalived
	// does not check it for unicast, reference §0 item 3).
	if multicast && ip.TTL != TTLUnknown && ip.TTL != vrrp.TTL {
		return Result{Drop: event.DropTTL}
	}

	// Row 4: version.
	if vrrp.Version(b[0]>>4) != in.Version {
		return Result{Drop: event.DropVersion}
	}
	if adv.Decode(b, in.Family) != nil {
		return Result{Drop: event.DropLength} // unreachable after row 2
	}

	if adv.Version == vrrp.Version2 {
		// Rows 6-9: authentication (RFC 3768 §7.1, keepalived's order).
		switch adv.AuthType {
		case vrrp.AuthNone, vrrp.AuthPass, vrrp.AuthAH:
		default:
			// keepalived counts this one as invalid_authtype, not as
			// authtype_mismatch: the type goes with the drop.
			return Result{Drop: event.DropAuthType, AuthType: adv.AuthType}
		}
		if adv.AuthType != in.AuthType {
			return Result{Drop: event.DropAuthType, AuthType: adv.AuthType}
		}
		switch in.AuthType {
		case vrrp.AuthPass:
			if subtle.ConstantTimeCompare(adv.AuthData[:], in.AuthData[:]) != 1 {
				return Result{Drop: event.DropAuth}
			}
		case vrrp.AuthAH:
			// Row 9 (keepalived vrrp_check_packet, vrrp_in_chk_ipsecah).
			if ahLen == 0 {
				// Only an IPv6 v2 instance gets here; AH is IPv4 only.
				return Result{Drop: event.DropAuthType, AuthType: adv.AuthType}
			}
			seq, drop := checkAH(b, ip, in)
			if drop != "" {
				return Result{Drop: drop}
			}
			*ahSeq = seq
		}
		// Row 10: v2 interval must match (RFC 3768 §7.1); keepalived drops
		// "to prevent concurrent VRID running" and counts nothing.
		if adv.Interval() != in.Interval {
			return Result{Drop: event.DropInterval}
		}
	}

	// Row 11: type.
	if adv.Type != vrrp.TypeAdvertisement {
		return Result{Drop: event.DropType}
	}

	// Row 12: IPv4 tot_len is what we received.
	if in.Family == vrrp.IPv4 && ip.TotalLen != ip.HeaderLen+ahLen+len(b) {
		return Result{Drop: event.DropLength}
	}

	// Row 13: v3 interval mismatch is only noted (RFC 9568 §6.4.2: a backup
	// adopts the master's Max Adver Interval).
	if adv.Version == vrrp.Version3 &&
		int64(adv.AdvertInt) != int64((in.Interval+5*time.Millisecond)/(10*time.Millisecond)) {
		r.IntervalMismatch = true
	}

	// Row 14: checksum, over the message without the trailer.
	if !checksumOK(b[:msgLen], ip, in, multicast, &r) {
		return Result{Drop: event.DropChecksum}
	}

	// Row 15: a multicast instance takes multicast, a unicast one unicast.
	if ip.Dst.IsMulticast() != multicast {
		return Result{Drop: event.DropDestination}
	}

	// Row 17: the address list, accepted either way (2.3.3+).
	r.AddressMismatch = !sameVIPs(adv.Addresses, in.VIPs)

	// Row 18: unicast source must be a peer, within its TTL range.
	if !multicast && in.CheckUnicastSrc {
		p := findPeer(in.Peers, ip.Src)
		if p == nil {
			return Result{Drop: event.DropUnicastSrc}
		}
		if (p.MinTTL != 0 || p.MaxTTL != 0) && ip.TTL != TTLUnknown &&
			(ip.TTL < int(p.MinTTL) || ip.TTL > int(p.MaxTTL)) {
			return Result{Drop: event.DropTTL}
		}
	}

	// Row 19.
	r.PriorityZero = adv.Priority == 0
	return r
}

// checkAH verifies an AH advert as keepalived does: an AH header for
// another protocol is ignored; then the ICV (keyed by auth_pass), the SPI
// (the sender's address) and the sequence number, which must exceed the
// instance's counter. Any of these failing is keepalived's auth_failure.
func checkAH(msg []byte, ip IP, in *Instance) (uint32, event.Reason) {
	var h vrrp.AH
	if h.Parse(ip.AH) != nil {
		return 0, event.DropLength
	}
	if h.NextHeader != vrrp.ProtocolVRRP {
		// keepalived drops it without counting (VRRP_PACKET_DROP); the
		// nearest of our reasons is the message's type.
		return 0, event.DropType
	}
	if !vrrp.VerifyAH(in.AuthData, ip.Header, ip.AH, msg, len(in.Peers) > 0) {
		return 0, event.DropAuth
	}
	src := ip.Src.As4()
	if !ip.Src.Is4() || h.SPI != binary.BigEndian.Uint32(src[:]) {
		return 0, event.DropAuth
	}
	if h.Seq <= in.AHSeq {
		return 0, event.DropAuth // a replay, or a peer that restarted its count
	}
	return h.Seq, ""
}

// ethMinPayload is the smallest Ethernet payload (60-byte frame without FCS,
// less the 14-byte header): shorter IP packets arrive padded.
const ethMinPayload = 46

func checksumOK(msg []byte, ip IP, in *Instance, multicast bool, r *Result) bool {
	if in.Family == vrrp.IPv6 {
		// keepalived leaves this to the kernel (IPV6_CHECKSUM); checking
		// again costs little and covers captures.
		return vrrp.VerifyChecksum(msg, ip.Src, ip.Dst, vrrp.ChecksumPseudoHeader)
	}
	if msg[0]>>4 == byte(vrrp.Version2) {
		return vrrp.VerifyChecksum(msg, ip.Src, ip.Dst, vrrp.ChecksumAsV2)
	}
	group := in.Group
	if !group.IsValid() {
		group = vrrp.GroupIPv4
	}
	if in.Checksum == vrrp.ChecksumAsV2 {
		// keepalived with v3_checksum_as_v2 does not reject any v3 IPv4
		// checksum (reference §2.2). We are stricter but still interoperate:
		// either form passes, with the destination or the group.
		return vrrp.VerifyChecksum(msg, ip.Src, ip.Dst, vrrp.ChecksumAsV2) ||
			vrrp.VerifyChecksum(msg, ip.Src, ip.Dst, vrrp.ChecksumPseudoHeader) ||
			(!multicast && vrrp.VerifyChecksum(msg, ip.Src, group, vrrp.ChecksumPseudoHeader))
	}
	dst := ip.Dst
	if !multicast && in.OldUnicastChecksum == UnicastChecksumOld {
		dst = group
	}
	if vrrp.VerifyChecksum(msg, ip.Src, dst, vrrp.ChecksumPseudoHeader) {
		return true
	}
	if !multicast && in.OldUnicastChecksum == UnicastChecksumAuto && ip.Dst != group &&
		vrrp.VerifyChecksum(msg, ip.Src, group, vrrp.ChecksumPseudoHeader) {
		r.OldUnicastChecksum = true
		return true
	}
	return false
}

// sameVIPs reports whether the advert lists exactly the configured VIPs,
// in any order (keepalived compares the count, then looks up each VIP).
func sameVIPs(got, want []netip.Addr) bool {
	if len(got) != len(want) {
		return false
	}
	for _, w := range want {
		w = w.WithZone("")
		found := false
		for _, g := range got {
			if g == w {
				found = true
				break
			}
		}
		if !found {
			return false
		}
	}
	return true
}

func findPeer(peers []Peer, src netip.Addr) *Peer {
	for i := range peers {
		if peers[i].Addr == src {
			return &peers[i]
		}
	}
	return nil
}
