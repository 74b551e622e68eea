package lb

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"reflect"
	"slices"
	"sync"
	"time"

	"github.com/vishvananda/netlink"

	"github.com/keepwatch/keepwatch/engine/check"
	"github.com/keepwatch/keepwatch/engine/config"
	"github.com/keepwatch/keepwatch/engine/event"
	"github.com/keepwatch/keepwatch/engine/ipvs"
)

// DefaultResyncInterval is how often the kernel's table is read back and
// repaired when Options.ResyncInterval is zero. keepalived never does this:
// an `ipvsadm -C` behind its back stays until the next reload.
const DefaultResyncInterval = 10 * time.Second

// ErrNotRunning is returned by Update when Run is not running.
var ErrNotRunning = errors.New("lb: balancer is not running")

// Options configure a Balancer.
type Options struct {
	// Sink receives the checkers' events (KindProbe, KindRealServer with
	// Name set to the checker type that decided), KindQuorum and the
	// reconciler's events. It is called from many goroutines at once.
	Sink event.Sink
	Log  *slog.Logger
	// Kernel is the IPVS to program; nil opens the kernel's (ipvs.Open).
	Kernel ipvs.Kernel
	// ResyncInterval is the period of the read-back repair
	// (DefaultResyncInterval if zero).
	ResyncInterval time.Duration
	// Lateness, if set, is told how late each probe started (check.Options).
	Lateness func(time.Duration)
	// MaxConcurrent bounds the probes in flight (check.Options).
	MaxConcurrent int
	// LocalAddrs lists this host's addresses, for ha_suspend; nil reads
	// them through netlink. AddrPoll is how often (default 1 s).
	LocalAddrs func() ([]netip.Addr, error)
	AddrPoll   time.Duration
}

// Balancer keeps the kernel's IPVS table following the health of the
// config's real servers, as keepalived's checker process does: each
// real-server change re-evaluates only its virtual server's pool (quorum,
// hysteresis, sorry server, inhibit_on_failure) and updates only that
// virtual server's services in the kernel.
type Balancer struct {
	opts Options
	log  *slog.Logger
	sink event.Sink

	// life serialises Run's start and stop with Update.
	life    sync.Mutex
	running bool
	started chan struct{} // closed once Run has started
	ctx     context.Context
	sched   *check.Scheduler
	cancel  context.CancelFunc
	done    chan struct{}

	// smu guards the scheduler the ha_suspend watch suspends in, and what
	// it suspended: by service name, true while suspended.
	smu       sync.Mutex
	ssched    *check.Scheduler
	suspended map[string]bool

	// kmu serialises kernel work and the quorum events it decides, so an
	// evaluation made before a reload is never applied after it.
	kmu    sync.Mutex
	rec    *ipvs.Reconciler // nil while IPVS is unavailable
	kernel ipvs.Kernel      // what rec programs
	// kerr is why there is no reconciler.
	kerr error

	// mu guards the state below; checker events take it briefly.
	mu    sync.Mutex
	cfg   *config.Config
	vss   []*vsState
	index map[serverKey]*serverRef
	dirty map[*vsState]bool
	kick  chan struct{}
}

// vsState is one virtual server and what the balancer last made of it.
type vsState struct {
	name string // check.ServiceName
	conf ipvs.VirtualServer
	v    ipvs.VirtualServer // Servers carry live health
	keys []ipvs.Key

	quorum  ipvs.QuorumState
	applied bool // last holds what was handed to the kernel
	last    ipvs.Result
	cause   uint64 // ID of the real-server event that last changed it
	// first is each real server's first checker type, by "ip:port", for
	// the events Run sends at stop.
	first map[string]string
}

type serverKey struct{ service, target string }

// serverRef finds a checked real server in the virtual servers.
type serverRef struct {
	refs    []rsRef
	checker string // type of the checker that probed last
	first   string // type of its first checker
	probe   uint64 // ID of its last probe event
}

type rsRef struct {
	vs *vsState
	rs int
}

