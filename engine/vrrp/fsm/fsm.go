package fsm

import (
	"net/netip"
	"time"

	"github.com/keepwatch/keepwatch/engine/event"
	"github.com/keepwatch/keepwatch/engine/vrrp"
)

// ownerPriority is the priority of the router that owns the virtual
// addresses (RFC 9568 §6.1).
const ownerPriority = 255

// timer is one deadline; a Machine has a handful and reports the earliest.
type timer struct {
	at time.Duration
	on bool
}

func (t *timer) set(at time.Duration) { t.at, t.on = at, true }
func (t *timer) stop()                { t.on = false }
func (t *timer) due(now time.Duration) bool {
	return t.on && t.at <= now
}

// Machine is the state machine of one VRRP instance. It never reads a clock
// and does no I/O: the driver (engine/vrrp/router, which serialises an
// instance's steps under one lock) calls Step with the monotonic time and an
// input, performs the returned actions in order, and arms a single timer for
// NextDeadline. A Machine is not safe for concurrent use.
type Machine struct {
	cfg   Config
	state vrrp.State

	base int // base priority; lowered to 254 only by an owner conflict
	prio int // effective priority

	// masterAdverInt is Master_Adver_Interval: v3 backups adopt the
	// master's (RFC 9568 §6.4.2); v2 and masters use their own.
	masterAdverInt time.Duration

	ownFault   bool // our interface or a weight-0 tracker is down
	groupFault bool // another sync-group member is in FAULT
	grouped    bool // a Group decides when we become MASTER

	// wantMaster: in a sync group, our down timer expired but the group has
	// not yet agreed (keepalived's wantstate, reference §1.4).
	wantMaster bool
	wantReason event.Reason
	wantSince  time.Duration

	// downReason is reported when the down timer fires: master_down,
	// priority_zero (after a resignation) or preempted (after discarding a
	// lower priority).
	downReason event.Reason

	// The master we hear, while BACKUP.
	master     netip.Addr
	masterPrio int

	// preemptUntil: while a preempt_delay runs, a lower-priority master is
	// still accepted (reference §2.5).
	preemptUntil timer

	// delayUntil ends vrrp_startup_delay (Config.StartupDelay): before it
	// adverts are discarded and no down timer runs out.
	delayUntil time.Duration

	main      timer // Master_Down_Timer (BACKUP) or Adver_Timer (MASTER)
	garpDelay timer // second takeover burst
	garpRefr  timer // periodic refresh
	garpLower timer // second lower-priority burst

	// acts is the result of the last Step. An Action is ~330 bytes (it
	// carries an event.Event) and a transition emits several, but the
	// steady state emits at most one per Step (the master's advert; a
	// backup hearing its master emits none): so the slice grows on demand,
	// and a buffer a transition grew past keptActs is let go at the next
	// Step rather than kept for the instance's life (issue 12: 16
	// preallocated Actions were 5 KiB per instance, 1.3 MiB at 250).
	acts []Action
}

// keptActs is the capacity of the action buffer a Machine keeps between
// Steps: enough for the steady state to Step without allocating. One: a
// master's Step that also fires a GARP burst (garp_master_delay 5 s after
// the takeover, or each garp_master_refresh) emits two, and with 2 kept
// every master held that second Action (352 bytes) for life (issue 12);
// now the next advert's Step allocates one Action again.
const keptActs = 1

// New returns a machine in INIT; Step it with InputStart.
func New(cfg Config) (*Machine, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if cfg.DownTimerAdverts == 0 {
		cfg.DownTimerAdverts = 3
	}
	if cfg.GARP.MasterRefresh > 0 && cfg.GARP.MasterRefreshRepeat == 0 {
		cfg.GARP.MasterRefresh = 0
	}
	return &Machine{
		cfg:            cfg,
		base:           cfg.Priority,
		prio:           cfg.Priority,
		masterAdverInt: cfg.AdvertInterval,
		downReason:     event.ReasonMasterDown,
	}, nil
}

// Config returns the configuration the machine runs with (defaults filled in).
func (m *Machine) Config() Config { return m.cfg }

// State is the current state.
func (m *Machine) State() vrrp.State { return m.state }

// Priority is the effective priority.
func (m *Machine) Priority() int { return m.prio }

