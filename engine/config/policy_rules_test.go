package config

import (
	"errors"
	"net/netip"
	"reflect"
	"strings"
	"testing"
)

func testTables() *RTTables { return NewRTTables("testdata/iproute2") }

func TestRTTables(t *testing.T) {
	tb := testTables()
	for _, tt := range []struct {
		name string
		want uint32
		err  string
	}{
		{"main", 254, ""}, {"local", 255, ""}, {"default", 253, ""},
		{"vips", 100, ""}, {"hexed", 0x65, ""}, // rt_tables, with a trailing comment and a hex number
		{"isp1", 200, ""}, {"isp2", 201, ""}, // rt_tables.d/*.conf
		{"42", 42, ""}, {"0x10", 16, ""}, {"4000000", 4000000, ""},
		{"notconf", 0, "unknown table name \"notconf\""}, // only .conf files of rt_tables.d
		{"ignored", 0, "unknown table name"},
	} {
		got, err := tb.Table(tt.name)
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("Table(%q) = %d, %v; want error %q", tt.name, got, err, tt.err)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("Table(%q) = %d, %v; want %d", tt.name, got, err, tt.want)
		}
	}
	if v, err := tb.Protocol("keepalived"); err != nil || v != 18 {
		t.Errorf("Protocol(keepalived) = %d, %v", v, err)
	}
	if v, err := tb.Realm("cust"); err != nil || v != 7 {
		t.Errorf("Realm(cust) = %d, %v", v, err)
	}
	if v, err := tb.Group("uplinks"); err != nil || v != 9 {
		t.Errorf("Group(uplinks) = %d, %v", v, err)
	}
	if v, err := tb.DSField("AF11"); err != nil || v != 0x28 {
		t.Errorf("DSField(AF11) = %d, %v", v, err)
	}
	if v, err := tb.DSField("10"); err != nil || v != 10 {
		t.Errorf("DSField(10) = %#x, %v; keepalived reads it as decimal", v, err)
	}
	// A missing directory fails names, not numbers or built-ins.
	none := NewRTTables("testdata/no-such-dir")
	if _, err := none.Table("main"); err != nil {
		t.Errorf("built-in name with no file: %v", err)
	}
	if _, err := none.Table("vips"); err == nil {
		t.Error("a name with no file resolved")
	}
	// No tables at all (a parse not given the host's): names pass
	// unchecked, numbers are still checked.
	var unchecked *RTTables
	if v, err := unchecked.Table("vips"); err != nil || v != 0 {
		t.Errorf("nil tables: Table(vips) = %d, %v", v, err)
	}
	if _, err := unchecked.Protocol("300"); err == nil {
		t.Error("nil tables: protocol 300 accepted")
	}
}

