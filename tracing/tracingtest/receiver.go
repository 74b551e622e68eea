package tracingtest

import (
	"compress/gzip"
	"context"
	"encoding/hex"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"testing"
	"time"

	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"
)

// Receiver collects the ExportTraceServiceRequests that OTLP exporters send
// it, over HTTP (as an http.Handler) or gRPC. It is safe for concurrent use.
type Receiver struct {
	mu       sync.Mutex
	requests []*coltracepb.ExportTraceServiceRequest
	paths    []string
	notify   chan struct{}
	count    bool // NewCounter: count spans, keep nothing
	n        int  // spans received
}

// NewReceiver returns an empty receiver; serve it with StartHTTP, StartGRPC
// or as the handler of a server of the test's own (for example one
// listening inside a network namespace).
func NewReceiver() *Receiver { return &Receiver{notify: make(chan struct{}, 1)} }

// NewCounter returns a receiver that decodes every export and counts its
// spans (Count) but keeps none: Spans and Paths stay empty. For benchmarks
// sending thousands of spans a second, where a receiver holding them all
// (and its garbage collector scanning them) would answer exports more
// slowly than the exporter sends them.
func NewCounter() *Receiver { return &Receiver{notify: make(chan struct{}, 1), count: true} }

func (r *Receiver) add(path string, req *coltracepb.ExportTraceServiceRequest) {
	n := 0
	for _, rs := range req.GetResourceSpans() {
		for _, ss := range rs.GetScopeSpans() {
			n += len(ss.GetSpans())
		}
	}
	r.mu.Lock()
	r.n += n
	if !r.count {
		r.requests = append(r.requests, req)
		r.paths = append(r.paths, path)
	}
	r.mu.Unlock()
	select {
	case r.notify <- struct{}{}:
	default:
	}
}

// ServeHTTP takes an OTLP/HTTP export (http/protobuf, possibly gzipped)
// posted to any path: the path is recorded (see Paths) so a test can check
// where the exporter sent it.
func (r *Receiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	if req.Method != http.MethodPost || req.Header.Get("Content-Type") != "application/x-protobuf" {
		http.Error(w, "want POST application/x-protobuf", http.StatusUnsupportedMediaType)
		return
	}
	var body io.Reader = req.Body
	if req.Header.Get("Content-Encoding") == "gzip" {
		zr, err := gzip.NewReader(req.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		body = zr
	}
	raw, err := io.ReadAll(body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	msg := &coltracepb.ExportTraceServiceRequest{}
	if err := proto.Unmarshal(raw, msg); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	r.add(req.URL.Path, msg)
	out, _ := proto.Marshal(&coltracepb.ExportTraceServiceResponse{})
	w.Header().Set("Content-Type", "application/x-protobuf")
	_, _ = w.Write(out)
}

// StartHTTP serves the receiver on a loopback httptest server, closed when
// the test ends.
func (r *Receiver) StartHTTP(t testing.TB) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(r)
	t.Cleanup(srv.Close)
	return srv
}

type grpcTraceService struct {
	coltracepb.UnimplementedTraceServiceServer
	r *Receiver
}

func (g grpcTraceService) Export(_ context.Context, req *coltracepb.ExportTraceServiceRequest) (*coltracepb.ExportTraceServiceResponse, error) {
	g.r.add("grpc", req)
	return &coltracepb.ExportTraceServiceResponse{}, nil
}

// StartGRPC serves the receiver as an OTLP/gRPC trace service on loopback
// until the test ends and returns its address. Its exports are recorded
// with the path "grpc".
func (r *Receiver) StartGRPC(t testing.TB) string {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := grpc.NewServer()
	coltracepb.RegisterTraceServiceServer(s, grpcTraceService{r: r})
	go func() { _ = s.Serve(lis) }()
	t.Cleanup(s.Stop)
	return lis.Addr().String()
}

// Paths returns the URL path of each export received so far, in order.
func (r *Receiver) Paths() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.paths...)
}

// Span is a received span with its resource's attributes.
type Span struct {
	Proto    *tracepb.Span
	Resource map[string]string
}

// Name is the span's name.
func (s Span) Name() string { return s.Proto.GetName() }

// TraceID is the span's trace id in hex.
func (s Span) TraceID() string { return hex.EncodeToString(s.Proto.GetTraceId()) }

// SpanID is the span's id in hex.
func (s Span) SpanID() string { return hex.EncodeToString(s.Proto.GetSpanId()) }

// ParentID is the parent span's id in hex, "" for a root span.
func (s Span) ParentID() string { return hex.EncodeToString(s.Proto.GetParentSpanId()) }

// Attrs are the span's attributes as strings (see KeyValues).
func (s Span) Attrs() map[string]string { return KeyValues(s.Proto.GetAttributes()) }

// Error reports whether the span's status is error.
func (s Span) Error() bool { return s.Proto.GetStatus().GetCode() == tracepb.Status_STATUS_CODE_ERROR }

// KeyValues flattens OTLP attributes to strings: strings as they are,
// integers in decimal, booleans as "true"/"false", anything else in its
// protobuf text form.
func KeyValues(list []*commonpb.KeyValue) map[string]string {
	m := map[string]string{}
	for _, kv := range list {
		v := kv.GetValue()
		switch x := v.GetValue().(type) {
		case *commonpb.AnyValue_StringValue:
			m[kv.GetKey()] = x.StringValue
		case *commonpb.AnyValue_IntValue:
			m[kv.GetKey()] = strconv.FormatInt(x.IntValue, 10)
		case *commonpb.AnyValue_BoolValue:
			m[kv.GetKey()] = strconv.FormatBool(x.BoolValue)
		default:
			m[kv.GetKey()] = v.String()
		}
	}
	return m
}

// Count returns the number of spans received so far.
func (r *Receiver) Count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.n
}

// Spans returns every span received so far, in arrival order.
func (r *Receiver) Spans() []Span {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []Span
	for _, req := range r.requests {
		for _, rs := range req.GetResourceSpans() {
			res := KeyValues(rs.GetResource().GetAttributes())
			for _, ss := range rs.GetScopeSpans() {
				for _, sp := range ss.GetSpans() {
					out = append(out, Span{Proto: sp, Resource: res})
				}
			}
		}
	}
	return out
}

// Wait returns the spans once at least n have arrived, failing the test if
// they have not within timeout.
func (r *Receiver) Wait(t testing.TB, n int, timeout time.Duration) []Span {
	t.Helper()
	deadline := time.After(timeout)
	for {
		if got := r.Spans(); len(got) >= n {
			return got
		}
		select {
		case <-r.notify:
		case <-deadline:
			got := r.Spans()
			t.Fatalf("received %d spans within %v, want %d", len(got), timeout, n)
			return got
		}
	}
}
