package metrics

import (
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/keepwatch/keepwatch/engine/event"
	"github.com/keepwatch/keepwatch/engine/vrrp"
)

// A deleted interface's series go; another interface's stay, and one that
// comes back starts again.
func TestInterfaceDeletedDropsSeries(t *testing.T) {
	m, reg := newTestMetrics(t)
	for _, name := range []string{"vrrp.51", "eth0"} {
		m.Emit(event.Event{Kind: event.KindInterfaceChanged, Interface: name, OK: true})
		m.Emit(event.Event{Kind: event.KindAdvertDropped, Interface: name, Family: vrrp.IPv4, VRID: 9, Reason: event.DropVRIDUnknown})
	}
	m.Emit(event.Event{Kind: event.KindInterfaceChanged, Interface: "vrrp.51", Reason: event.ReasonDeleted})
	const names = "keepwatch_track_interface_up"
	want := `
# HELP keepwatch_track_interface_up 1 if a tracked interface is up, else 0.
# TYPE keepwatch_track_interface_up gauge
keepwatch_track_interface_up{interface="eth0"} 1
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), names); err != nil {
		t.Error(err)
	}
	if n, err := testutil.GatherAndCount(reg, "keepwatch_vrrp_global_adverts_dropped_total"); err != nil || n != 1 {
		t.Errorf("global_adverts_dropped_total series: %d (%v), want eth0's only", n, err)
	}
	m.Emit(event.Event{Kind: event.KindInterfaceChanged, Interface: "vrrp.51", OK: false})
	if n, err := testutil.GatherAndCount(reg, names); err != nil || n != 2 {
		t.Errorf("interface_up series after vrrp.51 came back: %d (%v), want 2", n, err)
	}
}