func TestRuleSpec(t *testing.T) {
	p := netip.MustParsePrefix
	base := RuleSpec{SupPrefix: -1, SupIfgroup: -1, Protocol: ProtoKeepalived, Family: 4}
	with := func(f func(*RuleSpec)) RuleSpec { s := base; f(&s); return s }
	for _, tt := range []struct {
		name string
		r    Rule
		fam  int
		want RuleSpec
	}{
		{"from, named table", Rule{From: p("192.0.2.1/32"), Table: "vips", Priority: 10},
			0, with(func(s *RuleSpec) { s.From, s.Table, s.Priority, s.HasPriority = p("192.0.2.1/32"), 100, 10, true })},
		{"fwmark without mask", Rule{FWMark: "0x10", Table: "1"},
			6, with(func(s *RuleSpec) { s.FwMark, s.FwMask, s.HasFwMark, s.Table, s.Family = 16, 0xffffffff, true, 1, 6 })},
		{"fwmark/mask, iif, oif", Rule{FWMark: "5/0xff", IIf: "a", OIf: "b", Table: "isp2"},
			0, with(func(s *RuleSpec) {
				s.FwMark, s.FwMask, s.HasFwMark, s.IIf, s.OIf, s.Table = 5, 0xff, true, "a", "b", 201
			})},
		{"goto", Rule{Action: "goto 300"},
			0, with(func(s *RuleSpec) { s.Action, s.Goto = "goto", 300 })},
		{"blackhole", Rule{Action: "blackhole"},
			0, with(func(s *RuleSpec) { s.Action = "blackhole" })},
		{"selectors in Rest", Rule{Table: "1", Rest: []string{"not", "tos", "AF11", "uidrange", "10-20", "ipproto", "tcp",
			"sport", "1-2", "dport", "80-90", "realms", "cust/3", "suppress_prefixlength", "0", "sup_group", "uplinks"}},
			0, with(func(s *RuleSpec) {
				s.Table, s.Invert, s.Tos, s.UIDRange, s.IPProto = 1, true, 0x28, &PortRange{10, 20}, 6
				s.Sport, s.Dport, s.Realms, s.SupPrefix, s.SupIfgroup = &PortRange{1, 2}, &PortRange{80, 90}, 7<<16|3, 0, 9
			})},
		{"nop", Rule{Rest: []string{"nop"}}, 0, with(func(s *RuleSpec) { s.Action = "nop" })},
		{"type blackhole", Rule{Rest: []string{"type", "blackhole"}}, 0, with(func(s *RuleSpec) { s.Action = "blackhole" })},
		{"l3mdev: no table", Rule{Rest: []string{"not", "l3mdev"}}, 6,
			with(func(s *RuleSpec) { s.Invert, s.L3mdev, s.Family = true, true, 6 })},
		{"l3mdev with selectors", Rule{From: p("192.0.2.31/32"), FWMark: "3", Rest: []string{"l3mdev", "realms", "3"}}, 0,
			with(func(s *RuleSpec) {
				s.From, s.FwMark, s.FwMask, s.HasFwMark, s.L3mdev, s.Realms = p("192.0.2.31/32"), 3, 0xffffffff, true, true, 3
			})},
		{"tunnel-id: the last counts, all 64 bits", Rule{Table: "1", Rest: []string{"tunnel-id", "3", "tunnel-id", "18446744073709551615"}}, 0,
			with(func(s *RuleSpec) { s.Table, s.TunID = 1, 1<<64-1 })},
		{"tunnel-id: decimal, leading zero", Rule{Table: "1", Rest: []string{"tunnel-id", "010"}}, 0,
			with(func(s *RuleSpec) { s.Table, s.TunID = 1, 10 })},
		{"no_track: no protocol unless given", Rule{Table: "1", NoTrack: true, Rest: []string{"protocol", "4"}},
			0, with(func(s *RuleSpec) { s.Table, s.Protocol = 1, 4 })},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.r.Spec(testTables(), tt.fam)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Spec:\n got %+v\nwant %+v", got, tt.want)
			}
		})
	}

	// Errors name the field; some drop only the option, as keepalived does.
	for _, tt := range []struct {
		r       Rule
		field   string
		dropped bool
	}{
		{Rule{Table: "nosuch"}, "table", false},
		{Rule{FWMark: "x"}, "fwmark", false},
		{Rule{Action: "goto x"}, "goto", false},
		// keepalived 2.2.7 refuses these rules (checked with its -D log).
		{Rule{Table: "5", Rest: []string{"l3mdev"}}, "l3mdev", false},
		{Rule{Action: "blackhole", Rest: []string{"l3mdev"}}, "l3mdev", false},
		{Rule{Action: "goto 200", Rest: []string{"l3mdev"}}, "l3mdev", false},
		{Rule{Rest: []string{"l3mdev", "nop"}}, "l3mdev", false},
		{Rule{Rest: []string{"l3mdev", "type", "blackhole"}}, "l3mdev", false},
		{Rule{Rest: []string{"l3mdev", "l3mdev"}}, "l3mdev", false},
		{Rule{Table: "1", Rest: []string{"tunnel-id", "0x10"}}, "tunnel-id", false},
		{Rule{Table: "1", Rest: []string{"tunnel-id", "7/0xff"}}, "tunnel-id", false},
		{Rule{Table: "1", Rest: []string{"tunnel-id", "-1"}}, "tunnel-id", false},
		{Rule{Table: "1", Rest: []string{"tunnel-id", "18446744073709551616"}}, "tunnel-id", false},
		{Rule{Table: "1", Rest: []string{"tunnel-id"}}, "tunnel-id", false},
		{Rule{Rest: []string{"pref", "5"}}, "pref", false},
		{Rule{Rest: []string{"tos"}}, "tos", false},
		{Rule{Rest: []string{"realms", "nosuch"}}, "realms", false},
		{Rule{Rest: []string{"realm", "3"}}, "realm", false},   // keepalived: "Unknown rule option realm"
		{Rule{Rest: []string{"tun_id", "3"}}, "tun_id", false}, // nor tun_id
		{Rule{Rest: []string{"type", "unicast"}}, "type", false},
		{Rule{From: p("192.0.2.1/32"), To: p("2001:db8::1/128")}, "from", false},
		{Rule{To: p("2001:db8::/32")}, "table", false}, // keepalived: "No action specified for rule - ignoring"
		{Rule{Table: "1", Rest: []string{"sport", "53"}}, "sport", true},
		{Rule{Table: "1", Rest: []string{"uidrange", "5"}}, "uidrange", true},
		{Rule{Table: "1", Rest: []string{"protocol", "static"}}, "protocol", true},
		{Rule{Table: "1", Rest: []string{"protocol", "4"}}, "protocol", true}, // tracked: reset to keepalived's
	} {
		s, err := tt.r.Spec(testTables(), 0)
		if tt.dropped {
			if err != nil || len(s.Dropped) != 1 {
				t.Errorf("%+v: err %v, dropped %v; want one dropped option", tt.r, err, s.Dropped)
				continue
			}
			err = s.Dropped[0]
		}
		var fe *FieldError
		if !errors.As(err, &fe) || fe.Field != tt.field {
			t.Errorf("%+v: error %v; want one about %s", tt.r, err, tt.field)
		}
	}
}

