package ipvs

import (
	"context"
	"errors"
	"sync"

	"golang.org/x/sys/unix"

	"github.com/keepwatch/keepwatch/engine/event"
	"github.com/keepwatch/keepwatch/engine/vrrp"
)

// DaemonControl starts and stops the kernel's sync daemons; Handle
// implements it.
type DaemonControl interface {
	StartDaemon(SyncDaemon) error
	StopDaemon(SyncState) error
}

// SyncFollower runs the kernel's connection-sync daemon as keepalived's
// lvs_sync_daemon does: as master while the named VRRP instance is MASTER,
// as backup otherwise. keepalived switches in the VRRP process: on becoming
// master it stops the backup daemon and starts the master one
// (vrrp_state_become_master → ipvs_syncd_master), on leaving master (to
// BACKUP or FAULT) the reverse (vrrp_state_leave_master →
// ipvs_syncd_backup); at stop it stops the one that runs. The first state
// the instance reports starts the first daemon.
//
// It is an event.Sink for the instance's transitions. Emit only records
// the wanted state, so the VRRP path never waits on netlink; Run applies it.
type SyncFollower struct {
	k        DaemonControl
	instance string
	cfg      SyncDaemon
	// OnError, if set, is told of each failed start or stop.
	OnError func(error)

	mu      sync.Mutex
	want    SyncState // 0: no state seen yet
	running SyncState
	kick    chan struct{}
}

// NewSyncFollower returns a follower of instance that runs cfg (its State
// is ignored) through k.
func NewSyncFollower(k DaemonControl, instance string, cfg SyncDaemon) *SyncFollower {
	return &SyncFollower{k: k, instance: instance, cfg: cfg, kick: make(chan struct{}, 1)}
}

// Emit implements event.Sink.
func (f *SyncFollower) Emit(e event.Event) {
	if e.Kind != event.KindTransition || e.Instance != f.instance {
		return
	}
	f.mu.Lock()
	switch {
	case e.To == vrrp.StateMaster:
		f.want = SyncMaster
	case f.want == 0 && e.To != vrrp.StateStop, e.From == vrrp.StateMaster:
		f.want = SyncBackup
	default:
		f.mu.Unlock()
		return
	}
	f.mu.Unlock()
	select {
	case f.kick <- struct{}{}:
	default:
	}
}

// Run applies the wanted state until ctx is cancelled, then stops the
// daemon that runs. It returns the error of that last stop, if any.
func (f *SyncFollower) Run(ctx context.Context) error {
	for {
		select {
		case <-ctx.Done():
			f.mu.Lock()
			running := f.running
			f.running = 0
			f.mu.Unlock()
			if running != 0 {
				return f.k.StopDaemon(running)
			}
			return nil
		case <-f.kick:
			f.apply()
		}
	}
}

func (f *SyncFollower) apply() {
	f.mu.Lock()
	want, running := f.want, f.running
	f.mu.Unlock()
	if want == running || want == 0 {
		return
	}
	other := SyncMaster
	if want == SyncMaster {
		other = SyncBackup
	}
	// Stop the other role first, as ipvs_syncd_master/backup do; a stale
	// one left by an earlier run is stopped too (ESRCH is success).
	err := f.k.StopDaemon(other)
	d := f.cfg
	d.State = want
	serr := f.k.StartDaemon(d)
	if errors.Is(serr, unix.EEXIST) {
		// One of this role left running (by an earlier run that was
		// killed): restart it with this config.
		if serr = f.k.StopDaemon(want); serr == nil {
			serr = f.k.StartDaemon(d)
		}
	}
	if serr != nil {
		err = errors.Join(err, serr)
	} else {
		f.mu.Lock()
		f.running = want
		f.mu.Unlock()
	}
	if err != nil && f.OnError != nil {
		f.OnError(err)
	}
}
