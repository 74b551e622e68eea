package fsm

import (
	"testing"
	"time"

	"github.com/keepwatch/keepwatch/engine/vrrp"
)

// Scenario tests: routers on an in-memory network (1 ms delivery unless set
// otherwise) on a virtual clock. Times are exact: they follow from
// Master_Down_Interval = 3 × Master_Adver_Interval + Skew_Time.

const ms = time.Millisecond

func TestElectionHigherPriorityWins(t *testing.T) {
	s := newSim(t, "transition advert vips garp peer")
	a := s.add("A", conf(1, 150, 2, time.Second))
	b := s.add("B", conf(2, 100, 2, time.Second))
	s.start(a, b)
	s.run(3414 * ms)
	s.expect(
		"0s A: init -> backup (startup)",
		"0s B: init -> backup (startup)",
	)
	// A's down timer: 3 s + (256-150)/256 s = 3.4140625 s, before B's 3.609375 s.
	// Takeover order: advert, VIPs, gratuitous ARPs (reference §2.6).
	s.run(4 * time.Second)
	s.expect(
		"3.4140625s A: advert 150",
		"3.4140625s A: add vips",
		"3.4140625s A: garp 5",
		"3.4140625s A: backup -> master (master_down)",
		"3.4150625s B: master 192.0.2.1 priority 150",
	)
	s.show = map[string]bool{"transition": true, "garp": true}
	s.run(60 * time.Second)
	// garp_master_delay 5 s: one more burst, then silence; B never takes over.
	s.expect("8.4140625s A: garp 5")
	s.state(vrrp.StateMaster, vrrp.StateBackup)
}

func TestPreemption(t *testing.T) {
	s := newSim(t, "transition vips")
	a := s.add("A", conf(1, 150, 2, time.Second))
	b := s.add("B", conf(2, 100, 2, time.Second))
	s.start(b)
	s.run(10 * time.Second)
	s.expect(
		"0s B: init -> backup (startup)",
		"3.609375s B: add vips",
		"3.609375s B: backup -> master (master_down)",
	)
	// A discards B's lower-priority adverts without resetting its down
	// timer, so it preempts one Master_Down_Interval after starting.
	s.start(a)
	s.run(20 * time.Second)
	s.expect(
		"10s A: init -> backup (startup)",
		"13.4140625s A: add vips",
		"13.4140625s A: backup -> master (preempted)",
		"13.4150625s B: remove vips",
		"13.4150625s B: master -> backup (priority)",
	)
	s.state(vrrp.StateMaster, vrrp.StateBackup)
}

func TestNopreemptThenResignation(t *testing.T) {
	s := newSim(t, "transition resign vips")
	ca := conf(1, 150, 2, time.Second)
	ca.NoPreempt = true
	a := s.add("A", ca)
	b := s.add("B", conf(2, 100, 2, time.Second))
	s.start(b)
	s.run(10 * time.Second)
	s.start(a)
	s.run(20 * time.Second)
	s.expect(
		"0s B: init -> backup (startup)",
		"3.609375s B: add vips",
		"3.609375s B: backup -> master (master_down)",
		"10s A: init -> backup (startup)",
	)
	// B stops: priority 0, then the VIPs go; A takes over after its skew
	// alone, (256-150)/256 s = 0.4140625 s after hearing it.
	s.shutdown(b)
	s.run(30 * time.Second)
	s.expect(
		"20s B: advert 0",
		"20s B: remove vips",
		"20s B: master -> stop (shutdown)",
		"20.4150625s A: add vips",
		"20.4150625s A: backup -> master (priority_zero)",
	)
}

func TestPreemptDelay(t *testing.T) {
	s := newSim(t, "transition")
	ca := conf(1, 150, 2, time.Second)
	ca.PreemptDelay = 5 * time.Second
	a := s.add("A", ca)
	b := s.add("B", conf(2, 100, 2, time.Second))
	s.start(b)
	s.run(10 * time.Second)
	s.start(a)
	// B's adverts reach A at 10.610375 s (starting the delay, until
	// 15.610375 s), 11.610375 s, ... The last accepted one is at 14.610375 s;
	// from 15.610375 s they are discarded and A's down timer runs out at
	// 14.610375 + 3.4140625 s.
	s.run(30 * time.Second)
	s.expect(
		"0s B: init -> backup (startup)",
		"3.609375s B: backup -> master (master_down)",
		"10s A: init -> backup (startup)",
		"18.0244375s A: backup -> master (preempted)",
		"18.0254375s B: master -> backup (priority)",
	)
}

