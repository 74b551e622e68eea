package loader

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/keepwatch/keepwatch/engine/config"
	"github.com/keepwatch/keepwatch/engine/config/configtest"
)

func load(t *testing.T, body string) (*config.Config, config.Diagnostics) {
	t.Helper()
	p := filepath.Join(t.TempDir(), "keepalived.conf")
	if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	return Load(p, Options{})
}

// TestStockConfigRuns: the stock config has errors keepalived tolerates;
// keepwatch reports each with what it does and runs it, as keepalived does,
// unless --strict.
func TestStockConfigRuns(t *testing.T) {
	c, ds := load(t, strings.ReplaceAll(configtest.StockKeepalivedConf, "IFNAME", "veth0"))
	var got []string
	for _, d := range ds {
		got = append(got, d.Report())
	}
	for _, want := range []string{
		"keepalived.conf:13:23: error: vrrp_garp_interval: number '0' outside range [0.000001, 4294.967295] [ignored, default 0 s kept]",
		"keepalived.conf:14:22: error: vrrp_gna_interval: number '0' outside range [0.000001, 4294.967295] [ignored, default 0 s kept]",
		`keepalived.conf:23:5: error: vrrp_instance "VI_1": strict mode does not support authentication - ignoring [ignored]`,
	} {
		found := false
		for _, g := range got {
			found = found || strings.HasSuffix(g, want)
		}
		if !found {
			t.Errorf("no diagnostic ending %q in:\n%s", want, strings.Join(got, "\n"))
		}
	}
	if !ds.HasErrors() || ds.ExitCode() != 5 {
		t.Errorf("check must stay as strict as keepalived -t: errors %v, exit %d", ds.HasErrors(), ds.ExitCode())
	}
	if err := config.Admit(c, ds, nil, false); err != nil {
		t.Fatalf("keepalived runs this config; keepwatch refuses it: %v", err)
	}
	// What runs is what keepalived runs: strict mode drops authentication.
	in := c.Instances[0]
	if in.Auth != nil || in.Priority != 80 || len(in.VIPs) != 1 {
		t.Errorf("instance as run: auth %v, priority %d, VIPs %v", in.Auth, in.Priority, in.VIPs)
	}
	if err := config.Admit(c, ds, nil, true); !errors.Is(err, config.ErrRefused) {
		t.Errorf("strict: got %v, want refused", err)
	}
}

// TestWhatStopsKeepalivedStopsKeepwatch: each of these makes keepalived
// 2.2.7 exit ("permanent error CONFIG") [verified in a namespace]; the rest
// of the file is fine.
func TestWhatStopsKeepalivedStopsKeepwatch(t *testing.T) {
	inst := func(body string) string {
		return "vrrp_instance VI_1 {\n" + body + "\n  virtual_ipaddress {\n    192.0.2.10\n  }\n}\n"
	}
	for name, body := range map[string]string{
		"missing parameter": inst("  interface veth0\n  virtual_router_id 27\n  priority"),
		"no vrid":           inst("  interface veth0"),
		"vrid out of range": inst("  interface veth0\n  virtual_router_id 300"),
		"no interface":      inst("  virtual_router_id 27"),
		"duplicate vrid": inst("  interface veth0\n  virtual_router_id 27") +
			"vrrp_instance VI_2 {\n  interface veth0\n  virtual_router_id 27\n  virtual_ipaddress {\n    192.0.2.11\n  }\n}\n",
		"strict without VIP": "global_defs {\n  vrrp_strict\n}\nvrrp_instance VI_1 {\n  interface veth0\n  virtual_router_id 27\n}\n",
	} {
		t.Run(name, func(t *testing.T) {
			c, ds := load(t, body)
			if !ds.Fatal() {
				t.Errorf("no diagnostic stops the config:\n%s", ds)
			}
			if err := config.Admit(c, ds, nil, false); !errors.Is(err, config.ErrRefused) {
				t.Errorf("Admit: %v, want refused", err)
			}
		})
	}
	// keepalived -t exits 2 where it stops reading; a keyword whose
	// handler checks for its parameter is only ignored [verified 2.2.7].
	_, ds := load(t, inst("  interface veth0\n  virtual_router_id 27\n  priority"))
	if ds.ExitCode() != 2 {
		t.Errorf("missing parameter: exit %d, want 2 as keepalived -t", ds.ExitCode())
	}
	c, ds := load(t, "global_defs {\n  router_id\n}\n"+inst("  interface veth0\n  virtual_router_id 27"))
	if err := config.Admit(c, ds, nil, false); err != nil || ds.ExitCode() != 5 {
		t.Errorf("router_id without a name: %v, exit %d; keepalived ignores the line (exit 5)", err, ds.ExitCode())
	}
}

