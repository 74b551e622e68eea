package fsm

import (
	"testing"
	"time"
)

// steadyBackup is a started backup that has heard its master once.
func steadyBackup(tb testing.TB) (*Machine, Input) {
	m := newMachine(tb, conf(2, 100, 3, time.Second))
	in := advert(addr(1), 150, time.Second)
	m.Step(0, Input{Kind: InputStart})
	m.Step(time.Second, in)
	return m, in
}

// steadyMaster is a machine that has been master for a while.
func steadyMaster(tb testing.TB) *Machine {
	m := newMachine(tb, conf(1, 150, 3, time.Second))
	m.Step(0, Input{Kind: InputStart})
	for range 20 {
		at, _ := m.NextDeadline()
		m.Step(at, Input{})
	}
	return m
}

// TestSteadyStateAllocs: receiving an advert as backup and advertising as
// master allocate nothing (DESIGN §9). Counts, not timings.
func TestSteadyStateAllocs(t *testing.T) {
	m, in := steadyBackup(t)
	now := 2 * time.Second
	if n := testing.AllocsPerRun(1000, func() {
		now += time.Second
		m.Step(now, in)
	}); n != 0 {
		t.Errorf("backup advert: %v allocs per Step, want 0", n)
	}
	mm := steadyMaster(t)
	if n := testing.AllocsPerRun(1000, func() {
		at, _ := mm.NextDeadline()
		mm.Step(at, Input{})
	}); n != 0 {
		t.Errorf("master timer: %v allocs per Step, want 0", n)
	}
}

func BenchmarkStepBackupAdvert(b *testing.B) {
	m, in := steadyBackup(b)
	now := 2 * time.Second
	b.ReportAllocs()
	for b.Loop() {
		now += time.Second
		m.Step(now, in)
	}
}

func BenchmarkStepMasterTimer(b *testing.B) {
	m := steadyMaster(b)
	b.ReportAllocs()
	for b.Loop() {
		at, _ := m.NextDeadline()
		m.Step(at, Input{})
	}
}

func BenchmarkStepMasterLowerPriority(b *testing.B) {
	m := steadyMaster(b)
	at, _ := m.NextDeadline()
	in := advert(addr(2), 100, time.Second)
	b.ReportAllocs()
	for b.Loop() {
		at += time.Microsecond
		m.Step(at, in)
	}
}

// TestActionBufferKeptSmall: a machine past its takeover keeps no more
// than one action of buffer (an Action is ~330 bytes; 16 preallocated per
// instance were 1.3 MiB at 250 instances, issue 12), also after the Step
// that sent an advert and the garp_master_delay burst together.
func TestActionBufferKeptSmall(t *testing.T) {
	// advert_int 1 s and keepalived's garp_master_delay 5 s: one Step sends
	// an advert and the second GARP burst.
	mm := newMachine(t, conf(1, 150, 3, time.Second))
	mm.Step(0, Input{Kind: InputStart})
	two := false
	for range 20 {
		at, _ := mm.NextDeadline()
		if n := len(mm.Step(at, Input{})); n > 1 {
			two = true
		} else if c := cap(mm.acts); c > 1 {
			t.Fatalf("master at %v keeps %d actions of buffer after a Step that emitted %d, want at most 1", at, c, n)
		}
	}
	if !two {
		t.Error("no Step emitted more than one action: the schedule no longer has a GARP burst beside an advert, and the test means nothing")
	}
	m, in := steadyBackup(t)
	m.Step(2*time.Second, in)
	m.Step(3*time.Second, in)
	if c := cap(m.acts); c > 1 {
		t.Errorf("backup in steady state keeps %d actions of buffer, want at most 1", c)
	}
}