// New returns a balancer; Run starts it.
func New(opts Options) *Balancer {
	if opts.Sink == nil {
		opts.Sink = event.Discard
	}
	if opts.Log == nil {
		opts.Log = slog.New(slog.DiscardHandler)
	}
	if opts.ResyncInterval <= 0 {
		opts.ResyncInterval = DefaultResyncInterval
	}
	if opts.AddrPoll <= 0 {
		opts.AddrPoll = time.Second
	}
	if opts.LocalAddrs == nil {
		opts.LocalAddrs = localAddrs
	}
	return &Balancer{opts: opts, log: opts.Log, sink: opts.Sink, kick: make(chan struct{}, 1), started: make(chan struct{})}
}

// Started is closed once Run has programmed the config and started the
// checkers, so Update can be called. A Balancer runs once.
func (b *Balancer) Started() <-chan struct{} { return b.started }

// plan is a config turned into the balancer's terms.
type plan struct {
	cfg     *config.Config
	vss     []*vsState
	servers []check.RealServer
	index   map[serverKey]*serverRef
}

func build(cfg *config.Config) (*plan, error) {
	ivs, err := ipvs.FromConfig(cfg)
	if err != nil {
		return nil, err
	}
	servers, err := check.FromConfig(cfg)
	if err != nil {
		return nil, err
	}
	p := &plan{cfg: cfg, servers: servers, index: map[serverKey]*serverRef{}}
	for i := range ivs {
		vs := &vsState{name: check.ServiceName(&cfg.VirtualServers[i]), conf: ivs[i], v: ivs[i], first: map[string]string{}}
		vs.conf.Servers = slices.Clone(ivs[i].Servers)
		for _, s := range ivs[i].Services {
			vs.keys = append(vs.keys, s.Key)
		}
		p.vss = append(p.vss, vs)
	}
	// check.FromConfig lists one RealServer per config real_server, in
	// config order, as ipvs.FromConfig does: the k-th of one is the k-th
	// of the other.
	k := 0
	for i, vs := range p.vss {
		for j := range vs.v.Servers {
			if k >= len(servers) {
				return nil, fmt.Errorf("lb: virtual_server %s: checkers and IPVS disagree on its real servers", vs.name)
			}
			s := &servers[k]
			key := serverKey{s.Service, s.Target}
			ref := p.index[key]
			if ref == nil {
				ref = &serverRef{}
				if len(s.Checkers) > 0 {
					ref.first = string(s.Checkers[0].Type)
				}
				p.index[key] = ref
			}
			vs.first[vs.v.Servers[j].AddrPort().String()] = ref.first
			ref.refs = append(ref.refs, rsRef{vs: p.vss[i], rs: j})
			k++
		}
	}
	if k != len(servers) {
		return nil, errors.New("lb: checkers and IPVS disagree on the real servers")
	}
	return p, nil
}

