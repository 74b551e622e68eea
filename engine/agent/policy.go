package agent

import (
	"fmt"
	"net/netip"
	"reflect"

	"github.com/keepwatch/keepwatch/engine/config"
	"github.com/keepwatch/keepwatch/engine/netif"
)

// route maps a virtual_routes / static_routes entry to netif's, resolving
// table and protocol names and the route's metrics (config.Route.Spec). An
// instance's route without dev or via goes on the instance's interface.
func route(r config.Route, ifname string) (netif.Route, error) {
	s, err := r.Spec(config.SystemRTTables())
	if err != nil {
		return netif.Route{}, fmt.Errorf("route %s: %w", r.Dst, err)
	}
	out := netif.Route{Dst: r.Dst, Src: r.Src, Via: r.Via, Dev: r.Dev, Metric: r.Metric, Table: int(s.Table),
		Protocol: s.Protocol, OnLink: s.OnLink, Tos: s.Tos, Realm: s.Realm, Metrics: netif.RouteMetrics{
			MTU: s.MTU, AdvMSS: s.AdvMSS, Hoplimit: s.Hoplimit, Window: s.Window, Reordering: s.Reordering,
			Cwnd: s.Cwnd, Ssthresh: s.Ssthresh, InitCwnd: s.InitCwnd, InitRwnd: s.InitRwnd, QuickACK: s.QuickACK,
			FastOpenNoCookie: s.FastOpenNoCookie, RTT: s.RTT, RTTVar: s.RTTVar, RTOMin: s.RTOMin,
			Features: s.Features, MTULock: s.MTULock, RTOMinLock: s.RTOMinLock, Congctl: s.Congctl,
		}}
	if !out.Dst.IsValid() {
		// "default": the family is the gateway's or source's (IPv4 when
		// neither says, as iproute2).
		a := r.Via
		if !a.IsValid() {
			a = r.Src
		}
		if a.IsValid() && a.Is6() {
			out.Dst = netip.PrefixFrom(netip.IPv6Unspecified(), 0)
		} else {
			out.Dst = netip.PrefixFrom(netip.IPv4Unspecified(), 0)
		}
	}
	// keepalived does not apply iproute2's "scope link for a route with
	// no gateway": a route's scope is global unless the line says
	// (vrrp_iproute.c; `ip route` after keepalived installs one shows it).
	out.HasScope = true
	if s.Scope >= 0 {
		out.Scope = netif.Scope(s.Scope)
	}
	if out.Dev == "" && !r.Via.IsValid() {
		out.Dev = ifname
	}
	switch r.Type {
	case "blackhole":
		out.Type = netif.RouteBlackhole
	case "unreachable":
		out.Type = netif.RouteUnreachable
	case "prohibit":
		out.Type = netif.RouteProhibit
	case "throw":
		out.Type = netif.RouteThrow
	}
	return out, nil
}

// rule maps a virtual_rules / static_rules entry to netif's with every
// selector and action (config.Rule.Spec); fam is the instance's family, for
// a rule whose addresses do not say.
func rule(r config.Rule, fam int) (netif.Rule, error) {
	s, err := r.Spec(config.SystemRTTables(), fam)
	if err != nil {
		return netif.Rule{}, fmt.Errorf("rule: %w", err)
	}
	out := netif.Rule{IPv6: s.Family == 6, From: s.From, To: s.To, Table: int(s.Table), Priority: int(s.Priority),
		Invert: s.Invert, Tos: s.Tos, IIf: s.IIf, OIf: s.OIf, IPProto: s.IPProto,
		Realms: s.Realms, Protocol: s.Protocol, Action: s.Action, Goto: int(s.Goto), L3mdev: s.L3mdev, TunID: s.TunID}
	if s.HasFwMark {
		out.FwMark, out.FwMask = s.FwMark, s.FwMask
	}
	if s.UIDRange != nil {
		out.UIDRange = &[2]uint32{s.UIDRange.Start, s.UIDRange.End}
	}
	if s.Sport != nil {
		out.Sport = &[2]uint16{uint16(s.Sport.Start), uint16(s.Sport.End)}
	}
	if s.Dport != nil {
		out.Dport = &[2]uint16{uint16(s.Dport.Start), uint16(s.Dport.End)}
	}
	if s.SupPrefix >= 0 {
		v := s.SupPrefix
		out.SupPrefix = &v
	}
	if s.SupIfgroup >= 0 {
		v := s.SupIfgroup
		out.SupIfgroup = &v
	}
	return out, nil
}

