package netif

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"

	"github.com/vishvananda/netlink/nl"
	"golang.org/x/sys/unix"
)

// Rules with `l3mdev` or `tunnel-id` are beyond vishvananda/netlink v1.3.1's
// Rule: it has no FRA_L3MDEV, and it sends FRA_TUN_ID as a native 32-bit
// value where the kernel reads a big-endian 64-bit one (fib_rules.c
// fib_nl2rule: nla_get_be64), so the kernel refuses the attribute's length.
// Such rules are sent as messages built here with the library's nl helpers,
// carrying what its ruleHandle would carry plus those two attributes; the
// others keep the library's path.

// needsRaw reports whether r has a selector the library cannot send.
func (r Rule) needsRaw() bool { return r.L3mdev || r.TunID != 0 }

// fibRuleInvert is FIB_RULE_INVERT, the fib_rule_hdr flag of "not".
const fibRuleInvert = 0x2

var ruleActions = map[string]uint8{
	"goto": nl.FR_ACT_GOTO, "nop": nl.FR_ACT_NOP, "blackhole": nl.FR_ACT_BLACKHOLE,
	"unreachable": nl.FR_ACT_UNREACHABLE, "prohibit": nl.FR_ACT_PROHIBIT,
}

// ruleMessage is the fib_rule_hdr (which has struct rtmsg's layout) and
// attributes of an RTM_NEWRULE (add) or RTM_DELRULE for r.
func ruleMessage(r Rule, add bool) (*nl.RtMsg, []*nl.RtAttr) {
	msg := &nl.RtMsg{RtMsg: unix.RtMsg{Family: unix.AF_INET, Protocol: unix.RTPROT_BOOT, Scope: unix.RT_SCOPE_UNIVERSE}}
	if r.isIPv6() {
		msg.Family = unix.AF_INET6
	}
	if r.Invert {
		msg.Flags |= fibRuleInvert
	}
	msg.Tos = r.Tos
	// The action: a delete leaves it 0, which the kernel's rule_find
	// takes as any, unless the rule says one (as the library does).
	if a, ok := ruleActions[r.Action]; ok {
		msg.Type = a
	} else if add {
		msg.Type = nl.FR_ACT_TO_TBL
	}
	u32 := func(v uint32) []byte {
		b := make([]byte, 4)
		binary.NativeEndian.PutUint32(b, v)
		return b
	}
	var attrs []*nl.RtAttr
	if r.To.IsValid() {
		msg.Dst_len = uint8(r.To.Bits())
		attrs = append(attrs, nl.NewRtAttr(unix.FRA_DST, r.To.Masked().Addr().AsSlice()))
	}
	if r.From.IsValid() {
		msg.Src_len = uint8(r.From.Bits())
		attrs = append(attrs, nl.NewRtAttr(unix.FRA_SRC, r.From.Masked().Addr().AsSlice()))
	}
	if r.Priority != 0 {
		attrs = append(attrs, nl.NewRtAttr(unix.FRA_PRIORITY, u32(uint32(r.Priority))))
	}
	if r.FwMark != 0 || r.FwMask != 0 {
		attrs = append(attrs, nl.NewRtAttr(unix.FRA_FWMARK, u32(r.FwMark)))
		if r.FwMask != 0 {
			attrs = append(attrs, nl.NewRtAttr(unix.FRA_FWMASK, u32(r.FwMask)))
		}
	}
	if r.Realms != 0 {
		attrs = append(attrs, nl.NewRtAttr(unix.FRA_FLOW, u32(r.Realms)))
	}
	if r.TunID != 0 {
		attrs = append(attrs, nl.NewRtAttr(unix.FRA_TUN_ID, nl.BEUint64Attr(r.TunID)))
	}
	if r.L3mdev {
		// The kernel takes only 1 here and refuses a table beside it:
		// the VRF device's table is looked up (fib_nl2rule).
		attrs = append(attrs, nl.NewRtAttr(unix.FRA_L3MDEV, nl.Uint8Attr(1)))
	}
	if r.Action == "" && !r.L3mdev && r.Table != 0 {
		if r.Table < 256 {
			msg.Table = uint8(r.Table)
		} else {
			attrs = append(attrs, nl.NewRtAttr(unix.FRA_TABLE, u32(uint32(r.Table))))
		}
	}
	if r.Action == "" {
		// Suppressors act on a lookup's result, the VRF table's too:
		// keepalived sends them on l3mdev rules and the kernel keeps
		// them (a dump shows them; `ip rule` prints them only beside a
		// table).
		if r.SupPrefix != nil {
			attrs = append(attrs, nl.NewRtAttr(unix.FRA_SUPPRESS_PREFIXLEN, u32(uint32(*r.SupPrefix))))
		}
		if r.SupIfgroup != nil {
			attrs = append(attrs, nl.NewRtAttr(unix.FRA_SUPPRESS_IFGROUP, u32(uint32(*r.SupIfgroup))))
		}
	}
	if r.IIf != "" {
		attrs = append(attrs, nl.NewRtAttr(unix.FRA_IIFNAME, nl.ZeroTerminated(r.IIf)))
	}
	if r.OIf != "" {
		attrs = append(attrs, nl.NewRtAttr(unix.FRA_OIFNAME, nl.ZeroTerminated(r.OIf)))
	}
	if r.Action == "goto" {
		attrs = append(attrs, nl.NewRtAttr(unix.FRA_GOTO, u32(uint32(r.Goto))))
	}
	if r.IPProto != 0 {
		attrs = append(attrs, nl.NewRtAttr(unix.FRA_IP_PROTO, nl.Uint8Attr(r.IPProto)))
	}
	portRange := func(p [2]uint16) []byte {
		b := make([]byte, 4)
		binary.NativeEndian.PutUint16(b, p[0])
		binary.NativeEndian.PutUint16(b[2:], p[1])
		return b
	}
	if r.Dport != nil {
		attrs = append(attrs, nl.NewRtAttr(unix.FRA_DPORT_RANGE, portRange(*r.Dport)))
	}
	if r.Sport != nil {
		attrs = append(attrs, nl.NewRtAttr(unix.FRA_SPORT_RANGE, portRange(*r.Sport)))
	}
	if r.UIDRange != nil {
		attrs = append(attrs, nl.NewRtAttr(unix.FRA_UID_RANGE, append(u32(r.UIDRange[0]), u32(r.UIDRange[1])...)))
	}
	if r.Protocol != 0 {
		attrs = append(attrs, nl.NewRtAttr(unix.FRA_PROTOCOL, nl.Uint8Attr(r.Protocol)))
	}
	return msg, attrs
}

