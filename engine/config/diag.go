package config

import (
	"fmt"
	"strings"
)

// Pos is a place in a config file. Line and Col count from 1; Col is the
// column of the first byte of the word concerned (0 if unknown).
type Pos struct {
	File string
	Line int
	Col  int
}

func (p Pos) String() string {
	if p.Line == 0 {
		return p.File
	}
	if p.Col > 0 {
		return fmt.Sprintf("%s:%d:%d", p.File, p.Line, p.Col)
	}
	return fmt.Sprintf("%s:%d", p.File, p.Line)
}

// Severity ranks a diagnostic. The ranks map onto keepalived -t's exit codes.
type Severity uint8

// Severities, least severe first.
const (
	Warning Severity = iota + 1
	Error
	// Security is a script-security problem (keepalived -t exits 6).
	Security
	// Fatal stops loading: unreadable file, unusable input (exit 4).
	Fatal
)

func (s Severity) String() string {
	switch s {
	case Warning:
		return "warning"
	case Error:
		return "error"
	case Security:
		return "error"
	case Fatal:
		return "fatal"
	}
	return "unknown"
}

// Diagnostic is one problem found in a config, at a position, about a keyword.
type Diagnostic struct {
	Pos      Pos
	Severity Severity
	Keyword  string // the keyword concerned, "" if none
	Message  string
	// Action is what was done about the problem, as keepalived 2.2.7 does
	// it; zero means the one its severity implies (see Outcome).
	Action Action
	// Instance names the vrrp_instance the problem is in, "" if none: the
	// reload guard (GuardReload) looks at the instances a new error touches.
	Instance string
	// Abort marks where keepalived stops reading the file (a keyword
	// without its parameter): keepalived -t exits 2 there.
	Abort bool
}

// Action is what keepwatch, following keepalived 2.2.7, does about a
// diagnostic when it runs the config. keepalived logs most config errors and
// carries on (lib/parser.c report_config_error): a bad value is ignored, an
// entry is skipped; only some problems stop it (a keyword missing its
// parameter, an instance without interface or VRID, two instances on one
// VRID: "exited with permanent error CONFIG").
type Action uint8

// Actions. The zero Action is "implied by the severity" (Outcome).
const (
	// KeptDefault: the value is ignored and the default (or the value set
	// before it) stays.
	KeptDefault Action = iota + 1
	// Ignored: the setting or the rule it breaks is ignored; the rest of the
	// item runs as written.
	Ignored
	// ItemSkipped: the entry (address, peer, script, checker, block) is left
	// out; the rest runs.
	ItemSkipped
	// InstanceNotStarted: the vrrp_instance named by Instance does not run;
	// the others do.
	InstanceNotStarted
	// NotImplemented: keepwatch reads the keyword but does not act on it.
	NotImplemented
	// Stops: keepalived refuses to run the config, and so does keepwatch.
	Stops
	// Noted: a warning; nothing is changed.
	Noted
)

// String is the action's snake_case name, for JSON and metrics.
func (a Action) String() string {
	switch a {
	case KeptDefault:
		return "kept_default"
	case Ignored:
		return "ignored"
	case ItemSkipped:
		return "item_skipped"
	case InstanceNotStarted:
		return "instance_not_started"
	case NotImplemented:
		return "not_implemented"
	case Stops:
		return "fatal"
	case Noted:
		return "noted"
	}
	return "unknown"
}

// Outcome is the diagnostic's action: Action when set, otherwise the one
// its severity implies. A value error keepalived's parser reports is
// ignored with the default kept (read_int_strvec and its callers return
// false and leave the field alone); a script-security finding disables the
// script; a fatal problem stops.
func (d Diagnostic) Outcome() Action {
	if d.Action != 0 {
		return d.Action
	}
	switch d.Severity {
	case Fatal:
		return Stops
	case Security:
		return ItemSkipped
	case Error:
		return KeptDefault
	}
	return Noted
}

// keptDefaults names the default a rejected value leaves in place, for the
// keywords where it is one value (keepalived.conf(5)).
var keptDefaults = map[string]string{
	"advert_int": "1 s", "priority": "100", "state": "BACKUP", "vrrp_version": "2",
	"preempt_delay": "0 s", "vrrp_garp_interval": "0 s", "vrrp_gna_interval": "0 s",
	"garp_master_delay": "5 s", "vrrp_garp_master_delay": "5 s", "garp_master_repeat": "5",
	"vrrp_garp_master_repeat": "5", "smtp_connect_timeout": "30 s", "smtp_port": "25",
	"startup_script_timeout": "10 s", "shutdown_script_timeout": "10 s",
	"delay_loop": "60 s", "connect_timeout": "5 s", "delay_before_retry": "1 s",
	"down_timer_adverts": "3", "vrrp_down_timer_adverts": "3", "lb_algo": "wlc", "lvs_sched": "wlc",
	"lb_kind": "NAT", "lvs_method": "NAT", "quorum": "1", "rise": "1", "fall": "1", "interval": "1 s",
	"vrrp_mcast_group4": "224.0.0.18", "vrrp_mcast_group6": "ff02::12", "auth_type": "no authentication",
}

