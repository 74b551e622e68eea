package fsm

import (
	"time"

	"github.com/keepwatch/keepwatch/engine/vrrp"
)

// Group coordinates the members of a vrrp_sync_group (reference §1.4): they
// go MASTER together, and only when every member wants MASTER; one member in
// FAULT takes them all to FAULT; one member yielding to a higher priority
// takes the other masters to BACKUP. Like Machine, it is pure and not safe for
// concurrent use: one goroutine owns the group and all its members.
type Group struct {
	ms  []*Machine
	out []GroupAction
}

// GroupAction is an action for one member, by its index in NewGroup.
type GroupAction struct {
	Member int
	Action
}

// NewGroup puts machines (not yet started) under one group. From then on
// they must be stepped only through the Group.
func NewGroup(ms ...*Machine) *Group {
	for _, m := range ms {
		m.grouped = true
	}
	return &Group{ms: ms, out: make([]GroupAction, 0, 16*len(ms))}
}

// Members returns the machines, in order.
func (g *Group) Members() []*Machine { return g.ms }

// NextDeadline is the earliest deadline of any member.
func (g *Group) NextDeadline() (time.Duration, bool) {
	var at time.Duration
	ok := false
	for _, m := range g.ms {
		if t, mok := m.NextDeadline(); mok && (!ok || t < at) {
			at, ok = t, true
		}
	}
	return at, ok
}

// Step fires every member's due timers, gives in to member (none if member
// is out of range, e.g. -1 for a plain tick), then brings the other members
// in line. The returned actions are valid until the next Step.
func (g *Group) Step(now time.Duration, member int, in Input) []GroupAction {
	g.out = g.out[:0]
	for i, m := range g.ms {
		if i != member {
			g.collect(i, m.Step(now, Input{}))
		}
	}
	if member >= 0 && member < len(g.ms) {
		if in.Kind == InputFaultCleared && g.ms[member].ownFault && g.otherFault(member) {
			// Another member is still in FAULT for itself: this one stays in
			// FAULT, now for the group, with no transition; keepalived
			// counts the group's faulted members and brings none up before
			// the count is zero (vrrp_track.c try_up_instance,
			// sync->num_member_fault). A group's own tracker clears on each
			// member in turn, so without this the first would flap through
			// BACKUP and back, running its notify scripts twice.
			g.ms[member].groupFault = true
		}
		start := len(g.out)
		g.collect(member, g.ms[member].Step(now, in))
		// A master that heard a lower priority re-announces the VIPs of
		// every member (keepalived vrrp_state_master_rx, reference §2.4).
		for _, a := range g.out[start:] {
			if a.Kind == ActionNotifyLowerPrio {
				for i, m := range g.ms {
					if i != member {
						g.collect(i, m.Step(now, Input{Kind: InputSyncLowerPrio}))
					}
				}
				break
			}
		}
	}
	// Each pass moves at least one member towards a fixed point; a few
	// passes settle any group.
	for range 4 {
		if !g.reconcile(now) {
			break
		}
	}
	return g.out
}

// reconcile applies the group rules once and reports whether it changed anything.
func (g *Group) reconcile(now time.Duration) bool {
	changed := false
	send := func(i int, in Input) {
		g.collect(i, g.ms[i].Step(now, in))
		changed = true
	}

	// FAULT first: it overrides everything (vrrp_sync_fault).
	anyFault := false
	for _, m := range g.ms {
		anyFault = anyFault || m.ownFault
	}
	for i, m := range g.ms {
		if anyFault && !m.ownFault && !m.groupFault {
			send(i, Input{Kind: InputSyncFault})
		} else if !anyFault && m.groupFault {
			send(i, Input{Kind: InputSyncFaultCleared})
		}
	}
	if anyFault {
		return changed
	}

	// MASTER only when every running member wants it or already is master
	// (vrrp_sync_can_goto_master). The member whose timer just fired keeps
	// its own reason; the others report sync_group.
	wanting, all := false, true
	for _, m := range g.ms {
		wanting = wanting || m.wantMaster
		all = all && (m.wantMaster || m.state == vrrp.StateMaster)
	}
	if wanting && all {
		for i, m := range g.ms {
			if m.wantMaster {
				in := Input{Kind: InputSyncMaster}
				if m.wantSince == now {
					in.Reason = m.wantReason
				}
				send(i, in)
			}
		}
	}

	// A member that went BACKUP while others are MASTER takes them along
	// (vrrp_sync_backup): they yield without a priority-0 advert.
	backup, master := false, false
	for _, m := range g.ms {
		backup = backup || m.state == vrrp.StateBackup
		master = master || m.state == vrrp.StateMaster
	}
	if backup && master {
		for i, m := range g.ms {
			if m.state == vrrp.StateMaster {
				send(i, Input{Kind: InputSyncBackup})
			}
		}
	}
	return changed
}

// otherFault reports whether a member other than i is in FAULT for itself.
func (g *Group) otherFault(i int) bool {
	for k, m := range g.ms {
		if k != i && m.ownFault {
			return true
		}
	}
	return false
}

func (g *Group) collect(i int, acts []Action) {
	for _, a := range acts {
		g.out = append(g.out, GroupAction{Member: i, Action: a})
	}
}
