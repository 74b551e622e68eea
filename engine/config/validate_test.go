package config

import (
	"net/netip"
	"strings"
	"testing"
	"time"
)

func vip(s string) Address { return Address{Prefix: netip.MustParsePrefix(s)} }

func baseInstance(name string, vrid int) Instance {
	return Instance{Name: name, Interface: "eth0", VRID: vrid, Priority: 100,
		AdvertInterval: time.Second, VIPs: []Address{vip("192.0.2.10/32")}}
}

func TestValidate(t *testing.T) {
	for _, tc := range []struct {
		name   string
		mutate func(c *Config)
		want   []string // each must appear, in order, as a whole diagnostic line
		code   int
	}{
		{"clean", func(c *Config) {}, nil, 0},
		{"vrid range", func(c *Config) { c.Instances[0].VRID = 0 },
			[]string{`error: vrrp_instance "A": virtual_router_id 0 is invalid: must be 1 to 255`}, 5},
		{"priority range", func(c *Config) { c.Instances[0].Priority = 256 },
			[]string{`error: vrrp_instance "A": priority 256 is invalid: must be 1 to 255`}, 5},
		{"v2 fractional advert_int", func(c *Config) { c.Instances[0].AdvertInterval = 1500 * time.Millisecond },
			[]string{`error: vrrp_instance "A": advert_int 1.5 is invalid for VRRPv2: must be whole seconds from 1 to 255`}, 5},
		{"v3 advert_int ok at 0.05", func(c *Config) {
			c.Instances[0].Version = 3
			c.Instances[0].AdvertInterval = 50 * time.Millisecond
		}, nil, 0},
		{"v3 advert_int too long", func(c *Config) {
			c.Instances[0].Version = 3
			c.Instances[0].AdvertInterval = 41 * time.Second
		}, []string{`error: vrrp_instance "A": advert_int 41 is invalid for VRRPv3: must be from 0.01 to 40.95 seconds`}, 5},
		{"mixed families", func(c *Config) { c.Instances[0].VIPs = append(c.Instances[0].VIPs, vip("2001:db8::1/128")) },
			[]string{`error: vrrp_instance "A": address 2001:db8::1 is not of the instance's family (the first VIP decides): use virtual_ipaddress_excluded for the other family`}, 5},
		{"nopreempt with MASTER", func(c *Config) {
			c.Instances[0].NoPreempt = true
			c.Instances[0].InitialState = "MASTER"
		}, []string{`warning: vrrp_instance "A": nopreempt will not work with initial state MASTER - clearing`}, 5},
		{"preempt_delay range", func(c *Config) { c.Instances[0].PreemptDelay = 1001 * time.Second },
			[]string{`error: vrrp_instance "A": preempt_delay 1001 is invalid: must be 0 to 1000 seconds`}, 5},
		{"duplicate vrid", func(c *Config) { c.Instances = append(c.Instances, baseInstance("B", 51)) },
			[]string{`error: vrrp_instance "B": VRID 51 is already used by vrrp_instance "A" on interface eth0 for the same family`}, 5},
		{"same vrid other family", func(c *Config) {
			b := baseInstance("B", 51)
			b.VIPs = []Address{vip("2001:db8::10/128")}
			c.Instances = append(c.Instances, b)
		}, nil, 0},
		{"track_script undefined", func(c *Config) { c.Instances[0].TrackScripts = []TrackRef{{Name: "chk"}} },
			[]string{`warning: vrrp_instance "A": track_script "chk" is not defined by any vrrp_script - ignoring`}, 5},
		{"interface missing", func(c *Config) { c.Instances[0].Interface = "nosuch0" },
			[]string{`warning: interface nosuch0 for vrrp_instance A doesn't exist`}, 5},
		{"real server weight", func(c *Config) {
			c.VirtualServers = []VirtualServer{{Addr: netip.MustParseAddr("192.0.2.10"), Port: 80,
				RealServers: []RealServer{{Addr: netip.MustParseAddr("198.51.100.1"), Port: 80, Weight: -1}}}}
		}, []string{`error: real_server 198.51.100.1: weight -1 is invalid: must be 0 to 65535`}, 5},
		{"HTTP_GET without url", func(c *Config) {
			c.VirtualServers = []VirtualServer{{Addr: netip.MustParseAddr("192.0.2.10"), Port: 80,
				RealServers: []RealServer{{Addr: netip.MustParseAddr("198.51.100.1"), Port: 80, Weight: 1,
					Checkers: []Checker{{Type: HTTPGet}}}}}}
		}, []string{`error: HTTP_GET has no url`}, 5},
		{"strict with auth", func(c *Config) {
			c.Global.Strict = true
			c.Instances[0].Auth = &Auth{Type: "PASS", Pass: "x"}
		}, []string{`error: vrrp_instance "A": strict mode does not support authentication - ignoring`}, 5},
		{"auth AH", func(c *Config) { c.Instances[0].Auth = &Auth{Type: "AH", Pass: "x"} }, nil, 0},
		{"auth AH with state MASTER", func(c *Config) {
			c.Instances[0].Auth = &Auth{Type: "AH", Pass: "x"}
			c.Instances[0].InitialState = "MASTER"
		}, []string{`warning: vrrp_instance "A": initial state master is incompatible with AH authentication - clearing`}, 5},
		{"auth AH with state MASTER, owner", func(c *Config) {
			c.Instances[0].Auth = &Auth{Type: "AH", Pass: "x"}
			c.Instances[0].InitialState, c.Instances[0].Priority = "MASTER", 255
		}, nil, 0},
		{"sync group unknown member", func(c *Config) { c.SyncGroups = []SyncGroup{{Name: "G", Members: []string{"A", "Z"}}} },
			[]string{`warning: vrrp_sync_group "G": virtual router Z specified but not found - removing`}, 5},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := &Config{Instances: []Instance{baseInstance("A", 51)}}
			tc.mutate(c)
			ds := Validate(c, ValidateOptions{InterfaceExists: func(n string) bool { return n == "eth0" }})
			got := ds.String()
			for _, w := range tc.want {
				if !strings.Contains(got, ": "+w+"\n") {
					t.Errorf("diagnostics:\n%swant line ending %q", got, w)
				}
			}
			if len(tc.want) == 0 && len(ds) != 0 {
				t.Errorf("want no diagnostics, got:\n%s", got)
			}
			if ds.ExitCode() != tc.code {
				t.Errorf("exit code %d, want %d", ds.ExitCode(), tc.code)
			}
		})
	}
}

