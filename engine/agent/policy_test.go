package agent_test

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/keepwatch/keepwatch/engine/vrrp"
)

// static_ipaddress, static_routes and static_rules are installed when the
// agent starts whatever its instances' states, changed by difference on a
// reload (an entry still configured is never removed), and removed at shutdown after the instances resigned, as keepalived's
// VRRP process does (checked against it by cmd/keepwatch's
// TestPolicyRoutingLikeKeepalived).
func TestStaticEntries(t *testing.T) {
	t.Parallel()
	static := func(rules ...string) raw {
		return raw(`static_ipaddress {
	192.0.2.50/32 dev eth1
}
static_routes {
	198.51.100.0/24 dev eth1 table 100
}
static_rules {
` + strings.Join(rules, "\n") + `
}
`)
	}
	n := master(t, vi1, static("from 192.0.2.50 table 100 priority 100", "from 192.0.2.51 table 101 priority 101"))
	n.waitState("VI_1", vrrp.StateMaster)
	log := n.plat.Log()
	for _, want := range []string{"add 192.0.2.50/32 eth1", "route add 198.51.100.0/24 dev eth1 table 100 scope global proto 18",
		"rule add from 192.0.2.50/32 priority 100 table 100", "rule add from 192.0.2.51/32 priority 101 table 101"} {
		if !slices.ContainsFunc(log, func(s string) bool { return strings.HasPrefix(s, want) }) {
			t.Errorf("no %q at start in\n%s", want, strings.Join(log, "\n"))
		}
	}

	if err := n.reload(conf(vi1, static("from 192.0.2.50 table 100 priority 100", "from 192.0.2.52 table 102 priority 102"))); err != nil {
		t.Fatal(err)
	}
	n.waitFor(2*time.Second, "the reload's rule", func() bool {
		return len(n.plat.Grep("rule add from 192.0.2.52/32")) > 0
	})
	if got := n.plat.Grep("rule remove "); len(got) != 1 || !strings.HasPrefix(got[0], "rule remove from 192.0.2.51/32") {
		t.Errorf("reload removed %v; want only the rule no longer configured", got)
	}
	if got := n.plat.Grep("route remove "); len(got) != 0 {
		t.Errorf("reload removed a kept route: %v", got)
	}

	n.shutdown()
	log = n.plat.Log()
	idx := func(prefix string) int {
		return slices.IndexFunc(log, func(s string) bool { return strings.HasPrefix(s, prefix) })
	}
	resign, rule, route, addr := idx("advert eth0 vrid 51 prio 0"), idx("rule remove from 192.0.2.52/32"), idx("route remove 198.51.100.0/24"), idx("remove 192.0.2.50/32 eth1")
	if resign < 0 || rule < resign || route < rule || addr < route {
		t.Errorf("shutdown: resign %d, rule %d, route %d, address %d: want them in that order in\n%s", resign, rule, route, addr, strings.Join(log, "\n"))
	}
}
