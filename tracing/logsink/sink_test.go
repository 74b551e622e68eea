package logsink_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/keepwatch/keepwatch/engine/event"
	"github.com/keepwatch/keepwatch/engine/vrrp"
	"github.com/keepwatch/keepwatch/metrics"
	"github.com/keepwatch/keepwatch/tracing"
	"github.com/keepwatch/keepwatch/tracing/logsink"
)

var (
	_ logsink.SpanSource = (*tracing.Sink)(nil)
	_ metrics.Queue      = (*logsink.Sink)(nil)
)

var t0 = time.Date(2026, 11, 28, 6, 0, 0, 0, time.UTC)

// run emits events through a Sink writing JSON at debug level, and returns
// the records, each as a map with the time field removed.
func run(t *testing.T, opts logsink.Options, events ...event.Event) []map[string]any {
	t.Helper()
	var buf bytes.Buffer
	log := slog.New(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	s := logsink.New(log, opts)
	for _, e := range events {
		s.Emit(e)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := s.Run(ctx); err != nil {
		t.Fatal(err)
	}
	var out []map[string]any
	sc := bufio.NewScanner(&buf)
	for sc.Scan() {
		m := map[string]any{}
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("%q: %v", sc.Text(), err)
		}
		if m["time"] != t0.Format(time.RFC3339Nano) {
			t.Errorf("record time %v, want the event's time %v", m["time"], t0)
		}
		delete(m, "time")
		out = append(out, m)
	}
	return out
}

func id() event.Event {
	return event.Event{Time: t0, Instance: "VI_1", VRID: 51, Interface: "eth0", Family: vrrp.IPv4}
}

func TestRecords(t *testing.T) {
	tr := id()
	tr.Kind, tr.From, tr.To, tr.Reason, tr.Priority = event.KindTransition, vrrp.StateBackup, vrrp.StateMaster, event.ReasonMasterDown, 100
	prio := id()
	prio.Kind, prio.BasePriority, prio.Priority, prio.Value, prio.Tracker = event.KindPriorityChanged, 100, 80, -20, "chk"
	vip := id()
	vip.Kind, vip.Addr = event.KindVIPAdded, netip.MustParseAddr("192.0.2.100")
	advert := id()
	advert.Kind = event.KindAdvertSent
	fail := event.Event{Kind: event.KindScriptRun, Time: t0, Name: "chk", ExitCode: 1, Duration: 250 * time.Millisecond, Reason: "exit"}
	ok := fail
	ok.OK, ok.ExitCode, ok.Reason = true, 0, ""
	rej := event.Event{Kind: event.KindReloadRejected, Time: t0, Name: "/etc/keepalived/keepalived.conf", Err: errors.New("config has errors (1)")}

	got := run(t, logsink.Options{}, tr, advert, prio, vip, fail, fail, ok, rej)
	inst := func(m map[string]any) map[string]any {
		m["vrrp_instance"], m["vrid"], m["interface"], m["family"] = "VI_1", 51.0, "eth0", "ipv4"
		return m
	}
	script := func(m map[string]any) map[string]any {
		m["script"], m["duration_seconds"] = "chk", 0.25
		return m
	}
	want := []map[string]any{
		// keepalived's lines (logsink.TextKey) ride with the fields; a
		// takeover on a silent master is preceded by its cause, as keepalived logs it.
		inst(map[string]any{"level": "INFO", "msg": "vrrp transition cause", "reason": "master_down", "text": "(VI_1) Receive advertisement timeout"}),
		inst(map[string]any{"level": "INFO", "msg": "vrrp transition", "from": "backup", "to": "master", "reason": "master_down", "priority": 100.0,
			"text": "(VI_1) Entering MASTER STATE"}),
		inst(map[string]any{"level": "INFO", "msg": "priority changed", "priority": 80.0, "base_priority": 100.0, "delta": -20.0, "tracker": "chk",
			"text": "(VI_1) Changing effective priority to 80"}),
		inst(map[string]any{"level": "INFO", "msg": "vip added", "address": "192.0.2.100", "text": "(VI_1) setting VIP 192.0.2.100"}),
		script(map[string]any{"level": "WARN", "msg": "script failed", "exit_code": 1.0, "reason": "exit", "text": "VRRP_Script(chk) failed (exited with status 1)"}),
		// Still failing: not repeated at warn.
		script(map[string]any{"level": "DEBUG", "msg": "script failed", "exit_code": 1.0, "reason": "exit", "text": "VRRP_Script(chk) failed (exited with status 1)"}),
		script(map[string]any{"level": "INFO", "msg": "script recovered", "exit_code": 0.0, "text": "VRRP_Script(chk) succeeded"}),
		{"level": "ERROR", "msg": "reload rejected: keeping the running config", "path": "/etc/keepalived/keepalived.conf", "err": "config has errors (1)",
			"text": "Reload of /etc/keepalived/keepalived.conf rejected, keeping the running config: config has errors (1)"},
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("records (-want +got):\n%s", d)
	}
}

// TestSpanIDs: a record about an event that became a span carries that
// span's ids, the ones the exported span has.
func TestSpanIDs(t *testing.T) {
	exp := tracetest.NewInMemoryExporter()
	p, err := tracing.NewProvider(context.Background(), tracing.Config{Exporter: exp})
	if err != nil {
		t.Fatal(err)
	}
	ts := tracing.NewSink(p, tracing.SinkOptions{})
	prio := id()
	prio.Kind, prio.ID, prio.BasePriority, prio.Priority = event.KindPriorityChanged, event.NewID(), 100, 80
	tr := id()
	tr.Kind, tr.ID, tr.Cause, tr.From, tr.To, tr.Reason = event.KindTransition, event.NewID(), prio.ID, vrrp.StateMaster, vrrp.StateBackup, event.ReasonPriority
	noID := id()
	noID.Kind = event.KindVIPRemoved

	var buf bytes.Buffer
	ls := logsink.New(slog.New(slog.NewJSONHandler(&buf, nil)), logsink.Options{Spans: ts})
	sink := event.Multi{ls, ts}
	for _, e := range []event.Event{prio, tr, noID} {
		sink.Emit(e)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_ = ls.Run(ctx)
	_ = ts.Run(ctx)
	// ForceFlush, not Shutdown: the in-memory exporter forgets on Shutdown.
	if err := p.ForceFlush(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Shutdown(context.Background()) })
	spans := map[string]string{} // span id -> trace id
	for _, s := range exp.GetSpans() {
		spans[s.SpanContext.SpanID().String()] = s.SpanContext.TraceID().String()
	}
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 3 {
		t.Fatalf("%d records, want 3:\n%s", len(lines), buf.String())
	}
	var traceIDs []string
	for i, l := range lines[:2] {
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatal(err)
		}
		sid, _ := m["span_id"].(string)
		tid, _ := m["trace_id"].(string)
		if spans[sid] == "" || spans[sid] != tid {
			t.Errorf("record %d: span_id %q trace_id %q, not an exported span (%v)", i, sid, tid, spans)
		}
		traceIDs = append(traceIDs, tid)
	}
	if traceIDs[0] != traceIDs[1] {
		t.Errorf("transition logged in trace %s, its cause in %s", traceIDs[1], traceIDs[0])
	}
	if strings.Contains(lines[2], "trace_id") {
		t.Errorf("event without an ID (no span) logged with ids: %s", lines[2])
	}
}

