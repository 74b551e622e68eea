package config

import (
	"fmt"
	"net/netip"
	"os"
	"os/user"
	"slices"
	"time"
)

// ValidateOptions carries what validation needs to know about the host.
type ValidateOptions struct {
	// InterfaceExists reports whether a network interface exists; nil skips
	// the check (keepalived warns about missing interfaces, reference §1.1).
	InterfaceExists func(name string) bool
	// Stat is not used any more: script checks (ScriptFindings) walk the
	// real file system, as keepalived does. Kept for callers that set it.
	Stat func(path string) (os.FileInfo, error)
	// Apply makes Validate do to c what each diagnostic's Action says, as
	// keepalived does before it runs a config: drop the entries it skips,
	// put back the defaults of values it ignores, remove the sync groups it
	// removes. The diagnostics are the same either way.
	Apply bool
}

// Validate checks the rules keepalived applies once a whole config is read:
// value ranges, cross-references between blocks, and per-instance
// consistency. Front ends that reject bad values while parsing keep the
// default in the model, so Validate does not report those twice.
func Validate(c *Config, opts ValidateOptions) Diagnostics {
	v := validator{c: c, opts: opts}
	v.global()
	v.instances()
	v.syncGroups()
	v.scripts()
	v.virtualServers()
	v.notImplemented()
	if opts.Apply {
		// After every check, so that what one repair removes cannot hide
		// another problem from the report.
		for _, f := range v.fixes {
			f()
		}
		v.prune()
	}
	return v.ds
}

type validator struct {
	c     *Config
	opts  ValidateOptions
	ds    Diagnostics
	fixes []func()
	// Entries to drop (Apply), by address.
	dropInst    map[*Instance]bool
	dropGroup   map[*SyncGroup]bool
	dropScript  map[*Script]bool
	dropVS      map[*VirtualServer]bool
	dropChecker map[*Checker]bool
}

// report adds a diagnostic about instance inst ("" for none), with the
// action taken and the repair that takes it (nil when the model already
// holds the outcome).
func (v *validator) report(sev Severity, act Action, inst string, pos Pos, kw string, fix func(), format string, args ...any) {
	v.ds.Add(pos, sev, kw, format, args...)
	v.ds[len(v.ds)-1].Action = act
	v.ds[len(v.ds)-1].Instance = inst
	if fix != nil {
		v.fixes = append(v.fixes, fix)
	}
}

func (v *validator) warnf(pos Pos, kw, format string, args ...any) {
	v.ds.Add(pos, Warning, kw, format, args...)
}

// drop marks an entry for removal when the repairs run.
func drop[T any](m *map[*T]bool, p *T) func() {
	return func() {
		if *m == nil {
			*m = map[*T]bool{}
		}
		(*m)[p] = true
	}
}

// keep returns s without the elements whose address is in gone.
func keep[T any](s []T, gone map[*T]bool) []T {
	if len(gone) == 0 {
		return s
	}
	out := s[:0:0]
	for i := range s {
		if !gone[&s[i]] {
			out = append(out, s[i])
		}
	}
	return out
}

// prune removes what the repairs marked, then the sync groups left with
// no member (keepalived: "no matching virtual router found in group
// declaration - removing", vrrp_sync.c).
func (v *validator) prune() {
	c := v.c
	c.Instances = keep(c.Instances, v.dropInst)
	c.Scripts = keep(c.Scripts, v.dropScript)
	for i := range c.VirtualServers {
		for j := range c.VirtualServers[i].RealServers {
			rs := &c.VirtualServers[i].RealServers[j]
			rs.Checkers = keep(rs.Checkers, v.dropChecker)
		}
	}
	c.VirtualServers = keep(c.VirtualServers, v.dropVS)
	names := map[string]bool{}
	for _, in := range c.Instances {
		names[in.Name] = true
	}
	for i := range c.SyncGroups {
		sg := &c.SyncGroups[i]
		m := sg.Members[:0:0]
		for _, n := range sg.Members {
			if names[n] {
				m = append(m, n)
			}
		}
		sg.Members = m
		if len(m) == 0 {
			if v.dropGroup == nil {
				v.dropGroup = map[*SyncGroup]bool{}
			}
			v.dropGroup[sg] = true
		}
	}
	c.SyncGroups = keep(c.SyncGroups, v.dropGroup)
}

