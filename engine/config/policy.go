package config

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"
)

// ErrRefused is returned (wrapped) by Admit when a config must not run.
var ErrRefused = errors.New("config refused")

// Admit decides whether next, loaded with diagnostics ds, may run: at start
// (running nil) or on reload (running is the config running now, with its
// Diagnostics).
//
// keepalived 2.2.7 runs a config with errors: its parser logs a bad line and
// goes on, and what the line said is ignored or skipped (the loader has
// already applied each diagnostic's Action to next). Only what stops
// keepalived stops keepwatch: a diagnostic whose Outcome is Stops, or a file
// that could not be read (next nil). With strict, any error refuses the
// config. On reload, GuardReload adds the one rule keepalived lacks.
func Admit(next *Config, ds Diagnostics, running *Config, strict bool) error {
	if next == nil {
		return fmt.Errorf("%w: %s", ErrRefused, firstOf(ds, func(d Diagnostic) bool { return d.Severity >= Error }, "config could not be read"))
	}
	if ds.Fatal() {
		return fmt.Errorf("%w: keepalived would stop: %s", ErrRefused, firstOf(ds, func(d Diagnostic) bool { return d.Outcome() == Stops }, ""))
	}
	if strict || next.Agent.Strict {
		if n := countErrors(ds); n > 0 {
			return fmt.Errorf("%w: strict: %d error(s), first: %s", ErrRefused, n, firstOf(ds, isError, ""))
		}
	}
	if running != nil {
		return GuardReload(running, next, ds)
	}
	return nil
}

func isError(d Diagnostic) bool { return d.Severity == Error || d.Severity == Fatal }

func countErrors(ds Diagnostics) int {
	n := 0
	for _, d := range ds {
		if isError(d) {
			n++
		}
	}
	return n
}

func firstOf(ds Diagnostics, ok func(Diagnostic) bool, none string) string {
	for _, d := range ds {
		if ok(d) {
			return d.String()
		}
	}
	return none
}

// diagKey identifies a diagnostic across two versions of a file, whose
// lines may have moved.
type diagKey struct{ keyword, message, instance string }

// GuardReload rejects a reload whose new errors would stop or remove an
// instance that runs now, or drop one of its VIPs: a typo inside a block
// should not take an address away from a working cluster (DESIGN.md §1).
// keepalived has no such guard: on SIGHUP it applies the new file with the
// same recovery as at start.
//
// An error counts as new when the running config did not have it (same
// keyword, message and instance; lines may move), so errors the running
// config already had never block a reload. A new error is tied to an
// instance when it was reported inside that instance's block, or when it
// is a structural one (no keyword: braces, quotes) or about a vrrp_instance
// block itself, which can end or skip a block early. Instances and VIPs
// removed with no new error tied to them are deliberate edits and pass.
func GuardReload(running, next *Config, ds Diagnostics) error {
	// keepalived's parent re-reads the config on SIGHUP and, if
	// net_namespace or net_namespace_ipvs changed, logs it and carries on
	// with the old config (core/main.c reload_config, reference §4.1).
	if running.Global.NetNamespace != next.Global.NetNamespace {
		return fmt.Errorf("%w: net_namespace cannot change on reload (%q to %q): restart keepwatch", ErrRefused, running.Global.NetNamespace, next.Global.NetNamespace)
	}
	if was, now := running.Global.IPVSNamespace(), next.Global.IPVSNamespace(); was != now {
		return fmt.Errorf("%w: net_namespace_ipvs cannot change on reload (%q to %q): restart keepwatch", ErrRefused, was, now)
	}
	had := map[diagKey]bool{}
	for _, d := range running.Diagnostics {
		had[diagKey{d.Keyword, d.Message, d.Instance}] = true
	}
	var fresh []Diagnostic
	for _, d := range ds {
		if isError(d) && !had[diagKey{d.Keyword, d.Message, d.Instance}] {
			fresh = append(fresh, d)
		}
	}
	if len(fresh) == 0 {
		return nil
	}
	tied := func(inst string) (Diagnostic, bool) {
		for _, d := range fresh {
			if d.Instance == inst || (d.Instance == "" && (d.Keyword == "" || d.Keyword == "vrrp_instance")) {
				return d, true
			}
		}
		return Diagnostic{}, false
	}
	nextInst := map[string]*Instance{}
	for i := range next.Instances {
		nextInst[next.Instances[i].Name] = &next.Instances[i]
	}
	for i := range running.Instances {
		old := &running.Instances[i]
		d, ok := tied(old.Name)
		if !ok {
			continue
		}
		in := nextInst[old.Name]
		if in == nil {
			return fmt.Errorf("%w: reload would stop vrrp_instance %s because of %s", ErrRefused, old.Name, d)
		}
		if lost := lostVIPs(old, in); len(lost) > 0 {
			return fmt.Errorf("%w: reload would drop %s from vrrp_instance %s because of %s", ErrRefused, strings.Join(lost, ", "), old.Name, d)
		}
	}
	return nil
}

// lostVIPs lists the addresses of old's virtual_ipaddress and
// virtual_ipaddress_excluded that next no longer has.
func lostVIPs(old, next *Instance) []string {
	have := map[netip.Prefix]bool{}
	for _, a := range next.VIPs {
		have[a.Prefix] = true
	}
	for _, a := range next.ExcludedVIPs {
		have[a.Prefix] = true
	}
	var lost []string
	for _, list := range [][]Address{old.VIPs, old.ExcludedVIPs} {
		for _, a := range list {
			if !have[a.Prefix] {
				lost = append(lost, a.Prefix.String())
			}
		}
	}
	return lost
}
