package netif

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// System changes the kernel's addresses, routes, rules and links over
// rtnetlink, in the network namespace it was opened in.
type System struct {
	h   *netlink.Handle
	own bool
	// ns is the namespace given to OpenAt (not owned), used for sysctls
	// and link subscriptions; unset means the caller's.
	ns    netns.NsHandle
	hasNS bool
}

var (
	_ Addresses = (*System)(nil)
	_ Routes    = (*System)(nil)
	_ Rules     = (*System)(nil)
)

// Open returns a System for the calling thread's network namespace.
func Open() (*System, error) {
	h, err := netlink.NewHandle(unix.NETLINK_ROUTE)
	if err != nil {
		return nil, fmt.Errorf("netif: netlink: %w", err)
	}
	return &System{h: h, own: true}, nil
}

// OpenAt returns a System for the given network namespace.
func OpenAt(ns netns.NsHandle) (*System, error) {
	h, err := netlink.NewHandleAt(ns, unix.NETLINK_ROUTE)
	if err != nil {
		return nil, fmt.Errorf("netif: netlink: %w", err)
	}
	return &System{h: h, own: true, ns: ns, hasNS: true}, nil
}

// Close releases the netlink socket.
func (s *System) Close() {
	if s.own {
		s.h.Close()
	}
}

func (s *System) link(name string) (netlink.Link, error) {
	l, err := s.h.LinkByName(name)
	if err != nil {
		return nil, fmt.Errorf("netif: interface %q: %w", name, err)
	}
	return l, nil
}

func isLinkNotFound(err error) bool {
	var nf netlink.LinkNotFoundError
	return errors.As(err, &nf)
}

func ipNet(p netip.Prefix) *net.IPNet {
	return &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}
}

func (a Address) netlink() *netlink.Addr {
	na := &netlink.Addr{IPNet: ipNet(a.Prefix), Label: a.Label, Scope: int(a.Scope)}
	if a.Peer.IsValid() {
		na.Peer = ipNet(a.Peer)
	}
	if a.Prefix.Addr().Is4() {
		switch {
		case a.Broadcast.IsValid():
			na.Broadcast = a.Broadcast.AsSlice()
		case a.BroadcastAuto:
			// netlink computes host-bits-all-ones when Broadcast is nil.
		default:
			// keepalived sets no broadcast unless asked; 0.0.0.0 tells
			// netlink not to invent one.
			na.Broadcast = net.IPv4zero.To4()
		}
	}
	for _, f := range []struct {
		on   bool
		flag int
	}{
		{a.NoDAD, unix.IFA_F_NODAD},
		{a.Home, unix.IFA_F_HOMEADDRESS},
		{a.MngTmpAddr, unix.IFA_F_MANAGETEMPADDR},
		{a.NoPrefixRoute, unix.IFA_F_NOPREFIXROUTE},
		{a.AutoJoin, unix.IFA_F_MCAUTOJOIN},
	} {
		if f.on {
			na.Flags |= f.flag
		}
	}
	if a.HasPreferredLft {
		na.PreferedLft = int(a.PreferredLft)
		na.ValidLft = int(^uint32(0)) // forever
	}
	return na
}

// AddAddress adds an address. An address already present is not an error
// (EEXIST), so a restarted agent can re-add its VIPs.
func (s *System) AddAddress(a Address) error {
	if !a.Prefix.IsValid() {
		return fmt.Errorf("netif: add address: invalid prefix")
	}
	// iproute2's rule, which keepalived configs follow: a label names an
	// alias of its interface ("eth0:vip").
	if a.Label != "" && !strings.HasPrefix(a.Label, a.Dev) {
		return fmt.Errorf("netif: add %s: label must start with the interface name", a)
	}
	l, err := s.link(a.Dev)
	if err != nil {
		return err
	}
	if err := s.h.AddrAdd(l, a.netlink()); err != nil && !errors.Is(err, unix.EEXIST) {
		return fmt.Errorf("netif: add %s: %w", a, err)
	}
	return nil
}

// RemoveAddress removes an address. An absent address (EADDRNOTAVAIL) or
// interface is not an error.
func (s *System) RemoveAddress(a Address) error {
	l, err := s.h.LinkByName(a.Dev)
	if isLinkNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("netif: interface %q: %w", a.Dev, err)
	}
	if err := s.h.AddrDel(l, a.netlink()); err != nil && !errors.Is(err, unix.EADDRNOTAVAIL) {
		return fmt.Errorf("netif: remove %s: %w", a, err)
	}
	return nil
}

