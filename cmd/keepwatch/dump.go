package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/keepwatch/keepwatch/engine/agent"
	"github.com/keepwatch/keepwatch/engine/dump"
	"github.com/keepwatch/keepwatch/tracing/logsink"
)

// dumpSignals are keepalived's dump signals (keepalived --signum: DATA,
// STATS, STATS_CLEAR, JSON). Without a handler Go's default for SIGUSR1
// and SIGUSR2 is to exit, which a keepalived user's `kill -USR1` must not do.
var dumpSignals = []os.Signal{sigData, sigStats, sigStatsClear, sigJSON}

// dumpOnSignal writes the dump keepalived writes for sig into its
// temporary directory ($TMPDIR, else /tmp): SIGUSR1 keepalived.data, SIGUSR2
// keepalived.stats, SIGRTMAX-1 keepalived.stats then zeroed counters,
// SIGRTMIN+2 keepalived.json. Other signals are not dumps and are ignored.
func dumpOnSignal(sig os.Signal, a *agent.Agent, log *slog.Logger) {
	c := a.Config()
	if c == nil {
		log.Warn("dump signal before a config is running: nothing written", "signal", sig.String())
		return
	}
	es := dumpEntries(a)
	var name string
	var write func(io.Writer) error
	switch sig {
	case sigData:
		name, write = dump.DataFile, func(w io.Writer) error { return dump.WriteData(w, c, es) }
	case sigStats, sigStatsClear:
		name, write = dump.StatsFile, func(w io.Writer) error { return dump.WriteStats(w, es) }
	case sigJSON:
		if len(es) == 0 {
			return // keepalived writes no JSON without VRRP instances (vrrp_print_json)
		}
		name, write = dump.JSONFile, func(w io.Writer) error { return dump.WriteJSON(w, es) }
	default:
		return
	}
	path, err := dump.WriteFile(dump.TmpDir(), name, write)
	if err != nil {
		log.Error("cannot write dump", "file", path, "err", err)
		return
	}
	if sig == sigStatsClear {
		a.ClearStats()
	}
	// keepalived's words (vrrp_daemon.c's signal handlers).
	what := map[os.Signal]string{sigData: "VRRP data", sigStats: "VRRP stats", sigStatsClear: "and clearing VRRP stats", sigJSON: "VRRP as json"}[sig]
	log.Info("printing VRRP data on signal", "signal", sig.String(), "file", path,
		logsink.TextKey, fmt.Sprintf("Printing %s for process(%d) on signal", what, os.Getpid()))
}

// dumpEntries is every instance as keepalived's dumps list them: in the
// config's order.
func dumpEntries(a *agent.Agent) []dump.Entry {
	st := a.Status()
	c := a.Config()
	es := make([]dump.Entry, 0, len(st))
	if c == nil {
		return es
	}
	for _, in := range c.Instances {
		for _, s := range st {
			if s.Name == in.Name {
				e := dump.Entry{Data: s.Data, Stats: s.Stats}
				for _, t := range s.Trackers {
					e.Trackers = append(e.Trackers, dump.Tracker{Kind: t.Kind, Name: t.Name, Known: t.Known, Up: t.Up, Fault: t.Fault, Value: t.Value})
				}
				es = append(es, e)
			}
		}
	}
	return es
}

// dumpConfigWhenReady is keepalived -d: once the config runs, its data dump
// goes to the log, a line a record, as keepalived logs it at start.
func dumpConfigWhenReady(ctx context.Context, a *agent.Agent, log *slog.Logger) {
	t := time.NewTicker(50 * time.Millisecond)
	defer t.Stop()
	for !a.Ready() {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
	var b bytes.Buffer
	if err := dump.WriteData(&b, a.Config(), dumpEntries(a)); err != nil {
		log.Error("dump-conf", "err", err)
		return
	}
	for _, line := range strings.Split(strings.TrimRight(b.String(), "\n"), "\n") {
		log.Info(line)
	}
}