func TestDiagnosticsExitCodes(t *testing.T) {
	var ds Diagnostics
	if ds.ExitCode() != 0 {
		t.Fatal("empty diagnostics must exit 0")
	}
	ds.Add(Pos{File: "k.conf", Line: 3, Col: 5}, Warning, "x", "w")
	if ds.ExitCode() != 5 || ds.HasErrors() {
		t.Errorf("warning: code %d, errors %v", ds.ExitCode(), ds.HasErrors())
	}
	ds.Add(Pos{File: "k.conf", Line: 4}, Security, "script", "s")
	if ds.ExitCode() != 6 || ds.HasErrors() {
		t.Errorf("security: code %d, errors %v", ds.ExitCode(), ds.HasErrors())
	}
	ds.Add(Pos{File: "k.conf"}, Fatal, "", "f")
	if ds.ExitCode() != 4 || !ds.HasErrors() {
		t.Errorf("fatal: code %d", ds.ExitCode())
	}
	if got, want := ds[0].String(), "k.conf:3:5: warning: w"; got != want {
		t.Errorf("format %q, want %q", got, want)
	}
}

func TestValidateScriptUser(t *testing.T) {
	c := &Config{Global: Global{ScriptUser: "keepwatch-no-such-user"}}
	ds := Validate(c, ValidateOptions{})
	if !strings.Contains(ds.String(), "warning: script_user keepwatch-no-such-user does not exist: scripts will not run") {
		t.Errorf("diagnostics:\n%s", ds)
	}
	c.Global.ScriptUser = "root"
	if ds := Validate(c, ValidateOptions{}); len(ds) != 0 {
		t.Errorf("root: %s", ds)
	}
}

