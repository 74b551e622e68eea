package netif_test

import (
	"net/netip"
	"os/exec"
	"strings"
	"testing"

	"github.com/keepwatch/keepwatch/engine/netif"
	"github.com/keepwatch/keepwatch/engine/netif/nskit"
	"github.com/keepwatch/keepwatch/engine/netif/nskit/nskittest"
)

// ipOut runs `ip -n NS args...` and returns its output lines.
func ipOut(t *testing.T, n *nskit.Node, args ...string) []string {
	t.Helper()
	out, err := exec.Command("ip", append([]string{"-n", n.NS}, args...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("ip %s: %v: %s", strings.Join(args, " "), err, out)
	}
	return strings.Split(strings.TrimSpace(string(out)), "\n")
}

// line returns the one line of lines containing key ("" if none).
func line(lines []string, key string) string {
	for _, l := range lines {
		if strings.Contains(l, key) {
			return l
		}
	}
	return ""
}

func openSystem(t *testing.T, n *nskit.Node) *netif.System {
	t.Helper()
	s, err := netif.OpenAt(n.NsHandle())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}

func TestAddresses(t *testing.T) {
	t.Parallel()
	l := nskittest.New(t, "addr", 1)
	n := l.Node(1)
	s := openSystem(t, n)
	dev := n.Link
	p := netip.MustParsePrefix

	tests := []struct {
		addr netif.Address
		key  string   // what identifies its line in `ip -o addr`
		want []string // words that must be on that line
		not  []string // words that must not
	}{
		{netif.Address{Prefix: p("192.0.2.100/32"), Dev: dev},
			"inet 192.0.2.100/32", []string{"scope global"}, []string{"brd"}},
		{netif.Address{Prefix: p("192.0.2.101/24"), Dev: dev, BroadcastAuto: true, Label: dev + ":vip"},
			"inet 192.0.2.101/24", []string{"brd 192.0.2.255", dev + ":vip"}, nil},
		// Another subnet: the kernel refuses a secondary address (in the
		// node's own 192.0.2.0/24) whose scope differs from the primary's.
		{netif.Address{Prefix: p("198.51.100.102/24"), Dev: dev, Broadcast: netip.MustParseAddr("198.51.100.127"), Scope: netif.ScopeLink},
			"inet 198.51.100.102/24", []string{"brd 198.51.100.127", "scope link"}, nil},
		{netif.Address{Prefix: p("192.0.2.103/32"), Dev: dev, Peer: p("192.0.2.104/32"), Scope: netif.ScopeHost},
			"inet 192.0.2.103 ", []string{"peer 192.0.2.104/32", "scope host"}, nil},
		{netif.Address{Prefix: p("192.0.2.105/32"), Dev: dev, HasPreferredLft: true, PreferredLft: 0},
			"inet 192.0.2.105/32", []string{"valid_lft forever", "deprecated"}, nil},
		{netif.Address{Prefix: p("2001:db8::100/64"), Dev: dev, NoDAD: true, NoPrefixRoute: true},
			"inet6 2001:db8::100/64", []string{"nodad", "noprefixroute"}, nil},
		{netif.Address{Prefix: p("2001:db8::101/64"), Dev: dev, NoDAD: true, Home: true, MngTmpAddr: true, HasPreferredLft: true, PreferredLft: 300},
			"inet6 2001:db8::101/64", []string{"home", "mngtmpaddr", "preferred_lft 300sec"}, nil},
		{netif.Address{Prefix: p("2001:db8::102/128"), Dev: dev},
			"inet6 2001:db8::102/128", []string{"scope global"}, []string{"nodad", "noprefixroute"}},
	}
	for _, tt := range tests {
		t.Run(tt.addr.String(), func(t *testing.T) {
			for range 2 { // the second add finds it present: no error
				if err := s.AddAddress(tt.addr); err != nil {
					t.Fatal(err)
				}
			}
			got := line(ipOut(t, n, "-o", "addr", "show", "dev", dev), tt.key)
			if got == "" {
				t.Fatalf("no %q in ip addr", tt.key)
			}
			for _, w := range tt.want {
				if !strings.Contains(got, w) {
					t.Errorf("ip addr line %q lacks %q", got, w)
				}
			}
			for _, w := range tt.not {
				if strings.Contains(got, w) {
					t.Errorf("ip addr line %q has %q", got, w)
				}
			}
			if ok, err := s.HasAddress(tt.addr); err != nil || !ok {
				t.Errorf("HasAddress = %t, %v", ok, err)
			}
			for range 2 { // the second remove finds it gone: no error
				if err := s.RemoveAddress(tt.addr); err != nil {
					t.Fatal(err)
				}
			}
			if got := line(ipOut(t, n, "-o", "addr", "show", "dev", dev), tt.key); got != "" {
				t.Errorf("still present after remove: %q", got)
			}
		})
	}

	t.Run("errors", func(t *testing.T) {
		if err := s.AddAddress(netif.Address{Prefix: p("192.0.2.120/32"), Dev: "kwnosuchif0"}); err == nil {
			t.Error("add on a missing interface succeeded")
		}
		if err := s.RemoveAddress(netif.Address{Prefix: p("192.0.2.120/32"), Dev: "kwnosuchif0"}); err != nil {
			t.Errorf("remove on a missing interface: %v", err)
		}
		if err := s.AddAddress(netif.Address{Prefix: p("192.0.2.120/32"), Dev: dev, Label: "other"}); err == nil {
			t.Error("label not starting with the interface name accepted")
		}
	})

	t.Run("stale", func(t *testing.T) {
		for _, a := range []string{"192.0.2.110/24", "192.0.2.111/32", "2001:db8::110/64"} {
			if err := s.AddAddress(netif.Address{Prefix: p(a), Dev: dev, NoDAD: true}); err != nil {
				t.Fatal(err)
			}
		}
		want := []netif.Address{
			{Prefix: p("192.0.2.110/32"), Dev: dev}, // present with another mask: stale all the same
			{Prefix: p("192.0.2.112/32"), Dev: dev}, // absent
			{Prefix: p("2001:db8::110/64"), Dev: dev},
			{Prefix: p("192.0.2.113/32"), Dev: "kwnosuchif0"},
		}
		removed, err := s.RemoveStale(want)
		if err != nil {
			t.Fatal(err)
		}
		if len(removed) != 2 || removed[0] != want[0] || removed[1] != want[2] {
			t.Fatalf("removed %v, want %v and %v", removed, want[0], want[2])
		}
		lines := ipOut(t, n, "-o", "addr", "show", "dev", dev)
		if line(lines, "192.0.2.110/") != "" || line(lines, "2001:db8::110/") != "" {
			t.Errorf("stale VIPs still present:\n%s", strings.Join(lines, "\n"))
		}
		if line(lines, "192.0.2.111/32") == "" {
			t.Errorf("an address the config does not name was removed")
		}
	})
}

func TestRoutesAndRules(t *testing.T) {
	t.Parallel()
	l := nskittest.New(t, "route", 1)
	n := l.Node(1)
	s := openSystem(t, n)
	dev := n.Link
	p := netip.MustParsePrefix
	a := netip.MustParseAddr

	routes := []struct {
		r     netif.Route
		show  []string // `ip route show` arguments
		key   string
		wants []string
	}{
		{netif.Route{Dst: p("198.51.100.0/24"), Dev: dev, Src: a("192.0.2.1")},
			[]string{"route", "show"}, "198.51.100.0/24", []string{"dev " + dev, "scope link", "src 192.0.2.1"}},
		{netif.Route{Dst: p("203.0.113.0/24"), Via: a("192.0.2.254"), Table: 100, Metric: 5},
			[]string{"route", "show", "table", "100"}, "203.0.113.0/24", []string{"via 192.0.2.254", "metric 5"}},
		{netif.Route{Dst: p("0.0.0.0/0"), Via: a("192.0.2.254"), Dev: dev, Table: 101},
			[]string{"route", "show", "table", "101"}, "default", []string{"via 192.0.2.254", "dev " + dev}},
		{netif.Route{Type: netif.RouteBlackhole, Dst: p("198.51.100.128/25")},
			[]string{"route", "show"}, "198.51.100.128/25", []string{"blackhole"}},
		{netif.Route{Type: netif.RouteUnreachable, Dst: p("203.0.113.128/25"), Table: 102},
			[]string{"route", "show", "table", "102"}, "203.0.113.128/25", []string{"unreachable"}},
		{netif.Route{Dst: p("2001:db8:1::/48"), Via: a("2001:db8::fe"), Dev: dev, Metric: 10},
			[]string{"-6", "route", "show"}, "2001:db8:1::/48", []string{"via 2001:db8::fe", "metric 10"}},
		{netif.Route{Dst: p("2001:db8:2::/48"), Dev: dev, Table: 100},
			[]string{"-6", "route", "show", "table", "100"}, "2001:db8:2::/48", []string{"dev " + dev}},
	}
	for _, tt := range routes {
		t.Run("route "+tt.r.String(), func(t *testing.T) {
			for range 2 {
				if err := s.AddRoute(tt.r); err != nil {
					t.Fatal(err)
				}
			}
			got := line(ipOut(t, n, tt.show...), tt.key)
			if got == "" {
				t.Fatalf("route %q not in ip %v", tt.key, tt.show)
			}
			for _, w := range tt.wants {
				if !strings.Contains(got, w) {
					t.Errorf("route line %q lacks %q", got, w)
				}
			}
			for range 2 {
				if err := s.RemoveRoute(tt.r); err != nil {
					t.Fatal(err)
				}
			}
			if got := line(ipOut(t, n, tt.show...), tt.key); got != "" {
				t.Errorf("route still there after remove: %q", got)
			}
		})
	}

	rules := []struct {
		r    netif.Rule
		v6   bool
		want string
	}{
		{netif.Rule{From: p("192.0.2.100/32"), Table: 100, Priority: 1000}, false, "1000:\tfrom 192.0.2.100 lookup 100"},
		{netif.Rule{To: p("198.51.100.0/24"), FwMark: 0x10, FwMask: 0xff, Table: 101, Priority: 1001}, false, "1001:\tfrom all to 198.51.100.0/24 fwmark 0x10/0xff lookup 101"},
		{netif.Rule{From: p("2001:db8::100/128"), Table: 100, Priority: 1002}, true, "1002:\tfrom 2001:db8::100 lookup 100"},
		{netif.Rule{IPv6: true, FwMark: 7, Table: 102, Priority: 1003}, true, "1003:\tfrom all fwmark 0x7 lookup 102"},
	}
	for _, tt := range rules {
		t.Run("rule "+tt.r.String(), func(t *testing.T) {
			show := []string{"rule", "show"}
			if tt.v6 {
				show = []string{"-6", "rule", "show"}
			}
			for range 2 {
				if err := s.AddRule(tt.r); err != nil {
					t.Fatal(err)
				}
			}
			if got := line(ipOut(t, n, show...), tt.want); got != tt.want {
				t.Fatalf("no rule %q in:\n%s", tt.want, strings.Join(ipOut(t, n, show...), "\n"))
			}
			for range 2 {
				if err := s.RemoveRule(tt.r); err != nil {
					t.Fatal(err)
				}
			}
			if got := line(ipOut(t, n, show...), tt.want); got != "" {
				t.Errorf("rule still there after remove: %q", got)
			}
		})
	}
}
