package netif

import (
	"bytes"
	"encoding/binary"
	"net/netip"
	"reflect"
	"testing"

	"github.com/vishvananda/netlink/nl"
	"golang.org/x/sys/unix"
)

// ruleBytes is what ruleMessage puts after the netlink header.
func ruleBytes(r Rule, add bool) []byte {
	msg, attrs := ruleMessage(r, add)
	b := append([]byte(nil), msg.Serialize()...)
	for _, a := range attrs {
		b = append(b, a.Serialize()...)
	}
	return b
}

// attrOf is the value of attribute typ in a rule message ("" if absent).
func attrOf(t *testing.T, b []byte, typ uint16) []byte {
	t.Helper()
	attrs, err := nl.ParseRouteAttr(b[unix.SizeofRtMsg:])
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range attrs {
		if a.Attr.Type == typ {
			return a.Value
		}
	}
	return nil
}

func TestRuleMessageEncoding(t *testing.T) {
	p := netip.MustParsePrefix
	tun := Rule{From: p("192.0.2.30/32"), Table: 115, Priority: 122, TunID: 1<<40 | 5, Protocol: 18}
	b := ruleBytes(tun, true)
	// fib_rule_hdr: family, dst_len, src_len, tos, table, res1, res2,
	// action, flags.
	if want := []byte{unix.AF_INET, 0, 32, 0, 115, unix.RTPROT_BOOT, 0, nl.FR_ACT_TO_TBL}; !bytes.Equal(b[:8], want) {
		t.Errorf("header % x, want % x", b[:8], want)
	}
	// The kernel reads FRA_TUN_ID as a big-endian 64-bit number.
	if v := attrOf(t, b, unix.FRA_TUN_ID); !bytes.Equal(v, []byte{0, 0, 1, 0, 0, 0, 0, 5}) {
		t.Errorf("FRA_TUN_ID % x", v)
	}
	if v := attrOf(t, b, unix.FRA_L3MDEV); v != nil {
		t.Errorf("FRA_L3MDEV % x on a rule without l3mdev", v)
	}
	if v := attrOf(t, b, unix.FRA_PRIORITY); len(v) != 4 || binary.NativeEndian.Uint32(v) != 122 {
		t.Errorf("FRA_PRIORITY % x", v)
	}
	if v := attrOf(t, b, unix.FRA_PROTOCOL); !bytes.Equal(v, []byte{18}) {
		t.Errorf("FRA_PROTOCOL % x", v)
	}
	// A delete leaves the action to the kernel's match (0: any).
	if d := ruleBytes(tun, false); d[7] != 0 {
		t.Errorf("delete action %d, want 0", d[7])
	}

	sup := 0
	l3 := Rule{IPv6: true, L3mdev: true, Priority: 121, Invert: true, IIf: "vrf-red", SupPrefix: &sup}
	b = ruleBytes(l3, true)
	if b[0] != unix.AF_INET6 || b[4] != 0 || b[7] != nl.FR_ACT_TO_TBL || binary.NativeEndian.Uint32(b[8:]) != fibRuleInvert {
		t.Errorf("l3mdev header % x: want AF_INET6, no table, to-table action, invert", b[:12])
	}
	if v := attrOf(t, b, unix.FRA_L3MDEV); !bytes.Equal(v, []byte{1}) {
		t.Errorf("FRA_L3MDEV % x, want 01", v)
	}
	if v := attrOf(t, b, unix.FRA_SUPPRESS_PREFIXLEN); len(v) != 4 || binary.NativeEndian.Uint32(v) != 0 {
		t.Errorf("FRA_SUPPRESS_PREFIXLEN % x, want 0 as keepalived sends it", v)
	}
	for _, a := range []uint16{unix.FRA_TABLE, unix.FRA_TUN_ID} {
		if v := attrOf(t, b, a); v != nil {
			t.Errorf("attribute %d % x on an l3mdev rule", a, v)
		}
	}
	if v := attrOf(t, b, unix.FRA_IIFNAME); string(v) != "vrf-red\x00" {
		t.Errorf("FRA_IIFNAME %q", v)
	}
}

