package lb

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	moby "github.com/moby/ipvs"

	"github.com/keepwatch/keepwatch/engine/event"
	"github.com/keepwatch/keepwatch/engine/event/eventtest"
	"github.com/keepwatch/keepwatch/engine/ipvs"
	"github.com/keepwatch/keepwatch/engine/ipvs/ipvstest"
)

// These tests run the real checkers against real listeners on loopback;
// the kernel is the in-memory ipvstest one (this host has no IPVS: the
// kernel tier, kernel_test.go, runs the same composition against a real
// IPVS in a VM).

const poolConf = `
global_defs {
  router_id lbtest
}
virtual_server 192.0.2.10 80 {
  delay_loop 0.1
  lb_algo rr
  lb_kind NAT
  protocol TCP
  quorum 2
  omega
  sorry_server 192.0.2.99 80
  real_server 127.0.0.1 %[1]s {
    weight 1
    TCP_CHECK {
      connect_timeout 1
      retry 0
    }
  }
  real_server 127.0.0.1 %[2]s {
    weight 1
    TCP_CHECK {
      connect_timeout 1
      retry 0
    }
  }
}
virtual_server 192.0.2.11 80 {
  delay_loop 0.1
  lb_algo wrr
  protocol TCP
  real_server 127.0.0.1 %[3]s {
    weight %[4]d
    inhibit_on_failure
    TCP_CHECK {
      connect_timeout 1
      retry 0
    }
  }
}
`

// mutations records which services the kernel was asked to change.
type mutations struct {
	mu  sync.Mutex
	per map[string]int
}

func (m *mutations) hook(op string, s *moby.Service, _ *moby.Destination) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if s != nil {
		m.per[fmt.Sprintf("%s:%d", s.Address, s.Port)]++
	}
	return nil
}

func (m *mutations) take() map[string]int {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := m.per
	m.per = map[string]int{}
	return out
}

