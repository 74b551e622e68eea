package agent_test

import (
	"context"
	"net/netip"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keepwatch/keepwatch/engine/agent"
	"github.com/keepwatch/keepwatch/engine/agent/agenttest"
	"github.com/keepwatch/keepwatch/engine/event"
	"github.com/keepwatch/keepwatch/engine/event/eventtest"
	"github.com/keepwatch/keepwatch/engine/vrrp"
)

// TestStartupDelay: global_defs vrrp_startup_delay holds the first
// takeover back by the delay (keepalived 2.2.7, tried: delay 3 s, priority
// 100 v2, MASTER 6.6 s after BACKUP), but an instance a reload adds starts
// at once (keepalived delays only its first start).
func TestStartupDelay(t *testing.T) {
	const delay = 1500 * time.Millisecond
	cfg := func(more ...inst) string {
		s := strings.Replace(conf(), "router_id test\n", "router_id test\n  vrrp_startup_delay 1.5\n", 1)
		for _, in := range more {
			s += in.String()
		}
		return s
	}
	vi1 := inst{name: "VI_1", vrid: 1, prio: 150, vips: []string{"192.0.2.100/24"}}
	began := time.Now()
	n := start(t, cfg(vi1))
	n.waitState("VI_1", vrrp.StateBackup)
	n.waitFor(5*time.Second, "VI_1 MASTER", func() bool { return n.status("VI_1").State == vrrp.StateMaster })
	var at time.Time
	for _, e := range n.rec.Of(event.KindTransition) {
		if e.Instance == "VI_1" && e.To == vrrp.StateMaster {
			at = e.Time
		}
	}
	// Master_Down_Interval at 0.02 s is about 0.07 s: without the delay the
	// takeover would come long before 1.5 s.
	if took := at.Sub(began); took < delay {
		t.Fatalf("MASTER %v after start, before vrrp_startup_delay %v", took, delay)
	}
	reloaded := time.Now()
	if err := n.reload(cfg(vi1, inst{name: "VI_2", vrid: 2, prio: 150, vips: []string{"192.0.2.101/24"}})); err != nil {
		t.Fatal(err)
	}
	n.waitFor(5*time.Second, "VI_2 MASTER", func() bool { return n.status("VI_2").State == vrrp.StateMaster })
	if took := time.Since(reloaded); took >= delay {
		t.Errorf("an instance added by a reload took %v to become MASTER: the startup delay applies to the first start only", took)
	}
}

// promoPlat is the fake platform with promote_secondaries, recording calls.
type promoPlat struct {
	*agenttest.Platform
	mu    sync.Mutex
	calls []string
}

func (p *promoPlat) PromoteSecondaries(ifname string) (bool, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.calls = append(p.calls, "set "+ifname)
	return true, nil
}

func (p *promoPlat) ResetPromoteSecondaries(ifname string) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.calls = append(p.calls, "reset "+ifname)
	return nil
}

func (p *promoPlat) log() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.calls)
}

// TestPromoteSecondaries: the interface of an instance with
// promote_secondaries gets the sysctl once however many instances ask for
// it, and it is reset when the last of them stops (keepalived counts per
// interface, vrrp_if_config.c); an instance without the keyword does not
// touch it.
func TestPromoteSecondaries(t *testing.T) {
	plat := &promoPlat{Platform: agenttest.New()}
	plat.AddLink("eth0", self4, ll6)
	plat.AddLink("eth1", netip.MustParseAddr("198.51.100.2"), netip.MustParseAddr("fe80::1:2"))
	path := filepath.Join(t.TempDir(), "keepalived.conf")
	n := &node{t: t, path: path, plat: plat.Platform, rec: &eventtest.Recorder{}, done: make(chan error, 1)}
	ps := "  promote_secondaries\n"
	n.write(conf(
		inst{name: "VI_1", vrid: 1, prio: 100, vips: []string{"192.0.2.100/24"}, extra: ps},
		inst{name: "VI_2", vrid: 2, prio: 100, vips: []string{"192.0.2.101/24"}, extra: ps},
		inst{name: "VI_3", ifname: "eth1", vrid: 3, prio: 100, vips: []string{"198.51.100.100/24"}}))
	n.a = agent.New(agent.Options{Path: path, Sink: n.rec, Platform: plat, RetryInterval: time.Hour})
	ctx, cancel := context.WithCancel(context.Background())
	n.stop = cancel
	go func() { n.done <- n.a.Run(ctx) }()
	t.Cleanup(n.shutdown)
	n.waitFor(2*time.Second, "agent ready", n.a.Ready)
	if got := plat.log(); !slices.Equal(got, []string{"set eth0"}) {
		t.Fatalf("after start: %q, want one set on eth0", got)
	}
	// A reload that removes one of the two keeps it set.
	if err := n.reload(conf(inst{name: "VI_1", vrid: 1, prio: 100, vips: []string{"192.0.2.100/24"}, extra: ps})); err != nil {
		t.Fatal(err)
	}
	if got := plat.log(); !slices.Equal(got, []string{"set eth0"}) {
		t.Fatalf("after removing VI_2: %q, want no reset while VI_1 runs", got)
	}
	n.shutdown()
	if got := plat.log(); !slices.Equal(got, []string{"set eth0", "reset eth0"}) {
		t.Fatalf("after shutdown: %q, want the reset", got)
	}
}

// TestUnicastFaultNoPeer: an instance with unicast_fault_no_peer and no
// unicast_peer is in FAULT from the start (notify_fault runs, as keepalived
// 2.2.7 does: "Cannot use unicast without any peers - going to fault
// state"), instead of advertising by multicast; a reload that gives it a
// peer starts it. Without the keyword it runs by multicast.
func TestUnicastFaultNoPeer(t *testing.T) {
	vi1 := inst{name: "VI_1", vrid: 1, prio: 150, vips: []string{"192.0.2.100/24"}, extra: "  unicast_fault_no_peer\n"}
	vi2 := inst{name: "VI_2", vrid: 2, prio: 150, vips: []string{"192.0.2.101/24"}}
	n := start(t, conf(vi1, vi2))
	n.waitState("VI_2", vrrp.StateMaster)
	if s := n.status("VI_1"); s.State != vrrp.StateFault {
		t.Fatalf("VI_1 %v, want FAULT", s.State)
	}
	if got := n.transitions("VI_1"); !slices.Equal(got, []string{"init->fault fault"}) {
		t.Errorf("VI_1 transitions %q, want INIT->FAULT", got)
	}
	vi1.extra += "  unicast_peer {\n    192.0.2.1\n  }\n"
	_ = n.reload(conf(vi1, vi2))
	n.waitState("VI_1", vrrp.StateMaster)
}
