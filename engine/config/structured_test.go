package config

import (
	"bytes"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

func TestLoadStructuredYAML(t *testing.T) {
	c, ds := LoadStructured("testdata/basic.yaml", ValidateOptions{})
	// /usr/bin/pgrep exists, and the file does not enable script security:
	// keepalived's SECURITY VIOLATION is expected, nothing else.
	ds = slices.DeleteFunc(ds, func(d Diagnostic) bool { return d.Keyword == "enable_script_security" })
	if ds.HasErrors() || len(ds) != 0 {
		t.Fatalf("diagnostics:\n%s", ds)
	}
	in := c.Instances[0]
	if in.AdvertInterval != 100*time.Millisecond || in.Priority != 150 || in.VRID != 51 {
		t.Errorf("instance = %+v", in)
	}
	if got, want := in.VIPs[1].Prefix, netip.MustParsePrefix("192.0.2.101/32"); got != want {
		t.Errorf("bare VIP = %v, want %v", got, want)
	}
	vs := c.VirtualServers[0]
	if vs.RealServers[0].Weight != DefaultWeight || vs.RealServers[1].Weight != 0 {
		t.Errorf("weights = %d, %d; want default 1 and explicit 0", vs.RealServers[0].Weight, vs.RealServers[1].Weight)
	}
	if vs.DelayLoop != 6*time.Second || vs.Scheduler != "rr" || vs.Method != "NAT" {
		t.Errorf("virtual server = %+v", vs)
	}
	if got := vs.RealServers[1].Checkers[0].ConnectTimeout; got != 3*time.Second {
		t.Errorf("connect_timeout = %v", got)
	}
	if got := c.Scripts[0].Args; !cmp.Equal(got, []string{"/usr/bin/pgrep", "haproxy"}) {
		t.Errorf("script args = %q", got)
	}
}

// TestYAMLRoundTrip: writing the model as YAML and loading it back gives the same model.
func TestYAMLRoundTrip(t *testing.T) {
	c, ds := LoadStructured("testdata/basic.yaml", ValidateOptions{})
	if ds.HasErrors() {
		t.Fatal(ds)
	}
	var buf bytes.Buffer
	if err := WriteYAML(&buf, c); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "out.yaml")
	if err := os.WriteFile(p, buf.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	c2, ds := LoadStructured(p, ValidateOptions{})
	if ds.HasErrors() {
		t.Fatalf("reloading:\n%s\n%s", ds, buf.String())
	}
	if d := cmp.Diff(c, c2, cmpopts.EquateComparable(netip.Addr{}, netip.Prefix{}), cmpopts.IgnoreTypes(Pos{}), cmpopts.IgnoreFields(Config{}, "Source"), cmpopts.EquateEmpty()); d != "" {
		t.Errorf("round trip (-want +got):\n%s\nYAML:\n%s", d, buf.String())
	}
	if strings.Contains(buf.String(), "100000000") {
		t.Errorf("durations must print as Go durations:\n%s", buf.String())
	}
}

func TestLoadStructuredEnvOverride(t *testing.T) {
	t.Setenv("KEEPWATCH_AGENT_LISTEN_ADDRESS", "127.0.0.1:1234")
	c, ds := LoadStructured("testdata/basic.yaml", ValidateOptions{})
	if ds.HasErrors() {
		t.Fatal(ds)
	}
	if c.Agent.ListenAddress != "127.0.0.1:1234" {
		t.Errorf("listen_address = %q, want the environment's", c.Agent.ListenAddress)
	}
}

func TestLoadStructuredErrors(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		name, body, want string
	}{
		{"bad.yaml", "vrrp_instances:\n  - name: A\n    interface: eth0\n    virtual_router_id: 300\n    advert_int: 1\n    virtual_ipaddress: [{address: 192.0.2.1}]\n",
			`bad.yaml: error: vrrp_instance "A": virtual_router_id 300 is invalid: must be 1 to 255`},
		{"addr.yaml", "vrrp_instances:\n  - name: A\n    interface: eth0\n    virtual_router_id: 3\n    virtual_ipaddress: [{address: 192.0.2.300}]\n",
			`addr.yaml: error:`},
		{"unknown.yaml", "global_defs:\n  router_idd: x\n",
			`unknown.yaml: warning: unknown keyword "global_defs.router_idd" - ignoring`},
		{"broken.json", "{", `broken.json: fatal: cannot read config`},
	} {
		p := filepath.Join(dir, tc.name)
		if err := os.WriteFile(p, []byte(tc.body), 0o600); err != nil {
			t.Fatal(err)
		}
		_, ds := LoadStructured(p, ValidateOptions{})
		got := strings.ReplaceAll(ds.String(), dir+"/", "")
		if !strings.Contains(got, tc.want) {
			t.Errorf("%s: diagnostics\n%s\nwant a line containing %q", tc.name, got, tc.want)
		}
	}
}

func TestSplitCommand(t *testing.T) {
	for in, want := range map[string][]string{
		`/bin/check`:                 {"/bin/check"},
		`/bin/check "arg 1" 'x y' z`: {"/bin/check", "arg 1", "x y", "z"},
		`  /bin/a   b  `:             {"/bin/a", "b"},
		`/bin/a ab"c d"e`:            {"/bin/a", "abc de"},
		``:                           nil,
	} {
		if got := SplitCommand(in); !cmp.Equal(got, want, cmpopts.EquateEmpty()) {
			t.Errorf("SplitCommand(%q) = %q, want %q", in, got, want)
		}
	}
}