// HasAddress reports whether a's address is on a's interface, whatever its
// prefix length or options.
func (s *System) HasAddress(a Address) (bool, error) {
	l, err := s.h.LinkByName(a.Dev)
	if isLinkNotFound(err) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("netif: interface %q: %w", a.Dev, err)
	}
	_, ok, err := s.find(l, a.Prefix.Addr())
	return ok, err
}

func (s *System) find(l netlink.Link, ip netip.Addr) (netlink.Addr, bool, error) {
	fam := netlink.FAMILY_V4
	if ip.Is6() {
		fam = netlink.FAMILY_V6
	}
	addrs, err := redump(func() ([]netlink.Addr, error) { return s.h.AddrList(l, fam) })
	if err != nil {
		return netlink.Addr{}, false, fmt.Errorf("netif: addresses of %q: %w", l.Attrs().Name, err)
	}
	for _, na := range addrs {
		if got, ok := netip.AddrFromSlice(na.IP); ok && got.Unmap() == ip {
			return na, true, nil
		}
	}
	return netlink.Addr{}, false, nil
}

// RemoveStale removes those of want that are already on their interfaces
// when the agent starts: VIPs left behind by a crashed earlier run, which
// would otherwise make two hosts answer for them. It returns what it
// removed. Addresses the config does not name are never touched.
func (s *System) RemoveStale(want []Address) ([]Address, error) {
	var removed []Address
	var errs []error
	for _, a := range want {
		l, err := s.h.LinkByName(a.Dev)
		if isLinkNotFound(err) {
			continue
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("netif: interface %q: %w", a.Dev, err))
			continue
		}
		na, ok, err := s.find(l, a.Prefix.Addr())
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if !ok {
			continue
		}
		// Delete what is there (its own prefix length), not what the
		// config says: a VIP whose mask changed in the config is stale too.
		if err := s.h.AddrDel(l, &na); err != nil && !errors.Is(err, unix.EADDRNOTAVAIL) {
			errs = append(errs, fmt.Errorf("netif: remove stale %s: %w", a, err))
			continue
		}
		removed = append(removed, a)
	}
	return removed, errors.Join(errs...)
}

func (s *System) route(r Route, del bool) (*netlink.Route, error) {
	if !r.Dst.IsValid() {
		return nil, fmt.Errorf("netif: route: invalid destination")
	}
	nr := &netlink.Route{Dst: ipNet(r.Dst.Masked()), Table: r.Table, Priority: r.Metric, Scope: netlink.Scope(r.Scope),
		Protocol: netlink.RouteProtocol(r.Protocol), Tos: int(r.Tos), Realm: int(r.Realm)}
	if r.OnLink {
		nr.Flags |= int(netlink.FLAG_ONLINK)
	}
	m := r.Metrics
	nr.MTU, nr.MTULock, nr.AdvMSS, nr.Hoplimit, nr.Window, nr.Reordering = m.MTU, m.MTULock, m.AdvMSS, m.Hoplimit, m.Window, m.Reordering
	nr.Cwnd, nr.Ssthresh, nr.InitCwnd, nr.InitRwnd, nr.QuickACK = m.Cwnd, m.Ssthresh, m.InitCwnd, m.InitRwnd, m.QuickACK
	nr.FastOpenNoCookie, nr.Rtt, nr.RttVar, nr.RtoMin, nr.RtoMinLock = m.FastOpenNoCookie, m.RTT, m.RTTVar, m.RTOMin, m.RTOMinLock
	nr.Features, nr.Congctl = m.Features, m.Congctl
	if r.Src.IsValid() {
		nr.Src = r.Src.AsSlice()
	}
	if r.Via.IsValid() {
		nr.Gw = r.Via.AsSlice()
	}
	switch r.Type {
	case RouteBlackhole:
		nr.Type = unix.RTN_BLACKHOLE
	case RouteUnreachable:
		nr.Type = unix.RTN_UNREACHABLE
	case RouteProhibit:
		nr.Type = unix.RTN_PROHIBIT
	case RouteThrow:
		nr.Type = unix.RTN_THROW
	default:
		nr.Type = unix.RTN_UNICAST
	}
	if r.Dev != "" {
		l, err := s.h.LinkByName(r.Dev)
		if err != nil {
			return nil, err
		}
		nr.LinkIndex = l.Attrs().Index
	}
	// iproute2's defaults, which keepalived's `ip route` syntax implies: a
	// unicast route without a gateway is scope link; a delete without a
	// scope matches any (nowhere is the wildcard).
	if !r.HasScope && r.Scope == ScopeGlobal && r.Dst.Addr().Is4() {
		switch {
		case del:
			nr.Scope = netlink.Scope(ScopeNowhere)
		case r.Type == RouteUnicast && !r.Via.IsValid():
			nr.Scope = netlink.SCOPE_LINK
		}
	}
	return nr, nil
}

