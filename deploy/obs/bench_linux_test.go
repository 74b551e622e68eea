package obs

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/keepwatch/keepwatch/engine/netif/nskit"
)

// baseBinEnv names an earlier keepwatch build to measure beside this one,
// with metrics and spans, or with metrics only if baseModeEnv is "metrics".
const (
	baseBinEnv  = "KEEPWATCH_BENCH_BASE_BIN"
	baseModeEnv = "KEEPWATCH_OBS_BASE_MODE"
)

// benchEnv gates the agent benchmarks: each runs real agents for tens of
// seconds, so `go test -bench=.` over the module leaves them to
// deploy/bench.d/obs.sh, which sets it.
const benchEnv = "KEEPWATCH_OBS_BENCH"

// manyConf is n VRRPv3 instances at 0.05 s on one link (VRIDs 1..n, one
// VIP each from 203.0.113.0/24 and 198.51.100.0/24).
func manyConf(node *nskit.Node, n, prio int) string {
	var b strings.Builder
	fmt.Fprintf(&b, "global_defs {\n  router_id bench%d\n}\n", node.Index)
	for i := 1; i <= n; i++ {
		vip := fmt.Sprintf("203.0.113.%d/24", i)
		if i > 250 {
			vip = fmt.Sprintf("198.51.100.%d/24", i-250)
		}
		fmt.Fprintf(&b, "\nvrrp_instance VI_%d {\n  state BACKUP\n  interface %s\n  virtual_router_id %d\n  priority %d\n  advert_int 0.05\n  version 3\n  virtual_ipaddress {\n    %s\n  }\n}\n",
			i, node.Link, i, prio, vip)
	}
	return b.String()
}

// cpuNanos is a process's CPU time: the sum of its threads' run time in
// /proc/PID/task/*/schedstat (nanoseconds; /proc/PID/stat counts 1/100 s).
// Go's threads live as long as the process, so none is lost by exiting.
func cpuNanos(pid int) (int64, error) {
	tasks, err := filepath.Glob(filepath.Join("/proc", strconv.Itoa(pid), "task", "*", "schedstat"))
	if err != nil || len(tasks) == 0 {
		return 0, fmt.Errorf("no tasks of pid %d", pid)
	}
	var sum int64
	for _, t := range tasks {
		b, err := os.ReadFile(t)
		if err != nil {
			continue // the thread just exited
		}
		f := strings.Fields(string(b))
		if len(f) == 0 {
			continue
		}
		v, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil {
			return 0, err
		}
		sum += v
	}
	return sum, nil
}

// pair is a master and a backup agent running the same n instances.
type pair struct {
	name         string
	master, back *agent
}

type benchMode struct {
	name string
	opts agentOpts
}

