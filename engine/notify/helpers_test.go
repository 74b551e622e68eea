package notify

import (
	"context"
	"os"
	"os/user"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/keepwatch/keepwatch/engine/config"
	"github.com/keepwatch/keepwatch/engine/event"
	"github.com/keepwatch/keepwatch/engine/event/eventtest"
)

// recorder writes a shell script that appends one line per run to
// <script>.log: each argument in brackets, so the exact argv (spaces
// included) can be compared. The line goes out in one write, so runs that
// overlap (keepalived forks scripts without waiting) do not interleave.
func recorder(t *testing.T, dir, name string) string {
	t.Helper()
	return writeScript(t, dir, name, `line=; for a in "$@"; do line="$line[$a]"; done; printf '%s\n' "$line" >> "$0.log"`)
}

func writeScript(t *testing.T, dir, name, body string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte("#!/bin/sh\n"+body+"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

// runs returns the lines a recorder script has logged so far.
func runs(t *testing.T, script string) []string {
	t.Helper()
	b, err := os.ReadFile(script + ".log")
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	return strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
}

// cmd is a notify command as the config front ends produce it.
func cmd(parts ...string) *config.Script {
	return &config.Script{Command: strings.Join(parts, " "), Args: parts}
}

// me is the user tests run scripts as, so they pass without keepalived_script.
func me(t *testing.T) string {
	t.Helper()
	u, err := user.Current()
	if err != nil {
		t.Fatal(err)
	}
	return u.Username
}

// start runs n until the test ends and returns the recorder of its events.
func start(t *testing.T, c *config.Config, opts Options) (*Notifier, *eventtest.Recorder, context.CancelFunc) {
	t.Helper()
	rec := &eventtest.Recorder{}
	if opts.Sink == nil {
		opts.Sink = rec
	}
	if opts.DrainTimeout == 0 {
		opts.DrainTimeout = 2 * time.Second
	}
	n := New(c, opts)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = n.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	return n, rec, func() { cancel(); <-done }
}

// waitRuns waits until want KindNotifyRun events have been recorded.
func waitRuns(t *testing.T, rec *eventtest.Recorder, want int) []event.Event {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		got := rec.Of(event.KindNotifyRun)
		if len(got) >= want {
			return got
		}
		if time.Now().After(deadline) {
			t.Fatalf("got %d notify runs, want %d: %+v", len(got), want, got)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// needRoot fails in CI and skips elsewhere (under -short) when not root.
func needRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() == 0 {
		return
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("needs root, and CI must not skip")
	}
	if testing.Short() {
		t.Skip("needs root")
	}
	t.Fatal("needs root (run as root, or with -short to skip)")
}
