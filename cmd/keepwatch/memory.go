package main

import (
	"context"
	"fmt"
	"math"
	"os"
	"runtime/debug"
	"strconv"
	"strings"
	"time"
)

// DefaultGCPercent is the agent's GOGC. Go's default, 100, lets the heap
// grow to twice what is live before collecting; the agent allocates almost
// nothing once running (the advert path allocates nothing), so collections
// are rare either way and a tighter goal costs next to no CPU while it
// keeps the resident heap near the working set (issue 12: at 250
// instances, RssAnon was about twice the live heap).
const DefaultGCPercent = 50

// memorySettings are the run flags --memory.gc-percent and --memory.limit.
// The keepalived drop-in, which has neither, leaves them zero: defaults.
type memorySettings struct {
	gcPercent int
	limit     string
	// changed reports which flags the command line gave (nil: none).
	changed func(flag string) bool
}

// apply sets the GC percent and the soft memory limit. The environment's
// GOGC and GOMEMLIMIT, which the Go runtime has already applied, win over
// the defaults but not over flags given on the command line.
func (m memorySettings) apply() error {
	changed := m.changed
	if changed == nil {
		changed = func(string) bool { return false }
		m.gcPercent = DefaultGCPercent
	}
	if changed("memory.gc-percent") || os.Getenv("GOGC") == "" {
		if m.gcPercent < -1 || m.gcPercent == 0 {
			return fmt.Errorf("--memory.gc-percent %d: want a positive percent, or -1 for no proportional collection", m.gcPercent)
		}
		debug.SetGCPercent(m.gcPercent)
	}
	if changed("memory.limit") || (os.Getenv("GOMEMLIMIT") == "" && m.limit != "") {
		n, err := parseBytes(m.limit)
		if err != nil {
			return fmt.Errorf("--memory.limit %q: %w", m.limit, err)
		}
		if n == 0 {
			n = math.MaxInt64 // none
		}
		debug.SetMemoryLimit(n)
	}
	return nil
}

// parseBytes reads a size as GOMEMLIMIT spells it: a number of bytes with
// an optional B, KiB, MiB, GiB or TiB suffix; empty or 0 is none.
func parseBytes(s string) (int64, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return 0, nil
	}
	mult := int64(1)
	for _, u := range []struct {
		suffix string
		mult   int64
	}{{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"TiB", 1 << 40}, {"B", 1}} {
		if strings.HasSuffix(s, u.suffix) {
			s, mult = strings.TrimSpace(strings.TrimSuffix(s, u.suffix)), u.mult
			break
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("want a size such as 64MiB or 67108864")
	}
	if n > math.MaxInt64/mult {
		return 0, fmt.Errorf("too large")
	}
	return n * mult, nil
}

// releaseAfterStart returns the start-up's garbage to the kernel once the
// agent is ready: parsing the config and building every instance, its
// sockets and series leaves a heap peak that is garbage afterwards, and
// the runtime would otherwise hand those pages back only slowly. One forced
// collection, once, before the steady state.
func releaseAfterStart(ctx context.Context, ready func() bool) {
	t := time.NewTicker(100 * time.Millisecond)
	defer t.Stop()
	for !ready() {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
	// Let the first transitions' events (logs, metrics, notify) drain.
	select {
	case <-ctx.Done():
		return
	case <-time.After(2 * time.Second):
	}
	debug.FreeOSMemory()
}
