package agent

import (
	"sync"
	"time"

	"github.com/keepwatch/keepwatch/engine/event"
	"github.com/keepwatch/keepwatch/engine/vrrp"
)

// GroupChange is a vrrp_sync_group's state change, for its notify scripts,
// FIFO line and mail (reference §1.4, §1.8).
type GroupChange struct {
	Group    string
	From, To vrrp.State
	Cause    uint64
	Time     time.Time
}

// groups follows member transitions and derives each sync group's state:
// FAULT if any member is in FAULT, MASTER once all are MASTER, BACKUP once
// all are BACKUP, STOP once all have stopped. It sits on the event stream,
// so it has its own lock: routers emit while the agent's lock may be held.
type groups struct {
	mu      sync.Mutex
	groupOf map[string]string                // instance → group
	members map[string]map[string]vrrp.State // group → instance → state
	state   map[string]vrrp.State
	on      func(GroupChange)
}

func newGroups(on func(GroupChange)) *groups {
	return &groups{groupOf: map[string]string{}, members: map[string]map[string]vrrp.State{}, state: map[string]vrrp.State{}, on: on}
}

func (g *groups) set(group string, instances []string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	m := map[string]vrrp.State{}
	for _, in := range instances {
		g.groupOf[in] = group
		m[in] = vrrp.StateInit
	}
	g.members[group] = m
	if _, ok := g.state[group]; !ok {
		g.state[group] = vrrp.StateInit
	}
}

func (g *groups) remove(group string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	for in := range g.members[group] {
		delete(g.groupOf, in)
	}
	delete(g.members, group)
	delete(g.state, group)
}

// Emit implements event.Sink.
func (g *groups) Emit(e event.Event) {
	if e.Kind != event.KindTransition || g.on == nil {
		return
	}
	g.mu.Lock()
	grp, ok := g.groupOf[e.Instance]
	if !ok {
		g.mu.Unlock()
		return
	}
	g.members[grp][e.Instance] = e.To
	from := g.state[grp]
	to := groupState(g.members[grp], from)
	if to == from {
		g.mu.Unlock()
		return
	}
	g.state[grp] = to
	g.mu.Unlock()
	g.on(GroupChange{Group: grp, From: from, To: to, Cause: e.ID, Time: e.Time})
}

func groupState(members map[string]vrrp.State, cur vrrp.State) vrrp.State {
	all := func(s vrrp.State) bool {
		for _, st := range members {
			if st != s {
				return false
			}
		}
		return true
	}
	for _, st := range members {
		if st == vrrp.StateFault {
			return vrrp.StateFault
		}
	}
	for _, s := range []vrrp.State{vrrp.StateMaster, vrrp.StateBackup, vrrp.StateStop} {
		if all(s) {
			return s
		}
	}
	return cur
}
