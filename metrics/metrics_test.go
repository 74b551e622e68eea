package metrics

import (
	"errors"
	"fmt"
	"math"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"

	"github.com/keepwatch/keepwatch/engine/event"
	"github.com/keepwatch/keepwatch/engine/vrrp"
)

var t0 = time.Date(2026, 11, 28, 6, 0, 0, 0, time.UTC)

type fakeIPVS struct {
	services []IPVSService
	err      error
}

func (f *fakeIPVS) IPVSStats() ([]IPVSService, error) { return f.services, f.err }

type fakeQueue struct{}

func (fakeQueue) QueueName() string    { return "tracing" }
func (fakeQueue) QueueLen() int        { return 3 }
func (fakeQueue) QueueDropped() uint64 { return 7 }

type fakeTraces struct{}

func (fakeTraces) TraceID(e event.Event) (string, bool) {
	if e.Kind != event.KindTransition {
		return "", false
	}
	return "4bf92f3577b34da6a3ce929d0e0e4736", true
}

var vip1 = netip.MustParseAddr("192.0.2.10")

func declaration() Declaration {
	return Declaration{
		Instances: []Instance{{
			Name: "VI_1", VRID: 51, Interface: "eth0", Family: vrrp.IPv4, Version: 3,
			Priority: 100, Interval: time.Second, VIPs: []netip.Addr{vip1}, Segment: "192.0.2.0/24",
		}},
		Scripts: []Script{{Name: "chk_nginx"}},
		VirtualServers: []VirtualServer{{
			Name:        "192.0.2.10:80/tcp",
			Checkers:    []string{"http"},
			RealServers: []RealServer{{Name: "198.51.100.1:80", Weight: 5, Up: true}},
		}},
	}
}

// newTestMetrics returns metrics over a pedantic registry and the gatherer
// of everything /metrics serves (the registry and the bulk families).
func newTestMetrics(t testing.TB) (*Metrics, prometheus.Gatherer) {
	t.Helper()
	reg := prometheus.NewPedanticRegistry()
	ipvs := &fakeIPVS{services: []IPVSService{{
		Name:  "192.0.2.10:80/tcp",
		Stats: IPVSStats{Connections: 10, PacketsIn: 100, PacketsOut: 90, BytesIn: 6400, BytesOut: 128000},
		Destinations: []IPVSDestination{{
			Name: "198.51.100.1:80", Weight: 5, ActiveConns: 2, InactiveConns: 1,
			Stats: IPVSStats{Connections: 10, PacketsIn: 100, PacketsOut: 90, BytesIn: 6400, BytesOut: 128000},
		}},
	}}}
	m, err := New(reg, Options{Version: "1.2.3", Revision: "abc", Traces: fakeTraces{}, IPVS: ipvs,
		Queues: []Queue{fakeQueue{}}, Now: func() time.Time { return t0 }})
	if err != nil {
		t.Fatal(err)
	}
	m.Declare(declaration())
	return m, m.Gatherer(reg)
}