// BenchmarkAgentCPU runs three master/backup pairs of 250 instances at
// 0.05 s side by side (5,000 adverts/s sent by each master), one with
// metrics off, one with metrics only, one with metrics and every advert a
// span exported to an OTLP receiver, and reports their CPU over the same
// windows and the ratios to "off". The three labs differ by a few percent
// even running the same mode, so the modes rotate over the labs in three
// phases and each figure is a median over every round of every phase.
// Then the master's /metrics scrape time and size.
//
// Each round's ratios are logged ("rounds MODE/off: X Y ..."), so the
// spread shows; deploy/bench.d/obs.sh runs the benchmark five times
// and reports the median of the runs' ratios (issue 12: the metrics budget
// is judged on the median of at least five interleaved runs).
//
// With KEEPWATCH_BENCH_BASE_BIN set to an earlier keepwatch build, a fourth
// lab runs that build with metrics and spans ("base:metrics+spans") in the
// same rounds, so a change to the span path is measured against the build
// before it under the same load; with KEEPWATCH_OBS_BASE_MODE=metrics, the
// earlier build runs metrics only ("base:metrics").
func BenchmarkAgentCPU(b *testing.B) {
	if os.Getenv(benchEnv) == "" {
		b.Skip("runs real agents for about a minute; deploy/bench.d/obs.sh sets " + benchEnv + "=1")
	}
	const n = 250
	window := 8 * time.Second // per phase
	if s := os.Getenv("KEEPWATCH_OBS_WINDOW"); s != "" {
		if d, err := time.ParseDuration(s); err == nil {
			window = d
		}
	}
	modes := []benchMode{
		{"off", agentOpts{extra: []string{"--metrics.disabled"}}},
		{"metrics", agentOpts{}},
		{"metrics+spans", agentOpts{advert: 1}},
	}
	if base := os.Getenv(baseBinEnv); base != "" {
		m := benchMode{"base:metrics+spans", agentOpts{advert: 1, bin: base}}
		if os.Getenv(baseModeEnv) == "metrics" {
			m = benchMode{"base:metrics", agentOpts{bin: base}}
		}
		modes = append(modes, m)
	}
	type benchLab struct {
		lab  *nskit.Lab
		recv *receiver
		dir  string
	}
	var labs []benchLab
	for k := range modes {
		lab, err := nskit.New(nskit.Options{Name: "bench" + strconv.Itoa(k), Nodes: 2})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { _ = lab.Close() })
		labs = append(labs, benchLab{lab: lab, recv: startCounter(b, lab.Node(1)), dir: b.TempDir()})
	}
	cpuOf := func(a *agent) float64 {
		t, err := cpuNanos(a.proc.Cmd.Process.Pid)
		if err != nil {
			b.Fatal(err)
		}
		return float64(t)
	}
	const rounds = 4
	cpuPct := map[string][]float64{} // "mode_role" -> per round
	ratios := map[string][]float64{}
	// Transitions logged inside the windows: on a loaded machine a
	// backup that misses three adverts takes over, and the round that
	// holds the takeover (VIPs, gratuitous ARPs, logs, a GC) measures it,
	// not the mode. Reported, so such runs can be told apart.
	transitions := map[string]int{}
	var spanRate []float64
	var scrapeMs []float64
	scrapeBytes := 0
	b.ResetTimer()
	for phase := range modes {
		var pairs []*pair
		for k, bl := range labs {
			m := modes[(k+phase)%len(modes)]
			mo := m.opts
			if mo.advert > 0 {
				mo.otlp = bl.recv.URL
			}
			p := &pair{name: m.name}
			p.master = startAgent(b, bl.lab.Node(1), bl.dir, manyConf(bl.lab.Node(1), n, 200), mo)
			p.back = startAgent(b, bl.lab.Node(2), bl.dir, manyConf(bl.lab.Node(2), n, 100), m.opts) // no OTLP endpoint: export off
			pairs = append(pairs, p)
		}
		var spansLab *benchLab
		for k, p := range pairs {
			p.master.waitReady(30 * time.Second)
			p.back.waitReady(30 * time.Second)
			p.master.waitState(fmt.Sprintf("VI_%d", n), "master", 30*time.Second)
			if p.name == "metrics+spans" {
				spansLab = &labs[k]
			}
		}
		time.Sleep(2 * time.Second) // settle: every instance elected, GARPs done

		// No scrape inside the windows: a scrape (and the GC of its
		// garbage) is measured apart, below.
		spans0 := spansLab.recv.count()
		t0 := time.Now()
		for range rounds {
			before := map[*agent]float64{}
			logged := map[*agent]int{}
			for _, p := range pairs {
				logged[p.master], logged[p.back] = transitionsLogged(p.master), transitionsLogged(p.back)
				before[p.master], before[p.back] = cpuOf(p.master), cpuOf(p.back)
			}
			r0 := time.Now()
			time.Sleep(window / rounds)
			elapsed := time.Since(r0).Seconds()
			cpu := map[string]float64{}
			for _, p := range pairs {
				for role, a := range map[string]*agent{"master": p.master, "backup": p.back} {
					c := (cpuOf(a) - before[a]) / 1e9 / elapsed
					cpu[p.name] += c
					cpuPct[p.name+"_"+role] = append(cpuPct[p.name+"_"+role], c*100)
				}
				for _, a := range []*agent{p.master, p.back} {
					transitions[p.name] += transitionsLogged(a) - logged[a]
				}
			}
			for _, m := range modes[1:] {
				ratios[m.name] = append(ratios[m.name], cpu[m.name]/cpu["off"])
			}
		}
		// Spans arrive up to an export interval (1 s) behind; the rate is over the window.
		spanRate = append(spanRate, float64(spansLab.recv.count()-spans0)/time.Since(t0).Seconds())

		b.StopTimer()
		for _, p := range pairs {
			if p.name != "metrics" {
				continue
			}
			// The master's /metrics with 250 instances, as Prometheus sees it.
			for range 10 {
				s0 := time.Now()
				code, body, err := p.master.get("/metrics")
				if err != nil || code != 200 {
					b.Fatalf("scrape: %d %v", code, err)
				}
				scrapeMs = append(scrapeMs, float64(time.Since(s0).Microseconds())/1000)
				scrapeBytes = len(body)
			}
		}
		for _, p := range pairs {
			if p.name == "metrics+spans" {
				if v, ok := p.master.scrape().value("keepwatch_sink_events_dropped_total", "sink", "tracing"); ok && v > 0 {
					b.ReportMetric(v, "span_queue_dropped")
				}
			}
			_ = p.master.proc.Stop()
			_ = p.back.proc.Stop()
		}
		b.StartTimer()
	}
	b.StopTimer()
	for k, v := range cpuPct {
		b.ReportMetric(median(v), k+"_cpu_%")
	}
	// Every round's ratio, one line per mode in round order: the testing
	// package keeps only a benchmark's first ten lines of log.
	for _, m := range modes[1:] {
		var line strings.Builder
		for _, r := range ratios[m.name] {
			fmt.Fprintf(&line, " %.3f", r)
		}
		b.Logf("rounds %s/off:%s", m.name, line.String())
	}
	for _, m := range modes {
		b.ReportMetric(float64(transitions[m.name]), m.name+"_transitions")
	}
	for k, v := range ratios {
		b.ReportMetric(median(v), k+"/off_cpu_ratio")
		// The same from the medians of each agent's CPU: less swayed by
		// rounds where other work on the machine hit one lab.
		b.ReportMetric((median(cpuPct[k+"_master"])+median(cpuPct[k+"_backup"]))/
			(median(cpuPct["off_master"])+median(cpuPct["off_backup"])), k+"/off_cpu_ratio_of_medians")
	}
	b.ReportMetric(median(spanRate), "spans_received/s")
	b.ReportMetric(median(scrapeMs), "scrape_ms_median")
	b.ReportMetric(float64(scrapeBytes), "scrape_bytes")
}

// transitionsLogged counts the VRRP transitions an agent has logged
// (logsink's "vrrp transition" records; JSON logs, every mode).
func transitionsLogged(a *agent) int {
	return strings.Count(a.log.String(), `"msg":"vrrp transition"`)
}

func median(v []float64) float64 {
	v = slices.Clone(v)
	slices.Sort(v)
	return v[len(v)/2]
}
