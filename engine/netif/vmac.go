package netif

import (
	"fmt"
	"net"
)

// VMAC is a virtual MAC interface for one VRRP instance (keepalived's
// use_vmac, reference §2.8): a macvlan in private mode on Parent, carrying
// the virtual router MAC of RFC 9568 §7.3, so adverts and the VIPs' traffic
// use 00:00:5e:00:01:VRID (IPv6: 00:00:5e:00:02:VRID).
type VMAC struct {
	// Name defaults to keepalived's "vrrp.VRID" ("vrrp6.VRID" for IPv6).
	Name string
	// Prefix replaces "vrrp" in the default name (global_defs vmac_prefix;
	// keepalived 2.2.7, tried: vmac_prefix kwv names the VMAC kwv.57).
	Prefix string
	Parent string
	VRID   uint8
	IPv6   bool
	// Addr is use_vmac's explicit MAC; nil means the virtual router MAC.
	// keepalived 2.2.7 creates the macvlan with it as given (tried:
	// `use_vmac vrrp.56 02:11:22:33:44:55`).
	Addr net.HardwareAddr
}

// LinkName is the interface's name: Name, or keepalived's default.
func (v VMAC) LinkName() string {
	if v.Name != "" {
		return v.Name
	}
	p := v.Prefix
	if p == "" {
		p = "vrrp"
	}
	if v.IPv6 {
		return fmt.Sprintf("%s6.%d", p, v.VRID)
	}
	return fmt.Sprintf("%s.%d", p, v.VRID)
}

// MAC is Addr, or the virtual router MAC address (RFC 9568 §7.3).
func (v VMAC) MAC() net.HardwareAddr {
	if len(v.Addr) > 0 {
		return v.Addr
	}
	if v.IPv6 {
		return net.HardwareAddr{0x00, 0x00, 0x5e, 0x00, 0x02, v.VRID}
	}
	return net.HardwareAddr{0x00, 0x00, 0x5e, 0x00, 0x01, v.VRID}
}

// VMACs creates and removes VMAC interfaces, idempotently.
type VMACs interface {
	AddVMAC(v VMAC) error
	RemoveVMAC(v VMAC) error
}

// LinkEvent is a change of an interface's usability, for FAULT: Up is
// administratively up with carrier (IFF_UP and IFF_RUNNING, the test
// keepalived applies to tracked interfaces).
type LinkEvent struct {
	Name    string
	Index   int
	Up      bool
	Deleted bool
}