func TestPriorityZeroTakeoverAfterSkew(t *testing.T) {
	// keepalived 2.2.7 verified: B (priority 100, v2) became master about
	// 0.61 s after A's priority-0 advert; (256-100)/256 s = 0.609375 s.
	s := newSim(t, "transition resign peer")
	a := s.add("A", conf(1, 150, 2, time.Second))
	b := s.add("B", conf(2, 100, 2, time.Second))
	s.start(a, b)
	s.run(10 * time.Second)
	s.log = nil
	s.shutdown(a)
	s.run(20 * time.Second)
	s.expect(
		"10s A: advert 0",
		"10s A: master -> stop (shutdown)",
		"10.610375s B: backup -> master (priority_zero)",
	)
	if _, ok := a.ms[0].NextDeadline(); ok {
		t.Error("a stopped machine still has a deadline")
	}
}

func TestEqualPriorityHigherAddressWins(t *testing.T) {
	s := newSim(t, "transition vips lower")
	a := s.add("A", conf(1, 100, 3, time.Second))
	b := s.add("B", conf(2, 100, 3, time.Second))
	s.start(a, b)
	// Both time out together; as masters they hear each other: A yields to
	// the higher address (RFC 9568 §6.4.3), B answers the "lower" one.
	s.run(10 * time.Second)
	s.expect(
		"0s A: init -> backup (startup)",
		"0s B: init -> backup (startup)",
		"3.609375s A: add vips",
		"3.609375s A: backup -> master (master_down)",
		"3.609375s B: add vips",
		"3.609375s B: backup -> master (master_down)",
		"3.610375s B: heard lower priority 100",
		"3.610375s A: remove vips",
		"3.610375s A: master -> backup (priority)",
	)
	// Equal priority on a backup is accepted: A stays put (reference §2.4).
	s.state(vrrp.StateBackup, vrrp.StateMaster)
}

func TestFlappingPriority(t *testing.T) {
	s := newSim(t, "transition")
	a := s.add("A", conf(1, 150, 3, time.Second))
	b := s.add("B", conf(2, 100, 3, time.Second))
	s.start(a, b)
	s.run(10 * time.Second)
	s.log = nil
	// A tracker drops A to 90. Its advert at 10.4140625 s carries 90; B
	// discards it and preempts when its timer (last reset at 9.4150625 s)
	// expires: + 3 s + (256-100)/256 s.
	s.priority(a, 90)
	s.run(20 * time.Second)
	s.expect(
		"13.0244375s B: backup -> master (preempted)",
		"13.0254375s A: master -> backup (priority)",
	)
	// Back to 150: A's timer was last reset by B's advert at 19.0254375 s
	// (Master_Down_Interval at priority 90: 3.6484375 s); the next ones are
	// discarded, so A preempts at 22.673875 s.
	s.priority(a, 150)
	s.run(30 * time.Second)
	s.expect(
		"22.673875s A: backup -> master (preempted)",
		"22.674875s B: master -> backup (priority)",
	)
	if got := a.ms[0].Priority(); got != 150 {
		t.Errorf("A priority %d, want 150", got)
	}
}

func TestOwnerStartsMaster(t *testing.T) {
	s := newSim(t, "transition advert peer")
	ca := conf(1, 255, 2, time.Second)
	ca.InitialState = vrrp.StateMaster
	a := s.add("A", ca)
	cb := conf(2, 100, 2, time.Second)
	cb.InitialState = vrrp.StateMaster // below 255 this still waits
	b := s.add("B", cb)
	s.start(a, b)
	s.run(1500 * ms)
	s.expect(
		"0s A: init -> backup (startup)",
		"0s A: advert 255",
		"0s A: backup -> master (owner)",
		"0s B: init -> backup (startup)",
		"1ms B: master 192.0.2.1 priority 255",
		"1s A: advert 255",
	)
	// Trackers never move a base of 255.
	s.priority(a, 10)
	if got := a.ms[0].Priority(); got != 255 {
		t.Errorf("owner priority %d after tracker change, want 255", got)
	}
}

