package agent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"reflect"
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
	// Lookup finds interface addresses; nil uses the host's.
	Lookup AddrLookup
	// OnConfig, if set, is called with every config the agent starts
	// running (at start and after each accepted reload), before it is applied.
	OnConfig func(*config.Config)
	// OnGroup, if set, is called when a sync group's state changes.
	OnGroup func(GroupChange)
	// Balancer runs the config's virtual servers (health checks and IPVS);
	// nil makes one (with Sink and Log) when a config has virtual servers.
	Balancer *lb.Balancer
}

// Agent runs a configuration and reloads it by difference.
type Agent struct {
	opts Options
	log  *slog.Logger
	sink event.Sink

	mu    sync.Mutex
	cfg   *config.Config
	sys   *netif.System
	addrs *serialAddrs // address changes, on one goroutine
	socks map[sockKey]*sock
	// annc has its own lock: instance goroutines take it while a.mu may be
	// held by someone waiting for an instance to stop.
	anncMu   sync.Mutex
	annc     map[string]*netif.Gratuitous
	insts    map[instanceKey]*running
	units    map[string]*unit
	trackers map[trackerKey]*runningTracker
	states   map[trackerKey]track.State

	ctx    context.Context
	ready  atomic.Bool
	groups *groups

	// The load balancer: started by the first config with virtual servers,
	// reloaded with the instances, stopped after them.
	lbMu     sync.Mutex
	lb       *lb.Balancer
	lbCancel context.CancelFunc
	lbDone   chan struct{}
}

type sockKey struct {
	ifname string
	family vrrp.Family
}

type sock struct {
	conn   *netif.Conn
	cancel context.CancelFunc
	done   chan struct{}
	users  int
}

