package main

import (
	"bytes"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/keepwatch/keepwatch/engine/config"
	"github.com/keepwatch/keepwatch/engine/event"
	"github.com/keepwatch/keepwatch/engine/event/eventtest"
	"github.com/keepwatch/keepwatch/engine/netif/nskit/nskittest"
)

// TestLifeScriptSecurity: startup_script and shutdown_script get the
// checks every script gets. A root script that any user may write is
// refused under enable_script_security (logged with its file:line, counted
// as insecure) and runs without it, as keepalived runs it with a warning.
// The startup script runs on the first config only, the shutdown script of
// the newest config once the agent has stopped.
func TestLifeScriptSecurity(t *testing.T) {
	nskittest.Require(t) // root: the script runs as root, the case script security is about
	dir := t.TempDir()
	script := func(name string) string {
		p := filepath.Join(dir, name)
		body := "#!/bin/sh\necho \"$0 $*\" >> " + filepath.Join(dir, "ran") + "\n"
		if err := os.WriteFile(p, []byte(body), 0o755); err != nil {
			t.Fatal(err)
		}
		// World-writable, as `chmod 777` leaves it: unsafe for root.
		if err := os.Chmod(p, 0o777); err != nil {
			t.Fatal(err)
		}
		return p
	}
	start, stop, stop2 := script("start.sh"), script("stop.sh"), script("stop2.sh")
	ran := func() string { b, _ := os.ReadFile(filepath.Join(dir, "ran")); return string(b) }
	conf := func(security bool, stopScript string) *config.Config {
		c := &config.Config{}
		g := &c.Global
		g.ScriptUser, g.EnableScriptSecurity = "root", security
		g.StartupScript = &config.Script{Pos: config.Pos{File: "k.conf", Line: 3}, Command: start + " s1", Args: []string{start, "s1"}}
		g.ShutdownScript = &config.Script{Pos: config.Pos{File: "k.conf", Line: 4}, Command: stopScript, Args: []string{stopScript}}
		return c
	}

	var logs bytes.Buffer
	rec := &eventtest.Recorder{}
	l := &lifeScripts{log: slog.New(slog.NewTextHandler(&logs, nil)), sink: rec}
	next := 0
	on := l.wrap(func(*config.Config) { next++ })
	on(conf(true, stop))
	if got := ran(); got != "" {
		t.Errorf("an unsafe startup script ran under enable_script_security: %q", got)
	}
	if !strings.Contains(logs.String(), "startup_script not run") || !strings.Contains(logs.String(), "k.conf:3") {
		t.Errorf("refusal not logged with file:line:\n%s", logs.String())
	}
	if evs := rec.Of(event.KindNotifyRun); len(evs) != 1 || evs[0].Reason != event.Reason("insecure") || evs[0].OK {
		t.Errorf("events %+v, want one insecure run", evs)
	}

	// Without enable_script_security it runs (keepalived warns, at load).
	// A reload does not run the startup script again, and its shutdown
	// script is the one that runs at the end.
	l2 := &lifeScripts{log: slog.New(slog.NewTextHandler(&logs, nil))}
	on2 := l2.wrap(nil)
	on2(conf(false, stop))
	on2(conf(false, stop2))
	l2.stopped()
	if want := start + " s1\n" + stop2 + " \n"; ran() != want {
		t.Errorf("runs %q, want %q", ran(), want)
	}
	if next != 1 {
		t.Errorf("the wrapped OnConfig was called %d times, want 1", next)
	}
}
