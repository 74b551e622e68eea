package router

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"time"

	"github.com/keepwatch/keepwatch/engine/event"
	"github.com/keepwatch/keepwatch/engine/netif"
	"github.com/keepwatch/keepwatch/engine/vrrp"
	"github.com/keepwatch/keepwatch/engine/vrrp/fsm"
)

// The agent's calls into a running instance. None of them waits on the
// instance's lock from the caller's side for long: SetPriority and SetFault
// never block (the latest value wins, which is all a priority or a fault
// flag needs), and Update waits only for its own turn on the instance's
// worker, bounded by its context.

// ErrStopped is returned by Update once the instance has stopped.
var ErrStopped = errors.New("router: instance stopped")

// pending is what the agent set for one member and the instance's
// worker has not stepped yet.
type pending struct {
	prio, fault         bool // set
	priority            int
	faulted             bool
	prioCause, fltCause uint64
}

type updateReq struct {
	cfgs []*Config
	err  chan error
}

// SetPriority hands member its new effective priority from its trackers;
// cause is the event ID of the tracker change. It never blocks: a later
// call before the instance has stepped the earlier one replaces it.
func (i *Instance) SetPriority(member, p int, cause uint64) {
	i.boxMu.Lock()
	if member >= 0 && member < len(i.box) {
		i.box[member].prio, i.box[member].priority, i.box[member].prioCause = true, p, cause
	}
	i.boxMu.Unlock()
	i.wake()
}

// SetFault puts member in FAULT (an interface or weight-0 tracker is down)
// or takes it out. It never blocks; the latest call wins.
func (i *Instance) SetFault(member int, fault bool, cause uint64) {
	i.boxMu.Lock()
	if member >= 0 && member < len(i.box) {
		i.box[member].fault, i.box[member].faulted, i.box[member].fltCause = true, fault, cause
	}
	i.boxMu.Unlock()
	i.wake()
}

func (i *Instance) wake() { i.signal(wakeKick) }

// applyPending steps what SetPriority and SetFault left; on the worker.
func (i *Instance) applyPending() {
	i.boxMu.Lock()
	box := slices.Clone(i.box)
	clear(i.box)
	i.boxMu.Unlock()
	i.mu.Lock()
	defer i.mu.Unlock()
	for k, p := range box {
		if p.prio {
			i.cause = p.prioCause
			i.ms[k].prioCause, i.ms[k].prioAt = p.prioCause, time.Now()
			i.step(i.now(), k, fsm.Input{Kind: fsm.InputPriority, Priority: p.priority})
		}
		if p.fault {
			i.cause = p.fltCause
			in := fsm.Input{Kind: fsm.InputFaultCleared}
			if p.faulted {
				in.Kind = fsm.InputFault
			}
			i.step(i.now(), k, in)
		}
	}
	i.arm(false)
}

// Update applies a reloaded config to the running instance, one Config per
// member in NewGroup's order (kept, not copied, as NewGroup's), without a state change: a master stays master
// and keeps its VIPs, a backup keeps following its master. The members'
// identity (name, VRID, interface, family) must not change; for that the
// caller restarts the instance. What changes:
//
//   - priority, advert interval, preemption, GARP schedule: fsm.Reconfigure.
//   - VIPs, excluded VIPs, virtual routes and rules: a master removes the
//     ones no longer configured and adds the new ones, then announces the
//     added addresses (gratuitous ARP / unsolicited NA, the takeover's
//     garp_master_repeat, RFC 9568 §6.4.2's announcement for addresses it
//     now answers for); the addresses it keeps are not touched.
//   - the advert itself (version, address list, interval, authentication),
//     its destinations (unicast peers) and the receive checks: from the
//     next advert sent or received.
//
// Update runs on the instance's worker and returns once it is applied,
// or with ctx's error, or ErrStopped. An invalid config is rejected whole
// and changes nothing.
func (i *Instance) Update(ctx context.Context, cfgs []*Config) error {
	r := &updateReq{cfgs: cfgs, err: make(chan error, 1)}
	i.boxMu.Lock()
	i.upds = append(i.upds, r)
	i.boxMu.Unlock()
	i.wake()
	var err error
	select {
	case err := <-r.err:
		return err
	case <-ctx.Done():
		err = ctx.Err()
	case <-i.exited:
		err = ErrStopped
	}
	// Withdrawn if the worker has not taken it: then nothing of it was
	// applied. Taken, it is being applied and answered (onKick), also when
	// the instance is about to stop.
	i.boxMu.Lock()
	k := slices.Index(i.upds, r)
	if k >= 0 {
		i.upds = slices.Delete(i.upds, k, k+1)
	}
	i.boxMu.Unlock()
	if k < 0 {
		return <-r.err
	}
	return err
}

