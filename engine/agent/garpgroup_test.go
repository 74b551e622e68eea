package agent

import (
	"testing"
	"testing/fstest"
	"time"

	"github.com/keepwatch/keepwatch/engine/config/kaconf"
)

// TestGarpGroupSpacing: a garp_group gives the instances on its interfaces
// its own garp_interval / gna_interval, replacing the global
// vrrp_garp_interval / vrrp_gna_interval there; other interfaces keep the
// global one. keepalived 2.2.7, tried (tcpdump on the peer): with
// vrrp_garp_interval 0.05 and a garp_group of garp_interval 0.4 on the
// interface, successive gratuitous ARPs came 0.40 s apart.
func TestGarpGroupSpacing(t *testing.T) {
	conf := `global_defs {
  vrrp_garp_interval 0.05
  vrrp_gna_interval 0.06
}
garp_group {
  garp_interval 0.4
  gna_interval 0.3
  interfaces {
    eth0
    eth2
  }
}
vrrp_instance A {
  interface eth0
  virtual_router_id 1
  virtual_ipaddress {
    192.0.2.10/24
  }
}
vrrp_instance A6 {
  interface eth0
  virtual_router_id 2
  virtual_ipaddress {
    2001:db8::10/64
  }
}
vrrp_instance B {
  interface eth1
  virtual_router_id 3
  virtual_ipaddress {
    198.51.100.10/24
  }
}
`
	c, ds := kaconf.LoadFS(fstest.MapFS{"keepalived.conf": {Data: []byte(conf)}}, "keepalived.conf", kaconf.LoadOptions{})
	if c == nil || ds.HasErrors() {
		t.Fatalf("config: %v", ds)
	}
	if len(c.GarpGroups) != 1 {
		t.Fatalf("garp groups %+v", c.GarpGroups)
	}
	want := map[string]time.Duration{"A": 400 * time.Millisecond, "A6": 300 * time.Millisecond, "B": 50 * time.Millisecond}
	for i := range c.Instances {
		in := &c.Instances[i]
		p, err := buildPlan(c, in, fuzzLookup)
		if err != nil {
			t.Fatal(err)
		}
		if got := p.router.GarpSpacing; got != want[in.Name] {
			t.Errorf("%s: gratuitous spacing %v, want %v", in.Name, got, want[in.Name])
		}
	}
}
