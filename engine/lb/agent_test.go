package lb_test

import (
	"context"
	"encoding/json"
	"net"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/keepwatch/keepwatch/engine/agent"
	"github.com/keepwatch/keepwatch/engine/event"
	"github.com/keepwatch/keepwatch/engine/event/eventtest"
	"github.com/keepwatch/keepwatch/engine/ipvs/ipvstest"
	"github.com/keepwatch/keepwatch/engine/lb"
)

const agentConf = `
global_defs {
  router_id lbagent
}
virtual_server 192.0.2.20 80 {
  delay_loop 0.1
  lb_algo rr
  protocol TCP
  real_server 127.0.0.1 PORT {
    weight WEIGHT
    TCP_CHECK {
      connect_timeout 1
    }
  }
}
`

// The agent runs the balancer for a config with virtual servers, shows it
// in /api/v1/status, reloads it with the config and stops it.
func TestAgentRunsBalancer(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	path := filepath.Join(t.TempDir(), "keepalived.conf")
	write := func(weight string) {
		text := strings.NewReplacer("PORT", port, "WEIGHT", weight).Replace(agentConf)
		if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("2")
	k := ipvstest.New()
	rec := &eventtest.Recorder{}
	b := lb.New(lb.Options{Sink: rec, Kernel: k})
	a := agent.New(agent.Options{Path: path, Sink: rec, Balancer: b})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	defer func() {
		cancel()
		<-done
	}()
	srv := httptest.NewServer(a.StatusHandler())
	defer srv.Close()
	status := func() agent.StatusDoc {
		resp, err := srv.Client().Get(srv.URL)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var doc agent.StatusDoc
		if err := json.NewDecoder(resp.Body).Decode(&doc); err != nil {
			t.Fatal(err)
		}
		return doc
	}
	rsWeight := func(want int) func() bool {
		return func() bool {
			d := status()
			return len(d.VirtualServers) == 1 && len(d.VirtualServers[0].RealServers) == 1 &&
				d.VirtualServers[0].RealServers[0].Up && d.VirtualServers[0].RealServers[0].TableWeight == want
		}
	}
	waitFor(t, "the real server in the status with weight 2", rsWeight(2))
	if _, ok := rec.Wait(5*time.Second, func(e event.Event) bool { return e.Kind == event.KindProbe && e.OK }); !ok {
		t.Fatal("no successful probe reached the sink")
	}
	waitFor(t, "the probe's result in the status", func() bool {
		rs := status().VirtualServers[0].RealServers[0]
		return rs.Checked && len(rs.Checkers) == 1 && rs.Checkers[0].HasRun
	})
	if d := status(); d.VirtualServers[0].Service != "192.0.2.20:80/tcp" || !d.VirtualServers[0].QuorumUp {
		t.Errorf("status: %+v", d.VirtualServers)
	}
	write("4")
	if err := a.Reload(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "weight 4 after reload", rsWeight(4))
	svcs, _ := k.GetServices()
	if len(svcs) != 1 {
		t.Fatalf("kernel has %d services, want 1", len(svcs))
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	done <- nil
	if svcs, _ := k.GetServices(); len(svcs) != 0 {
		t.Errorf("%d services left after the agent stopped", len(svcs))
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
