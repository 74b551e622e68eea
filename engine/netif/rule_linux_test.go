package netif_test

import (
	"net/netip"
	"reflect"
	"strings"
	"testing"

	"github.com/keepwatch/keepwatch/engine/netif"
	"golang.org/x/sys/unix"

	"github.com/keepwatch/keepwatch/engine/netif/nskit/nskittest"
)

// TestRawRules installs, lists and removes l3mdev and tunnel-id rules,
// the ones built here rather than by the netlink library, in a namespace
// through a System opened there: `ip rule` shows what keepalived's show,
// the dump reads them back whole, and a delete removes only the rule with
// the selector, not its twin without it.
func TestRawRules(t *testing.T) {
	t.Parallel()
	l := nskittest.New(t, "rawrule", 1)
	n := l.Node(1)
	s := openSystem(t, n)
	p := netip.MustParsePrefix

	twin := netif.Rule{From: p("192.0.2.30/32"), Table: 115, Priority: 122, Protocol: 18}
	tun := twin
	tun.TunID = 5
	rules := []struct {
		r    netif.Rule
		v6   bool
		want string // its `ip rule` line
	}{
		{netif.Rule{L3mdev: true, Priority: 120, Protocol: 18}, false, "120:\tfrom all lookup [l3mdev-table] proto keepalived"},
		{netif.Rule{IPv6: true, L3mdev: true, Priority: 121, Protocol: 18}, true, "121:\tfrom all lookup [l3mdev-table] proto keepalived"},
		{twin, false, "122:\tfrom 192.0.2.30 lookup 115 proto keepalived"},
		{tun, false, "122:\tfrom 192.0.2.30 tun_id 5 lookup 115 proto keepalived"},
		{netif.Rule{IPv6: true, From: p("2001:db8::30/128"), TunID: 1<<40 | 7, Table: 1000, Priority: 123, Protocol: 18}, true,
			"123:\tfrom 2001:db8::30 tun_id 1099511627783 lookup 1000 proto keepalived"},
		{netif.Rule{L3mdev: true, Invert: true, IIf: n.Link, Realms: 3, Priority: 124}, false,
			"124:\tnot from all iif " + n.Link + " lookup [l3mdev-table] realms 3"},
	}
	show := func(v6 bool) string {
		if v6 {
			return strings.Join(ipOut(t, n, "-6", "rule", "show"), "\n")
		}
		return strings.Join(ipOut(t, n, "rule", "show"), "\n")
	}
	for _, tt := range rules {
		for range 2 { // the second add finds it there: not an error
			if err := s.AddRule(tt.r); err != nil {
				t.Fatalf("add %s: %v", tt.r, err)
			}
		}
		if got := show(tt.v6); !strings.Contains(got+"\n", tt.want+"\n") && !strings.Contains(got+"\n", tt.want+" \n") {
			t.Errorf("after adding %s, no line %q in:\n%s", tt.r, tt.want, got)
		}
	}

	// The dump gives back each rule as added.
	var dumped []netif.Rule
	for _, fam := range []int{unix.AF_INET, unix.AF_INET6} {
		rs, err := s.ListRules(fam)
		if err != nil {
			t.Fatal(err)
		}
		dumped = append(dumped, rs...)
	}
	for _, tt := range rules {
		found := false
		for _, d := range dumped {
			found = found || reflect.DeepEqual(d, tt.r)
		}
		if !found {
			t.Errorf("dump lacks %+v; it has:\n%+v", tt.r, dumped)
		}
	}

	// Removing the tunnel-id rule leaves its twin; removing twice is
	// not an error.
	for range 2 {
		if err := s.RemoveRule(tun); err != nil {
			t.Fatal(err)
		}
	}
	got := show(false)
	if strings.Contains(got, "tun_id 5") || !strings.Contains(got, rules[2].want) {
		t.Errorf("after removing %s:\n%s", tun, got)
	}
	for _, tt := range rules {
		if err := s.RemoveRule(tt.r); err != nil {
			t.Fatalf("remove %s: %v", tt.r, err)
		}
	}
	for _, v6 := range []bool{false, true} {
		if got := show(v6); strings.Contains(got, "l3mdev") || strings.Contains(got, "tun_id") || strings.Contains(got, ":\tfrom 192.0.2.30") {
			t.Errorf("rules left after removing all:\n%s", got)
		}
	}
}