func (v *validator) global() {
	g := &v.c.Global
	v.staticDevices()
	if g.VRRPVersion != 0 && g.VRRPVersion != 2 && g.VRRPVersion != 3 {
		v.report(Error, KeptDefault, "", g.Pos, "vrrp_version", func() { g.VRRPVersion = DefaultVRRPVersion }, "vrrp_version %d is invalid: must be 2 or 3", g.VRRPVersion)
	}
	if g.MulticastGroup4.IsValid() && (!g.MulticastGroup4.Is4() || !g.MulticastGroup4.IsMulticast()) {
		v.report(Error, KeptDefault, "", g.Pos, "vrrp_mcast_group4", func() { g.MulticastGroup4 = netip.Addr{} }, "vrrp_mcast_group4 %s is not an IPv4 multicast address", g.MulticastGroup4)
	}
	if g.MulticastGroup6.IsValid() && (!g.MulticastGroup6.Is6() || !g.MulticastGroup6.IsMulticast()) {
		v.report(Error, KeptDefault, "", g.Pos, "vrrp_mcast_group6", func() { g.MulticastGroup6 = netip.Addr{} }, "vrrp_mcast_group6 %s is not an IPv6 multicast address", g.MulticastGroup6)
	}
	if g.ScriptUser != "" {
		if _, err := user.Lookup(g.ScriptUser); err != nil {
			// keepalived drops every script that would run as this user and
			// runs on (exit 5 from -t): a warning, not a rejected config.
			v.warnf(g.Pos, "script_user", "script_user %s does not exist: scripts will not run", g.ScriptUser)
		}
	}
	if g.SMTPServer != "" && g.NotificationEmailFrom == "" && len(g.NotificationEmail) > 0 {
		// keepalived defaults the sender to keepalived@<hostname>; say so.
		v.warnf(g.Pos, "notification_email_from", "notification_email_from not set: mail is sent from keepalived@<hostname>")
	}
}

// advertIntervalOK applies the per-version ranges: v2 whole seconds 1-255
// (RFC 3768 §5.3.7), v3 centiseconds 1-4095 (RFC 9568 §5.2.7).
func advertIntervalOK(version int, d time.Duration) error {
	switch version {
	case 2:
		if d < time.Second || d > 255*time.Second || d%time.Second != 0 {
			return fmt.Errorf("advert_int %v is invalid for VRRPv2: must be whole seconds from 1 to 255", d.Seconds())
		}
	case 3:
		if d < 10*time.Millisecond || d > 40950*time.Millisecond {
			return fmt.Errorf("advert_int %v is invalid for VRRPv3: must be from 0.01 to 40.95 seconds", d.Seconds())
		}
	}
	return nil
}