// unit is one router goroutine: a lone instance, or a sync group's members.
type unit struct {
	name    string
	members []*running
	inst    *router.Instance
	cancel  context.CancelFunc
	done    chan struct{}
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

type trackerKey struct {
	kind track.Kind
	name string
}

type runningTracker struct {
	spec   any // the config it was started from, to compare on reload
	cancel context.CancelFunc
	done   chan struct{}
}

// New returns an agent; Run starts it.
func New(opts Options) *Agent {
	if opts.Sink == nil {
		opts.Sink = event.Discard
	}
	if opts.Log == nil {
		opts.Log = slog.New(slog.DiscardHandler)
	}
	if opts.Lookup == nil {
		opts.Lookup = primaryAddr
	}
	g := newGroups(opts.OnGroup)
	return &Agent{
		opts: opts, log: opts.Log, sink: event.Multi{opts.Sink, g}, groups: g, lb: opts.Balancer,
		socks: map[sockKey]*sock{}, annc: map[string]*netif.Gratuitous{},
		insts: map[instanceKey]*running{}, units: map[string]*unit{}, trackers: map[trackerKey]*runningTracker{},
		states: map[trackerKey]track.State{},
	}
}

// Ready reports whether the config is loaded and the instances' sockets are open.
func (a *Agent) Ready() bool { return a.ready.Load() }

// Config returns the config being run.
func (a *Agent) Config() *config.Config {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.cfg
}

// ErrConfig is returned (wrapped) when a config has errors.
var ErrConfig = errors.New("config has errors")

func (a *Agent) load() (*config.Config, error) {
	start := time.Now()
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
	a.sink.Emit(event.Event{Kind: event.KindConfigLoaded, ID: event.NewID(), Time: time.Now(), Name: a.opts.Path, Duration: time.Since(start), OK: true})
	return c, nil
}

// Run loads the config, starts everything and blocks until ctx is
// cancelled; then every master resigns (priority 0) and removes its VIPs.
func (a *Agent) Run(ctx context.Context) error {
	c, err := a.load()
	if err != nil {
		return err
	}
	sys, err := netif.Open()
	if err != nil {
		return fmt.Errorf("netlink: %w", err)
	}
	a.sys = sys
	defer sys.Close()
	a.addrs = newSerialAddrs(sys)
	// Deferred after sys.Close is registered, so it runs first: every
	// instance has stopped by then (stopAll), so no call can follow.
	defer a.addrs.close()
	a.ctx = ctx

	// Link state drives track_interface and the instances' own interfaces.
	linkCtx, linkCancel := context.WithCancel(context.Background())
	linksKnown := make(chan struct{})
	var once sync.Once
	go func() {
		err := sys.WatchLinksErrors(linkCtx, func(ev netif.LinkEvent) {
			a.onTracker(track.KindInterface, ev.Name, track.State{Known: true, Up: ev.Up && !ev.Deleted}, 0)
			e := event.Event{Kind: event.KindInterfaceChanged, ID: event.NewID(), Time: time.Now(), Interface: ev.Name, OK: ev.Up && !ev.Deleted}
			if ev.Deleted {
				e.Reason = event.ReasonDeleted
				a.forgetAnnouncer(ev.Name)
			}
			a.sink.Emit(e)
			once.Do(func() { close(linksKnown) })
		}, func(err error) { a.log.Warn("link watch: subscribing again", "err", err) })
		if err != nil && linkCtx.Err() == nil {
			a.log.Error("link watch stopped", "err", err)
		}
		once.Do(func() { close(linksKnown) })
	}()
	select {
	case <-linksKnown:
	case <-time.After(2 * time.Second):
	}
	// Seed every interface's state now, so instances do not start in FAULT
	// waiting for the link watch to report their interface.
	if ifs, err := net.Interfaces(); err == nil {
		for _, ifi := range ifs {
			up := ifi.Flags&net.FlagUp != 0 && ifi.Flags&net.FlagRunning != 0
			a.onTracker(track.KindInterface, ifi.Name, track.State{Known: true, Up: up}, 0)
		}
	}

	a.removeStale(c)
	if err := a.apply(c); err != nil {
		linkCancel()
		a.stopAll()
		return err
	}
	// Parsing and building left garbage that a steady state, which
	// allocates almost nothing, would keep for a long time.
	debug.FreeOSMemory()
	a.ready.Store(true)
	<-ctx.Done()
	a.ready.Store(false)
	a.stopAll()
	// After the instances: masters have resigned before the real servers
	// leave the table.
	a.stopBalancer()
	linkCancel()
	return nil
}

// Reload reads the config again. A config with errors is rejected, counted
// and logged, and the agent keeps running the old one with every VIP it
// holds (DESIGN.md §1).
func (a *Agent) Reload() error {
	c, err := a.load()
	if err == nil {
		err = a.apply(c)
	}
	if err != nil {
		// The log sink reports the KindReloadRejected event at error level.
		a.log.Debug("reload rejected: keeping the running config", "err", err)
		a.sink.Emit(event.Event{Kind: event.KindReloadRejected, ID: event.NewID(), Time: time.Now(), Name: a.opts.Path, Err: err})
		return err
	}
	debug.FreeOSMemory()
	a.log.Info("reloaded", "path", a.opts.Path)
	return nil
}

// apply makes the running set match c: unchanged instances keep running
// untouched (state, VIPs, counters), changed ones restart, removed ones
// stop. A sync group runs as one unit and restarts whole when any member
// or its membership changes.
func (a *Agent) apply(c *config.Config) error {
	plans := map[instanceKey]*plan{}
	byName := map[string]*plan{}
	var order []instanceKey
	for i := range c.Instances {
		p, err := buildPlan(c, &c.Instances[i], a.opts.Lookup)
		if err != nil {
			return err
		}
		plans[p.key] = p
		byName[p.router.FSM.Name] = p
		order = append(order, p.key)
	}
	// Units: each sync group with its members, then every other instance alone.
	type unitPlan struct {
		name  string
		plans []*plan
	}
	var want []unitPlan
	grouped := map[string]bool{}
	for _, sg := range c.SyncGroups {
		up := unitPlan{name: "group:" + sg.Name}
		for _, m := range sg.Members {
			if p, ok := byName[m]; ok && !grouped[m] {
				up.plans = append(up.plans, p)
				grouped[m] = true
			}
		}
		if len(up.plans) > 0 {
			want = append(want, up)
		}
	}
	for _, k := range order {
		if p := plans[k]; !grouped[p.router.FSM.Name] {
			want = append(want, unitPlan{name: "instance:" + p.router.FSM.Name, plans: []*plan{p}})
		}
	}
	if a.opts.OnConfig != nil {
		a.opts.OnConfig(c)
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	a.cfg = c
	keep := map[string]bool{}
	for _, up := range want {
		u, ok := a.units[up.name]
		if !ok || len(u.members) != len(up.plans) {
			continue
		}
		same := true
		for k, p := range up.plans {
			same = same && u.members[k].plan.key == p.key && reflect.DeepEqual(u.members[k].plan.router, p.router)
		}
		if !same {
			continue
		}
		keep[up.name] = true
		for k, p := range up.plans {
			r := u.members[k]
			if !reflect.DeepEqual(p.refs, r.plan.refs) {
				r.plan.refs = p.refs
				r.set = a.newSet(p)
				a.pushPriority(r, 0)
			}
		}
	}
	for name, u := range a.units {
		if !keep[name] {
			a.stopUnit(u)
		}
	}
	a.syncTrackers(c)
	for _, up := range want {
		if keep[up.name] {
			continue
		}
		if err := a.startUnit(up.name, up.plans); err != nil {
			a.log.Error("starting", "unit", up.name, "err", err)
		}
	}
	a.syncBalancer(c)
	return nil
}

// syncBalancer starts the load balancer on the first config with virtual
// servers and hands it every later config (a reload by difference).
func (a *Agent) syncBalancer(c *config.Config) {
	a.lbMu.Lock()
	defer a.lbMu.Unlock()
	if a.lbDone != nil {
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
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	a.lbCancel, a.lbDone = cancel, done
	go func() {
		defer close(done)
		if err := b.Run(ctx, c); err != nil {
			a.log.Error("load balancer stopped", "err", err)
		}
	}()
	select { // so a reload right after start reaches a running balancer
	case <-b.Started():
	case <-done:
	}
}

// stopBalancer stops the load balancer (omega, lvs_flush_on_stop) and
// waits for it.
func (a *Agent) stopBalancer() {
	a.lbMu.Lock()
	defer a.lbMu.Unlock()
	if a.lbDone != nil {
		a.lbCancel()
		<-a.lbDone
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

func (a *Agent) newSet(p *plan) *track.Set {
	s := track.NewSet(p.router.FSM.Priority, p.refs)
	for k, st := range a.states {
		s.Update(k.kind, k.name, st)
	}
	return s
}

func (a *Agent) startUnit(name string, plans []*plan) error {
	var members []router.Member
	var socks []sockKey
	release := func() {
		for _, k := range socks {
			a.releaseSocket(k)
		}
	}
	for _, p := range plans {
		if p.vmac != nil {
			if err := a.sys.AddVMAC(*p.vmac); err != nil {
				release()
				return fmt.Errorf("vrrp_instance %s: use_vmac: %w", p.router.FSM.Name, err)
			}
		}
		sk := sockKey{p.router.FSM.Interface, p.router.FSM.Family}
		s, err := a.socket(sk, p.sockGroup)
		if err != nil {
			release()
			return err
		}
		socks = append(socks, sk)
		members = append(members, router.Member{Config: p.router, Conn: s.conn})
	}
	inst, err := router.NewGroup(name, members, router.Deps{Addrs: a.addrs, Announcer: announcer{a}, Sink: a.sink, Log: a.log})
	if err != nil {
		release()
		return err
	}
	ctx, cancel := context.WithCancel(context.Background())
	u := &unit{name: name, inst: inst, cancel: cancel, done: make(chan struct{})}
	for k, p := range plans {
		r := &running{unit: u, idx: k, plan: p, lastPrio: p.router.FSM.Priority}
		r.set = a.newSet(p)
		u.members = append(u.members, r)
		a.insts[p.key] = r
	}
	a.units[name] = u
	if len(plans) > 1 {
		var names []string
		for _, p := range plans {
			names = append(names, p.router.FSM.Name)
		}
		a.groups.set(strings.TrimPrefix(name, "group:"), names)
	}
	go func() {
		defer close(u.done)
		_ = inst.Run(ctx)
	}()
	for _, r := range u.members {
		a.pushPriority(r, 0)
	}
	return nil
}

func (a *Agent) stopUnit(u *unit) {
	u.cancel()
	<-u.done
	delete(a.units, u.name)
	if len(u.members) > 1 {
		a.groups.remove(strings.TrimPrefix(u.name, "group:"))
	}
	for _, r := range u.members {
		delete(a.insts, r.plan.key)
		a.releaseSocket(sockKey{r.plan.router.FSM.Interface, r.plan.router.FSM.Family})
		if r.plan.vmac != nil {
			if err := a.sys.RemoveVMAC(*r.plan.vmac); err != nil {
				a.log.Warn("removing VMAC", "interface", r.plan.vmac.LinkName(), "err", err)
			}
		}
	}
}

// stopAll stops every instance (masters resign first), then trackers and sockets.
func (a *Agent) stopAll() {
	a.mu.Lock()
	var trackersDone []chan struct{}
	defer func() {
		a.mu.Unlock()
		// Outside the lock: a stopping tracker may be waiting for it.
		for _, d := range trackersDone {
			<-d
		}
	}()
	for _, u := range a.units {
		u.cancel()
	}
	for _, u := range a.units {
		a.stopUnit(u)
	}
	for k, t := range a.trackers {
		t.cancel()
		trackersDone = append(trackersDone, t.done)
		delete(a.trackers, k)
	}
	a.anncMu.Lock()
	for name, g := range a.annc {
		g.Close()
		delete(a.annc, name)
	}
	a.anncMu.Unlock()
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

// pushPriority tells an instance about a changed effective priority or fault.
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

// Status is a snapshot of every instance, sorted by name.
func (a *Agent) Status() []InstanceStatus {
	a.mu.Lock()
	defer a.mu.Unlock()
	out := make([]InstanceStatus, 0, len(a.insts))
	for _, r := range a.insts {
		s := InstanceStatus{Snapshot: r.unit.inst.Snapshots()[r.idx]}
		if len(r.unit.members) > 1 {
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
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// InstanceStatus is one instance in the status API.
type InstanceStatus struct {
	router.Snapshot
	SyncGroup string
	VIPs      []string
	Trackers  []TrackerStatus
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

// announcer sends gratuitous ARPs / NAs through one packet socket per interface.
type announcer struct{ a *Agent }

func (an announcer) Announce(ifname string, vip netip.Addr) error {
	an.a.anncMu.Lock()
	g, ok := an.a.annc[ifname]
	if !ok {
		var err error
		if g, err = netif.NewGratuitous(ifname); err != nil {
			an.a.anncMu.Unlock()
			return err
		}
		an.a.annc[ifname] = g
	}
	an.a.anncMu.Unlock()
	return g.Announce(vip)
}

// forgetAnnouncer closes a deleted interface's announcer socket: one made
// for an interface of that name later (a VMAC recreated) gets its own.
func (a *Agent) forgetAnnouncer(ifname string) {
	a.anncMu.Lock()
	defer a.anncMu.Unlock()
	if g, ok := a.annc[ifname]; ok {
		g.Close()
		delete(a.annc, ifname)
	}
}

// socket returns the shared VRRP socket of an interface and family,
// opening it on first use.
func (a *Agent) socket(k sockKey, group netip.Addr) (*sock, error) {
	if s, ok := a.socks[k]; ok {
		s.users++
		return s, nil
	}
	cfg := netif.Config{Group: group, Unknown: a.unknownVRID(k)}
	var conn *netif.Conn
	var err error
	if k.family == vrrp.IPv4 {
		conn, err = netif.ListenIPv4(k.ifname, cfg)
	} else {
		conn, err = netif.ListenIPv6(k.ifname, cfg)
	}
	if err != nil {
		return nil, fmt.Errorf("VRRP socket on %s (%v): %w", k.ifname, k.family, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &sock{conn: conn, cancel: cancel, done: make(chan struct{}), users: 1}
	go func() {
		defer close(s.done)
		_ = conn.Run(ctx)
	}()
	a.socks[k] = s
	return s, nil
}

// releaseSocket closes a socket when its last instance stops.
func (a *Agent) releaseSocket(k sockKey) {
	s, ok := a.socks[k]
	if !ok {
		return
	}
	if s.users--; s.users > 0 {
		return
	}
	s.cancel()
	s.conn.Close()
	<-s.done
	delete(a.socks, k)
}

// removeStale removes what a run killed without its shutdown left behind,
// before any instance starts: the config's VIPs wherever they are and its
// VMAC interfaces (netif.RemoveLeftovers). Left there, they would make two
// hosts answer for the VIPs (keepalived clears its VIPs at startup too).
func (a *Agent) removeStale(c *config.Config) {
	var want []netif.Address
	var vmacs []netif.VMAC
	for i := range c.Instances {
		in := &c.Instances[i]
		for _, list := range [][]config.Address{in.VIPs, in.ExcludedVIPs} {
			for _, v := range list {
				if na, err := address(v, in.Interface); err == nil {
					want = append(want, na)
				}
			}
		}
		if in.VMAC != nil {
			vmacs = append(vmacs, netif.VMAC{Name: in.VMAC.Name, Parent: in.Interface, VRID: uint8(in.VRID), IPv6: vrrp.Family(in.Family()) == vrrp.IPv6})
		}
	}
	left, err := a.sys.RemoveLeftovers(want, vmacs)
	if err != nil {
		a.log.Warn("removing what an earlier run left", "err", err)
	}
	for _, name := range left.VMACs {
		a.log.Info("removed a VMAC left by an earlier run", "interface", name)
	}
	for _, r := range left.VIPs {
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
