package agent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/netip"
	"runtime/debug"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/keepwatch/keepwatch/engine/config"
	"github.com/keepwatch/keepwatch/engine/config/loader"
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
	// Balancer runs the config's virtual servers (health checks and IPVS);
	// nil makes one (with Sink and Log) when a config has virtual servers.
	Balancer *lb.Balancer
	// RetryInterval is how often instances that could not start are tried
	// again (besides whenever an interface comes up); 0 means 5 s.
	RetryInterval time.Duration
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

	// seq serialises the supervisor's sequences: start, each reload, each
	// retry of failed instances, shutdown. Only they start and stop tasks.
	seq sync.Mutex

	// mu guards the maps below. It is held only briefly and never across a
	// call that waits for an instance, a socket or a tracker: trackers
	// report under it, and calls into instances never block.
	mu       sync.Mutex
	cfg      *config.Config
	socks    map[sockKey]*sock
	insts    map[instanceKey]*running
	units    map[string]*unit
	failed   map[string]*failure // by instance name
	trackers map[trackerKey]*runningTracker
	states   map[trackerKey]track.State

	ready  atomic.Bool
	groups *groups
	retry  chan struct{} // an interface came up: try failed instances again

	links *task

	// The load balancer: started by the first config with virtual servers,
	// reloaded with the instances, stopped after them.
	lbMu   sync.Mutex
	lb     *lb.Balancer
	lbTask *task
}

type sockKey struct {
	ifname string
	family vrrp.Family
}

type sock struct {
	conn  netif.Socket
	task  *task
	users int
}

