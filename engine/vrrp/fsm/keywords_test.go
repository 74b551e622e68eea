package fsm

import (
	"slices"
	"testing"
	"time"

	"github.com/keepwatch/keepwatch/engine/event"
	"github.com/keepwatch/keepwatch/engine/vrrp"
)

// TestStartupDelay: vrrp_startup_delay pushes the first Master_Down_Timer
// back by the delay and discards every advert until it has passed
// (keepalived vrrp_daemon.c start_vrrp, vrrp_scheduler.c; reference §2.1,
// §2.4). keepalived 2.2.7 in a namespace with vrrp_startup_delay 3 and
// priority 100 v2 became MASTER 3 s + 3.609 s after start.
func TestStartupDelay(t *testing.T) {
	const delay = 3 * time.Second
	c := conf(1, 100, 2, time.Second)
	c.StartupDelay = delay
	m := newMachine(t, c)
	m.Step(0, Input{Kind: InputStart})
	if m.State() != vrrp.StateBackup {
		t.Fatalf("state after start %v, want BACKUP at once (the notify fires at start)", m.State())
	}
	mdi := m.MasterDownInterval()
	if at, _ := m.NextDeadline(); at != delay+mdi {
		t.Fatalf("first down timer at %v, want delay+Master_Down_Interval %v", at, delay+mdi)
	}
	// A higher-priority advert inside the delay is discarded: it neither
	// resets the down timer nor records a master.
	m.Step(time.Second, advert(addr(2), 200, 0))
	if a, _ := m.Master(); a.IsValid() {
		t.Fatalf("advert during the delay was accepted (master %v)", a)
	}
	if at, _ := m.NextDeadline(); at != delay+mdi {
		t.Fatalf("advert during the delay moved the down timer to %v", at)
	}
	// After it, adverts count again.
	m.Step(delay+time.Second, advert(addr(2), 200, 0))
	if a, p := m.Master(); a != addr(2) || p != 200 {
		t.Fatalf("advert after the delay not followed: master %v %d", a, p)
	}
	if at, _ := m.NextDeadline(); at != delay+time.Second+mdi {
		t.Fatalf("down timer after an accepted advert %v, want %v", at, delay+time.Second+mdi)
	}

	// Without a peer, MASTER comes at delay + Master_Down_Interval, not before.
	m = newMachine(t, c)
	m.Step(0, Input{Kind: InputStart})
	m.Step(delay+mdi-time.Millisecond, Input{Kind: InputTick})
	if m.State() != vrrp.StateBackup {
		t.Fatalf("MASTER before the delay ran out")
	}
	m.Step(delay+mdi, Input{Kind: InputTick})
	if m.State() != vrrp.StateMaster {
		t.Fatalf("state %v at delay+Master_Down_Interval, want MASTER", m.State())
	}
}

// TestStartupDelayOwner: the owner with state MASTER takes over only once
// the delay has passed (its 1 µs down timer is armed from the delayed start).
func TestStartupDelayOwner(t *testing.T) {
	c := conf(1, 255, 2, time.Second)
	c.InitialState = vrrp.StateMaster
	c.StartupDelay = 2 * time.Second
	m := newMachine(t, c)
	m.Step(0, Input{Kind: InputStart})
	if m.State() != vrrp.StateBackup {
		t.Fatalf("owner state %v at start, want BACKUP during the delay", m.State())
	}
	acts := m.Step(2*time.Second, Input{Kind: InputTick})
	if m.State() != vrrp.StateMaster {
		t.Fatalf("owner state %v after the delay, want MASTER", m.State())
	}
	if !slices.Contains(kinds(acts), "event(vrrp.transition backup->master owner)") {
		t.Errorf("takeover reason: %v", kinds(acts))
	}
}

// TestMasterRxLowerPriEvent: a master that hears a lower priority emits
// KindMasterRxLowerPri with its own effective priority (what keepalived's
// send_event_notify writes to the FIFO) and the sender's in Value; a
// higher priority does not.
func TestMasterRxLowerPriEvent(t *testing.T) {
	m := newMachine(t, conf(1, 150, 2, time.Second))
	m.Step(0, Input{Kind: InputStart})
	m.Step(m.MasterDownInterval(), Input{Kind: InputTick})
	if m.State() != vrrp.StateMaster {
		t.Fatal("not master")
	}
	now := m.MasterDownInterval() + 100*time.Millisecond
	var got []event.Event
	for _, a := range m.Step(now, advert(addr(2), 100, 0)) {
		if a.Kind == ActionEvent && a.Event.Kind == event.KindMasterRxLowerPri {
			got = append(got, a.Event)
		}
	}
	if len(got) != 1 || got[0].Priority != 150 || got[0].Value != 100 || got[0].Addr != addr(2) || got[0].Instance != "VI_1" {
		t.Fatalf("lower-priority events %+v, want one with Priority 150, Value 100 from %v", got, addr(2))
	}
	for _, a := range m.Step(now+time.Millisecond, advert(addr(2), 200, 0)) {
		if a.Kind == ActionEvent && a.Event.Kind == event.KindMasterRxLowerPri {
			t.Fatalf("higher priority reported as lower: %+v", a.Event)
		}
	}
}