// BasePriority is the configured priority, unless an owner conflict lowered it.
func (m *Machine) BasePriority() int { return m.base }

// Master is the master heard while BACKUP and its priority; the address is
// invalid when none has been heard since the last transition.
func (m *Machine) Master() (netip.Addr, int) { return m.master, m.masterPrio }

// MasterAdverInterval is Master_Adver_Interval.
func (m *Machine) MasterAdverInterval() time.Duration { return m.masterAdverInt }

// Skew is Skew_Time at the current priority: v2 (256-Priority)/256 s
// (RFC 3768 §6.1), v3 ((256-Priority)*Master_Adver_Interval)/256 (RFC 9568
// §6.1). At priority 255 that is the owner's 1/256 (of a second in v2, of
// the interval in v3).
func (m *Machine) Skew() time.Duration {
	if m.cfg.Version == 2 {
		return time.Duration(256-m.prio) * time.Second / 256
	}
	return time.Duration(256-m.prio) * m.masterAdverInt / 256
}

// MasterDownInterval is down_timer_adverts × Master_Adver_Interval + Skew
// (RFC 9568 §6.1 with keepalived's configurable 3, reference §2.4).
func (m *Machine) MasterDownInterval() time.Duration {
	return time.Duration(m.cfg.DownTimerAdverts)*m.masterAdverInt + m.Skew()
}

// WantMaster reports that, in a sync group, the instance's down timer has
// expired and it is waiting for the other members.
func (m *Machine) WantMaster() bool { return m.wantMaster }

// NextDeadline is when the driver must Step next even without input; false
// when no timer runs.
func (m *Machine) NextDeadline() (time.Duration, bool) {
	var at time.Duration
	ok := false
	for _, t := range [...]*timer{&m.main, &m.garpDelay, &m.garpRefr, &m.garpLower} {
		if t.on && (!ok || t.at < at) {
			at, ok = t.at, true
		}
	}
	return at, ok
}

// Step advances the machine to now, firing due timers first, then handles in.
// The returned actions are valid until the next Step. now must not go back.
func (m *Machine) Step(now time.Duration, in Input) []Action {
	if cap(m.acts) > keptActs {
		m.acts = nil // the caller is done with the last result
	}
	m.acts = m.acts[:0]
	m.fire(now)
	switch in.Kind {
	case InputTick:
	case InputStart:
		m.start(now)
	case InputAdvert:
		m.advert(now, &in.Advert)
	case InputPriority:
		m.setPriority(in.Priority)
	case InputFault:
		m.ownFault = true
		m.enterFault(event.ReasonFault)
	case InputFaultCleared:
		m.ownFault = false
		m.leaveFault(now, event.ReasonFaultCleared)
	case InputShutdown:
		m.shutdown()
	case InputSyncMaster:
		if m.state == vrrp.StateBackup {
			r := in.Reason
			if r == "" {
				r = event.ReasonSyncGroup
			}
			m.becomeMaster(now, r)
		}
	case InputSyncBackup:
		if m.state == vrrp.StateMaster {
			m.leaveMaster()
			m.becomeBackup(now, event.ReasonSyncGroup)
		}
	case InputSyncFault:
		m.groupFault = true
		m.enterFault(event.ReasonSyncGroup)
	case InputSyncLowerPrio:
		m.lowerPrioGratuitous(now)
	case InputSyncFaultCleared:
		m.groupFault = false
		m.leaveFault(now, event.ReasonSyncGroup)
	}
	return m.acts
}

// fire runs every timer due at or before now, earliest first. Each handler
// moves its timer past now or stops it, so the loop ends.
func (m *Machine) fire(now time.Duration) {
	for {
		var t *timer
		for _, c := range [...]*timer{&m.main, &m.garpDelay, &m.garpRefr, &m.garpLower} {
			if c.due(now) && (t == nil || c.at < t.at) {
				t = c
			}
		}
		if t == nil {
			return
		}
		at := t.at
		switch t {
		case &m.main:
			if m.state == vrrp.StateMaster {
				m.tickMaster(at, now)
			} else {
				m.tickBackup(at)
			}
		case &m.garpDelay:
			m.garpDelay.stop()
			m.gratuitous(m.cfg.GARP.MasterRepeat)
		case &m.garpRefr:
			m.garpRefr.set(periodic(at, now, m.cfg.GARP.MasterRefresh))
			m.gratuitous(m.cfg.GARP.MasterRefreshRepeat)
		case &m.garpLower:
			m.garpLower.stop()
			m.gratuitous(m.cfg.GARP.LowerPrioRepeat)
		}
	}
}

