package netif

import (
	"fmt"
	"net/netip"
	"strings"
)

// Scope is an address or route scope (rtnetlink's rt_scope_t).
type Scope uint8

// Scopes, with the names keepalived.conf and iproute2 use.
const (
	ScopeGlobal  Scope = 0
	ScopeSite    Scope = 200
	ScopeLink    Scope = 253
	ScopeHost    Scope = 254
	ScopeNowhere Scope = 255
)

func (s Scope) String() string {
	switch s {
	case ScopeGlobal:
		return "global"
	case ScopeSite:
		return "site"
	case ScopeLink:
		return "link"
	case ScopeHost:
		return "host"
	case ScopeNowhere:
		return "nowhere"
	}
	return fmt.Sprintf("%d", uint8(s))
}

// ParseScope reads a scope name (or number) as keepalived.conf writes it.
func ParseScope(s string) (Scope, error) {
	switch strings.ToLower(s) {
	case "global", "universe":
		return ScopeGlobal, nil
	case "site":
		return ScopeSite, nil
	case "link":
		return ScopeLink, nil
	case "host":
		return ScopeHost, nil
	case "nowhere":
		return ScopeNowhere, nil
	}
	var n uint8
	if _, err := fmt.Sscan(s, &n); err != nil {
		return 0, fmt.Errorf("netif: unknown scope %q", s)
	}
	return Scope(n), nil
}

// Address is one virtual (or static) address, with the options of
// keepalived's address entry syntax (reference §1.3):
//
//	<IP>[/<MASK>] [brd <IP>|+|-] [dev <IF>] [scope S] [label L] [peer <IP>]
//	[home] [-nodad] [mngtmpaddr] [noprefixroute] [autojoin] [preferred_lft N|forever]
type Address struct {
	// Prefix is the address and its prefix length (/32 or /128 when the
	// entry has no mask, as keepalived defaults).
	Prefix netip.Prefix
	// Dev is the interface the address goes on.
	Dev string
	// Broadcast is an explicit IPv4 broadcast ("brd IP"); with
	// BroadcastAuto ("brd +") the kernel's convention (host bits all ones)
	// is used instead. Neither means no broadcast, as keepalived does.
	Broadcast     netip.Addr
	BroadcastAuto bool
	// Label is the IPv4 address label; it must start with Dev's name.
	Label string
	Scope Scope
	// Peer is the other end of a point-to-point address; its length, if
	// set, is the prefix length the kernel records.
	Peer          netip.Prefix
	Home          bool // IFA_F_HOMEADDRESS (Mobile IPv6)
	NoDAD         bool // IFA_F_NODAD: usable at once, no duplicate address detection
	MngTmpAddr    bool // IFA_F_MANAGETEMPADDR
	NoPrefixRoute bool // IFA_F_NOPREFIXROUTE
	AutoJoin      bool // IFA_F_MCAUTOJOIN
	// PreferredLft, when HasPreferredLft, is the preferred lifetime in
	// seconds; "preferred_lft 0" keeps a VIP from being chosen as a source
	// address. Without it the lifetime is forever.
	PreferredLft    uint32
	HasPreferredLft bool
}

func (a Address) String() string {
	var b strings.Builder
	b.WriteString(a.Prefix.String())
	if a.Broadcast.IsValid() {
		fmt.Fprintf(&b, " brd %s", a.Broadcast)
	} else if a.BroadcastAuto {
		b.WriteString(" brd +")
	}
	if a.Dev != "" {
		fmt.Fprintf(&b, " dev %s", a.Dev)
	}
	if a.Scope != ScopeGlobal {
		fmt.Fprintf(&b, " scope %s", a.Scope)
	}
	if a.Label != "" {
		fmt.Fprintf(&b, " label %s", a.Label)
	}
	if a.Peer.IsValid() {
		fmt.Fprintf(&b, " peer %s", a.Peer)
	}
	for _, f := range []struct {
		on   bool
		name string
	}{{a.Home, "home"}, {a.NoDAD, "-nodad"}, {a.MngTmpAddr, "mngtmpaddr"}, {a.NoPrefixRoute, "noprefixroute"}, {a.AutoJoin, "autojoin"}} {
		if f.on {
			b.WriteString(" " + f.name)
		}
	}
	if a.HasPreferredLft {
		fmt.Fprintf(&b, " preferred_lft %d", a.PreferredLft)
	}
	return b.String()
}

// RouteType is the kind of a route.
type RouteType uint8

// Route types keepalived's virtual_routes accept in their common forms.
const (
	RouteUnicast     RouteType = iota
	RouteBlackhole             // "blackhole PREFIX"
	RouteUnreachable           // "unreachable PREFIX"
	RouteProhibit              // "prohibit PREFIX"
	RouteThrow                 // "throw PREFIX": policy lookup goes on past this table
)

func (t RouteType) String() string {
	switch t {
	case RouteUnicast:
		return "unicast"
	case RouteBlackhole:
		return "blackhole"
	case RouteUnreachable:
		return "unreachable"
	case RouteProhibit:
		return "prohibit"
	case RouteThrow:
		return "throw"
	}
	return "unknown"
}

// Route is one virtual route (keepalived's virtual_routes, `ip route`
// syntax): [TYPE] DST [src ADDR] [via GW] [dev IF] [table N] [metric N]
// [scope S].
type Route struct {
	Type   RouteType
	Dst    netip.Prefix // "default" is 0.0.0.0/0 or ::/0
	Src    netip.Addr
	Via    netip.Addr
	Dev    string
	Table  int // 0: the main table
	Metric int
	Scope  Scope
	// HasScope makes Scope explicit; without it iproute2's default
	// applies (link for a unicast route with no gateway, else global).
	HasScope bool
	// Protocol is rtm_protocol (0: boot, the kernel's default).
	Protocol uint8
	OnLink   bool
	Tos      uint8
	Realm    uint32
	// Metrics are the RTAX_* values, 0 when unset.
	Metrics RouteMetrics
}