// scenario is a failed probe → the tracker lowers priority → the master
// resigns → it is backup and hears the peer: the chain DESIGN.md §3 names.
func scenario() []event.Event {
	id := event.Event{Instance: "VI_1", VRID: 51, Interface: "eth0", Family: vrrp.IPv4}
	ev := func(k event.Kind, at time.Duration, f func(*event.Event)) event.Event {
		e := id
		e.Kind, e.Time = k, t0.Add(at)
		if f != nil {
			f(&e)
		}
		return e
	}
	return []event.Event{
		ev(event.KindConfigLoaded, 0, func(e *event.Event) { e.Name = "/etc/keepalived/keepalived.conf" }),
		ev(event.KindTransition, 0, func(e *event.Event) { e.From, e.To, e.Reason = vrrp.StateInit, vrrp.StateBackup, event.ReasonStartup }),
		ev(event.KindAdvertReceived, 1*time.Second, func(e *event.Event) { e.Priority, e.Interval = 150, time.Second }),
		ev(event.KindAdvertReceived, 2*time.Second, func(e *event.Event) { e.Priority, e.Interval = 150, time.Second }),
		ev(event.KindAdvertReceived, 4500*time.Millisecond, func(e *event.Event) { e.Priority, e.Interval = 0, time.Second }),
		ev(event.KindTransition, 5*time.Second, func(e *event.Event) {
			e.From, e.To, e.Reason = vrrp.StateBackup, vrrp.StateMaster, event.ReasonPriorityZero
		}),
		ev(event.KindVIPAdded, 5*time.Second, func(e *event.Event) { e.Addr = vip1 }),
		ev(event.KindGratuitousSent, 5*time.Second, func(e *event.Event) { e.Addr = vip1 }),
		ev(event.KindGratuitousSent, 5*time.Second, func(e *event.Event) { e.Addr = netip.MustParseAddr("2001:db8::10") }),
		ev(event.KindAdvertSent, 5*time.Second, func(e *event.Event) { e.Priority, e.Duration = 100, 3*time.Millisecond }),
		ev(event.KindAdvertSent, 6*time.Second, func(e *event.Event) { e.Priority = 100 }),
		ev(event.KindAdvertDropped, 6*time.Second, func(e *event.Event) { e.Reason = event.DropAddressList }),
		ev(event.KindAdvertDropped, 6*time.Second, func(e *event.Event) { e.Reason = "brand_new" }),
		ev(event.KindAdvertDropped, 6*time.Second, func(e *event.Event) { e.Instance, e.VRID, e.Reason = "", 9, event.DropVRIDUnknown }),
		ev(event.KindAdvertDropped, 6*time.Second, func(e *event.Event) { e.Reason = event.DropVRIDUnknown }),
		ev(event.KindProbe, 7*time.Second, func(e *event.Event) {
			e.Name, e.Service, e.Target, e.OK, e.Duration, e.Reason = "http", "192.0.2.10:80/tcp", "198.51.100.1:80", false, 3*time.Millisecond, "refused"
		}),
		ev(event.KindRealServer, 7*time.Second, func(e *event.Event) {
			e.Service, e.Target, e.OK, e.Value = "192.0.2.10:80/tcp", "198.51.100.1:80", false, 0
		}),
		ev(event.KindQuorum, 7*time.Second, func(e *event.Event) { e.Service, e.OK = "192.0.2.10:80/tcp", false }),
		ev(event.KindScriptRun, 7*time.Second, func(e *event.Event) {
			e.Name, e.OK, e.ExitCode, e.Duration = "chk_nginx", false, 1, 20*time.Millisecond
		}),
		ev(event.KindPriorityChanged, 7*time.Second, func(e *event.Event) { e.BasePriority, e.Priority, e.Tracker = 100, 80, "chk_nginx" }),
		ev(event.KindAdvertSent, 7*time.Second, func(e *event.Event) { e.Priority = 80 }),
		ev(event.KindPeerMaster, 7*time.Second, func(e *event.Event) { e.Priority, e.Addr = 150, netip.MustParseAddr("192.0.2.2") }),
		ev(event.KindTransition, 7*time.Second, func(e *event.Event) {
			e.From, e.To, e.Reason = vrrp.StateMaster, vrrp.StateBackup, event.ReasonPriority
		}),
		ev(event.KindVIPRemoved, 7*time.Second, func(e *event.Event) { e.Addr = vip1 }),
		ev(event.KindInterfaceChanged, 8*time.Second, func(e *event.Event) { e.Interface, e.OK = "eth1", true }),
		ev(event.KindFileValue, 8*time.Second, func(e *event.Event) { e.Name, e.Value = "/run/weight", -10 }),
		ev(event.KindIPVSReconcile, 8*time.Second, func(e *event.Event) { e.Added, e.Removed, e.Duration = 2, 1, 4*time.Millisecond }),
		ev(event.KindIPVSReconcile, 9*time.Second, func(e *event.Event) { e.Err, e.Duration = errors.New("netlink: busy"), time.Millisecond }),
		ev(event.KindNotifyRun, 9*time.Second, func(e *event.Event) { e.Name, e.OK = "/etc/keepalived/notify.sh", true }),
		ev(event.KindMailSent, 9*time.Second, func(e *event.Event) { e.Name, e.OK = "VI_1 BACKUP", false }),
		ev(event.KindReloadRejected, 10*time.Second, func(e *event.Event) { e.Name, e.Err = "/etc/keepalived/keepalived.conf", errors.New("bad") }),
	}
}