func (v *validator) instances() {
	type key struct {
		ifname string
		vrid   int
		family int
	}
	names := map[string]Pos{}
	vrids := map[key]string{}
	scripts := map[string]bool{}
	for _, s := range v.c.Scripts {
		scripts[s.Name] = true
	}
	files := map[string]bool{}
	for _, f := range v.c.TrackFiles {
		files[f.Name] = true
	}
	procs := map[string]bool{}
	for _, p := range v.c.TrackProcesses {
		procs[p.Name] = true
	}
	for i := range v.c.Instances {
		in := &v.c.Instances[i]
		if prev, dup := names[in.Name]; dup {
			// keepalived skips the second block ("vrrp instance X already defined").
			v.report(Error, ItemSkipped, "", in.Pos, "vrrp_instance", drop(&v.dropInst, in), "vrrp_instance %q is defined twice (first at %s)", in.Name, prev)
		} else {
			names[in.Name] = in.Pos
		}
		if in.Interface == "" {
			// "(VI_1) Unknown interface!": keepalived stops [verified 2.2.7],
			// with or without default_interface, which only gives static
			// addresses their device (vrrp_if.c get_default_if).
			msg := ""
			if v.c.Global.DefaultInterface != "" {
				msg = " (default_interface applies to static addresses only)"
			}
			v.report(Error, Stops, in.Name, in.Pos, "interface", nil, "vrrp_instance %q has no interface%s", in.Name, msg)
		}
		if in.VRID < 1 || in.VRID > 255 {
			// "the virtual router id must be set": keepalived stops [verified 2.2.7].
			v.report(Error, Stops, in.Name, in.Pos, "virtual_router_id", nil, "vrrp_instance %q: virtual_router_id %d is invalid: must be 1 to 255", in.Name, in.VRID)
		}
		if in.Priority < 1 || in.Priority > 255 {
			v.report(Error, KeptDefault, in.Name, in.Pos, "priority", func() { in.Priority = DefaultPriority }, "vrrp_instance %q: priority %d is invalid: must be 1 to 255", in.Name, in.Priority)
		}
		ver := in.EffectiveVersion(&v.c.Global)
		if in.Version != 0 && in.Version != 2 && in.Version != 3 {
			v.report(Error, KeptDefault, in.Name, in.Pos, "version", func() { in.Version = 0 }, "vrrp_instance %q: version %d is invalid: must be 2 or 3", in.Name, in.Version)
		} else if err := advertIntervalOK(ver, in.AdvertInterval); err != nil {
			v.report(Error, KeptDefault, in.Name, in.Pos, "advert_int", func() { in.AdvertInterval = DefaultAdvertInterval }, "vrrp_instance %q: %v", in.Name, err)
		}
		if in.PreemptDelay < 0 || in.PreemptDelay > 1000*time.Second {
			v.report(Error, KeptDefault, in.Name, in.Pos, "preempt_delay", func() { in.PreemptDelay = 0 }, "vrrp_instance %q: preempt_delay %v is invalid: must be 0 to 1000 seconds", in.Name, in.PreemptDelay.Seconds())
		}
		if in.NoPreempt && in.InitialState == "MASTER" {
			v.report(Warning, Ignored, in.Name, in.Pos, "nopreempt", func() { in.NoPreempt = false }, "vrrp_instance %q: nopreempt will not work with initial state MASTER - clearing", in.Name)
		}
		if in.NoPreempt && in.Priority == 255 {
			v.report(Warning, Ignored, in.Name, in.Pos, "nopreempt", func() { in.NoPreempt = false }, "vrrp_instance %q: nopreempt is incompatible with priority 255 - clearing", in.Name)
		}
		if in.PreemptDelay > 0 && (in.NoPreempt || in.InitialState == "MASTER") {
			v.report(Warning, Ignored, in.Name, in.Pos, "preempt_delay", func() { in.PreemptDelay = 0 }, "vrrp_instance %q: preempt_delay is incompatible with nopreempt and state MASTER - ignoring", in.Name)
		}
		if in.InitialState != "" && in.InitialState != "MASTER" && in.InitialState != "BACKUP" {
			v.report(Error, KeptDefault, in.Name, in.Pos, "state", func() { in.InitialState = "BACKUP" }, "vrrp_instance %q: state %q is invalid: must be MASTER or BACKUP", in.Name, in.InitialState)
		}
		fam := in.Family()
		for _, a := range in.VIPs {
			if (fam == 4) != a.Prefix.Addr().Is4() {
				// "address family must match VRRP instance - ignoring": the
				// address is left out [verified 2.2.7].
				v.report(Error, ItemSkipped, in.Name, a.Pos, "virtual_ipaddress", func() { in.VIPs = sameFamily(in.VIPs, fam) }, "vrrp_instance %q: address %s is not of the instance's family (the first VIP decides): use virtual_ipaddress_excluded for the other family", in.Name, a.Prefix.Addr())
			}
		}
		if len(in.VIPs) == 0 && len(in.ExcludedVIPs) == 0 {
			v.report(Warning, Noted, in.Name, in.Pos, "virtual_ipaddress", nil, "vrrp_instance %q: no VIP specified", in.Name)
		}
		if in.Auth != nil {
			if ver == 3 {
				v.report(Warning, Ignored, in.Name, in.Auth.Pos, "authentication", nil, "vrrp_instance %q: authentication is not supported by VRRPv3 - ignoring", in.Name)
			}
			if in.Auth.Type == "AH" && ver == 2 && in.InitialState == "MASTER" && in.Priority < 255 {
				// keepalived 2.2.7 logs "Initial state master is
				// incompatible with AH authentication - clearing" and
				// starts the instance as BACKUP; an address owner keeps
				// MASTER and takes over at once [verified 2.2.7].
				v.report(Warning, Ignored, in.Name, in.Pos, "state", func() { in.InitialState = "BACKUP" }, "vrrp_instance %q: initial state master is incompatible with AH authentication - clearing", in.Name)
			}
			if in.Auth.Type == "AH" && ver == 2 && fam == 6 {
				// keepalived puts the IPsec AH header (HMAC-MD5-96) in
				// front of IPv4 adverts only; keepwatch implements that
				// (engine/vrrp ah.go) and sends IPv6 ones without it.
				v.report(Warning, NotImplemented, in.Name, in.Auth.Pos, "auth_type", nil, "vrrp_instance %q: auth_type AH applies to IPv4 only: IPv6 adverts go without authentication", in.Name)
			}
			if in.Auth.Type != "PASS" && in.Auth.Type != "AH" {
				// "unknown authentication type": keepalived runs without
				// authentication [verified 2.2.7].
				v.report(Error, KeptDefault, in.Name, in.Auth.Pos, "auth_type", func() { in.Auth = nil }, "vrrp_instance %q: auth_type %q is invalid: must be PASS or AH", in.Name, in.Auth.Type)
			}
		}
		if fam != 0 && in.Interface != "" {
			k := key{in.Interface, in.VRID, fam}
			if other, dup := vrids[k]; dup && !in.Unicast() {
				// "VI_1 and VI_2 both use VRID 27": keepalived stops [verified 2.2.7].
				v.report(Error, Stops, in.Name, in.Pos, "virtual_router_id", nil, "vrrp_instance %q: VRID %d is already used by vrrp_instance %q on interface %s for the same family", in.Name, in.VRID, other, in.Interface)
			} else {
				vrids[k] = in.Name
			}
		}
		for _, p := range in.UnicastPeers {
			if fam != 0 && (fam == 4) != p.Addr.Is4() {
				v.report(Error, ItemSkipped, in.Name, p.Pos, "unicast_peer", func() { in.UnicastPeers = samePeerFamily(in.UnicastPeers, fam) }, "vrrp_instance %q: unicast_peer %s is not of the instance's family", in.Name, p.Addr)
			}
		}
		if v.c.Global.Strict || (in.Strict != nil && *in.Strict) {
			v.strict(in, ver)
		}
		v.trackRefs(in.Name, &in.TrackScripts, scripts, "track_script", "vrrp_script")
		v.trackRefs(in.Name, &in.TrackFiles, files, "track_file", "track_file")
		v.trackRefs(in.Name, &in.TrackProcesses, procs, "track_process", "vrrp_track_process")
		if v.opts.InterfaceExists != nil {
			v.iface(in.Name, in.Interface, in.Pos)
			for _, t := range in.TrackInterfaces {
				v.iface(in.Name, t.Name, t.Pos)
			}
			for _, a := range in.VIPs {
				if a.Dev != "" {
					v.iface(in.Name, a.Dev, a.Pos)
				}
			}
		}
	}
}

