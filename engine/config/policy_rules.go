package config

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"
)

// FieldError is a bad option of a route or rule: the keyword it is about
// and why, so a parser can point at the word.
type FieldError struct {
	Field string
	Err   error
}

func (e *FieldError) Error() string { return e.Field + ": " + e.Err.Error() }
func (e *FieldError) Unwrap() error { return e.Err }

func fieldErr(field, format string, args ...any) error {
	return &FieldError{Field: field, Err: fmt.Errorf(format, args...)}
}

// Default protocols: keepalived marks the rules and routes it installs as
// its own, RTPROT_KEEPALIVED (vrrp_iproute.c, vrrp_iprule.c), so `ip route`
// shows "proto keepalived".
const ProtoKeepalived = 18

// PortRange is an inclusive range of ports or user IDs.
type PortRange struct{ Start, End uint32 }

// RuleSpec is a virtual_rules / static_rules line resolved to what is sent
// to the kernel: names turned into numbers, every selector and action.
type RuleSpec struct {
	Family   int // 4 or 6
	From, To netip.Prefix
	Invert   bool // "not"
	// Priority is the preference; HasPriority false lets the kernel pick.
	Priority    uint32
	HasPriority bool
	Table       uint32
	// Action is "" (lookup Table), goto, blackhole, prohibit,
	// unreachable or nop.
	Action    string
	Goto      uint32
	FwMark    uint32
	FwMask    uint32
	HasFwMark bool
	Tos       uint8
	IIf, OIf  string
	UIDRange  *PortRange
	IPProto   uint8
	Sport     *PortRange
	Dport     *PortRange
	// L3mdev looks up the VRF device's table: Table stays 0.
	L3mdev bool
	// TunID is `tunnel-id`, 0 when unset (the kernel's "any").
	TunID      uint64
	Realms     uint32 // FROM<<16 | TO
	Protocol   uint8
	SupPrefix  int // suppress_prefixlength; -1: unset
	SupIfgroup int // suppress_ifgroup; -1: unset
	// Dropped are options refused on their own: keepalived reports them
	// and installs the rule without them.
	Dropped []error
}

