package fsm

import (
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/keepwatch/keepwatch/engine/vrrp"
)

// masterAt starts a v3 machine at prio and makes it master by its down timer.
func masterAt(t *testing.T, prio int) (*Machine, time.Duration) {
	t.Helper()
	m := newMachine(t, conf(1, prio, 3, 100*time.Millisecond))
	m.Step(0, Input{Kind: InputStart})
	at, _ := m.NextDeadline()
	m.Step(at, Input{Kind: InputTick})
	if m.State() != vrrp.StateMaster {
		t.Fatalf("state %v, want MASTER", m.State())
	}
	return m, at
}

// TestReconfigurePriorityKeepsMaster is the reload bug of issue 9: a master
// whose priority drops from 200 to 180 stays master, and its next advert
// carries 180 (RFC 9568 §6.4.3).
func TestReconfigurePriorityKeepsMaster(t *testing.T) {
	m, now := masterAt(t, 200)
	c := m.Config()
	c.Priority = 180
	if err := m.Reconfigure(now, c); err != nil {
		t.Fatal(err)
	}
	if m.State() != vrrp.StateMaster || m.BasePriority() != 180 || m.Priority() != 180 {
		t.Fatalf("after reconfigure: %v base %d prio %d, want MASTER 180 180", m.State(), m.BasePriority(), m.Priority())
	}
	at, _ := m.NextDeadline()
	if diff := cmp.Diff([]string{"send_advert(180)"}, kinds(m.Step(at, Input{Kind: InputTick}))); diff != "" {
		t.Errorf("next advert (-want +got):\n%s", diff)
	}
}

// TestReconfigureInterval: a master's Adver_Timer moves to the new, shorter
// interval at once, and a longer one applies after the next advert.
func TestReconfigureInterval(t *testing.T) {
	m, now := masterAt(t, 200)
	c := m.Config()
	c.AdvertInterval = 20 * time.Millisecond
	if err := m.Reconfigure(now+10*time.Millisecond, c); err != nil {
		t.Fatal(err)
	}
	if at, _ := m.NextDeadline(); at != now+30*time.Millisecond {
		t.Errorf("next advert at %v, want %v", at, now+30*time.Millisecond)
	}
	c.AdvertInterval = time.Second
	if err := m.Reconfigure(now+20*time.Millisecond, c); err != nil {
		t.Fatal(err)
	}
	at, _ := m.NextDeadline()
	if at != now+30*time.Millisecond {
		t.Errorf("next advert at %v, want the one already due at %v", at, now+30*time.Millisecond)
	}
	m.Step(at, Input{Kind: InputTick})
	if next, _ := m.NextDeadline(); next != at+time.Second {
		t.Errorf("advert after %v at %v, want %v", at, next, at+time.Second)
	}
	if m.MasterDownInterval() <= 3*time.Second {
		t.Errorf("Master_Down_Interval %v does not follow the 1 s interval", m.MasterDownInterval())
	}
}

// TestReconfigureTrackedPriority: a tracker's share survives a reload that
// does not change the base; the owner's 255 is never a tracker's.
func TestReconfigureTrackedPriority(t *testing.T) {
	m, now := masterAt(t, 200)
	m.Step(now, Input{Kind: InputPriority, Priority: 150})
	c := m.Config()
	c.PreemptDelay = time.Second
	if err := m.Reconfigure(now, c); err != nil {
		t.Fatal(err)
	}
	if m.Priority() != 150 {
		t.Errorf("effective priority %d, want the tracked 150", m.Priority())
	}
	c.Priority = 255
	if err := m.Reconfigure(now, c); err != nil {
		t.Fatal(err)
	}
	if m.Priority() != 255 || m.BasePriority() != 255 {
		t.Errorf("owner: priority %d base %d, want 255 255", m.Priority(), m.BasePriority())
	}
}

func TestReconfigureIdentity(t *testing.T) {
	m, now := masterAt(t, 200)
	c := m.Config()
	c.VRID++
	if err := m.Reconfigure(now, c); !errors.Is(err, ErrConfig) {
		t.Errorf("VRID change: err %v, want ErrConfig", err)
	}
	c = m.Config()
	c.Priority = 0
	if err := m.Reconfigure(now, c); !errors.Is(err, ErrConfig) {
		t.Errorf("priority 0: err %v, want ErrConfig", err)
	}
	if m.State() != vrrp.StateMaster || m.BasePriority() != 200 {
		t.Errorf("a rejected config changed the machine: %v base %d", m.State(), m.BasePriority())
	}
}