func (v *validator) iface(inst, name string, pos Pos) {
	if name != "" && !v.opts.InterfaceExists(name) {
		v.report(Warning, Noted, inst, pos, "interface", nil, "interface %s for vrrp_instance %s doesn't exist", name, inst)
	}
}

func (v *validator) trackRefs(inst string, refs *[]TrackRef, known map[string]bool, kw, what string) {
	for i := range *refs {
		r := &(*refs)[i]
		if !known[r.Name] {
			// "track script X not found, ignoring..." [verified 2.2.7].
			name := r.Name
			v.report(Warning, ItemSkipped, inst, r.Pos, kw, func() { *refs = withoutRef(*refs, name) }, "vrrp_instance %q: %s %q is not defined by any %s - ignoring", inst, kw, r.Name, what)
		}
		if r.Weight != nil && (*r.Weight < -254 || *r.Weight > 254) {
			v.report(Error, KeptDefault, inst, r.Pos, kw, func() { r.Weight = nil }, "vrrp_instance %q: weight %d of %s %q is invalid: must be -254 to 254", inst, *r.Weight, kw, r.Name)
		}
	}
}

func withoutRef(refs []TrackRef, name string) []TrackRef {
	out := refs[:0:0]
	for _, r := range refs {
		if r.Name != name {
			out = append(out, r)
		}
	}
	return out
}