// TestRuleMessageRoundTrip reads back what ruleMessage writes: the dump
// parser and the encoder agree on every attribute.
func TestRuleMessageRoundTrip(t *testing.T) {
	p := netip.MustParsePrefix
	one, five := 1, 5
	for _, r := range []Rule{
		{L3mdev: true, Priority: 120, Protocol: 18},
		{IPv6: true, L3mdev: true, Priority: 121},
		{From: p("192.0.2.30/32"), Table: 115, Priority: 122, TunID: 5, Protocol: 18},
		{From: p("2001:db8::/64"), To: p("2001:db8:1::/48"), Table: 1000, Priority: 123, TunID: 1<<64 - 1, IPv6: true},
		{L3mdev: true, Invert: true, IIf: "a", OIf: "b", FwMark: 3, FwMask: 0xff, Realms: 3<<16 | 4, Priority: 124, SupIfgroup: &five},
		{TunID: 9, Table: 5, Tos: 0x10, IPProto: 6, Sport: &[2]uint16{1, 2}, Dport: &[2]uint16{80, 90},
			UIDRange: &[2]uint32{1000, 2000}, SupPrefix: &one, SupIfgroup: &five, Priority: 125},
		{TunID: 7, Action: "goto", Goto: 200, Priority: 126},
		{TunID: 7, Action: "blackhole", Priority: 127},
		{TunID: 7, Action: "nop", Priority: 128},
	} {
		got, err := parseRule(ruleBytes(r, true))
		if err != nil {
			t.Errorf("%s: %v", r, err)
			continue
		}
		if !reflect.DeepEqual(got, r) {
			t.Errorf("round trip:\n got %+v\nwant %+v", got, r)
		}
	}
}

func TestParseRuleErrors(t *testing.T) {
	good := ruleBytes(Rule{TunID: 5, Table: 1, Priority: 2}, true)
	for name, b := range map[string][]byte{
		"empty":         nil,
		"short header":  good[:11],
		"attribute cut": good[:len(good)-2],
		"tun_id of 4 bytes": append(append([]byte(nil), good[:unix.SizeofRtMsg]...),
			nl.NewRtAttr(unix.FRA_TUN_ID, []byte{0, 0, 0, 5}).Serialize()...),
		"src longer than its prefix": append([]byte{unix.AF_INET, 0, 33, 0, 1, 0, 0, 1, 0, 0, 0, 0},
			nl.NewRtAttr(unix.FRA_SRC, []byte{192, 0, 2, 1}).Serialize()...),
	} {
		if r, err := parseRule(b); err == nil {
			t.Errorf("%s: accepted as %+v", name, r)
		}
	}
}

// FuzzParseRule feeds arbitrary bytes to the rule dump parser: a kernel
// message of any shape must give a rule or an error, never a panic, and
// what it accepts must survive being encoded and read again.
func FuzzParseRule(f *testing.F) {
	f.Add(ruleBytes(Rule{L3mdev: true, Priority: 120, Protocol: 18}, true))
	f.Add(ruleBytes(Rule{From: netip.MustParsePrefix("2001:db8::/64"), TunID: 1 << 40, Table: 1000, IIf: "x"}, true))
	f.Add(ruleBytes(Rule{Sport: &[2]uint16{1, 2}, UIDRange: &[2]uint32{3, 4}, Action: "goto", Goto: 9}, false))
	f.Add([]byte{2, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 5, 0, 0x13, 0, 1, 0, 0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := parseRule(b)
		if err != nil {
			return
		}
		if r.From.IsValid() && r.From.Bits() > r.From.Addr().BitLen() || r.To.IsValid() && r.To.Bits() > r.To.Addr().BitLen() {
			t.Fatalf("invalid prefix in %+v", r)
		}
		if _, err := parseRule(ruleBytes(r, true)); err != nil {
			t.Fatalf("re-encoded %+v: %v", r, err)
		}
	})
}
