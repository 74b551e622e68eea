package obs

import (
	"compress/gzip"
	"encoding/hex"
	"io"
	"net"
	"net/http"
	"strconv"
	"sync"
	"testing"
	"time"

	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/proto"

	"github.com/keepwatch/keepwatch/engine/netif/nskit"
)

// receiver is an OTLP/HTTP trace receiver listening inside a node's
// namespace (on its loopback), decoding what the agent's real exporter sends.
type receiver struct {
	URL string

	mu    sync.Mutex
	spans []span
}

// span is a received span, flattened.
type span struct {
	Name, TraceID, SpanID, ParentID string
	Attrs                           map[string]string
	Error                           bool
}

func startReceiver(t testing.TB, n *nskit.Node) *receiver {
	t.Helper()
	var lis net.Listener
	if err := n.Do(func() error {
		var err error
		lis, err = net.Listen("tcp", "127.0.0.1:0")
		return err
	}); err != nil {
		t.Fatal(err)
	}
	r := &receiver{URL: "http://" + lis.Addr().String()}
	srv := &http.Server{Handler: http.HandlerFunc(r.serve), ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(func() { _ = srv.Close() })
	return r
}

func (r *receiver) serve(w http.ResponseWriter, req *http.Request) {
	if req.Method != http.MethodPost || req.URL.Path != "/v1/traces" {
		http.Error(w, "want POST /v1/traces", http.StatusNotFound)
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
	var got []span
	for _, rs := range msg.GetResourceSpans() {
		for _, ss := range rs.GetScopeSpans() {
			for _, sp := range ss.GetSpans() {
				got = append(got, span{Name: sp.GetName(), TraceID: hex.EncodeToString(sp.GetTraceId()),
					SpanID: hex.EncodeToString(sp.GetSpanId()), ParentID: hex.EncodeToString(sp.GetParentSpanId()),
					Attrs: attrs(sp.GetAttributes()), Error: sp.GetStatus().GetCode() == tracepb.Status_STATUS_CODE_ERROR})
			}
		}
	}
	r.mu.Lock()
	r.spans = append(r.spans, got...)
	r.mu.Unlock()
	out, _ := proto.Marshal(&coltracepb.ExportTraceServiceResponse{})
	w.Header().Set("Content-Type", "application/x-protobuf")
	_, _ = w.Write(out)
}

func attrs(list []*commonpb.KeyValue) map[string]string {
	m := map[string]string{}
	for _, kv := range list {
		switch v := kv.GetValue().GetValue().(type) {
		case *commonpb.AnyValue_StringValue:
			m[kv.GetKey()] = v.StringValue
		case *commonpb.AnyValue_IntValue:
			m[kv.GetKey()] = itoa(v.IntValue)
		case *commonpb.AnyValue_BoolValue:
			m[kv.GetKey()] = map[bool]string{true: "true", false: "false"}[v.BoolValue]
		default:
			m[kv.GetKey()] = kv.GetValue().String()
		}
	}
	return m
}

func itoa(i int64) string { return strconv.FormatInt(i, 10) }

// received returns a copy of the spans received so far.
func (r *receiver) received() []span {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]span(nil), r.spans...)
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