func TestRouteSpec(t *testing.T) {
	r := Route{Table: "isp1", Scope: "host", Rest: []string{"mtu", "lock", "1400", "advmss", "1360", "rtt", "10ms", "rttvar", "5",
		"rto_min", "lock", "200ms", "congctl", "cubic", "features", "ecn", "realms", "cust", "expires", "5", "pref", "high", "onlink"}}
	got, err := r.Spec(testTables())
	if err != nil {
		t.Fatal(err)
	}
	want := RouteSpec{Table: 200, Scope: 254, Protocol: ProtoKeepalived, OnLink: true, Realm: 7, MTU: 1400, MTULock: true,
		AdvMSS: 1360, RTT: 80, RTTVar: 5, RTOMin: 200, RTOMinLock: true, Congctl: "cubic", Features: 1,
		Ignored: []string{"expires 5", "pref high"}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Spec:\n got %+v\nwant %+v", got, want)
	}
	for _, tt := range []struct {
		r     Route
		field string
	}{
		{Route{Table: "nosuch"}, "table"},
		{Route{Scope: "galaxy"}, "scope"},
		{Route{Proto: "nosuch"}, "protocol"},
		{Route{Rest: []string{"mtu", "x"}}, "mtu"},
		{Route{Rest: []string{"rtt", "5h"}}, "rtt"},
		{Route{Rest: []string{"bogus", "1"}}, "bogus"},
		{Route{Rest: []string{"realm", "3"}}, "realm"}, // keepalived: "unknown route keyword realm"
	} {
		_, err := tt.r.Spec(testTables())
		var fe *FieldError
		if !errors.As(err, &fe) || fe.Field != tt.field {
			t.Errorf("%+v: error %v; want one about %s", tt.r, err, tt.field)
		}
	}
	// keepalived resets a tracked route's protocol, keeps an untracked one's.
	if s, _ := (&Route{Proto: "static"}).Spec(testTables()); s.Protocol != ProtoKeepalived || len(s.Dropped) != 1 {
		t.Errorf("tracked route with protocol static: %+v", s)
	}
	if s, _ := (&Route{Proto: "static", NoTrack: true}).Spec(testTables()); s.Protocol != 4 || len(s.Dropped) != 0 {
		t.Errorf("no_track route with protocol static: %+v", s)
	}
}