// RouteMetrics are a route's RTA_METRICS (`ip route ... mtu 1400 advmss
// 1360 ...`), in the kernel's units.
type RouteMetrics struct {
	MTU, AdvMSS, Hoplimit, Window, Reordering, Cwnd, Ssthresh   int
	InitCwnd, InitRwnd, QuickACK, FastOpenNoCookie, RTT, RTTVar int
	RTOMin, Features                                            int
	MTULock, RTOMinLock                                         bool
	Congctl                                                     string
}

func (r Route) String() string {
	var b strings.Builder
	if r.Type != RouteUnicast {
		b.WriteString(r.Type.String() + " ")
	}
	b.WriteString(r.Dst.String())
	if r.Src.IsValid() {
		fmt.Fprintf(&b, " src %s", r.Src)
	}
	if r.Via.IsValid() {
		fmt.Fprintf(&b, " via %s", r.Via)
	}
	if r.Dev != "" {
		fmt.Fprintf(&b, " dev %s", r.Dev)
	}
	if r.Table != 0 {
		fmt.Fprintf(&b, " table %d", r.Table)
	}
	if r.Metric != 0 {
		fmt.Fprintf(&b, " metric %d", r.Metric)
	}
	if r.Scope != ScopeGlobal || r.HasScope {
		fmt.Fprintf(&b, " scope %s", r.Scope)
	}
	if r.Protocol != 0 {
		fmt.Fprintf(&b, " proto %d", r.Protocol)
	}
	if r.OnLink {
		b.WriteString(" onlink")
	}
	if r.Metrics != (RouteMetrics{}) {
		fmt.Fprintf(&b, " metrics %+v", r.Metrics)
	}
	return b.String()
}

// Rule is one virtual policy-routing rule (keepalived's virtual_rules, `ip
// rule` syntax): [from PREFIX] [to PREFIX] [fwmark N[/MASK]] [priority N]
// table N.
type Rule struct {
	// IPv6 picks the family when From and To are both unset.
	IPv6     bool
	From, To netip.Prefix
	Table    int
	Priority int // 0: the kernel picks one
	FwMark   uint32
	FwMask   uint32 // 0 with FwMark set: all bits
	// The other selectors of `ip rule`, zero when unset.
	Invert     bool // "not"
	Tos        uint8
	IIf, OIf   string
	UIDRange   *[2]uint32
	IPProto    uint8
	Sport      *[2]uint16
	Dport      *[2]uint16
	SupPrefix  *int // suppress_prefixlength
	SupIfgroup *int // suppress_ifgroup
	Realms     uint32
	Protocol   uint8
	// TunID matches a packet's tunnel key (`tunnel-id`, FRA_TUN_ID); 0 is
	// unset, as the kernel reads it.
	TunID uint64
	// L3mdev looks the packet up in the table of its VRF device
	// (`l3mdev`, FRA_L3MDEV): the rule has no Table of its own.
	L3mdev bool
	// Action is "" (lookup Table), "goto" (to rule Goto), "blackhole",
	// "unreachable", "prohibit" or "nop".
	Action string
	Goto   int
}

func (r Rule) String() string {
	var b strings.Builder
	if r.From.IsValid() {
		fmt.Fprintf(&b, "from %s ", r.From)
	} else {
		b.WriteString("from all ")
	}
	if r.To.IsValid() {
		fmt.Fprintf(&b, "to %s ", r.To)
	}
	if r.FwMark != 0 {
		fmt.Fprintf(&b, "fwmark %#x", r.FwMark)
		if r.FwMask != 0 {
			fmt.Fprintf(&b, "/%#x", r.FwMask)
		}
		b.WriteByte(' ')
	}
	if r.Priority != 0 {
		fmt.Fprintf(&b, "priority %d ", r.Priority)
	}
	if r.IIf != "" {
		fmt.Fprintf(&b, "iif %s ", r.IIf)
	}
	if r.OIf != "" {
		fmt.Fprintf(&b, "oif %s ", r.OIf)
	}
	if r.TunID != 0 {
		fmt.Fprintf(&b, "tunnel-id %d ", r.TunID)
	}
	switch {
	case r.L3mdev && r.Action == "":
		b.WriteString("l3mdev")
	case r.Action == "":
		fmt.Fprintf(&b, "table %d", r.Table)
	case r.Action == "goto":
		fmt.Fprintf(&b, "goto %d", r.Goto)
	default:
		b.WriteString(r.Action)
	}
	return b.String()
}

func (r Rule) isIPv6() bool {
	switch {
	case r.From.IsValid():
		return r.From.Addr().Is6()
	case r.To.IsValid():
		return r.To.Addr().Is6()
	}
	return r.IPv6
}

// Addresses adds and removes addresses on interfaces. Both are idempotent:
// adding a present address or removing an absent one is not an error.
type Addresses interface {
	AddAddress(a Address) error
	RemoveAddress(a Address) error
}

// Routes adds and removes routes, idempotently.
type Routes interface {
	AddRoute(r Route) error
	RemoveRoute(r Route) error
}

// Rules adds and removes policy-routing rules, idempotently.
type Rules interface {
	AddRule(r Rule) error
	RemoveRule(r Rule) error
}
