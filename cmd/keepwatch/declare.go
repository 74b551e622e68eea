package main

import (
	"fmt"

	"github.com/keepwatch/keepwatch/engine/config"
	"github.com/keepwatch/keepwatch/engine/vrrp"
	"github.com/keepwatch/keepwatch/metrics"
)

type configT = config.Config

// declaration tells the metrics which series the config implies, so they
// exist (at 0) before the first event.
func declaration(c *config.Config) metrics.Declaration {
	var d metrics.Declaration
	for i := range c.Instances {
		in := &c.Instances[i]
		mi := metrics.Instance{Name: in.Name, VRID: uint8(in.VRID), Interface: in.Interface, Family: vrrp.Family(in.Family()),
			Version: in.EffectiveVersion(&c.Global), Priority: in.Priority, Interval: in.AdvertInterval}
		for _, a := range in.VIPs {
			mi.VIPs = append(mi.VIPs, a.Prefix.Addr())
		}
		d.Instances = append(d.Instances, mi)
	}
	for _, s := range c.Scripts {
		d.Scripts = append(d.Scripts, metrics.Script{Name: s.Name, InitFail: s.InitFail})
	}
	for i := range c.VirtualServers {
		vs := &c.VirtualServers[i]
		mv := metrics.VirtualServer{Name: serviceName(vs)}
		for _, rs := range vs.RealServers {
			mv.RealServers = append(mv.RealServers, metrics.RealServer{Name: fmt.Sprintf("%s:%d", rs.Addr, rs.Port), Weight: rs.Weight, Up: !vs.Alpha})
		}
		d.VirtualServers = append(d.VirtualServers, mv)
	}
	return d
}

func serviceName(vs *config.VirtualServer) string {
	switch {
	case vs.FWMark != 0:
		return fmt.Sprintf("fwmark:%d", vs.FWMark)
	case vs.Group != "":
		return "group:" + vs.Group
	}
	return fmt.Sprintf("%s:%d/%s", vs.Addr, vs.Port, vs.Protocol)
}