// The lower-priority GARP values default to the global master values, not
// to the instance's own garp_master_* (keepalived 2.2.7's data dump of an
// instance with garp_master_delay 10 shows lower priority delay 5).
func TestGarpLowerPrioDefaultsToGlobal(t *testing.T) {
	d, rep := 10*time.Second, 3
	in := &Instance{GarpMasterDelay: &d, GarpMasterRepeat: &rep}
	s := in.GarpSchedule(&Global{})
	if s.MasterDelay != d || s.MasterRepeat != rep {
		t.Fatalf("master delay/repeat %v/%d, want %v/%d", s.MasterDelay, s.MasterRepeat, d, rep)
	}
	if s.LowerPrioDelay != DefaultGarpMasterDelay || s.LowerPrioRepeat != DefaultGarpMasterRepeat {
		t.Fatalf("lower priority delay/repeat %v/%d, want the global defaults %v/%d", s.LowerPrioDelay, s.LowerPrioRepeat, DefaultGarpMasterDelay, DefaultGarpMasterRepeat)
	}
	gd := 2 * time.Second
	if s := in.GarpSchedule(&Global{GarpMasterDelay: gd}); s.LowerPrioDelay != gd {
		t.Fatalf("lower priority delay %v, want the global vrrp_garp_master_delay %v", s.LowerPrioDelay, gd)
	}
}

// TestNoInterfaceStopsDespiteDefault: keepalived 2.2.7 stops on an
// instance without interface ("(VI_1) Unknown interface!") even when
// default_interface is set [verified against the installed keepalived]:
// default_interface only gives static addresses their device.
func TestNoInterfaceStopsDespiteDefault(t *testing.T) {
	c := &Config{Global: Global{DefaultInterface: "eth0"}, Instances: []Instance{{Name: "VI_1", VRID: 9, Priority: 100}}}
	ds := Validate(c, ValidateOptions{})
	if !ds.Fatal() {
		t.Fatalf("no fatal diagnostic:\n%s", ds)
	}
	found := false
	for _, d := range ds {
		found = found || d.Keyword == "interface" && d.Outcome() == Stops && strings.Contains(d.Message, "default_interface applies to static addresses only")
	}
	if !found {
		t.Errorf("no stop naming the interface:\n%s", ds)
	}
}

// TestStaticAddressDefaultInterface: a static address without dev goes on
// default_interface, else eth0; when that interface does not exist
// keepalived 2.2.7 stops [verified against the installed keepalived].
func TestStaticAddressDefaultInterface(t *testing.T) {
	for _, tt := range []struct {
		dflt, want string
		exists     bool
	}{
		{"", "eth0", true},
		{"bond0", "bond0", true},
		{"", "", false},
		{"bond0", "", false},
	} {
		c := &Config{Global: Global{DefaultInterface: tt.dflt}, StaticAddrs: []Address{{Prefix: netip.MustParsePrefix("198.51.100.9/32")}}}
		ds := Validate(c, ValidateOptions{Apply: true, InterfaceExists: func(string) bool { return tt.exists }})
		if tt.exists {
			if ds.Fatal() || c.StaticAddrs[0].Dev != tt.want {
				t.Errorf("default_interface %q: dev %q (fatal %v), want %q:\n%s", tt.dflt, c.StaticAddrs[0].Dev, ds.Fatal(), tt.want, ds)
			}
			continue
		}
		if !ds.Fatal() {
			t.Errorf("default_interface %q missing: not fatal:\n%s", tt.dflt, ds)
		}
	}
}