// Spec resolves r with the name tables t: its fields, and the words of
// Rest (the `ip rule` options the model keeps as written). fam is the
// family to use when neither r nor its addresses say (the instance's).
func (r *Rule) Spec(t *RTTables, fam int) (RuleSpec, error) {
	s := RuleSpec{From: r.From, To: r.To, Action: r.Action, SupPrefix: -1, SupIfgroup: -1,
		IIf: r.IIf, OIf: r.OIf}
	// keepalived marks what it tracks as its own; an untracked (no_track)
	// rule gets no protocol unless one is given (vrrp_iprule.c).
	if !r.NoTrack {
		s.Protocol = ProtoKeepalived
	}
	if r.Priority != 0 {
		s.Priority, s.HasPriority = uint32(r.Priority), true
	}
	if r.Table != "" {
		v, err := t.Table(r.Table)
		if err != nil {
			return s, &FieldError{"table", err}
		}
		s.Table = v
	}
	if strings.HasPrefix(s.Action, "goto ") {
		v, err := strconv.ParseUint(strings.TrimPrefix(s.Action, "goto "), 0, 32)
		if err != nil {
			return s, fieldErr("goto", "invalid target %q", strings.TrimPrefix(s.Action, "goto "))
		}
		s.Action, s.Goto = "goto", uint32(v)
	}
	if r.FWMark != "" {
		m, k, hasMask := strings.Cut(r.FWMark, "/")
		v, err := strconv.ParseUint(m, 0, 32)
		if err != nil {
			return s, fieldErr("fwmark", "invalid mark %q", r.FWMark)
		}
		s.FwMark, s.HasFwMark, s.FwMask = uint32(v), true, 0xffffffff
		if hasMask {
			v, err := strconv.ParseUint(k, 0, 32)
			if err != nil {
				return s, fieldErr("fwmark", "invalid mask %q", r.FWMark)
			}
			s.FwMask = uint32(v)
		}
	}
	w := r.Rest
	for i := 0; i < len(w); i++ {
		kw := w[i]
		val := func() (string, error) {
			if i+1 >= len(w) {
				return "", fieldErr(kw, "needs a value")
			}
			i++
			return w[i], nil
		}
		var v string
		var err error
		switch kw {
		case "not":
			s.Invert = true
			continue
		case "l3mdev":
			// keepalived 2.2.7 takes l3mdev as one more action: a second
			// one refuses the rule ("Cannot specify l3mdev with other
			// action"), as do a table and the other actions (below).
			if s.L3mdev {
				return s, fieldErr(kw, "given twice (l3mdev is the rule's action)")
			}
			s.L3mdev = true
			continue
		case "nop":
			s.Action = "nop"
			continue
		case "track_group":
			_, err = val()
			if err != nil {
				return s, err
			}
			continue
		}
		if v, err = val(); err != nil {
			return s, err
		}
		switch kw {
		case "tos", "dsfield":
			if s.Tos, err = t.DSField(v); err != nil {
				return s, &FieldError{kw, err}
			}
		case "uidrange":
			pr, err := portRange(v, 1<<32-1)
			if err != nil {
				s.Dropped = append(s.Dropped, &FieldError{kw, err})
				continue
			}
			s.UIDRange = &pr
		case "sport", "dport":
			pr, err := portRange(v, 65535)
			if err != nil {
				s.Dropped = append(s.Dropped, &FieldError{kw, err})
				continue
			}
			if kw == "sport" {
				s.Sport = &pr
			} else {
				s.Dport = &pr
			}
		case "ipproto":
			p, ok := ipProtos[strings.ToLower(v)]
			if !ok {
				n, err := strconv.ParseUint(v, 0, 8)
				if err != nil {
					return s, fieldErr(kw, "unknown protocol %q", v)
				}
				p = uint8(n)
			}
			s.IPProto = p
		case "protocol":
			// keepalived 2.2.7 takes a number only here ("Invalid
			// protocol static") and keeps the rule; a tracked rule's
			// protocol is reset to its own.
			n, err := strconv.ParseUint(v, 0, 8)
			switch {
			case err != nil:
				s.Dropped = append(s.Dropped, fieldErr(kw, "invalid protocol %q (a number)", v))
			case !r.NoTrack && n != ProtoKeepalived:
				s.Dropped = append(s.Dropped, fieldErr(kw, "a rule cannot be tracked if its protocol is not keepalived (18): resetting protocol"))
			default:
				s.Protocol = uint8(n)
			}
		case "realms":
			if s.Realms, err = realms(t, v); err != nil {
				return s, &FieldError{kw, err}
			}
		case "type":
			// "type blackhole" is the long form of the action words.
			switch v {
			case "blackhole", "prohibit", "unreachable", "nop":
				s.Action = v
			default:
				return s, fieldErr(kw, "unknown rule type %q", v)
			}
		case "suppress_prefixlength", "sup_pl":
			n, err := strconv.ParseUint(v, 0, 8)
			if err != nil || n > 128 {
				return s, fieldErr(kw, "invalid prefix length %q", v)
			}
			s.SupPrefix = int(n)
		case "suppress_ifgroup", "sup_group":
			g, err := t.Group(v)
			if err != nil {
				return s, &FieldError{kw, err}
			}
			s.SupIfgroup = int(g)
		case "tunnel-id":
			// keepalived 2.2.7 reads a decimal number ("invalid number
			// '0x10'"), no mask, and refuses the rule otherwise; the last
			// one given counts. It keeps only the low 32 bits of what it
			// sends (4294967301 installs tun_id 5); keepwatch sends the 64
			// bits written, which the kernel takes (FRA_TUN_ID is be64).
			n, err := strconv.ParseUint(v, 10, 64)
			if err != nil {
				return s, fieldErr(kw, "invalid tunnel id %q (a decimal number from 0 to 18446744073709551615)", v)
			}
			s.TunID = n
		default:
			return s, fieldErr(kw, "unknown rule option")
		}
	}
	switch {
	case r.Family == 4 || r.Family == 6:
		s.Family = r.Family
	case s.From.IsValid():
		s.Family = familyOf(s.From.Addr())
	case s.To.IsValid():
		s.Family = familyOf(s.To.Addr())
	case fam != 0:
		s.Family = fam
	default:
		s.Family = 4
	}
	for _, p := range []netip.Prefix{s.From, s.To} {
		if p.IsValid() && familyOf(p.Addr()) != s.Family {
			return s, fieldErr("from", "address %s is not of the rule's family (IPv%d)", p, s.Family)
		}
	}
	if s.L3mdev {
		// The kernel refuses a table beside FRA_L3MDEV ("table can not
		// be specified for l3mdev rules"); keepalived refuses the rule
		// at parse time, as it does l3mdev with another action.
		switch {
		case r.Table != "":
			return s, fieldErr("l3mdev", "table %s given: an l3mdev rule looks up its VRF device's table", r.Table)
		case s.Action != "":
			return s, fieldErr("l3mdev", "cannot be combined with the %s action", s.Action)
		}
	}
	if s.Action == "" && s.Table == 0 && !s.L3mdev {
		// `ip rule add` would look up main, but keepalived 2.2.7 skips a
		// rule without table, goto, nop, l3mdev or a type ("No action
		// specified for rule - ignoring", vrrp_iprule.c alloc_rule), so
		// keepwatch installs nothing for it either.
		return s, fieldErr("table", "no action given (table, goto, nop, l3mdev, blackhole, prohibit or unreachable): keepalived ignores the rule")
	}
	return s, nil
}

