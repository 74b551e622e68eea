package track

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/keepwatch/keepwatch/engine/event"
	"github.com/keepwatch/keepwatch/engine/event/eventtest"
	"github.com/keepwatch/keepwatch/engine/script"
)

// states collects OnChange calls.
type states struct {
	mu  sync.Mutex
	got []State
	ch  chan State
}

func newStates() *states { return &states{ch: make(chan State, 100)} }

func (s *states) on(st State) {
	s.mu.Lock()
	s.got = append(s.got, st)
	s.mu.Unlock()
	s.ch <- st
}

func (s *states) next(t *testing.T, within time.Duration) State {
	t.Helper()
	select {
	case st := <-s.ch:
		return st
	case <-time.After(within):
		t.Fatalf("no state change within %v", within)
		return State{}
	}
}

// TestScriptRiseFall drives a real script whose exit code is read from a
// file: up after rise successes, down after fall failures, a timeout is a
// failure, and every run is an event.
func TestScriptRiseFall(t *testing.T) {
	dir := t.TempDir()
	codeFile := filepath.Join(dir, "code")
	os.WriteFile(codeFile, []byte("0"), 0o644)
	sh := filepath.Join(dir, "chk.sh")
	os.WriteFile(sh, []byte("#!/bin/sh\n[ -f "+dir+"/hang ] && sleep 5\nexit $(cat "+codeFile+")\n"), 0o755)

	rec := &eventtest.Recorder{}
	st := newStates()
	// An explicit timeout well above the interval: on a loaded machine a
	// script can take longer than 30ms to start.
	s := &Script{Name: "chk", Spec: script.Spec{Argv: []string{sh}, Timeout: time.Second}, Interval: 30 * time.Millisecond,
		Rise: 2, Fall: 3, Sink: rec, OnChange: st.on}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { s.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()

	if got := st.next(t, 10*time.Second); !got.Known || !got.Up {
		t.Fatalf("first change = %+v, want up", got)
	}
	if n := len(rec.Of(event.KindScriptRun)); n < 2 {
		t.Errorf("up after %d runs, want rise=2", n)
	}
	before := len(rec.Of(event.KindScriptRun))
	os.WriteFile(codeFile, []byte("1"), 0o644)
	if got := st.next(t, 10*time.Second); got.Up {
		t.Fatalf("want down, got %+v", got)
	}
	runs := rec.Of(event.KindScriptRun)[before:]
	fails := 0
	for _, e := range runs {
		if !e.OK {
			fails++
			if e.ExitCode != 1 || e.Reason != "exit_code" {
				t.Errorf("failed run event = %+v", e)
			}
		}
	}
	if fails != 3 {
		t.Errorf("down after %d failures, want fall=3", fails)
	}
	// A hanging script times out and counts as failed.
	os.WriteFile(codeFile, []byte("0"), 0o644)
	if got := st.next(t, 10*time.Second); !got.Up {
		t.Fatalf("want up again, got %+v", got)
	}
	os.WriteFile(filepath.Join(dir, "hang"), nil, 0o644)
	if got := st.next(t, 10*time.Second); got.Up {
		t.Fatalf("want down on timeouts, got %+v", got)
	}
	if _, ok := rec.Wait(time.Second, func(e event.Event) bool { return e.Kind == event.KindScriptRun && e.Reason == "timeout" }); !ok {
		t.Error("no timeout run event")
	}
}

func TestFileTracker(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "prio")
	init := 7
	st := newStates()
	f := &File{Name: "f", Path: p, Init: &init, OnChange: st.on}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- f.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}()
	if got := st.next(t, time.Second); got.Value != 7 {
		t.Fatalf("initial value %d, want init_file 7", got.Value)
	}
	os.WriteFile(p, []byte("-12\n"), 0o644)
	if got := st.next(t, time.Second); got.Value != -12 {
		t.Fatalf("after write: %d, want -12", got.Value)
	}
	// Moved in, as config management tools write files.
	tmp := filepath.Join(dir, ".tmp")
	os.WriteFile(tmp, []byte("0x10"), 0o644)
	os.Rename(tmp, p)
	if got := st.next(t, time.Second); got.Value != 16 {
		t.Fatalf("after rename: %d, want 16", got.Value)
	}
	os.Remove(p)
	if got := st.next(t, time.Second); got.Value != 0 {
		t.Fatalf("after remove: %d, want 0", got.Value)
	}
}

