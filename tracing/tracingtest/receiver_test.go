package tracingtest_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"

	"github.com/keepwatch/keepwatch/tracing/tracingtest"
)

// export sends a parent and a child span through a real OTLP exporter, in
// one batch.
func export(t *testing.T, exp sdktrace.SpanExporter) {
	t.Helper()
	tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp),
		sdktrace.WithResource(resource.NewSchemaless(attribute.String("service.name", "tt"))))
	ctx, parent := tp.Tracer("tt").Start(context.Background(), "parent")
	_, child := tp.Tracer("tt").Start(ctx, "child", attrsOpt())
	child.SetStatus(codes.Error, "boom")
	child.End()
	parent.End()
	if err := tp.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
}

func attrsOpt() trace.SpanStartOption {
	return trace.WithAttributes(attribute.String("s", "x"), attribute.Int64("i", -42),
		attribute.Bool("b", true), attribute.Float64("f", 1.5))
}

func check(t *testing.T, spans []tracingtest.Span) {
	t.Helper()
	if len(spans) != 2 || spans[0].Name() != "child" || spans[1].Name() != "parent" {
		names := []string{}
		for _, s := range spans {
			names = append(names, s.Name())
		}
		t.Fatalf("spans %v, want [child parent]", names)
	}
	child, parent := spans[0], spans[1]
	if child.TraceID() != parent.TraceID() || child.ParentID() != parent.SpanID() || parent.ParentID() != "" {
		t.Errorf("child trace %s parent %s, parent trace %s id %s parent %q: want one trace, child under parent",
			child.TraceID(), child.ParentID(), parent.TraceID(), parent.SpanID(), parent.ParentID())
	}
	if len(child.SpanID()) != 16 || len(child.TraceID()) != 32 {
		t.Errorf("ids %s/%s, want 8 and 16 bytes in hex", child.SpanID(), child.TraceID())
	}
	if !child.Error() || parent.Error() {
		t.Errorf("error: child %v parent %v, want true false", child.Error(), parent.Error())
	}
	if a := child.Attrs(); a["s"] != "x" || a["i"] != "-42" || a["b"] != "true" || !strings.Contains(a["f"], "1.5") {
		t.Errorf("attrs = %v", a)
	}
	if child.Resource["service.name"] != "tt" {
		t.Errorf("resource = %v, want service.name tt", child.Resource)
	}
}

// TestHTTP: the real http/protobuf exporter, gzipped, reaches the receiver
// at /v1/traces and its spans decode.
func TestHTTP(t *testing.T) {
	r := tracingtest.NewReceiver()
	srv := r.StartHTTP(t)
	exp, err := otlptracehttp.New(context.Background(), otlptracehttp.WithEndpointURL(srv.URL+"/v1/traces"),
		otlptracehttp.WithCompression(otlptracehttp.GzipCompression))
	if err != nil {
		t.Fatal(err)
	}
	export(t, exp)
	check(t, r.Wait(t, 2, 10*time.Second))
	if p := r.Paths(); len(p) != 1 || p[0] != "/v1/traces" {
		t.Errorf("paths = %v, want [/v1/traces]", p)
	}
}

// TestGRPC: the real gRPC exporter reaches the receiver's trace service.
func TestGRPC(t *testing.T) {
	r := tracingtest.NewReceiver()
	addr := r.StartGRPC(t)
	exp, err := otlptracegrpc.New(context.Background(), otlptracegrpc.WithEndpoint(addr), otlptracegrpc.WithInsecure())
	if err != nil {
		t.Fatal(err)
	}
	export(t, exp)
	check(t, r.Wait(t, 2, 10*time.Second))
	if p := r.Paths(); len(p) != 1 || p[0] != "grpc" {
		t.Errorf("paths = %v, want [grpc]", p)
	}
}

// TestRejects: what is not a protobuf POST, or does not decode, is refused
// and not recorded.
func TestRejects(t *testing.T) {
	r := tracingtest.NewReceiver()
	srv := r.StartHTTP(t)
	for _, tc := range []struct {
		method, ctype, body string
		want                int
	}{
		{http.MethodGet, "application/x-protobuf", "", http.StatusUnsupportedMediaType},
		{http.MethodPost, "application/json", "{}", http.StatusUnsupportedMediaType},
		{http.MethodPost, "application/x-protobuf", "\xff\xff\xff", http.StatusBadRequest},
	} {
		req, err := http.NewRequest(tc.method, srv.URL+"/v1/traces", strings.NewReader(tc.body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", tc.ctype)
		resp, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != tc.want {
			t.Errorf("%s %s %q: status %d, want %d", tc.method, tc.ctype, tc.body, resp.StatusCode, tc.want)
		}
	}
	if p, s := r.Paths(), r.Spans(); len(p) != 0 || len(s) != 0 {
		t.Errorf("recorded %v / %d spans from rejected requests", p, len(s))
	}
}

func TestKeyValues(t *testing.T) {
	list := []*commonpb.KeyValue{
		{Key: "s", Value: &commonpb.AnyValue{Value: &commonpb.AnyValue_StringValue{StringValue: "x"}}},
		{Key: "i", Value: &commonpb.AnyValue{Value: &commonpb.AnyValue_IntValue{IntValue: -7}}},
		{Key: "t", Value: &commonpb.AnyValue{Value: &commonpb.AnyValue_BoolValue{BoolValue: true}}},
		{Key: "f", Value: &commonpb.AnyValue{Value: &commonpb.AnyValue_BoolValue{BoolValue: false}}},
	}
	got := tracingtest.KeyValues(list)
	want := map[string]string{"s": "x", "i": "-7", "t": "true", "f": "false"}
	if len(got) != len(want) {
		t.Fatalf("KeyValues = %v, want %v", got, want)
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("KeyValues[%s] = %q, want %q", k, got[k], v)
		}
	}
}
