package tracing

import (
	"context"
	"errors"
	"net/netip"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"

	"github.com/keepwatch/keepwatch/engine/event"
	"github.com/keepwatch/keepwatch/engine/vrrp"
	"github.com/keepwatch/keepwatch/metrics"
)

var (
	_ metrics.TraceIDSource = (*Sink)(nil)
	_ metrics.Queue         = (*Sink)(nil)
)

var t0 = time.Date(2026, 11, 28, 6, 0, 0, 0, time.UTC)

// clearOTELEnv makes the test independent of the environment it runs in.
func clearOTELEnv(t *testing.T) {
	for _, k := range []string{"OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
		"OTEL_EXPORTER_OTLP_PROTOCOL", "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "OTEL_SERVICE_NAME",
		"OTEL_RESOURCE_ATTRIBUTES", "OTEL_SDK_DISABLED", "OTEL_TRACES_EXPORTER",
		"OTEL_EXPORTER_OTLP_HEADERS", "OTEL_EXPORTER_OTLP_TRACES_HEADERS"} {
		t.Setenv(k, "")
	}
}

// chain is the scripted cause chain of DESIGN.md §3: a failed probe → the
// tracker lowers the priority → the master resigns → its VIP is removed;
// plus an advert (not sampled) and an unrelated config load (a root).
func chain() []event.Event {
	id := event.Event{Instance: "VI_1", VRID: 51, Interface: "eth0", Family: vrrp.IPv4}
	probe := event.Event{Kind: event.KindProbe, ID: 100, Time: t0.Add(5 * time.Millisecond),
		Name: "http", Service: "192.0.2.10:80/tcp", Target: "198.51.100.1:8080", OK: false,
		Duration: 5 * time.Millisecond, Reason: "refused", Err: errors.New("connect: connection refused")}
	prio := id
	prio.Kind, prio.ID, prio.Cause, prio.Time = event.KindPriorityChanged, 101, 100, t0.Add(6*time.Millisecond)
	prio.BasePriority, prio.Priority, prio.Tracker, prio.Value = 100, 50, "chk_web", -50
	advert := id
	advert.Kind, advert.ID, advert.Cause, advert.Time, advert.Priority = event.KindAdvertSent, 102, 101, t0.Add(6*time.Millisecond), 50
	tr := id
	tr.Kind, tr.ID, tr.Cause, tr.Time = event.KindTransition, 103, 101, t0.Add(7*time.Millisecond)
	tr.From, tr.To, tr.Reason, tr.Priority = vrrp.StateMaster, vrrp.StateBackup, event.ReasonPriority, 50
	vip := id
	vip.Kind, vip.ID, vip.Cause, vip.Time, vip.Addr = event.KindVIPRemoved, 104, 103, t0.Add(8*time.Millisecond), netip.MustParseAddr("192.0.2.10")
	cfg := event.Event{Kind: event.KindConfigLoaded, ID: 105, Time: t0.Add(9 * time.Millisecond), Name: "/etc/keepalived/keepalived.conf", Duration: time.Millisecond}
	return []event.Event{probe, prio, advert, tr, vip, cfg}
}

