package kaconf

import (
	"errors"
	"net/netip"
	"strconv"
	"strings"

	"github.com/keepwatch/keepwatch/engine/config"
)

// ipPrefix parses IP[/LEN] as keepalived's address parser does: a missing
// length is a host prefix; a length too long is reported and replaced by
// the host length (vrrp_ipaddress.c: "Invalid address prefix len").
func (p *parser) ipPrefix(l *Line, i int, what string) (netip.Prefix, bool) {
	s := l.Words[i].Text
	ip, bits, hasBits := strings.Cut(s, "/")
	a, err := netip.ParseAddr(ip)
	if err != nil || a.Zone() != "" {
		p.errorf(l, i, what, "%s: invalid IP '%s' - skipping", what, s)
		p.last(config.ItemSkipped)
		return netip.Prefix{}, false
	}
	n := a.BitLen()
	if hasBits {
		v, err := strconv.Atoi(bits)
		if err != nil || v < 0 || v > a.BitLen() {
			p.errorf(l, i, what, "%s: invalid address prefix length '%s' for address %s - using %d", what, bits, s, a.BitLen())
		} else {
			n = v
		}
	}
	return netip.PrefixFrom(a, n), true
}

// address reads one entry of virtual_ipaddress, virtual_ipaddress_excluded
// or static_ipaddress: ONE address and its options (reference §1.3).
// Words that are not options are reported and ignored, as keepalived does
// ("Unknown configuration entry ... for ip address - ignoring").
func (p *parser) address(l *Line, static bool) (config.Address, bool) {
	const what = "virtual_ipaddress"
	pfx, ok := p.ipPrefix(l, 0, what)
	if !ok {
		return config.Address{}, false
	}
	a := config.Address{Pos: p.pos(l, 0), Prefix: pfx}
	n := len(l.Words)
	for i := 1; i < n; i++ {
		w := l.Words[i].Text
		val := func() (string, bool) {
			if i+1 >= n {
				p.errorf(l, i, what, "%s: %s needs a value", what, w)
				p.last(config.Ignored)
				return "", false
			}
			i++
			return l.Words[i].Text, true
		}
		switch w {
		case "brd", "broadcast":
			if v, ok := val(); ok {
				if v != "+" && v != "-" {
					if _, err := netip.ParseAddr(v); err != nil {
						p.errorf(l, i, what, "%s: invalid broadcast address '%s'", what, v)
						p.last(config.Ignored)
						continue
					}
				}
				a.Broadcast = v
			}
		case "dev":
			if v, ok := val(); ok {
				a.Dev = v
			}
		case "use_vmac":
			a.UseVMAC = true
		case "scope":
			if v, ok := val(); ok {
				a.Scope = v
			}
		case "label":
			if v, ok := val(); ok {
				a.Label = v
			}
		case "peer":
			if _, ok := val(); ok {
				if pp, ok := p.ipPrefix(l, i, what); ok {
					a.Peer = pp
				}
			}
		case "home":
			a.Home = true
		case "-nodad", "nodad":
			a.NoDAD = true
		case "mngtmpaddr":
			a.MngTmpAddr = true
		case "noprefixroute":
			a.NoPrefixRoute = true
		case "autojoin":
			a.AutoJoin = true
		case "no_track":
			a.NoTrack = true
		case "preferred_lft":
			if v, ok := val(); ok {
				if v == "forever" {
					f := int64(-1)
					a.PreferredLft = &f
				} else if x, ok := p.integer(l, i, 0, maxU32); ok {
					a.PreferredLft = &x
				}
			}
		case "track_group":
			if v, ok := val(); ok {
				if !static {
					p.warnf(l, i-1, what, "track_group is only valid for static addresses - ignoring")
					p.last(config.Ignored)
					continue
				}
				a.TrackGroup = v
			}
		default:
			p.errorf(l, i, what, "unknown configuration entry '%s' for ip address - ignoring", w)
			p.last(config.Ignored)
		}
	}
	return a, true
}

// routeWords are the `ip route` options that take a value, so that a word
// keepwatch does not model keeps its argument with it in Rest.
var routeWords = map[string]bool{
	"src": true, "via": true, "gw": true, "dev": true, "oif": true, "table": true, "metric": true,
	"preference": true, "priority": true, "scope": true, "protocol": true, "proto": true,
	"to": true, "track_group": true, "mtu": true, "advmss": true, "rtt": true, "rttvar": true,
	"reordering": true, "window": true, "cwnd": true, "ssthresh": true, "realms": true,
	"rto_min": true, "initcwnd": true, "initrwnd": true, "features": true, "quickack": true,
	"congctl": true, "pref": true, "tos": true, "dsfield": true, "nexthop": false, "or": true,
	"expires": true, "fastopen_no_cookie": true, "ttl-propagate": true, "hoplimit": true, "from": true,
}

