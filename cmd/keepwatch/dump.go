package main

import (
	"log/slog"
	"os"

	"github.com/keepwatch/keepwatch/engine/agent"
)

// dumpOnSignal answers keepalived's dump signals: SIGUSR1 (data), SIGUSR2
// (stats) and SIGJSON (SIGRTMIN+2, JSON). This placeholder only logs that
// the dump was asked for; the keepalived drop-in writes the dumps.
func dumpOnSignal(sig os.Signal, a *agent.Agent, log *slog.Logger) {
	_ = a
	log.Info("dump requested: not written by this build", "signal", sig.String())
}