func TestTwoOwnersLowerTo254(t *testing.T) {
	// keepalived 2.2.7: a master at 255 hearing another 255 lowers itself to
	// 254. Both do, both yield, and the address tie-break settles it.
	s := newSim(t, "transition")
	ca, cb := conf(1, 255, 2, time.Second), conf(2, 255, 2, time.Second)
	ca.InitialState, cb.InitialState = vrrp.StateMaster, vrrp.StateMaster
	a, b := s.add("A", ca), s.add("B", cb)
	s.start(a, b)
	s.run(10 * time.Second)
	s.expect(
		"0s A: init -> backup (startup)",
		"0s A: backup -> master (owner)",
		"0s B: init -> backup (startup)",
		"0s B: backup -> master (owner)",
		"1ms B: master -> backup (priority)",
		"1ms A: master -> backup (priority)",
		// 1 ms + 3 s + (256-254)/256 s.
		"3.0088125s A: backup -> master (master_down)",
		"3.0088125s B: backup -> master (master_down)",
		"3.0098125s A: master -> backup (priority)",
	)
	if a.ms[0].BasePriority() != 254 || b.ms[0].BasePriority() != 254 {
		t.Errorf("base priorities %d, %d; want 254, 254", a.ms[0].BasePriority(), b.ms[0].BasePriority())
	}
}

func TestOwnerIgnoreAdverts(t *testing.T) {
	s := newSim(t, "transition")
	ca, cb := conf(1, 255, 3, time.Second), conf(2, 255, 3, time.Second)
	ca.InitialState, cb.InitialState = vrrp.StateMaster, vrrp.StateMaster
	ca.OwnerIgnoreAdverts, cb.OwnerIgnoreAdverts = true, true
	a, b := s.add("A", ca), s.add("B", cb)
	s.start(a, b)
	s.run(10 * time.Second)
	s.state(vrrp.StateMaster, vrrp.StateMaster)
}

func TestFaultAndRecovery(t *testing.T) {
	s := newSim(t, "transition resign vips")
	a := s.add("A", conf(1, 150, 2, time.Second))
	b := s.add("B", conf(2, 100, 2, time.Second))
	s.start(a, b)
	s.run(10 * time.Second)
	s.log = nil
	s.input(a, Input{Kind: InputFault})
	a.actions = a.actions[:0]
	s.run(20 * time.Second)
	s.expect(
		"10s A: advert 0",
		"10s A: remove vips",
		"10s A: master -> fault (fault)",
		"10.610375s B: add vips",
		"10.610375s B: backup -> master (priority_zero)",
	)
	// In FAULT, adverts are ignored and nothing is sent.
	if n := countAdverts(a, 0); n != 0 {
		t.Errorf("A sent %d adverts in FAULT", n)
	}
	s.input(a, Input{Kind: InputFaultCleared})
	s.run(30 * time.Second)
	s.expect(
		"20s A: fault -> backup (fault_cleared)",
		"23.4140625s A: add vips",
		"23.4140625s A: backup -> master (preempted)",
		"23.4150625s B: remove vips",
		"23.4150625s B: master -> backup (priority)",
	)
}

// countAdverts counts r's adverts since index from of its actions.
func countAdverts(r *router, from int) int {
	n := 0
	for _, a := range r.actions[from:] {
		if a.Kind == ActionSendAdvert {
			n++
		}
	}
	return n
}

func TestFaultBeforeStart(t *testing.T) {
	s := newSim(t, "transition")
	a := s.add("A", conf(1, 150, 2, time.Second))
	s.input(a, Input{Kind: InputFault})
	s.start(a)
	s.run(10 * time.Second)
	s.input(a, Input{Kind: InputFaultCleared})
	s.run(20 * time.Second)
	s.expect(
		"0s A: init -> fault (fault)",
		"10s A: fault -> backup (fault_cleared)",
		"13.4140625s A: backup -> master (master_down)",
	)
}

