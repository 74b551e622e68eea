package fsm

import (
	"errors"
	"net/netip"
	"strconv"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/keepwatch/keepwatch/engine/event"
	"github.com/keepwatch/keepwatch/engine/vrrp"
)

func newMachine(t testing.TB, c Config) *Machine {
	t.Helper()
	m, err := New(c)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func advert(src netip.Addr, prio int, interval time.Duration) Input {
	return Input{Kind: InputAdvert, Advert: Advert{Src: src, Priority: prio, Interval: interval}}
}

// kinds summarises actions as "send_advert(150)", "add_vips", "event(vrrp.transition backup->master master_down)".
func kinds(acts []Action) []string {
	var out []string
	for _, a := range acts {
		s := a.Kind.String()
		switch a.Kind {
		case ActionSendAdvert, ActionNotifyLowerPrio:
			s += "(" + strconv.Itoa(a.Priority) + ")"
		case ActionSendGratuitous:
			s += "(" + strconv.Itoa(a.Count) + ")"
		case ActionNotify:
			s += "(" + a.State.String() + ")"
		case ActionEvent:
			s += "(" + a.Event.Kind.String()
			if a.Event.Kind == event.KindTransition {
				s += " " + a.Event.From.String() + "->" + a.Event.To.String() + " " + string(a.Event.Reason)
			}
			s += ")"
		}
		out = append(out, s)
	}
	return out
}

func TestMasterDownInterval(t *testing.T) {
	tests := []struct {
		name      string
		version   int
		prio      int
		interval  time.Duration
		downTimer int
		skew      time.Duration
		mdi       time.Duration
	}{
		// Verified on keepalived 2.2.7 (reference §2.4): "Master down timer = 3414062 usecs".
		{"v2 prio 150", 2, 150, time.Second, 0, 414062500, 3414062500},
		{"v3 prio 150 0.5s", 3, 150, 500 * time.Millisecond, 0, 207031250, 1707031250},
		{"v2 prio 100", 2, 100, time.Second, 0, 609375000, 3609375000},
		// v2 Skew ignores the advert interval (RFC 3768 §6.1).
		{"v2 prio 100 advert_int 3", 2, 100, 3 * time.Second, 0, 609375000, 9609375000},
		{"v2 owner", 2, 255, time.Second, 0, 3906250, 3003906250},
		{"v3 owner 1s", 3, 255, time.Second, 0, 3906250, 3003906250},
		{"v3 down_timer_adverts 5", 3, 100, 100 * time.Millisecond, 5, 60937500, 560937500},
		{"v3 prio 1 10ms", 3, 1, 10 * time.Millisecond, 1, 9960937, 19960937},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := conf(1, tt.prio, tt.version, tt.interval)
			c.DownTimerAdverts = tt.downTimer
			m := newMachine(t, c)
			if got := m.Skew(); got != tt.skew {
				t.Errorf("Skew = %v (%d), want %v", got, int64(got), tt.skew)
			}
			if got := m.MasterDownInterval(); got != tt.mdi {
				t.Errorf("Master_Down_Interval = %v, want %v", got, tt.mdi)
			}
			// Starting arms exactly that timer.
			m.Step(time.Hour, Input{Kind: InputStart})
			if at, ok := m.NextDeadline(); !ok || at != time.Hour+tt.mdi {
				t.Errorf("NextDeadline after start = %v, %v; want %v", at, ok, time.Hour+tt.mdi)
			}
		})
	}
}

func TestConfigValidate(t *testing.T) {
	mod := func(f func(*Config)) Config {
		c := conf(1, 100, 3, time.Second)
		f(&c)
		return c
	}
	bad := map[string]Config{
		"version":        mod(func(c *Config) { c.Version = 4 }),
		"priority 0":     mod(func(c *Config) { c.Priority = 0 }),
		"priority 256":   mod(func(c *Config) { c.Priority = 256 }),
		"interval":       mod(func(c *Config) { c.AdvertInterval = 0 }),
		"no address":     mod(func(c *Config) { c.Addr = netip.Addr{} }),
		"down timer":     mod(func(c *Config) { c.DownTimerAdverts = 101 }),
		"preempt delay":  mod(func(c *Config) { c.PreemptDelay = -1 }),
		"initial state":  mod(func(c *Config) { c.InitialState = vrrp.StateFault }),
		"garp repeat":    mod(func(c *Config) { c.GARP.MasterRepeat = -1 }),
		"garp refresh":   mod(func(c *Config) { c.GARP.MasterRefresh = -time.Second }),
		"lower prio rep": mod(func(c *Config) { c.GARP.LowerPrioRepeat = -2 }),
	}
	for name, c := range bad {
		if _, err := New(c); !errors.Is(err, ErrConfig) {
			t.Errorf("%s: New error %v, want ErrConfig", name, err)
		}
	}
	if _, err := New(conf(1, 255, 2, time.Second)); err != nil {
		t.Errorf("valid config: %v", err)
	}
}