type runningSink struct {
	*Sink
	p      *Provider
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

func startSink(t *testing.T, p *Provider, opts SinkOptions) *runningSink {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	rs := &runningSink{Sink: NewSink(p, opts), p: p, cancel: cancel}
	rs.wg.Add(1)
	go func() { defer rs.wg.Done(); _ = rs.Run(ctx) }()
	t.Cleanup(func() { rs.stop(t) })
	return rs
}

// stop ends Run and flushes the provider (idempotent).
func (rs *runningSink) stop(t *testing.T) {
	rs.cancel()
	rs.wg.Wait()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := rs.p.Shutdown(ctx); err != nil && !errors.Is(err, context.Canceled) {
		t.Logf("shutdown: %v", err)
	}
}

func byName(t *testing.T, spans []gotSpan) map[string]gotSpan {
	t.Helper()
	m := map[string]gotSpan{}
	for _, s := range spans {
		if _, dup := m[s.span.GetName()]; dup {
			t.Errorf("span %s received twice", s.span.GetName())
		}
		m[s.span.GetName()] = s
	}
	return m
}

func checkChain(t *testing.T, spans []gotSpan, exemplarTraceID string) {
	t.Helper()
	if len(spans) != 5 {
		names := []string{}
		for _, s := range spans {
			names = append(names, s.span.GetName())
		}
		t.Fatalf("got %d spans %v, want 5 (probe, priority, transition, vip, config; the advert unsampled)", len(spans), names)
	}
	s := byName(t, spans)
	probe, prio, tr, vip, cfg := s[SpanProbe], s[SpanPriority], s[SpanTransition], s[SpanVIP], s[SpanConfigLoad]
	for name, sp := range map[string]gotSpan{SpanProbe: probe, SpanPriority: prio, SpanTransition: tr, SpanVIP: vip, SpanConfigLoad: cfg} {
		if sp.span == nil {
			t.Fatalf("no %s span", name)
		}
	}

	// One trace, linked parent → child along the Cause chain.
	if probe.parentID() != "" {
		t.Errorf("probe span has parent %s, want a root", probe.parentID())
	}
	for _, l := range []struct {
		child, parent gotSpan
		name          string
	}{{prio, probe, "priority→probe"}, {tr, prio, "transition→priority"}, {vip, tr, "vip→transition"}} {
		if l.child.traceID() != probe.traceID() {
			t.Errorf("%s: trace %s, want %s", l.name, l.child.traceID(), probe.traceID())
		}
		if l.child.parentID() != l.parent.spanID() {
			t.Errorf("%s: parent span %s, want %s", l.name, l.child.parentID(), l.parent.spanID())
		}
	}
	if cfg.traceID() == probe.traceID() || cfg.parentID() != "" {
		t.Errorf("config load span: trace %s parent %q, want its own root", cfg.traceID(), cfg.parentID())
	}
	if exemplarTraceID != tr.traceID() {
		t.Errorf("TraceID gave %s before Emit, exported transition has %s", exemplarTraceID, tr.traceID())
	}

	// Attributes: lowercase dotted keys, OpenTelemetry's where they exist.
	want := map[string]map[string]string{
		SpanTransition: {"vrrp.instance": "VI_1", "vrrp.vrid": "51", "vrrp.state.from": "master",
			"vrrp.state.to": "backup", "vrrp.reason": "priority", "network.interface.name": "eth0",
			"network.type": "ipv4", "vrrp.priority": "50", "keepwatch.event.id": "103"},
		SpanPriority: {"vrrp.instance": "VI_1", "vrrp.priority": "50", "vrrp.priority.base": "100",
			"vrrp.tracker": "chk_web", "vrrp.tracker.value": "-50"},
		SpanProbe: {"check.type": "http", "check.result": "failure", "ipvs.virtual_server": "192.0.2.10:80/tcp",
			"server.address": "198.51.100.1", "server.port": "8080", "error.type": "refused"},
		SpanVIP: {"vrrp.vip.action": "remove", "vrrp.vip.address": "192.0.2.10", "vrrp.instance": "VI_1"},
	}
	for name, attrs := range want {
		got := s[name].attrs()
		for k, v := range attrs {
			if got[k] != v {
				t.Errorf("%s: attribute %s = %q, want %q (all: %v)", name, k, got[k], v, got)
			}
		}
	}
	if probe.span.GetStatus().GetCode() != tracepb.Status_STATUS_CODE_ERROR ||
		probe.span.GetStatus().GetMessage() != "connect: connection refused" {
		t.Errorf("probe status = %v, want error with the probe's message", probe.span.GetStatus())
	}
	if tr.span.GetStatus().GetCode() == tracepb.Status_STATUS_CODE_ERROR {
		t.Errorf("transition status = %v, want unset", tr.span.GetStatus())
	}
	if probe.span.GetKind() != tracepb.Span_SPAN_KIND_CLIENT {
		t.Errorf("probe kind = %v, want client", probe.span.GetKind())
	}
	// A probe's span covers the probe: it starts Duration before the event.
	if got := probe.span.GetEndTimeUnixNano() - probe.span.GetStartTimeUnixNano(); got != uint64(5*time.Millisecond) {
		t.Errorf("probe span lasts %dns, want 5ms", got)
	}
	if got := tr.span.GetEndTimeUnixNano(); got != uint64(t0.Add(7*time.Millisecond).UnixNano()) {
		t.Errorf("transition ends at %d, want the event time", got)
	}
}

// TestOTLPHTTPChain: setting OTEL_EXPORTER_OTLP_ENDPOINT alone turns export
// on over http/protobuf; an OTLP/HTTP receiver gets the probe → priority →
// transition → VIP chain as one trace.
func TestOTLPHTTPChain(t *testing.T) {
	clearOTELEnv(t)
	r := newReceiver()
	srv := r.serveHTTP(t)
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", srv.URL)
	t.Setenv("OTEL_SERVICE_NAME", "kw-test")

	p, err := NewProvider(context.Background(), Config{RouterID: "lb1"})
	if err != nil {
		t.Fatal(err)
	}
	if !p.Enabled() {
		t.Fatal("provider disabled with OTEL_EXPORTER_OTLP_ENDPOINT set")
	}
	rs := startSink(t, p, SinkOptions{})

	// The agent's wiring: the metrics sink first, asking this sink for the
	// transition's trace id (its exemplar) before this sink sees the event.
	reg := prometheus.NewPedanticRegistry()
	m, err := metrics.New(reg, metrics.Options{Traces: rs.Sink, Queues: []metrics.Queue{rs.Sink}})
	if err != nil {
		t.Fatal(err)
	}
	sink := event.Multi{m, rs.Sink}
	for _, e := range chain() {
		sink.Emit(e)
	}
	rs.stop(t)
	spans := r.wait(t, 5, 10*time.Second)
	checkChain(t, spans, exemplarTraceID(t, reg))

	res := spans[0].resource
	if res["service.name"] != "kw-test" || res["router_id"] != "lb1" || res["host.name"] == "" {
		t.Errorf("resource = %v, want service.name kw-test, router_id lb1, host.name set", res)
	}
	for _, path := range r.Paths() {
		if path != "/v1/traces" {
			t.Errorf("export to %q, want /v1/traces", path)
		}
	}
}

// TestOTLPGRPCChain: explicit settings (endpoint, grpc) and a real gRPC
// receiver; the explicit service name wins over OTEL_SERVICE_NAME.
func TestOTLPGRPCChain(t *testing.T) {
	clearOTELEnv(t)
	t.Setenv("OTEL_SERVICE_NAME", "from-env")
	r := newReceiver()
	addr := r.serveGRPC(t)

	p, err := NewProvider(context.Background(), Config{
		Endpoint: "http://" + addr, Protocol: ProtocolGRPC, ServiceName: "keepwatch-grpc", RouterID: "lb2",
	})
	if err != nil {
		t.Fatal(err)
	}
	rs := startSink(t, p, SinkOptions{})
	events := chain()
	for _, e := range events {
		rs.Emit(e)
	}
	exemplar, _ := rs.TraceID(events[3]) // after Emit this time
	rs.stop(t)
	spans := r.wait(t, 5, 10*time.Second)
	checkChain(t, spans, exemplar)
	if res := spans[0].resource; res["service.name"] != "keepwatch-grpc" || res["router_id"] != "lb2" {
		t.Errorf("resource = %v", res)
	}
}

// TestOTLPHTTPEndpointPath: an explicit http endpoint without a path gets
// /v1/traces, as Config documents (the exporter alone would post to "/");
// one with a path is used as given.
func TestOTLPHTTPEndpointPath(t *testing.T) {
	for _, tc := range []struct{ suffix, want string }{{"", "/v1/traces"}, {"/", "/v1/traces"}, {"/custom/traces", "/custom/traces"}} {
		clearOTELEnv(t)
		r := newReceiver()
		srv := r.serveHTTP(t)
		p, err := NewProvider(context.Background(), Config{Endpoint: srv.URL + tc.suffix})
		if err != nil {
			t.Fatal(err)
		}
		rs := startSink(t, p, SinkOptions{})
		rs.Emit(chain()[0])
		rs.stop(t)
		r.wait(t, 1, 10*time.Second)
		if paths := r.Paths(); len(paths) != 1 || paths[0] != tc.want {
			t.Errorf("endpoint %q: exported to %v, want %s", srv.URL+tc.suffix, paths, tc.want)
		}
	}
}

func TestDisabledWithoutEndpoint(t *testing.T) {
	clearOTELEnv(t)
	p, err := NewProvider(context.Background(), Config{})
	if err != nil {
		t.Fatal(err)
	}
	if p.Enabled() {
		t.Fatal("enabled with no endpoint anywhere")
	}
	s := NewSink(p, SinkOptions{QueueSize: 1})
	for _, e := range chain() {
		s.Emit(e)
	}
	if s.QueueLen() != 0 || s.QueueDropped() != 0 {
		t.Errorf("disabled sink queued %d, dropped %d", s.QueueLen(), s.QueueDropped())
	}
	if _, ok := s.TraceID(chain()[3]); ok {
		t.Error("disabled sink gave a trace id")
	}
	// Export off costs no queue and no span-id slots (issue 12), and Run
	// still ends with its context.
	if d := NewSink(p, SinkOptions{}); cap(d.queue) != 0 || d.slots != nil {
		t.Errorf("disabled sink made a queue of %d and %d slots", cap(d.queue), len(d.slots))
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := s.Run(ctx); err != nil {
		t.Errorf("Run of a disabled sink: %v", err)
	}

	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://192.0.2.1:4318")
	t.Setenv("OTEL_SDK_DISABLED", "true")
	if p, err := NewProvider(context.Background(), Config{}); err != nil || p.Enabled() {
		t.Errorf("OTEL_SDK_DISABLED=true: enabled=%v err=%v, want disabled", p != nil && p.Enabled(), err)
	}
}

func TestBadProtocol(t *testing.T) {
	clearOTELEnv(t)
	t.Setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "http/json")
	_, err := NewProvider(context.Background(), Config{Endpoint: "http://192.0.2.1:4318"})
	if !errors.Is(err, ErrProtocol) {
		t.Errorf("err = %v, want ErrProtocol", err)
	}
}

// TestQueueFullDrops: Emit never waits; what does not fit is counted.
func TestQueueFullDrops(t *testing.T) {
	clearOTELEnv(t)
	r := newReceiver()
	srv := r.serveHTTP(t)
	p, err := NewProvider(context.Background(), Config{Endpoint: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Shutdown(context.Background()) })
	s := NewSink(p, SinkOptions{QueueSize: 2}) // not running: nothing drains
	done := make(chan struct{})
	go func() {
		for _, e := range chain() {
			s.Emit(e)
		}
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Emit blocked on a full queue")
	}
	if s.QueueLen() != 2 || s.QueueDropped() != 3 {
		t.Errorf("queue %d dropped %d, want 2 and 3", s.QueueLen(), s.QueueDropped())
	}
}

func TestAdvertSampling(t *testing.T) {
	clearOTELEnv(t)
	p, err := NewProvider(context.Background(), Config{Exporter: discardExporter{}})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		ratio    float64
		min, max int
	}{{0, 0, 0}, {1, 10000, 10000}, {0.1, 900, 1100}, {0.5, 4800, 5200}} {
		s := NewSink(p, SinkOptions{AdvertSampleRatio: tc.ratio, QueueSize: 1})
		n := 0
		for i := uint64(1); i <= 10000; i++ {
			e := event.Event{Kind: event.KindAdvertReceived, ID: i, Instance: "VI_1"}
			if s.traced(&e) {
				n++
			}
		}
		if n < tc.min || n > tc.max {
			t.Errorf("ratio %v: %d of 10000 adverts sampled, want %d..%d", tc.ratio, n, tc.min, tc.max)
		}
	}
	// Failed probes are always traced, successful ones by ratio.
	s := NewSink(p, SinkOptions{ProbeSampleRatio: -1})
	if !s.traced(&event.Event{Kind: event.KindProbe, ID: 7}) || s.traced(&event.Event{Kind: event.KindProbe, ID: 7, OK: true}) {
		t.Error("probe sampling: want failed traced, successful not at ratio 0")
	}
}