// sameFamily keeps the addresses of family fam (4 or 6).
func sameFamily(as []Address, fam int) []Address {
	out := as[:0:0]
	for _, a := range as {
		if (fam == 4) == a.Prefix.Addr().Is4() {
			out = append(out, a)
		}
	}
	return out
}

func samePeerFamily(ps []UnicastPeer, fam int) []UnicastPeer {
	out := ps[:0:0]
	for _, p := range ps {
		if (fam == 4) == p.Addr.Is4() {
			out = append(out, p)
		}
	}
	return out
}

// strict applies vrrp_strict / strict_mode (reference §2.7).
func (v *validator) strict(in *Instance, ver int) {
	if len(in.VIPs) == 0 {
		// "No VIP specified; at least one is required": keepalived stops [verified 2.2.7].
		v.report(Error, Stops, in.Name, in.Pos, "vrrp_strict", nil, "vrrp_instance %q: strict mode requires at least one VIP", in.Name)
	}
	// Unicast peers: later keepalived versions refuse them in strict mode
	// (vrrp.c at HEAD), but 2.2.7 says nothing, -t exits 0 and it runs
	// unicast [verified in a namespace], so keepwatch does the same.
	if in.Auth != nil {
		// "Strict mode does not support authentication. Ignoring." [verified 2.2.7].
		v.report(Error, Ignored, in.Name, in.Auth.Pos, "vrrp_strict", func() { in.Auth = nil }, "vrrp_instance %q: strict mode does not support authentication - ignoring", in.Name)
	}
	if in.PreemptDelay > 0 {
		// "preempt_delay is incompatible with strict mode - resetting" [verified 2.2.7].
		v.report(Error, KeptDefault, in.Name, in.Pos, "preempt_delay", func() { in.PreemptDelay = 0 }, "vrrp_instance %q: strict mode does not support preempt_delay - ignoring", in.Name)
	}
	if in.Family() == 6 && ver == 2 {
		// "cannot use IPv6 with VRRP version 2; setting version 3" [verified 2.2.7].
		v.report(Error, Ignored, in.Name, in.Pos, "vrrp_strict", func() { in.Version = 3 }, "vrrp_instance %q: strict mode does not support VRRPv2 with IPv6", in.Name)
	}
	if in.InitialState == "MASTER" && in.Priority != 255 {
		v.report(Warning, Noted, in.Name, in.Pos, "vrrp_strict", nil, "vrrp_instance %q: strict mode: state MASTER only takes effect at priority 255 - starting as BACKUP", in.Name)
	}
}