func TestV3AdoptsMasterInterval(t *testing.T) {
	s := newSim(t, "transition")
	a := s.add("A", conf(1, 150, 3, 100*ms))
	b := s.add("B", conf(2, 100, 3, time.Second))
	s.start(a, b)
	// A: 0.3 s + 106 × 0.1 s / 256 = 0.34140625 s.
	s.run(time.Second)
	mb := b.ms[0]
	if got := mb.MasterAdverInterval(); got != 100*ms {
		t.Errorf("B Master_Adver_Interval %v, want 100ms", got)
	}
	// 3 × 0.1 s + 156 × 0.1 s / 256.
	if got, want := mb.MasterDownInterval(), 360937500*time.Nanosecond; got != want {
		t.Errorf("B Master_Down_Interval %v, want %v", got, want)
	}
	// A's link goes at 5 s: its last advert left at 4.94140625 s.
	s.run(5 * time.Second)
	a.cut = true
	s.run(6 * time.Second)
	s.expect(
		"0s A: init -> backup (startup)",
		"0s B: init -> backup (startup)",
		"341.40625ms A: backup -> master (master_down)",
		"5.30334375s B: backup -> master (master_down)",
	)
	// As master, B advertises at its own interval again.
	if got := mb.MasterAdverInterval(); got != time.Second {
		t.Errorf("B as master: Master_Adver_Interval %v, want 1s", got)
	}
	if at, _ := mb.NextDeadline(); at != 6303343750*time.Nanosecond {
		t.Errorf("B next advert at %v, want 6.30334375s", at)
	}
}

func TestV2KeepsOwnInterval(t *testing.T) {
	s := newSim(t, "")
	a := s.add("A", conf(1, 150, 2, time.Second))
	b := s.add("B", conf(2, 100, 2, 2*time.Second))
	s.start(a, b)
	s.run(10 * time.Second)
	// In v2 a differing interval never reaches the machine (the receive path
	// drops it); even if it does, it is not adopted.
	if got := b.ms[0].MasterAdverInterval(); got != 2*time.Second {
		t.Errorf("v2 Master_Adver_Interval %v, want 2s", got)
	}
}

func TestAdvertLoss(t *testing.T) {
	s := newSim(t, "transition")
	a := s.add("A", conf(1, 150, 3, 100*ms))
	b := s.add("B", conf(2, 100, 3, 100*ms))
	s.start(a, b)
	s.run(time.Second)
	s.log = nil
	// Two lost adverts in a row are survived: the down interval is three.
	lose := func(from, to time.Duration) {
		s.drop = func(*router, *router) bool { return s.now >= from && s.now < to }
	}
	lose(2*time.Second, 2200*ms)
	s.run(3 * time.Second)
	s.expect()
	// Three are not: A's adverts at 3.04140625, 3.14140625, 3.24140625 s are
	// lost; B times out 0.3609375 s after the one that arrived at 2.94240625 s.
	lose(3*time.Second, 3300*ms)
	s.run(4 * time.Second)
	s.expect(
		"3.30334375s B: backup -> master (master_down)",
		// A answers B's lower-priority advert at once (reference §2.4).
		"3.30534375s B: master -> backup (priority)",
	)
}

func TestPartitionHealLowerPriorityAnswer(t *testing.T) {
	s := newSim(t, "transition advert garp lower")
	a := s.add("A", conf(1, 150, 2, time.Second))
	b := s.add("B", conf(2, 100, 2, time.Second))
	b.cut = true
	s.start(a, b)
	s.show["advert"] = false
	s.run(10500 * ms)
	s.log = nil
	b.cut = false
	s.show["advert"] = true
	s.run(16 * time.Second)
	// B's advert at 10.609375 s reaches A, which answers at once and
	// re-announces the VIPs (garp_lower_prio_repeat), again 5 s later.
	s.expect(
		"10.609375s B: advert 100",
		"10.610375s A: advert 150",
		"10.610375s A: garp 5",
		"10.610375s A: heard lower priority 100",
		"10.611375s B: master -> backup (priority)",
		"11.4140625s A: advert 150",
		"12.4140625s A: advert 150",
		"13.4140625s A: advert 150",
		"14.4140625s A: advert 150",
		"15.4140625s A: advert 150",
		"15.610375s A: garp 5",
	)
}

