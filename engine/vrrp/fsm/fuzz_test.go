package fsm

import (
	"testing"
	"time"

	"github.com/keepwatch/keepwatch/engine/event"
	"github.com/keepwatch/keepwatch/engine/vrrp"
)

// FuzzStep drives one machine, or a sync group of two, with arbitrary input
// sequences (advert fields come from the wire) and checks invariants after
// every Step: no panic, deadlines not in the past, VIPs held exactly while
// MASTER, the takeover advert before the VIPs, transitions that start where
// the machine was, priorities in range.
func FuzzStep(f *testing.F) {
	f.Add([]byte{0x02, 150, 10, 0, 1, 0, 0, 0, 0, 255, 0, 0, 2, 0, 100, 2, 5, 9, 0, 0})
	f.Add([]byte{0x13, 100, 1, 5, 1, 0, 0, 0, 2, 10, 0, 1, 6, 200, 3, 0, 3, 50, 0, 0, 4, 0, 0, 0})
	f.Add([]byte{0x20, 255, 3, 0, 1, 1, 0, 0, 2, 1, 255, 2, 0, 2, 0, 0})
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) < 4 {
			return
		}
		flags, prio, ivl, delay := data[0], int(data[1]), time.Duration(data[2])+1, data[3]
		c := conf(5, max(prio, 1), 2+int(flags&1), ivl*10*time.Millisecond)
		c.NoPreempt = flags&2 != 0
		c.PreemptDelay = time.Duration(delay) * 10 * time.Millisecond
		if flags&8 != 0 {
			c.InitialState = vrrp.StateMaster
		}
		c.LowerPrioNoAdvert = flags&16 != 0
		c.HigherPrioSendAdvert = flags&32 != 0
		c.OwnerIgnoreAdverts = flags&64 != 0
		c.RejectAddressMismatch = flags&128 != 0
		c.GARP.MasterRefresh = time.Duration(delay) * time.Millisecond
		n := 1
		if flags&4 != 0 {
			n = 2
		}
		ms := make([]*Machine, n)
		for i := range ms {
			ms[i] = newMachine(t, c)
		}
		var g *Group
		if n == 2 {
			g = NewGroup(ms...)
		}
		held := make([]bool, n)
		prev := make([]vrrp.State, n)
		var now time.Duration
		for op := data[4:]; len(op) >= 4; op = op[4:] {
			now += time.Duration(op[1]) * 5 * time.Millisecond
			member := int(op[3]) % n
			var in Input
			switch op[0] % 9 {
			case 0:
				in.Kind = InputStart
			case 1:
				in = Input{Kind: InputAdvert, Advert: Advert{Src: addr(op[3]), Priority: int(op[2]),
					Interval: time.Duration(op[3]) * 10 * time.Millisecond, AddrMismatch: op[3]&1 != 0}}
			case 2:
				in = Input{Kind: InputPriority, Priority: int(op[2])}
			case 3:
				in.Kind = InputFault
			case 4:
				in.Kind = InputFaultCleared
			case 5:
				in.Kind = InputShutdown
			case 6:
				// Jump to the next deadline, as a driver's timer would.
				var at time.Duration
				var ok bool
				if g != nil {
					at, ok = g.NextDeadline()
				} else {
					at, ok = ms[0].NextDeadline()
				}
				if ok && at > now {
					now = at
				}
			default:
				in.Kind = InputTick
			}
			var acts []GroupAction
			if g != nil {
				acts = g.Step(now, member, in)
			} else {
				for _, a := range ms[0].Step(now, in) {
					acts = append(acts, GroupAction{Action: a})
				}
			}
			advertSent := make([]bool, n)
			for _, a := range acts {
				i := a.Member
				switch a.Kind {
				case ActionSendAdvert:
					if a.Priority < 0 || a.Priority > 255 {
						t.Fatalf("advert priority %d", a.Priority)
					}
					if a.Priority > 0 {
						advertSent[i] = true
					}
				case ActionAddVIPs:
					if held[i] {
						t.Fatalf("member %d adds VIPs it holds", i)
					}
					if !advertSent[i] {
						t.Fatalf("member %d adds VIPs before its advert", i)
					}
					held[i] = true
				case ActionRemoveVIPs:
					if !held[i] {
						t.Fatalf("member %d removes VIPs it does not hold", i)
					}
					held[i] = false
				case ActionEvent:
					if e := a.Event; e.Kind == event.KindTransition {
						if e.From != prev[i] {
							t.Fatalf("member %d transition from %v, was %v", i, e.From, prev[i])
						}
						prev[i] = e.To
					}
				}
			}
			for i, m := range ms {
				if m.State() != prev[i] {
					t.Fatalf("member %d in %v without a transition from %v", i, m.State(), prev[i])
				}
				if held[i] != (m.State() == vrrp.StateMaster) {
					t.Fatalf("member %d in %v, holds VIPs %v", i, m.State(), held[i])
				}
				if p := m.Priority(); p < 1 || p > 255 {
					t.Fatalf("member %d priority %d", i, p)
				}
				if at, ok := m.NextDeadline(); ok && at < now {
					t.Fatalf("member %d deadline %v before now %v", i, at, now)
				}
			}
		}
	})
}
