package main

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"os"
	"runtime/debug"
	"strconv"
	"strings"
	"time"

	"github.com/keepwatch/keepwatch/engine/agent"
)

// DefaultGCPercent is the agent's GOGC. Go's default, 100, lets the heap
// grow to twice what is live before collecting; the agent allocates almost
// nothing once running (the advert path allocates nothing), so collections
// are rare either way and a tighter goal costs next to no CPU while it
// keeps the resident heap near the working set (issue 12: at 250
// instances, RssAnon was about twice the live heap).
const DefaultGCPercent = 50

// SpanExportGCPercent is the agent's GOGC while advert spans are exported
// over OTLP (--trace.advert-ratio above 0 and an endpoint). Then the agent
// allocates about 3 KB per span (the SDK span, its snapshot and the OTLP
// exporter's transform and marshal), 15 MB/s at 250 instances × 0.05 s,
// all of it garbage once its batch is sent; at DefaultGCPercent that heap
// turns over several times a second, and the collector's marking of the
// live heap each time was a quarter to a third of a span's CPU (issue 12).
// A collection costs about the same whatever the garbage, so a goal four
// times the live heap instead of one and a half collects about five times
// less often for the same spans; the price is resident heap while spans
// are exported, which is not the agent's memory target. With export off
// nothing changes.
const SpanExportGCPercent = 400

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

// spans raises the GC percent to SpanExportGCPercent when spans are
// exported (exported: an OTLP endpoint is set) and adverts are among them
// (advertRatio above 0), unless --memory.gc-percent or GOGC chose one: an
// operator's setting wins, as in apply. Call it after apply.
func (m memorySettings) spans(exported bool, advertRatio float64) {
	if !exported || advertRatio <= 0 {
		return
	}
	if m.changed != nil && m.changed("memory.gc-percent") || os.Getenv("GOGC") != "" {
		return
	}
	debug.SetGCPercent(SpanExportGCPercent)
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

// Re-trimming the executable's pages (agent.TrimExecutablePages): every
// retrimEvery, RssFile is read (one read of /proc/self/status) and, if it
// has grown by more than retrimGrowthKiB since the last trim — scrapes,
// dumps and reloads run code the advert loop does not — the pages are
// trimmed again. A trim costs a read of /proc/self/smaps, one madvise per
// mapping, and the minor faults of the working set paging back in.
const (
	retrimEvery     = time.Minute
	retrimGrowthKiB = 2048
)

// releaseAfterStart returns the start-up's garbage to the kernel once
// start-up's transitions have settled (agent.StartupSettled): parsing the
// config and building every instance, its sockets and series leaves a heap
// peak that is garbage afterwards, and the runtime would otherwise hand
// those pages back only slowly. One forced collection, once, before the
// steady state; with it, the executable's pages that start-up touched leave
// the page tables (agent.ReleaseMemory), and are trimmed again at a low rate
// when they grow back (retrimEvery).
//
// Not at a fixed time after ready: at 1 s adverts the first takeover comes
// after Master_Down_Interval (~3.6 s), and its code and garbage arrived
// after a release made at 2 s (issue 12). The wait is bounded by
// releaseWaitMax, for a start-up that never settles (a BACKUP whose
// Master_Down_Interval is minutes).
func releaseAfterStart(ctx context.Context, settled func() bool, log *slog.Logger) {
	t := time.NewTicker(releasePoll)
	defer t.Stop()
	limit := time.After(releaseWaitMax)
wait:
	for !settled() {
		select {
		case <-ctx.Done():
			return
		case <-limit:
			break wait
		case <-t.C:
		}
	}
	// Let the takeover's events (logs, metrics, notify) and its first
	// gratuitous ARP burst drain.
	select {
	case <-ctx.Done():
		return
	case <-time.After(releaseDrain):
	}
	agent.ReleaseMemory(log, "start")
	retrim(ctx, log, retrimEvery, retrimGrowthKiB)
}

// The start-up release's timing (releaseAfterStart).
const (
	releasePoll    = 100 * time.Millisecond
	releaseDrain   = time.Second
	releaseWaitMax = time.Minute
)

// retrim trims the executable's pages again whenever RssFile has grown by
// more than growthKiB since the last trim, checking every period.
func retrim(ctx context.Context, log *slog.Logger, period time.Duration, growthKiB uint64) {
	last, err := agent.RssFileKiB()
	if err != nil {
		return
	}
	t := time.NewTicker(period)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		now, err := agent.RssFileKiB()
		if err != nil {
			return
		}
		if now <= last+growthKiB {
			continue
		}
		if _, err := agent.TrimExecutablePages(); err != nil {
			// Locked memory does not unlock itself: stop trying.
			log.Debug("executable pages not trimmed", "after", "growth", "err", err)
			return
		}
		last, _ = agent.RssFileKiB()
		log.Debug("executable pages trimmed", "after", "growth", "rss_file_kib_before", now, "rss_file_kib_after", last)
	}
}