func TestScriptedSequence(t *testing.T) {
	m, reg := newTestMetrics(t)
	for _, e := range scenario() {
		m.Emit(e)
	}
	const id = `family="ipv4",interface="eth0",vrid="51",vrrp_instance="VI_1"`
	want := `
# HELP keepwatch_vrrp_state Current VRRP state of the instance: 1 for the state it is in, 0 for the others.
# TYPE keepwatch_vrrp_state gauge
keepwatch_vrrp_state{family="ipv4",interface="eth0",state="backup",vrid="51",vrrp_instance="VI_1"} 1
keepwatch_vrrp_state{family="ipv4",interface="eth0",state="fault",vrid="51",vrrp_instance="VI_1"} 0
keepwatch_vrrp_state{family="ipv4",interface="eth0",state="init",vrid="51",vrrp_instance="VI_1"} 0
keepwatch_vrrp_state{family="ipv4",interface="eth0",state="master",vrid="51",vrrp_instance="VI_1"} 0
keepwatch_vrrp_state{family="ipv4",interface="eth0",state="stop",vrid="51",vrrp_instance="VI_1"} 0
# HELP keepwatch_vrrp_priority Configured (base) VRRP priority of the instance.
# TYPE keepwatch_vrrp_priority gauge
keepwatch_vrrp_priority{` + id + `} 100
# HELP keepwatch_vrrp_effective_priority Effective VRRP priority: base priority adjusted by tracked scripts, interfaces and files.
# TYPE keepwatch_vrrp_effective_priority gauge
keepwatch_vrrp_effective_priority{` + id + `} 80
# HELP keepwatch_vrrp_master_priority Priority carried by the adverts of the master this instance last heard.
# TYPE keepwatch_vrrp_master_priority gauge
keepwatch_vrrp_master_priority{` + id + `} 150
# HELP keepwatch_vrrp_transitions_total VRRP state transitions, by previous state, new state and reason.
# TYPE keepwatch_vrrp_transitions_total counter
keepwatch_vrrp_transitions_total{family="ipv4",from="backup",interface="eth0",reason="priority_zero",to="master",vrid="51",vrrp_instance="VI_1"} 1
keepwatch_vrrp_transitions_total{family="ipv4",from="init",interface="eth0",reason="startup",to="backup",vrid="51",vrrp_instance="VI_1"} 1
keepwatch_vrrp_transitions_total{family="ipv4",from="master",interface="eth0",reason="priority",to="backup",vrid="51",vrrp_instance="VI_1"} 1
# HELP keepwatch_vrrp_master_transitions_total Transitions to MASTER (RFC 8347 master-transitions).
# TYPE keepwatch_vrrp_master_transitions_total counter
keepwatch_vrrp_master_transitions_total{` + id + `} 1
# HELP keepwatch_vrrp_last_transition_timestamp_seconds Unix time of the last state transition of the instance.
# TYPE keepwatch_vrrp_last_transition_timestamp_seconds gauge
keepwatch_vrrp_last_transition_timestamp_seconds{` + id + `} 1.795845607e+09
# HELP keepwatch_vrrp_adverts_sent_total VRRP advertisements sent (RFC 8347 advertisement-sent), once per advert whatever the number of unicast peers.
# TYPE keepwatch_vrrp_adverts_sent_total counter
keepwatch_vrrp_adverts_sent_total{` + id + `} 3
# HELP keepwatch_vrrp_adverts_received_total VRRP advertisements received and accepted (RFC 8347 advertisement-rcvd).
# TYPE keepwatch_vrrp_adverts_received_total counter
keepwatch_vrrp_adverts_received_total{` + id + `} 3
# HELP keepwatch_vrrp_priority_zero_received_total Adverts with priority 0 received: the peer master resigning (RFC 8347 priority-zero-pkts-rcvd).
# TYPE keepwatch_vrrp_priority_zero_received_total counter
keepwatch_vrrp_priority_zero_received_total{` + id + `} 1
# HELP keepwatch_vrrp_master_down_interval_seconds Master_Down_Interval in force: how long a backup waits without adverts before taking over (RFC 9568 section 6.1).
# TYPE keepwatch_vrrp_master_down_interval_seconds gauge
keepwatch_vrrp_master_down_interval_seconds{` + id + `} 3.6875
# HELP keepwatch_vrrp_advert_gap_seconds Time between consecutive adverts heard while BACKUP; gaps near the master down interval are near misses.
# TYPE keepwatch_vrrp_advert_gap_seconds histogram
keepwatch_vrrp_advert_gap_seconds_bucket{` + id + `,le="0.01"} 0
keepwatch_vrrp_advert_gap_seconds_bucket{` + id + `,le="0.025"} 0
keepwatch_vrrp_advert_gap_seconds_bucket{` + id + `,le="0.05"} 0
keepwatch_vrrp_advert_gap_seconds_bucket{` + id + `,le="0.075"} 0
keepwatch_vrrp_advert_gap_seconds_bucket{` + id + `,le="0.1"} 0
keepwatch_vrrp_advert_gap_seconds_bucket{` + id + `,le="0.15"} 0
keepwatch_vrrp_advert_gap_seconds_bucket{` + id + `,le="0.2"} 0
keepwatch_vrrp_advert_gap_seconds_bucket{` + id + `,le="0.3"} 0
keepwatch_vrrp_advert_gap_seconds_bucket{` + id + `,le="0.5"} 0
keepwatch_vrrp_advert_gap_seconds_bucket{` + id + `,le="0.75"} 0
keepwatch_vrrp_advert_gap_seconds_bucket{` + id + `,le="1"} 1
keepwatch_vrrp_advert_gap_seconds_bucket{` + id + `,le="1.5"} 1
keepwatch_vrrp_advert_gap_seconds_bucket{` + id + `,le="2"} 1
keepwatch_vrrp_advert_gap_seconds_bucket{` + id + `,le="3"} 2
keepwatch_vrrp_advert_gap_seconds_bucket{` + id + `,le="4"} 2
keepwatch_vrrp_advert_gap_seconds_bucket{` + id + `,le="5"} 2
keepwatch_vrrp_advert_gap_seconds_bucket{` + id + `,le="10"} 2
keepwatch_vrrp_advert_gap_seconds_bucket{` + id + `,le="+Inf"} 2
keepwatch_vrrp_advert_gap_seconds_sum{` + id + `} 3.5
keepwatch_vrrp_advert_gap_seconds_count{` + id + `} 2
# HELP keepwatch_vrrp_vip_present 1 if the virtual address is configured on this host by the instance, else 0.
# TYPE keepwatch_vrrp_vip_present gauge
keepwatch_vrrp_vip_present{address="192.0.2.10",` + id + `} 0
# HELP keepwatch_vrrp_gratuitous_arps_sent_total Gratuitous ARPs sent for the instance's IPv4 virtual addresses.
# TYPE keepwatch_vrrp_gratuitous_arps_sent_total counter
keepwatch_vrrp_gratuitous_arps_sent_total{` + id + `} 1
# HELP keepwatch_vrrp_neighbor_adverts_sent_total Unsolicited neighbor advertisements sent for the instance's IPv6 virtual addresses.
# TYPE keepwatch_vrrp_neighbor_adverts_sent_total counter
keepwatch_vrrp_neighbor_adverts_sent_total{` + id + `} 1
# HELP keepwatch_vrrp_global_adverts_dropped_total VRRP packets dropped before they could be matched to an instance (unknown VRID, bad checksum or version), by interface and reason.
# TYPE keepwatch_vrrp_global_adverts_dropped_total counter
keepwatch_vrrp_global_adverts_dropped_total{family="ipv4",interface="eth0",reason="vrid_unknown"} 2
# HELP keepwatch_track_script_up 1 if the last run of the tracked script succeeded, else 0.
# TYPE keepwatch_track_script_up gauge
keepwatch_track_script_up{script="chk_nginx"} 0
# HELP keepwatch_check_probes_total Health check probes of real servers, by virtual server, checker type and result.
# TYPE keepwatch_check_probes_total counter
keepwatch_check_probes_total{checker="http",result="failure",virtual_server="192.0.2.10:80/tcp"} 1
keepwatch_check_probes_total{checker="http",result="success",virtual_server="192.0.2.10:80/tcp"} 0
# HELP keepwatch_check_probe_errors_total Failed health check probes by error class.
# TYPE keepwatch_check_probe_errors_total counter
keepwatch_check_probe_errors_total{checker="http",reason="refused",virtual_server="192.0.2.10:80/tcp"} 1
# HELP keepwatch_real_server_up 1 if the real server passes its health checks and is in the IPVS table, else 0.
# TYPE keepwatch_real_server_up gauge
keepwatch_real_server_up{real_server="198.51.100.1:80",virtual_server="192.0.2.10:80/tcp"} 0
# HELP keepwatch_virtual_server_quorum_up 1 if the virtual server has its quorum of healthy real servers, else 0.
# TYPE keepwatch_virtual_server_quorum_up gauge
keepwatch_virtual_server_quorum_up{virtual_server="192.0.2.10:80/tcp"} 0
# HELP keepwatch_ipvs_reconciles_total Reconciliations of the desired IPVS table with the kernel, by result.
# TYPE keepwatch_ipvs_reconciles_total counter
keepwatch_ipvs_reconciles_total{result="failure"} 1
keepwatch_ipvs_reconciles_total{result="success"} 1
# HELP keepwatch_ipvs_reconcile_changes_total Virtual and real servers added, changed or removed in the kernel by reconciliations.
# TYPE keepwatch_ipvs_reconcile_changes_total counter
keepwatch_ipvs_reconcile_changes_total{op="added"} 2
keepwatch_ipvs_reconcile_changes_total{op="changed"} 0
keepwatch_ipvs_reconcile_changes_total{op="removed"} 1
# HELP keepwatch_config_last_reload_successful 1 if the last configuration load or reload succeeded, else 0.
# TYPE keepwatch_config_last_reload_successful gauge
keepwatch_config_last_reload_successful 0
# HELP keepwatch_config_last_reload_success_timestamp_seconds Unix time of the last successful configuration load.
# TYPE keepwatch_config_last_reload_success_timestamp_seconds gauge
keepwatch_config_last_reload_success_timestamp_seconds 1.7958456e+09
# HELP keepwatch_config_loads_total Configuration loads and reloads, by result; a failed reload leaves the old configuration running.
# TYPE keepwatch_config_loads_total counter
keepwatch_config_loads_total{result="failure"} 1
keepwatch_config_loads_total{result="success"} 1
# HELP keepwatch_ipvs_real_server_active_connections Active (established) connections to the real server.
# TYPE keepwatch_ipvs_real_server_active_connections gauge
keepwatch_ipvs_real_server_active_connections{real_server="198.51.100.1:80",virtual_server="192.0.2.10:80/tcp"} 2
# HELP keepwatch_sink_events_dropped_total Events a slow sink dropped because its queue was full.
# TYPE keepwatch_sink_events_dropped_total counter
keepwatch_sink_events_dropped_total{sink="tracing"} 7
`
	names := []string{
		"keepwatch_vrrp_state", "keepwatch_vrrp_priority", "keepwatch_vrrp_effective_priority",
		"keepwatch_vrrp_master_priority", "keepwatch_vrrp_transitions_total", "keepwatch_vrrp_master_transitions_total",
		"keepwatch_vrrp_last_transition_timestamp_seconds", "keepwatch_vrrp_adverts_sent_total",
		"keepwatch_vrrp_adverts_received_total", "keepwatch_vrrp_priority_zero_received_total",
		"keepwatch_vrrp_master_down_interval_seconds", "keepwatch_vrrp_advert_gap_seconds",
		"keepwatch_vrrp_vip_present", "keepwatch_vrrp_gratuitous_arps_sent_total",
		"keepwatch_vrrp_neighbor_adverts_sent_total", "keepwatch_vrrp_global_adverts_dropped_total",
		"keepwatch_track_script_up", "keepwatch_check_probes_total", "keepwatch_check_probe_errors_total",
		"keepwatch_real_server_up", "keepwatch_virtual_server_quorum_up", "keepwatch_ipvs_reconciles_total",
		"keepwatch_ipvs_reconcile_changes_total", "keepwatch_config_last_reload_successful",
		"keepwatch_config_last_reload_success_timestamp_seconds", "keepwatch_config_loads_total",
		"keepwatch_ipvs_real_server_active_connections", "keepwatch_sink_events_dropped_total",
	}
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), names...); err != nil {
		t.Error(err)
	}

	// The drop reasons: every known one exists at 0 before it happens;
	// an unknown one gets its own series on first use.
	dropped := map[string]float64{}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "keepwatch_vrrp_adverts_dropped_total" {
			continue
		}
		for _, mt := range mf.GetMetric() {
			for _, lp := range mt.GetLabel() {
				if lp.GetName() == "reason" {
					dropped[lp.GetValue()] = mt.GetCounter().GetValue()
				}
			}
		}
	}
	if len(dropped) != len(event.DropReasons) { // all but vrid_unknown, plus brand_new
		t.Errorf("dropped series: got %d reasons %v, want %d", len(dropped), dropped, len(event.DropReasons))
	}
	if dropped["address_list"] != 1 || dropped["brand_new"] != 1 || dropped["ttl"] != 0 {
		t.Errorf("dropped counts: %v", dropped)
	}
	if _, ok := dropped["vrid_unknown"]; ok {
		t.Error("vrid_unknown must not be a per-instance series")
	}
}

