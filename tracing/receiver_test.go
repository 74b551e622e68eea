package tracing

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/hex"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"
)

// receiver is an in-test OTLP trace receiver: it decodes the
// ExportTraceServiceRequest protobufs the real exporters send.
type receiver struct {
	mu       sync.Mutex
	requests []*coltracepb.ExportTraceServiceRequest
	paths    []string
	notify   chan struct{}
}

func newReceiver() *receiver { return &receiver{notify: make(chan struct{}, 1)} }

func (r *receiver) add(path string, req *coltracepb.ExportTraceServiceRequest) {
	r.mu.Lock()
	r.requests = append(r.requests, req)
	r.paths = append(r.paths, path)
	r.mu.Unlock()
	select {
	case r.notify <- struct{}{}:
	default:
	}
}

// gotSpan is a received span flattened with its resource's attributes.
type gotSpan struct {
	span     *tracepb.Span
	resource map[string]string
}

func (s gotSpan) traceID() string  { return hex.EncodeToString(s.span.GetTraceId()) }
func (s gotSpan) spanID() string   { return hex.EncodeToString(s.span.GetSpanId()) }
func (s gotSpan) parentID() string { return hex.EncodeToString(s.span.GetParentSpanId()) }

func (s gotSpan) attrs() map[string]string { return kvs(s.span.GetAttributes()) }

func kvs(list []*commonpb.KeyValue) map[string]string {
	m := map[string]string{}
	for _, kv := range list {
		v := kv.GetValue()
		switch x := v.GetValue().(type) {
		case *commonpb.AnyValue_StringValue:
			m[kv.GetKey()] = x.StringValue
		case *commonpb.AnyValue_IntValue:
			m[kv.GetKey()] = itoa(x.IntValue)
		case *commonpb.AnyValue_BoolValue:
			if x.BoolValue {
				m[kv.GetKey()] = "true"
			} else {
				m[kv.GetKey()] = "false"
			}
		default:
			m[kv.GetKey()] = v.String()
		}
	}
	return m
}

func itoa(i int64) string {
	var b [24]byte
	n := len(b)
	neg := i < 0
	if neg {
		i = -i
	}
	for {
		n--
		b[n] = byte('0' + i%10)
		i /= 10
		if i == 0 {
			break
		}
	}
	if neg {
		n--
		b[n] = '-'
	}
	return string(b[n:])
}

func (r *receiver) spans() []gotSpan {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []gotSpan
	for _, req := range r.requests {
		for _, rs := range req.GetResourceSpans() {
			res := kvs(rs.GetResource().GetAttributes())
			for _, ss := range rs.GetScopeSpans() {
				for _, sp := range ss.GetSpans() {
					out = append(out, gotSpan{span: sp, resource: res})
				}
			}
		}
	}
	return out
}

// wait blocks until at least n spans arrived or the timeout passes.
func (r *receiver) wait(t *testing.T, n int, timeout time.Duration) []gotSpan {
	t.Helper()
	deadline := time.After(timeout)
	for {
		if got := r.spans(); len(got) >= n {
			return got
		}
		select {
		case <-r.notify:
		case <-deadline:
			got := r.spans()
			t.Fatalf("received %d spans within %v, want %d", len(got), timeout, n)
			return got
		}
	}
}

// serveHTTP starts an OTLP/HTTP receiver (http/protobuf, POST /v1/traces).
func (r *receiver) serveHTTP(t *testing.T) *httptest.Server {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
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
		_, _ = io.Copy(w, bytes.NewReader(out))
	}))
	t.Cleanup(srv.Close)
	return srv
}

type grpcTraceService struct {
	coltracepb.UnimplementedTraceServiceServer
	r *receiver
}

func (g grpcTraceService) Export(_ context.Context, req *coltracepb.ExportTraceServiceRequest) (*coltracepb.ExportTraceServiceResponse, error) {
	g.r.add("grpc", req)
	return &coltracepb.ExportTraceServiceResponse{}, nil
}

// serveGRPC starts an OTLP/gRPC receiver on loopback and returns its address.
func (r *receiver) serveGRPC(t *testing.T) string {
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