// Run programs cfg's virtual servers and runs their health checks until
// ctx is cancelled; then it stops them as keepalived does (omega
// notifications, lvs_flush_on_stop) and returns nil. With lvs_flush it
// empties the kernel's table first. A kernel without IPVS is not an error:
// it is logged once, reported as a KindIPVSUnavailable event, and the
// checks still run and report. Run fails only on a config whose virtual
// servers cannot be mapped.
func (b *Balancer) Run(ctx context.Context, cfg *config.Config) error {
	p, err := build(cfg)
	if err != nil {
		return err
	}
	b.life.Lock()
	select {
	case <-b.started:
		b.life.Unlock()
		return errors.New("lb: Run called twice")
	default:
	}
	k := b.opts.Kernel
	if k == nil {
		// net_namespace_ipvs, else net_namespace (keepalived.conf(5)).
		h, err := ipvs.OpenNamespace(b.sink, cfg.Global.IPVSNamespace())
		if err != nil {
			b.log.Error("IPVS unavailable: virtual servers are health-checked but not programmed", "err", err)
			b.kerr = err
		} else {
			defer h.Close()
			k = h
		}
	}
	b.kmu.Lock()
	if k != nil {
		b.rec, b.kernel = ipvs.NewReconciler(k, b.sink), k
		b.setTimeouts(k, cfg)
		if cfg.Global.LVSFlush {
			if err := b.rec.Flush(); err != nil {
				b.log.Error("lvs_flush", "err", err)
			}
		}
	}
	b.mu.Lock()
	b.install(p)
	b.mu.Unlock()
	b.evaluateAll(true)
	rec := b.rec
	b.kmu.Unlock()

	b.ctx = ctx
	b.running = true
	var wg sync.WaitGroup
	wctx, wcancel := context.WithCancel(context.Background())
	wg.Add(1)
	go func() { defer wg.Done(); b.work(wctx) }()
	if rec != nil {
		wg.Add(1)
		go func() { defer wg.Done(); _ = rec.Run(wctx, b.opts.ResyncInterval) }()
	}
	// Before the first probe: a VS whose address is elsewhere starts
	// suspended (check_api.c register_checkers_thread: "Deactivating
	// healthchecker" when ha_suspend_addr_count is 0).
	b.checkSuspend()
	wg.Add(1)
	go func() { defer wg.Done(); b.watchSuspend(wctx) }()
	b.startScheduler(p.servers, nil)
	close(b.started)
	b.life.Unlock()

	<-ctx.Done()

	b.life.Lock()
	defer b.life.Unlock()
	b.stopScheduler()
	wcancel()
	wg.Wait()
	b.running = false
	b.kmu.Lock()
	defer b.kmu.Unlock()
	b.flushDirty() // health that arrived after the worker stopped
	b.mu.Lock()
	vss := b.vss
	b.vss, b.index, b.dirty = nil, nil, nil
	cfg = b.cfg
	b.mu.Unlock()
	for _, vs := range vss {
		b.stopVS(vs, event.ReasonShutdown)
	}
	if b.rec != nil {
		if cfg.Global.LVSFlushOnStop == "all" {
			if err := b.rec.Flush(); err != nil {
				b.log.Error("lvs_flush_on_stop", "err", err)
			}
		} else if _, err := b.rec.Stop(); err != nil {
			b.log.Error("removing virtual servers at stop", "err", err)
		}
	}
	b.rec, b.kernel, b.kerr = nil, nil, nil
	return nil
}

// TimeoutSetter is a Kernel that can set the connection timeouts
// (ipvs.Handle).
type TimeoutSetter interface {
	SetTimeouts(ipvs.Timeouts) error
}

// setTimeouts applies lvs_timeouts, as keepalived's checker does at start
// and on reload (ipvs_set_timeouts: nothing is sent when all three are
// zero, and a zero leaves its timeout as it is). The caller holds kmu.
func (b *Balancer) setTimeouts(k ipvs.Kernel, cfg *config.Config) {
	t := ipvs.Timeouts{TCP: cfg.Global.LVSTimeoutTCP, TCPFin: cfg.Global.LVSTimeoutFin, UDP: cfg.Global.LVSTimeoutUDP}
	ts, ok := k.(TimeoutSetter)
	if t.IsZero() || !ok {
		return
	}
	if err := ts.SetTimeouts(t); err != nil {
		b.log.Error("lvs_timeouts", "err", err)
	}
}

// install makes p the running state; the caller holds mu.
func (b *Balancer) install(p *plan) {
	b.cfg, b.vss, b.index = p.cfg, p.vss, p.index
	b.dirty = map[*vsState]bool{}
}

func (b *Balancer) startScheduler(servers []check.RealServer, old *check.Scheduler) {
	s := check.New(servers, check.Options{Sink: event.SinkFunc(b.onEvent), Lateness: b.opts.Lateness, MaxConcurrent: b.opts.MaxConcurrent, Log: b.opts.Log})
	if old != nil {
		s.Inherit(old)
	}
	b.smu.Lock()
	for name, off := range b.suspended {
		s.Suspend(name, off)
	}
	b.ssched = s
	b.smu.Unlock()
	ctx, cancel := context.WithCancel(b.ctx)
	done := make(chan struct{})
	b.sched, b.cancel, b.done = s, cancel, done
	go func() { defer close(done); _ = s.Run(ctx) }()
}

