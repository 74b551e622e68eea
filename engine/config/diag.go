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
// 0 clean, 4 fatal, 5 errors or warnings, 6 script security.
func (ds Diagnostics) ExitCode() int {
	switch ds.Worst() {
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