// TestRecoveryApplied: what keepalived skips or ignores is not in the
// config that runs [each verified against keepalived 2.2.7's log].
func TestRecoveryApplied(t *testing.T) {
	c, ds := load(t, `vrrp_instance VI_1 {
  state FOO
  interface veth0
  virtual_router_id 27
  priority 300
  advert_int abc
  unicast_peer {
    192.0.2.300
    192.0.2.2
    2001:db8::1
  }
  virtual_ipaddress {
    192.0.2.100
    2001:db8::5
    192.0.2.400
  }
}
vrrp_instance VI_1 {
  interface veth0
  virtual_router_id 28
}
vrrp_sync_group G {
  group {
    VI_1 VI_9
  }
}
vrrp_sync_group G2 {
  group {
    VI_1
  }
}
`)
	if err := config.Admit(c, ds, nil, false); err != nil {
		t.Fatalf("Admit: %v\n%s", err, ds)
	}
	if len(c.Instances) != 1 {
		t.Fatalf("%d instances, want the first VI_1 only", len(c.Instances))
	}
	in := c.Instances[0]
	if in.InitialState != "BACKUP" || in.Priority != 100 || in.AdvertInterval.Seconds() != 1 || in.VRID != 27 {
		t.Errorf("defaults not kept: state %s priority %d advert %v vrid %d", in.InitialState, in.Priority, in.AdvertInterval, in.VRID)
	}
	if len(in.VIPs) != 1 || in.VIPs[0].Prefix.String() != "192.0.2.100/32" {
		t.Errorf("VIPs %v, want 192.0.2.100 only", in.VIPs)
	}
	if len(in.UnicastPeers) != 1 || in.UnicastPeers[0].Addr.String() != "192.0.2.2" {
		t.Errorf("peers %v, want 192.0.2.2 only", in.UnicastPeers)
	}
	if len(c.SyncGroups) != 1 || strings.Join(c.SyncGroups[0].Members, ",") != "VI_1" {
		t.Errorf("sync groups %+v, want G with VI_1", c.SyncGroups)
	}
	for _, d := range ds {
		if d.Outcome() == config.Noted && d.Severity >= config.Error {
			t.Errorf("error without an action: %s", d.Report())
		}
		if strings.Contains(d.Message, "VI_1") && d.Keyword != "group" && d.Instance != "VI_1" && !strings.Contains(d.Message, "already defined") {
			t.Errorf("diagnostic not tied to its instance: %s", d.Report())
		}
	}
}

