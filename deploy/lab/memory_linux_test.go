package lab_test

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/keepwatch/keepwatch/deploy/lab"
)

// heapDirEnv, if set, names a directory where BenchmarkMemory leaves each
// keepwatch master's heap profile (go tool pprof -sample_index=inuse_space).
const heapDirEnv = "KEEPWATCH_BENCH_HEAP_DIR"

// baseBinEnv names an earlier keepwatch binary BenchmarkMemory measures
// beside the current one and keepalived.
const baseBinEnv = "KEEPWATCH_BENCH_BASE_BIN"

// BenchmarkMemory measures the resident memory of master and backup at 1
// and 250 VRRPv3 instances advertising every 0.05 s, keepwatch and
// keepalived alternately in the same run, each from a fresh start three
// times: the medians of VmRSS and of its anonymous (heap, stacks, runtime)
// and file-backed (binary and library pages touched) parts, from
// /proc/PID/status, and the ratios. keepalived's figures sum its parent and
// VRRP child, as a user's `ps` would. keepwatch is measured again after
// three /metrics scrapes of each node. BenchmarkFootprint adds CPU; this
// one says where the memory goes (issue 12).
func BenchmarkMemory(b *testing.B) {
	requireBench(b)
	if dir := os.Getenv(heapDirEnv); dir != "" {
		b.Setenv("KEEPWATCH_DEBUG_PPROF", "1")
	}
	for _, n := range []int{1, 250} {
		b.Run(fmt.Sprintf("%d_0.05s", n), func(b *testing.B) {
			for range b.N {
				memory(b, n, 50*time.Millisecond, 3)
			}
		})
	}
}

// memStatus is a process tree's resident memory, in bytes.
type memStatus struct{ rss, anon, file float64 }

func memory(b *testing.B, instances int, interval time.Duration, rounds int) {
	p := lab.Params{Instances: instances, Interval: interval}
	first := netip.AddrFrom4([4]byte{198, 51, 100, 1})
	last := netip.AddrFrom4([4]byte{198, 51, 100, byte(instances)})
	got := map[string][]memStatus{}
	// KEEPWATCH_BENCH_BASE_BIN, if set, is an earlier keepwatch build
	// measured in the same rounds: before and after a change, side by side.
	impls := []string{"keepwatch", "keepalived"}
	base := os.Getenv(baseBinEnv)
	if base != "" {
		impls = append(impls, "keepwatch-base")
	}
	for r := range rounds {
		// Rotate which goes first, so a load that changes over the run
		// weighs on each alike.
		for i := range impls {
			impl := impls[(i+r)%len(impls)]
			o := lab.Options{Nodes: 2, Params: p}
			name := "bmkw"
			switch impl {
			case "keepalived":
				o.Keepalived, name = []int{1, 2}, "bmka"
			case "keepwatch-base":
				o.Binary, name = base, "bmkb"
			}
			func() {
				c := newCluster(b, name, o)
				defer c.Close()
				waitHolders(b, c, []int{1}, 30*time.Second+10*interval, first, last)
				// Past start-up and several GC cycles at the advert rate.
				time.Sleep(5 * time.Second)
				for i, role := range []string{"master", "backup"} {
					n := c.Node(i + 1)
					m, err := readMem(n.Pids())
					if err != nil {
						b.Fatal(err)
					}
					got[impl+"-"+role] = append(got[impl+"-"+role], m)
					if dir := os.Getenv(heapDirEnv); dir != "" && impl == "keepwatch" {
						saveHeap(b, n, filepath.Join(dir, fmt.Sprintf("heap-%d-%s-%d.pb.gz", instances, role, r)))
					}
				}
				if impl == "keepalived" {
					return
				}
				// A Prometheus scrape builds the whole exposition in
				// memory: RSS again after three scrapes of each node, as
				// a scraped agent runs (keepalived has nothing alike).
				for range 3 {
					for i := range 2 {
						ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
						_, err := c.Node(i+1).Fetch(ctx, "/metrics")
						cancel()
						if err != nil {
							b.Fatal(err)
						}
					}
				}
				time.Sleep(5 * time.Second)
				for i, role := range []string{"master", "backup"} {
					m, err := readMem(c.Node(i + 1).Pids())
					if err != nil {
						b.Fatal(err)
					}
					got[impl+"-"+role+"-scraped"] = append(got[impl+"-"+role+"-scraped"], m)
				}
			}()
		}
	}
	load, _ := os.ReadFile("/proc/loadavg")
	for _, role := range []string{"master", "backup"} {
		k, a := medianMem(got["keepwatch-"+role]), medianMem(got["keepalived-"+role])
		for _, f := range []struct {
			name string
			k, a float64
		}{{"rss", k.rss, a.rss}, {"anon", k.anon, a.anon}, {"file", k.file, a.file}} {
			b.ReportMetric(f.k/(1<<20), "keepwatch-"+role+"-"+f.name+"-MiB")
			b.ReportMetric(f.a/(1<<20), "keepalived-"+role+"-"+f.name+"-MiB")
		}
		b.ReportMetric(k.rss/a.rss, "rss-ratio-"+role)
		ks := medianMem(got["keepwatch-"+role+"-scraped"])
		b.ReportMetric(ks.rss/(1<<20), "keepwatch-"+role+"-scraped-rss-MiB")
		b.Logf("%d instances at %g s, %s: keepwatch after 3 scrapes rss %.1f MiB (anon %.1f, file %.1f), ratio to keepalived %.2f",
			instances, interval.Seconds(), role, ks.rss/(1<<20), ks.anon/(1<<20), ks.file/(1<<20), ks.rss/a.rss)
		if base != "" {
			kb := medianMem(got["keepwatch-base-"+role])
			b.ReportMetric(kb.rss/(1<<20), "keepwatch-base-"+role+"-rss-MiB")
			kbs := medianMem(got["keepwatch-base-"+role+"-scraped"])
			b.Logf("%d instances at %g s, %s: keepwatch-base (%s) rss %.1f MiB (anon %.1f, file %.1f), ratio to keepalived %.2f; after 3 scrapes %.1f MiB",
				instances, interval.Seconds(), role, base, kb.rss/(1<<20), kb.anon/(1<<20), kb.file/(1<<20), kb.rss/a.rss, kbs.rss/(1<<20))
		}
		b.Logf("%d instances at %g s, %s, median of %d fresh starts: keepwatch rss %.1f MiB (anon %.1f, file %.1f); keepalived rss %.1f MiB (anon %.1f, file %.1f); ratio %.2f; load %s",
			instances, interval.Seconds(), role, rounds, k.rss/(1<<20), k.anon/(1<<20), k.file/(1<<20),
			a.rss/(1<<20), a.anon/(1<<20), a.file/(1<<20), k.rss/a.rss, strings.Join(strings.Fields(string(load))[:3], " "))
	}
}

