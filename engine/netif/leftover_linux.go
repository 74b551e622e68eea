package netif

import (
	"errors"
	"fmt"
	"net"
	"net/netip"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// Leftovers is what RemoveLeftovers removed.
type Leftovers struct {
	VIPs  []Address // each with the interface it was found on
	VMACs []string  // VMAC interfaces deleted
}

// RemoveLeftovers removes what an earlier run killed without its shutdown
// (SIGKILL, a crash, a power cut of the process) may have left: on start
// such VIPs would make two hosts answer for them, and a stale VMAC would
// keep its VIPs and its old settings (keepalived likewise clears its VIPs
// at startup; reference §2.8 for VMACs).
//
// First each VMAC of vmacs that exists as a macvlan on its parent is
// deleted, with every address on it: AddVMAC makes it afresh. Then each
// address of vips is removed wherever it is, whatever its prefix length,
// on any interface but loopback ones (where a VIP is deliberate: LVS-DR
// real servers hold it on lo): an earlier run may have held it on an
// interface or VMAC the config no longer names. Other addresses and
// interfaces are never touched. Call it once at start, before any instance
// runs.
func (s *System) RemoveLeftovers(vips []Address, vmacs []VMAC) (Leftovers, error) {
	var out Leftovers
	var errs []error
	wanted := make(map[netip.Addr]bool, len(vips))
	for _, a := range vips {
		if a.Prefix.IsValid() {
			wanted[a.Prefix.Addr().Unmap()] = true
		}
	}
	for _, v := range vmacs {
		name := v.LinkName()
		l, err := s.h.LinkByName(name)
		if isLinkNotFound(err) {
			continue
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("netif: interface %q: %w", name, err))
			continue
		}
		parent, err := s.h.LinkByName(v.Parent)
		if _, ok := l.(*netlink.Macvlan); !ok || err != nil || l.Attrs().ParentIndex != parent.Attrs().Index {
			continue // not ours: AddVMAC will say so
		}
		held, _ := redump(func() ([]netlink.Addr, error) { return s.h.AddrList(l, netlink.FAMILY_ALL) })
		if err := s.h.LinkDel(l); err != nil && !isLinkNotFound(err) {
			errs = append(errs, fmt.Errorf("netif: remove leftover VMAC %q: %w", name, err))
			continue
		}
		out.VMACs = append(out.VMACs, name)
		for _, na := range held {
			if ip, ok := netip.AddrFromSlice(na.IP); ok && wanted[ip.Unmap()] {
				out.VIPs = append(out.VIPs, found(na, name))
			}
		}
	}
	if len(wanted) == 0 {
		return out, errors.Join(errs...)
	}
	addrs, err := redump(func() ([]netlink.Addr, error) { return s.h.AddrList(nil, netlink.FAMILY_ALL) })
	if err != nil {
		return out, errors.Join(append(errs, fmt.Errorf("netif: address dump: %w", err))...)
	}
	links := map[int]netlink.Link{}
	for _, na := range addrs {
		ip, ok := netip.AddrFromSlice(na.IP)
		if !ok || !wanted[ip.Unmap()] {
			continue
		}
		l, ok := links[na.LinkIndex]
		if !ok {
			if l, err = s.h.LinkByIndex(na.LinkIndex); err != nil {
				continue // gone meanwhile
			}
			links[na.LinkIndex] = l
		}
		if l.Attrs().Flags&net.FlagLoopback != 0 {
			continue
		}
		// Delete what is there (its own prefix length), not what the config
		// says: a VIP whose mask changed in the config is stale too.
		if err := s.h.AddrDel(l, &na); err != nil && !errors.Is(err, unix.EADDRNOTAVAIL) {
			errs = append(errs, fmt.Errorf("netif: remove leftover %s on %q: %w", ip, l.Attrs().Name, err))
			continue
		}
		out.VIPs = append(out.VIPs, found(na, l.Attrs().Name))
	}
	return out, errors.Join(errs...)
}

func found(na netlink.Addr, dev string) Address {
	ip, _ := netip.AddrFromSlice(na.IP)
	bits, _ := na.Mask.Size()
	return Address{Prefix: netip.PrefixFrom(ip.Unmap(), bits), Dev: dev}
}
