package config

import (
	"errors"
	"strings"
	"testing"
)

func TestOutcomeAndActionText(t *testing.T) {
	for _, tc := range []struct {
		d    Diagnostic
		want Action
		text string
	}{
		{Diagnostic{Severity: Error, Keyword: "advert_int"}, KeptDefault, "ignored, default 1 s kept"},
		{Diagnostic{Severity: Error, Keyword: "weight"}, KeptDefault, "ignored, default kept"},
		{Diagnostic{Severity: Error, Keyword: "auth_type"}, KeptDefault, "ignored, no authentication"},
		{Diagnostic{Severity: Warning}, Noted, "nothing changed"},
		{Diagnostic{Severity: Fatal}, Stops, "fatal: keepalived stops, config not run"},
		{Diagnostic{Severity: Security}, ItemSkipped, "skipped"},
		{Diagnostic{Severity: Error, Action: InstanceNotStarted, Instance: "VI_1"}, InstanceNotStarted, "vrrp_instance VI_1 not started"},
		{Diagnostic{Severity: Warning, Action: NotImplemented}, NotImplemented, "no effect in keepwatch"},
	} {
		if got := tc.d.Outcome(); got != tc.want {
			t.Errorf("%+v: outcome %v, want %v", tc.d, got, tc.want)
		}
		if got := tc.d.ActionText(); got != tc.text {
			t.Errorf("%+v: text %q, want %q", tc.d, got, tc.text)
		}
	}
	d := Diagnostic{Pos: Pos{File: "k.conf", Line: 3, Col: 5}, Severity: Error, Keyword: "priority", Message: "priority: invalid number 'x'"}
	if got, want := d.Report(), "k.conf:3:5: error: priority: invalid number 'x' [ignored, default 100 kept]"; got != want {
		t.Errorf("Report %q, want %q", got, want)
	}
}

// TestGuardReloadPure exercises the guard on hand-built models: only a new
// error tied to a running instance blocks, and only when that instance
// would stop or lose a VIP.
func TestGuardReloadPure(t *testing.T) {
	running := &Config{Instances: []Instance{baseInstance("A", 51), baseInstance("B", 52)}}
	running.Instances[1].VIPs = []Address{vip("192.0.2.20/32")}
	running.Diagnostics = Diagnostics{{Severity: Error, Keyword: "advert_int", Message: "old", Instance: "B"}}
	errIn := func(inst, msg string) Diagnostic {
		return Diagnostic{Severity: Error, Keyword: "virtual_ipaddress", Message: msg, Instance: inst, Action: ItemSkipped}
	}
	noVIP := func() *Config {
		n := &Config{Instances: []Instance{baseInstance("A", 51), baseInstance("B", 52)}}
		n.Instances[1].VIPs = nil
		return n
	}
	onlyA := &Config{Instances: []Instance{baseInstance("A", 51)}}
	for _, tc := range []struct {
		name   string
		next   *Config
		ds     Diagnostics
		reject bool
	}{
		{"B loses its VIP to a new error in B", noVIP(), Diagnostics{errIn("B", "bad ip")}, true},
		{"B loses its VIP, the error is in A", noVIP(), Diagnostics{errIn("A", "bad ip")}, false},
		{"B loses its VIP, only B's old error", noVIP(), Diagnostics{{Severity: Error, Keyword: "advert_int", Message: "old", Instance: "B"}}, false},
		{"B loses its VIP to a new warning", noVIP(), Diagnostics{{Severity: Warning, Message: "w", Instance: "B"}}, false},
		{"B gone after a structural error", onlyA, Diagnostics{{Severity: Error, Message: "unmatched quote"}}, true},
		{"B gone, no new error", onlyA, nil, false},
	} {
		err := GuardReload(running, tc.next, tc.ds)
		if (err != nil) != tc.reject {
			t.Errorf("%s: got %v, want reject %v", tc.name, err, tc.reject)
		}
		if err != nil && !errors.Is(err, ErrRefused) {
			t.Errorf("%s: %v does not wrap ErrRefused", tc.name, err)
		}
		if err != nil && !strings.Contains(err.Error(), "vrrp_instance B") {
			t.Errorf("%s: %v does not name the instance", tc.name, err)
		}
	}
}

// TestAdmitStrict: --strict, or agent.strict in the config, refuses any
// error; without it only what stops keepalived refuses.
func TestAdmitStrict(t *testing.T) {
	c := &Config{Instances: []Instance{baseInstance("A", 51)}}
	ds := Diagnostics{{Severity: Error, Keyword: "advert_int", Message: "advert_int: invalid number 'x'"}}
	if err := Admit(c, ds, nil, false); err != nil {
		t.Errorf("default: %v", err)
	}
	if err := Admit(c, ds, nil, true); !errors.Is(err, ErrRefused) {
		t.Errorf("strict flag: %v", err)
	}
	c.Agent.Strict = true
	if err := Admit(c, ds, nil, false); !errors.Is(err, ErrRefused) {
		t.Errorf("agent.strict: %v", err)
	}
	if err := Admit(c, Diagnostics{{Severity: Warning, Message: "w"}}, nil, false); err != nil {
		t.Errorf("agent.strict with a warning only: %v", err)
	}
	if err := Admit(nil, Diagnostics{{Severity: Fatal, Message: "unable to find configuration file"}}, nil, false); !errors.Is(err, ErrRefused) {
		t.Errorf("unreadable: %v", err)
	}
}