func (m *Machine) start(now time.Duration) {
	if m.state != vrrp.StateInit {
		return
	}
	m.delayUntil = now + m.cfg.StartupDelay
	// Every instance enters BACKUP first (or FAULT), even with state
	// MASTER: keepalived notifies BACKUP at startup (reference §2.4).
	if m.ownFault || m.groupFault {
		m.transition(vrrp.StateFault, event.ReasonFault)
		return
	}
	m.becomeBackup(now, event.ReasonStartup)
	m.ownerTakeover(now)
}

// ownerTakeover: only state MASTER together with priority 255 skips the
// down timer (keepalived vrrp_scheduler.c, reference §2.4; RFC 9568 §6.4.1
// lets any owner do so).
func (m *Machine) ownerTakeover(now time.Duration) {
	if m.cfg.InitialState == vrrp.StateMaster && m.base == ownerPriority {
		if now < m.delayUntil {
			// keepalived arms the owner's 1 µs down timer from the delayed
			// start time (vrrp_scheduler.c vrrp_init_instance_sands).
			m.main.set(m.delayUntil)
			m.downReason = event.ReasonOwner
			return
		}
		m.masterDown(now, event.ReasonOwner)
	}
}

// becomeBackup enters BACKUP and starts Master_Down_Timer (RFC 9568 §6.4.1).
func (m *Machine) becomeBackup(now time.Duration, reason event.Reason) {
	m.wantMaster = false
	m.preemptUntil.stop()
	m.downReason = event.ReasonMasterDown
	m.main.set(max(now, m.delayUntil) + m.MasterDownInterval())
	m.transition(vrrp.StateBackup, reason)
}

// tickBackup: Master_Down_Timer fired (RFC 9568 §6.4.2).
func (m *Machine) tickBackup(at time.Duration) {
	m.main.stop()
	if m.state != vrrp.StateBackup {
		return
	}
	m.masterDown(at, m.downReason)
}

// masterDown takes over, unless a sync group must agree first.
func (m *Machine) masterDown(now time.Duration, reason event.Reason) {
	if m.grouped {
		// keepalived re-arms the down timer and waits for every member
		// (vrrp_sync_can_goto_master, reference §1.4).
		if !m.wantMaster {
			m.wantMaster, m.wantReason, m.wantSince = true, reason, now
		}
		m.main.set(now + m.MasterDownInterval())
		return
	}
	m.becomeMaster(now, reason)
}

// becomeMaster takes over in keepalived's order (reference §2.6): the advert
// first so the old master releases, then the VIPs, then the gratuitous burst.
func (m *Machine) becomeMaster(now time.Duration, reason event.Reason) {
	m.wantMaster = false
	m.preemptUntil.stop()
	m.masterAdverInt = m.cfg.AdvertInterval // RFC 9568 §6.4.2: ours from now on
	m.master, m.masterPrio = netip.Addr{}, 0
	m.sendAdvert(m.prio)
	m.do(Action{Kind: ActionAddVIPs})
	g := m.cfg.GARP
	if g.MasterRepeat > 0 {
		m.gratuitous(g.MasterRepeat)
		if g.MasterDelay > 0 {
			m.garpDelay.set(now + g.MasterDelay)
		}
	}
	if g.MasterRefresh > 0 {
		m.garpRefr.set(now + g.MasterRefresh)
	}
	m.main.set(now + m.cfg.AdvertInterval)
	m.transition(vrrp.StateMaster, reason)
}

// tickMaster: Adver_Timer fired; advertise at our own interval (RFC 9568 §6.4.3).
func (m *Machine) tickMaster(at, now time.Duration) {
	m.sendAdvert(m.prio)
	m.main.set(periodic(at, now, m.cfg.AdvertInterval))
}

// periodic is the next deadline of a timer that was due at at: on the same
// grid when the driver is on time, else one period from now, so a driver that
// wakes late gets one advert, not a burst.
func periodic(at, now, period time.Duration) time.Duration {
	if next := at + period; next > now {
		return next
	}
	return now + period
}