// update is Update on the worker.
func (i *Instance) update(cfgs []*Config) error {
	if len(cfgs) != len(i.ms) {
		return fmt.Errorf("router: %s: update has %d members, the instance %d", i.name, len(cfgs), len(i.ms))
	}
	for k, cfg := range cfgs {
		if cfg == nil {
			return fmt.Errorf("router: %s: update has no config for member %d", i.name, k)
		}
		old := &i.ms[k].cfg.FSM
		if cfg.FSM.Name != old.Name || cfg.FSM.VRID != old.VRID || cfg.FSM.Interface != old.Interface || cfg.FSM.Family != old.Family {
			return fmt.Errorf("router: vrrp_instance %s: identity changed: restart it instead", old.Name)
		}
		if _, err := fsm.New(cfg.FSM); err != nil { // validates, changes nothing
			return err
		}
		if len(cfg.Dsts) == 0 {
			return fmt.Errorf("router: vrrp_instance %s: no advert destination", cfg.FSM.Name)
		}
		var adv vrrp.Advertisement
		if err := adv.SetInterval(cfg.FSM.AdvertInterval); err != nil {
			return fmt.Errorf("router: vrrp_instance %s: %w", cfg.FSM.Name, err)
		}
	}
	i.mu.Lock()
	defer i.mu.Unlock()
	i.cause = 0
	i.lastTime = time.Now()
	now := i.now()
	for k, cfg := range cfgs {
		me := i.ms[k]
		if err := me.m.Reconfigure(now, cfg.FSM); err != nil {
			return err // validated above; cannot happen
		}
		me.reconfigure(cfg)
	}
	// Fire whatever the new timers made due, and re-arm.
	i.step(now, -1, fsm.Input{Kind: fsm.InputTick})
	i.arm(true)
	return nil
}

// reconfigure takes cfg as the member's config; the machine has it already.
// mu held.
// Like NewGroup's, cfg is kept, not copied; oldUnicastChecksum, learnt
// from the peer rather than configured, stays as it was.
func (me *member) reconfigure(cfg *Config) {
	old := me.cfg
	if me.held {
		me.moveHeld(old, cfg)
	}
	me.cfg = cfg
	me.vipIPs = me.vipIPs[:0]
	for _, a := range cfg.VIPs {
		me.vipIPs = append(me.vipIPs, a.Prefix.Addr())
	}
	me.adv.Version = vrrp.Version(cfg.FSM.Version)
	me.adv.AuthType, me.adv.AuthData = advertAuth(cfg)
	me.adv.Addresses = me.vipIPs
	_ = me.adv.SetInterval(cfg.FSM.AdvertInterval) // checked by update
	if need := len(cfg.VIPs) + 4; cap(me.rxAdv.Addresses) < need {
		me.rxAdv.Addresses = make([]netip.Addr, 0, need)
	}
	me.inst.snapMu.Lock()
	me.snap.AdvertInterval = cfg.FSM.AdvertInterval
	me.inst.snapMu.Unlock()
}

// moveHeld makes what a master holds match cfg: removed rules, routes and
// addresses go first, then the new ones are added and announced. What both
// configs hold stays installed throughout.
func (me *member) moveHeld(old, cfg *Config) {
	addrs := me.inst.deps.Addrs
	oldAddrs := append(slices.Clone(old.VIPs), old.ExcludedVIPs...)
	newAddrs := append(slices.Clone(cfg.VIPs), cfg.ExcludedVIPs...)
	for _, r := range old.Rules {
		if !slices.Contains(cfg.Rules, r) {
			if err := addrs.RemoveRule(r); err != nil {
				me.log.Error("removing virtual rule", "rule", r.String(), "err", err)
			}
		}
	}
	for _, r := range old.Routes {
		if !slices.Contains(cfg.Routes, r) {
			if err := addrs.RemoveRoute(r); err != nil {
				me.log.Error("removing virtual route", "route", r.String(), "err", err)
			}
		}
	}
	for _, a := range oldAddrs {
		if slices.Contains(newAddrs, a) {
			continue
		}
		if err := addrs.RemoveAddress(a); err != nil {
			me.log.Error("removing VIP", "address", a.Prefix, "err", err)
			continue
		}
		me.emit(event.Event{Kind: event.KindVIPRemoved, Addr: a.Prefix.Addr()})
	}
	var added []netif.Address
	for _, a := range newAddrs {
		if slices.Contains(oldAddrs, a) {
			continue
		}
		if err := addrs.AddAddress(a); err != nil {
			me.log.Error("adding VIP", "address", a.Prefix, "err", err)
			continue
		}
		me.emit(event.Event{Kind: event.KindVIPAdded, Addr: a.Prefix.Addr()})
		added = append(added, a)
	}
	for _, r := range cfg.Routes {
		if !slices.Contains(old.Routes, r) {
			if err := addrs.AddRoute(r); err != nil {
				me.log.Error("adding virtual route", "route", r.String(), "err", err)
			}
		}
	}
	for _, r := range cfg.Rules {
		if !slices.Contains(old.Rules, r) {
			if err := addrs.AddRule(r); err != nil {
				me.log.Error("adding virtual rule", "rule", r.String(), "err", err)
			}
		}
	}
	me.announce(added, cfg.FSM.GARP.MasterRepeat, cfg.FSM.Interface)
}

// announce sends count rounds of one gratuitous ARP / NA for each of addrs,
// back to back: a reload adds a few addresses, and the spaced takeover
// schedule (vrrp_garp_interval) belongs to the takeover burst.
func (me *member) announce(addrs []netif.Address, count int, ifdefault string) {
	an := me.inst.deps.Announcer
	if an == nil {
		return
	}
	for range count {
		for _, a := range addrs {
			ifname := a.Dev
			if ifname == "" {
				ifname = ifdefault
			}
			if err := an.Announce(ifname, a.Prefix.Addr()); err != nil {
				me.log.Warn("gratuitous announcement", "address", a.Prefix.Addr(), "err", err)
				continue
			}
			me.emit(event.Event{Kind: event.KindGratuitousSent, Addr: a.Prefix.Addr(), Interface: ifname})
		}
	}
}