// TestReloadGuard: a reload whose new errors would stop a running instance
// or drop one of its VIPs keeps the old config; errors the running config
// already had, and deliberate edits, never block it.
func TestReloadGuard(t *testing.T) {
	const base = `vrrp_instance VI_1 {
  interface veth0
  virtual_router_id 27
  virtual_ipaddress {
    192.0.2.10
    192.0.2.11
  }
}
vrrp_instance VI_2 {
  interface veth0
  virtual_router_id 28
  OLDERR
  virtual_ipaddress {
    192.0.2.20
  }
}
`
	running, rds := load(t, strings.Replace(base, "OLDERR", "advert_int abc", 1))
	if err := config.Admit(running, rds, nil, false); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name   string
		from   string
		to     string
		reject string // "" accepts; otherwise a part of the error
	}{
		{"unchanged, old error kept", "", "", ""},
		{"old error on moved lines", "vrrp_instance VI_1 {", "\n\nvrrp_instance VI_1 {", ""},
		{"typo in a VIP", "192.0.2.11", "192.0.2.311", "drop 192.0.2.11/32 from vrrp_instance VI_1"},
		{"typo in the block keyword", "vrrp_instance VI_2 {", "vrrp_instance VI_2 x {", "stop vrrp_instance VI_2"},
		{"VIP removed on purpose", "    192.0.2.11\n", "", ""},
		{"instance removed on purpose", "vrrp_instance VI_2 {\n  interface veth0\n  virtual_router_id 28\n  advert_int abc\n  virtual_ipaddress {\n    192.0.2.20\n  }\n}\n", "", ""},
		{"new value error elsewhere", "virtual_router_id 27", "virtual_router_id 27\n  priority 999", ""},
		{"new fatal error", "virtual_router_id 27", "virtual_router_id", "keepalived would stop"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			text := strings.Replace(base, "OLDERR", "advert_int abc", 1)
			if tc.from != "" {
				if !strings.Contains(text, tc.from) {
					t.Fatalf("base lacks %q", tc.from)
				}
				text = strings.Replace(text, tc.from, tc.to, 1)
			}
			next, ds := load(t, text)
			err := config.Admit(next, ds, running, false)
			switch {
			case tc.reject == "" && err != nil:
				t.Errorf("rejected: %v", err)
			case tc.reject != "" && (err == nil || !strings.Contains(err.Error(), tc.reject)):
				t.Errorf("got %v, want rejection naming %q", err, tc.reject)
			}
		})
	}
}

// TestStrictFromYAMLAndEnvironment: agent.strict in a YAML config, or
// KEEPWATCH_AGENT_STRICT, refuses a config with an error that keepwatch
// otherwise runs with the value ignored.
func TestStrictFromYAMLAndEnvironment(t *testing.T) {
	const body = `vrrp_instances:
  - name: VI_1
    interface: veth0
    virtual_router_id: 51
    priority: 300
    virtual_ipaddress: [{address: 192.0.2.10/32}]
`
	dir := t.TempDir()
	write := func(name, text string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	c, ds := Load(write("plain.yaml", body), Options{})
	if err := config.Admit(c, ds, nil, false); err != nil || c.Instances[0].Priority != 100 {
		t.Fatalf("priority 300: %v, priority %d; want admitted with the default 100", err, c.Instances[0].Priority)
	}
	c, ds = Load(write("strict.yaml", "agent:\n  strict: true\n"+body), Options{})
	if err := config.Admit(c, ds, nil, false); !errors.Is(err, config.ErrRefused) {
		t.Errorf("agent.strict: %v, want refused", err)
	}
	t.Setenv("KEEPWATCH_AGENT_STRICT", "true")
	c, ds = Load(write("env.yaml", body), Options{})
	if err := config.Admit(c, ds, nil, false); !errors.Is(err, config.ErrRefused) {
		t.Errorf("KEEPWATCH_AGENT_STRICT: %v, want refused", err)
	}
}

// TestStrictUnicastAsKeepalived227: vrrp_strict with unicast peers draws
// nothing from keepalived 2.2.7 (-t exits 0, it runs unicast) [verified];
// check says nothing either.
func TestStrictUnicastAsKeepalived227(t *testing.T) {
	c, ds := load(t, "global_defs {\n  vrrp_strict\n}\nvrrp_instance VI_1 {\n  interface veth0\n  virtual_router_id 27\n  unicast_peer {\n    192.0.2.9\n  }\n  virtual_ipaddress {\n    192.0.2.100\n  }\n}\n")
	if len(ds) != 0 || ds.ExitCode() != 0 {
		t.Errorf("diagnostics (exit %d):\n%s", ds.ExitCode(), ds)
	}
	if err := config.Admit(c, ds, nil, false); err != nil || len(c.Instances[0].UnicastPeers) != 1 {
		t.Errorf("Admit %v, peers %v", err, c.Instances[0].UnicastPeers)
	}
}
