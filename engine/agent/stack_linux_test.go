//go:build !race

// The race detector doubles the runtime's nosplit stack reserve, which moves
// the shrink threshold this test is about.

package agent_test

import (
	"fmt"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/keepwatch/keepwatch/engine/netif/nskit/nskittest"
	"github.com/keepwatch/keepwatch/engine/vrrp"
)

// instanceCost measures the goroutine stack each running instance keeps
// once start-up is over and the GC has had its chance to shrink it (issue
// 12), and the heap it holds then: n real instances, in a network namespace, MASTER at advert_int 1, so
// they are parked in their select when collected. The runtime halves a
// stack at a collection only when less than a quarter of it is in use,
// counting an 800-byte nosplit reserve, so a parked instance goroutine whose
// frames (goroutine wrapper, task.run, router.Instance.Run, selectgo,
// gopark) pass ~1.2 KiB keeps 8 KiB for good: ~9.5-9.8 KiB per instance
// with Run's select-case bodies inline (a 0x2d0-byte frame). With them out
// of line (0xf8 bytes) the stacks shrink to 4 KiB: ~4.9-6.2 KiB per
// instance, the agent's few other goroutines shared out. 2 KiB is out of
// reach while an instance parks in a select (selectgo's own frame).
//
// The heap figure is the agent's own per-instance heap (config, plan,
// router instance and members, machine, channels, the parked select's
// sudogs): no metrics or tracing sinks here (metrics' share has
// TestInstanceHeapCost). It is reported, not bounded: the first
// measurement in a process also carries one-time costs shared out (~9.3
// KiB per instance at 100, against 5.0-5.6 KiB for the next ones).
func instanceCost(t testing.TB, n int) (stack, heap float64) {
	t.Helper()
	l := nskittest.New(t, "stack", 1)
	x := l.Node(1)
	var cfg strings.Builder
	fmt.Fprintf(&cfg, "net_namespace %s\nglobal_defs {\n\trouter_id kw_stack\n\tvrrp_garp_master_delay 0\n}\n", x.NS)
	for i := 1; i <= n; i++ {
		fmt.Fprintf(&cfg, "vrrp_instance VI_%d {\n\tstate BACKUP\n\tinterface %s\n\tvirtual_router_id %d\n\tpriority 100\n\tadvert_int 1\n\tvirtual_ipaddress {\n\t\t198.51.100.%d/32\n\t}\n}\n",
			i, x.Link, i, i)
	}
	conf := filepath.Join(t.TempDir(), "keepwatch.conf")
	writeFile(t, conf, cfg.String())
	mem := func() (stack, heap uint64) {
		// Each collection halves a stack at most once.
		for range 4 {
			runtime.GC()
		}
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		return ms.StackInuse, ms.HeapAlloc
	}
	before, heapBefore := mem()
	goBefore := runtime.NumGoroutine()

	a, _ := startAgent(t, conf)
	deadline := time.Now().Add(30 * time.Second)
	for {
		masters := 0
		for _, s := range a.Status() {
			if s.State == vrrp.StateMaster {
				masters++
			}
		}
		if masters == n {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d instances MASTER after 30 s", masters, n)
		}
		time.Sleep(100 * time.Millisecond)
	}
	// Past the takeover's gratuitous ARPs and events.
	time.Sleep(time.Second)
	after, heapAfter := mem()
	goAfter := runtime.NumGoroutine()
	stack = float64(after-before) / float64(n)
	heap = (float64(heapAfter) - float64(heapBefore)) / float64(n)
	t.Logf("%d goroutines more, stacks %d → %d bytes: %.0f bytes per instance (the agent's other goroutines shared out); heap %d → %d bytes: %.0f per instance",
		goAfter-goBefore, before, after, stack, heapBefore, heapAfter, heap)
	return stack, heap
}

// TestInstanceStack fails if a parked instance's stack stops shrinking to
// 4 KiB (instanceCost): at 8 KiB per instance the figure is at least
// 8,192 bytes, at 4 KiB it measures ~4.9-6.2 KiB. Nothing here is timed;
// the bound sits between the two.
func TestInstanceStack(t *testing.T) {
	const bound = 7 << 10
	if per, _ := instanceCost(t, 100); per >= bound {
		t.Errorf("%.0f bytes of goroutine stack per running instance, want under %d: a parked instance's frames (router.Instance.Run and under it) are back over a quarter of an 8 KiB stack", per, bound)
	}
}

// BenchmarkInstanceStack reports instanceCost's figures for 100 instances.
//
//	go test -run '^$' -bench BenchmarkInstanceStack -benchtime 1x ./engine/agent/
func BenchmarkInstanceStack(b *testing.B) {
	stack, heap := instanceCost(b, 100)
	b.ReportMetric(stack, "stack-B/instance")
	b.ReportMetric(heap, "heap-B/instance")
	for range b.N { // one measurement: the set-up is the work
	}
}