func familyOf(a netip.Addr) int {
	if a.Is4() {
		return 4
	}
	return 6
}

// portRange reads "N-M". keepalived 2.2.7 refuses a single number for
// sport, dport and uidrange ("invalid sport range 53"), unlike iproute2.
func portRange(v string, max uint64) (PortRange, error) {
	a, b, isRange := strings.Cut(v, "-")
	if !isRange {
		return PortRange{}, fmt.Errorf("invalid range %q (keepalived needs FROM-TO)", v)
	}
	lo, err := strconv.ParseUint(a, 10, 32)
	if err != nil || lo > max {
		return PortRange{}, fmt.Errorf("invalid range %q", v)
	}
	hi := lo
	if isRange {
		if hi, err = strconv.ParseUint(b, 10, 32); err != nil || hi > max || hi < lo {
			return PortRange{}, fmt.Errorf("invalid range %q", v)
		}
	}
	return PortRange{uint32(lo), uint32(hi)}, nil
}

// ipProtos are the names getprotobyname(3) knows that a rule is likely to
// use (keepalived asks the C library; keepwatch does not read /etc/protocols).
var ipProtos = map[string]uint8{
	"icmp": 1, "igmp": 2, "tcp": 6, "udp": 17, "gre": 47, "esp": 50, "ah": 51, "ipv6-icmp": 58,
	"icmpv6": 58, "ospf": 89, "vrrp": 112, "sctp": 132, "udplite": 136,
}

// RouteSpec is the part of a virtual_routes / static_routes line beyond
// what netif.Route's basic fields carry, resolved: table, scope, protocol,
// flags and the route metrics (RTAX_*) iproute2 accepts.
type RouteSpec struct {
	Table    uint32 // 0: main
	Scope    int    // -1: iproute2's default for the route
	Protocol uint8
	OnLink   bool
	Tos      uint8
	Realm    uint32
	// Metrics, 0 when unset, in the units the kernel takes (rtt in
	// 1/8 ms, rttvar in 1/4 ms, as iproute2 converts them).
	MTU, AdvMSS, Hoplimit, Window, Reordering, Cwnd, Ssthresh   int
	InitCwnd, InitRwnd, QuickACK, FastOpenNoCookie, RTT, RTTVar int
	RTOMin, Features                                            int
	MTULock, RTOMinLock                                         bool
	Congctl                                                     string
	// Ignored lists options accepted but not installed, each as written.
	Ignored []string
	// Dropped are options refused on their own (see RuleSpec.Dropped).
	Dropped []error
}

// routeIgnored are the `ip route` options keepalived accepts that
// keepwatch cannot express with its netlink library: they are accepted
// and reported, never silently dropped.
var routeIgnored = map[string]bool{
	"expires": true, "pref": true, "ttl-propagate": true, "encap": true, "nexthop": true, "or": true,
}