// route reads one line of virtual_routes / static_routes in `ip route`
// syntax (vrrp_iproute.c). Options keepwatch does not model stay in Rest.
func (p *parser) route(l *Line, static bool) (config.Route, bool) {
	const what = "virtual_routes"
	r := config.Route{Pos: p.pos(l, 0)}
	n := len(l.Words)
	haveDst := false
	for i := 0; i < n; i++ {
		w := l.Words[i].Text
		next := func() (string, bool) {
			if i+1 >= n {
				p.errorf(l, i, what, "%s: %s needs a value", what, w)
				p.last(config.Ignored)
				return "", false
			}
			i++
			return l.Words[i].Text, true
		}
		switch w {
		case "blackhole", "unreachable", "prohibit", "throw":
			if i == 0 {
				r.Type = w
				continue
			}
		case "src":
			if _, ok := next(); ok {
				if a, ok := p.addr(l, i); ok {
					r.Src = a
				}
			}
			continue
		case "via", "gw":
			if _, ok := next(); ok {
				if w == "gw" {
					p.warnf(l, i-1, what, "\"gw\" for routes is deprecated. Please use \"via\"")
					p.last(config.Noted)
				}
				if a, ok := p.addr(l, i); ok {
					r.Via = a
				}
			}
			continue
		case "dev", "oif":
			if v, ok := next(); ok {
				r.Dev = v
			}
			continue
		case "table":
			if v, ok := next(); ok {
				r.Table = v
			}
			continue
		case "metric", "preference", "priority":
			if _, ok := next(); ok {
				if v, ok := p.integer(l, i, 0, maxU32); ok {
					r.Metric = int(v)
				}
			}
			continue
		case "scope":
			if v, ok := next(); ok {
				r.Scope = v
			}
			continue
		case "protocol", "proto":
			if v, ok := next(); ok {
				r.Proto = v
			}
			continue
		case "onlink":
			r.OnLink = true
			continue
		case "no_track":
			r.NoTrack = true
			continue
		case "track_group":
			if v, ok := next(); ok && static {
				r.TrackGroup = v
			}
			continue
		case "to":
			if _, ok := next(); !ok {
				return r, false
			}
			if l.Words[i].Text == "default" {
				haveDst = true
				continue
			}
			pfx, ok := p.ipPrefix(l, i, what)
			if !ok {
				return r, false
			}
			r.Dst, haveDst = pfx, true
			continue
		default:
			if !haveDst && w == "default" {
				haveDst = true
				continue
			}
			if !haveDst && !routeWords[w] {
				pfx, ok := p.ipPrefix(l, i, what)
				if !ok {
					return r, false
				}
				r.Dst, haveDst = pfx, true
				continue
			}
		}
		if w == "or" {
			p.warnf(l, i, what, "\"or\" for routes is deprecated. Please use \"nexthop\"")
			p.last(config.Noted)
		}
		// Not modelled: keep the word, and its value when it takes one.
		r.Rest = append(r.Rest, w)
		if routeWords[w] && i+1 < n {
			i++
			r.Rest = append(r.Rest, l.Words[i].Text)
		}
	}
	if !haveDst {
		p.errorf(l, 0, what, "%s: no destination in route", what)
		p.last(config.ItemSkipped)
		return r, false
	}
	if r.Dev == "" && !r.NoTrack {
		p.warnf(l, 0, what, "cannot track route %s with no interface specified, not tracking", routeDst(r))
		p.last(config.Ignored)
	}
	s, err := r.Spec(p.rtTables())
	if err != nil {
		// keepalived rejects the whole route on a bad option
		// (vrrp_iproute.c alloc_route: "Invalid ... - ignoring route").
		p.specError(l, what, err)
		return r, false
	}
	p.dropped(l, what, s.Dropped)
	for _, opt := range s.Ignored {
		p.warnf(l, wordIndex(l, strings.Fields(opt)[0]), what, "route option '%s' is accepted but ignored by keepwatch", opt)
		p.last(config.Ignored)
	}
	return r, true
}

// rtTables is the name tables this parse resolves with (nil: names are
// not checked).
func (p *parser) rtTables() *config.RTTables { return p.tables }

