package obs

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"testing"
	"time"

	"github.com/keepwatch/keepwatch/engine/netif/nskit"
)

// profileEnv names a file for BenchmarkAgentSpansProfile's CPU profile.
const profileEnv = "KEEPWATCH_OBS_PROFILE"

// BenchmarkAgentSpansProfile runs the metrics+spans pair of
// BenchmarkAgentCPU (250 instances at 0.05 s, every advert a span exported
// to an OTLP receiver) and writes a 15 s CPU profile of the master, taken
// from its --debug.pprof endpoint, to the file $KEEPWATCH_OBS_PROFILE:
// where an exported span's cycles go. Read it with `go tool pprof`.
func BenchmarkAgentSpansProfile(b *testing.B) {
	out := os.Getenv(profileEnv)
	if out == "" {
		b.Skip("writes a CPU profile of a real agent; set " + profileEnv + " to the output file")
	}
	const n = 250
	lab, err := nskit.New(nskit.Options{Name: "prof", Nodes: 2})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = lab.Close() })
	recv := startCounter(b, lab.Node(1))
	dir := b.TempDir()
	master := startAgent(b, lab.Node(1), dir, manyConf(lab.Node(1), n, 200),
		agentOpts{otlp: recv.URL, advert: 1, extra: []string{"--debug.pprof"}})
	back := startAgent(b, lab.Node(2), dir, manyConf(lab.Node(2), n, 100), agentOpts{advert: 1})
	master.waitReady(30 * time.Second)
	back.waitReady(30 * time.Second)
	master.waitState(fmt.Sprintf("VI_%d", n), "master", 30*time.Second)
	time.Sleep(2 * time.Second)
	b.ResetTimer()
	client := lab.Node(1).HTTPClient(time.Minute, nil)
	resp, err := client.Get("http://" + master.addr + "/debug/pprof/profile?seconds=15")
	if err != nil {
		b.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b.Fatalf("profile: %s", resp.Status)
	}
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		b.Fatal(err)
	}
	if err := os.WriteFile(out, body, 0o600); err != nil {
		b.Fatal(err)
	}
	b.StopTimer()
	if v, ok := master.scrape().value("keepwatch_sink_events_dropped_total", "sink", "tracing"); ok {
		b.ReportMetric(v, "span_queue_dropped")
	}
	b.ReportMetric(float64(recv.count()), "spans_received")
	_ = master.proc.Stop()
	_ = back.proc.Stop()
}