func (v *validator) syncGroups() {
	known := map[string]string{}
	for _, in := range v.c.Instances {
		known[in.Name] = ""
	}
	for i := range v.c.SyncGroups {
		sg := &v.c.SyncGroups[i]
		if len(sg.Members) == 0 {
			// "Sync group G3 has no virtual router(s). removing".
			v.report(Error, ItemSkipped, "", sg.Pos, "group", drop(&v.dropGroup, sg), "vrrp_sync_group %q has no members", sg.Name)
		}
		for _, m := range sg.Members {
			owner, ok := known[m]
			switch {
			case !ok:
				v.report(Warning, ItemSkipped, "", sg.Pos, "group", nil, "vrrp_sync_group %q: virtual router %s specified but not found - removing", sg.Name, m)
			case owner != "":
				// "cannot exist in more than one sync group; ignoring G2"
				// [verified 2.2.7]: the member leaves the later group.
				m := m
				v.report(Error, ItemSkipped, m, sg.Pos, "group", func() { sg.Members = without(sg.Members, m) }, "vrrp_sync_group %q: vrrp_instance %s is already in vrrp_sync_group %q", sg.Name, m, owner)
			default:
				known[m] = sg.Name
			}
		}
		v.groupTrackRefs(sg, &sg.TrackScripts, names(v.c.Scripts, func(s Script) string { return s.Name }), "track_script", "vrrp_script")
		v.groupTrackRefs(sg, &sg.TrackFiles, names(v.c.TrackFiles, func(f TrackFile) string { return f.Name }), "track_file", "track_file")
		v.groupTrackRefs(sg, &sg.TrackProcesses, names(v.c.TrackProcesses, func(p TrackProcess) string { return p.Name }), "track_process", "vrrp_track_process")
		for i := range sg.TrackInterfaces {
			r := &sg.TrackInterfaces[i]
			v.weightRange("vrrp_sync_group", sg.Name, r, "track_interface")
			if v.opts.InterfaceExists != nil && !v.opts.InterfaceExists(r.Name) {
				// keepalived 2.2.7 logs "(G) tracked interface X doesn't
				// exist" then refuses the config without dynamic_interfaces
				// [verified 2.2.7]; as for an instance's track_interface,
				// keepwatch warns and runs, the group in FAULT until the
				// interface appears (an unknown weight-0 tracker faults).
				v.report(Warning, Noted, "", r.Pos, "track_interface", nil, "(%s) tracked interface %s doesn't exist", sg.Name, r.Name)
			}
		}
	}
	for i := range v.c.SyncGroups {
		v.groupOwnerWeights(&v.c.SyncGroups[i])
	}
	// A member's own weighted trackers: keepalived logs each and neutralises
	// it (config.UnweightedMemberTrackers, which the agent applies).
	for i := range v.c.Instances {
		in := &v.c.Instances[i]
		for _, m := range v.c.UnweightedMemberTrackers(in) {
			act := Ignored
			if m.Dropped {
				act = ItemSkipped
			}
			v.report(Warning, act, in.Name, m.Pos, m.Keyword, nil, "%s", m.Message(in.Name))
		}
	}
}

// groupOwnerWeights notes the group's weighted trackers when a member is
// an address owner (priority 255): keepalived clears their weights
// (vrrp.c sync_group_tracking_init) and logs, e.g., "(G) Cannot have
// weighted track interface 'd2' with member having priority 255 - clearing
// weight" [verified 2.2.7]; the agent does the same (syncGroupRefs).
func (v *validator) groupOwnerWeights(sg *SyncGroup) {
	owner := false
	for _, in := range v.c.Instances {
		owner = owner || (in.Priority == 255 && slices.Contains(sg.Members, in.Name))
	}
	if !owner {
		return
	}
	note := func(r TrackRef, what string, own int, done string) {
		w := own
		if r.Weight != nil {
			w = *r.Weight
		}
		if w != 0 {
			v.report(Warning, Ignored, "", r.Pos, "weight", nil, "(%s) Cannot have weighted track %s '%s' with member having priority 255 - %s", sg.Name, what, r.Name, done)
		}
	}
	for _, r := range sg.TrackInterfaces {
		note(r, "interface", 0, "clearing weight")
	}
	for _, r := range sg.TrackScripts {
		for _, s := range v.c.Scripts {
			if s.Name == r.Name {
				note(r, "script", s.Weight, "clearing weight")
			}
		}
	}
	for _, r := range sg.TrackFiles {
		for _, f := range v.c.TrackFiles {
			if f.Name == r.Name {
				note(r, "file", f.Weight, "setting weight 0")
			}
		}
	}
}

// groupTrackRefs checks a sync group's track_* references as trackRefs
// does an instance's.
func (v *validator) groupTrackRefs(sg *SyncGroup, refs *[]TrackRef, known map[string]bool, kw, what string) {
	for i := range *refs {
		r := &(*refs)[i]
		if !known[r.Name] {
			name := r.Name
			v.report(Warning, ItemSkipped, "", r.Pos, kw, func() { *refs = withoutRef(*refs, name) }, "vrrp_sync_group %q: %s %q is not defined by any %s - ignoring", sg.Name, kw, r.Name, what)
		}
		v.weightRange("vrrp_sync_group", sg.Name, r, kw)
	}
}