// specError reports a route or rule option Spec refused, at its word.
func (p *parser) specError(l *Line, what string, err error) {
	i := 0
	var fe *config.FieldError
	if errors.As(err, &fe) {
		i = wordIndex(l, fe.Field)
	}
	p.errorf(l, i, what, "%s: %v - skipping", what, err)
	p.last(config.ItemSkipped)
}

// dropped reports the options keepalived refuses but keeps the entry
// without (an invalid port range, an unknown protocol), at their words.
func (p *parser) dropped(l *Line, what string, errs []error) {
	for _, err := range errs {
		i := 0
		var fe *config.FieldError
		if errors.As(err, &fe) {
			i = wordIndex(l, fe.Field)
		}
		p.errorf(l, i, what, "%s: %v - ignoring the option", what, err)
		p.last(config.Ignored)
	}
}

// wordIndex is the index of the first word of l that is w (0 if none).
func wordIndex(l *Line, w string) int {
	for i := range l.Words {
		if l.Words[i].Text == w {
			return i
		}
	}
	return 0
}

// rule reads one line of virtual_rules / static_rules in `ip rule` syntax
// (vrrp_iprule.c). keepalived warns when no preference is given.
func (p *parser) rule(l *Line, static bool) (config.Rule, bool) {
	const what = "virtual_rules"
	r := config.Rule{Pos: p.pos(l, 0)}
	n := len(l.Words)
	havePrio := false
	for i := 0; i < n; i++ {
		w := l.Words[i].Text
		next := func() (string, bool) {
			if i+1 >= n {
				p.errorf(l, i, what, "%s: %s needs a value", what, w)
				p.last(config.Ignored)
				return "", false
			}
			i++
			return l.Words[i].Text, true
		}
		switch w {
		case "from", "to":
			if _, ok := next(); !ok {
				return r, false
			}
			var pfx netip.Prefix
			if l.Words[i].Text != "all" {
				var ok bool
				if pfx, ok = p.ipPrefix(l, i, what); !ok {
					return r, false
				}
			}
			if w == "from" {
				r.From = pfx
			} else {
				r.To = pfx
			}
		case "table", "lookup":
			if v, ok := next(); ok {
				r.Table = v
			}
		case "priority", "preference", "order":
			if _, ok := next(); ok {
				if v, ok := p.integer(l, i, 0, maxU32); ok {
					r.Priority, havePrio = int(v), true
				}
			}
		case "fwmark":
			if v, ok := next(); ok {
				r.FWMark = v
			}
		case "iif", "dev":
			if v, ok := next(); ok {
				r.IIf = v
			}
		case "oif":
			if v, ok := next(); ok {
				r.OIf = v
			}
		case "blackhole", "prohibit", "unreachable":
			r.Action = w
		case "type":
			// "type ACTION" keeps its value with it for Spec.
			if v, ok := next(); ok {
				r.Rest = append(r.Rest, w, v)
			}
		case "goto":
			if v, ok := next(); ok {
				r.Action = "goto " + v
			}
		case "no_track":
			r.NoTrack = true
		case "inet":
			r.Family = 4
		case "inet6":
			r.Family = 6
		case "track_group":
			if _, ok := next(); ok && static {
				r.Rest = append(r.Rest, "track_group", l.Words[i].Text)
			}
		default:
			r.Rest = append(r.Rest, w)
		}
	}
	if !havePrio {
		p.warnf(l, 0, what, "rule has no preference specified - keepalived picks one, which is probably not what you want")
		p.last(config.Noted)
	}
	s, err := r.Spec(p.rtTables(), 0)
	if err != nil {
		// keepalived frees a rule with a bad option (vrrp_iprule.c
		// alloc_rule: "Unknown rule option").
		p.specError(l, what, err)
		return r, false
	}
	p.dropped(l, what, s.Dropped)
	if s.TunID > 1<<32-1 {
		// keepalived 2.2.7 sends only the low 32 bits (4294967301
		// installs tun_id 5): say where keepwatch's rule differs.
		p.warnf(l, wordIndex(l, "tunnel-id"), what, "tunnel-id %d: keepalived 2.2.7 installs tun_id %d (its low 32 bits); keepwatch installs the value written", s.TunID, uint32(s.TunID))
		p.last(config.Noted)
	}
	return r, true
}

func routeDst(r config.Route) string {
	if r.Dst.IsValid() {
		return r.Dst.String()
	}
	return "default"
}