// TestCausesBounded: the cause map is bounded; a cause that was evicted
// starts a new trace rather than linking to the wrong one.
func TestCausesBounded(t *testing.T) {
	clearOTELEnv(t)
	p, err := NewProvider(context.Background(), Config{Exporter: discardExporter{}})
	if err != nil {
		t.Fatal(err)
	}
	s := NewSink(p, SinkOptions{Causes: 4, QueueSize: 64})
	root := event.Event{Kind: event.KindProbe, ID: 1}
	rootIDs, _ := s.assign(&root)
	child := event.Event{Kind: event.KindPriorityChanged, ID: 2, Cause: 1}
	if ids, parent := s.assign(&child); ids.trace != rootIDs.trace || parent != rootIDs.span {
		t.Error("child of a remembered cause: not in its trace")
	}
	for i := uint64(3); i <= 9; i++ {
		s.assign(&event.Event{Kind: event.KindProbe, ID: i})
	}
	late := event.Event{Kind: event.KindPriorityChanged, ID: 10, Cause: 1}
	if ids, parent := s.assign(&late); ids.trace == rootIDs.trace || parent.IsValid() {
		t.Error("child of an evicted cause: linked anyway")
	}
	if len(s.slots) != 4 {
		t.Errorf("slots = %d, want 4", len(s.slots))
	}
}