// weightRange resets an out-of-range track_* weight to the tracker's own.
func (v *validator) weightRange(block, name string, r *TrackRef, kw string) {
	if r.Weight != nil && (*r.Weight < -254 || *r.Weight > 254) {
		v.report(Error, KeptDefault, "", r.Pos, kw, func() { r.Weight = nil }, "%s %q: weight %d of %s %q is invalid: must be -254 to 254", block, name, *r.Weight, kw, r.Name)
	}
}

func names[T any](s []T, name func(T) string) map[string]bool {
	m := make(map[string]bool, len(s))
	for _, e := range s {
		m[name(e)] = true
	}
	return m
}

func without(s []string, x string) []string {
	out := s[:0:0]
	for _, e := range s {
		if e != x {
			out = append(out, e)
		}
	}
	return out
}

func (v *validator) scripts() {
	for i := range v.c.Scripts {
		s := &v.c.Scripts[i]
		if s.Command == "" {
			v.report(Error, ItemSkipped, "", s.Pos, "script", drop(&v.dropScript, s), "vrrp_script %q has no script", s.Name)
		}
		if s.Weight < -253 || s.Weight > 253 {
			v.report(Error, KeptDefault, "", s.Pos, "weight", func() { s.Weight = 0 }, "vrrp_script %q: weight %d is invalid: must be -253 to 253", s.Name, s.Weight)
		}
		if s.Rise < 0 || s.Fall < 0 {
			v.report(Error, KeptDefault, "", s.Pos, "rise", func() { s.Rise, s.Fall = max(s.Rise, 1), max(s.Fall, 1) }, "vrrp_script %q: rise and fall must be at least 1", s.Name)
		}
	}
	v.scriptSecurity()
}

// scriptSecurity reports what keepalived reports as it loads scripts
// (ScriptFindings): each disabled script at its line, as a warning since
// keepalived runs on without it (keepalived -t exits 5, verified 2.2.7);
// without enable_script_security, each unsafe root script, and once the
// "SECURITY VIOLATION" that makes keepalived -t exit 6 whenever scripts
// are configured (vrrp_daemon.c vrrp_script_security).
func (v *validator) scriptSecurity() {
	found, anyScript := v.c.ScriptFindings()
	insecure := 0
	for i := range found {
		f := &found[i]
		if f.Disabled {
			v.warnf(f.Pos, f.Kind, "%s script '%s' will not run: %s - disabling", f.Kind, f.Path, f.Reason)
			continue
		}
		insecure++
		v.warnf(f.Pos, f.Kind, "unsafe permissions found for %s script '%s': %s", f.Kind, f.Path, f.Reason)
	}
	if v.c.Global.EnableScriptSecurity || !anyScript {
		return
	}
	pos := v.c.Global.Pos
	if refs := v.c.ScriptRefs(); len(refs) > 0 && pos.Line == 0 {
		pos = refs[0].Script.Pos
	}
	msg := "SECURITY VIOLATION - scripts are being executed but script_security not enabled."
	if insecure > 0 {
		msg += fmt.Sprintf(" There are insecure scripts (%d).", insecure)
	}
	v.ds.Add(pos, Security, "enable_script_security", "%s", msg)
}

func (v *validator) virtualServers() {
	groups := map[string]bool{}
	for _, g := range v.c.VSGroups {
		groups[g.Name] = true
	}
	for i := range v.c.VirtualServers {
		vs := &v.c.VirtualServers[i]
		if vs.Group != "" && !groups[vs.Group] {
			v.report(Error, ItemSkipped, "", vs.Pos, "virtual_server", drop(&v.dropVS, vs), "virtual_server group %q is not defined", vs.Group)
		}
		if vs.Quorum < 0 {
			v.report(Error, KeptDefault, "", vs.Pos, "quorum", func() { vs.Quorum = DefaultQuorum }, "virtual_server: quorum %d is invalid", vs.Quorum)
		}
		for j := range vs.RealServers {
			rs := &vs.RealServers[j]
			if rs.Weight < 0 || rs.Weight > 65535 {
				v.report(Error, KeptDefault, "", rs.Pos, "weight", func() { rs.Weight = DefaultWeight }, "real_server %s: weight %d is invalid: must be 0 to 65535", rs.Addr, rs.Weight)
			}
			for k := range rs.Checkers {
				v.checker(&rs.Checkers[k])
			}
		}
	}
}