// stopScheduler stops the checkers and waits for their Run to return.
func (b *Balancer) stopScheduler() {
	if b.cancel != nil {
		b.cancel()
		<-b.done
	}
}

// onEvent is the checkers' sink: a real server's new health goes into its
// virtual servers, whose pools the worker re-evaluates; every event goes on
// to the balancer's sink.
func (b *Balancer) onEvent(e event.Event) {
	switch e.Kind {
	case event.KindProbe:
		if e.ID == 0 {
			e.ID = event.NewID()
		}
		b.mu.Lock()
		if ref := b.index[serverKey{e.Service, e.Target}]; ref != nil {
			ref.checker, ref.probe = e.Name, e.ID
		}
		b.mu.Unlock()
	case event.KindRealServer:
		if e.ID == 0 {
			e.ID = event.NewID()
		}
		b.mu.Lock()
		if ref := b.index[serverKey{e.Service, e.Target}]; ref != nil {
			// notify's mail names the checker that decided (keepalived's
			// "=> TCP CHECK failed on service <=").
			if e.Name == "" {
				e.Name = ref.checker
				if e.Name == "" || e.Reason != "" {
					e.Name = ref.first
				}
			}
			if e.Cause == 0 && e.Reason == "" {
				e.Cause = ref.probe
			}
			for _, r := range ref.refs {
				rs := &r.vs.v.Servers[r.rs]
				rs.Checked, rs.Up, rs.Weight = true, e.OK, int(e.Value)
				r.vs.cause = e.ID
				b.dirty[r.vs] = true
			}
		}
		b.mu.Unlock()
		select {
		case b.kick <- struct{}{}:
		default:
		}
	}
	b.sink.Emit(e)
}

// work applies dirty virtual servers until ctx is cancelled. Changes that
// arrive while it applies are coalesced into the next round.
func (b *Balancer) work(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-b.kick:
		}
		b.kmu.Lock()
		b.flushDirty()
		b.kmu.Unlock()
	}
}

// flushDirty evaluates the virtual servers whose real servers changed and
// updates their services in the kernel. The caller holds kmu.
func (b *Balancer) flushDirty() {
	b.mu.Lock()
	vss := make([]*vsState, 0, len(b.dirty))
	for _, vs := range b.vss { // config order, for a stable event order
		if b.dirty[vs] {
			vss = append(vss, vs)
		}
	}
	clear(b.dirty)
	services, quorum := b.evaluateLocked(vss, false)
	b.mu.Unlock()
	b.apply(services, quorum)
}

// evaluateAll evaluates every virtual server and makes the kernel hold
// them all (a Set). The caller holds kmu.
func (b *Balancer) evaluateAll(startup bool) {
	b.mu.Lock()
	services, quorum := b.evaluateLocked(b.vss, startup)
	b.mu.Unlock()
	if b.rec != nil {
		if _, err := b.rec.Set(services); err != nil {
			b.log.Error("programming IPVS", "err", err)
		}
	}
	b.emitAll(quorum)
}

// evaluateLocked runs each virtual server's pool rules and returns the
// services whose destinations changed and the quorum events to emit; the
// caller holds mu. With all, every service is returned.
func (b *Balancer) evaluateLocked(vss []*vsState, all bool) ([]ipvs.Service, []event.Event) {
	var services []ipvs.Service
	var quorum []event.Event
	for _, vs := range vss {
		svcs, res := vs.v.Desired(vs.quorum)
		if res.Quorum != vs.quorum {
			e := event.Event{Kind: event.KindQuorum, ID: event.NewID(), Cause: vs.cause, Time: time.Now(),
				Service: vs.name, OK: res.Quorum == ipvs.QuorumUp, Value: int64(res.LiveWeight)}
			if vs.quorum == ipvs.QuorumUnknown {
				e.Reason = event.ReasonStartup
			}
			quorum = append(quorum, e)
			vs.quorum = res.Quorum
		}
		if all || !vs.applied || !slices.Equal(res.Destinations, vs.last.Destinations) {
			services = append(services, svcs...)
		}
		vs.last, vs.applied = res, true
	}
	return services, quorum
}