// leaveMaster stops what only a master does and removes the VIPs.
func (m *Machine) leaveMaster() {
	m.main.stop()
	m.garpDelay.stop()
	m.garpRefr.stop()
	m.garpLower.stop()
	m.do(Action{Kind: ActionRemoveVIPs})
}

func (m *Machine) advert(now time.Duration, a *Advert) {
	if a.AddrMismatch && m.cfg.RejectAddressMismatch {
		return
	}
	if m.cfg.OwnerIgnoreAdverts && m.base == ownerPriority {
		return
	}
	if now < m.delayUntil {
		return // vrrp_startup_delay: every packet is discarded (reference §2.1)
	}
	switch m.state {
	case vrrp.StateBackup:
		m.stepBackup(now, a)
	case vrrp.StateMaster:
		m.stepMaster(now, a)
	}
	// INIT, FAULT, STOP: ignored; the driver counts it as dropped (state).
}

// stepBackup follows keepalived's vrrp_state_backup (reference §2.4, §2.5),
// which is RFC 9568 §6.4.2 plus nopreempt and preempt_delay.
func (m *Machine) stepBackup(now time.Duration, a *Advert) {
	if a.Priority == 0 {
		// The master resigned: take over after Skew_Time only.
		m.main.set(now + m.Skew())
		m.downReason = event.ReasonPriorityZero
		return
	}
	accept := m.cfg.NoPreempt || a.Priority >= m.prio
	if !accept && m.cfg.PreemptDelay > 0 {
		// The first lower-priority advert starts preempt_delay; until it
		// runs out we keep following that master.
		if !m.preemptUntil.on {
			m.preemptUntil.set(now + m.cfg.PreemptDelay)
		}
		accept = now < m.preemptUntil.at
	} else if accept {
		m.preemptUntil.stop()
	}
	if !accept {
		// Lower priority and we preempt: discard, and leave the down timer
		// running so it expires and we take over.
		m.downReason = event.ReasonPreempted
		return
	}
	if m.cfg.Version == 3 && a.Interval > 0 {
		m.masterAdverInt = a.Interval
	}
	m.wantMaster = false
	m.downReason = event.ReasonMasterDown
	m.main.set(now + m.MasterDownInterval())
	m.notePeer(a)
}

// stepMaster follows keepalived's vrrp_state_master_rx (reference §2.4),
// which is RFC 9568 §6.4.3 plus the answer to a lower priority.
func (m *Machine) stepMaster(now time.Duration, a *Advert) {
	if a.Src == m.cfg.Addr {
		return // our own advert looped back; the driver should filter it
	}
	if a.Priority == 0 {
		// A resigning peer: advertise at once so backups see us.
		m.sendAdvert(m.prio)
		m.main.set(now + m.cfg.AdvertInterval)
		return
	}
	if a.Priority == ownerPriority && m.base == ownerPriority {
		// Two owners. We follow keepalived 2.2.7: the master that hears
		// another 255 lowers its own base and effective priority to 254,
		// and so yields below. (2.3.3+ first lets the address tie-break
		// decide and only lowers after a grace period; owner_ignore_adverts
		// gives RFC behaviour.)
		m.base, m.prio = ownerPriority-1, ownerPriority-1
	}
	if a.Priority > m.prio || (a.Priority == m.prio && a.Src.Compare(m.cfg.Addr) > 0) {
		// Yield: no priority-0 advert, the new master is already there.
		if m.cfg.HigherPrioSendAdvert {
			m.sendAdvert(m.prio)
		}
		m.leaveMaster()
		if m.cfg.Version == 3 && a.Interval > 0 {
			m.masterAdverInt = a.Interval
		}
		m.becomeBackup(now, event.ReasonPriority)
		m.notePeer(a)
		return
	}
	// Lower priority (or equal with a lower address): keepalived forces a
	// new election with an immediate advert and re-announces the VIPs.
	if !m.cfg.LowerPrioNoAdvert {
		m.sendAdvert(m.prio)
	}
	m.lowerPrioGratuitous(now)
	m.do(Action{Kind: ActionNotifyLowerPrio, Priority: a.Priority})
	// keepalived's send_event_notify (vrrp_notify.c): the
	// notify_master_rx_lower_pri script and a MASTER_RX_LOWER_PRI FIFO line
	// carrying our effective priority.
	e := m.event(event.KindMasterRxLowerPri)
	e.Value, e.Addr = int64(a.Priority), a.Src
	m.do(Action{Kind: ActionEvent, Event: e})
}

