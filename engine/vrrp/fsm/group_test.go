package fsm

import (
	"testing"
	"time"

	"github.com/keepwatch/keepwatch/engine/vrrp"
)

// pair is a sync group of two instances (VRID 51 and 52) from 192.0.2.n.
func pair(n byte, prio int) []Config {
	c1, c2 := conf(n, prio, 2, time.Second), conf(n, prio, 2, time.Second)
	c2.Name, c2.VRID = "VI_2", 52
	return []Config{c1, c2}
}

func TestSyncGroupFaultTakesAllAndRecovers(t *testing.T) {
	s := newSim(t, "transition resign")
	r1 := s.add("R1", pair(1, 150)...)
	r2 := s.add("R2", pair(2, 100)...)
	s.start(r1, r2)
	s.run(5 * time.Second)
	s.expect(
		"0s R1/0: init -> backup (startup)",
		"0s R1/1: init -> backup (startup)",
		"0s R2/0: init -> backup (startup)",
		"0s R2/1: init -> backup (startup)",
		// Both members want MASTER at once, so the group goes together.
		"3.4140625s R1/0: backup -> master (master_down)",
		"3.4140625s R1/1: backup -> master (master_down)",
	)
	// One member's interface fails: the whole group resigns.
	s.step(r1, 1, Input{Kind: InputFault})
	s.run(15 * time.Second)
	s.expect(
		"5s R1/1: advert 0",
		"5s R1/1: master -> fault (fault)",
		"5s R1/0: advert 0",
		"5s R1/0: master -> fault (sync_group)",
		"5.610375s R2/0: backup -> master (priority_zero)",
		"5.610375s R2/1: backup -> master (priority_zero)",
	)
	if !r1.ms[0].groupFault || r1.ms[0].ownFault {
		t.Error("R1/0 should be in FAULT for the group, not for itself")
	}
	// It recovers: both members back to BACKUP, then they preempt together.
	s.step(r1, 1, Input{Kind: InputFaultCleared})
	s.run(20 * time.Second)
	s.expect(
		"15s R1/1: fault -> backup (fault_cleared)",
		"15s R1/0: fault -> backup (sync_group)",
		"18.4140625s R1/0: backup -> master (preempted)",
		"18.4140625s R1/1: backup -> master (preempted)",
		"18.4150625s R2/0: master -> backup (priority)",
		"18.4150625s R2/1: master -> backup (sync_group)",
	)
	for _, r := range []*router{r1, r2} {
		for i, m := range r.ms {
			want := map[*router]vrrp.State{r1: vrrp.StateMaster, r2: vrrp.StateBackup}[r]
			if m.State() != want {
				t.Errorf("%s: %v, want %v", r.label(i), m.State(), want)
			}
			if r.vips[i] != (want == vrrp.StateMaster) {
				t.Errorf("%s holds VIPs: %v", r.label(i), r.vips[i])
			}
		}
	}
}

func TestSyncGroupPrefersBackup(t *testing.T) {
	s := newSim(t, "transition")
	r1 := s.add("R1", pair(1, 150)...)
	// R2 runs only VRID 51, at a higher priority.
	r2 := s.add("R2", conf(2, 200, 2, time.Second))
	s.start(r1)
	s.run(10 * time.Second)
	s.log = nil
	s.start(r2)
	s.run(50 * time.Second)
	s.expect(
		"10s R2: init -> backup (startup)",
		// 3 s + (256-200)/256 s after starting, discarding R1's 150.
		"13.21875s R2: backup -> master (preempted)",
		"13.21975s R1/0: master -> backup (priority)",
		// The other member follows, although nobody else runs VRID 52.
		"13.21975s R1/1: master -> backup (sync_group)",
	)
	// VRID 52 hears nothing and wants MASTER, but VRID 51 does not: the
	// group stays BACKUP (keepalived prefers backup to thrashing).
	if !r1.ms[1].WantMaster() || r1.ms[0].WantMaster() {
		t.Errorf("WantMaster: R1/0 %v, R1/1 %v; want false, true", r1.ms[0].WantMaster(), r1.ms[1].WantMaster())
	}
	if r1.ms[1].State() != vrrp.StateBackup {
		t.Errorf("R1/1 %v, want backup", r1.ms[1].State())
	}
	// R2 leaves: now both want it, and the group takes over together.
	s.shutdown(r2)
	s.run(59 * time.Second)
	s.expect(
		"50s R2: master -> stop (shutdown)",
		"50.4150625s R1/0: backup -> master (priority_zero)",
		"50.4150625s R1/1: backup -> master (sync_group)",
	)
}

func TestGroupStepOutOfRangeMember(t *testing.T) {
	ms := make([]*Machine, 2)
	for i, c := range pair(1, 100) {
		ms[i] = newMachine(t, c)
	}
	g := NewGroup(ms...)
	if len(g.Members()) != 2 {
		t.Fatal("Members")
	}
	for i := range ms {
		g.Step(0, i, Input{Kind: InputStart})
	}
	// A tick for nobody in particular, and a bogus index, just fire timers.
	at, _ := g.NextDeadline()
	got := g.Step(at, 7, Input{Kind: InputShutdown})
	n := 0
	for _, a := range got {
		if a.Kind == ActionAddVIPs {
			n++
		}
	}
	if n != 2 {
		t.Errorf("%d members added VIPs, want 2", n)
	}
}

func TestSyncGroupLowerPriorityReannouncesAll(t *testing.T) {
	ms := make([]*Machine, 2)
	for i, c := range pair(1, 150) {
		ms[i] = newMachine(t, c)
	}
	g := NewGroup(ms...)
	g.Step(0, 0, Input{Kind: InputStart})
	g.Step(0, 1, Input{Kind: InputStart})
	at, _ := g.NextDeadline()
	g.Step(at, -1, Input{})
	if ms[0].State() != vrrp.StateMaster || ms[1].State() != vrrp.StateMaster {
		t.Fatalf("states %v %v, want master", ms[0].State(), ms[1].State())
	}
	var got []string
	for _, a := range g.Step(at+time.Second/2, 0, advert(addr(2), 100, time.Second)) {
		if a.Kind == ActionSendGratuitous || a.Kind == ActionSendAdvert {
			got = append(got, a.Kind.String()+"/"+string(rune('0'+a.Member)))
		}
	}
	want := []string{"send_advert/0", "send_gratuitous/0", "send_gratuitous/1"}
	if len(got) != len(want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("got %v, want %v", got, want)
		}
	}
}
