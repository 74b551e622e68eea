package lab_test

import (
	"context"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/keepwatch/keepwatch/deploy/lab"
)

// binsEnv lists, comma-separated, the keepwatch builds BenchmarkMemoryDrift
// compares (default: the tree's, and KEEPWATCH_BENCH_BASE_BIN if set).
const binsEnv = "KEEPWATCH_BENCH_BINS"

// BenchmarkMemoryDrift follows the resident memory of master and backup at
// 250 VRRPv3 instances every 0.05 s for 30 s after the VIPs are held, with
// no scrape until the end (BenchmarkMemory reads once at 5 s and then
// scrapes, which pages in the exposition code): VmRSS, RssAnon and RssFile
// at 5, 10, 20 and 30 s, then the runtime's own figures (goroutines, stack
// and heap in use, allocations and GC cycles so far) from one /metrics
// scrape. Each build in
// KEEPWATCH_BENCH_BINS is measured in turn, rotated per round
// (KEEPWATCH_BENCH_ROUNDS, default 2), so several builds can be compared
// in one run.
//
// Why: after the start-up trim (engine/agent.TrimExecutablePages) RssFile
// creeps up as the runtime reads the executable's tables again (pclntab and
// funcdata in stack scans and preemption, each fault mapping a 64 KiB
// fault-around window), and one reading cannot tell a build's difference
// from that creep (issue 12; deploy/bench.d/FOOTPRINT.md).
func BenchmarkMemoryDrift(b *testing.B) {
	requireBench(b)
	var bins []string
	if s := os.Getenv(binsEnv); s != "" {
		bins = strings.Split(s, ",")
	} else {
		bins = []string{keepwatchBinary(b)}
		if base := os.Getenv(baseBinEnv); base != "" {
			bins = append(bins, base)
		}
	}
	rounds := 2
	if v, err := strconv.Atoi(os.Getenv(roundsEnv)); err == nil && v > 0 {
		rounds = v
	}
	const n = 250
	p := lab.Params{Instances: n, Interval: 50 * time.Millisecond}
	first := netip.AddrFrom4([4]byte{198, 51, 100, 1})
	last := netip.AddrFrom4([4]byte{198, 51, 100, n})
	for range b.N {
		for r := range rounds {
			for i := range bins {
				memoryDrift(b, bins[(i+r)%len(bins)], p, first, last)
			}
		}
	}
	load, _ := os.ReadFile("/proc/loadavg")
	b.Logf("load %s", strings.Join(strings.Fields(string(load))[:3], " "))
}

func memoryDrift(b *testing.B, bin string, p lab.Params, first, last netip.Addr) {
	c := newCluster(b, "bmdr", lab.Options{Nodes: 2, Params: p, Binary: bin})
	defer c.Close()
	waitHolders(b, c, []int{1}, 30*time.Second, first, last)
	held := time.Now()
	roles := []string{"master", "backup"}
	for _, at := range []time.Duration{5 * time.Second, 10 * time.Second, 20 * time.Second, 30 * time.Second} {
		time.Sleep(time.Until(held.Add(at)))
		for k, role := range roles {
			m, err := readMem(c.Node(k + 1).Pids())
			if err != nil {
				b.Fatal(err)
			}
			b.Logf("%s %s +%v: rss %.2f MiB (anon %.2f, file %.2f)", bin, role, at, m.rss/(1<<20), m.anon/(1<<20), m.file/(1<<20))
		}
	}
	for k, role := range roles {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		out, err := c.Node(k+1).Fetch(ctx, "/metrics")
		cancel()
		if err != nil {
			b.Fatal(err)
		}
		var rt []string
		for line := range strings.SplitSeq(string(out), "\n") {
			for _, name := range []string{"go_goroutines", "go_memstats_stack_inuse_bytes", "go_memstats_heap_inuse_bytes", "go_memstats_mallocs_total", "go_gc_duration_seconds_count"} {
				if v, ok := strings.CutPrefix(line, name+" "); ok {
					rt = append(rt, name+"="+v)
				}
			}
		}
		b.Logf("%s %s runtime: %s", bin, role, strings.Join(rt, " "))
	}
}
