package agent

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"log/slog"
	"runtime/debug"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/keepwatch/keepwatch/engine/config"
	"github.com/keepwatch/keepwatch/engine/config/loader"
	"github.com/keepwatch/keepwatch/engine/dump"
	"github.com/keepwatch/keepwatch/engine/event"
	"github.com/keepwatch/keepwatch/engine/lb"
	"github.com/keepwatch/keepwatch/engine/netif"
	"github.com/keepwatch/keepwatch/engine/track"
	"github.com/keepwatch/keepwatch/engine/vrrp"
	"github.com/keepwatch/keepwatch/engine/vrrp/router"
)

// Options configure an agent.
type Options struct {
	// Path is the config file; ConfigID selects @id lines.
	Path     string
	ConfigID string
	// Sink receives every event (metrics, tracing, logs, notify).
	Sink event.Sink
	Log  *slog.Logger
	// Platform is the operating system: sockets, addresses, links. Run
	// closes it when it returns. Nil opens the host's (netif.OpenHost).
	Platform Platform
	// OnConfig, if set, is called with every config the agent starts
	// running (at start and after each accepted reload), before it is applied.
	OnConfig func(*config.Config)
	// OnGroup, if set, is called when a sync group's state changes.
	OnGroup func(GroupChange)
	// Trim, if set, cuts each loaded config down to what this process runs
	// (the keepalived drop-in's -P, VRRP only, and -C, checkers only)
	// before anything else sees it.
	Trim func(*config.Config)
	// Balancer runs the config's virtual servers (health checks and IPVS);
	// nil makes one (with Sink and Log) when a config has virtual servers.
	Balancer *lb.Balancer
	// RetryInterval is how often instances that could not start are tried
	// again (besides whenever an interface comes up); 0 means 5 s.
	RetryInterval time.Duration
	// Strict refuses a config with any error-level diagnostic (run
	// --strict); by default only what stops keepalived is refused.
	Strict bool
}

// Agent runs a configuration and reloads it by difference. It supervises
// its tasks (agent/task.go): instances, sockets, trackers, the load
// balancer and the link watch, and stops them in one order (shutdown).
type Agent struct {
	opts Options
	log  *slog.Logger
	sink event.Sink

	plat  Platform
	addrs *serialAddrs // address changes, on one goroutine
	// static is the static_ipaddress, static_routes and static_rules
	// installed (policy.go); only apply and shutdown touch it.
	static staticSet
	// logUnknownVRIDs is global_defs log_unknown_vrids, read by the
	// sockets' goroutines.
	logUnknownVRIDs atomic.Bool

	// seq serialises the supervisor's sequences: start, each reload, each
	// retry of failed instances, shutdown. Only they start and stop tasks.
	seq sync.Mutex

	// mu guards the maps below. It is held only briefly and never across a
	// call that waits for an instance, a socket or a tracker: trackers
	// report under it, and calls into instances never block.
	mu       sync.Mutex
	cfg      *config.Config
	socks    map[sockKey]*sock
	units    map[string]*unit    // their members are the running instances (runningInstances)
	failed   map[string]*failure // by instance name
	trackers map[trackerKey]*runningTracker
	states   map[trackerKey]track.State

	// startupDelayEnd ends global_defs vrrp_startup_delay, fixed by the
	// first apply; instances started before it wait the rest (startUnit).
	startupDelayEnd time.Time
	readyAt         time.Time  // when the first config was applied (StartupSettled)
	promoted        promotions // promote_secondaries, per interface

	ready  atomic.Bool
	groups *groups
	retry  chan struct{} // an interface came up: try failed instances again

	links *task
	// stats are keepalived's per-instance counters (its .stats and .json
	// dumps), counted from the events.
	stats *dump.Counters

	// The load balancer: started by the first config with virtual servers,
	// reloaded with the instances, stopped after them.
	lbMu   sync.Mutex
	lb     *lb.Balancer
	lbTask *task
	// syncd runs lvs_sync_daemon, following its instance's transitions.
	syncd *lb.SyncDaemon
}

