package ipvs

import (
	"fmt"
	"net/netip"

	"github.com/keepwatch/keepwatch/engine/vrrp"
)

// GroupEntry is one line of a virtual_server_group (reference §1.6): an
// address or an address range with a port, a prefix with a port, or a fwmark.
type GroupEntry struct {
	First, Last netip.Addr   // Last is First for a single address
	Prefix      netip.Prefix // instead of First/Last: every address in it
	Port        uint16
	FWMark      uint32
	Family      vrrp.Family // of a fwmark entry; IPv4 if zero
}

// MaxGroupServices bounds what one virtual_server_group may expand to, so a
// typo such as 10.0.0.1-10.255.0.1 fails instead of filling the kernel.
const MaxGroupServices = 65536

// Expand returns one service per kernel service the template stands for:
// itself when groups is empty, else a copy for each address of each group
// entry (with the entry's port, or the template's when the entry has none),
// and for each fwmark entry. Destinations are shared by all copies.
func Expand(tmpl Service, groups []GroupEntry) ([]Service, error) {
	if len(groups) == 0 {
		return []Service{tmpl}, nil
	}
	var out []Service
	add := func(k Key) error {
		if len(out) >= MaxGroupServices {
			return fmt.Errorf("ipvs: virtual_server_group expands to more than %d services", MaxGroupServices)
		}
		s := tmpl
		s.Key = k
		out = append(out, s)
		return nil
	}
	for _, g := range groups {
		if g.FWMark != 0 {
			fam := g.Family
			if fam == 0 {
				fam = vrrp.IPv4
			}
			if err := add(MarkKey(g.FWMark, fam)); err != nil {
				return nil, err
			}
			continue
		}
		first, last := g.First, g.Last
		if g.Prefix.IsValid() {
			p := g.Prefix.Masked()
			first, last = p.Addr(), lastOf(p)
		}
		if !last.IsValid() {
			last = first
		}
		if !first.IsValid() || first.Is4() != last.Is4() || last.Less(first) {
			return nil, fmt.Errorf("ipvs: virtual_server_group entry %v-%v is not a valid range", first, last)
		}
		port := g.Port
		if port == 0 {
			port = tmpl.Port
		}
		for a := first; ; a = a.Next() {
			if err := add(AddrKey(a, port, tmpl.Protocol)); err != nil {
				return nil, err
			}
			if a == last {
				break
			}
		}
	}
	return out, nil
}

func lastOf(p netip.Prefix) netip.Addr {
	b := p.Addr().AsSlice()
	for i := range b {
		bits := p.Bits() - i*8
		switch {
		case bits >= 8:
		case bits <= 0:
			b[i] = 0xff
		default:
			b[i] |= 0xff >> bits
		}
	}
	a, _ := netip.AddrFromSlice(b)
	return a
}
