package main

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/keepwatch/keepwatch/engine/config"
	"github.com/keepwatch/keepwatch/engine/event"
	"github.com/keepwatch/keepwatch/engine/script"
)

// lifeScripts runs global_defs' startup_script once, before the agent
// starts its instances, and shutdown_script once, after the agent has
// stopped them (their VIPs removed): keepalived.conf(5) "run once, when
// keepalived starts before any child processes are run, and when keepalived
// stops after all child processes have terminated". Both go through
// script.Run, so they run as every other script does (script_user or
// keepalived_script, that user's group only, keepalived's environment
// without keepwatch's own, no inherited descriptors, enable_script_security
// checked again before the run).
//
// keepalived 2.2.7, tried in a namespace: a startup script that fails
// ("startup script script failed, status 1") or times out ("startup script
// timed out", its whole process group killed) is logged and keepalived
// starts all the same; the shutdown script runs after "(VI_1) removing
// VIPs." and "Stopped". keepwatch does the same.
type lifeScripts struct {
	log  *slog.Logger
	sink event.Sink

	mu  sync.Mutex
	cfg *config.Config // the newest config the agent runs; nil before the first
}

// wrap returns an OnConfig for the agent that runs the startup script on
// the first config, before next and before the agent applies it, and
// remembers each config for the shutdown script (a reload may change it,
// as keepalived's reload re-reads global_defs).
func (l *lifeScripts) wrap(next func(*config.Config)) func(*config.Config) {
	return func(c *config.Config) {
		l.mu.Lock()
		first := l.cfg == nil
		l.cfg = c
		l.mu.Unlock()
		if first {
			g := &c.Global
			l.run("startup_script", g.StartupScript, g.StartupScriptTimeout, g)
		}
		if next != nil {
			next(c)
		}
	}
}

// stopped runs the shutdown script of the newest config, if the agent ever
// got one (a config that failed to load started nothing, and keepalived,
// which exits on it, runs no shutdown script either).
func (l *lifeScripts) stopped() {
	l.mu.Lock()
	c := l.cfg
	l.mu.Unlock()
	if c != nil {
		g := &c.Global
		l.run("shutdown_script", g.ShutdownScript, g.ShutdownScriptTimeout, g)
	}
}

// run runs one of the two scripts and waits for it, up to its timeout
// (keepalived's 10 s when unset). It is not cancelled by a stop signal: a
// script half way through its firewall or IPVS set-up would leave it
// broken, and the timeout bounds the wait.
func (l *lifeScripts) run(kind string, s *config.Script, timeout time.Duration, g *config.Global) {
	if s == nil {
		return
	}
	argv := s.Args
	if len(argv) == 0 {
		argv = config.SplitCommand(s.Command)
	}
	if len(argv) == 0 {
		return
	}
	if timeout <= 0 {
		timeout = config.DefaultLifeScriptTimeout
	}
	l.log.Info("running "+kind, "script", argv[0], "timeout_seconds", timeout.Seconds())
	r := script.Run(context.Background(), script.Spec{Argv: argv, User: s.User, Group: s.Group, Policy: g.ScriptPolicy(), Timeout: timeout})
	attrs := []any{"script", argv[0], "exit_code", r.ExitCode, "duration_seconds", r.Duration.Seconds()}
	switch {
	case r.OK():
		l.log.Info(kind+" succeeded", attrs...)
	case r.TimedOut:
		l.log.Warn(kind+" timed out: killed, going on", attrs...)
	case r.Refused:
		l.log.Warn(kind+" not run", append(attrs, "at", s.Pos, "err", r.Err)...)
	case r.Err != nil:
		l.log.Warn(kind+" failed: going on", append(attrs, "err", r.Err)...)
	default:
		l.log.Warn(kind+" failed: going on", attrs...)
	}
	// Counted with the notify scripts (keepwatch_notify_script_runs_total,
	// by script), refusals by script security included.
	if l.sink != nil {
		l.sink.Emit(event.Event{Kind: event.KindNotifyRun, ID: event.NewID(), Time: time.Now(), Name: argv[0],
			OK: r.OK(), ExitCode: r.ExitCode, Duration: r.Duration, Reason: event.Reason(r.Class()), Err: r.Err})
	}
}
