package track

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Process counts running processes that match a vrrp_track_process and
// reports whether their number is within [Quorum, QuorumMax]. keepalived
// follows process events through the proc connector, which the kernel
// serves only to the initial network namespace and which does not work in
// many containers (reference §1.5); keepwatch scans /proc every Interval,
// which works in any network namespace (all share the pid namespace's
// /proc) and costs little at a 1 s interval.
type Process struct {
	Name string
	// Process is the command name (comm) when there are no Args and no
	// FullCommand; otherwise argv[0] as started (see matches).
	Process     string
	Args        []string
	ParamMatch  string // "" exact, "partial" first ones, "initial" last may be longer
	FullCommand bool
	Quorum      int // default 1
	QuorumMax   int // 0: no maximum
	// TerminateDelay holds back a change that processes ending caused
	// until it has lasted this long. ForkDelay does the same for a change
	// that new processes caused, but only when each was forked by a
	// matching process: keepalived applies fork_delay on the proc
	// connector's fork event of a tracked parent (track_process.c), and a
	// process that is exec'd counts at once (verified against 2.2.7:
	// with delay 4 a restarted process restores the quorum at once, a
	// killed one loses it after 4 s; deploy/lab TestSyncGroupTrackProcess).
	TerminateDelay, ForkDelay time.Duration
	Interval                  time.Duration // default 1s
	ProcRoot                  string        // default /proc; tests point it elsewhere
	OnChange                  func(State)
}

// Count returns how many processes match now.
func (p *Process) Count() int { return len(p.scan()) }

// scan returns the matching processes, each with its parent's pid.
func (p *Process) scan() map[int]int {
	root := p.ProcRoot
	if root == "" {
		root = "/proc"
	}
	ents, err := os.ReadDir(root)
	if err != nil {
		return nil
	}
	out := map[int]int{}
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		dir := filepath.Join(root, e.Name())
		if p.matches(dir) {
			out[pid] = parentPID(dir)
		}
	}
	return out
}

// parentPID reads the ppid from /proc/PID/stat (the fourth field, after
// the command name in parentheses, which may itself hold spaces); 0 if
// unknown.
func parentPID(dir string) int {
	b, err := os.ReadFile(filepath.Join(dir, "stat"))
	if err != nil {
		return 0
	}
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 2 {
		return 0
	}
	ppid, _ := strconv.Atoi(f[1])
	return ppid
}

// matches applies keepalived 2.2.7's rules, each checked against it with
// keepalived in the initial network namespace (deploy/lab
// TestTrackProcessMatching):
//   - without parameters and without full_command, Process is the command
//     name (comm, /proc/PID/status "Name:", at most 15 characters, so a
//     longer name never matches) and param_match changes nothing;
//   - with parameters, or with full_command, Process is argv[0] exactly as
//     the process was started ("/bin/sleep" is not "sleep"), and the
//     parameters are matched against the rest of the command line;
//   - no parameters configured accept any; otherwise they must equal the
//     process's (exact), be its first ones (partial), or be a prefix of
//     its parameters with the last possibly longer (initial).
//
// A process with an empty cmdline (a zombie, a kernel thread) never
// matches: keepalived does not count zombies.
func (p *Process) matches(dir string) bool {
	cmdline, err := os.ReadFile(filepath.Join(dir, "cmdline"))
	if err != nil || len(cmdline) == 0 {
		return false
	}
	argv := strings.Split(string(bytes.TrimRight(cmdline, "\x00")), "\x00")
	if !p.FullCommand && len(p.Args) == 0 {
		comm, err := os.ReadFile(filepath.Join(dir, "comm"))
		return err == nil && strings.TrimSuffix(string(comm), "\n") == p.Process
	}
	if argv[0] != p.Process {
		return false
	}
	return paramsMatch(p.Args, argv[1:], p.ParamMatch)
}

// paramsMatch compares the configured parameters want with a process's
// got, by param_match mode ("" exact, "partial", "initial").
func paramsMatch(want, got []string, mode string) bool {
	if len(want) == 0 {
		return true
	}
	switch mode {
	case "partial":
		return len(got) >= len(want) && slices.Equal(want, got[:len(want)])
	case "initial":
		n := len(want)
		return len(got) >= n && slices.Equal(want[:n-1], got[:n-1]) && strings.HasPrefix(got[n-1], want[n-1])
	}
	return slices.Equal(want, got)
}

// quorate reports whether n processes are within [Quorum, QuorumMax]. A
// QuorumMax under Quorum is ignored, as keepalived 2.2.7 ignores it
// ("quorum_max is less than quorum - ignoring"; verified: quorum 3,
// quorum_max 2 fails with 2 processes and holds with 3).
func (p *Process) quorate(n int) bool {
	q := max(p.Quorum, 1)
	return n >= q && (p.QuorumMax < q || n <= p.QuorumMax)
}

// Run blocks until ctx is cancelled, reporting the first state at once
// (keepalived scans /proc at start-up and applies no delay) and each change
// after its delay (TerminateDelay, ForkDelay).
func (p *Process) Run(ctx context.Context) {
	interval := p.Interval
	if interval == 0 {
		interval = time.Second
	}
	prev := p.scan()
	up := p.quorate(len(prev))
	p.OnChange(State{Known: true, Up: up})
	var pendingSince time.Time
	var pendingDelay time.Duration
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			// Not the tick's own time: a tick waits in the channel while
			// the goroutine is slow to run (a loaded host), and a delay
			// counted from it would end early.
			now := time.Now()
			cur := p.scan()
			delay := p.TerminateDelay
			if len(cur) > len(prev) {
				delay = 0
				if forkedOnly(prev, cur) {
					delay = p.ForkDelay
				}
			}
			prev = cur
			st := p.quorate(len(cur))
			if st == up {
				pendingSince = time.Time{}
				continue
			}
			if pendingSince.IsZero() {
				pendingSince, pendingDelay = now, delay
			}
			if now.Sub(pendingSince) >= pendingDelay {
				up, pendingSince = st, time.Time{}
				p.OnChange(State{Known: true, Up: up})
			}
		}
	}
}

// forkedOnly reports whether every process in cur but not in prev has a
// parent that matches too (a fork of a tracked process, not an exec).
func forkedOnly(prev, cur map[int]int) bool {
	for pid, ppid := range cur {
		if _, old := prev[pid]; old {
			continue
		}
		_, inPrev := prev[ppid]
		_, inCur := cur[ppid]
		if !inPrev && !inCur {
			return false
		}
	}
	return true
}