// AddRoute adds a route; one already present is not an error.
func (s *System) AddRoute(r Route) error {
	nr, err := s.route(r, false)
	if err != nil {
		return fmt.Errorf("netif: add route %s: %w", r, err)
	}
	if err := s.h.RouteAdd(nr); err != nil && !errors.Is(err, unix.EEXIST) {
		return fmt.Errorf("netif: add route %s: %w", r, err)
	}
	return nil
}

// RemoveRoute removes a route; one already gone (ESRCH) is not an error.
func (s *System) RemoveRoute(r Route) error {
	nr, err := s.route(r, true)
	if isLinkNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("netif: remove route %s: %w", r, err)
	}
	if err := s.h.RouteDel(nr); err != nil && !errors.Is(err, unix.ESRCH) {
		return fmt.Errorf("netif: remove route %s: %w", r, err)
	}
	return nil
}

func (r Rule) netlink() *netlink.Rule {
	nr := netlink.NewRule()
	nr.Family = netlink.FAMILY_V4
	if r.isIPv6() {
		nr.Family = netlink.FAMILY_V6
	}
	if r.From.IsValid() {
		nr.Src = ipNet(r.From.Masked())
	}
	if r.To.IsValid() {
		nr.Dst = ipNet(r.To.Masked())
	}
	nr.Table = r.Table
	if r.Priority != 0 {
		nr.Priority = r.Priority
	}
	if r.FwMark != 0 || r.FwMask != 0 {
		nr.Mark = r.FwMark
		if r.FwMask != 0 {
			m := r.FwMask
			nr.Mask = &m
		}
	}
	nr.Invert, nr.Tos, nr.IifName, nr.OifName = r.Invert, uint(r.Tos), r.IIf, r.OIf
	nr.IPProto, nr.Protocol = int(r.IPProto), r.Protocol
	if r.Realms != 0 {
		nr.Flow = int(r.Realms)
	}
	if r.UIDRange != nil {
		nr.UIDRange = netlink.NewRuleUIDRange(r.UIDRange[0], r.UIDRange[1])
	}
	if r.Sport != nil {
		nr.Sport = netlink.NewRulePortRange(r.Sport[0], r.Sport[1])
	}
	if r.Dport != nil {
		nr.Dport = netlink.NewRulePortRange(r.Dport[0], r.Dport[1])
	}
	if r.SupPrefix != nil {
		nr.SuppressPrefixlen = *r.SupPrefix
	}
	if r.SupIfgroup != nil {
		nr.SuppressIfgroup = *r.SupIfgroup
	}
	switch r.Action {
	case "goto":
		nr.Goto, nr.Table = r.Goto, -1
	case "blackhole":
		nr.Type, nr.Table = unix.FR_ACT_BLACKHOLE, -1
	case "unreachable":
		nr.Type, nr.Table = unix.FR_ACT_UNREACHABLE, -1
	case "prohibit":
		nr.Type, nr.Table = unix.FR_ACT_PROHIBIT, -1
	case "nop":
		nr.Type, nr.Table = unix.FR_ACT_NOP, -1
	}
	return nr
}

// AddRule adds a policy-routing rule; one already present is not an error.
func (s *System) AddRule(r Rule) error {
	if r.Table == 0 && r.Action == "" && !r.L3mdev {
		return fmt.Errorf("netif: add rule %s: no table", r)
	}
	add := func() error { return s.h.RuleAdd(r.netlink()) }
	if r.needsRaw() {
		add = func() error { return s.rawRule(r, true) }
	}
	if err := add(); err != nil && !errors.Is(err, unix.EEXIST) {
		return fmt.Errorf("netif: add rule %s: %w", r, err)
	}
	return nil
}

// RemoveRule removes a rule; one already gone (ENOENT) is not an error.
func (s *System) RemoveRule(r Rule) error {
	del := func() error { return s.h.RuleDel(r.netlink()) }
	if r.needsRaw() {
		// The delete carries FRA_L3MDEV and FRA_TUN_ID too: without them
		// the kernel's rule_find would match the first rule agreeing on
		// the rest, one without the selector.
		del = func() error { return s.rawRule(r, false) }
	}
	if err := del(); err != nil && !errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("netif: remove rule %s: %w", r, err)
	}
	return nil
}