// apply hands changed services to the kernel (only theirs: Update), then
// emits the quorum events. The caller holds kmu.
func (b *Balancer) apply(services []ipvs.Service, quorum []event.Event) {
	if b.rec != nil && len(services) > 0 {
		if _, err := b.rec.Update(services...); err != nil {
			// The reconciler re-reads the kernel on its next call and the
			// periodic resync repairs what is left.
			b.log.Error("updating IPVS", "err", err)
		}
	}
	b.emitAll(quorum)
}

func (b *Balancer) emitAll(es []event.Event) {
	for _, e := range es {
		b.sink.Emit(e)
	}
}

// stopVS reports a virtual server's stop (keepalived's omega: down
// notifications for the real servers that were up and for a quorum that
// was up). The caller holds kmu; the kernel work is the caller's.
func (b *Balancer) stopVS(vs *vsState, reason event.Reason) {
	res := ipvs.Stop(vs.v.Pool, vs.v.Servers, vs.quorum)
	now := time.Now()
	for _, ap := range res.NotifyDown {
		b.sink.Emit(event.Event{Kind: event.KindRealServer, ID: event.NewID(), Time: now, Service: vs.name,
			Target: ap.String(), OK: false, Reason: reason, Name: vs.first[ap.String()]})
	}
	if res.NotifyQuorumDown {
		b.sink.Emit(event.Event{Kind: event.KindQuorum, ID: event.NewID(), Time: now, Service: vs.name, OK: false, Reason: reason})
	}
}

// Update runs cfg instead of the running config (a reload): the checkers
// restart with their health carried over (check.Scheduler.Inherit), a
// virtual server whose config is unchanged keeps its state and is not
// touched in the kernel, a changed one keeps its real servers' health and
// quorum state and has only its differences applied, and a removed one is
// stopped (omega notifications) and taken out of the kernel.
func (b *Balancer) Update(cfg *config.Config) error {
	p, err := build(cfg)
	if err != nil {
		return err
	}
	b.life.Lock()
	defer b.life.Unlock()
	if !b.running {
		return ErrNotRunning
	}
	b.stopScheduler()
	old := b.sched

	b.kmu.Lock()
	if b.rec != nil {
		b.setTimeouts(b.kernel, cfg) // keepalived sets them again on reload (start_check)
	}
	b.flushDirty()
	b.mu.Lock()
	prev := make(map[string]*vsState, len(b.vss))
	for _, vs := range b.vss {
		prev[vs.name] = vs
	}
	var changed []*vsState
	same := map[*vsState]*vsState{}
	for i, vs := range p.vss {
		o := prev[vs.name]
		if o == nil {
			changed = append(changed, vs)
			continue
		}
		delete(prev, vs.name)
		if reflect.DeepEqual(o.conf, vs.conf) {
			p.vss[i] = o // untouched
			same[vs] = o
			continue
		}
		carry(o, vs)
		changed = append(changed, vs)
	}
	remap(p, same)
	var gone []ipvs.Key
	want := map[ipvs.Key]bool{}
	for _, vs := range p.vss {
		for _, k := range vs.keys {
			want[k] = true
		}
	}
	var removed []*vsState
	for _, vs := range b.vss {
		for _, k := range vs.keys {
			if !want[k] {
				gone = append(gone, k)
			}
		}
		if prev[vs.name] != nil {
			removed = append(removed, vs)
		}
	}
	b.mu.Unlock()
	for _, vs := range removed {
		b.stopVS(vs, event.ReasonReload)
	}
	b.mu.Lock()
	b.install(p)
	services, quorum := b.evaluateLocked(changed, false)
	b.mu.Unlock()
	if b.rec != nil && len(gone) > 0 {
		if _, err := b.rec.Remove(gone...); err != nil {
			b.log.Error("removing virtual servers", "err", err)
		}
	}
	b.apply(services, quorum)
	b.kmu.Unlock()

	b.startScheduler(p.servers, old)
	return nil
}