// unit is one router goroutine: a lone instance, or a sync group's members.
type unit struct {
	name    string
	members []*running
	inst    *router.Instance
	task    *task
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
	return &Agent{
		opts: opts, log: opts.Log, sink: event.Multi{opts.Sink, g}, groups: g, lb: opts.Balancer,
		socks: map[sockKey]*sock{}, insts: map[instanceKey]*running{}, units: map[string]*unit{},
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
		a.log.Log(context.Background(), lvl, "config", "diagnostic", d.String())
	}
	if c == nil || ds.HasErrors() {
		n := 0
		for _, d := range ds {
			if d.Severity == config.Error || d.Severity == config.Fatal {
				n++
			}
		}
		return nil, fmt.Errorf("%s: %w (%d)", a.opts.Path, ErrConfig, n)
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
	a.sink.Emit(event.Event{Kind: event.KindInterfaceChanged, ID: event.NewID(), Time: time.Now(), Interface: ev.Name, OK: up})
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
	debug.FreeOSMemory()
	a.log.Info("reloaded", "path", a.opts.Path)
	return nil
}

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
	a.cfg = c
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
	return planUnits(c, func(ifname string, fam vrrp.Family) (netip.Addr, error) {
		return a.plat.PrimaryAddress(ifname, fam == vrrp.IPv6)
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
	return &failure{name: p.key.name, vrid: p.key.vrid, ifname: p.key.ifname, family: p.router.FSM.Family, syncGroup: group, reason: err.Error()}
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
		if o.key != p.key || o.sockGroup != p.sockGroup || o.router.FSM.Interface != p.router.FSM.Interface ||
			(o.vmac == nil) != (p.vmac == nil) || o.vmac != nil && *o.vmac != *p.vmac {
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
		cfgs := make([]router.Config, len(up.plans))
		for k, p := range up.plans {
			cfgs[k] = p.router
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
	a.lbTask = goTask(a.log, "load balancer", func(ctx context.Context) error {
		return untilCancelled(ctx, b.Run(ctx, c))
	})
	select { // so a reload right after start reaches a running balancer
	case <-b.Started():
	case <-a.lbTask.done:
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
		sk := sockKey{p.router.FSM.Interface, p.router.FSM.Family}
		s, err := a.socket(sk, p.sockGroup)
		if err != nil {
			undo()
			return err
		}
		socks = append(socks, sk)
		members = append(members, router.Member{Config: p.router, Conn: s.conn})
	}
	inst, err := router.NewGroup(up.name, members, router.Deps{Addrs: a.addrs, Announcer: a.plat, Sink: a.sink, Log: a.log})
	if err != nil {
		undo()
		return err
	}
	u := &unit{name: up.name, inst: inst}
	a.mu.Lock()
	defer a.mu.Unlock()
	for k, p := range up.plans {
		r := &running{unit: u, idx: k, plan: p, lastPrio: p.router.FSM.Priority}
		r.set = a.newSet(p)
		u.members = append(u.members, r)
		a.insts[p.key] = r
	}
	a.units[up.name] = u
	if up.group != "" {
		var names []string
		for _, p := range up.plans {
			names = append(names, p.key.name)
		}
		a.groups.set(up.group, names)
	}
	u.task = goTask(a.log, up.name, inst.Run)
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
			delete(a.insts, r.plan.key)
			socks = append(socks, sockKey{r.plan.router.FSM.Interface, r.plan.router.FSM.Family})
			if r.plan.vmac != nil {
				vmacs = append(vmacs, *r.plan.vmac)
			}
		}
	}
	a.mu.Unlock()
	a.releaseSockets(socks)
	for _, v := range vmacs {
		if err := a.plat.RemoveVMAC(v); err != nil {
			a.log.Warn("removing VMAC", "interface", v.LinkName(), "err", err)
		}
	}
}

// onTracker records a tracker's new state and hands every instance that
// follows it its new priority or fault.
func (a *Agent) onTracker(kind track.Kind, name string, st track.State, cause uint64) {
	a.mu.Lock()
	defer a.mu.Unlock()
	st.Known = true
	a.states[trackerKey{kind, name}] = st
	for _, r := range a.insts {
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

// Status is a snapshot of every instance, sorted by name: the running ones,
// and those that could not start, in FAULT with FaultReason.
func (a *Agent) Status() []InstanceStatus {
	a.mu.Lock()
	defer a.mu.Unlock()
	out := make([]InstanceStatus, 0, len(a.insts)+len(a.failed))
	for _, r := range a.insts {
		s := InstanceStatus{Snapshot: r.unit.inst.Snapshots()[r.idx]}
		if len(r.unit.members) > 1 || strings.HasPrefix(r.unit.name, "group:") {
			s.SyncGroup = strings.TrimPrefix(r.unit.name, "group:")
		}
		for _, v := range r.plan.router.VIPs {
			s.VIPs = append(s.VIPs, v.Prefix.String())
		}
		for _, c := range r.set.Contributions() {
			s.Trackers = append(s.Trackers, TrackerStatus{Kind: c.Ref.Kind.String(), Name: c.Ref.Name, Weight: c.Ref.Weight,
				Known: c.State.Known, Up: c.State.Up, Value: c.State.Value, Delta: c.Delta, Fault: c.Fault})
		}
		out = append(out, s)
	}
	for _, f := range a.failed {
		s := InstanceStatus{Snapshot: router.Snapshot{Name: f.name, VRID: uint8(f.vrid), Interface: f.ifname, Family: f.family,
			State: vrrp.StateFault, LastReason: event.ReasonFault}, SyncGroup: f.syncGroup, FaultReason: f.reason}
		if a.cfg != nil {
			for i := range a.cfg.Instances {
				if in := &a.cfg.Instances[i]; in.Name == f.name {
					s.BasePriority, s.Priority = in.Priority, in.Priority
					for _, v := range in.VIPs {
						s.VIPs = append(s.VIPs, v.Prefix.String())
					}
				}
			}
		}
		out = append(out, s)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// Failed lists the instances that could not start, as "vrrp_instance NAME:
// reason", sorted.
func (a *Agent) Failed() []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	out := make([]string, 0, len(a.failed))
	for _, f := range a.failed {
		out = append(out, "vrrp_instance "+f.name+": "+f.reason)
	}
	sort.Strings(out)
	return out
}

// InstanceStatus is one instance in the status API.
type InstanceStatus struct {
	router.Snapshot
	SyncGroup string
	VIPs      []string
	Trackers  []TrackerStatus
	// FaultReason says why an instance that could not start is in FAULT.
	FaultReason string
}

// TrackerStatus is one tracker's share of an instance's priority.
type TrackerStatus struct {
	Kind   string `json:"kind"`
	Name   string `json:"name"`
	Weight int    `json:"weight"`
	Known  bool   `json:"known"`
	Up     bool   `json:"up"`
	Value  int64  `json:"value,omitempty"`
	Delta  int    `json:"priority_delta"`
	Fault  bool   `json:"fault,omitempty"`
}

// socket returns the shared VRRP socket of an interface and family,
// opening it and starting its read loop on first use.
func (a *Agent) socket(k sockKey, group netip.Addr) (*sock, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if s, ok := a.socks[k]; ok {
		s.users++
		return s, nil
	}
	cfg := netif.Config{Group: group, Unknown: a.unknownVRID(k)}
	conn, err := a.plat.Listen(k.ifname, k.family == vrrp.IPv6, cfg)
	if err != nil {
		return nil, fmt.Errorf("VRRP socket on %s (%v): %w", k.ifname, k.family, err)
	}
	s := &sock{conn: conn, users: 1}
	s.task = goTask(a.log, fmt.Sprintf("socket %s %v", k.ifname, k.family), func(ctx context.Context) error {
		// Close ends the read loop at once (cancelling alone may wait for
		// a packet on a quiet link), and the socket is closed when the
		// task is done, before shutdown moves on to the platform.
		closed := make(chan struct{})
		stop := context.AfterFunc(ctx, func() { _ = conn.Close(); close(closed) })
		err := conn.Run(ctx)
		if stop() {
			_ = conn.Close()
		} else {
			<-closed
		}
		return untilCancelled(ctx, err)
	})
	a.socks[k] = s
	return s, nil
}

// releaseSockets closes each socket whose last instance stopped.
func (a *Agent) releaseSockets(keys []sockKey) {
	var stop []*task
	a.mu.Lock()
	for _, k := range keys {
		s, ok := a.socks[k]
		if !ok {
			continue
		}
		if s.users--; s.users > 0 {
			continue
		}
		stop = append(stop, s.task)
		delete(a.socks, k)
	}
	a.mu.Unlock()
	stopAll(stop)
}

// removeStale removes the config's VIPs that are already on their
// interfaces at start: left by a crashed earlier run, they would make two
// hosts answer for them (keepalived does the same at startup).
func (a *Agent) removeStale(c *config.Config) {
	var want []netif.Address
	for i := range c.Instances {
		in := &c.Instances[i]
		for _, list := range [][]config.Address{in.VIPs, in.ExcludedVIPs} {
			for _, v := range list {
				if na, err := address(v, in.Interface); err == nil {
					want = append(want, na)
				}
			}
		}
	}
	removed, err := a.plat.RemoveStale(want)
	if err != nil {
		a.log.Warn("removing stale VIPs", "err", err)
	}
	for _, r := range removed {
		a.log.Info("removed a VIP left by an earlier run", "address", r.Prefix.String(), "interface", r.Dev)
	}
}

// unknownVRID reports adverts for a VRID no instance on the interface runs
// (drop reason vrid_unknown): another cluster sharing the segment, or a
// peer whose config disagrees with ours.
func (a *Agent) unknownVRID(k sockKey) netif.Handler {
	return netif.HandlerFunc(func(p *netif.Packet) {
		a.sink.Emit(event.Event{Kind: event.KindAdvertDropped, ID: event.NewID(), Time: time.Now(), VRID: p.VRID(),
			Interface: k.ifname, Family: k.family, Reason: event.DropVRIDUnknown, Addr: p.Src})
	})
}
