package track

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// Process counts running processes that match a vrrp_track_process and
// reports whether their number is within [Quorum, QuorumMax]. keepalived
// follows process events through the proc connector, which does not work in
// many containers (reference §1.5); keepwatch scans /proc every Interval,
// which works everywhere and costs little at a 1 s interval.
type Process struct {
	Name string
	// Process is matched against the command name (comm), or against the
	// executable's base name when longer than comm's 15 characters; with
	// FullCommand, against the whole command line.
	Process     string
	Args        []string
	ParamMatch  string // "" exact, "initial" prefix, "partial" substring
	FullCommand bool
	Quorum      int // default 1
	QuorumMax   int // 0: no maximum
	// Delay holds a change back until it has lasted this long (keepalived's
	// delay / terminate_delay / fork_delay, merged).
	Delay    time.Duration
	Interval time.Duration // default 1s
	ProcRoot string        // default /proc; tests point it elsewhere
	OnChange func(State)
}

// Count returns how many processes match now.
func (p *Process) Count() int {
	root := p.ProcRoot
	if root == "" {
		root = "/proc"
	}
	ents, err := os.ReadDir(root)
	if err != nil {
		return 0
	}
	n := 0
	for _, e := range ents {
		if _, err := strconv.Atoi(e.Name()); err != nil {
			continue
		}
		if p.matches(filepath.Join(root, e.Name())) {
			n++
		}
	}
	return n
}

func (p *Process) matches(dir string) bool {
	cmdline, err := os.ReadFile(filepath.Join(dir, "cmdline"))
	if err != nil || len(cmdline) == 0 {
		return false
	}
	argv := strings.Split(string(bytes.TrimRight(cmdline, "\x00")), "\x00")
	if p.FullCommand {
		return strings.Join(argv, " ") == p.Process
	}
	name := ""
	if len(p.Process) > 15 {
		name = filepath.Base(argv[0])
	} else {
		comm, err := os.ReadFile(filepath.Join(dir, "comm"))
		if err != nil {
			return false
		}
		name = strings.TrimSpace(string(comm))
	}
	if name != p.Process {
		return false
	}
	if len(p.Args) == 0 {
		return true
	}
	want, got := strings.Join(p.Args, " "), strings.Join(argv[1:], " ")
	switch p.ParamMatch {
	case "initial":
		return strings.HasPrefix(got, want)
	case "partial":
		return strings.Contains(got, want)
	}
	return got == want
}

func (p *Process) quorate(n int) bool {
	q := max(p.Quorum, 1)
	return n >= q && (p.QuorumMax == 0 || n <= p.QuorumMax)
}

// Run blocks until ctx is cancelled, reporting the first state at once and
// each change after it has lasted Delay.
func (p *Process) Run(ctx context.Context) {
	interval := p.Interval
	if interval == 0 {
		interval = time.Second
	}
	up := p.quorate(p.Count())
	p.OnChange(State{Known: true, Up: up})
	var pendingSince time.Time
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			cur := p.quorate(p.Count())
			if cur == up {
				pendingSince = time.Time{}
				continue
			}
			if pendingSince.IsZero() {
				pendingSince = now
			}
			if now.Sub(pendingSince) >= p.Delay {
				up, pendingSince = cur, time.Time{}
				p.OnChange(State{Known: true, Up: up})
			}
		}
	}
}