func TestLowerPrioNoAdvert(t *testing.T) {
	s := newSim(t, "transition advert garp lower")
	ca := conf(1, 150, 2, time.Second)
	ca.LowerPrioNoAdvert = true
	ca.GARP.LowerPrioRepeat = 0
	a := s.add("A", ca)
	b := s.add("B", conf(2, 100, 2, time.Second))
	b.cut = true
	s.start(a, b)
	s.run(10 * time.Second)
	s.log = nil
	b.cut = false
	s.run(11 * time.Second)
	// No immediate answer: B yields to A's regular advert at 10.4140625 s.
	s.expect(
		"10.4140625s A: advert 150",
		"10.4150625s B: master -> backup (priority)",
	)
	s.run(12 * time.Second)
	s.expect("11.4140625s A: advert 150")
}

func TestHigherPrioSendAdvert(t *testing.T) {
	s := newSim(t, "transition advert vips")
	a := s.add("A", conf(1, 150, 2, time.Second))
	cb := conf(2, 100, 2, time.Second)
	cb.HigherPrioSendAdvert = true
	b := s.add("B", cb)
	a.cut = true
	s.start(a, b)
	s.run(3700 * ms)
	s.log = nil
	a.cut = false
	s.run(4416 * ms)
	// B yields to A's 150 with one more advert, then removes its VIPs.
	s.expect(
		"4.4140625s A: advert 150",
		"4.4150625s B: advert 100",
		"4.4150625s B: remove vips",
		"4.4150625s B: master -> backup (priority)",
	)
}

func TestGARPSchedule(t *testing.T) {
	// keepalived 2.2.7 verified with repeat 2, delay 2, refresh 3: 2 GARPs at
	// t, 2 at t+2 s, then 1 every 3 s.
	s := newSim(t, "garp")
	c := conf(1, 150, 3, time.Second)
	c.GARP = GARP{MasterRepeat: 2, MasterDelay: 2 * time.Second, MasterRefresh: 3 * time.Second, MasterRefreshRepeat: 1}
	a := s.add("A", c)
	s.start(a)
	s.run(13 * time.Second)
	s.expect(
		"3.4140625s A: garp 2",
		"5.4140625s A: garp 2",
		"6.4140625s A: garp 1",
		"9.4140625s A: garp 1",
		"12.4140625s A: garp 1",
	)
	// Leaving MASTER stops the schedule.
	s.shutdown(a)
	s.run(30 * time.Second)
	s.expect()
}

func TestAddressMismatch(t *testing.T) {
	for _, reject := range []bool{false, true} {
		c := conf(2, 100, 2, time.Second)
		c.RejectAddressMismatch = reject
		m, _ := New(c)
		m.Step(0, Input{Kind: InputStart})
		// A master whose address list differs keeps advertising.
		var now time.Duration
		for now = 0; now < 10*time.Second; now += time.Second {
			m.Step(now, Input{Kind: InputAdvert, Advert: Advert{Src: addr(1), Priority: 150, AddrMismatch: true}})
		}
		want := vrrp.StateBackup
		if reject {
			// keepalived ≤2.3.2: the adverts are rejected, a second master
			// appears (reference §4.3).
			want = vrrp.StateMaster
		}
		if got := m.State(); got != want {
			t.Errorf("RejectAddressMismatch=%v: %v, want %v", reject, got, want)
		}
	}
}

func TestThreeRoutersNextBestTakesOver(t *testing.T) {
	s := newSim(t, "transition peer")
	a := s.add("A", conf(1, 150, 3, time.Second))
	b := s.add("B", conf(2, 100, 3, time.Second))
	c := s.add("C", conf(3, 50, 3, time.Second))
	s.start(a, b, c)
	s.run(5 * time.Second)
	s.expect(
		"0s A: init -> backup (startup)",
		"0s B: init -> backup (startup)",
		"0s C: init -> backup (startup)",
		"3.4140625s A: backup -> master (master_down)",
		"3.4150625s B: master 192.0.2.1 priority 150",
		"3.4150625s C: master 192.0.2.1 priority 150",
	)
	// A dies after its advert at 9.4140625 s. B's skew is shorter than C's
	// ((256-100)/256 s against (256-50)/256 s), so B wins and C follows it.
	s.run(10 * time.Second)
	a.cut = true
	s.run(20 * time.Second)
	s.expect(
		"13.0244375s B: backup -> master (master_down)",
		"13.0254375s C: master 192.0.2.2 priority 100",
	)
	s.state(vrrp.StateMaster, vrrp.StateMaster, vrrp.StateBackup)
}