// ruleRequest is the netlink request adding (RTM_NEWRULE, exclusive, so
// a present rule answers EEXIST as through the library) or deleting r.
func ruleRequest(r Rule, add bool) *nl.NetlinkRequest {
	typ, flags := unix.RTM_DELRULE, unix.NLM_F_ACK
	if add {
		typ, flags = unix.RTM_NEWRULE, unix.NLM_F_CREATE|unix.NLM_F_EXCL|unix.NLM_F_ACK
	}
	req := nl.NewNetlinkRequest(typ, flags)
	msg, attrs := ruleMessage(r, add)
	req.AddData(msg)
	for _, a := range attrs {
		req.AddData(a)
	}
	return req
}

// in is where s's own sockets live: a request made here opens its socket
// on the calling thread, so it must run in s's namespace (net_namespace).
func (s *System) nsOf() inNS { return inNS{ns: s.ns, hasNS: s.hasNS} }

// rawRule sends r's add or delete in s's namespace.
func (s *System) rawRule(r Rule, add bool) error {
	return s.nsOf().do(func() error {
		_, err := ruleRequest(r, add).Execute(unix.NETLINK_ROUTE, 0)
		return err
	})
}

// ListRules dumps the rules of family (unix.AF_INET or unix.AF_INET6) as
// the kernel holds them, l3mdev and tunnel-id included, so what was
// installed can be checked and found again.
func (s *System) ListRules(family int) ([]Rule, error) {
	msgs, err := redump(func() ([][]byte, error) {
		var out [][]byte
		err := s.nsOf().do(func() error {
			req := nl.NewNetlinkRequest(unix.RTM_GETRULE, unix.NLM_F_DUMP)
			req.AddData(&nl.RtMsg{RtMsg: unix.RtMsg{Family: uint8(family)}})
			var err error
			out, err = req.Execute(unix.NETLINK_ROUTE, unix.RTM_NEWRULE)
			return err
		})
		return out, err
	})
	if err != nil {
		return nil, fmt.Errorf("netif: list rules: %w", err)
	}
	rules := make([]Rule, 0, len(msgs))
	for _, m := range msgs {
		r, err := parseRule(m)
		if err != nil {
			return nil, fmt.Errorf("netif: list rules: %w", err)
		}
		rules = append(rules, r)
	}
	return rules, nil
}

// ruleAttrSize is the size of each fixed-size rule attribute: one of
// another size is an error rather than a panic or a misread.
var ruleAttrSize = map[uint16]int{
	unix.FRA_PRIORITY: 4, unix.FRA_FWMARK: 4, unix.FRA_FWMASK: 4, unix.FRA_FLOW: 4, unix.FRA_TABLE: 4,
	unix.FRA_SUPPRESS_PREFIXLEN: 4, unix.FRA_SUPPRESS_IFGROUP: 4, unix.FRA_GOTO: 4, unix.FRA_TUN_ID: 8,
	unix.FRA_L3MDEV: 1, unix.FRA_IP_PROTO: 1, unix.FRA_PROTOCOL: 1, unix.FRA_SPORT_RANGE: 4,
	unix.FRA_DPORT_RANGE: 4, unix.FRA_UID_RANGE: 8,
}

