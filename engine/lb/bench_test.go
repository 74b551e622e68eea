package lb

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/keepwatch/keepwatch/engine/event"
	"github.com/keepwatch/keepwatch/engine/ipvs/ipvstest"
)

// BenchmarkHealthChange is the balancer's cost of one real server's change
// of health among 100 virtual servers of 100 real servers each (10,000):
// the event into its pool, the pool re-evaluated and the one virtual
// server's difference handed to the (in-memory) kernel. The kernel's own
// cost is engine/ipvs's BenchmarkKernelIPVS.
func BenchmarkHealthChange(b *testing.B) {
	var sb strings.Builder
	sb.WriteString("global_defs {\n  router_id bench\n}\n")
	for v := range 100 {
		fmt.Fprintf(&sb, "virtual_server 192.0.2.%d 80 {\n  lb_algo wrr\n  protocol TCP\n", v+1)
		for r := range 100 {
			fmt.Fprintf(&sb, "  real_server 198.51.%d.%d 8080 {\n    weight 1\n  }\n", 100+r/50, 1+r%50+v%2*50)
		}
		sb.WriteString("}\n")
	}
	cfg := loadText(b, sb.String())
	k := ipvstest.New()
	bal := New(Options{Kernel: k, ResyncInterval: time.Hour})
	runBalancer(b, bal, cfg)
	<-bal.Started()
	k.ResetCalls()
	target := "198.51.100.1:8080"
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		bal.onEvent(event.Event{Kind: event.KindRealServer, Service: "192.0.2.1:80/tcp", Target: target, OK: i%2 == 1, Value: 1})
		bal.kmu.Lock()
		bal.flushDirty()
		bal.kmu.Unlock()
	}
	b.StopTimer()
	if k.Mutations() < b.N {
		b.Fatalf("%d kernel changes for %d health changes", k.Mutations(), b.N)
	}
}