// readMem sums VmRSS, RssAnon and RssFile+RssShmem over pids.
func readMem(pids []int) (memStatus, error) {
	var m memStatus
	if len(pids) == 0 {
		return m, fmt.Errorf("no process")
	}
	for _, pid := range pids {
		b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "status"))
		if err != nil {
			return m, err
		}
		for _, l := range strings.Split(string(b), "\n") {
			f := strings.Fields(l)
			if len(f) < 2 {
				continue
			}
			kb, _ := strconv.ParseFloat(f[1], 64)
			switch f[0] {
			case "VmRSS:":
				m.rss += kb * 1024
			case "RssAnon:":
				m.anon += kb * 1024
			case "RssFile:", "RssShmem:":
				m.file += kb * 1024
			}
		}
	}
	return m, nil
}

// medianMem is the median of each field on its own.
func medianMem(ms []memStatus) memStatus {
	return memStatus{
		rss:  medianOf(ms, func(m memStatus) float64 { return m.rss }),
		anon: medianOf(ms, func(m memStatus) float64 { return m.anon }),
		file: medianOf(ms, func(m memStatus) float64 { return m.file }),
	}
}

func saveHeap(b *testing.B, n *lab.Node, path string) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	prof, err := n.Fetch(ctx, "/debug/pprof/heap")
	if err != nil {
		b.Fatalf("node %d heap profile: %v", n.Index, err)
	}
	if err := os.WriteFile(path, prof, 0o644); err != nil {
		b.Fatal(err)
	}
	if g, err := n.Fetch(ctx, "/debug/pprof/goroutine?debug=1"); err == nil {
		_ = os.WriteFile(strings.TrimSuffix(path, ".pb.gz")+".goroutines.txt", g, 0o644)
	}
	// Where the anonymous memory is, which a sampled heap profile (one
	// sample per 512 KiB) cannot say at this size: the kernel's split of
	// the process's pages, and the Go runtime's (stacks, heap in use, idle
	// heap not yet returned, GC metadata), taken before the scrape that
	// reads the second pages in the exposition code.
	var rt []byte
	if r, err := os.ReadFile(fmt.Sprintf("/proc/%d/smaps_rollup", n.Pid())); err == nil {
		rt = append(rt, r...)
	}
	if m, err := n.Fetch(ctx, "/metrics"); err == nil {
		for line := range strings.SplitSeq(string(m), "\n") {
			if strings.HasPrefix(line, "go_memstats_") || strings.HasPrefix(line, "go_goroutines") || strings.HasPrefix(line, "go_gc_") {
				rt = append(rt, line+"\n"...)
			}
		}
	}
	_ = os.WriteFile(strings.TrimSuffix(path, ".pb.gz")+".runtime.txt", rt, 0o644)
}