// staticSet is what static_ipaddress, static_routes and static_rules ask for.
type staticSet struct {
	addrs  []netif.Address
	routes []netif.Route
	rules  []netif.Rule
}

// staticOf resolves c's static entries; an entry that cannot be resolved
// is logged and left out, as keepalived skips it.
func (a *Agent) staticOf(c *config.Config) staticSet {
	var s staticSet
	for _, x := range c.StaticAddrs {
		// Validate gives an address without dev default_interface (else
		// eth0) when it applies its fixes; a config built another way gets
		// the same here.
		na, err := address(x, c.Global.StaticDevice())
		if err != nil || na.Dev == "" {
			a.log.Error("static_ipaddress: skipped", "address", x.Prefix, "err", err)
			continue
		}
		if na.Prefix.Addr().Is6() {
			// keepalived adds an IPv6 static address without DAD and,
			// unless told, deprecated (preferred_lft 0), as it does VIPs,
			// so it is never picked as a source address (`ip addr` after
			// keepalived starts shows "nodad deprecated").
			na.NoDAD = true
			if x.PreferredLft == nil {
				na.PreferredLft, na.HasPreferredLft = 0, true
			}
		}
		s.addrs = append(s.addrs, na)
	}
	for _, x := range c.StaticRoutes {
		nr, err := route(x, "")
		if err != nil {
			a.log.Error("static_routes: skipped", "err", err)
			continue
		}
		s.routes = append(s.routes, nr)
	}
	for _, x := range c.StaticRules {
		nr, err := rule(x, 0)
		if err != nil {
			a.log.Error("static_rules: skipped", "err", err)
			continue
		}
		s.rules = append(s.rules, nr)
	}
	return s
}

// syncStatic makes the installed static entries c's: keepalived installs
// them when its VRRP process starts, whatever the instances' states, and
// on reload removes those no longer configured and adds the new ones
// (vrrp_daemon.c start_vrrp / reload_vrrp_thread, clear_diff_static_*).
// Addresses go first and rules last, so a route's source and a rule's
// table exist when they are added; removal is the other way round.
func (a *Agent) syncStatic(c *config.Config) {
	var want staticSet
	if c != nil {
		want = a.staticOf(c)
	}
	have := a.static
	for _, r := range have.rules {
		if !contains(want.rules, r) {
			a.logStatic("removing static rule", r, a.addrs.RemoveRule(r))
		}
	}
	for _, r := range have.routes {
		if !contains(want.routes, r) {
			a.logStatic("removing static route", r, a.addrs.RemoveRoute(r))
		}
	}
	for _, x := range have.addrs {
		if !contains(want.addrs, x) {
			a.logStatic("removing static address", x, a.addrs.RemoveAddress(x))
		}
	}
	for _, x := range want.addrs {
		a.logStatic("adding static address", x, a.addrs.AddAddress(x))
	}
	for _, r := range want.routes {
		a.logStatic("adding static route", r, a.addrs.AddRoute(r))
	}
	for _, r := range want.rules {
		a.logStatic("adding static rule", r, a.addrs.AddRule(r))
	}
	a.static = want
}

func (a *Agent) logStatic(what string, x fmt.Stringer, err error) {
	if err != nil {
		a.log.Error(what, "entry", x.String(), "err", err)
	}
}

func contains[T any](list []T, x T) bool {
	for _, y := range list {
		if reflect.DeepEqual(x, y) {
			return true
		}
	}
	return false
}