type sockKey struct {
	ifname string
	family vrrp.Family
	ah     bool // IP protocol 51 (auth_type AH) rather than 112
}

type sock struct {
	conn netif.Socket
	// sched keeps the deadlines of the units whose first member sends on
	// this socket, and batches their adverts (router.Scheduler).
	sched *router.Scheduler
	task  *task
	users int
}

// unit is one router goroutine: a lone instance, or a sync group's members.
type unit struct {
	name    string
	members []*running
	inst    *router.Instance
	task    *task
	// promoted: the interfaces its members set promote_secondaries on.
	promoted []string
}

// running is one instance inside a unit.
type running struct {
	unit      *unit
	idx       int
	plan      *plan
	set       *track.Set
	lastPrio  int
	lastFault bool
}

// runningInstances yields every running instance: the members of every
// unit, with a.mu held. A map of them by instance key beside a.units was
// ~160 bytes an instance of map slots (a 56-byte key each) for a set that
// is only ever walked (issue 12).
func (a *Agent) runningInstances() iter.Seq[*running] {
	return func(yield func(*running) bool) {
		for _, u := range a.units {
			for _, r := range u.members {
				if !yield(r) {
					return
				}
			}
		}
	}
}

// failure is an instance the agent could not start: it is shown in FAULT
// with its reason (status, metrics, /-/ready) and tried again.
type failure struct {
	name      string
	vrid      int
	ifname    string
	family    vrrp.Family
	syncGroup string
	reason    string
}

type trackerKey struct {
	kind track.Kind
	name string
}

type runningTracker struct {
	spec any // the config it was started from, to compare on reload
	task *task
}

// New returns an agent; Run starts it.
func New(opts Options) *Agent {
	if opts.Sink == nil {
		opts.Sink = event.Discard
	}
	if opts.Log == nil {
		opts.Log = slog.New(slog.DiscardHandler)
	}
	if opts.RetryInterval <= 0 {
		opts.RetryInterval = 5 * time.Second
	}
	g := newGroups(opts.OnGroup)
	stats := dump.NewCounters()
	syncd := lb.NewSyncDaemon(opts.Log)
	return &Agent{
		opts: opts, log: opts.Log, sink: event.Multi{opts.Sink, g, stats, syncd}, groups: g, stats: stats, lb: opts.Balancer, syncd: syncd,
		socks: map[sockKey]*sock{}, units: map[string]*unit{},
		failed: map[string]*failure{}, trackers: map[trackerKey]*runningTracker{}, states: map[trackerKey]track.State{},
		retry: make(chan struct{}, 1),
	}
}

// Ready reports whether the config is loaded and the agent is running it
// (the instances that could start have started). Failed instances do not
// make it false: ReadyHandler reports them.
func (a *Agent) Ready() bool { return a.ready.Load() }

// Config returns the config being run.
func (a *Agent) Config() *config.Config {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.cfg
}

// ErrConfig is returned (wrapped) when a config has errors.
var ErrConfig = errors.New("config has errors")

// ErrPartial is returned (wrapped) by Reload when the config was loaded but
// could not be applied whole: the instances named in the error are in FAULT.
var ErrPartial = errors.New("config applied in part")

func (a *Agent) load() (*config.Config, error) {
	c, ds := loader.Load(a.opts.Path, loader.Options{ConfigID: a.opts.ConfigID})
	for _, d := range ds {
		lvl := slog.LevelWarn
		if d.Severity >= config.Error {
			lvl = slog.LevelError
		}
		a.log.Log(context.Background(), lvl, "config", "diagnostic", d.Report())
	}
	// keepalived's recovery semantics: run unless keepalived would stop
	// (or Strict); on reload, keep the old config when new errors would
	// stop a running instance or drop its VIPs (config.Admit).
	if err := config.Admit(c, ds, a.Config(), a.opts.Strict); err != nil {
		return nil, fmt.Errorf("%s: %w: %w", a.opts.Path, ErrConfig, err)
	}
	if a.opts.Trim != nil {
		a.opts.Trim(c)
	}
	return c, nil
}