func TestTakeoverOrder(t *testing.T) {
	c := conf(1, 150, 3, time.Second)
	c.Name, c.VRID, c.Interface = "VI_9", 9, "eth9"
	m := newMachine(t, c)
	got := kinds(m.Step(0, Input{Kind: InputStart}))
	want := []string{"event(vrrp.transition init->backup startup)", "notify(backup)"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Fatalf("start (-want +got):\n%s", diff)
	}
	at, _ := m.NextDeadline()
	acts := m.Step(at, Input{})
	// Advert first so the old master releases, then VIPs, then GARPs
	// (reference §2.6, DESIGN §5).
	want = []string{"send_advert(150)", "add_vips", "send_gratuitous(5)",
		"event(vrrp.transition backup->master master_down)", "notify(master)"}
	if diff := cmp.Diff(want, kinds(acts)); diff != "" {
		t.Fatalf("takeover (-want +got):\n%s", diff)
	}
	e := acts[3].Event
	wantEvent := event.Event{Kind: event.KindTransition, Instance: "VI_9", VRID: 9, Interface: "eth9",
		Family: vrrp.IPv4, From: vrrp.StateBackup, To: vrrp.StateMaster, Reason: event.ReasonMasterDown,
		Priority: 150, BasePriority: 150, Interval: time.Second}
	if diff := cmp.Diff(wantEvent, e, cmpopts.EquateComparable(netip.Addr{})); diff != "" {
		t.Errorf("transition event (-want +got):\n%s", diff)
	}
	if acts[4].Priority != 150 {
		t.Errorf("notify priority %d, want 150", acts[4].Priority)
	}
}