// ActionText says in words what was done: "ignored, default 1 s kept".
func (d Diagnostic) ActionText() string {
	switch a := d.Outcome(); a {
	case KeptDefault:
		if def, ok := keptDefaults[d.Keyword]; ok {
			if strings.HasPrefix(def, "no ") {
				return "ignored, " + def
			}
			return "ignored, default " + def + " kept"
		}
		return "ignored, default kept"
	case Ignored:
		return "ignored"
	case ItemSkipped:
		return "skipped"
	case InstanceNotStarted:
		if d.Instance != "" {
			return "vrrp_instance " + d.Instance + " not started"
		}
		return "instance not started"
	case NotImplemented:
		return "no effect in keepwatch"
	case Stops:
		return "fatal: keepalived stops, config not run"
	default:
		return "nothing changed"
	}
}

// DiagnosticReport is a diagnostic as the status API shows it.
type DiagnosticReport struct {
	Position string `json:"position"` // file:line:col
	Severity string `json:"severity"` // error or warning
	Keyword  string `json:"keyword,omitempty"`
	Message  string `json:"message"`
	Action   string `json:"action"`      // kept_default, item_skipped, ...
	Done     string `json:"action_text"` // "ignored, default 1 s kept"
	Instance string `json:"vrrp_instance,omitempty"`
}

// Reports lists ds for the status API.
func (ds Diagnostics) Reports() []DiagnosticReport {
	out := make([]DiagnosticReport, 0, len(ds))
	for _, d := range ds {
		out = append(out, DiagnosticReport{Position: d.Pos.String(), Severity: d.Severity.String(), Keyword: d.Keyword,
			Message: d.Message, Action: d.Outcome().String(), Done: d.ActionText(), Instance: d.Instance})
	}
	return out
}

// Report formats d with what was done about it:
// `file:line:col: error: message [ignored, default 1 s kept]`.
func (d Diagnostic) Report() string {
	return d.String() + " [" + d.ActionText() + "]"
}

// String formats d as `file:line:col: error|warning: message`.
func (d Diagnostic) String() string {
	return fmt.Sprintf("%s: %s: %s", d.Pos, d.Severity, d.Message)
}

// Diagnostics is an ordered list of problems.
type Diagnostics []Diagnostic

// Add appends a diagnostic with a formatted message.
func (ds *Diagnostics) Add(pos Pos, sev Severity, keyword, format string, args ...any) {
	*ds = append(*ds, Diagnostic{Pos: pos, Severity: sev, Keyword: keyword, Message: fmt.Sprintf(format, args...)})
}

// Worst returns the highest severity present, or 0 if there are none.
func (ds Diagnostics) Worst() Severity {
	var w Severity
	for _, d := range ds {
		if d.Severity > w {
			w = d.Severity
		}
	}
	return w
}

// Fatal reports whether any diagnostic stops the config from running, as
// it stops keepalived.
func (ds Diagnostics) Fatal() bool {
	for _, d := range ds {
		if d.Outcome() == Stops {
			return true
		}
	}
	return false
}

// HasErrors reports whether any diagnostic is an error or fatal: such a
// config must not replace a running one. Script-security findings are not
// errors here: keepalived runs on with them (it disables the scripts concerned).
func (ds Diagnostics) HasErrors() bool {
	for _, d := range ds {
		if d.Severity == Error || d.Severity == Fatal {
			return true
		}
	}
	return false
}

// ExitCode maps diagnostics to keepalived -t's exit codes (reference §1.1):
// 0 clean, 2 reading stopped (Abort), 4 fatal, 5 errors or warnings, 6
// script security. Notes that a
// keyword is accepted but not acted on by keepwatch are keepwatch's own,
// not keepalived's: they do not count, so check stays as strict as
// keepalived -t.
func (ds Diagnostics) ExitCode() int {
	var w Severity
	for _, d := range ds {
		if d.Outcome() != NotImplemented && d.Severity > w {
			w = d.Severity
		}
	}
	for _, d := range ds {
		if d.Abort && w != Fatal {
			return 2
		}
	}
	switch w {
	case 0:
		return 0
	case Fatal:
		return 4
	case Security:
		return 6
	default:
		return 5
	}
}

func (ds Diagnostics) String() string {
	var b strings.Builder
	for _, d := range ds {
		b.WriteString(d.String())
		b.WriteByte('\n')
	}
	return b.String()
}

// Error makes Diagnostics usable as an error when it holds errors.
func (ds Diagnostics) Error() string { return strings.TrimSuffix(ds.String(), "\n") }
