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
	recv         *receiver
}

// BenchmarkAgentCPU runs three master/backup pairs of 250 instances at
// 0.05 s side by side (5,000 adverts/s sent by each master): with
// metrics off, metrics only, and metrics plus every advert as a span
// exported to an OTLP receiver. It reports each pair's CPU over the same
// window and the ratios to "off"; allocations per advert from the Go
// runtime's malloc counter; and the master's /metrics scrape time and size.
func BenchmarkAgentCPU(b *testing.B) {
	if os.Getenv(benchEnv) == "" {
		b.Skip("runs real agents for ~30 s; deploy/bench.d/obs.sh sets " + benchEnv + "=1")
	}
	const n = 250
	window := 10 * time.Second
	if s := os.Getenv("KEEPWATCH_OBS_WINDOW"); s != "" {
		if d, err := time.ParseDuration(s); err == nil {
			window = d
		}
	}
	modes := []struct {
		name string
		opts agentOpts
	}{
		{"off", agentOpts{extra: []string{"--metrics.disabled"}}},
		{"metrics", agentOpts{}},
		{"metrics+spans", agentOpts{advert: 1}},
	}
	var pairs []*pair
	for k, m := range modes {
		lab, err := nskit.New(nskit.Options{Name: "bench" + strconv.Itoa(k), Nodes: 2})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { _ = lab.Close() })
		dir := b.TempDir()
		p := &pair{name: m.name}
		mo := m.opts
		if m.name == "metrics+spans" {
			p.recv = startReceiver(b, lab.Node(1))
			mo.otlp = p.recv.URL
		}
		p.master = startAgent(b, lab.Node(1), dir, manyConf(lab.Node(1), n, 200), mo)
		p.back = startAgent(b, lab.Node(2), dir, manyConf(lab.Node(2), n, 100), m.opts)
		pairs = append(pairs, p)
	}
	for _, p := range pairs {
		p.master.waitReady(30 * time.Second)
		p.back.waitReady(30 * time.Second)
		p.master.waitState(fmt.Sprintf("VI_%d", n), "master", 30*time.Second)
	}
	time.Sleep(2 * time.Second) // settle: every instance elected, GARPs done

	cpuOf := func(a *agent) float64 {
		t, err := cpuNanos(a.proc.Cmd.Process.Pid)
		if err != nil {
			b.Fatal(err)
		}
		return float64(t)
	}
	var agents []*agent
	for _, p := range pairs {
		agents = append(agents, p.master, p.back)
	}
	// No scrape inside the windows: a scrape of 250 instances (and the GC
	// of its garbage) is measured separately below. The machine is shared,
	// so the pairs run side by side and the window is cut into rounds:
	// each figure is the median over rounds.
	const rounds = 5
	cpuPct := map[string][]float64{} // "mode_role" -> per round
	ratios := map[string][]float64{}
	spans0 := len(pairs[2].recv.received())
	b.ResetTimer()
	start := time.Now()
	for range rounds {
		before := map[*agent]float64{}
		for _, a := range agents {
			before[a] = cpuOf(a)
		}
		t0 := time.Now()
		time.Sleep(window / rounds)
		elapsed := time.Since(t0).Seconds()
		cpu := map[string]float64{}
		for _, p := range pairs {
			for _, a := range []*agent{p.master, p.back} {
				c := (cpuOf(a) - before[a]) / 1e9 / elapsed
				cpu[p.name] += c
				role := "master"
				if a == p.back {
					role = "backup"
				}
				cpuPct[p.name+"_"+role] = append(cpuPct[p.name+"_"+role], c*100)
			}
		}
		for _, p := range pairs[1:] {
			ratios[p.name] = append(ratios[p.name], cpu[p.name]/cpu["off"])
		}
	}
	elapsed := time.Since(start).Seconds()
	spans1 := len(pairs[2].recv.received())
	b.StopTimer()
	for k, v := range cpuPct {
		b.ReportMetric(median(v), k+"_cpu_%")
	}
	for k, v := range ratios {
		b.ReportMetric(median(v), k+"/off_cpu_ratio")
	}
	spans := pairs[2].master.scrape()
	if v, ok := spans.value("keepwatch_sink_events_dropped_total", "sink", "tracing"); ok {
		b.ReportMetric(v, "span_queue_dropped")
	}
	// Received during the window; export lags a batch (5 s) behind.
	b.ReportMetric(float64(spans1-spans0)/elapsed, "spans_received/s")

	// The master's /metrics with 250 instances, as Prometheus sees it.
	var times []time.Duration
	size := 0
	for range 20 {
		t0 := time.Now()
		code, body, err := pairs[1].master.get("/metrics")
		if err != nil || code != 200 {
			b.Fatalf("scrape: %d %v", code, err)
		}
		times = append(times, time.Since(t0))
		size = len(body)
	}
	slices.Sort(times)
	b.ReportMetric(float64(times[len(times)/2].Microseconds())/1000, "scrape_ms_median")
	b.ReportMetric(float64(size), "scrape_bytes")
}

func median(v []float64) float64 {
	v = slices.Clone(v)
	slices.Sort(v)
	return v[len(v)/2]
}
