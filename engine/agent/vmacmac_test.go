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

// TestVMACPrefix: global_defs vmac_prefix replaces "vrrp" in the default
// VMAC name (keepalived 2.2.7, tried: vmac_prefix kwv names it kwv.57); a
// use_vmac name is kept as written.
func TestVMACPrefix(t *testing.T) {
	conf := "global_defs {\n  vmac_prefix kwv\n}\n" +
		"vrrp_instance A {\n  interface eth0\n  virtual_router_id 57\n  use_vmac\n  virtual_ipaddress {\n    192.0.2.10/24\n  }\n}\n" +
		"vrrp_instance B {\n  interface eth0\n  virtual_router_id 58\n  use_vmac named\n  virtual_ipaddress {\n    192.0.2.11/24\n  }\n}\n"
	c, ds := kaconf.LoadFS(fstest.MapFS{"keepalived.conf": {Data: []byte(conf)}}, "keepalived.conf", kaconf.LoadOptions{})
	if c == nil || ds.HasErrors() {
		t.Fatalf("config: %v", ds)
	}
	for i, want := range []string{"kwv.57", "named"} {
		p, err := buildPlan(c, &c.Instances[i], fuzzLookup)
		if err != nil {
			t.Fatal(err)
		}
		if p.vmac == nil || p.vmac.LinkName() != want || p.router.FSM.Interface != want {
			t.Errorf("%s: VMAC %+v (adverts on %s), want %s", c.Instances[i].Name, p.vmac, p.router.FSM.Interface, want)
		}
	}
}
