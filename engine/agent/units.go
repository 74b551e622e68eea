package agent

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net/netip"
	"reflect"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/keepwatch/keepwatch/engine/config"
	"github.com/keepwatch/keepwatch/engine/event"
	"github.com/keepwatch/keepwatch/engine/netif"
	"github.com/keepwatch/keepwatch/engine/track"
	"github.com/keepwatch/keepwatch/engine/vrrp"
	"github.com/keepwatch/keepwatch/engine/vrrp/router"
)

// unitPlan is one unit as the config wants it.
type unitPlan struct {
	name  string
	group string // the sync group; empty for a lone instance
	plans []*plan
}

// apply makes the running set match c, with a.seq held:
//
//   - an instance whose identity (name, VRID, interface, family, unicast or
//     multicast group, use_vmac) is unchanged keeps running and takes the
//     new config in place (router.Instance.Update): no state change, VIPs
//     kept, added and removed by difference;
//   - one whose identity changed is stopped, resigning with priority 0 if
//     master, and started again;
//   - a sync group runs as one unit: a change of its membership restarts
//     that group only;
//   - removed ones stop, new ones start; trackers and the load balancer
//     follow.
//
// What cannot start is recorded as failed (FAULT with its reason) and
// returned, wrapped in ErrPartial; everything else is applied. loaded is
// false when the running config is applied again to start what failed:
// then OnConfig and the load balancer are not told again.
func (a *Agent) apply(ctx context.Context, c *config.Config, loaded bool) error {
	want, failed := a.plan(c)
	if loaded && a.opts.OnConfig != nil {
		a.opts.OnConfig(c)
	}
	a.mu.Lock()
	if a.cfg == nil {
		// keepalived delays only its first start, not a reload
		// (vrrp_daemon.c start_vrrp: `if (!reload && vrrp_startup_delay)`).
		a.startupDelayEnd = time.Now().Add(c.Global.StartupDelay)
	}
	a.cfg = c
	a.logUnknownVRIDs.Store(c.Global.LogUnknownVRIDs)
	cur := maps.Clone(a.units)
	a.mu.Unlock()

	var stop []*unit
	var update []*unitPlan
	var start []*unitPlan
	wanted := map[string]bool{}
	for k := range want {
		up := &want[k]
		wanted[up.name] = true
		u, ok := cur[up.name]
		switch {
		case !ok:
			start = append(start, up)
		case sameIdentity(u, up):
			update = append(update, up)
		default:
			stop = append(stop, u)
			start = append(start, up)
		}
	}
	for name, u := range cur {
		if !wanted[name] {
			stop = append(stop, u)
		}
	}
	a.stopUnits(stop)
	a.syncStatic(c)

	var errs []error
	for _, up := range update {
		u := cur[up.name]
		err := a.updateUnit(ctx, u, up)
		switch {
		case err == nil:
		case ctx.Err() != nil:
			// The instance did not take the update in time (stuck in
			// netlink?): it keeps running its previous config, and the
			// reload is reported failed. Restarting it would wait for it too.
			errs = append(errs, fmt.Errorf("%s: not updated, still running the previous config: %w", up.name, err))
		default:
			// Not applicable in place after all: restart it.
			a.log.Warn("updating in place failed: restarting", "unit", up.name, "err", err)
			a.stopUnits([]*unit{u})
			start = append(start, up)
		}
	}

	a.mu.Lock()
	stale := a.syncTrackers(c)
	a.mu.Unlock()
	stopAll(stale)

	for _, up := range start {
		if err := a.startUnit(up); err != nil {
			for _, p := range up.plans {
				failed[p.key.name] = failureOf(p, up.group, err)
			}
		}
	}
	if loaded {
		a.syncd.Configure(c)
		a.syncBalancer(c)
	}
	if err := a.setFailed(failed); err != nil {
		errs = append(errs, err)
	} else if len(errs) > 0 {
		errs = []error{fmt.Errorf("%w: %w", ErrPartial, errors.Join(errs...))}
	}
	return errors.Join(errs...)
}