var errShortRule = errors.New("truncated rule message")

// parseRule reads one RTM_NEWRULE message of a dump (the fib_rule_hdr
// and its attributes, without the netlink header) as the kernel's
// fib_nl_fill_rule writes it. Values are as the kernel reports them: a
// mark's mask is explicit, the table of a lookup always set.
func parseRule(b []byte) (Rule, error) {
	if len(b) < unix.SizeofRtMsg {
		return Rule{}, errShortRule
	}
	var r Rule
	family, dstLen, srcLen := b[0], int(b[1]), int(b[2])
	r.Tos, r.Table = b[3], int(b[4])
	action, flags := b[7], binary.NativeEndian.Uint32(b[8:12])
	r.IPv6 = family == unix.AF_INET6
	r.Invert = flags&fibRuleInvert != 0
	for name, a := range ruleActions {
		if a == action {
			r.Action = name
		}
	}
	prefix := func(v []byte, bits int) (netip.Prefix, error) {
		a, ok := netip.AddrFromSlice(v)
		if !ok || bits > a.BitLen() {
			return netip.Prefix{}, fmt.Errorf("bad address attribute (%d bytes, /%d)", len(v), bits)
		}
		return netip.PrefixFrom(a, bits), nil
	}
	attrs := b[unix.SizeofRtMsg:]
	for len(attrs) >= unix.SizeofRtAttr {
		l := int(binary.NativeEndian.Uint16(attrs))
		typ := binary.NativeEndian.Uint16(attrs[2:]) &^ unix.NLA_F_NESTED
		if l < unix.SizeofRtAttr || l > len(attrs) {
			return Rule{}, fmt.Errorf("bad attribute length %d of %d bytes", l, len(attrs))
		}
		v := attrs[unix.SizeofRtAttr:l]
		if next := (l + unix.RTA_ALIGNTO - 1) &^ (unix.RTA_ALIGNTO - 1); next < len(attrs) {
			attrs = attrs[next:]
		} else {
			attrs = nil
		}
		if want := ruleAttrSize[typ]; want != 0 && len(v) != want {
			return Rule{}, fmt.Errorf("attribute %d: %d bytes, want %d", typ, len(v), want)
		}
		u32 := func() uint32 { return binary.NativeEndian.Uint32(v) }
		var err error
		switch typ {
		case unix.FRA_SRC:
			r.From, err = prefix(v, srcLen)
		case unix.FRA_DST:
			r.To, err = prefix(v, dstLen)
		case unix.FRA_PRIORITY:
			r.Priority = int(u32())
		case unix.FRA_FWMARK:
			r.FwMark = u32()
		case unix.FRA_FWMASK:
			r.FwMask = u32()
		case unix.FRA_FLOW:
			r.Realms = u32()
		case unix.FRA_TABLE:
			r.Table = int(u32())
		case unix.FRA_SUPPRESS_PREFIXLEN, unix.FRA_SUPPRESS_IFGROUP:
			// -1 is the kernel's unset.
			if n := int32(u32()); n != -1 {
				x := int(n)
				if typ == unix.FRA_SUPPRESS_PREFIXLEN {
					r.SupPrefix = &x
				} else {
					r.SupIfgroup = &x
				}
			}
		case unix.FRA_GOTO:
			r.Goto = int(u32())
		case unix.FRA_TUN_ID:
			r.TunID = binary.BigEndian.Uint64(v)
		case unix.FRA_L3MDEV:
			r.L3mdev = v[0] != 0
		case unix.FRA_IP_PROTO:
			r.IPProto = v[0]
		case unix.FRA_PROTOCOL:
			r.Protocol = v[0]
		case unix.FRA_IIFNAME, unix.FRA_OIFNAME:
			name := string(v)
			for i := range len(name) {
				if name[i] == 0 {
					name = name[:i]
					break
				}
			}
			if typ == unix.FRA_IIFNAME {
				r.IIf = name
			} else {
				r.OIf = name
			}
		case unix.FRA_SPORT_RANGE, unix.FRA_DPORT_RANGE:
			p := &[2]uint16{binary.NativeEndian.Uint16(v), binary.NativeEndian.Uint16(v[2:])}
			if typ == unix.FRA_SPORT_RANGE {
				r.Sport = p
			} else {
				r.Dport = p
			}
		case unix.FRA_UID_RANGE:
			r.UIDRange = &[2]uint32{binary.NativeEndian.Uint32(v), binary.NativeEndian.Uint32(v[4:])}
		}
		if err != nil {
			return Rule{}, err
		}
	}
	if r.Action != "" || r.L3mdev {
		// The kernel reports table 0 (RT_TABLE_UNSPEC) for these.
		r.Table = 0
	}
	return r, nil
}
