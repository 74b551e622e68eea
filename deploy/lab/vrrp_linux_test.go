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
			if s.Received <= 0 {
				t.Errorf("node %d %s: %v adverts received, want some", n.Index, name, s.Received)
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
	// A restarted agent's counters start from zero (startup may add an
	// election of its own, so at least one).
	if v := metric(t, n1, "keepwatch_vrrp_transitions_total", "vrrp_instance", "VI_4", "to", "master", "reason", "preempted"); v < 1 {
		t.Errorf("node 1 transitions to master by preemption = %v, want >= 1", v)
	}
	tl := w.Stop()
	t.Logf("timeline:\n%s", tl.Format())
	checkOverlaps(t, tl, 300*time.Millisecond)
}

// nopreempt: a returning higher-priority node does not take over from a
// live lower-priority master (RFC 9568 §6.4.2 Preempt_Mode false); it
// still takes over when that master goes away.
func TestNoPreempt(t *testing.T) {
	t.Parallel()
	c := newCluster(t, "nopre", lab.Options{Nodes: 2, Params: lab.Params{Family: 4, NoPreempt: true}, Stopped: []int{1}})
	n1, n2 := c.Node(1), c.Node(2)
	waitHolders(t, c, []int{2}, 5*time.Second, vip4)
	w := c.Watch(10*time.Millisecond, nil)
	w.Mark("start 1")
	if err := n1.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	waitState(t, n1, "VI_4", "backup", 2*time.Second)
	// Far longer than Master_Down_Interval (0.3 s + skew): preemption
	// would have happened by now.
	time.Sleep(1200 * time.Millisecond)
	if v := metric(t, n1, "keepwatch_vrrp_transitions_total", "vrrp_instance", "VI_4", "to", "master", "reason", "preempted"); v != 0 {
		t.Errorf("node 1 (nopreempt) preempted %v times, want 0", v)
	}
	// A machine loaded enough to delay adverts past the down interval
	// makes node 1 take over for master_down: that is VRRP, not preemption.
	if v := metric(t, n1, "keepwatch_vrrp_transitions_total", "vrrp_instance", "VI_4", "to", "master"); v == 0 {
		if s := instance(t, n1, "VI_4"); s.State != "backup" || s.MasterPriority != 100 || s.VIPHeld {
			t.Errorf("node 1 (150, nopreempt) next to a live master at 100: %+v, want backup hearing 100", s)
		}
		if s := instance(t, n2, "VI_4"); s.State != "master" || !s.VIPHeld {
			t.Errorf("node 2: %+v, want master holding the VIP", s)
		}
	} else {
		t.Logf("node 1 took over for master_down (adverts late on a loaded machine); skipping the hand-over check")
		return
	}
	w.Mark("stop 2")
	if err := n2.Stop(); err != nil {
		t.Fatal(err)
	}
	waitHolders(t, c, []int{1}, 2*time.Second, vip4)
	tl := w.Stop()
	if moves := tl.Moves(0); moves > 2 {
		t.Errorf("VIP moved %d times, want node 2 → (none →) node 1:\n%s", moves, tl.Format())
	}
	checkOverlaps(t, tl, 300*time.Millisecond)
}

// preempt_delay: a higher-priority node that hears a lower master waits
// the delay before preempting (reference §2.5).
func TestPreemptDelay(t *testing.T) {
	t.Parallel()
	const delay = time.Second
	c := newCluster(t, "pdelay", lab.Options{Nodes: 2, Params: lab.Params{Family: 4, PreemptDelay: delay}, Stopped: []int{1}})
	n1 := c.Node(1)
	waitHolders(t, c, []int{2}, 5*time.Second, vip4)
	if err := n1.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	took := timeTo(t, n1, vip4, true, start, 5*time.Second)
	t.Logf("node 1 preempted %s after it started (preempt_delay %s)", took.Round(time.Millisecond), delay)
	// The delay starts at the first advert heard (≤ one interval after
	// start); then the down timer runs (3 × 0.1 s + skew).
	if took < delay || took > delay+1500*time.Millisecond {
		t.Errorf("preempted after %s, want between %s and %s", took, delay, delay+1500*time.Millisecond)
	}
	waitHolders(t, c, []int{1}, 2*time.Second, vip4)
}