// plan builds every instance's plan and groups them into units (planUnits)
// with the platform's addresses.
func (a *Agent) plan(c *config.Config) ([]unitPlan, map[string]*failure) {
	// One lookup per interface and family, not per instance: each is a
	// dump of every address on the host, so 1,000 instances over two
	// interfaces made a reload O(instances × addresses) (2 s).
	type key struct {
		ifname string
		fam    vrrp.Family
	}
	type answer struct {
		addr netip.Addr
		err  error
	}
	seen := map[key]answer{}
	return planUnits(c, func(ifname string, fam vrrp.Family) (netip.Addr, error) {
		k := key{ifname, fam}
		if r, ok := seen[k]; ok {
			return r.addr, r.err
		}
		addr, err := a.plat.PrimaryAddress(ifname, fam == vrrp.IPv6)
		seen[k] = answer{addr, err}
		return addr, err
	})
}

// planUnits builds every instance's plan and groups them into units: each
// sync group with its members, then every other instance alone. An
// instance whose plan cannot be built fails, and with it its sync group.
func planUnits(c *config.Config, lookup AddrLookup) ([]unitPlan, map[string]*failure) {
	failed := map[string]*failure{}
	byName := map[string]*plan{}
	var order []*plan
	for i := range c.Instances {
		in := &c.Instances[i]
		p, err := buildPlan(c, in, lookup)
		if err != nil {
			reason := strings.TrimPrefix(err.Error(), "vrrp_instance "+in.Name+": ")
			failed[in.Name] = &failure{name: in.Name, vrid: in.VRID, ifname: in.Interface, family: vrrp.Family(in.Family()), reason: reason}
			continue
		}
		byName[in.Name] = p
		order = append(order, p)
	}
	var want []unitPlan
	grouped := map[string]bool{}
	for _, sg := range c.SyncGroups {
		up := unitPlan{name: "group:" + sg.Name, group: sg.Name}
		var bad []string
		for _, m := range sg.Members {
			if grouped[m] {
				continue
			}
			grouped[m] = true
			if p, ok := byName[m]; ok {
				up.plans = append(up.plans, p)
			} else if f, ok := failed[m]; ok {
				f.syncGroup = sg.Name
				bad = append(bad, m)
			}
		}
		if len(bad) > 0 {
			// The members go MASTER together or not at all (reference
			// §1.4): without one, the group does not start.
			for _, p := range up.plans {
				failed[p.key.name] = failureOf(p, sg.Name, fmt.Errorf("vrrp_sync_group %s: member %s failed", sg.Name, strings.Join(bad, ", ")))
			}
			continue
		}
		if len(up.plans) > 0 {
			want = append(want, up)
		}
	}
	for _, p := range order {
		if !grouped[p.key.name] {
			want = append(want, unitPlan{name: "instance:" + p.key.name, plans: []*plan{p}})
		}
	}
	return want, failed
}

func failureOf(p *plan, group string, err error) *failure {
	return &failure{name: p.key.name, vrid: int(p.key.vrid), ifname: p.key.ifname, family: p.router.FSM.Family, syncGroup: group, reason: err.Error()}
}

// setFailed records the instances that could not start: each newly failed
// one is reported as a transition to FAULT (so metrics and notify see it),
// each that is no longer failing is forgotten. It returns them as one error.
func (a *Agent) setFailed(failed map[string]*failure) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	var errs []error
	names := make([]string, 0, len(failed))
	for name := range failed {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		f := failed[name]
		errs = append(errs, fmt.Errorf("vrrp_instance %s: %s", name, f.reason))
		if old, ok := a.failed[name]; ok && old.reason == f.reason {
			continue
		}
		a.log.Error("instance cannot start: FAULT", "vrrp_instance", name, "vrid", f.vrid, "interface", f.ifname, "reason", f.reason)
		if _, ok := a.failed[name]; !ok {
			a.sink.Emit(event.Event{Kind: event.KindTransition, ID: event.NewID(), Time: time.Now(), Instance: name,
				VRID: uint8(f.vrid), Interface: f.ifname, Family: f.family, From: vrrp.StateInit, To: vrrp.StateFault, Reason: event.ReasonFault})
		}
	}
	a.failed = failed
	if len(errs) == 0 {
		return nil
	}
	return fmt.Errorf("%w: %w", ErrPartial, errors.Join(errs...))
}

