package lab_test

import (
	"testing"
	"time"

	"github.com/keepwatch/keepwatch/deploy/lab"
)

// The highest priority wins the election (RFC 9568 §6.4.1); a stopped
// master resigns with priority 0 and the next one takes over within the
// skew time (§6.4.2), well under 2 s; the old master comes back and
// preempts (§6.4.2, Preempt_Mode default true).
func TestElectionResignPreempt(t *testing.T) {
	t.Parallel()
	c := newCluster(t, "elect", lab.Options{})
	w := c.Watch(10*time.Millisecond, nil)
	waitHolders(t, c, []int{1}, 10*time.Second, vip4, vip6)
	n1, n2, n3 := c.Node(1), c.Node(2), c.Node(3)
	for _, name := range []string{"VI_4", "VI_6"} {
		if s := instance(t, n1, name); s.State != "master" || s.Priority != 150 {
			t.Errorf("node 1 %s: %+v, want master at 150", name, s)
		}
		for _, n := range []*lab.Node{n2, n3} {
			waitState(t, n, name, "backup", 2*time.Second)
			s := instance(t, n, name)
			if s.MasterPriority != 150 {
				t.Errorf("node %d %s hears master %s at %d, want node 1 at 150", n.Index, name, s.Master, s.MasterPriority)
			}
			if s.Received <= 0 || s.Sent != 0 {
				t.Errorf("node %d %s: adverts sent %v received %v, want 0 sent and some received", n.Index, name, s.Sent, s.Received)
			}
		}
	}
	if s := instance(t, n2, "VI_4"); s.Master != n1.IPv4.Addr().String() {
		t.Errorf("node 2 hears master %q, want %s", s.Master, n1.IPv4.Addr())
	}
	if v := metric(t, n1, "keepwatch_vrrp_state", "vrrp_instance", "VI_4", "state", "master"); v != 1 {
		t.Errorf("node 1 keepwatch_vrrp_state{state=master} = %v, want 1", v)
	}

	// Resignation.
	w.Mark("stop 1")
	start := time.Now()
	stopped := make(chan error, 1)
	go func() { stopped <- n1.Stop() }()
	took := timeTo(t, n2, vip4, true, start, 5*time.Second)
	if err := <-stopped; err != nil {
		t.Fatal(err)
	}
	t.Logf("stopped master handed over in %s", took.Round(time.Millisecond))
	if took >= 2*time.Second {
		t.Errorf("hand-over after SIGTERM took %s, want < 2s", took)
	}
	waitHolders(t, c, []int{2}, 5*time.Second, vip4, vip6)
	if v := metric(t, n2, "keepwatch_vrrp_priority_zero_received_total", "vrrp_instance", "VI_4"); v < 1 {
		t.Errorf("node 2 priority_zero_received_total = %v, want >= 1", v)
	}
	if v := metric(t, n2, "keepwatch_vrrp_transitions_total", "vrrp_instance", "VI_4", "to", "master", "reason", "priority_zero"); v != 1 {
		t.Errorf("node 2 transitions to master by priority_zero = %v, want 1", v)
	}

	// Preemption: node 1 returns and takes the VIPs back.
	w.Mark("start 1")
	if err := n1.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	waitHolders(t, c, []int{1}, 10*time.Second, vip4, vip6)
	waitState(t, n2, "VI_4", "backup", 2*time.Second)
	if v := metric(t, n1, "keepwatch_vrrp_transitions_total", "vrrp_instance", "VI_4", "to", "master", "reason", "preempted"); v != 1 {
		t.Errorf("node 1 transitions to master by preemption = %v, want 1", v)
	}
	tl := w.Stop()
	t.Logf("timeline:\n%s", tl.Format())
	checkOverlaps(t, tl, 300*time.Millisecond)
}