func TestMasterAnswersPriorityZero(t *testing.T) {
	m := newMachine(t, conf(1, 150, 3, time.Second))
	m.Step(0, Input{Kind: InputStart})
	at, _ := m.NextDeadline()
	m.Step(at, Input{})
	now := at + 300*time.Millisecond
	got := kinds(m.Step(now, advert(addr(2), 0, time.Second)))
	if diff := cmp.Diff([]string{"send_advert(150)"}, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	// RFC 9568 §6.4.3: reset Adver_Timer.
	if next, _ := m.NextDeadline(); next != now+time.Second {
		t.Errorf("next advert at %v, want %v", next, now+time.Second)
	}
	if m.State() != vrrp.StateMaster {
		t.Errorf("state %v, want master", m.State())
	}
}

func TestOwnAdvertIgnored(t *testing.T) {
	m := newMachine(t, conf(1, 150, 3, time.Second))
	m.Step(0, Input{Kind: InputStart})
	at, _ := m.NextDeadline()
	m.Step(at, Input{})
	if got := m.Step(at+time.Millisecond, advert(addr(1), 150, time.Second)); len(got) != 0 {
		t.Errorf("own advert produced %v", kinds(got))
	}
}

func TestPeerMasterReportedOnChange(t *testing.T) {
	m := newMachine(t, conf(9, 100, 3, time.Second))
	m.Step(0, Input{Kind: InputStart})
	var peers []string
	step := func(now time.Duration, in Input) {
		for _, a := range m.Step(now, in) {
			if a.Kind == ActionEvent && a.Event.Kind == event.KindPeerMaster {
				peers = append(peers, a.Event.Addr.String()+"/"+strconv.Itoa(a.Event.Priority))
			}
		}
	}
	step(1*time.Second, advert(addr(1), 150, time.Second))
	step(2*time.Second, advert(addr(1), 150, time.Second))
	step(3*time.Second, advert(addr(1), 140, time.Second)) // its priority changed
	step(4*time.Second, advert(addr(2), 140, time.Second)) // another master
	want := []string{"192.0.2.1/150", "192.0.2.1/140", "192.0.2.2/140"}
	if diff := cmp.Diff(want, peers); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	if a, p := m.Master(); a != addr(2) || p != 140 {
		t.Errorf("Master() = %v, %d", a, p)
	}
}

func TestLateStepFiresOnce(t *testing.T) {
	// A driver that wakes late must not get a burst of adverts.
	m := newMachine(t, conf(1, 150, 3, 100*time.Millisecond))
	m.Step(0, Input{Kind: InputStart})
	at, _ := m.NextDeadline()
	m.Step(at, Input{})
	n := 0
	for _, a := range m.Step(at+250*time.Millisecond, Input{}) {
		if a.Kind == ActionSendAdvert {
			n++
		}
	}
	// Deadlines at +100 ms and +200 ms are both past: one advert, and the
	// cadence restarts from now.
	if n != 1 {
		t.Errorf("%d adverts, want 1", n)
	}
	if next, _ := m.NextDeadline(); next != at+350*time.Millisecond {
		t.Errorf("next %v, want %v", next, at+350*time.Millisecond)
	}
	// Slightly late (the usual case): the grid is kept.
	m.Step(at+351*time.Millisecond, Input{})
	if next, _ := m.NextDeadline(); next != at+450*time.Millisecond {
		t.Errorf("next %v, want %v", next, at+450*time.Millisecond)
	}
}

func TestStoppedIgnoresEverything(t *testing.T) {
	m := newMachine(t, conf(1, 150, 3, time.Second))
	m.Step(0, Input{Kind: InputStart})
	m.Step(time.Second, Input{Kind: InputShutdown})
	for _, in := range []Input{{Kind: InputStart}, advert(addr(2), 0, 0), {Kind: InputFault},
		{Kind: InputFaultCleared}, {Kind: InputSyncMaster}, {Kind: InputShutdown}, {Kind: InputPriority, Priority: 200}} {
		if got := m.Step(2*time.Second, in); len(got) != 0 {
			t.Errorf("%v in STOP produced %v", in.Kind, kinds(got))
		}
	}
	if _, ok := m.NextDeadline(); ok {
		t.Error("deadline in STOP")
	}
}

func TestBackupShutdownSendsNothing(t *testing.T) {
	m := newMachine(t, conf(1, 150, 3, time.Second))
	m.Step(0, Input{Kind: InputStart})
	got := kinds(m.Step(time.Second, Input{Kind: InputShutdown}))
	want := []string{"event(vrrp.transition backup->stop shutdown)", "notify(stop)"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

func TestMasterShutdownAndFault(t *testing.T) {
	for _, tt := range []struct {
		in   InputKind
		want []string
	}{
		{InputShutdown, []string{"send_advert(0)", "remove_vips", "event(vrrp.transition master->stop shutdown)", "notify(stop)"}},
		{InputFault, []string{"send_advert(0)", "remove_vips", "event(vrrp.transition master->fault fault)", "notify(fault)"}},
	} {
		m := newMachine(t, conf(1, 150, 3, time.Second))
		m.Step(0, Input{Kind: InputStart})
		at, _ := m.NextDeadline()
		m.Step(at, Input{})
		if diff := cmp.Diff(tt.want, kinds(m.Step(at+time.Second/2, Input{Kind: tt.in}))); diff != "" {
			t.Errorf("%v (-want +got):\n%s", tt.in, diff)
		}
	}
}

func TestPriorityInputClamped(t *testing.T) {
	m := newMachine(t, conf(1, 100, 3, time.Second))
	for _, tt := range []struct{ in, want int }{{300, 254}, {255, 254}, {0, 1}, {-5, 1}, {120, 120}} {
		m.Step(0, Input{Kind: InputPriority, Priority: tt.in})
		if got := m.Priority(); got != tt.want {
			t.Errorf("priority input %d: got %d, want %d", tt.in, got, tt.want)
		}
	}
}

func TestStringers(t *testing.T) {
	if InputAdvert.String() != "advert" || InputKind(200).String() != "unknown" {
		t.Error("InputKind.String")
	}
	if ActionAddVIPs.String() != "add_vips" || ActionKind(0).String() != "unknown" || ActionKind(200).String() != "unknown" {
		t.Error("ActionKind.String")
	}
}

func TestFaultForgetsAdoptedInterval(t *testing.T) {
	m := newMachine(t, conf(2, 100, 3, time.Second))
	m.Step(0, Input{Kind: InputStart})
	m.Step(time.Second, advert(addr(1), 150, 200*time.Millisecond))
	if got := m.MasterAdverInterval(); got != 200*time.Millisecond {
		t.Fatalf("adopted %v, want 200ms", got)
	}
	m.Step(2*time.Second, Input{Kind: InputFault})
	m.Step(3*time.Second, Input{Kind: InputFaultCleared})
	if got := m.MasterAdverInterval(); got != time.Second {
		t.Errorf("after FAULT: %v, want own 1s", got)
	}
	if at, _ := m.NextDeadline(); at != 3*time.Second+3609375*time.Microsecond {
		t.Errorf("down timer at %v", at)
	}
}