func TestReadValue(t *testing.T) {
	dir := t.TempDir()
	for body, want := range map[string]int64{"5": 5, " 42 \n": 42, "-3x": -3, "junk": 0, "1000": 254, "-999": -254, "0x1f": 31, "": 0} {
		p := filepath.Join(dir, "v")
		os.WriteFile(p, []byte(body), 0o644)
		if got, err := ReadValue(p); got != want || err != nil {
			t.Errorf("ReadValue(%q) = %d, %v; want %d", body, got, err, want)
		}
		if got := ParseValue([]byte(body)); got != want {
			t.Errorf("ParseValue(%q) = %d, want %d", body, got, want)
		}
	}
	if got, err := ReadValue(filepath.Join(dir, "missing")); got != 0 || err != nil {
		t.Errorf("missing file = %d, %v; want 0 and no error", got, err)
	}
}

// TestProcessTracker starts and stops real processes and watches the quorum.
func TestProcessTracker(t *testing.T) {
	st := newStates()
	// A private copy of sleep with a unique name, so no other process matches.
	bin := filepath.Join(t.TempDir(), "kwtracked")
	sleepPath, err := exec.LookPath("sleep")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(sleepPath)
	os.WriteFile(bin, b, 0o755)
	// With parameters the name is argv[0] as started: here the path.
	p := &Process{Name: "p", Process: bin, Args: []string{"30"}, Quorum: 2, Interval: 20 * time.Millisecond, OnChange: st.on}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { p.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()
	if got := st.next(t, time.Second); got.Up {
		t.Fatalf("no processes yet: %+v", got)
	}
	var cmds []*exec.Cmd
	for i := 0; i < 2; i++ {
		c := exec.Command(bin, "30")
		if err := c.Start(); err != nil {
			t.Fatal(err)
		}
		cmds = append(cmds, c)
	}
	defer func() {
		for _, c := range cmds {
			c.Process.Kill()
			c.Wait()
		}
	}()
	if got := st.next(t, 10*time.Second); !got.Up {
		t.Fatalf("two processes, quorum 2: %+v", got)
	}
	cmds[0].Process.Kill()
	cmds[0].Wait()
	if got := st.next(t, 10*time.Second); got.Up {
		t.Fatalf("one process left, quorum 2: %+v", got)
	}
}

// TestProcessMatches: keepalived 2.2.7's matching rules (checked against
// keepalived itself by deploy/lab TestTrackProcessMatching) on a fake /proc.
func TestProcessMatches(t *testing.T) {
	root := t.TempDir()
	procs := []struct{ comm, cmdline string }{
		{"daemon", "daemon\x00-f\x00/etc/x.conf\x00"},
		{"daemon", "/usr/sbin/daemon\x00-f\x00"},
		{"averyveryverylo", "averyveryverylongname\x00"},
		{"zombie", ""},
	}
	for i, p := range procs {
		d := filepath.Join(root, fmt.Sprint(100+i))
		os.MkdirAll(d, 0o755)
		os.WriteFile(filepath.Join(d, "comm"), []byte(p.comm+"\n"), 0o644)
		os.WriteFile(filepath.Join(d, "cmdline"), []byte(p.cmdline), 0o644)
	}
	os.MkdirAll(filepath.Join(root, "self"), 0o755)
	for _, c := range []struct {
		p    Process
		want int
	}{
		{Process{Process: "daemon"}, 2},
		{Process{Process: "daemon", ParamMatch: "partial"}, 2},
		{Process{Process: "/usr/sbin/daemon"}, 0},
		{Process{Process: "averyveryverylongname"}, 0},
		{Process{Process: "averyveryverylo"}, 1},
		{Process{Process: "averyveryverylongname", FullCommand: true}, 1},
		{Process{Process: "daemon", FullCommand: true}, 1},
		{Process{Process: "/usr/sbin/daemon", FullCommand: true}, 1},
		{Process{Process: "daemon -f", FullCommand: true}, 0},
		{Process{Process: "daemon", Args: []string{"-f"}}, 0},
		{Process{Process: "daemon", Args: []string{"-f", "/etc/x.conf"}}, 1},
		{Process{Process: "daemon", Args: []string{"-f"}, ParamMatch: "partial"}, 1},
		{Process{Process: "daemon", Args: []string{"-"}, ParamMatch: "partial"}, 0},
		{Process{Process: "daemon", Args: []string{"/etc"}, ParamMatch: "partial"}, 0},
		{Process{Process: "daemon", Args: []string{"-"}, ParamMatch: "initial"}, 1},
		{Process{Process: "daemon", Args: []string{"-f", "/etc/"}, ParamMatch: "initial"}, 1},
		{Process{Process: "daemon", Args: []string{"-x", "/etc/"}, ParamMatch: "initial"}, 0},
		{Process{Process: "/usr/sbin/daemon", Args: []string{"-f"}}, 1},
		{Process{Process: "zombie"}, 0},
	} {
		c.p.ProcRoot = root
		if got := c.p.Count(); got != c.want {
			t.Errorf("%+v: %d processes, want %d", c.p, got, c.want)
		}
	}
}

// TestProcessDelays: terminate_delay holds back a loss; fork_delay holds
// back a gain only when the new process was forked by a matching one, as
// keepalived applies it on a tracked parent's fork event; an exec'd
// process counts at once.
func TestProcessDelays(t *testing.T) {
	root := t.TempDir()
	add := func(pid, ppid int) {
		d := filepath.Join(root, fmt.Sprint(pid))
		os.MkdirAll(d, 0o755)
		os.WriteFile(filepath.Join(d, "comm"), []byte("svc\n"), 0o644)
		os.WriteFile(filepath.Join(d, "cmdline"), []byte("svc\x00"), 0o644)
		os.WriteFile(filepath.Join(d, "stat"), []byte(fmt.Sprintf("%d (svc) S %d 1 1 0", pid, ppid)), 0o644)
	}
	// Long enough that an undelayed report, polled every 10 ms, cannot
	// reach it even on a loaded machine.
	const delay = 2 * time.Second
	st := newStates()
	p := &Process{Process: "svc", Quorum: 2, TerminateDelay: delay, ForkDelay: delay, Interval: 10 * time.Millisecond, ProcRoot: root, OnChange: st.on}
	add(100, 1)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { p.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()
	if got := st.next(t, 5*time.Second); got.Up {
		t.Fatalf("one process, quorum 2: %+v", got)
	}
	step := func(what string, up, delayed bool, change func()) {
		t.Helper()
		start := time.Now()
		change()
		if got := st.next(t, 10*time.Second); got.Up != up {
			t.Fatalf("%s: %+v, want up=%v", what, got, up)
		}
		took := time.Since(start)
		if delayed && took < delay {
			t.Errorf("%s: reported after %v, before the delay of %v", what, took, delay)
		}
		if !delayed && took >= delay {
			t.Errorf("%s: reported after %v, held back by a delay that does not apply", what, took)
		}
	}
	step("forked by a tracked process", true, true, func() { add(101, 100) })
	step("ended", false, true, func() { os.RemoveAll(filepath.Join(root, "101")) })
	step("exec'd", true, false, func() { add(102, 1) })
}

func TestProcessQuorate(t *testing.T) {
	for _, c := range []struct {
		q, qmax, n int
		want       bool
	}{
		{1, 0, 0, false}, {1, 0, 5, true}, {2, 3, 2, true}, {2, 3, 4, false},
		{1, 1, 2, false}, {3, 2, 2, false}, {3, 2, 3, true}, {3, 2, 9, true},
	} {
		p := &Process{Quorum: c.q, QuorumMax: c.qmax}
		if got := p.quorate(c.n); got != c.want {
			t.Errorf("quorum %d quorum_max %d with %d processes: %v, want %v", c.q, c.qmax, c.n, got, c.want)
		}
	}
}

func TestSet(t *testing.T) {
	s := NewSet(100, []Ref{
		{Kind: KindScript, Name: "chk", Weight: -30},
		{Kind: KindInterface, Name: "eth1", Weight: 0},
		{Kind: KindFile, Name: "f", Weight: 2},
	})
	// eth1 has weight 0 and has not reported: the instance waits in FAULT.
	if p, fault := s.Priority(); p != 100 || !fault {
		t.Fatalf("initial = %d, %v", p, fault)
	}
	s.Update(KindInterface, "eth1", State{Up: true})
	s.Update(KindScript, "chk", State{Up: true})
	if p, fault := s.Priority(); p != 100 || fault {
		t.Fatalf("all up = %d, %v", p, fault)
	}
	s.Update(KindScript, "chk", State{Up: false})
	s.Update(KindFile, "f", State{Value: 5})
	if p, fault := s.Priority(); p != 80 || fault {
		t.Fatalf("script down, file 5 = %d, %v; want 100-30+10", p, fault)
	}
	if s.Update(KindScript, "other", State{Up: true}) {
		t.Error("Update of an untracked script must report false")
	}
	s.Update(KindInterface, "eth1", State{Up: false})
	if _, fault := s.Priority(); !fault {
		t.Fatal("weight-0 interface down must fault")
	}
	c := s.Contributions()
	if len(c) != 3 || c[0].Delta != -30 || !c[1].Fault || c[2].Delta != 10 {
		t.Errorf("contributions = %+v", c)
	}
}