func TestLint(t *testing.T) {
	m, reg := newTestMetrics(t)
	for _, e := range scenario() {
		m.Emit(e)
	}
	problems, err := testutil.GatherAndLint(reg)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("lint: %s: %s", p.Metric, p.Text)
	}
	// The collectors on their own, as testutil.CollectAndLint sees them.
	for _, c := range m.f.collectors() {
		problems, err := testutil.CollectAndLint(c)
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range problems {
			t.Errorf("lint: %s: %s", p.Metric, p.Text)
		}
	}
}

func TestExemplarOnTransition(t *testing.T) {
	m, reg := newTestMetrics(t)
	for _, e := range scenario() {
		m.Emit(e)
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	found := 0
	for _, mf := range mfs {
		switch mf.GetName() {
		case "keepwatch_vrrp_transitions_total", "keepwatch_vrrp_master_transitions_total":
		default:
			continue
		}
		for _, mt := range mf.GetMetric() {
			ex := mt.GetCounter().GetExemplar()
			if ex == nil {
				t.Errorf("%s %v: no exemplar", mf.GetName(), mt.GetLabel())
				continue
			}
			if len(ex.GetLabel()) != 1 || ex.GetLabel()[0].GetName() != "trace_id" ||
				ex.GetLabel()[0].GetValue() != "4bf92f3577b34da6a3ce929d0e0e4736" {
				t.Errorf("%s: exemplar labels %v", mf.GetName(), ex.GetLabel())
			}
			found++
		}
	}
	if found != 4 {
		t.Errorf("got %d exemplars, want 4 (3 transitions + master_transitions)", found)
	}
}

func TestMasterDownInterval(t *testing.T) {
	for _, tc := range []struct {
		version, prio int
		interval      time.Duration
		want          time.Duration
	}{
		// RFC 9568 §6.1: 3×1s + (256−100)×1s/256.
		{3, 100, time.Second, 3*time.Second + 609375*time.Microsecond},
		// Fast v3: 3×100ms + (256−200)×100ms/256.
		{3, 200, 100 * time.Millisecond, 300*time.Millisecond + 21875*time.Microsecond},
		// RFC 3768 §6.1: the skew is in seconds whatever the interval.
		{2, 100, 2 * time.Second, 6*time.Second + 609375*time.Microsecond},
		{0, 255, time.Second, 3*time.Second + time.Second/256},
		{3, 300, time.Second, 3*time.Second + time.Second/256},
	} {
		if got := masterDownInterval(tc.version, tc.prio, tc.interval); got != tc.want {
			t.Errorf("masterDownInterval(v%d, %d, %v) = %v, want %v", tc.version, tc.prio, tc.interval, got, tc.want)
		}
	}
}

func TestDeclareReload(t *testing.T) {
	m, reg := newTestMetrics(t)
	for _, e := range scenario() {
		m.Emit(e)
	}
	// Reload: VI_1 unchanged but gains a VIP, VI_2 appears, the script and
	// the virtual server go away.
	d := declaration()
	d.Instances[0].VIPs = append(d.Instances[0].VIPs, netip.MustParseAddr("192.0.2.11"))
	d.Instances = append(d.Instances, Instance{Name: "VI_2", VRID: 52, Interface: "eth0", Priority: 90, Interval: time.Second})
	d.Scripts = nil
	d.VirtualServers = nil
	m.Declare(d)

	if got := gathered(t, reg, "keepwatch_vrrp_adverts_sent_total", "VI_1", "51", "eth0", "ipv4").GetCounter().GetValue(); got != 3 {
		t.Errorf("VI_1 adverts sent after reload = %v, want 3 (counters survive reload)", got)
	}
	if got := gathered(t, reg, "keepwatch_vrrp_state", "VI_1", "51", "eth0", "ipv4", "backup").GetGauge().GetValue(); got != 1 {
		t.Errorf("VI_1 state backup after reload = %v, want 1", got)
	}
	if got := gathered(t, reg, "keepwatch_vrrp_state", "VI_2", "52", "eth0", "ipv4", "init").GetGauge().GetValue(); got != 1 {
		t.Errorf("VI_2 state init = %v, want 1", got)
	}
	for name, want := range map[string]int{
		"keepwatch_vrrp_vip_present":         2,
		"keepwatch_track_script_up":          0,
		"keepwatch_real_server_up":           0,
		"keepwatch_virtual_server_quorum_up": 0,
		"keepwatch_check_probes_total":       0,
		"keepwatch_vrrp_adverts_sent_total":  2,
	} {
		n, err := testutil.GatherAndCount(reg, name)
		if err != nil {
			t.Fatal(err)
		}
		if n != want {
			t.Errorf("%s: %d series after reload, want %d", name, n, want)
		}
	}

	// VI_1 moves to another interface: a new instance, old series gone.
	d.Instances[0].Interface = "eth1"
	m.Declare(d)
	if n, err := testutil.GatherAndCount(reg, "keepwatch_vrrp_adverts_sent_total"); err != nil || n != 2 {
		t.Errorf("adverts_sent series = %d (%v), want 2", n, err)
	}
	if got := gathered(t, reg, "keepwatch_vrrp_adverts_sent_total", "VI_1", "51", "eth1", "ipv4").GetCounter().GetValue(); got != 0 {
		t.Errorf("moved VI_1 adverts sent = %v, want 0", got)
	}
}

func TestUndeclaredInstance(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	m, err := New(reg, Options{})
	if err != nil {
		t.Fatal(err)
	}
	m.Emit(event.Event{Kind: event.KindAdvertSent, Instance: "VI_9", VRID: 9, Interface: "eth3", Family: vrrp.IPv6, Priority: 100})
	if got := gathered(t, reg, "keepwatch_vrrp_adverts_sent_total", "VI_9", "9", "eth3", "ipv6").GetCounter().GetValue(); got != 1 {
		t.Errorf("undeclared instance adverts sent = %v, want 1", got)
	}
	// Registering twice on one registry fails rather than panics.
	if _, err := New(reg, Options{}); err == nil {
		t.Error("second New on the same registry: want error")
	}
}

func TestIPVSScrapeError(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	m, err := New(reg, Options{IPVS: IPVSFunc(func() ([]IPVSService, error) { return nil, errors.New("no ip_vs module") })})
	if err != nil {
		t.Fatal(err)
	}
	want := `
# HELP keepwatch_ipvs_scrape_success 1 if the kernel's IPVS table could be read at this scrape, else 0.
# TYPE keepwatch_ipvs_scrape_success gauge
keepwatch_ipvs_scrape_success 0
`
	if err := testutil.GatherAndCompare(m.Gatherer(reg), strings.NewReader(want), "keepwatch_ipvs_scrape_success"); err != nil {
		t.Error(err)
	}
}

func TestEmitAllocs(t *testing.T) {
	m, _ := newTestMetrics(t)
	for _, e := range scenario() {
		m.Emit(e) // first use of every label value
	}
	for _, e := range scenario() {
		if e.Kind == event.KindTransition || e.Kind == event.KindReloadRejected || e.Kind == event.KindIPVSReconcile {
			continue // exemplars and error values allocate by design; these are rare
		}
		if n := testing.AllocsPerRun(100, func() { m.Emit(e) }); n != 0 {
			t.Errorf("Emit(%v): %v allocs, want 0", e.Kind, n)
		}
	}
}

// TestInstanceInfo: one info series per instance, carrying its segment; a
// reload that changes the segment replaces the series rather than adding
// one (a join on it would match twice), and dropping the instance drops it.
func TestInstanceInfo(t *testing.T) {
	m, reg := newTestMetrics(t)
	info := func(want string) {
		t.Helper()
		head := "# HELP keepwatch_vrrp_instance_info Always 1; segment names the network of the instance's virtual router, the same on every peer (the primary address's prefix, or unicast: and a digest of the peer set), as a VRID is unique only within one segment.\n# TYPE keepwatch_vrrp_instance_info gauge\n"
		if err := testutil.GatherAndCompare(reg, strings.NewReader(head+want), "keepwatch_vrrp_instance_info"); err != nil {
			t.Error(err)
		}
	}
	info(`keepwatch_vrrp_instance_info{family="ipv4",interface="eth0",segment="192.0.2.0/24",vrid="51",vrrp_instance="VI_1"} 1` + "\n")
	d := declaration()
	d.Instances[0].Segment = "198.51.100.0/24"
	m.Declare(d)
	info(`keepwatch_vrrp_instance_info{family="ipv4",interface="eth0",segment="198.51.100.0/24",vrid="51",vrrp_instance="VI_1"} 1` + "\n")
	d.Instances = nil
	m.Declare(d)
	if n, err := testutil.GatherAndCount(reg, "keepwatch_vrrp_instance_info"); err != nil || n != 0 {
		t.Errorf("%d info series (%v) after the instance was dropped, want 0", n, err)
	}
}

// TestConfigDiagnostics: the gauge counts the declared config's diagnostics
// by severity, 0 before any, and follows each reload.
func TestConfigDiagnostics(t *testing.T) {
	m, reg := newTestMetrics(t)
	const want0 = `# HELP keepwatch_config_diagnostics Diagnostics of the running configuration, by severity (error or warning); each was recovered from as keepalived does.
# TYPE keepwatch_config_diagnostics gauge
keepwatch_config_diagnostics{severity="error"} %d
keepwatch_config_diagnostics{severity="warning"} %d
`
	for _, tc := range []struct{ errs, warns int }{{0, 0}, {3, 1}, {0, 2}} {
		if tc != (struct{ errs, warns int }{}) {
			d := declaration()
			d.ConfigErrors, d.ConfigWarnings = tc.errs, tc.warns
			m.Declare(d)
		}
		if err := testutil.GatherAndCompare(reg, strings.NewReader(fmt.Sprintf(want0, tc.errs, tc.warns)), "keepwatch_config_diagnostics"); err != nil {
			t.Errorf("%+v: %v", tc, err)
		}
	}
}

// TestLateness: the advert's lateness lands in its instance's histogram,
// the probe's in the checker one, and neither allocates (both are on hot
// paths: the advert timer and every probe).
func TestLateness(t *testing.T) {
	m, reg := newTestMetrics(t)
	for _, e := range scenario() {
		m.Emit(e)
	}
	m.ObserveProbeLateness(300 * time.Millisecond)
	h := func(o prometheus.Observer) *dto.Histogram {
		var d dto.Metric
		if err := o.(prometheus.Metric).Write(&d); err != nil {
			t.Fatal(err)
		}
		return d.GetHistogram()
	}
	adv := gathered(t, reg, "keepwatch_vrrp_advert_lateness_seconds", "VI_1", "51", "eth0", "ipv4").GetHistogram()
	if adv.GetSampleCount() != 3 || math.Abs(adv.GetSampleSum()-0.003) > 1e-9 {
		t.Errorf("advert lateness: %d samples summing to %v, want 3 summing to 0.003", adv.GetSampleCount(), adv.GetSampleSum())
	}
	if p := h(m.f.probeLateness); p.GetSampleCount() != 1 || p.GetSampleSum() != 0.3 {
		t.Errorf("probe lateness: %d samples summing to %v, want 1 of 0.3", p.GetSampleCount(), p.GetSampleSum())
	}
	e := event.Event{Kind: event.KindAdvertSent, Instance: "VI_1", VRID: 51, Interface: "eth0", Family: vrrp.IPv4, Priority: 100, Duration: 40 * time.Millisecond}
	if n := testing.AllocsPerRun(200, func() { m.Emit(e) }); n != 0 {
		t.Errorf("Emit(advert sent, late): %v allocs, want 0", n)
	}
	if n := testing.AllocsPerRun(200, func() { m.ObserveProbeLateness(time.Millisecond) }); n != 0 {
		t.Errorf("ObserveProbeLateness: %v allocs, want 0", n)
	}
}

// gathered returns the series of family name whose label values are lv, in
// any order; the test fails if there is none.
func gathered(t testing.TB, g prometheus.Gatherer, name string, lv ...string) *dto.Metric {
	t.Helper()
	mfs, err := g.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	series:
		for _, mt := range mf.GetMetric() {
			if len(mt.GetLabel()) != len(lv) {
				continue
			}
			want := slices.Sorted(slices.Values(lv))
			for i, l := range slices.SortedFunc(slices.Values(mt.GetLabel()), func(a, b *dto.LabelPair) int {
				return strings.Compare(a.GetValue(), b.GetValue())
			}) {
				if l.GetValue() != want[i] {
					continue series
				}
			}
			return mt
		}
	}
	t.Fatalf("%s%q: no such series", name, lv)
	return nil
}

