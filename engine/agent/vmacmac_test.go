package agent

import (
	"strings"
	"testing"
	"testing/fstest"

	"github.com/keepwatch/keepwatch/engine/config/kaconf"
)

// TestUseVMACExplicitMAC: `use_vmac NAME MAC` creates the VMAC with that
// MAC (keepalived 2.2.7, tried); one that is not an Ethernet address
// (kaconf rejects it, a YAML config could carry it) fails the instance
// with the keyword and value named.
func TestUseVMACExplicitMAC(t *testing.T) {
	plan := func(args string, mac ...string) (*plan, error) {
		t.Helper()
		conf := "vrrp_instance A {\n  interface eth0\n  virtual_router_id 56\n  use_vmac " + args +
			"\n  virtual_ipaddress {\n    192.0.2.10/24\n  }\n}\n"
		c, ds := kaconf.LoadFS(fstest.MapFS{"keepalived.conf": {Data: []byte(conf)}}, "keepalived.conf", kaconf.LoadOptions{})
		if c == nil || ds.HasErrors() {
			t.Fatalf("config %q: %v", args, ds)
		}
		if len(mac) > 0 {
			c.Instances[0].VMAC.MAC = mac[0]
		}
		return buildPlan(c, &c.Instances[0], fuzzLookup)
	}
	p, err := plan("vrrp.56 02:11:22:33:44:55")
	if err != nil {
		t.Fatal(err)
	}
	if p.vmac == nil || p.vmac.LinkName() != "vrrp.56" || p.vmac.MAC().String() != "02:11:22:33:44:55" {
		t.Fatalf("VMAC %+v", p.vmac)
	}
	p, err = plan("vrrp.56")
	if err != nil || p.vmac.MAC().String() != "00:00:5e:00:01:38" {
		t.Fatalf("VMAC without a MAC: %+v %v, want the virtual router MAC", p.vmac, err)
	}
	if _, err := plan("vrrp.56", "02:11:22:33:44"); err == nil || !strings.Contains(err.Error(), "use_vmac MAC") {
		t.Errorf("short MAC: err %v, want a use_vmac MAC error", err)
	}
}