// Spec resolves r with the name tables t.
func (r *Route) Spec(t *RTTables) (RouteSpec, error) {
	// Unlike a rule's, a route's protocol is keepalived's own even with
	// no_track (the kernel shows "proto keepalived" for both).
	s := RouteSpec{Scope: -1, OnLink: r.OnLink, Protocol: ProtoKeepalived}
	var err error
	if r.Table != "" {
		if s.Table, err = t.Table(r.Table); err != nil {
			return s, &FieldError{"table", err}
		}
	}
	if r.Scope != "" {
		sc, ok := scopeNames[strings.ToLower(r.Scope)]
		if !ok {
			n, err := strconv.ParseUint(r.Scope, 0, 8)
			if err != nil {
				return s, fieldErr("scope", "unknown scope %q", r.Scope)
			}
			sc = int(n)
		}
		s.Scope = sc
	}
	if r.Proto != "" {
		p, err := t.Protocol(r.Proto)
		switch {
		case err != nil:
			return s, &FieldError{"protocol", err}
		case !r.NoTrack && p != ProtoKeepalived:
			// vrrp_iproute.c: "Route cannot be tracked if protocol is not
			// RTPROT_KEEPALIVED(18), resetting protocol".
			s.Dropped = append(s.Dropped, fieldErr("protocol", "a route cannot be tracked if its protocol is not keepalived (18): resetting protocol"))
		default:
			s.Protocol = p
		}
	}
	w := r.Rest
	for i := 0; i < len(w); i++ {
		kw := w[i]
		if routeIgnored[kw] {
			// The option and its arguments, up to the next keyword this
			// loop knows, are reported together.
			j := i + 1
			for j < len(w) && !routeMetricWords[w[j]] && !routeIgnored[w[j]] && w[j] != "onlink" {
				j++
			}
			s.Ignored = append(s.Ignored, strings.Join(w[i:j], " "))
			i = j - 1
			continue
		}
		if kw == "onlink" {
			s.OnLink = true
			continue
		}
		if !routeMetricWords[kw] {
			return s, fieldErr(kw, "unknown route option")
		}
		if i+1 >= len(w) {
			return s, fieldErr(kw, "needs a value")
		}
		i++
		v := w[i]
		lock := false
		if v == "lock" {
			if i+1 >= len(w) {
				return s, fieldErr(kw, "needs a value")
			}
			lock, i = true, i+1
			v = w[i]
		}
		switch kw {
		case "congctl":
			s.Congctl = v
			if lock {
				s.Ignored = append(s.Ignored, "congctl lock")
			}
			continue
		case "tos", "dsfield":
			if s.Tos, err = t.DSField(v); err != nil {
				return s, &FieldError{kw, err}
			}
			continue
		case "realms":
			if s.Realm, err = realms(t, v); err != nil {
				return s, &FieldError{kw, err}
			}
			continue
		case "features":
			if v != "ecn" {
				return s, fieldErr(kw, "unknown feature %q", v)
			}
			s.Features = 1 // RTAX_FEATURE_ECN
			continue
		case "rtt", "rttvar", "rto_min":
			n, raw, err := rttValue(v)
			if err != nil {
				return s, &FieldError{kw, err}
			}
			switch kw {
			case "rtt":
				if !raw {
					n *= 8
				}
				s.RTT = n
			case "rttvar":
				if !raw {
					n *= 4
				}
				s.RTTVar = n
			default:
				s.RTOMin, s.RTOMinLock = n, lock
			}
			if lock && kw != "rto_min" {
				s.Ignored = append(s.Ignored, kw+" lock")
			}
			continue
		}
		n, err := strconv.ParseUint(v, 0, 32)
		if err != nil || n > 1<<31-1 {
			return s, fieldErr(kw, "invalid value %q", v)
		}
		if lock && kw != "mtu" {
			s.Ignored = append(s.Ignored, kw+" lock")
		}
		switch kw {
		case "mtu":
			s.MTU, s.MTULock = int(n), lock
		case "advmss":
			s.AdvMSS = int(n)
		case "hoplimit":
			s.Hoplimit = int(n)
		case "window":
			s.Window = int(n)
		case "reordering":
			s.Reordering = int(n)
		case "cwnd":
			s.Cwnd = int(n)
		case "ssthresh":
			s.Ssthresh = int(n)
		case "initcwnd":
			s.InitCwnd = int(n)
		case "initrwnd":
			s.InitRwnd = int(n)
		case "quickack":
			s.QuickACK = int(n)
		case "fastopen_no_cookie":
			s.FastOpenNoCookie = int(n)
		}
	}
	return s, nil
}

// routeMetricWords are the route options taking a value that Spec reads
// from Rest.
var routeMetricWords = map[string]bool{
	"mtu": true, "advmss": true, "hoplimit": true, "window": true, "reordering": true, "cwnd": true,
	"ssthresh": true, "initcwnd": true, "initrwnd": true, "quickack": true, "fastopen_no_cookie": true,
	"congctl": true, "tos": true, "dsfield": true, "realms": true, "features": true,
	"rtt": true, "rttvar": true, "rto_min": true,
}

var scopeNames = map[string]int{"global": 0, "universe": 0, "site": 200, "link": 253, "host": 254, "nowhere": 255}

// rttValue reads an iproute2 time ("10ms", "1s", "5"): a bare number is
// raw (the kernel's units), a unit makes it milliseconds (get_time_rtt).
func rttValue(v string) (int, bool, error) {
	num := strings.TrimRight(v, "abcdefghijklmnopqrstuvwxyz")
	unit := v[len(num):]
	f, err := strconv.ParseFloat(num, 64)
	if err != nil || f < 0 {
		return 0, false, fmt.Errorf("invalid time %q", v)
	}
	switch unit {
	case "":
		return int(f), true, nil
	case "s", "sec", "secs":
		return int(f * 1000), false, nil
	case "ms", "msec", "msecs":
		return int(f), false, nil
	case "us", "usec", "usecs":
		return int(f / 1000), false, nil
	}
	return 0, false, fmt.Errorf("invalid time %q", v)
}

// realms reads `realms [FROM/]TO` (rules and routes alike): each a realm
// name or number, FROM in the upper 16 bits as the kernel's RTA_FLOW has it.
func realms(t *RTTables, v string) (uint32, error) {
	from, to, hasFrom := strings.Cut(v, "/")
	if !hasFrom {
		from, to = "", from
	}
	var f, tt uint16
	var err error
	if from != "" {
		if f, err = t.Realm(from); err != nil {
			return 0, err
		}
	}
	if tt, err = t.Realm(to); err != nil {
		return 0, err
	}
	return uint32(f)<<16 | uint32(tt), nil
}
