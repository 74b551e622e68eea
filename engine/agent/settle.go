package agent

import (
	"time"

	"github.com/keepwatch/keepwatch/engine/vrrp"
	"github.com/keepwatch/keepwatch/engine/vrrp/router"
)

// StartupSettled reports whether start-up's VRRP transitions are over:
// no instance has changed state for settleQuiet, and every one has left
// INIT and is MASTER or FAULT, or BACKUP following a master it has heard;
// a BACKUP that heard none (a peer that is down, a sync group held back by
// a member) counts once the longest Master_Down_Interval has passed since
// the agent was ready and vrrp_startup_delay ended, by which time it would
// have taken over (RFC 9568 §6.4.2, RFC 3768 §6.4.2). It is false until
// the agent is ready.
//
// Why: the memory start-up used is released (ReleaseMemory) once, and what
// runs after the release pages code back in and leaves garbage. At 1 s
// adverts a master's takeover (its VIPs, gratuitous ARPs, notify, metrics)
// comes ~3.6 s after ready, and a release at a fixed 2 s came before it
// (issue 12: 250 masters at 1 s held 23.9 MiB against 14.5 at 0.05 s).
func (a *Agent) StartupSettled() bool {
	if !a.ready.Load() {
		return false
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	snaps := make([]router.Snapshot, 0, len(a.units))
	for r := range a.runningInstances() {
		snaps = append(snaps, r.unit.inst.Snapshots()[r.idx])
	}
	from := a.readyAt
	if a.startupDelayEnd.After(from) {
		from = a.startupDelayEnd
	}
	return startupSettled(snaps, time.Since(from), time.Now())
}

// settleSlack is added to the longest Master_Down_Interval before a BACKUP
// that heard no master counts as settled anyway: the takeover's timer fires
// on a loaded machine a little late.
const settleSlack = 500 * time.Millisecond

// settleQuiet is how long no instance may have changed state before
// start-up counts as settled: on a loaded machine a 0.05 s instance can
// flap (a late advert, a takeover, a yield) for a while after it first
// looked settled, and each flap runs the transition code again.
const settleQuiet = time.Second

// startupSettled is StartupSettled's decision on the instances' snapshots,
// elapsed after the agent was ready and vrrp_startup_delay over, at now.
func startupSettled(snaps []router.Snapshot, elapsed time.Duration, now time.Time) bool {
	var longest time.Duration
	waiting := false
	for _, s := range snaps {
		if now.Sub(s.LastTransition) < settleQuiet {
			// Not bounded here: releaseAfterStart waits at most a minute.
			return false
		}
		down := s.MasterDown
		if down <= 0 {
			// Not stepped yet: the longest it can be, v2's skew of up
			// to a second over three intervals (RFC 3768 §6.1).
			down = 3*s.AdvertInterval + time.Second
		}
		longest = max(longest, down)
		switch s.State {
		case vrrp.StateMaster, vrrp.StateFault:
		case vrrp.StateBackup:
			if !s.Master.IsValid() {
				waiting = true
			}
		default: // INIT, or a state this code does not know
			waiting = true
		}
	}
	return !waiting || elapsed >= longest+settleSlack
}