// A master whose link goes down enters FAULT and drops its VIPs; the next
// priority takes over after Master_Down_Interval; when the link returns
// the master takes the VIPs back.
func TestLinkCutRestore(t *testing.T) {
	t.Parallel()
	c := newCluster(t, "cut", lab.Options{})
	n1, n2 := c.Node(1), c.Node(2)
	waitHolders(t, c, []int{1}, 10*time.Second, vip4, vip6)
	w := c.Watch(10*time.Millisecond, nil)
	masterDown := metric(t, n2, "keepwatch_vrrp_transitions_total", "vrrp_instance", "VI_4", "to", "master", "reason", "master_down")
	w.Mark("cut 1")
	start := time.Now()
	if err := n1.Cut(); err != nil {
		t.Fatal(err)
	}
	took := timeTo(t, n2, vip4, true, start, 5*time.Second)
	t.Logf("node 2 took over %s after the cut", took.Round(time.Millisecond))
	// Master_Down_Interval of node 2: 3 × 0.1 s + (256-100)/256 × 0.1 s.
	if took > 1500*time.Millisecond {
		t.Errorf("takeover after the cut took %s, want about 0.36 s", took)
	}
	waitHolders(t, c, []int{2}, 5*time.Second, vip4, vip6)
	waitState(t, n1, "VI_4", "fault", 2*time.Second)
	if v := metric(t, n1, "keepwatch_vrrp_transitions_total", "vrrp_instance", "VI_4", "from", "master", "to", "fault"); v != 1 {
		t.Errorf("node 1 master→fault transitions = %v, want 1", v)
	}
	if v := metric(t, n2, "keepwatch_vrrp_transitions_total", "vrrp_instance", "VI_4", "to", "master", "reason", "master_down"); v != masterDown+1 {
		t.Errorf("node 2 transitions to master by master_down = %v, want %v", v, masterDown+1)
	}
	w.Mark("restore 1")
	if err := n1.Restore(); err != nil {
		t.Fatal(err)
	}
	waitHolders(t, c, []int{1}, 5*time.Second, vip4, vip6)
	waitState(t, n2, "VI_4", "backup", 2*time.Second)
	tl := w.Stop()
	t.Logf("timeline:\n%s", tl.Format())
	checkOverlaps(t, tl, 300*time.Millisecond)
}

// 30% random loss on the master's packets: the backup takes over only when
// three adverts in a row are lost (about 0.3³ per advert), the master wins
// back at once, and two holders never last longer than a few intervals.
func TestPacketLoss(t *testing.T) {
	t.Parallel()
	c := newCluster(t, "loss", lab.Options{Nodes: 2, Params: lab.Params{Family: 4}})
	n1 := c.Node(1)
	waitHolders(t, c, []int{1}, 10*time.Second, vip4)
	w := c.Watch(5*time.Millisecond, nil)
	const period = 8 * time.Second
	w.Mark("loss 1 30%")
	if err := n1.Loss(30); err != nil {
		t.Fatal(err)
	}
	time.Sleep(period)
	if err := n1.Loss(0); err != nil {
		t.Fatal(err)
	}
	w.Mark("loss 1 0%")
	waitHolders(t, c, []int{1}, 3*time.Second, vip4)
	tl := w.Stop()
	// Expected takeovers: 10 adverts/s × 0.7 × 0.3³ ≈ 0.19/s, about 1.5
	// in 8 s; each makes two moves (node 2 joins, then leaves). Allow
	// for a loaded machine, but not for flapping.
	moves := tl.Moves(0)
	t.Logf("%d VIP moves under 30%% loss for %s; longest overlap %s", moves, period, tl.Longest().Duration().Round(time.Millisecond))
	if moves > 16 {
		t.Errorf("VIP moved %d times in %s under 30%% loss, want ≤ 16:\n%s", moves, period, tl.Format())
	}
	checkOverlaps(t, tl, time.Second)
	// Whatever happened, node 1 is master again and node 2 backs off.
	waitState(t, c.Node(2), "VI_4", "backup", 2*time.Second)
}
