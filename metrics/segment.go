package metrics

import (
	"crypto/sha256"
	"encoding/hex"
	"net/netip"
	"slices"
	"strings"

	"github.com/keepwatch/keepwatch/engine/vrrp"
)

// Segment names the network a virtual router lives on, the same on every
// peer, for keepwatch_vrrp_instance_info{segment}. A VRID is unique only
// within one L2 segment (RFC 9568 §7.3 and RFC 3768 §5.3.3 scope it to the
// LAN), and VRID 51 is keepalived's sample default, so (vrid, family)
// alone merges unrelated clusters in one Prometheus; the segment tells
// them apart without asking peers to name their interfaces alike.
//
//   - Unicast (peers non-empty): "unicast:" and the first 8 bytes of the
//     SHA-256 of the sorted, deduplicated set {self} ∪ peers, in hex. Each
//     peer lists the others and itself as unicast_src_ip (or the primary
//     address), so every member computes the same set.
//   - Multicast: the network prefix of the interface's primary address of
//     the instance's family ("192.0.2.0/24"). An IPv6 router's adverts come
//     from link-local addresses (RFC 9568 §5.1.2.1), whose fe80::/64 is the
//     same on every link; its first global address's prefix is used, else
//     the interface's IPv4 prefix (one link, one subnet).
//
// addrs are the interface's addresses in kernel order (the primary first),
// vips the instance's virtual addresses (a master holds them on the same
// interface; they never name the segment). It returns "" when nothing
// identifies the segment (no address yet).
func Segment(fam vrrp.Family, addrs []netip.Prefix, vips []netip.Addr, self netip.Addr, peers []netip.Addr) string {
	v6 := fam == vrrp.IPv6
	if len(peers) > 0 {
		if !self.IsValid() {
			self = primary(addrs, vips, v6).Addr()
		}
		set := make([]netip.Addr, 0, len(peers)+1)
		for _, a := range append([]netip.Addr{self}, peers...) {
			if a.IsValid() {
				set = append(set, a.Unmap())
			}
		}
		slices.SortFunc(set, netip.Addr.Compare)
		set = slices.Compact(set)
		strs := make([]string, len(set))
		for i, a := range set {
			strs[i] = a.String()
		}
		sum := sha256.Sum256([]byte(strings.Join(strs, ",")))
		return "unicast:" + hex.EncodeToString(sum[:8])
	}
	if p := primary(addrs, vips, v6); p.IsValid() {
		return p.Masked().String()
	}
	if p := primary(addrs, vips, false); v6 && p.IsValid() {
		return p.Masked().String()
	}
	return ""
}

// primary is the first address of the family that can name a segment: not
// a VIP, loopback, link-local or multicast address.
func primary(addrs []netip.Prefix, vips []netip.Addr, v6 bool) netip.Prefix {
	for _, p := range addrs {
		a := p.Addr().Unmap()
		if a.Is6() != v6 || slices.Contains(vips, a) || a.IsLoopback() || a.IsLinkLocalUnicast() || a.IsMulticast() {
			continue
		}
		return netip.PrefixFrom(a, p.Bits())
	}
	return netip.Prefix{}
}
