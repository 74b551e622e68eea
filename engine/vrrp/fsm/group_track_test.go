package fsm

import (
	"testing"
	"time"

	"github.com/keepwatch/keepwatch/engine/vrrp"
)

// A vrrp_sync_group's own tracker (track_interface, track_script, track_file
// or track_process on the group) reaches every member at once: the agent
// hands each member the same fault or priority (keepalived's
// sync_group_tracking_init adds the group's trackers to every member). These
// tests drive the group as the agent does.

// allStates asserts every member of r is in want.
func allStates(t *testing.T, r *router, want vrrp.State) {
	t.Helper()
	for i, m := range r.ms {
		if m.State() != want {
			t.Errorf("%s is %v, want %v", r.label(i), m.State(), want)
		}
		if r.vips[i] != (want == vrrp.StateMaster) {
			t.Errorf("%s holds VIPs: %v", r.label(i), r.vips[i])
		}
	}
}

// A weight-0 group tracker fails: every member is in FAULT for its own
// tracker, so clearing the fault on one member alone (the agent delivers
// them one after the other) must not bring the group back; only the last
// clear does, and then the group preempts the peer together.
func TestSyncGroupTrackerFaultsEveryMember(t *testing.T) {
	s := newSim(t, "transition")
	r1 := s.add("R1", pair(1, 150)...)
	r2 := s.add("R2", pair(2, 100)...)
	s.start(r1, r2)
	s.run(5 * time.Second)
	allStates(t, r1, vrrp.StateMaster)
	s.log = nil

	s.step(r1, 0, Input{Kind: InputFault})
	s.step(r1, 1, Input{Kind: InputFault})
	s.run(10 * time.Second)
	allStates(t, r1, vrrp.StateFault)
	allStates(t, r2, vrrp.StateMaster)
	for i, m := range r1.ms {
		if !m.ownFault {
			t.Errorf("%s: in FAULT but not for its own tracker", r1.label(i))
		}
	}
	s.expect(
		"5s R1/0: master -> fault (fault)",
		"5s R1/1: master -> fault (sync_group)",
		"5.610375s R2/0: backup -> master (priority_zero)",
		"5.610375s R2/1: backup -> master (priority_zero)",
	)

	s.step(r1, 0, Input{Kind: InputFaultCleared})
	s.run(15 * time.Second)
	allStates(t, r1, vrrp.StateFault)
	s.expect()

	s.step(r1, 1, Input{Kind: InputFaultCleared})
	s.run(20 * time.Second)
	allStates(t, r1, vrrp.StateMaster)
	allStates(t, r2, vrrp.StateBackup)
}

// A weighted group tracker lowers every member's priority below the peer's:
// the peer's members, which all see a lower priority now, take over
// together; the tracker recovers and the group takes back.
func TestSyncGroupTrackerWeightMovesEveryMember(t *testing.T) {
	s := newSim(t, "transition")
	r1 := s.add("R1", pair(1, 150)...)
	r2 := s.add("R2", pair(2, 120)...)
	s.start(r1, r2)
	s.run(5 * time.Second)
	allStates(t, r1, vrrp.StateMaster)
	s.log = nil

	s.priority(r1, 110) // 150 + weight -40
	s.run(15 * time.Second)
	allStates(t, r1, vrrp.StateBackup)
	allStates(t, r2, vrrp.StateMaster)
	// R2 ignores the lower adverts (it preempts) and its timer fires
	// Master_Down_Interval after the last advert at 150.
	s.expect(
		"7.9463125s R2/0: backup -> master (preempted)",
		"7.9463125s R2/1: backup -> master (preempted)",
		"7.9473125s R1/0: master -> backup (priority)",
		"7.9473125s R1/1: master -> backup (sync_group)",
	)

	s.priority(r1, 150)
	s.run(25 * time.Second)
	allStates(t, r1, vrrp.StateMaster)
	allStates(t, r2, vrrp.StateBackup)
	s.expect(
		"18.517625s R1/0: backup -> master (preempted)",
		"18.517625s R1/1: backup -> master (preempted)",
		"18.518625s R2/0: master -> backup (priority)",
		"18.518625s R2/1: master -> backup (sync_group)",
	)
}