// exemplarTraceID returns the trace_id exemplar on the one transition counter.
func exemplarTraceID(t *testing.T, reg prometheus.Gatherer) string {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "keepwatch_vrrp_transitions_total" {
			continue
		}
		for _, mt := range mf.GetMetric() {
			for _, lp := range mt.GetCounter().GetExemplar().GetLabel() {
				if lp.GetName() == "trace_id" {
					return lp.GetValue()
				}
			}
		}
	}
	t.Fatal("no trace_id exemplar on keepwatch_vrrp_transitions_total")
	return ""
}

// TestEmitAdvertAllocs: an unsampled advert costs the emitter no allocation,
// with the metrics sink in front as the agent wires them.
func TestEmitAdvertAllocs(t *testing.T) {
	clearOTELEnv(t)
	p, err := NewProvider(context.Background(), Config{Exporter: discardExporter{}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Shutdown(context.Background()) })
	s := NewSink(p, SinkOptions{})
	m, err := metrics.New(prometheus.NewRegistry(), metrics.Options{Traces: s})
	if err != nil {
		t.Fatal(err)
	}
	sink := event.Multi{m, s}
	e := event.Event{Kind: event.KindAdvertReceived, Instance: "VI_1", VRID: 51, Interface: "eth0", Family: vrrp.IPv4, Priority: 150, Interval: time.Second}
	sink.Emit(e)
	e.Kind = event.KindAdvertSent
	sink.Emit(e)
	for _, k := range []event.Kind{event.KindAdvertSent, event.KindAdvertReceived} {
		e.Kind = k
		if n := testing.AllocsPerRun(1000, func() { e.ID++; sink.Emit(e) }); n != 0 {
			t.Errorf("%v: %v allocs per Emit, want 0", k, n)
		}
	}
	if s.QueueLen() != 0 {
		t.Errorf("unsampled adverts queued: %d", s.QueueLen())
	}
}