// loaded reports a config applied whole (KindConfigLoaded), or one that was
// not (KindReloadRejected with what failed: keepwatch_config_last_reload_
// successful 0).
func (a *Agent) loaded(start time.Time, err error) {
	if err != nil {
		a.sink.Emit(event.Event{Kind: event.KindReloadRejected, ID: event.NewID(), Time: time.Now(), Name: a.opts.Path, Err: err})
		return
	}
	a.sink.Emit(event.Event{Kind: event.KindConfigLoaded, ID: event.NewID(), Time: time.Now(), Name: a.opts.Path, Duration: time.Since(start), OK: true})
}

// Run loads the config, starts everything and blocks until ctx is
// cancelled; then it stops everything in order (shutdown). An instance that
// cannot start (its interface is missing or has no address) does not stop
// the agent: it is in FAULT with its reason, and is tried again when an
// interface comes up and every RetryInterval.
func (a *Agent) Run(ctx context.Context) error {
	start := time.Now()
	c, err := a.load()
	if err != nil {
		if a.opts.Platform != nil {
			_ = a.opts.Platform.Close()
		}
		return err
	}
	plat := a.opts.Platform
	if plat == nil {
		h, err := netif.OpenHost()
		if err != nil {
			return fmt.Errorf("netlink: %w", err)
		}
		plat = h
	}
	if err := useNamespace(plat, c.Global.NetNamespace); err != nil {
		_ = plat.Close()
		return err
	}
	if err := checkInterfaces(plat, c); err != nil {
		_ = plat.Close()
		return err
	}

	a.seq.Lock()
	a.plat = plat
	a.addrs = newSerialAddrs(plat)
	a.startLinks()
	a.removeStale(c)
	err = a.apply(ctx, c, true)
	a.seq.Unlock()
	a.loaded(start, err)
	if err != nil {
		a.log.Error("config applied in part: the instances that failed are in FAULT", "err", err)
	}
	// Parsing and building left garbage that a steady state, which
	// allocates almost nothing, would keep for a long time.
	debug.FreeOSMemory()
	a.mu.Lock()
	a.readyAt = time.Now()
	a.mu.Unlock()
	a.ready.Store(true)

	tick := time.NewTicker(a.opts.RetryInterval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			a.ready.Store(false)
			a.seq.Lock()
			defer a.seq.Unlock()
			a.shutdown()
			return nil
		case <-a.retry:
			a.retryFailed(ctx)
		case <-tick.C:
			a.retryFailed(ctx)
		}
	}
}

// shutdown stops everything, in the one order that keeps the network right:
//
//  1. instances, all at once: each master sends its priority-0 advert and
//     removes its VIPs, so a backup takes over after Skew_Time (RFC 9568
//     §6.4.3 "shutdown", reference §2.4);
//  2. trackers: nothing follows them any more;
//  3. the load balancer: real servers leave the table after the VIPs
//     have moved (omega, lvs_flush_on_stop);
//  4. the VRRP sockets, which no instance reads now;
//  5. the link watch, the address worker, and the platform (announcers,
//     netlink).
//
// The sinks belong to the caller (cmd/keepwatch), which stops them after
// Run returns, so the STOP transitions and notifications still go out.
func (a *Agent) shutdown() {
	a.mu.Lock()
	us := make([]*unit, 0, len(a.units))
	for _, u := range a.units {
		us = append(us, u)
	}
	a.mu.Unlock()
	a.stopUnits(us) // 1
	a.syncd.Stop()  // keepalived stops the sync daemon with its VRRP process

	a.mu.Lock()
	var ts []*task
	for k, t := range a.trackers {
		ts = append(ts, t.task)
		delete(a.trackers, k)
	}
	a.mu.Unlock()
	stopAll(ts) // 2

	a.stopBalancer() // 3

	a.mu.Lock()
	var ss []*task
	for k, s := range a.socks {
		ss = append(ss, s.task)
		delete(a.socks, k)
	}
	a.mu.Unlock()
	stopAll(ss) // 4

	// keepalived removes its static entries when the VRRP process stops
	// (vrrp_daemon.c stop_vrrp).
	a.syncStatic(nil)

	if a.links != nil { // 5
		_ = a.links.stop()
	}
	a.addrs.close()
	if err := a.plat.Close(); err != nil {
		a.log.Warn("closing the platform", "err", err)
	}
	a.plat = nil // a Reload from now on finds the agent stopped
}

