package obs

import (
	"net"
	"net/http"
	"testing"
	"time"

	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"

	"github.com/keepwatch/keepwatch/engine/netif/nskit"
	"github.com/keepwatch/keepwatch/tracing/tracingtest"
)

// receiver is an OTLP/HTTP trace receiver listening inside a node's
// namespace (on its loopback), decoding what the agent's real exporter sends.
type receiver struct {
	URL string
	r   *tracingtest.Receiver
}

// span is a received span, flattened.
type span struct {
	Name, TraceID, SpanID, ParentID string
	// Kind is the OTLP span kind: for vrrp.advert, producer is an advert
	// sent and consumer one received (tracing/README.md).
	Kind  tracepb.Span_SpanKind
	Attrs map[string]string
	Error bool
}

func startReceiver(t testing.TB, n *nskit.Node) *receiver {
	t.Helper()
	return serveReceiver(t, n, tracingtest.NewReceiver())
}

// startCounter is startReceiver for benchmarks: it counts the spans
// (receiver.count) and keeps none, so it answers each export as fast as a
// collector would, whatever the rate (tracingtest.NewCounter). It runs in
// the test process: its CPU is not counted as the agent's.
func startCounter(t testing.TB, n *nskit.Node) *receiver {
	t.Helper()
	return serveReceiver(t, n, tracingtest.NewCounter())
}

// count returns the number of spans received so far.
func (r *receiver) count() int { return r.r.Count() }

func serveReceiver(t testing.TB, n *nskit.Node, tr *tracingtest.Receiver) *receiver {
	t.Helper()
	var lis net.Listener
	if err := n.Do(func() error {
		var err error
		lis, err = net.Listen("tcp", "127.0.0.1:0")
		return err
	}); err != nil {
		t.Fatal(err)
	}
	r := &receiver{URL: "http://" + lis.Addr().String(), r: tr}
	// The agent is configured with the bare URL; its exporter must add the
	// OTLP path itself, so only that path is accepted.
	mux := http.NewServeMux()
	mux.Handle("/v1/traces", r.r)
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(func() { _ = srv.Close() })
	return r
}

// received returns a copy of the spans received so far.
func (r *receiver) received() []span {
	var out []span
	for _, s := range r.r.Spans() {
		out = append(out, span{Name: s.Name(), TraceID: s.TraceID(), SpanID: s.SpanID(), ParentID: s.ParentID(),
			Kind: s.Proto.GetKind(), Attrs: s.Attrs(), Error: s.Error()})
	}
	return out
}

// find returns the spans named name whose attributes include want (pairs).
func find(spans []span, name string, want ...string) []span {
	var out []span
	for _, s := range spans {
		if s.Name != name {
			continue
		}
		ok := true
		for i := 0; i+1 < len(want); i += 2 {
			ok = ok && s.Attrs[want[i]] == want[i+1]
		}
		if ok {
			out = append(out, s)
		}
	}
	return out
}