func TestAddrCache(t *testing.T) {
	var c addrCache
	addrs := []netip.Addr{
		netip.MustParseAddr("224.0.0.18"), netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("ff02::12"),
		netip.MustParseAddr("fe80::1%eth0"), netip.MustParseAddr("fe80::1%eth1"), netip.MustParseAddr("::ffff:192.0.2.1"),
	}
	for i := range 300 { // more than the cache holds: entries are replaced
		addrs = append(addrs, netip.AddrFrom4([4]byte{198, 51, 100, byte(i)}))
	}
	for range 2 {
		for _, a := range addrs {
			if got, want := c.text(a), a.String(); got != want {
				t.Errorf("text(%v) = %q, want %q", a, got, want)
			}
		}
	}
	a := netip.MustParseAddr("203.0.113.9")
	if n := testing.AllocsPerRun(100, func() { _ = c.text(a) }); n != 0 {
		t.Errorf("a cached address allocates %.0f times", n)
	}
	if got := (*addrCache)(nil).text(a); got != "203.0.113.9" {
		t.Errorf("nil cache: %q", got)
	}
}

// TestAdvertAttributes: sent and received adverts carry what the README
// promises for vrrp.advert less the event id, network.type, the direction
// (the span kind gives it) and, where the instance is named, its vrid and
// interface, and VRRP's multicast group as a sent advert's destination; a
// dropped advert keeps them.
func TestAdvertAttributes(t *testing.T) {
	base := event.Event{ID: 9, Instance: "VI_1", VRID: 51, Interface: "eth0", Family: vrrp.IPv6,
		Priority: 200, Interval: 50 * time.Millisecond, Addr: netip.MustParseAddr("fe80::1")}
	for _, c := range []struct {
		kind     event.Kind
		spanKind trace.SpanKind // the direction, for sent and received
		want     []string
	}{
		{event.KindAdvertSent, trace.SpanKindProducer, []string{"vrrp.instance=VI_1",
			"vrrp.priority=200", "network.peer.address=fe80::1"}},
		{event.KindAdvertReceived, trace.SpanKindConsumer, []string{"vrrp.instance=VI_1",
			"vrrp.priority=200", "vrrp.advert.interval=0.05", "network.peer.address=fe80::1"}},
		{event.KindAdvertDropped, trace.SpanKindConsumer, []string{"keepwatch.event.id=9", "vrrp.instance=VI_1", "vrrp.vrid=51", "network.interface.name=eth0",
			"network.type=ipv6", "vrrp.advert.direction=received", "error.type=auth", "network.peer.address=fe80::1"}},
	} {
		e := base
		e.Kind = c.kind
		if c.kind == event.KindAdvertDropped {
			e.Reason = event.DropAuth
		}
		var got []string
		for _, kv := range attributes(&e) {
			got = append(got, string(kv.Key)+"="+kv.Value.String())
		}
		if !slices.Equal(got, c.want) {
			t.Errorf("%v: attributes %q, want %q", c.kind, got, c.want)
		}
		if name, kind := spanName(&e); name != SpanAdvert || kind != c.spanKind {
			t.Errorf("%v: span %s (%v), want %s (%v)", c.kind, name, kind, SpanAdvert, c.spanKind)
		}
	}
	// Without a peer address, network.type stays.
	e := base
	e.Kind, e.Addr = event.KindAdvertSent, netip.Addr{}
	if got := attributes(&e); !slices.ContainsFunc(got, func(kv attribute.KeyValue) bool { return kv.Key == "network.type" }) {
		t.Errorf("advert without an address: no network.type in %v", got)
	}
	// An advert sent to VRRP's multicast group leaves the group out, unless
	// the instance is not named; another destination stays.
	for _, c := range []struct {
		addr, instance string
		want           bool
	}{{"224.0.0.18", "VI_1", false}, {"ff02::12", "VI_1", false}, {"224.0.0.18", "", true},
		{"224.0.0.19", "VI_1", true}, {"192.0.2.2", "VI_1", true}} {
		e := base
		e.Kind, e.Addr, e.Instance = event.KindAdvertSent, netip.MustParseAddr(c.addr), c.instance
		got := slices.ContainsFunc(attributes(&e), func(kv attribute.KeyValue) bool { return kv.Key == "network.peer.address" })
		if got != c.want {
			t.Errorf("advert sent to %s by %q: network.peer.address %v, want %v", c.addr, c.instance, got, c.want)
		}
	}
	// Without an instance name, the vrid and interface stay.
	e = base
	e.Kind, e.Instance = event.KindAdvertReceived, ""
	var got []string
	for _, kv := range attributes(&e) {
		got = append(got, string(kv.Key))
	}
	if !slices.Contains(got, "vrrp.vrid") || !slices.Contains(got, "network.interface.name") {
		t.Errorf("advert without an instance name: attributes %q, want vrrp.vrid and network.interface.name", got)
	}
}