// stopAll cancels every task first, so they stop in parallel, then waits.
func stopAll(ts []*task) {
	for _, t := range ts {
		t.cancel()
	}
	for _, t := range ts {
		_ = t.stop()
	}
}

// startLinks starts the link watch and seeds every interface's state, so
// instances do not start in FAULT waiting for it. The watch subscribes
// again after an error; the subscription's dump resynchronises the state.
func (a *Agent) startLinks() {
	if ls, err := a.plat.Links(); err == nil {
		for _, ev := range ls {
			a.onTracker(track.KindInterface, ev.Name, track.State{Known: true, Up: ev.Up && !ev.Deleted}, 0)
		}
	} else {
		a.log.Warn("listing interfaces", "err", err)
	}
	a.links = goTask(a.log, "link watch", func(ctx context.Context) error {
		for {
			err := a.plat.WatchLinks(ctx, a.onLink)
			if ctx.Err() != nil {
				return nil
			}
			a.log.Warn("link watch failed: subscribing again", "err", err)
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(time.Second):
			}
		}
	})
}

func (a *Agent) onLink(ev netif.LinkEvent) {
	up := ev.Up && !ev.Deleted
	a.onTracker(track.KindInterface, ev.Name, track.State{Known: true, Up: up}, 0)
	e := event.Event{Kind: event.KindInterfaceChanged, ID: event.NewID(), Time: time.Now(), Interface: ev.Name, OK: up}
	if ev.Deleted {
		// The metrics sink drops the interface's series (a VMAC or a
		// hot-unplugged NIC may never come back).
		e.Reason = event.ReasonDeleted
	}
	a.sink.Emit(e)
	if !up {
		return
	}
	a.mu.Lock()
	waiting := false
	for _, f := range a.failed {
		waiting = waiting || f.ifname == ev.Name || strings.HasPrefix(f.reason, "use_vmac")
	}
	a.mu.Unlock()
	if waiting {
		select {
		case a.retry <- struct{}{}:
		default:
		}
	}
}

// retryFailed applies the running config again when some instances could
// not start: those that can now start do, the rest is untouched.
func (a *Agent) retryFailed(ctx context.Context) {
	a.seq.Lock()
	defer a.seq.Unlock()
	a.mu.Lock()
	c, n := a.cfg, len(a.failed)
	a.mu.Unlock()
	if n == 0 || c == nil || ctx.Err() != nil {
		return
	}
	if err := a.apply(ctx, c, false); err != nil {
		a.log.Debug("instances still failing", "err", err)
		return
	}
	a.log.Info("every instance is running", "was_failing", n)
}

// Reload reads the config again. A config with errors is rejected, counted
// and logged, and the agent keeps running the old one with every VIP it
// holds (DESIGN.md §1). A config that loads is applied by difference
// (apply); if part of it cannot be applied, the reload is reported failed
// (ErrPartial, keepwatch_config_last_reload_successful 0) and what could
// not start is in FAULT with its reason.
func (a *Agent) Reload() error {
	return a.ReloadContext(context.Background())
}

