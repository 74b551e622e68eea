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

// adapt rewrites a sample config's addresses into documentation ranges the
// VM has routes for: virtual addresses into 192.0.2.0/24 and
// 2001:db8:0:1::/64, real and sorry servers into 198.51.100.0/24 and
// 2001:db8:0:2::/64, each distinct address to its own, ranges kept as long.
func adapt(c *config.Config) {
	vips, rips := map[netip.Addr]netip.Addr{}, map[netip.Addr]netip.Addr{}
	next := map[string]netip.Addr{
		"vip4": netip.MustParseAddr("192.0.2.20"), "vip6": netip.MustParseAddr("2001:db8:0:1::20"),
		"rip4": netip.MustParseAddr("198.51.100.20"), "rip6": netip.MustParseAddr("2001:db8:0:2::20"),
	}
	take := func(m map[netip.Addr]netip.Addr, kind string, a netip.Addr, span int) netip.Addr {
		if !a.IsValid() {
			return a
		}
		if b, ok := m[a]; ok {
			return b
		}
		fam := "4"
		if a.Unmap().Is6() {
			fam = "6"
		}
		b := next[kind+fam]
		n := b
		for range span + 1 {
			n = n.Next()
		}
		next[kind+fam] = n
		m[a] = b
		return b
	}
	for gi := range c.VSGroups {
		for ei := range c.VSGroups[gi].Entries {
			e := &c.VSGroups[gi].Entries[ei]
			if !e.First.IsValid() {
				continue
			}
			span := 0
			if e.Last.IsValid() && e.First.Is4() && e.Last.Is4() {
				span = int(e.Last.As4()[3]) - int(e.First.As4()[3])
			}
			e.First = take(vips, "vip", e.First, span)
			e.Last = e.First
			for range span {
				e.Last = e.Last.Next()
			}
		}
	}
	for i := range c.VirtualServers {
		vs := &c.VirtualServers[i]
		vs.Addr = take(vips, "vip", vs.Addr, 0)
		if vs.SorryServer != nil {
			vs.SorryServer.Addr = take(rips, "rip", vs.SorryServer.Addr, 0)
		}
		for j := range vs.RealServers {
			vs.RealServers[j].Addr = take(rips, "rip", vs.RealServers[j].Addr, 0)
		}
	}
}

// sampleTable is the whole desired table of a sample config, adapted, with
// every real server's checks passing.
func sampleTable(tb testing.TB, c *config.Config) []Service {
	adapt(c)
	vss, err := FromConfig(c)
	if err != nil {
		tb.Fatal(err)
	}
	var all []Service
	for i := range vss {
		for j := range vss[i].Servers {
			vss[i].Servers[j].Checked, vss[i].Servers[j].Up = true, true
		}
		svcs, _ := vss[i].Desired(QuorumUnknown)
		all = append(all, svcs...)
	}
	return all
}

func TestAdaptSamples(t *testing.T) {
	doc := []netip.Prefix{netip.MustParsePrefix("192.0.2.0/24"), netip.MustParsePrefix("198.51.100.0/24"), netip.MustParsePrefix("2001:db8::/32")}
	inDoc := func(a netip.Addr) bool {
		for _, p := range doc {
			if p.Contains(a) {
				return true
			}
		}
		return false
	}
	for _, path := range sampleConfigs(t) {
		for _, s := range sampleTable(t, loadConf(t, path)) {
			if s.FWMark == 0 && !inDoc(s.Addr) {
				t.Errorf("%s: service %s outside documentation ranges", filepath.Base(path), s.Key)
			}
			for _, d := range s.Destinations {
				if !inDoc(d.Addr) {
					t.Errorf("%s: destination %s outside documentation ranges", filepath.Base(path), d.AddrPort())
				}
			}
		}
	}
}
