package lb

import (
	"context"
	"log/slog"
	"net/netip"
	"reflect"
	"sync"

	"github.com/keepwatch/keepwatch/engine/config"
	"github.com/keepwatch/keepwatch/engine/event"
	"github.com/keepwatch/keepwatch/engine/ipvs"
	"github.com/keepwatch/keepwatch/engine/vrrp"
)

// SyncDaemon runs global_defs' lvs_sync_daemon: the kernel's IPVS
// connection-sync daemon, master while the named VRRP instance is MASTER
// and backup otherwise (ipvs.SyncFollower). keepalived does this in its
// VRRP process, not the checker, so it runs with or without virtual
// servers. It is an event.Sink: it must see the instances' transitions,
// and it remembers the last state of each, so a follower started by a
// reload begins in the instance's current state, as keepalived's
// reload_vrrp_thread restarts the daemon in it.
type SyncDaemon struct {
	log *slog.Logger
	// Open returns the kernel's sync-daemon control and its closer;
	// nil opens the kernel's IPVS (ipvs.Open).
	Open func() (ipvs.DaemonControl, func(), error)

	mu     sync.Mutex
	states map[string]vrrp.State
	cfg    *config.LVSSyncDaemon
	vrid   int
	f      *ipvs.SyncFollower
	cancel context.CancelFunc
	done   chan struct{}
	close  func()
}

// NewSyncDaemon returns an idle SyncDaemon; Configure starts it.
func NewSyncDaemon(log *slog.Logger) *SyncDaemon {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &SyncDaemon{log: log, states: map[string]vrrp.State{}}
}

// Emit implements event.Sink.
func (s *SyncDaemon) Emit(e event.Event) {
	if e.Kind != event.KindTransition {
		return
	}
	s.mu.Lock()
	s.states[e.Instance] = e.To
	f := s.f
	s.mu.Unlock()
	if f != nil {
		f.Emit(e)
	}
}

// Configure runs c's lvs_sync_daemon: it starts the daemon, or restarts it
// when its settings changed, or stops it when c has none. The sync id
// defaults to the instance's virtual_router_id, as in keepalived
// (vrrp_complete_init); an instance that is not in c stops it, with an
// error logged ("Unable to find vrrp instance ... for lvs_syncd").
func (s *SyncDaemon) Configure(c *config.Config) {
	d := c.Global.LVSSyncDaemon
	vrid := -1
	if d != nil {
		for i := range c.Instances {
			if c.Instances[i].Name == d.Instance {
				vrid = c.Instances[i].VRID
			}
		}
		if vrid < 0 {
			s.log.Error("lvs_sync_daemon: no such vrrp_instance: the sync daemon is not run", "vrrp_instance", d.Instance)
			d = nil
		}
	}
	if d == nil {
		vrid = 0
	}
	s.mu.Lock()
	same := reflect.DeepEqual(d, s.cfg) && vrid == s.vrid
	s.mu.Unlock()
	if same {
		return
	}
	s.Stop()
	if d == nil {
		return
	}
	open := s.Open
	if open == nil {
		open = func() (ipvs.DaemonControl, func(), error) {
			h, err := ipvs.Open(nil)
			if err != nil {
				return nil, nil, err
			}
			return h, h.Close, nil
		}
	}
	k, closer, err := open()
	if err != nil {
		s.log.Error("lvs_sync_daemon: IPVS unavailable", "err", err)
		return
	}
	sd := ipvs.SyncDaemon{Interface: d.Interface, SyncID: uint8(vrid), MaxLen: uint16(d.MaxLen), Port: uint16(d.Port), TTL: uint8(d.TTL)}
	if d.ID != 0 {
		// The model cannot tell `id 0` from no id: both take the VRID.
		sd.SyncID = uint8(d.ID)
	}
	if g, err := netip.ParseAddr(d.Group); err == nil {
		sd.Group = g
	}
	f := ipvs.NewSyncFollower(k, d.Instance, sd)
	f.OnError = func(err error) { s.log.Error("lvs_sync_daemon", "err", err) }
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	s.mu.Lock()
	s.cfg, s.vrid, s.f, s.cancel, s.done, s.close = d, vrid, f, cancel, done, closer
	st, seen := s.states[d.Instance]
	s.mu.Unlock()
	go func() {
		defer close(done)
		if err := f.Run(ctx); err != nil {
			s.log.Error("lvs_sync_daemon: stopping", "err", err)
		}
	}()
	if seen {
		f.Emit(event.Event{Kind: event.KindTransition, Instance: d.Instance, From: vrrp.StateInit, To: st})
	}
}

// Stop stops the daemon that runs, if any, and waits for it.
func (s *SyncDaemon) Stop() {
	s.mu.Lock()
	cancel, done, closer := s.cancel, s.done, s.close
	s.f, s.cfg, s.vrid, s.cancel, s.done, s.close = nil, nil, 0, nil, nil, nil
	s.mu.Unlock()
	if cancel == nil {
		return
	}
	cancel()
	<-done
	closer()
}
