package tracing

import (
	"net/http/httptest"
	"testing"
	"time"

	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"

	"github.com/keepwatch/keepwatch/tracing/tracingtest"
)

// receiver is the in-test OTLP trace receiver of tracingtest, with the
// short names these tests use.
type receiver struct{ *tracingtest.Receiver }

func newReceiver() receiver { return receiver{tracingtest.NewReceiver()} }

// serveHTTP starts an OTLP/HTTP receiver (http/protobuf) on loopback.
func (r receiver) serveHTTP(t *testing.T) *httptest.Server { return r.StartHTTP(t) }

// serveGRPC starts an OTLP/gRPC receiver on loopback and returns its address.
func (r receiver) serveGRPC(t *testing.T) string { return r.StartGRPC(t) }

// wait blocks until at least n spans arrived or the timeout passes.
func (r receiver) wait(t *testing.T, n int, timeout time.Duration) []gotSpan {
	t.Helper()
	var out []gotSpan
	for _, s := range r.Wait(t, n, timeout) {
		out = append(out, gotSpan{span: s.Proto, resource: s.Resource})
	}
	return out
}

// gotSpan is a received span flattened with its resource's attributes.
type gotSpan struct {
	span     *tracepb.Span
	resource map[string]string
}

func (s gotSpan) shared() tracingtest.Span {
	return tracingtest.Span{Proto: s.span, Resource: s.resource}
}
func (s gotSpan) traceID() string          { return s.shared().TraceID() }
func (s gotSpan) spanID() string           { return s.shared().SpanID() }
func (s gotSpan) parentID() string         { return s.shared().ParentID() }
func (s gotSpan) attrs() map[string]string { return s.shared().Attrs() }
