package ipvs

import (
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/keepwatch/keepwatch/engine/config"
	"github.com/keepwatch/keepwatch/engine/config/kaconf"
)

// sampleDir is where Debian's keepalived package puts its sample configs.
const sampleDir = "/usr/share/doc/keepalived/samples"

func loadConf(t *testing.T, path string) *config.Config {
	t.Helper()
	c, ds := kaconf.Load(path, kaconf.LoadOptions{})
	if c == nil || ds.Worst() == config.Fatal {
		t.Fatalf("%s: %v", path, ds)
	}
	return c
}

func TestFromConfig(t *testing.T) {
	dir := t.TempDir()
	conf := filepath.Join(dir, "keepalived.conf")
	err := os.WriteFile(conf, []byte(`
virtual_server_group web {
  192.0.2.1-3 80
  fwmark 7
}
virtual_server group web {
  lb_algo sh
  lb_kind DR
  protocol TCP
  sh-port
  persistence_timeout 120
  persistence_granularity 255.255.255.0
  quorum 3
  hysteresis 1
  inhibit_on_failure
  alpha
  sorry_server 198.51.100.99 8080
  real_server 198.51.100.1 8080 {
    weight 2
    lvs_method TUN
    uthreshold 100
  }
  real_server 198.51.100.2 8080 {
    inhibit_on_failure off
  }
}
virtual_server 2001:db8::10 53 {
  protocol UDP
  ops
  real_server 2001:db8::1 {
    weight 0
  }
}
`), 0o644)
	if err != nil {
		t.Fatal(err)
	}
	vss, err := FromConfig(loadConf(t, conf))
	if err != nil {
		t.Fatal(err)
	}
	if len(vss) != 2 {
		t.Fatalf("%d virtual servers, want 2", len(vss))
	}
	var keys []string
	for _, s := range vss[0].Services {
		keys = append(keys, s.Key.String())
		if s.Scheduler != SourceHashing || s.Flags != FlagSHPort || s.Timeout != 120*time.Second || s.Granularity != 24 {
			t.Errorf("%s settings %+v", s.Key, s)
		}
	}
	if diff := cmp.Diff([]string{"192.0.2.1:80/tcp", "192.0.2.2:80/tcp", "192.0.2.3:80/tcp", "fwmark:7/ipv4"}, keys); diff != "" {
		t.Errorf("group services (-want +got):\n%s", diff)
	}
	wantPool := Pool{Quorum: 3, Hysteresis: 1, Alpha: true,
		Sorry: &Destination{Addr: netip.MustParseAddr("198.51.100.99"), Port: 8080, Weight: 1, Forward: DR}}
	if diff := cmp.Diff(wantPool, vss[0].Pool, cmpopts.EquateComparable(netip.Addr{})); diff != "" {
		t.Errorf("pool (-want +got):\n%s", diff)
	}
	wantRS := []RealServer{
		{Destination: Destination{Addr: netip.MustParseAddr("198.51.100.1"), Port: 8080, Weight: 2, Forward: Tunnel, UpperThreshold: 100}, Inhibit: true},
		{Destination: Destination{Addr: netip.MustParseAddr("198.51.100.2"), Port: 8080, Weight: 1, Forward: DR}, Inhibit: false},
	}
	if diff := cmp.Diff(wantRS, vss[0].Servers, cmpopts.EquateComparable(netip.Addr{})); diff != "" {
		t.Errorf("real servers (-want +got):\n%s", diff)
	}
	// alpha: nothing checked yet, so only the inhibited server, at 0, and
	// the sorry server (quorum 3 is not met).
	svcs, res := vss[0].Desired(QuorumUnknown)
	if got := summary(svcs[0].Destinations); !cmp.Equal(got, []string{"198.51.100.1:8080=0", "198.51.100.99:8080=1"}) || !res.SorryActive {
		t.Errorf("desired under alpha = %v (sorry %v)", got, res.SorryActive)
	}

	v6 := vss[1]
	if v6.Services[0].Key != AddrKey(netip.MustParseAddr("2001:db8::10"), 53, UDP) || v6.Services[0].Flags != FlagOnePacket ||
		v6.Services[0].Scheduler != WeightedLeastConnection {
		t.Errorf("IPv6 service %+v", v6.Services[0])
	}
	if d := v6.Servers[0].Destination; d.Port != 53 || d.Weight != 0 || d.Forward != NAT {
		t.Errorf("real server without port %+v: want the service's port, weight 0, NAT", d)
	}
}

// TestFromConfigSamples maps every keepalived sample config that has
// virtual servers: each must map, and each desired table must be one the
// kernel would accept.
func TestFromConfigSamples(t *testing.T) {
	samples := sampleConfigs(t)
	for _, path := range samples {
		t.Run(filepath.Base(path), func(t *testing.T) {
			vss, err := FromConfig(loadConf(t, path))
			if err != nil {
				t.Fatal(err)
			}
			if len(vss) == 0 {
				t.Fatal("no virtual servers")
			}
			var all []Service
			for i := range vss {
				svcs, _ := vss[i].Desired(QuorumUnknown)
				all = append(all, svcs...)
			}
			if _, err := own(all); err != nil {
				t.Error(err)
			}
		})
	}
}

func sampleConfigs(tb testing.TB) []string {
	tb.Helper()
	paths, _ := filepath.Glob(filepath.Join(sampleDir, "keepalived.conf.*"))
	var out []string
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err == nil && strings.Contains(string(b), "virtual_server") {
			out = append(out, p)
		}
	}
	if len(out) == 0 {
		tb.Fatalf("no keepalived sample configs with virtual servers in %s (install keepalived)", sampleDir)
	}
	return out
}
