package metrics

import (
	"net/netip"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/keepwatch/keepwatch/engine/event"
	"github.com/keepwatch/keepwatch/engine/vrrp"
)

// FuzzEmit: whatever an event carries (names from config files and the
// kernel, reasons, states out of range), Emit and a scrape never panic and
// the exposition stays lint-clean.
func FuzzEmit(f *testing.F) {
	for _, e := range scenario() {
		f.Add(uint8(e.Kind), e.Instance, e.Interface, e.Name, e.Service, e.Target, string(e.Reason),
			uint8(e.From), uint8(e.To), uint8(e.Family), e.VRID, int64(e.Priority), e.Addr.String(), e.OK)
	}
	f.Add(uint8(event.KindTransition), "VI\xff", "eth\xfe0", "", "", "", "r\xc3", uint8(9), uint8(200), uint8(7), uint8(1), int64(-5), "", false)
	f.Fuzz(func(t *testing.T, kind uint8, inst, iface, name, service, target, reason string,
		from, to, fam, vrid uint8, prio int64, addr string, ok bool) {
		reg := prometheus.NewPedanticRegistry()
		m, err := New(reg, Options{Now: func() time.Time { return t0 }})
		if err != nil {
			t.Fatal(err)
		}
		m.Declare(Declaration{
			Instances:      []Instance{{Name: inst, VRID: vrid, Interface: iface, Family: vrrp.Family(fam), Priority: int(prio), Interval: time.Second}},
			Scripts:        []Script{{Name: name}},
			VirtualServers: []VirtualServer{{Name: service, Checkers: []string{name}, RealServers: []RealServer{{Name: target}}}},
		})
		a, _ := netip.ParseAddr(addr)
		e := event.Event{Kind: event.Kind(kind % 32), ID: 1, Instance: inst, VRID: vrid, Interface: iface,
			Family: vrrp.Family(fam), From: vrrp.State(from), To: vrrp.State(to), Reason: event.Reason(reason),
			Priority: int(prio), BasePriority: int(prio), Name: name, Service: service, Target: target,
			Addr: a, OK: ok, Value: prio, Interval: time.Duration(prio), Duration: time.Duration(prio)}
		m.Emit(e)
		e.Kind = event.KindAdvertReceived
		m.Emit(e)
		m.Declare(Declaration{})
		m.Emit(e)
		if _, err := testutil.GatherAndLint(reg); err != nil {
			t.Fatalf("gather: %v", err)
		}
	})
}
