package fsm

import (
	"fmt"
	"time"

	"github.com/keepwatch/keepwatch/engine/vrrp"
)

// Reconfigure applies a reloaded config to a running machine without a
// state change: a master stays master with its VIPs, a backup keeps the
// master it follows. Only the identity (Name, VRID, Interface, Family) must
// stay the same; a change of it is an error, and the driver restarts the
// instance instead (resigning with priority 0 first).
//
// What a changed field does at once, and what waits:
//   - Priority: the base priority is the new one. The effective priority is
//     the driver's (InputPriority, from the trackers) and is left alone,
//     except across the owner's 255, which no tracker changes (reference
//     §1.5). A master advertises it with its next advert and stays master;
//     a backup whose priority now beats the master's discards its adverts
//     and takes over when Master_Down_Timer expires (RFC 9568 §6.4.2,
//     §6.4.3). Neither transition happens here.
//   - AdvertInterval: a master's Adver_Timer is reset to the new
//     Advertisement_Interval if that is sooner (RFC 9568 §6.4.3: it is
//     reset to Advertisement_Interval after each advert); a v3 backup keeps
//     the Master_Adver_Interval it learnt from the master (RFC 9568 §6.4.2),
//     a v2 one uses its own (RFC 3768 §6.4.2, where the intervals must match).
//   - the GARP schedule: a master's refresh timer follows the new
//     garp_master_refresh.
//   - everything else (preemption, down_timer_adverts, the tie-break
//     address) is read when next needed.
//
// The caller steps the machine afterwards (a tick) so timers now due fire.
func (m *Machine) Reconfigure(now time.Duration, cfg Config) error {
	if err := cfg.validate(); err != nil {
		return err
	}
	old := m.cfg
	if cfg.Name != old.Name || cfg.VRID != old.VRID || cfg.Interface != old.Interface || cfg.Family != old.Family {
		return fmt.Errorf("%w: vrid %d: identity changed (%s vrid %d on %s) to (%s vrid %d on %s)", ErrConfig, old.VRID,
			old.Name, old.VRID, old.Interface, cfg.Name, cfg.VRID, cfg.Interface)
	}
	if cfg.DownTimerAdverts == 0 {
		cfg.DownTimerAdverts = 3
	}
	if cfg.GARP.MasterRefresh > 0 && cfg.GARP.MasterRefreshRepeat == 0 {
		cfg.GARP.MasterRefresh = 0
	}
	m.cfg = cfg

	if cfg.Priority != old.Priority {
		m.base = cfg.Priority
		if cfg.Priority == ownerPriority || old.Priority == ownerPriority || m.prio == old.Priority {
			// No tracker moved the effective priority (or it cannot move):
			// it follows the base until the driver says otherwise.
			m.prio = cfg.Priority
		} else {
			m.prio = min(max(m.prio, 1), ownerPriority-1)
		}
	}

	if cfg.AdvertInterval != old.AdvertInterval {
		switch {
		case m.state == vrrp.StateMaster:
			m.masterAdverInt = cfg.AdvertInterval
			if next := now + cfg.AdvertInterval; !m.main.on || next < m.main.at {
				m.main.set(next)
			}
		case cfg.Version == 2 || !m.master.IsValid():
			// v2: the interval is ours (and must equal the master's); v3
			// without a master heard: ours until an advert says otherwise.
			m.masterAdverInt = cfg.AdvertInterval
		}
	}
	if cfg.Version != old.Version && m.state != vrrp.StateMaster && !m.master.IsValid() {
		m.masterAdverInt = cfg.AdvertInterval
	}

	if m.state == vrrp.StateMaster && cfg.GARP.MasterRefresh != old.GARP.MasterRefresh {
		if cfg.GARP.MasterRefresh > 0 {
			m.garpRefr.set(now + cfg.GARP.MasterRefresh)
		} else {
			m.garpRefr.stop()
		}
	}
	if cfg.NoPreempt || cfg.PreemptDelay == 0 {
		m.preemptUntil.stop()
	}
	return nil
}