// checker reports a checker keepalived drops ("HTTP/SSL_GET checker has no
// urls specified - ignoring"): the real server runs without it.
func (v *validator) checker(c *Checker) {
	v.checkerProblem(c)
}

func (v *validator) skipChecker(c *Checker, pos Pos, kw, format string, args ...any) {
	v.report(Error, ItemSkipped, "", pos, kw, drop(&v.dropChecker, c), format, args...)
}

func (v *validator) checkerProblem(c *Checker) {
	switch c.Type {
	case HTTPGet, SSLGet:
		if c.HTTP == nil || len(c.HTTP.URLs) == 0 {
			v.skipChecker(c, c.Pos, "url", "%s has no url", c.Type)
			return
		}
		for _, u := range c.HTTP.URLs {
			if u.Path == "" {
				v.skipChecker(c, u.Pos, "path", "%s url has no path", c.Type)
			}
			if u.Regex == "" {
				continue
			}
			// keepalived would run this regex with PCRE2; RE2 cannot.
			// Running the checker without it, or failing every probe,
			// would both misreport the server, so the config is refused
			// at load with the construct named (see regex.go).
			if err := CheckRegex(u.Regex); err != nil {
				pos := u.RegexPos
				if pos.File == "" {
					pos = u.Pos
				}
				v.report(Error, Stops, "", pos, "regex", nil, "%s url %q: regex %q %v", c.Type, u.Path, u.Regex, err)
			}
		}
	case MiscCheck:
		if c.Misc == nil || c.Misc.Path.Command == "" {
			v.skipChecker(c, c.Pos, "misc_path", "MISC_CHECK has no misc_path")
		}
	case FileCheck:
		if c.File == nil || c.File.TrackFile == "" {
			v.skipChecker(c, c.Pos, "track_file", "FILE_CHECK has no track_file")
			return
		}
		found := false
		for _, f := range v.c.TrackFiles {
			found = found || f.Name == c.File.TrackFile
		}
		if !found {
			v.skipChecker(c, c.Pos, "track_file", "FILE_CHECK: track_file %q is not defined", c.File.TrackFile)
		}
	}
}

// StaticDevice is the device of a static address without dev:
// default_interface, else eth0 (keepalived vrrp_if.c get_default_if).
func (g *Global) StaticDevice() string {
	if g.DefaultInterface != "" {
		return g.DefaultInterface
	}
	return "eth0"
}

// staticDevices gives each static address without a dev keepalived's
// default: default_interface, else eth0 (vrrp_if.c get_default_if). When
// interfaces are checked and that one does not exist, keepalived 2.2.7
// stops ("Default interface eth0 doesn't exist for static address ...",
// then "Non-existent interface specified in configuration" [verified
// 2.2.7]); it warns about a default_interface that does not exist.
func (v *validator) staticDevices() {
	g := &v.c.Global
	dflt := g.StaticDevice()
	exists := func(name string) bool { return v.opts.InterfaceExists == nil || v.opts.InterfaceExists(name) }
	if g.DefaultInterface != "" && !exists(g.DefaultInterface) {
		v.warnf(g.Pos, "default_interface", "WARNING - default interface %s doesn't exist", g.DefaultInterface)
	}
	for i := range v.c.StaticAddrs {
		a := &v.c.StaticAddrs[i]
		if a.Dev != "" {
			continue
		}
		if !exists(dflt) {
			v.report(Error, Stops, "", a.Pos, "static_ipaddress", nil, "Default interface %s doesn't exist for static address %s", dflt, a.Prefix)
			continue
		}
		v.fixes = append(v.fixes, func() { a.Dev = dflt })
	}
}
