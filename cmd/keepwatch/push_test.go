package main

import (
	"context"
	"encoding/pem"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/keepwatch/keepwatch/engine/event"
	"github.com/keepwatch/keepwatch/engine/vrrp"
)

// TestPushTLSBasicAuth: --alertmanager.http-config.file configures the
// push client as prometheus.yml configures an Alertmanager: over TLS
// (ca_file) with basic auth, against a TLS server on loopback.
func TestPushTLSBasicAuth(t *testing.T) {
	var ok, bad atomic.Int32
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if u, p, has := r.BasicAuth(); !has || u != "kw" || p != "s3cret" {
			bad.Add(1)
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		ok.Add(1)
	}))
	defer srv.Close()
	dir := t.TempDir()
	ca := filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	conf := filepath.Join(dir, "am-http.yml")
	if err := os.WriteFile(conf, []byte("tls_config:\n  ca_file: "+ca+"\nbasic_auth:\n  username: kw\n  password: s3cret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	ps, err := newPush(pushFlags{urls: []string{srv.URL}, labels: []string{"instance=lb1:9759"}, configFile: conf}, ":9759", nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { _ = ps.Run(ctx) }()
	ps.Emit(event.Event{Kind: event.KindTransition, Instance: "VI_1", VRID: 51, Interface: "eth0", Family: vrrp.IPv4, From: vrrp.StateBackup, To: vrrp.StateMaster})
	deadline := time.Now().Add(5 * time.Second)
	for ps.Sent() == 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if ps.Sent() != 1 || ok.Load() != 1 || bad.Load() != 0 {
		t.Errorf("sent %d; server saw %d authorised and %d unauthorised pushes; want 1, 1, 0", ps.Sent(), ok.Load(), bad.Load())
	}

	if _, err := newPush(pushFlags{urls: []string{srv.URL}, labels: []string{"instance"}}, ":9759", nil); err == nil {
		t.Error("--alertmanager.label without '=': want an error")
	}
}