// lowerPrioGratuitous re-announces the VIPs after hearing a lower priority:
// a burst now and another after garp_lower_prio_delay (reference §2.4).
func (m *Machine) lowerPrioGratuitous(now time.Duration) {
	if g := m.cfg.GARP; m.state == vrrp.StateMaster && g.LowerPrioRepeat > 0 {
		m.gratuitous(g.LowerPrioRepeat)
		if g.LowerPrioDelay > 0 {
			m.garpLower.set(now + g.LowerPrioDelay)
		}
	}
}

// notePeer records the master we follow and reports a change.
func (m *Machine) notePeer(a *Advert) {
	if a.Src == m.master && a.Priority == m.masterPrio {
		return
	}
	m.master, m.masterPrio = a.Src, a.Priority
	e := m.event(event.KindPeerMaster)
	e.Addr, e.Priority = a.Src, a.Priority
	m.do(Action{Kind: ActionEvent, Event: e})
}

// setPriority applies a new effective priority. A base of 255 is never
// changed, and nothing else reaches 255 (reference §1.5). A master's next
// advert carries it; a backup's running down timer is left alone.
func (m *Machine) setPriority(p int) {
	if m.cfg.Priority == ownerPriority {
		return
	}
	m.prio = min(max(p, 1), ownerPriority-1)
}

// enterFault: a master resigns with priority 0 and drops the VIPs (reference
// §2.4 "Priority 0 is sent when").
func (m *Machine) enterFault(reason event.Reason) {
	switch m.state {
	case vrrp.StateInit, vrrp.StateFault, vrrp.StateStop:
		return // Start sees the flag; FAULT stays FAULT
	case vrrp.StateMaster:
		m.sendAdvert(0)
		m.leaveMaster()
	}
	m.main.stop()
	m.preemptUntil.stop()
	m.wantMaster = false
	m.master, m.masterPrio = netip.Addr{}, 0
	m.transition(vrrp.StateFault, reason)
}

func (m *Machine) leaveFault(now time.Duration, reason event.Reason) {
	if m.state != vrrp.StateFault || m.ownFault || m.groupFault {
		return
	}
	// keepalived forgets an adopted interval in FAULT (vrrp_state_leave_fault).
	m.masterAdverInt = m.cfg.AdvertInterval
	m.becomeBackup(now, reason)
	m.ownerTakeover(now)
}

// shutdown: a master sends priority 0 then removes the VIPs, so a backup
// takes over after Skew_Time (RFC 9568 §6.4.3, reference §2.4).
func (m *Machine) shutdown() {
	switch m.state {
	case vrrp.StateStop:
		return
	case vrrp.StateMaster:
		m.sendAdvert(0)
		m.leaveMaster()
	}
	m.main.stop()
	m.garpDelay.stop()
	m.garpRefr.stop()
	m.garpLower.stop()
	m.preemptUntil.stop()
	m.wantMaster = false
	m.transition(vrrp.StateStop, event.ReasonShutdown)
}

func (m *Machine) sendAdvert(p int) {
	m.do(Action{Kind: ActionSendAdvert, Priority: p})
}

func (m *Machine) gratuitous(n int) {
	if n > 0 {
		m.do(Action{Kind: ActionSendGratuitous, Count: n})
	}
}

// transition changes state and reports it: the event, then the notify.
func (m *Machine) transition(to vrrp.State, reason event.Reason) {
	from := m.state
	m.state = to
	e := m.event(event.KindTransition)
	e.From, e.To, e.Reason = from, to, reason
	m.do(Action{Kind: ActionEvent, Event: e})
	m.do(Action{Kind: ActionNotify, State: to, Priority: m.prio})
}

func (m *Machine) event(k event.Kind) event.Event {
	return event.Event{
		Kind:         k,
		Instance:     m.cfg.Name,
		VRID:         m.cfg.VRID,
		Interface:    m.cfg.Interface,
		Family:       m.cfg.Family,
		Priority:     m.prio,
		BasePriority: m.base,
		Interval:     m.masterAdverInt,
	}
}

func (m *Machine) do(a Action) { m.acts = append(m.acts, a) }
