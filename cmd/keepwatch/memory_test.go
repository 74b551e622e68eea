package main

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"math"
	"runtime/debug"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keepwatch/keepwatch/engine/agent"
)

func TestParseBytes(t *testing.T) {
	for in, want := range map[string]int64{"": 0, "0": 0, "1048576": 1 << 20, "64MiB": 64 << 20, "512 KiB": 512 << 10, "2GiB": 2 << 30, "100B": 100} {
		if got, err := parseBytes(in); err != nil || got != want {
			t.Errorf("parseBytes(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"64MB", "-1", "x", "MiB", "9999999999TiB", "1.5GiB"} {
		if _, err := parseBytes(in); err == nil {
			t.Errorf("parseBytes(%q) accepted", in)
		}
	}
}

// The flags set the runtime's GC percent and soft limit; without flags
// (the keepalived drop-in) the default GC percent applies unless GOGC is
// set, and GOMEMLIMIT is left alone.
func TestMemorySettings(t *testing.T) {
	defer debug.SetGCPercent(debug.SetGCPercent(100))
	defer debug.SetMemoryLimit(debug.SetMemoryLimit(-1))
	given := func(names ...string) func(string) bool {
		return func(f string) bool {
			for _, n := range names {
				if n == f {
					return true
				}
			}
			return false
		}
	}
	t.Setenv("GOGC", "")
	t.Setenv("GOMEMLIMIT", "")
	if err := (memorySettings{}).apply(); err != nil {
		t.Fatal(err)
	}
	if got := debug.SetGCPercent(100); got != DefaultGCPercent {
		t.Errorf("drop-in default: GC percent %d, want %d", got, DefaultGCPercent)
	}
	if err := (memorySettings{gcPercent: 30, limit: "48MiB", changed: given("memory.gc-percent", "memory.limit")}).apply(); err != nil {
		t.Fatal(err)
	}
	if got := debug.SetGCPercent(100); got != 30 {
		t.Errorf("GC percent %d, want 30", got)
	}
	if got := debug.SetMemoryLimit(-1); got != 48<<20 {
		t.Errorf("memory limit %d, want %d", got, 48<<20)
	}
	// GOGC in the environment wins over the default, not over the flag.
	t.Setenv("GOGC", "200")
	debug.SetGCPercent(200)
	if err := (memorySettings{gcPercent: DefaultGCPercent, changed: given()}).apply(); err != nil {
		t.Fatal(err)
	}
	if got := debug.SetGCPercent(100); got != 200 {
		t.Errorf("with GOGC=200 and no flag: GC percent %d, want 200", got)
	}
	if err := (memorySettings{gcPercent: 0, changed: given("memory.gc-percent")}).apply(); err == nil {
		t.Error("--memory.gc-percent 0 accepted")
	}
	if err := (memorySettings{gcPercent: 50, limit: "lots", changed: given("memory.limit")}).apply(); err == nil {
		t.Error("--memory.limit lots accepted")
	}
	if err := (memorySettings{gcPercent: 50, limit: "0", changed: given("memory.limit")}).apply(); err != nil {
		t.Fatal(err)
	}
	if got := debug.SetMemoryLimit(-1); got != math.MaxInt64 {
		t.Errorf("--memory.limit 0: limit %d, want none", got)
	}
}

// Exporting advert spans raises the GC percent, unless the flag or GOGC
// set one; export off, or export without advert spans, leaves it alone.
func TestMemorySettingsSpans(t *testing.T) {
	defer debug.SetGCPercent(debug.SetGCPercent(100))
	given := func(name string) func(string) bool { return func(f string) bool { return f == name } }
	t.Setenv("GOGC", "")
	for _, c := range []struct {
		m        memorySettings
		exported bool
		ratio    float64
		want     int
	}{
		{memorySettings{}, true, 1, SpanExportGCPercent},                                                           // drop-in
		{memorySettings{gcPercent: DefaultGCPercent, changed: given("log.level")}, true, 0.5, SpanExportGCPercent}, // flags, not this one
		{memorySettings{}, false, 1, DefaultGCPercent},                                                             // no endpoint
		{memorySettings{}, true, 0, DefaultGCPercent},                                                              // no advert spans
		{memorySettings{gcPercent: 30, changed: given("memory.gc-percent")}, true, 1, 30},
	} {
		if err := c.m.apply(); err != nil {
			t.Fatal(err)
		}
		c.m.spans(c.exported, c.ratio)
		if got := debug.SetGCPercent(100); got != c.want {
			t.Errorf("%+v, exported %v, advert ratio %v: GC percent %d, want %d", c.m, c.exported, c.ratio, got, c.want)
		}
	}
	t.Setenv("GOGC", "200")
	debug.SetGCPercent(200)
	(memorySettings{}).spans(true, 1)
	if got := debug.SetGCPercent(100); got != 200 {
		t.Errorf("with GOGC=200: GC percent %d, want 200", got)
	}
}

// retrim trims the executable's pages again once RssFile has grown: with no
// growth allowed, the pages the test faults back in between two checks are
// enough, and the trim is logged.
func TestRetrim(t *testing.T) {
	var buf syncBuffer
	log := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	// Start from trimmed page tables, as releaseAfterStart does: what the
	// test has run so far is resident and would not grow.
	if _, err := agent.TrimExecutablePages(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); retrim(ctx, log, 20*time.Millisecond, 0) }()
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(buf.String(), "executable pages trimmed") {
		if time.Now().After(deadline) {
			cancel()
			<-done
			t.Fatalf("no trim logged in 10 s: %q", buf.String())
		}
		// Run code that is not in the loop's pages: formatting, parsing.
		_, _ = parseBytes(fmt.Sprint(time.Now().UnixNano() % 1000))
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	<-done
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