// ReloadContext is Reload; ctx bounds the wait for each running instance to
// take its update.
func (a *Agent) ReloadContext(ctx context.Context) error {
	start := time.Now()
	c, err := a.load()
	if err != nil {
		// The log sink reports the KindReloadRejected event at error level.
		a.log.Debug("reload rejected: keeping the running config", "err", err)
		a.loaded(start, err)
		return err
	}
	a.seq.Lock()
	if a.plat == nil {
		a.seq.Unlock()
		return errors.New("agent: not running")
	}
	err = a.apply(ctx, c, true)
	a.seq.Unlock()
	a.loaded(start, err)
	if err != nil {
		a.log.Error("reload applied in part", "path", a.opts.Path, "err", err)
		return err
	}
	// The reload's garbage back to the kernel, and the executable's pages
	// the parse and the plan touched out of the page tables.
	ReleaseMemory(a.log, "reload")
	a.log.Info("reloaded", "path", a.opts.Path)
	return nil
}

// syncBalancer starts the load balancer on the first config with virtual
// servers and hands it every later config (a reload by difference).
func (a *Agent) syncBalancer(c *config.Config) {
	a.lbMu.Lock()
	defer a.lbMu.Unlock()
	if a.lbTask != nil {
		if err := a.lb.Update(c); err != nil {
			a.log.Error("reloading virtual servers", "err", err)
		}
		return
	}
	if len(c.VirtualServers) == 0 {
		return
	}
	if a.lb == nil {
		a.lb = lb.New(lb.Options{Sink: a.sink, Log: a.log})
	}
	b := a.lb
	exited := make(chan struct{})
	a.lbTask = goTask(a.log, "load balancer", func(ctx context.Context) error {
		defer close(exited)
		return untilCancelled(ctx, b.Run(ctx, c))
	})
	select { // so a reload right after start reaches a running balancer
	case <-b.Started():
	case <-exited:
	}
}

// stopBalancer stops the load balancer (omega, lvs_flush_on_stop) and
// waits for it.
func (a *Agent) stopBalancer() {
	a.lbMu.Lock()
	defer a.lbMu.Unlock()
	if a.lbTask != nil {
		_ = a.lbTask.stop()
	}
}

// VirtualServers is the load balancer's status; empty without virtual servers.
func (a *Agent) VirtualServers() []lb.VirtualServerStatus {
	a.lbMu.Lock()
	b := a.lb
	a.lbMu.Unlock()
	if b == nil {
		return []lb.VirtualServerStatus{}
	}
	st := b.Status()
	if st == nil {
		st = []lb.VirtualServerStatus{}
	}
	return st
}

// onTracker records a tracker's new state and hands every instance that
// follows it its new priority or fault.
func (a *Agent) onTracker(kind track.Kind, name string, st track.State, cause uint64) {
	a.mu.Lock()
	defer a.mu.Unlock()
	st.Known = true
	a.states[trackerKey{kind, name}] = st
	for r := range a.runningInstances() {
		if r.set.Update(kind, name, st) {
			a.pushPriority(r, cause, name)
		}
	}
}

// pushPriority tells an instance about a changed effective priority or
// fault; mu held. It never blocks (router.Instance.SetPriority).
func (a *Agent) pushPriority(r *running, cause uint64, tracker ...string) {
	p, fault := r.set.Priority()
	if p != r.lastPrio {
		e := event.Event{Kind: event.KindPriorityChanged, ID: event.NewID(), Cause: cause, Time: time.Now(),
			Instance: r.plan.router.FSM.Name, VRID: r.plan.router.FSM.VRID, Interface: r.plan.router.FSM.Interface,
			Family: r.plan.router.FSM.Family, BasePriority: r.plan.router.FSM.Priority, Priority: p, Value: int64(p - r.lastPrio)}
		if len(tracker) > 0 {
			e.Tracker = tracker[0]
		}
		a.sink.Emit(e)
		r.lastPrio = p
		r.unit.inst.SetPriority(r.idx, p, e.ID)
	}
	if fault != r.lastFault {
		r.lastFault = fault
		r.unit.inst.SetFault(r.idx, fault, cause)
	}
}