func TestBalancerFollowsHealth(t *testing.T) {
	a, b2, c := listen(t, "127.0.0.1:0"), listen(t, "127.0.0.1:0"), listen(t, "127.0.0.1:0")
	cfg := loadText(t, fmt.Sprintf(poolConf, a.port(), b2.port(), c.port(), 3))
	k := ipvstest.New()
	muts := &mutations{per: map[string]int{}}
	k.Fail = muts.hook
	rec := &eventtest.Recorder{}
	b := New(Options{Sink: rec, Kernel: k, ResyncInterval: 200 * time.Millisecond})
	stop := runBalancer(t, b, cfg)

	vs1, vs2 := "192.0.2.10:80/tcp", "192.0.2.11:80/tcp"
	ra, rb, rc := "127.0.0.1:"+a.port(), "127.0.0.1:"+b2.port(), "127.0.0.1:"+c.port()
	want := func(w map[string]map[string]int) func() bool {
		return func() bool { return cmp.Equal(table(t, k), w) }
	}
	healthy := map[string]map[string]int{vs1: {ra: 1, rb: 1}, vs2: {rc: 3}}
	eventually(t, 5*time.Second, "both virtual servers programmed", want(healthy))
	if _, ok := rec.Wait(5*time.Second, func(e event.Event) bool {
		return e.Kind == event.KindQuorum && e.Service == vs1 && e.OK && e.Reason == event.ReasonStartup && e.Value == 2
	}); !ok {
		t.Errorf("no startup KindQuorum up for %s with live weight 2: %v", vs1, rec.Of(event.KindQuorum))
	}

	t.Run("quorum lost: the sorry server serves", func(t *testing.T) {
		muts.take()
		a.stop()
		eventually(t, 5*time.Second, "sorry server alone", want(map[string]map[string]int{vs1: {"192.0.2.99:80": 1}, vs2: {rc: 3}}))
		e, ok := rec.Wait(time.Second, func(e event.Event) bool { return e.Kind == event.KindQuorum && e.Service == vs1 && !e.OK })
		if !ok {
			t.Fatal("no KindQuorum down")
		}
		if e.Reason != "" || e.Value != 1 || e.Cause == 0 {
			t.Errorf("quorum event %+v: want no reason, Value (live weight) 1, a cause", e)
		}
		down, ok := rec.Wait(time.Second, func(e event.Event) bool {
			return e.Kind == event.KindRealServer && e.Target == ra && !e.OK
		})
		if !ok || down.Name != "TCP_CHECK" || down.Cause == 0 {
			t.Errorf("real-server down event %+v: want Name TCP_CHECK and the probe as cause", down)
		}
		if got := muts.take(); got["192.0.2.11:80"] != 0 || got["192.0.2.10:80"] == 0 {
			t.Errorf("kernel changes per service %v: want only 192.0.2.10:80 touched", got)
		}
	})
	t.Run("listener back: quorum regained", func(t *testing.T) {
		a.start()
		eventually(t, 5*time.Second, "real servers back", want(healthy))
		if _, ok := rec.Wait(time.Second, func(e event.Event) bool {
			return e.Kind == event.KindQuorum && e.Service == vs1 && e.OK && e.Reason == ""
		}); !ok {
			t.Error("no KindQuorum up after the listener came back")
		}
	})
	t.Run("inhibit_on_failure keeps a dead server at weight 0", func(t *testing.T) {
		c.stop()
		eventually(t, 5*time.Second, "weight 0", want(map[string]map[string]int{vs1: {ra: 1, rb: 1}, vs2: {rc: 0}}))
		c.start()
		eventually(t, 5*time.Second, "weight back", want(healthy))
	})
	t.Run("ipvsadm -C behind its back is repaired", func(t *testing.T) {
		if err := k.Flush(); err != nil {
			t.Fatal(err)
		}
		eventually(t, 5*time.Second, "resync repair", want(healthy))
	})
	t.Run("status", func(t *testing.T) {
		st := b.Status()
		if len(st) != 2 {
			t.Fatalf("status has %d virtual servers, want 2", len(st))
		}
		s := st[0]
		if s.Service != vs1 || s.Quorum != "up" || !s.QuorumUp || s.QuorumMin != 2 || s.LiveWeight != 2 || s.SorryServer != "192.0.2.99:80" ||
			s.SorryActive || !s.InKernel || len(s.RealServers) != 2 {
			t.Errorf("status %+v", s)
		}
		r := st[1].RealServers[0]
		if r.Address != "127.0.0.1" || fmt.Sprint(r.Port) != c.port() || r.Weight != 3 || r.TableWeight != 3 || !r.Up || !r.Checked ||
			!r.Inhibit || len(r.Checkers) != 1 || r.Checkers[0].Type != "TCP_CHECK" {
			t.Errorf("real server status %+v", r)
		}
	})
	t.Run("reload leaves unchanged virtual servers alone", func(t *testing.T) {
		muts.take()
		if err := b.Update(loadText(t, fmt.Sprintf(poolConf, a.port(), b2.port(), c.port(), 5))); err != nil {
			t.Fatal(err)
		}
		eventually(t, 5*time.Second, "new weight", want(map[string]map[string]int{vs1: {ra: 1, rb: 1}, vs2: {rc: 5}}))
		time.Sleep(300 * time.Millisecond) // a few probe rounds
		if got := muts.take(); got["192.0.2.10:80"] != 0 {
			t.Errorf("reload touched the unchanged virtual server: kernel changes %v", got)
		}
		for _, e := range rec.Of(event.KindQuorum) {
			if e.Service == vs1 && e.Reason == event.ReasonStartup && e.Time.After(time.Now().Add(-300*time.Millisecond)) {
				t.Errorf("reload re-announced an unchanged quorum: %+v", e)
			}
		}
	})
	t.Run("stop: omega notifications, services removed", func(t *testing.T) {
		stop()
		if got := table(t, k); len(got) != 0 {
			t.Errorf("table after stop: %v", got)
		}
		if _, ok := rec.Wait(time.Second, func(e event.Event) bool {
			return e.Kind == event.KindQuorum && e.Service == vs1 && !e.OK && e.Reason == event.ReasonShutdown
		}); !ok {
			t.Error("omega: no quorum down at stop")
		}
		var downs []string
		for _, e := range rec.Of(event.KindRealServer) {
			if e.Reason == event.ReasonShutdown {
				downs = append(downs, e.Target+" "+e.Name)
			}
		}
		if want := []string{ra + " TCP_CHECK", rb + " TCP_CHECK"}; !cmp.Equal(downs, want) {
			t.Errorf("omega real-server downs %v, want %v (none for the virtual server without omega)", downs, want)
		}
		if _, err := b.Counters(); !errors.Is(err, ErrNotRunning) {
			t.Errorf("Counters after stop: %v", err)
		}
		if err := b.Update(cfg); !errors.Is(err, ErrNotRunning) {
			t.Errorf("Update after stop: %v", err)
		}
	})
}

// lvs_flush empties foreign services at start; lvs_flush_on_stop empties
// everything at stop; without it only the balancer's services go.
func TestBalancerFlush(t *testing.T) {
	a := listen(t, "127.0.0.1:0")
	for _, tc := range []struct {
		global      string
		foreignLeft bool
	}{
		{"", true},
		{"lvs_flush\n", false},
		{"lvs_flush_on_stop\n", false},
	} {
		t.Run(strings.TrimSpace(tc.global), func(t *testing.T) {
			k := ipvstest.New()
			foreign := ipvs.NewReconciler(k, nil)
			if _, err := foreign.Set([]ipvs.Service{{Key: ipvs.AddrKey(mustAddr("203.0.113.1"), 443, ipvs.TCP), Scheduler: ipvs.RoundRobin}}); err != nil {
				t.Fatal(err)
			}
			text := strings.Replace(fmt.Sprintf(poolConf, a.port(), "9", "10", 1), "router_id lbtest\n", "router_id lbtest\n"+tc.global, 1)
			b := New(Options{Kernel: k})
			stop := runBalancer(t, b, loadText(t, text))
			eventually(t, 5*time.Second, "programmed", func() bool { return len(table(t, k)) >= 2 })
			_, atStart := table(t, k)["203.0.113.1:443/tcp"]
			stop()
			_, atEnd := table(t, k)["203.0.113.1:443/tcp"]
			if tc.global == "lvs_flush\n" && atStart {
				t.Error("lvs_flush left a foreign service at start")
			}
			if atEnd != tc.foreignLeft {
				t.Errorf("foreign service present after stop: %v, want %v", atEnd, tc.foreignLeft)
			}
			if n := len(table(t, k)); n > 1 || (n == 1 && !atEnd) {
				t.Errorf("balancer's services left after stop: %v", table(t, k))
			}
		})
	}
}