func TestQueueFullDrops(t *testing.T) {
	s := logsink.New(slog.New(slog.DiscardHandler), logsink.Options{QueueSize: 2})
	tr := id()
	tr.Kind = event.KindTransition
	advert := id()
	advert.Kind = event.KindAdvertReceived
	for range 5 {
		s.Emit(tr)
		s.Emit(advert) // not logged, so never queued nor dropped
	}
	if s.QueueLen() != 2 || s.QueueDropped() != 3 || s.QueueName() != "log" {
		t.Errorf("queue %q len %d dropped %d, want log 2 3", s.QueueName(), s.QueueLen(), s.QueueDropped())
	}
}

func TestTraceHandler(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(logsink.TraceHandler(slog.NewJSONHandler(&buf, nil))).With("component", "test")
	tid, _ := trace.TraceIDFromHex("0102030405060708090a0b0c0d0e0f10")
	sid, _ := trace.SpanIDFromHex("0102030405060708")
	ctx := trace.ContextWithSpanContext(context.Background(), trace.NewSpanContext(trace.SpanContextConfig{TraceID: tid, SpanID: sid}))
	log.InfoContext(ctx, "inside")
	log.Info("outside")
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 2 || !strings.Contains(lines[0], `"trace_id":"0102030405060708090a0b0c0d0e0f10","span_id":"0102030405060708"`) ||
		strings.Contains(lines[1], "trace_id") {
		t.Errorf("records:\n%s", buf.String())
	}
}

// TestEmitAdvertAllocs: adverts cost the log sink nothing.
func TestEmitAdvertAllocs(t *testing.T) {
	s := logsink.New(slog.New(slog.DiscardHandler), logsink.Options{})
	e := id()
	e.Kind = event.KindAdvertSent
	if n := testing.AllocsPerRun(1000, func() { s.Emit(e) }); n != 0 {
		t.Errorf("%v allocs per advert, want 0", n)
	}
}

// Checker events read as keepalived's ipwrapper.c and check_*.c lines, the
// services written as its FMT_VS/FMT_RS do.
func TestCheckerText(t *testing.T) {
	svc, rs := "192.0.2.100:80/tcp", "192.0.2.10:8080"
	got := run(t, logsink.Options{},
		event.Event{Kind: event.KindRealServer, Time: t0, Service: svc, Target: rs, OK: true, Value: 1},
		event.Event{Kind: event.KindProbe, Time: t0, Name: "TCP_CHECK", Service: svc, Target: rs, Reason: "refused"},
		event.Event{Kind: event.KindRealServer, Time: t0, Service: svc, Target: rs},
		event.Event{Kind: event.KindQuorum, Time: t0, Service: "fwmark:7/ipv4"},
	)
	want := []string{"Adding service [192.0.2.10]:tcp:8080 to VS [192.0.2.100]:tcp:80",
		"TCP_CHECK on service [192.0.2.10]:tcp:8080 failed.",
		"Removing service [192.0.2.10]:tcp:8080 from VS [192.0.2.100]:tcp:80",
		"Lost quorum for VS FWM 7"}
	if len(got) != len(want) {
		t.Fatalf("%d records, want %d: %v", len(got), len(want), got)
	}
	for i, w := range want {
		if got[i][logsink.TextKey] != w {
			t.Errorf("record %d text = %v, want %q", i, got[i][logsink.TextKey], w)
		}
	}
}

// TestLogAllFailures: a failed probe is a debug record unless its checker
// has log_all_failures (Value 1), which keepalived logs at info each time.
func TestLogAllFailures(t *testing.T) {
	quiet := event.Event{Kind: event.KindProbe, Time: t0, Name: "TCP_CHECK", Service: "192.0.2.1:80/tcp", Target: "198.51.100.1:8080", Reason: "connect"}
	loud := quiet
	loud.Value = 1
	got := run(t, logsink.Options{}, quiet, loud)
	if len(got) != 2 || got[0]["level"] != "DEBUG" || got[1]["level"] != "INFO" {
		t.Errorf("levels of a quiet and a log_all_failures probe failure: %v", got)
	}
}
