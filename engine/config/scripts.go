package config

import (
	"errors"
	"fmt"

	"github.com/keepwatch/keepwatch/engine/script"
)

// ScriptRef is one script the config runs, with what it is for.
type ScriptRef struct {
	Kind   string // vrrp_script, notify_master, misc_path, notify_fifo_script, ...
	Owner  string // the vrrp_script, instance, sync group or server it belongs to ("" for global ones)
	Script *Script
}

// ScriptRefs lists every script the config can run: vrrp_scripts, the
// notify scripts of instances and sync groups, quorum_up/down, real
// servers' notify_up/down, MISC_CHECK's misc_path, the notify FIFO scripts
// and startup/shutdown_script.
func (c *Config) ScriptRefs() []ScriptRef {
	var out []ScriptRef
	add := func(kind, owner string, s *Script) {
		if s != nil && (len(s.Args) > 0 || s.Command != "") {
			out = append(out, ScriptRef{Kind: kind, Owner: owner, Script: s})
		}
	}
	g := &c.Global
	add("startup_script", "", g.StartupScript)
	add("shutdown_script", "", g.ShutdownScript)
	for i, f := range []*FIFO{g.NotifyFIFO, g.VRRPNotifyFIFO, g.LVSNotifyFIFO} {
		if f != nil {
			add([]string{"notify_fifo_script", "vrrp_notify_fifo_script", "lvs_notify_fifo_script"}[i], "", f.Script)
		}
	}
	for i := range c.Scripts {
		add("vrrp_script", c.Scripts[i].Name, &c.Scripts[i])
	}
	notify := func(owner string, n *Notify) {
		add("notify_master", owner, n.Master)
		add("notify_backup", owner, n.Backup)
		add("notify_fault", owner, n.Fault)
		add("notify_stop", owner, n.Stop)
		add("notify_deleted", owner, n.Deleted)
		add("notify", owner, n.Any)
		add("notify_master_rx_lower_pri", owner, n.MasterRxLowerPri)
	}
	for i := range c.Instances {
		notify(c.Instances[i].Name, &c.Instances[i].Notify)
	}
	for i := range c.SyncGroups {
		notify(c.SyncGroups[i].Name, &c.SyncGroups[i].Notify)
	}
	for i := range c.VirtualServers {
		vs := &c.VirtualServers[i]
		name := fmt.Sprintf("%s:%d", vs.Addr, vs.Port)
		add("quorum_up", name, vs.QuorumUp)
		add("quorum_down", name, vs.QuorumDown)
		for j := range vs.RealServers {
			rs := &vs.RealServers[j]
			rname := fmt.Sprintf("%s:%d", rs.Addr, rs.Port)
			add("notify_up", rname, rs.NotifyUp)
			add("notify_down", rname, rs.NotifyDown)
			for k := range rs.Checkers {
				if m := rs.Checkers[k].Misc; m != nil {
					add("misc_path", rname, &m.Path)
				}
			}
		}
	}
	return out
}

// ScriptPolicy is global_defs' script settings as engine/script takes them.
func (g *Global) ScriptPolicy() script.Policy {
	return script.Policy{User: g.ScriptUser, Group: g.ScriptGroup, Security: g.EnableScriptSecurity}
}

// ScriptFinding is a script that will not run, or runs unsafely, as the
// config is loaded: what keepalived reports as it reads the config.
type ScriptFinding struct {
	Pos      Pos    `json:"-"`
	At       string `json:"at"` // file:line
	Kind     string `json:"kind"`
	Owner    string `json:"owner,omitempty"`
	Path     string `json:"path"`
	Disabled bool   `json:"disabled"` // false: it runs, and is unsafe (no enable_script_security)
	Reason   string `json:"reason"`
}

// ScriptFindings applies keepalived's load-time script checks
// (vrrp_daemon.c vrrp_script_security, check_daemon.c
// check_misc_script_security, lib/notify.c check_script_secure) to every
// script: a user that cannot be resolved (including the missing
// keepalived_script default under enable_script_security) or, under
// enable_script_security, unsafe permissions disable the script; without
// it an unsafe root script is reported and runs. A missing or
// non-executable script is not listed: it is reported when it fails to run.
// It also reports whether any script exists to run (for keepalived's
// SECURITY VIOLATION warning).
func (c *Config) ScriptFindings() (found []ScriptFinding, anyScript bool) {
	pol := c.Global.ScriptPolicy()
	for _, ref := range c.ScriptRefs() {
		s := ref.Script
		argv := s.Args
		if len(argv) == 0 {
			argv = SplitCommand(s.Command)
		}
		if len(argv) == 0 {
			continue
		}
		f := ScriptFinding{Pos: s.Pos, At: s.Pos.String(), Kind: ref.Kind, Owner: ref.Owner, Path: argv[0]}
		id, err := pol.Resolve(s.User, s.Group)
		if err != nil {
			if s.User == "" && !errors.Is(err, script.ErrNoDefaultUser) {
				continue // a missing script_user is reported once, on script_user
			}
			f.Disabled, f.Reason = true, err.Error()
			found = append(found, f)
			continue
		}
		_, err = script.Check(argv[0], id)
		switch {
		case err == nil:
			anyScript = true
		case errors.Is(err, script.ErrInsecure), errors.Is(err, script.ErrWrongType):
			anyScript = true
			f.Disabled, f.Reason = pol.Security || errors.Is(err, script.ErrWrongType), err.Error()
			found = append(found, f)
		}
	}
	return found, anyScript
}
