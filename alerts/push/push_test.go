package push

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/keepwatch/keepwatch/engine/event"
	"github.com/keepwatch/keepwatch/engine/vrrp"
)

// receiver is an HTTP server standing in for Alertmanager's API (the
// real one is in deploy/obs TestPushPaging); fail makes it answer 503.
type receiver struct {
	mu     sync.Mutex
	alerts []alert
	fail   bool
}

func (r *receiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if req.URL.Path != "/api/v2/alerts" || r.fail {
		http.Error(w, "no", http.StatusServiceUnavailable)
		return
	}
	var as []alert
	if err := json.NewDecoder(req.Body).Decode(&as); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	r.alerts = append(r.alerts, as...)
}

func (r *receiver) got() []alert {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]alert(nil), r.alerts...)
}

func transition(from, to vrrp.State) event.Event {
	return event.Event{Kind: event.KindTransition, Instance: "VI_1", VRID: 51, Interface: "eth0", Family: vrrp.IPv4,
		From: from, To: to, Reason: event.ReasonMasterDown, Time: time.Unix(1000, 0)}
}

func TestPush(t *testing.T) {
	rcv := &receiver{}
	srv := httptest.NewServer(rcv)
	defer srv.Close()
	s := New(Options{URLs: []string{srv.URL}, Labels: map[string]string{"job": "keepwatch", "instance": "lb2:9759"},
		RunbookBase: "https://example/runbook.md"})
	s.SetSegments(map[string]string{"VI_1": "192.0.2.0/24"})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { _ = s.Run(ctx) }()

	s.Emit(event.Event{Kind: event.KindAdvertSent, Instance: "VI_1"}) // not an alert
	s.Emit(transition(vrrp.StateBackup, vrrp.StateMaster))
	s.Emit(transition(vrrp.StateMaster, vrrp.StateFault))
	s.Emit(transition(vrrp.StateFault, vrrp.StateBackup))
	s.Emit(transition(vrrp.StateBackup, vrrp.StateFault))
	s.Emit(transition(vrrp.StateFault, vrrp.StateMaster)) // resolves the fault and moves the VIP
	deadline := time.Now().Add(5 * time.Second)
	for len(rcv.got()) < 6 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	got := rcv.got()
	if len(got) != 6 {
		t.Fatalf("received %d alerts, want 6: %+v", len(got), got)
	}
	if last, prev := got[5], got[4]; last.Labels["alertname"] != "KeepwatchVIPMoved" || prev.Labels["alertname"] != "KeepwatchInstanceFault" || prev.EndsAt.IsZero() {
		t.Errorf("FAULT → MASTER pushed %s then %s (resolved %v), want the fault resolved, then the move", prev.Labels["alertname"], last.Labels["alertname"], !prev.EndsAt.IsZero())
	}
	moved := got[0]
	want := map[string]string{"alertname": "KeepwatchVIPMoved", "severity": "critical", "job": "keepwatch", "instance": "lb2:9759",
		"vrrp_instance": "VI_1", "vrid": "51", "interface": "eth0", "family": "ipv4", "segment": "192.0.2.0/24"}
	if !equal(moved.Labels, want) {
		t.Errorf("VIPMoved labels %v, want %v", moved.Labels, want)
	}
	if !moved.StartsAt.Equal(time.Unix(1000, 0)) || !moved.EndsAt.Equal(time.Unix(1300, 0)) {
		t.Errorf("VIPMoved from %v to %v, want the transition and 5m later", moved.StartsAt, moved.EndsAt)
	}
	if moved.Annotations["runbook_url"] != "https://example/runbook.md#keepwatchvipmoved" {
		t.Errorf("runbook_url %q", moved.Annotations["runbook_url"])
	}
	fault, cleared := got[1], got[2]
	if fault.Labels["alertname"] != "KeepwatchInstanceFault" || fault.Labels["state"] != "fault" || !fault.EndsAt.IsZero() {
		t.Errorf("fault alert %+v: want KeepwatchInstanceFault{state=fault}, open-ended", fault)
	}
	if !equal(cleared.Labels, fault.Labels) || !cleared.EndsAt.Equal(cleared.StartsAt) {
		t.Errorf("leaving FAULT: %+v, want the fault alert's labels, resolved", cleared)
	}
	// The sink counts a push once Alertmanager's answer is read, which can
	// be after the receiver has recorded it.
	for s.Sent() < 6 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if s.Sent() != 6 || s.QueueDropped() != 0 {
		t.Errorf("sent %d, dropped %d; want 6, 0", s.Sent(), s.QueueDropped())
	}
}

// TestPushNeverBlocks: with Alertmanager failing, Emit returns at once,
// what exceeds the queue is dropped and counted, and so is what could
// not be delivered after the retries.
func TestPushNeverBlocks(t *testing.T) {
	rcv := &receiver{fail: true}
	srv := httptest.NewServer(rcv)
	defer srv.Close()
	s := New(Options{URLs: []string{srv.URL}, QueueSize: 4, Retry: time.Millisecond, MaxAttempts: 2})
	start := time.Now()
	for range 10 {
		s.Emit(transition(vrrp.StateBackup, vrrp.StateMaster))
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("10 Emits took %v", d)
	}
	if s.QueueDropped() != 6 || s.QueueLen() != 4 {
		t.Errorf("dropped %d, queued %d; want 6, 4", s.QueueDropped(), s.QueueLen())
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = s.Run(ctx); close(done) }()
	deadline := time.Now().Add(5 * time.Second)
	for s.QueueDropped() != 10 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	<-done
	if s.QueueDropped() != 10 || s.Sent() != 0 {
		t.Errorf("dropped %d, sent %d; want 10, 0 (undeliverable alerts are counted)", s.QueueDropped(), s.Sent())
	}
}

func equal(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}
