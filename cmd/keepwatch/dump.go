package main

import (
	"log/slog"
	"os"
	"syscall"

	"github.com/keepwatch/keepwatch/engine/agent"
)

// sigJSON is keepalived's SIGJSON, SIGRTMIN+2: 36 on Linux, where glibc's
// SIGRTMIN is 34 (keepalived's signals.h; `kill -s RTMIN+2` sends it).
const sigJSON = syscall.Signal(36)

// dumpSignals are keepalived's dump signals, which the signal loop
// (run.go) hands to dumpOnSignal: SIGUSR1 (data), SIGUSR2 (stats) and
// SIGJSON.
var dumpSignals = []os.Signal{syscall.SIGUSR1, syscall.SIGUSR2, sigJSON}

// dumpOnSignal answers a dump signal. This placeholder only logs that the
// dump was asked for; the keepalived drop-in writes the dumps.
func dumpOnSignal(sig os.Signal, a *agent.Agent, log *slog.Logger) {
	_ = a
	log.Info("dump requested: not written by this build", "signal", sig.String())
}