// sameIdentity reports whether u can take up's config in place: the same
// members, each with the same identity (instanceKey: name, VRID, family,
// interface, unicast), the same use_vmac and sending interface, and the
// same multicast group (its socket joined it).
func sameIdentity(u *unit, up *unitPlan) bool {
	if len(u.members) != len(up.plans) {
		return false
	}
	for k, p := range up.plans {
		o := u.members[k].plan
		if o.key != p.key || o.router.Receive.Group != p.router.Receive.Group || o.router.FSM.Interface != p.router.FSM.Interface ||
			(o.vmac == nil) != (p.vmac == nil) || o.vmac != nil && !reflect.DeepEqual(*o.vmac, *p.vmac) {
			return false
		}
	}
	return true
}

// updateUnit hands a running unit its new config, then its members their
// effective priorities under the new base and trackers.
func (a *Agent) updateUnit(ctx context.Context, u *unit, up *unitPlan) error {
	changed := false
	for k, p := range up.plans {
		changed = changed || !equalRouter(u.members[k].plan.router, p.router)
	}
	if changed {
		// The instance keeps the new plans' configs as they are (router.Member):
		// a plan is not written once built.
		cfgs := make([]*router.Config, len(up.plans))
		for k, p := range up.plans {
			cfgs[k] = &p.router
		}
		if err := u.inst.Update(ctx, cfgs); err != nil {
			return err
		}
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	for k, p := range up.plans {
		r := u.members[k]
		old := r.plan
		r.plan = p
		if old.router.FSM.Priority != p.router.FSM.Priority || !equalRefs(old.refs, p.refs) {
			r.set = a.newSet(p)
			a.pushPriority(r, 0)
		}
	}
	return nil
}

// newSet is the tracker set of p with every tracker state known; mu held.
func (a *Agent) newSet(p *plan) *track.Set {
	s := track.NewSet(p.router.FSM.Priority, p.refs)
	for k, st := range a.states {
		s.Update(k.kind, k.name, st)
	}
	return s
}

// startUnit creates the unit's VMACs and sockets and starts its instance.
func (a *Agent) startUnit(up *unitPlan) error {
	var members []router.Member
	var socks []sockKey
	var vmacs []netif.VMAC
	undo := func() {
		a.releaseSockets(socks)
		for _, v := range vmacs {
			_ = a.plat.RemoveVMAC(v)
		}
	}
	for _, p := range up.plans {
		if p.vmac != nil {
			if err := a.plat.AddVMAC(*p.vmac); err != nil {
				undo()
				return fmt.Errorf("use_vmac %s: %w", p.vmac.LinkName(), err)
			}
			vmacs = append(vmacs, *p.vmac)
		}
		conn, err := a.instanceConn(p)
		if err != nil {
			undo()
			return err
		}
		socks = append(socks, sockKeys(p)...)
		// The member shares the plan's config instead of a copy of it (488
		// bytes per instance): the plan is not written once built, and
		// reload compares the next plan with it (updateUnit).
		members = append(members, router.Member{Config: &p.router, Conn: conn,
			StartupDelay: max(time.Until(a.startupDelayEnd), 0)})
	}
	// The scheduler of the socket the first member sends on: a sync
	// group's members on other sockets send there directly.
	var sched *router.Scheduler
	if len(up.plans) > 0 {
		sched = a.scheduler(sockKeys(up.plans[0])[0])
	}
	inst, err := router.NewGroup(up.name, members, router.Deps{Addrs: a.addrs, Announcer: a.plat, Sink: a.sink, Log: a.log, Sched: sched})
	if err != nil {
		undo()
		return err
	}
	u := &unit{name: up.name, inst: inst}
	for _, p := range up.plans {
		if ifname := p.promoteIface(); ifname != "" {
			a.promoted.add(a, ifname)
			u.promoted = append(u.promoted, ifname)
		}
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	for k, p := range up.plans {
		r := &running{unit: u, idx: k, plan: p, lastPrio: p.router.FSM.Priority}
		r.set = a.newSet(p)
		u.members = append(u.members, r)
	}
	a.units[up.name] = u
	if up.group != "" {
		var names []string
		for _, p := range up.plans {
			names = append(names, p.key.name)
		}
		a.groups.set(up.group, names)
	}
	u.task = instanceTask(up.name, inst)
	for _, r := range u.members {
		a.pushPriority(r, 0)
	}
	return nil
}

// stopUnits stops units in parallel (masters resign with priority 0 and
// remove their VIPs), then forgets them and releases their sockets and VMACs.
func (a *Agent) stopUnits(us []*unit) {
	if len(us) == 0 {
		return
	}
	ts := make([]*task, len(us))
	for k, u := range us {
		ts[k] = u.task
	}
	stopAll(ts)
	var socks []sockKey
	var vmacs []netif.VMAC
	a.mu.Lock()
	for _, u := range us {
		delete(a.units, u.name)
		if strings.HasPrefix(u.name, "group:") {
			a.groups.remove(strings.TrimPrefix(u.name, "group:"))
		}
		for _, r := range u.members {
			socks = append(socks, sockKeys(r.plan)...)
			if r.plan.vmac != nil {
				vmacs = append(vmacs, *r.plan.vmac)
			}
		}
	}
	a.mu.Unlock()
	for _, u := range us {
		for _, ifname := range u.promoted {
			a.promoted.release(a, ifname)
		}
	}
	a.releaseSockets(socks)
	for _, v := range vmacs {
		if err := a.plat.RemoveVMAC(v); err != nil {
			a.log.Warn("removing VMAC", "interface", v.LinkName(), "err", err)
		}
	}
}

// secondaryPromoter is the part of a platform that sets an interface's
// promote_secondaries (netif.System); a platform without it does not.
type secondaryPromoter interface {
	PromoteSecondaries(ifname string) (set bool, err error)
	ResetPromoteSecondaries(ifname string) error
}

// The host's platform must have it, or promote_secondaries would be a
// silent no-op.
var _ secondaryPromoter = (*netif.Host)(nil)

// promotions counts the running instances with promote_secondaries per
// interface, as keepalived does (vrrp_if_config.c: reset_promote_secondaries
// counts): the first sets the sysctl, the last one to stop writes 0 back,
// and only if keepwatch was the one that set it.
type promotions struct {
	mu    sync.Mutex
	count map[string]int
	set   map[string]bool
}

func (p *promotions) add(a *Agent, ifname string) {
	ps, ok := a.plat.(secondaryPromoter)
	if !ok {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.count == nil {
		p.count, p.set = map[string]int{}, map[string]bool{}
	}
	if p.count[ifname]++; p.count[ifname] > 1 {
		return
	}
	set, err := ps.PromoteSecondaries(ifname)
	if err != nil {
		a.log.Warn("promote_secondaries not set: removing the primary address will remove the VIPs of its subnet", "interface", ifname, "err", err)
	}
	p.set[ifname] = set
}

func (p *promotions) release(a *Agent, ifname string) {
	ps, ok := a.plat.(secondaryPromoter)
	if !ok {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.count[ifname] == 0 {
		return
	}
	if p.count[ifname]--; p.count[ifname] > 0 {
		return
	}
	delete(p.count, ifname)
	if p.set[ifname] {
		if err := ps.ResetPromoteSecondaries(ifname); err != nil {
			a.log.Warn("resetting promote_secondaries", "interface", ifname, "err", err)
		}
	}
	delete(p.set, ifname)
}
