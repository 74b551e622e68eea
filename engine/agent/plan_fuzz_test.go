package agent

import (
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"testing"
	"testing/fstest"

	"github.com/keepwatch/keepwatch/engine/config"
	"github.com/keepwatch/keepwatch/engine/config/kaconf"
	"github.com/keepwatch/keepwatch/engine/vrrp"
)

// fuzzLookup gives every interface an address, except "missing".
func fuzzLookup(ifname string, fam vrrp.Family) (netip.Addr, error) {
	if ifname == "missing" {
		return netip.Addr{}, errors.New("no such interface")
	}
	if fam == vrrp.IPv6 {
		return netip.MustParseAddr("fe80::1"), nil
	}
	return netip.MustParseAddr("192.0.2.1"), nil
}

// FuzzPlan turns any config the loader accepts into the agent's runtime
// plan: it must never panic, every instance is either planned or failed
// with a reason, and planning the same config twice gives the same plan
// (a reload of an unchanged file changes nothing).
func FuzzPlan(f *testing.F) {
	seeds, _ := filepath.Glob("../config/kaconf/testdata/parse/*.conf")
	for _, s := range seeds {
		if b, err := os.ReadFile(s); err == nil {
			f.Add(b)
		}
	}
	f.Add([]byte("vrrp_sync_group G {\n group {\n A\n B\n }\n}\nvrrp_instance A {\n interface eth0\n virtual_router_id 1\n virtual_ipaddress {\n 192.0.2.10/24\n }\n}\n" +
		"vrrp_instance B {\n interface missing\n virtual_router_id 2\n use_vmac\n virtual_ipaddress {\n 2001:db8::1/64\n }\n}\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		fsys := fstest.MapFS{"keepalived.conf": {Data: data}}
		c, ds := kaconf.LoadFS(fsys, "keepalived.conf", kaconf.LoadOptions{Read: kaconf.ReadOptions{ConfigID: "kw", RandomSeed: 1, MaxLines: 1 << 14}})
		if c == nil {
			return
		}
		if ds = append(ds, config.Validate(c, config.ValidateOptions{})...); ds.HasErrors() {
			return
		}
		want, failed := planUnits(c, fuzzLookup)
		planned := 0
		for _, up := range want {
			planned += len(up.plans)
		}
		for name, fl := range failed {
			if fl.reason == "" {
				t.Errorf("instance %s failed without a reason", name)
			}
		}
		if planned+len(failed) != len(c.Instances) {
			t.Errorf("%d planned + %d failed, config has %d instances", planned, len(failed), len(c.Instances))
		}
		again, _ := planUnits(c, fuzzLookup)
		if len(again) != len(want) {
			t.Fatalf("planned %d units, then %d", len(want), len(again))
		}
		for k := range want {
			u := &unit{name: want[k].name}
			for _, p := range want[k].plans {
				u.members = append(u.members, &running{plan: p})
			}
			if !sameIdentity(u, &again[k]) {
				t.Errorf("unit %s: planning twice changed its identity", want[k].name)
			}
			for m, p := range again[k].plans {
				if !equalRouter(want[k].plans[m].router, p.router) || !equalRefs(want[k].plans[m].refs, p.refs) {
					t.Errorf("unit %s: planning twice changed member %d", want[k].name, m)
				}
			}
		}
	})
}
