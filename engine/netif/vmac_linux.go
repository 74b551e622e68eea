package netif

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

var _ VMACs = (*System)(nil)

// AddVMAC creates v (macvlan, private mode, virtual router MAC), applies the
// sysctls keepalived sets on it (reference §2.1: arp_ignore=1 so it answers
// ARP only for its own addresses, accept_local=1 so adverts from the
// parent's addresses are accepted, rp_filter=0) and brings it up. An
// existing VMAC of that name on the same parent is kept.
func (s *System) AddVMAC(v VMAC) error {
	name := v.LinkName()
	if len(name) > 15 {
		return fmt.Errorf("netif: VMAC name %q longer than 15 characters", name)
	}
	parent, err := s.link(v.Parent)
	if err != nil {
		return err
	}
	if l, err := s.h.LinkByName(name); err == nil {
		mv, ok := l.(*netlink.Macvlan)
		if !ok || l.Attrs().ParentIndex != parent.Attrs().Index {
			return fmt.Errorf("netif: VMAC %q: an interface of that name exists and is not a macvlan on %q", name, v.Parent)
		}
		if !bytes.Equal(mv.HardwareAddr, v.MAC()) {
			return fmt.Errorf("netif: VMAC %q exists with MAC %s, want %s", name, mv.HardwareAddr, v.MAC())
		}
		return s.vmacUp(v, l)
	} else if !isLinkNotFound(err) {
		return fmt.Errorf("netif: interface %q: %w", name, err)
	}
	mv := &netlink.Macvlan{
		LinkAttrs: netlink.LinkAttrs{Name: name, ParentIndex: parent.Attrs().Index, HardwareAddr: v.MAC()},
		Mode:      netlink.MACVLAN_MODE_PRIVATE,
	}
	if err := s.h.LinkAdd(mv); err != nil {
		return fmt.Errorf("netif: add VMAC %q on %q: %w", name, v.Parent, err)
	}
	return s.vmacUp(v, mv)
}

func (s *System) vmacUp(v VMAC, l netlink.Link) error {
	name := v.LinkName()
	sysctls := map[string]string{
		"net/ipv4/conf/" + name + "/arp_ignore":   "1",
		"net/ipv4/conf/" + name + "/accept_local": "1",
		"net/ipv4/conf/" + name + "/rp_filter":    "0",
	}
	// Every router's VMAC for a VRID has the same MAC, so the kernel's
	// EUI-64 link-local would be the same on all of them and fail DAD.
	// Generate none; an IPv6 VMAC borrows its parent's link-local instead, so
	// adverts leave from the router's own link-local (RFC 9568 §5.1.2.1).
	sysctls["net/ipv6/conf/"+name+"/addr_gen_mode"] = "1"
	if err := s.writeSysctls(sysctls); err != nil {
		return fmt.Errorf("netif: VMAC %q: %w", name, err)
	}
	if v.IPv6 {
		if err := s.borrowLinkLocal(v.Parent, l); err != nil {
			return fmt.Errorf("netif: VMAC %q: %w", name, err)
		}
	}
	if err := s.h.LinkSetUp(l); err != nil {
		return fmt.Errorf("netif: VMAC %q up: %w", name, err)
	}
	return nil
}

// borrowLinkLocal puts the parent's link-local address on the VMAC.
func (s *System) borrowLinkLocal(parent string, vmac netlink.Link) error {
	p, err := s.link(parent)
	if err != nil {
		return err
	}
	addrs, err := redump(func() ([]netlink.Addr, error) { return s.h.AddrList(p, netlink.FAMILY_V6) })
	if err != nil {
		return fmt.Errorf("addresses of %q: %w", parent, err)
	}
	for _, a := range addrs {
		if !a.IP.IsLinkLocalUnicast() {
			continue
		}
		ll := &netlink.Addr{IPNet: a.IPNet, Flags: unix.IFA_F_NODAD}
		if err := s.h.AddrAdd(vmac, ll); err != nil && !errors.Is(err, unix.EEXIST) {
			return fmt.Errorf("link-local %s: %w", a.IP, err)
		}
		return nil
	}
	return fmt.Errorf("parent %q: %w", parent, ErrNoLinkLocal)
}

// RemoveVMAC deletes v; one already gone is not an error.
func (s *System) RemoveVMAC(v VMAC) error {
	l, err := s.h.LinkByName(v.LinkName())
	if isLinkNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("netif: interface %q: %w", v.LinkName(), err)
	}
	if _, ok := l.(*netlink.Macvlan); !ok {
		return fmt.Errorf("netif: %q is not a VMAC (macvlan)", v.LinkName())
	}
	if err := s.h.LinkDel(l); err != nil && !isLinkNotFound(err) {
		return fmt.Errorf("netif: remove VMAC %q: %w", v.LinkName(), err)
	}
	return nil
}

// writeSysctls writes /proc/sys entries in the System's namespace: files
// under /proc/sys/net belong to the namespace of the thread that opens them.
func (s *System) writeSysctls(kv map[string]string) error {
	write := func() error {
		for k, v := range kv {
			err := os.WriteFile(filepath.Join("/proc/sys", k), []byte(v), 0o644)
			if errors.Is(err, os.ErrNotExist) && strings.HasPrefix(k, "net/ipv6/") {
				continue // IPv6 is disabled: nothing to configure
			}
			if err != nil {
				return fmt.Errorf("sysctl %s=%s: %w", k, v, err)
			}
		}
		return nil
	}
	return inNS{ns: s.ns, hasNS: s.hasNS}.do(write)
}
