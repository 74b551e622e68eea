package lab_test

import (
	"testing"
	"time"

	"github.com/keepwatch/keepwatch/deploy/lab"
)

// Interop with the Debian keepalived 2.2.7, in both roles: the right node
// becomes master, the backup takes over when the master's link is cut, the
// master takes back when it returns, a stopped master hands over in under
// 2 s, and never are there two VIP holders after convergence (beyond the
// instant of a preemption, or the kernel's neighbour queue in unicast).
func TestInteropKeepalived(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name string
		p    lab.Params
	}{
		{"v2pass4", lab.Params{Version: 2, Interval: time.Second, Pass: "secret12", Family: 4}},
		{"v2pass4u", lab.Params{Version: 2, Interval: time.Second, Pass: "secret12", Family: 4, Unicast: true}},
		{"v3ipv6", lab.Params{Family: 6}},
		{"v3ipv6u", lab.Params{Family: 6, Unicast: true}},
	}
	for _, tc := range cases {
		for _, kaMaster := range []bool{true, false} {
			role := "kwmaster"
			ka := 2
			if kaMaster {
				role, ka = "kamaster", 1
			}
			t.Run(tc.name+"/"+role, func(t *testing.T) {
				t.Parallel()
				interop(t, tc.name, tc.p, ka)
			})
		}
	}
}

func interop(t *testing.T, name string, p lab.Params, ka int) {
	c := newCluster(t, "io"+name, lab.Options{Nodes: 2, Params: p, Keepalived: []int{ka}})
	n1, n2 := c.Node(1), c.Node(2)
	vip := vip4
	inst := "VI_4"
	if p.Family == 6 {
		vip, inst = vip6, "VI_6"
	}
	interval := p.Interval
	if interval == 0 {
		interval = 100 * time.Millisecond
	}
	// Master_Down_Interval of the backup (priority 100), plus slack for
	// the start and a loaded machine.
	down := 3*interval + interval*156/256
	wait := down + 3*time.Second

	waitHolders(t, c, []int{1}, wait+2*time.Second, vip)
	kw := c.Node(3 - ka)
	if kw.Index == 2 {
		// keepwatch as backup follows keepalived's adverts.
		waitState(t, kw, inst, "backup", wait)
		s := instance(t, kw, inst)
		if s.MasterPriority != 150 || s.Received < 1 || s.Dropped != 0 {
			t.Errorf("keepwatch backup: %+v, want hearing 150 with adverts received and none dropped", s)
		}
	} else {
		// keepalived as backup: it logged BACKUP and not MASTER since.
		if st := n2.State(t.Context(), inst); st != "backup" {
			t.Errorf("keepalived backup state %q, want backup", st)
		}
		if v := metric(t, kw, "keepwatch_vrrp_adverts_dropped_total", "vrrp_instance", inst); v != 0 {
			t.Errorf("keepwatch master dropped %v adverts from keepalived", v)
		}
	}
	w := c.Watch(10*time.Millisecond, nil)
	w.Mark("cut 1")
	start := time.Now()
	if err := n1.Cut(); err != nil {
		t.Fatal(err)
	}
	took := timeTo(t, n2, vip, true, start, wait)
	t.Logf("%s: takeover after the cut %s (Master_Down_Interval %s)", name, took.Round(time.Millisecond), down)
	w.Mark("restore 1")
	if err := n1.Restore(); err != nil {
		t.Fatal(err)
	}
	waitHolders(t, c, []int{1}, wait, vip)
	w.Mark("stop 1")
	start = time.Now()
	stopped := make(chan error, 1)
	go func() { stopped <- n1.Stop() }()
	took = timeTo(t, n2, vip, true, start, wait)
	if err := <-stopped; err != nil {
		t.Fatal(err)
	}
	t.Logf("%s: stopped master handed over in %s", name, took.Round(time.Millisecond))
	if took >= 2*time.Second {
		t.Errorf("hand-over after SIGTERM took %s, want < 2s", took)
	}
	waitHolders(t, c, []int{2}, time.Second, vip)
	tl := w.Stop()
	t.Logf("timeline:\n%s", tl.Format())
	limit := max(300*time.Millisecond, interval+100*time.Millisecond)
	if p.Unicast {
		limit += 1500 * time.Millisecond // see TestUnicast: the neighbour queue after a link restore
	}
	checkOverlaps(t, tl, limit)
	if ka == 1 {
		if v := metric(t, n2, "keepwatch_vrrp_priority_zero_received_total", "vrrp_instance", inst); v < 1 {
			t.Errorf("keepwatch heard %v priority-0 adverts from the stopping keepalived, want >= 1", v)
		}
	}
}
