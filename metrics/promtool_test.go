package metrics

import (
	"bytes"
	"net/http/httptest"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

// TestPromtoolCheckMetrics pipes a real scrape of a scripted scenario, in
// both exposition formats, through `promtool check metrics` (Prometheus's own
// linter). Without promtool it fails in CI and skips only under -short.
func TestPromtoolCheckMetrics(t *testing.T) {
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		if os.Getenv("CI") == "" && testing.Short() {
			t.Skip("promtool not installed (Debian package prometheus)")
		}
		t.Fatal("promtool not installed (Debian package prometheus; make deps installs it)")
	}
	// As run.go serves it: Handler over the plain registry.
	reg := prometheus.NewPedanticRegistry()
	m, err := New(reg, Options{Version: "1.2.3", IPVS: &fakeIPVS{services: []IPVSService{{
		Name: "192.0.2.10:80/tcp", Stats: IPVSStats{Connections: 10},
		Destinations: []IPVSDestination{{Name: "198.51.100.1:80", Weight: 5}},
	}}}, Traces: fakeTraces{}, Queues: []Queue{fakeQueue{}}})
	if err != nil {
		t.Fatal(err)
	}
	m.Declare(declaration())
	for _, e := range scenario() {
		m.Emit(e)
	}
	for _, accept := range []string{"text/plain", "application/openmetrics-text; version=1.0.0"} {
		rec := httptest.NewRecorder()
		req := httptest.NewRequest("GET", "/metrics", nil)
		req.Header.Set("Accept", accept)
		m.Handler(reg).ServeHTTP(rec, req)
		if rec.Code != 200 || rec.Body.Len() == 0 {
			t.Fatalf("%s: scrape status %d, %d bytes", accept, rec.Code, rec.Body.Len())
		}
		if strings.HasPrefix(accept, "application/openmetrics") {
			// promtool lints the text format; check the negotiated body at least ends as OpenMetrics must.
			if !bytes.HasSuffix(bytes.TrimSpace(rec.Body.Bytes()), []byte("# EOF")) {
				t.Errorf("OpenMetrics body does not end with # EOF")
			}
			continue
		}
		cmd := exec.Command(promtool, "check", "metrics")
		cmd.Stdin = bytes.NewReader(rec.Body.Bytes())
		out, err := cmd.CombinedOutput()
		if err != nil || len(bytes.TrimSpace(out)) != 0 {
			t.Errorf("promtool check metrics: %v\n%s", err, out)
		}
	}
}
