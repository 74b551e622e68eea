package metrics

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/keepwatch/keepwatch/engine/event"
)

// TestScriptSecurityViolations: runs refused as insecure are counted by
// kind; other failures are not.
func TestScriptSecurityViolations(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	m, err := New(reg, Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range []event.Event{
		{Kind: event.KindScriptRun, Name: "chk", Reason: "insecure"},
		{Kind: event.KindScriptRun, Name: "chk", Reason: "insecure"},
		{Kind: event.KindScriptRun, Name: "chk", Reason: "exit_code"},
		{Kind: event.KindNotifyRun, Name: "/etc/keepalived/n.sh", Reason: "insecure"},
		{Kind: event.KindProbe, Service: "vs", Name: "MISC_CHECK", Reason: "insecure"},
		{Kind: event.KindProbe, Service: "vs", Name: "MISC_CHECK", Reason: "exit"},
	} {
		m.Emit(e)
	}
	for kind, want := range map[string]float64{"track": 2, "notify": 1, "check": 1} {
		if got := testutil.ToFloat64(m.f.scriptSecurity.WithLabelValues(kind)); got != want {
			t.Errorf("keepwatch_script_security_violations_total{kind=%q} = %v, want %v", kind, got, want)
		}
	}
}