// carry moves what a changed virtual server keeps across a reload: its
// quorum state (hysteresis goes on) and its real servers' health, by
// address and port.
func carry(o, vs *vsState) {
	vs.quorum = o.quorum
	for i := range vs.v.Servers {
		rs := &vs.v.Servers[i]
		for _, ors := range o.v.Servers {
			if ors.AddrPort() == rs.AddrPort() && ors.Checked {
				rs.Checked, rs.Up = true, ors.Up
				if rs.Weight == configured(&o.conf, ors.AddrPort()) {
					rs.Weight = ors.Weight // a live (misc_dynamic) weight
				}
			}
		}
	}
}

func configured(v *ipvs.VirtualServer, ap netip.AddrPort) int {
	for _, rs := range v.Servers {
		if rs.AddrPort() == ap {
			return rs.Weight
		}
	}
	return -1
}

// remap points p's index at the running virtual servers that p keeps.
func remap(p *plan, same map[*vsState]*vsState) {
	if len(same) == 0 {
		return
	}
	for _, ref := range p.index {
		for r := range ref.refs {
			if o := same[ref.refs[r].vs]; o != nil {
				ref.refs[r].vs = o
			}
		}
	}
}

// localAddrs lists the addresses on this host's interfaces.
func localAddrs() ([]netip.Addr, error) {
	as, err := netlink.AddrList(nil, netlink.FAMILY_ALL)
	if err != nil {
		return nil, err
	}
	out := make([]netip.Addr, 0, len(as))
	for _, a := range as {
		if ip, ok := netip.AddrFromSlice(a.IP); ok {
			out = append(out, ip.Unmap())
		}
	}
	return out, nil
}

// watchSuspend re-checks ha_suspend every AddrPoll until ctx ends.
func (b *Balancer) watchSuspend(ctx context.Context) {
	t := time.NewTicker(b.opts.AddrPoll)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			b.checkSuspend()
		}
	}
}

// checkSuspend applies ha_suspend: the checkers of a virtual server with
// ha_suspend run only while its address is on this host, as keepalived's
// checker follows address changes (update_checker_activity: "Activating
// healthchecker" / "Suspending healthchecker"). Only address virtual
// servers have an address to follow.
func (b *Balancer) checkSuspend() {
	b.mu.Lock()
	want := map[string]netip.Addr{}
	if b.cfg != nil {
		for i := range b.cfg.VirtualServers {
			vs := &b.cfg.VirtualServers[i]
			if vs.HASuspend && vs.Group == "" && vs.FWMark == 0 && vs.Addr.IsValid() {
				want[check.ServiceName(vs)] = vs.Addr.Unmap()
			}
		}
	}
	b.mu.Unlock()
	local := map[netip.Addr]bool{}
	if len(want) > 0 {
		addrs, err := b.opts.LocalAddrs()
		if err != nil {
			b.log.Error("ha_suspend: listing local addresses", "err", err)
			return
		}
		for _, a := range addrs {
			local[a.Unmap()] = true
		}
	}
	b.smu.Lock()
	defer b.smu.Unlock()
	if b.suspended == nil {
		b.suspended = map[string]bool{}
	}
	for name := range b.suspended {
		if _, ok := want[name]; !ok {
			delete(b.suspended, name)
			if b.ssched != nil {
				b.ssched.Suspend(name, false)
			}
		}
	}
	for name, addr := range want {
		off := !local[addr]
		if was, seen := b.suspended[name]; seen && was == off {
			continue
		}
		b.suspended[name] = off
		if off {
			b.log.Info("ha_suspend: suspending the health checkers: the address is not on this host", "service", name)
		} else {
			b.log.Info("ha_suspend: activating the health checkers", "service", name)
		}
		if b.ssched != nil {
			b.ssched.Suspend(name, off)
		}
	}
}