// TestEmitSharedVRID: instances that share a VRID (another family, another
// interface) each count their own adverts, before and after a reload that
// moves one of them, whether Emit finds them by VRID or by name.
func TestEmitSharedVRID(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	m, err := New(reg, Options{})
	if err != nil {
		t.Fatal(err)
	}
	insts := []Instance{
		{Name: "VI_a", VRID: 5, Interface: "eth0", Family: vrrp.IPv4, Priority: 100, Interval: time.Second},
		{Name: "VI_b", VRID: 5, Interface: "eth0", Family: vrrp.IPv6, Priority: 100, Interval: time.Second},
		{Name: "VI_c", VRID: 5, Interface: "eth1", Family: vrrp.IPv4, Priority: 100, Interval: time.Second},
		{Name: "VI_d", VRID: 6, Interface: "eth1", Priority: 100, Interval: time.Second}, // no family declared
	}
	emit := func(want map[string]float64) {
		t.Helper()
		for _, in := range insts {
			fam := in.Family
			if fam == 0 {
				fam = vrrp.IPv4
			}
			for range int(want[in.Name]) {
				m.Emit(event.Event{Kind: event.KindAdvertSent, Instance: in.Name, VRID: in.VRID, Interface: in.Interface, Family: fam, Priority: 100})
			}
		}
	}
	check := func(want map[string]float64) {
		t.Helper()
		for _, in := range insts {
			fam := "ipv4"
			if in.Family == vrrp.IPv6 {
				fam = "ipv6"
			}
			got := gathered(t, reg, "keepwatch_vrrp_adverts_sent_total", in.Name, strconv.Itoa(int(in.VRID)), in.Interface, fam).GetCounter().GetValue()
			if got != want[in.Name] {
				t.Errorf("%s adverts sent = %v, want %v", in.Name, got, want[in.Name])
			}
		}
	}
	m.Declare(Declaration{Instances: insts})
	want := map[string]float64{"VI_a": 1, "VI_b": 2, "VI_c": 3, "VI_d": 4}
	emit(want)
	check(want)

	// VI_a moves to eth2: a new instance, with new series at 0.
	insts[0].Interface = "eth2"
	m.Declare(Declaration{Instances: insts})
	emit(map[string]float64{"VI_a": 5, "VI_c": 1})
	check(map[string]float64{"VI_a": 5, "VI_b": 2, "VI_c": 4, "VI_d": 4})
}
