package script

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func writeScript(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "s.sh")
	if err := os.WriteFile(p, []byte("#!/bin/sh\n"+body+"\n"), 0o700); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestRun(t *testing.T) {
	ctx := context.Background()
	if r := Run(ctx, Spec{Argv: []string{writeScript(t, "exit 0")}}); !r.OK() || r.Class() != "" {
		t.Errorf("exit 0: %+v", r)
	}
	if r := Run(ctx, Spec{Argv: []string{writeScript(t, "exit 3")}}); r.OK() || r.ExitCode != 3 || r.Class() != "exit_code" {
		t.Errorf("exit 3: %+v", r)
	}
	// Arguments reach the script as separate words, with no shell in between.
	out := filepath.Join(t.TempDir(), "out")
	s := writeScript(t, `printf '%s|' "$@" > `+out)
	if r := Run(ctx, Spec{Argv: []string{s, "a b", "$HOME", "c"}}); !r.OK() {
		t.Fatalf("args: %+v", r)
	}
	if b, _ := os.ReadFile(out); string(b) != "a b|$HOME|c|" {
		t.Errorf("argv seen by the script = %q", b)
	}
	if r := Run(ctx, Spec{Argv: []string{"/nonexistent/script"}}); r.OK() || r.Class() != "exec" {
		t.Errorf("missing: %+v", r)
	}
}

// TestRunTimeoutKillsGroup: a timeout ends the script and the children it
// started, so a hung check cannot leave processes behind.
func TestRunTimeoutKillsGroup(t *testing.T) {
	pidFile := filepath.Join(t.TempDir(), "child.pid")
	s := writeScript(t, "sleep 30 & echo $! > "+pidFile+"\nwait")
	r := Run(context.Background(), Spec{Argv: []string{s}, Timeout: 200 * time.Millisecond})
	if !r.TimedOut || r.Class() != "timeout" {
		t.Fatalf("want a timeout, got %+v", r)
	}
	b, err := os.ReadFile(pidFile)
	if err != nil {
		t.Fatal(err)
	}
	var pid int
	for _, c := range string(b) {
		if c >= '0' && c <= '9' {
			pid = pid*10 + int(c-'0')
		}
	}
	deadline := time.Now().Add(2 * time.Second)
	for {
		// The killed child is reparented and reaped by init; /proc/PID
		// disappears (or shows a zombie) once it is dead.
		st, err := os.ReadFile(filepath.Join("/proc", itoa(pid), "stat"))
		if err != nil || containsState(string(st), 'Z') {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("child %d of the timed-out script is still running", pid)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func itoa(i int) string {
	if i == 0 {
		return "0"
	}
	var b []byte
	for ; i > 0; i /= 10 {
		b = append([]byte{byte('0' + i%10)}, b...)
	}
	return string(b)
}

func containsState(stat string, st byte) bool {
	for i := len(stat) - 1; i > 0; i-- {
		if stat[i] == ')' && i+2 < len(stat) {
			return stat[i+2] == st
		}
	}
	return false
}

// TestReap: with Reap, what the command left in its group dies with it.
func TestReap(t *testing.T) {
	for _, reap := range []bool{true, false} {
		pidFile := filepath.Join(t.TempDir(), "child.pid")
		s := writeScript(t, "sleep 30 & echo $! > "+pidFile)
		if r := Run(context.Background(), Spec{Argv: []string{s}, Reap: reap}); !r.OK() {
			t.Fatalf("reap=%v: %+v", reap, r)
		}
		b, err := os.ReadFile(pidFile)
		if err != nil {
			t.Fatal(err)
		}
		pid := 0
		for _, c := range string(b) {
			if c >= '0' && c <= '9' {
				pid = pid*10 + int(c-'0')
			}
		}
		alive := func() bool {
			st, err := os.ReadFile(filepath.Join("/proc", itoa(pid), "stat"))
			return err == nil && !containsState(string(st), 'Z')
		}
		deadline := time.Now().Add(2 * time.Second)
		for alive() && reap && time.Now().Before(deadline) {
			time.Sleep(20 * time.Millisecond)
		}
		if reap && alive() {
			t.Errorf("reap: child %d still running", pid)
		}
		if !reap {
			if !alive() {
				t.Errorf("no reap: child %d was killed", pid)
			}
			p, _ := os.FindProcess(pid)
			p.Kill()
		}
	}
}
