package check

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/keepwatch/keepwatch/engine/config"
)

// script writes an executable shell script into dir and returns its path.
func script(t *testing.T, dir, name, text string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte("#!/bin/sh\n"+text+"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

func miscTarget(path string, args []string, dynamic bool, timeout time.Duration) *Target {
	return &Target{Type: config.MiscCheck, Timeout: timeout, Misc: &config.MiscSpec{
		Path: config.Script{Command: path, Args: append([]string{path}, args...)}, Dynamic: dynamic}}
}

func TestMisc(t *testing.T) {
	dir := t.TempDir()
	exit := script(t, dir, "exit.sh", `exit "$1"`)

	t.Run("up", func(t *testing.T) {
		probe(t, ProbeMisc, miscTarget(exit, []string{"0"}, false, time.Second), true, "")
	})
	t.Run("down", func(t *testing.T) {
		probe(t, ProbeMisc, miscTarget(exit, []string{"1"}, false, time.Second), false, "exit")
	})
	t.Run("no shell", func(t *testing.T) {
		// Arguments reach the script verbatim: a shell would expand $HOME.
		out := filepath.Join(dir, "args")
		echo := script(t, dir, "echo.sh", `printf '%s' "$1" > "$2"`)
		probe(t, ProbeMisc, miscTarget(echo, []string{"$HOME; x", out}, false, time.Second), true, "")
		if b, _ := os.ReadFile(out); string(b) != "$HOME; x" {
			t.Errorf("script got %q", b)
		}
	})
	t.Run("not dynamic: 7 is down", func(t *testing.T) {
		probe(t, ProbeMisc, miscTarget(exit, []string{"7"}, false, time.Second), false, "exit")
	})
	for _, tc := range []struct {
		code   int
		ok     bool
		weight int
		set    bool
	}{{0, true, 0, false}, {1, false, 0, false}, {2, true, 0, true}, {7, true, 5, true}, {255, true, 253, true}} {
		t.Run("misc_dynamic exit "+strconv.Itoa(tc.code), func(t *testing.T) {
			reason := ""
			if !tc.ok {
				reason = "exit"
			}
			r := probe(t, ProbeMisc, miscTarget(exit, []string{strconv.Itoa(tc.code)}, true, time.Second), tc.ok, reason)
			if r.Weight != tc.weight || r.SetWeight != tc.set {
				t.Errorf("weight %d set %v, want %d %v", r.Weight, r.SetWeight, tc.weight, tc.set)
			}
		})
	}
	t.Run("missing", func(t *testing.T) {
		probe(t, ProbeMisc, miscTarget(filepath.Join(dir, "nope"), nil, false, time.Second), false, "exec")
	})
	t.Run("slow: the group is killed", func(t *testing.T) {
		pidfile := filepath.Join(dir, "child.pid")
		slow := script(t, dir, "slow.sh", `sleep 30 & echo $! > "$1"; wait`)
		start := time.Now()
		probe(t, ProbeMisc, miscTarget(slow, []string{pidfile}, false, 300*time.Millisecond), false, "timeout")
		if d := time.Since(start); d > 5*time.Second {
			t.Errorf("timeout took %v", d)
		}
		b, err := os.ReadFile(pidfile)
		if err != nil {
			t.Fatal(err)
		}
		pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
		deadline := time.Now().Add(2 * time.Second)
		for syscall.Kill(pid, 0) == nil {
			// A killed child is a zombie until init reaps it; check its state.
			st, _ := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
			if f := strings.Fields(string(st)); len(f) > 2 && f[2] == "Z" {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("the script's child %d survived the timeout", pid)
			}
			time.Sleep(20 * time.Millisecond)
		}
	})
}
