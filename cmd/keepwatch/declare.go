package main

import (
	"fmt"
	"net"
	"net/netip"
	"strings"

	"github.com/keepwatch/keepwatch/engine/config"
	"github.com/keepwatch/keepwatch/engine/vrrp"
	"github.com/keepwatch/keepwatch/metrics"
)

type configT = config.Config

// declaration tells the metrics which series the config implies, so they
// exist (at 0) before the first event.
func declaration(c *config.Config) metrics.Declaration {
	var d metrics.Declaration
	for _, dg := range c.Diagnostics {
		if dg.Severity == config.Warning {
			d.ConfigWarnings++
		} else {
			d.ConfigErrors++
		}
	}
	// One address dump per interface, not per instance (net.Interface.Addrs
	// reads every address on the host).
	addrsOf := map[string][]netip.Prefix{}
	for i := range c.Instances {
		in := &c.Instances[i]
		if _, ok := addrsOf[in.Interface]; !ok {
			addrsOf[in.Interface] = interfaceAddrs(in.Interface)
		}
		mi := metrics.Instance{Name: in.Name, VRID: uint8(in.VRID), Interface: in.Interface, Family: vrrp.Family(in.Family()),
			Version: in.EffectiveVersion(&c.Global), Priority: in.Priority, Interval: in.AdvertInterval}
		for _, a := range in.VIPs {
			mi.VIPs = append(mi.VIPs, a.Prefix.Addr())
		}
		var peers []netip.Addr
		for _, p := range in.UnicastPeers {
			peers = append(peers, p.Addr)
		}
		mi.Segment = metrics.Segment(mi.Family, addrsOf[in.Interface], mi.VIPs, in.UnicastSrc, peers)
		d.Instances = append(d.Instances, mi)
	}
	for _, s := range c.Scripts {
		d.Scripts = append(d.Scripts, metrics.Script{Name: s.Name, InitFail: s.InitFail})
	}
	for i := range c.VirtualServers {
		vs := &c.VirtualServers[i]
		mv := metrics.VirtualServer{Name: serviceName(vs)}
		for _, rs := range vs.RealServers {
			mv.RealServers = append(mv.RealServers, metrics.RealServer{Name: netip.AddrPortFrom(rs.Addr, uint16(rs.Port)).String(), Weight: rs.Weight, Up: !vs.Alpha})
		}
		d.VirtualServers = append(d.VirtualServers, mv)
	}
	return d
}

// serviceName names a virtual server as engine/ipvs's Key.String does
// ("192.0.2.1:80/tcp", "fwmark:1/ipv4"), so declared series and the kernel
// snapshot agree. A group is named after the group.
func serviceName(vs *config.VirtualServer) string {
	switch {
	case vs.FWMark != 0:
		fam := vrrp.IPv4
		if vs.IPFamily == 6 {
			fam = vrrp.IPv6
		}
		return fmt.Sprintf("fwmark:%d/%s", vs.FWMark, fam)
	case vs.Group != "":
		return "group:" + vs.Group
	}
	proto := strings.ToLower(vs.Protocol)
	if proto == "" {
		proto = "tcp"
	}
	return netip.AddrPortFrom(vs.Addr, uint16(vs.Port)).String() + "/" + proto
}

// interfaceAddrs lists the interface's addresses in kernel order (the
// primary first); nil if it does not exist (yet): the instance is FAULT
// then, and its segment is declared again at the next reload.
func interfaceAddrs(name string) []netip.Prefix {
	ifi, err := net.InterfaceByName(name)
	if err != nil {
		return nil
	}
	addrs, err := ifi.Addrs()
	if err != nil {
		return nil
	}
	var out []netip.Prefix
	for _, a := range addrs {
		n, ok := a.(*net.IPNet)
		if !ok {
			continue
		}
		ip, ok := netip.AddrFromSlice(n.IP)
		if !ok {
			continue
		}
		bits, _ := n.Mask.Size()
		out = append(out, netip.PrefixFrom(ip.Unmap(), bits))
	}
	return out
}
