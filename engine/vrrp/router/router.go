package router

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/keepwatch/keepwatch/engine/event"
	"github.com/keepwatch/keepwatch/engine/netif"
	"github.com/keepwatch/keepwatch/engine/vrrp"
	"github.com/keepwatch/keepwatch/engine/vrrp/fsm"
	"github.com/keepwatch/keepwatch/engine/vrrp/receive"
)

// Conn is what an instance needs of its interface's VRRP socket.
type Conn interface {
	netif.Sender
	netif.Registrar
}

// Addresses adds and removes what a master holds: VIPs, routes and rules.
type Addresses interface {
	AddAddress(netif.Address) error
	RemoveAddress(netif.Address) error
	AddRoute(netif.Route) error
	RemoveRoute(netif.Route) error
	AddRule(netif.Rule) error
	RemoveRule(netif.Rule) error
}

// Announcer sends one gratuitous ARP (IPv4) or unsolicited neighbour
// advertisement (IPv6) for a virtual address on an interface.
type Announcer interface {
	Announce(ifname string, addr netip.Addr) error
}

// Config is one instance, resolved from the configuration model.
type Config struct {
	FSM     fsm.Config
	Receive receive.Instance
	// Src is the source of IPv4 adverts (unicast_src_ip, mcast_src_ip or the
	// interface's primary address) and of IPv6 unicast ones; IPv6 multicast
	// adverts use the link-local address.
	Src netip.Addr
	// Dsts are the advert destinations: the multicast group, or one entry
	// per unicast_peer (keepalived sends one copy to each, reference §2.1).
	Dsts []netip.Addr
	// TTL for IPv4 adverts (255, or unicast_ttl); HopLimit for IPv6 unicast
	// (0: kernel default, as keepalived without unicast_ttl).
	TTL      uint8
	HopLimit int
	// Checksum mode for v3 over IPv4 (v3_checksum_as_v2).
	Checksum vrrp.ChecksumMode
	// AuthType and AuthData are sent in v2 adverts. With vrrp.AuthAH,
	// AuthData is the key of the AH ICV (the NUL-padded auth_pass) and the
	// message's own authentication field stays zero, as keepalived sends
	// it; IPv4 adverts then go behind an AH header (IP protocol 51).
	AuthType vrrp.AuthType
	AuthData [vrrp.AuthDataLen]byte

	VIPs         []netif.Address // in the advert, and held by the master
	ExcludedVIPs []netif.Address // held by the master, not advertised
	Routes       []netif.Route
	Rules        []netif.Rule
	// GarpSpacing separates successive gratuitous packets
	// (vrrp_garp_interval / vrrp_gna_interval); 0 sends a burst back to back.
	GarpSpacing time.Duration
	// SkipCheckAdvAddr is skip_check_adv_addr (or the global
	// vrrp_skip_check_adv_addr): a BACKUP does not check the address list
	// of an advert from the master it already follows, so a mismatch there
	// is not counted. The check still runs on a master change and while
	// MASTER (keepalived vrrp.c vrrp_state_backup/vrrp_state_master_rx,
	// reference §2.3). keepalived 2.2.7, tried: without it a backup drops
	// its master's adverts once their VIPs differ and takes over; with it,
	// it keeps following. keepwatch accepts a mismatch either way (2.3.3+).
	SkipCheckAdvAddr bool
}

// Deps are the instance's connections to the outside.
type Deps struct {
	Conn      Conn
	Addrs     Addresses
	Announcer Announcer
	Sink      event.Sink
	Log       *slog.Logger
	// Sched keeps the instance's deadlines with those of the other
	// instances on its socket (Scheduler); nil gives it one of its own.
	Sched *Scheduler
}

// Snapshot is what the status API shows of an instance.
type Snapshot struct {
	Name           string
	VRID           uint8
	Interface      string
	Family         vrrp.Family
	State          vrrp.State
	BasePriority   int
	Priority       int
	Master         netip.Addr // the master heard while BACKUP
	MasterPriority int
	VIPsHeld       bool
	LastTransition time.Time
	LastReason     event.Reason
	MasterDown     time.Duration
	AdvertInterval time.Duration
}

// Instance runs one VRRP instance, or the members of one vrrp_sync_group:
// a sync group's members must be stepped together (fsm.Group), so they
// share the lock, the timer and the inbox.
//
// Steps are serialised by mu, not by one goroutine. The routine case, a
// BACKUP hearing its master, is stepped on the socket's read goroutine
// (HandleVRRP) and re-arms the timer from there: waking the instance's
// worker for every advert cost more CPU than the step itself (a futex
// wake and a timer re-arm per advert; 250 instances at 0.05 s are 5000 a
// second). Likewise a MASTER's routine advert is stepped on its socket's
// Scheduler goroutine, batched with the other masters' (tickInline).
// Everything else (takeovers and other timer steps, control, shutdown, and
// adverts that can lead to netlink or gratuitous work) runs on the
// instance's worker (work), and neither the socket's nor the scheduler's
// goroutine ever waits for it: they only TryLock, and queue the advert or
// hand the tick over when the lock is held.
//
// The worker is a goroutine started when there is something to do
// (signal) and gone when there is not, not one that waits for it: an
// instance that waits has no goroutine (Start), or one that only waits
// (Run) and never grows past the 2 KiB a goroutine starts with. A
// goroutine parked after deeper work keeps at least 4 KiB for life: the
// runtime halves a parked goroutine's stack at a collection only while
// under a quarter of it is in use, counting an 800-byte nosplit reserve
// (runtime shrinkstack), which leaves 224 bytes of frames for a 4 KiB
// stack to halve, and a channel receive alone (chanrecv1, chanrecv,
// gopark) takes 192 (issue 12, TestInstanceStack in engine/agent).
type Instance struct {
	deps Deps

	ms    []*member
	m     *fsm.Machine // a lone instance
	group *fsm.Group   // a sync group
	name  string       // the instance's or the group's name

	origin time.Time

	// rxq holds the adverts waiting for the worker, oldest first, at most
	// rxQueue per member; it is made when an advert first queues, and its
	// buffers come from rxBufs. A slice under rxMu, not a channel: nobody
	// ever waits on it (issue 12: the rx and free channels were 256 bytes
	// an instance).
	rxMu sync.Mutex
	rxq  []*rxBuf
	// The agent's calls (update.go): the latest priority and fault per
	// member wait in box and a reload's update in upds, and wakeKick
	// starts the worker for both. exited is closed once the worker has
	// shut the instance down (Done).
	boxMu  sync.Mutex
	box    []pending
	upds   []*updateReq
	exited chan struct{}
	// pend holds the wake flags the worker has not taken yet; busy is set
	// while a worker runs (and before Start and after the shutdown, so that
	// none starts then); worker is i.work, made once: a go statement
	// calling a method allocates its closure at every start.
	pend   atomic.Uint32
	busy   atomic.Bool
	worker func()
	// queued counts adverts in rxq not yet stepped: while any wait, later
	// ones queue behind them rather than overtake them on the socket
	// goroutine.
	queued atomic.Int32

	// mu guards every step and all that follows below, and the machines.
	mu      sync.Mutex
	running bool          // between the start and the shutdown steps
	due     time.Duration // the deadline the scheduler is set for, when armed
	armed   bool
	// floor is the least the clock may read (now): a MASTER's advert sent
	// early by the scheduler (coalesce) steps the machines at its due
	// time, and their time must not go back afterwards.
	floor time.Duration
	// inline is the scheduler stepping this instance on its own goroutine
	// (tickInline), whose batch the adverts go into; nil otherwise.
	inline *Scheduler

	// The scheduler's part: it signals wakeTick when a deadline is due that
	// it does not step itself; offset is origin on the scheduler's clock
	// (set in start). wakeAt, window and slot are the scheduler's, under
	// its mu.
	sched  *Scheduler
	offset time.Duration
	wakeAt time.Duration
	window time.Duration
	slot   int

	// onTick, set only by this package's takeover benchmark before Run, is
	// told when a timer step was due and when the timer fired, before the
	// step runs: that separates the timer's lateness from the agent's own
	// takeover work (DESIGN §5). Unused, it costs one nil check per timer step.
	onTick func(due, fired time.Time)

	cause    uint64 // event ID of what caused the current step
	lastTime time.Time
	scratch  []fsm.Action // a group member's actions, reused
	snapMu   sync.Mutex

	// late is how far behind its deadline the current timer step runs (0
	// outside timer steps): a master's advert sent from it was due then
	// (RFC 9568 §6.4.3, Adver_Timer), so KindAdvertSent carries it as
	// Duration. A starved agent (CPU, GC, a stopped process) shows here
	// before its backups' Master_Down_Interval runs out.
	late time.Duration
}

// member is one VRRP instance inside an Instance.
type member struct {
	inst *Instance
	idx  int
	// cfg is shared with whoever made the instance (the agent keeps it as
	// its plan, to compare on reload), never copied and never written
	// here: what a member learns at run time lives in its own fields
	// (ahSeq, oldUnicastChecksum). A copy was 488 bytes per instance, and
	// with it the member took the 1 KiB size class instead of 512 bytes
	// (deploy/bench.d/FOOTPRINT.md, issue 12).
	cfg  *Config
	conn Conn
	log  *slog.Logger
	m    *fsm.Machine

	// The send path reuses these: no allocation per advert. out grows to
	// the advert's size on the first send (a few dozen bytes, not an MTU).
	adv  vrrp.Advertisement
	out  []byte
	ipID uint16
	// ahSeq is keepalived's AH sequence counter (ipsecah_counter), one
	// for sending and receiving (receive.Instance.AHSeq): each advert sent
	// carries one more, each AH advert accepted raises it to its own. It
	// lives here, not in cfg, so it survives reloads, as keepalived keeps
	// it (reference §4.2).
	ahSeq  uint32
	vipIPs []netip.Addr

	held bool // VIPs are installed
	// oldUnicastChecksum is cfg.Receive.OldUnicastChecksum as learnt from
	// the peer (receive.UnicastChecksumOld); like ahSeq it survives reloads.
	// Next to held, in its padding: a member is 512 bytes, a size class.
	oldUnicastChecksum receive.UnicastChecksum
	rxAdv              vrrp.Advertisement
	// prioCause is the event ID of our last priority change: a transition
	// the next adverts bring (a master that lowered its priority yielding to
	// a peer) is its consequence. It is forgotten after causeWindow.
	prioCause uint64
	prioAt    time.Time
	snap      Snapshot // guarded by inst.snapMu

	// bursts are the spaced gratuitous bursts in flight, the member's child
	// tasks: stopped, and waited for, before its VIPs go (leaving MASTER)
	// and when the instance stops. Guarded by mu.
	bursts      sync.WaitGroup
	burstCancel context.CancelFunc
	burstCtx    context.Context
}

type rxBuf struct {
	b      [1500]byte
	n      int
	member int
	ip     receive.IP
	// The AH header and the IPv4 header of an AH advert, which ip points
	// into (the ICV covers both).
	ah  [vrrp.AHLen]byte
	hdr [60]byte
}

// causeWindow is how long a priority change counts as the cause of a
// transition that received adverts bring about.
const causeWindow = 10 * time.Second

// rxQueue bounds how many received adverts wait for the instance. keepalived
// handles at most one advert per VRID per read burst (reference §2.1); a
// deeper queue only adds latency.
const rxQueue = 4

// rxBufs are the receive buffers of every instance: an instance holds one
// only while an advert waits for its worker, which a backup keeping up
// with its master never does (HandleVRRP). Kept per instance, a buffer
// made once stayed for life: 1.7 KiB per instance that ever queued.
var rxBufs = sync.Pool{New: func() any { return new(rxBuf) }}

// Member is one instance of a sync group and the socket of its interface.
type Member struct {
	// Config is kept, not copied: it must not change once given.
	Config *Config
	Conn   Conn
	// StartupDelay, when not 0, replaces Config.FSM.StartupDelay, so the
	// caller need not copy a Config to set it.
	StartupDelay time.Duration
}

// New prepares a lone instance on deps.Conn. Run starts it.
func New(cfg Config, deps Deps) (*Instance, error) {
	return NewGroup(cfg.FSM.Name, []Member{{Config: &cfg, Conn: deps.Conn}}, deps)
}

// NewGroup prepares the members of a vrrp_sync_group (reference §1.4) to run
// as one: they become MASTER together, and one in FAULT takes all to FAULT.
// With one member it is a lone instance.
func NewGroup(name string, members []Member, deps Deps) (*Instance, error) {
	if len(members) == 0 {
		return nil, errors.New("router: no members")
	}
	if deps.Sink == nil {
		deps.Sink = event.Discard
	}
	if deps.Log == nil {
		deps.Log = slog.New(slog.DiscardHandler)
	}
	inst := &Instance{
		deps:   deps,
		name:   name,
		box:    make([]pending, len(members)),
		exited: make(chan struct{}),
		sched:  deps.Sched,
	}
	inst.worker = inst.work
	inst.busy.Store(true) // no worker before Start
	if inst.sched == nil {
		inst.sched = NewScheduler()
	}
	var machines []*fsm.Machine
	for idx, mb := range members {
		cfg := mb.Config
		if cfg == nil {
			return nil, fmt.Errorf("router: %s: member %d has no config", name, idx)
		}
		fc := cfg.FSM
		if mb.StartupDelay != 0 {
			fc.StartupDelay = mb.StartupDelay
		}
		m, err := fsm.New(fc)
		if err != nil {
			return nil, err
		}
		if len(cfg.Dsts) == 0 {
			return nil, fmt.Errorf("router: vrrp_instance %s: no advert destination", cfg.FSM.Name)
		}
		if mb.Conn == nil {
			return nil, fmt.Errorf("router: vrrp_instance %s: no socket", cfg.FSM.Name)
		}
		me := &member{inst: inst, idx: idx, cfg: cfg, conn: mb.Conn, m: m,
			oldUnicastChecksum: cfg.Receive.OldUnicastChecksum,
			log:                memberLogger(deps.Log, cfg.FSM.Name, cfg.FSM.VRID)}
		for _, a := range cfg.VIPs {
			me.vipIPs = append(me.vipIPs, a.Prefix.Addr())
		}
		me.adv = vrrp.Advertisement{
			Version:   vrrp.Version(cfg.FSM.Version),
			Type:      vrrp.TypeAdvertisement,
			VRID:      cfg.FSM.VRID,
			Family:    cfg.FSM.Family,
			Addresses: me.vipIPs,
		}
		me.adv.AuthType, me.adv.AuthData = advertAuth(cfg)
		if err := me.adv.SetInterval(cfg.FSM.AdvertInterval); err != nil {
			return nil, fmt.Errorf("router: vrrp_instance %s: %w", cfg.FSM.Name, err)
		}
		// Room for what peers send: our own count and some slack. A peer
		// with a longer list makes one decode grow it once (250 instances
		// at 255 addresses each held 1.5 MiB for nothing).
		me.rxAdv.Addresses = make([]netip.Addr, 0, len(cfg.VIPs)+4)
		me.snap = Snapshot{Name: cfg.FSM.Name, VRID: cfg.FSM.VRID, Interface: cfg.FSM.Interface, Family: cfg.FSM.Family,
			BasePriority: cfg.FSM.Priority, Priority: cfg.FSM.Priority, AdvertInterval: cfg.FSM.AdvertInterval}
		inst.ms = append(inst.ms, me)
		machines = append(machines, m)
	}
	if len(machines) == 1 {
		inst.m = machines[0]
	} else {
		inst.group = fsm.NewGroup(machines...)
	}
	return inst, nil
}

// Name is the instance's (or the sync group's) name.
func (i *Instance) Name() string { return i.name }

// Snapshot returns the first member's state; safe from any goroutine.
func (i *Instance) Snapshot() Snapshot { return i.Snapshots()[0] }

// Snapshots returns every member's state, in order.
func (i *Instance) Snapshots() []Snapshot {
	i.snapMu.Lock()
	defer i.snapMu.Unlock()
	out := make([]Snapshot, len(i.ms))
	for k, m := range i.ms {
		out[k] = m.snap
	}
	return out
}

// HandleVRRP is called on the socket's read goroutine. An advert that can
// only refresh a BACKUP's down timer is stepped right here; any other is
// copied into a free buffer and queued for the instance's worker, or
// dropped if the instance is behind.
func (me *member) HandleVRRP(p *netif.Packet) {
	i := me.inst
	// TryLock, not Lock: the lock holder may be in netlink or a
	// gratuitous burst, and every instance on this socket waits for us.
	if i.mu.TryLock() {
		now := i.now()
		if i.running && i.queued.Load() == 0 && i.routine(now) {
			me.receive(p.VRRP, ipOf(p), now)
			i.arm(false)
			i.mu.Unlock()
			return
		}
		i.mu.Unlock()
	}
	me.enqueue(p)
}

// routine reports whether an advert received now can only lead to cheap
// actions: every member is BACKUP (an advert to a BACKUP changes its down
// timer and the master it follows, RFC 9568 §6.4.2, and a sync group of
// BACKUPs stays so) and no timer is due, since a step fires due timers
// first and the down timer makes a master (VIPs, gratuitous ARPs).
func (i *Instance) routine(now time.Duration) bool {
	for _, me := range i.ms {
		if me.m.State() != vrrp.StateBackup {
			return false
		}
	}
	at, ok := i.nextDeadline()
	return !ok || at > now
}

// advertAuth is the auth type and field of the message an instance sends:
// with AH the field is zero, the password keys the AH ICV instead
// (keepalived vrrp_build_vrrp_v2 copies it for PASS only).
func advertAuth(cfg *Config) (vrrp.AuthType, [vrrp.AuthDataLen]byte) {
	if cfg.AuthType == vrrp.AuthAH {
		return vrrp.AuthAH, [vrrp.AuthDataLen]byte{}
	}
	return cfg.AuthType, cfg.AuthData
}

// ipOf returns the IP layer's facts; its slices point into p.
func ipOf(p *netif.Packet) receive.IP {
	ip := receive.IP{Src: p.Src, Dst: p.Dst, TTL: int(p.TTL), AH: p.AH}
	if len(p.IPHeader) >= 20 {
		ip.HeaderLen = len(p.IPHeader)
		ip.TotalLen = int(p.IPHeader[2])<<8 | int(p.IPHeader[3])
		if p.AH != nil {
			ip.Header = p.IPHeader // the AH ICV covers it
		}
	}
	return ip
}

// enqueue copies the packet for the instance's worker.
func (me *member) enqueue(p *netif.Packet) {
	i := me.inst
	i.rxMu.Lock()
	if i.rxq == nil {
		i.rxq = make([]*rxBuf, 0, rxQueue*len(i.ms))
	} else if len(i.rxq) == cap(i.rxq) {
		i.rxMu.Unlock()
		return // the instance is behind; a later advert will do
	}
	b := rxBufs.Get().(*rxBuf)
	b.member = me.idx
	b.n = copy(b.b[:], p.VRRP)
	b.ip = ipOf(p)
	if b.ip.AH != nil {
		b.ip.AH = b.ah[:copy(b.ah[:], p.AH)]
		b.ip.Header = b.hdr[:copy(b.hdr[:], b.ip.Header)]
	}
	i.queued.Add(1)
	i.rxq = append(i.rxq, b)
	i.rxMu.Unlock()
	i.signal(wakeRx)
}

// dequeue takes the oldest queued advert; nil if none.
func (i *Instance) dequeue() *rxBuf {
	i.rxMu.Lock()
	defer i.rxMu.Unlock()
	if len(i.rxq) == 0 {
		return nil
	}
	b := i.rxq[0]
	n := copy(i.rxq, i.rxq[1:])
	i.rxq[n] = nil
	i.rxq = i.rxq[:n]
	return b
}

// now is the instance's clock; mu held.
func (i *Instance) now() time.Duration { return max(time.Since(i.origin), i.floor) }

func (i *Instance) nextDeadline() (time.Duration, bool) {
	if i.group != nil {
		return i.group.NextDeadline()
	}
	return i.m.NextDeadline()
}

// arm sets the scheduler to the machines' next deadline; force after the
// scheduler fired (it is no longer set). Called with mu held, from any
// goroutine. A BACKUP's refresh only moves a number (Scheduler.set).
func (i *Instance) arm(force bool) {
	at, ok := i.nextDeadline()
	if !ok {
		if i.armed {
			i.sched.set(i, never, 0)
			i.armed = false
		}
		return
	}
	if i.armed && at == i.due && !force {
		return
	}
	i.due, i.armed = at, true
	wake, window := at, time.Duration(0)
	if i.takeoverPending() {
		// Go's network poller sleeps in whole milliseconds, so a timer
		// fires up to 1 ms late (golang/go#44343). A backup's deadline is
		// its takeover: wake a little early and wait out the rest (Run).
		wake -= earlyWake
	} else if i.allMaster() {
		window = i.coalesceWindow()
	}
	i.sched.set(i, wake, window)
}

// allMaster reports whether every member is MASTER; mu held.
func (i *Instance) allMaster() bool {
	for _, me := range i.ms {
		if me.m.State() != vrrp.StateMaster {
			return false
		}
	}
	return true
}

// coalesceWindow is how early the scheduler may step the instance's
// adverts (coalesce): for the shortest of its members' intervals; mu held.
func (i *Instance) coalesceWindow() time.Duration {
	w := never
	for _, me := range i.ms {
		w = min(w, coalesce(me.cfg.FSM.AdvertInterval))
	}
	return w
}

// tickInline steps a MASTER's due adverts on the scheduler's goroutine,
// their packets going into its batch: the routine master tick, which
// before woke the instance's goroutine for each advert. It reports false,
// leaving the tick to the worker, for anything else: a member not MASTER
// (a takeover, a sync group in transition), adverts waiting in rxq, the
// lock held (the worker is busy; never wait for it here).
func (i *Instance) tickInline(s *Scheduler) bool {
	if !i.mu.TryLock() {
		return false
	}
	defer i.mu.Unlock()
	if !i.running || !i.armed || i.queued.Load() != 0 || !i.allMaster() {
		return false
	}
	now := i.now()
	if early := i.due - now; early > 0 {
		if early > i.coalesceWindow() {
			i.arm(true) // moved since the scheduler took it
			return true
		}
		i.floor, now = i.due, i.due
	}
	i.cause = 0
	i.late = max(now-i.due, 0)
	i.inline = s
	i.step(now, -1, fsm.Input{Kind: fsm.InputTick})
	i.inline = nil
	i.late = 0
	i.arm(true)
	return true
}

// growStack grows the calling goroutine's stack to 8 KiB, what a
// takeover's step needs, while a backup woken early waits for its deadline
// (onDeadline): the worker starts with 2 KiB, and growing it (a copy of the
// stack each time it doubles) between the deadline and the advert put
// ~17 µs on the takeover. BenchmarkTakeover, fired → advert written, p50 of
// 200 takeovers, two interleaved runs: 100-103 µs without, 78-83 with
// (with a goroutine per instance 84-88); a 16 KiB stack did no better.
//
//go:noinline
func growStack() byte {
	var frame [growFrame]byte
	return frame[growIdx] // read at a run-time index: the frame stays
}

// growFrame is growStack's frame: with the frames under it, more than
// 4 KiB, so the stack doubles twice, to 8 KiB.
const growFrame = 6 << 10

var growIdx = growFrame - 1

// earlyWake is how much earlier than a backup's deadline its timer is armed.
const earlyWake = 1200 * time.Microsecond

// takeoverPending reports whether the next deadline can only be a takeover:
// no member is master (masters' deadlines are their own adverts, for which
// a millisecond does not matter); mu held.
func (i *Instance) takeoverPending() bool {
	for _, me := range i.ms {
		if me.m.State() == vrrp.StateMaster {
			return false
		}
	}
	return true
}

// Start starts the instance. It has no goroutine of its own: the start-up
// steps, and every later one not taken on a socket's or the scheduler's
// goroutine, run on a worker started when there is work (Instance), so
// an instance that waits holds no stack (issue 12). Call it once; Stop
// stops the instance.
func (i *Instance) Start() {
	i.pend.Or(wakeStart)
	go i.worker() // busy is set since NewGroup
}

// Stop shuts the instance down: a master sends its priority-0 advert and
// removes its VIPs (reference §2.4). It does not wait: Done is closed once
// that is done. Safe from any goroutine, more than once, and before Start
// (the instance then stops as soon as it has started).
func (i *Instance) Stop() { i.signal(wakeStop) }

// Done is closed once the instance has shut down (Stop).
func (i *Instance) Done() <-chan struct{} { return i.exited }

// Run starts the instance, stops it when ctx is done and returns once it
// has shut down (Start, Stop, Done); its goroutine only waits.
func (i *Instance) Run(ctx context.Context) error {
	i.Start()
	<-ctx.Done()
	i.Stop()
	<-i.exited
	return nil
}

// What the worker is woken for (Instance.pend).
const (
	wakeStart uint32 = 1 << iota // Start
	wakeTick                     // a deadline the scheduler handed over (Scheduler.fire)
	wakeRx                       // adverts queued in rxq (enqueue)
	wakeKick                     // the agent's box or updates (update.go)
	wakeStop                     // Stop
)

// signal leaves flag for the worker and starts one unless one is running
// (it will see the flag) or the instance is not running (before Start, after
// the shutdown). The flag is set before busy is tried, and the worker
// clears flags before acting on them and looks again after clearing busy,
// so no signal is lost. Safe from any goroutine; it never blocks.
func (i *Instance) signal(flag uint32) {
	i.pend.Or(flag)
	if i.busy.CompareAndSwap(false, true) {
		go i.worker()
	}
}

// work is the instance's worker: it does what the wake flags ask until
// none is left, then returns, its stack with it. A stop wins over what was
// signalled with it (the master's priority-0 advert, reference §2.4), and
// a deadline comes before queued adverts; adverts are stepped in arrival
// order.
func (i *Instance) work() {
	for {
		f := i.pend.Swap(0)
		if f == 0 {
			i.busy.Store(false)
			// A signal between the Swap and the Store found busy set and
			// started no worker: its flag is left for this one.
			if i.pend.Load() == 0 || !i.busy.CompareAndSwap(false, true) {
				return
			}
			continue
		}
		if f&wakeStart != 0 {
			i.start()
		}
		if f&wakeStop != 0 {
			i.shutdown()
			i.stop()
			close(i.exited)
			return // busy stays set: no worker after the shutdown
		}
		if f&wakeTick != 0 {
			i.onDeadline()
		}
		if f&wakeKick != 0 {
			i.onKick()
		}
		if f&wakeRx != 0 {
			i.drain()
		}
	}
}

// drain steps the adverts queued in rxq, oldest first. It gives way to a
// stop or a deadline signalled meanwhile, leaving the rest for the next
// round: a flood of adverts does not hold up a takeover.
func (i *Instance) drain() {
	for {
		if i.pend.Load()&(wakeStop|wakeTick) != 0 {
			i.pend.Or(wakeRx) // what is left was signalled before the Swap
			return
		}
		b := i.dequeue()
		if b == nil {
			return
		}
		i.onAdvert(b)
	}
}

// start joins the scheduler, takes the members' VRIDs on their sockets
// and steps every machine with its start input (wakeStart).
func (i *Instance) start() {
	i.mu.Lock()
	i.origin = time.Now()
	i.offset = i.origin.Sub(i.sched.epoch)
	i.armed = false
	i.mu.Unlock()
	i.sched.add(i)
	for _, me := range i.ms {
		me.conn.Handle(me.cfg.FSM.VRID, me)
	}
	i.mu.Lock()
	for k := range i.ms {
		i.step(i.now(), k, fsm.Input{Kind: fsm.InputStart})
	}
	i.running = true
	i.arm(true)
	i.mu.Unlock()
}

// stop undoes start's registrations, in reverse order, after the shutdown.
func (i *Instance) stop() {
	for k := len(i.ms) - 1; k >= 0; k-- {
		me := i.ms[k]
		me.conn.Handle(me.cfg.FSM.VRID, nil)
	}
	i.sched.remove(i)
}

// shutdown steps every machine with its shutdown input: a master sends
// its priority-0 advert and removes its VIPs (reference §2.4).
func (i *Instance) shutdown() {
	i.mu.Lock()
	defer i.mu.Unlock()
	i.running = false
	i.cause = 0
	for k, me := range i.ms {
		i.step(i.now(), k, fsm.Input{Kind: fsm.InputShutdown})
		if me.held {
			me.removeVIPs()
		}
		me.stopBursts()
	}
}

// onDeadline runs a deadline the scheduler handed to the worker.
func (i *Instance) onDeadline() {
	i.mu.Lock()
	defer i.mu.Unlock()
	now := i.now()
	if i.armed && now < i.due {
		if i.due-now > earlyWake || !i.takeoverPending() {
			// A socket goroutine moved the deadline after the
			// scheduler took this one.
			i.arm(true)
			return
		}
		// Woken early on purpose (arm): wait out the last fraction of a
		// millisecond without the lock, so an advert that arrives
		// meanwhile still counts.
		due := i.due
		i.mu.Unlock()
		_ = growStack()
		for time.Since(i.origin) < due {
			runtime.Gosched()
		}
		i.mu.Lock()
		if !i.armed || i.due != due {
			i.arm(true)
			return
		}
		now = i.now()
	}
	if i.onTick != nil {
		i.onTick(i.origin.Add(i.due), time.Now())
	}
	i.cause = 0
	i.late = max(now-i.due, 0)
	i.step(now, -1, fsm.Input{Kind: fsm.InputTick})
	i.late = 0
	i.arm(true)
}

// onAdvert steps the machine with one queued advert and frees its buffer.
func (i *Instance) onAdvert(b *rxBuf) {
	i.mu.Lock()
	i.ms[b.member].receive(b.b[:b.n], b.ip, i.now())
	i.queued.Add(-1)
	i.arm(false)
	i.mu.Unlock()
	rxBufs.Put(b)
}

// onKick applies what the agent left (update.go): reloads' updates first,
// each answered once applied, then priorities and faults.
func (i *Instance) onKick() {
	for {
		i.boxMu.Lock()
		if len(i.upds) == 0 {
			i.upds = nil
			i.boxMu.Unlock()
			break
		}
		r := i.upds[0]
		i.upds = i.upds[1:]
		i.boxMu.Unlock()
		// Taken: Update now waits for this answer, whatever its context.
		r.err <- i.update(r.cfgs)
	}
	i.applyPending()
}

// receive validates one advert and steps the machine with it; mu held.
func (me *member) receive(pkt []byte, ip receive.IP, now time.Duration) {
	i := me.inst
	i.cause = 0
	// The shared config is not written (member.cfg): the counter and what
	// was learnt go into a copy on the stack.
	rcv := me.cfg.Receive
	rcv.AHSeq, rcv.OldUnicastChecksum = me.ahSeq, me.oldUnicastChecksum
	r := receive.Validate(pkt, ip, &rcv, &me.rxAdv)
	if r.AHSeq != 0 {
		me.ahSeq = r.AHSeq
	}
	i.lastTime = time.Now()
	if !r.Accepted() {
		// Value is the auth type an auth_type drop carried, so a reader
		// can tell keepalived's invalid_authtype from authtype_mismatch.
		me.emit(event.Event{Kind: event.KindAdvertDropped, Reason: r.Drop, Addr: ip.Src, Value: int64(r.AuthType)})
		return
	}
	if r.OldUnicastChecksum {
		me.oldUnicastChecksum = receive.UnicastChecksumOld
	}
	me.emit(event.Event{Kind: event.KindAdvertReceived, Priority: int(me.rxAdv.Priority), Addr: ip.Src, Interval: me.rxAdv.Interval()})
	if r.AddressMismatch && me.cfg.SkipCheckAdvAddr && me.m.State() == vrrp.StateBackup {
		if master, _ := me.m.Master(); master == ip.Src {
			r.AddressMismatch = false // not checked: the master we follow
		}
	}
	if r.AddressMismatch {
		// Accepted (keepalived ≥ 2.3.3), but counted: on 2.2.x peers this
		// mismatch is the classic split brain (reference §0 item 4).
		me.emit(event.Event{Kind: event.KindAdvertDropped, Reason: event.DropAddressList, Addr: ip.Src, OK: true})
	}
	i.cause = 0
	if me.prioCause != 0 && i.lastTime.Sub(me.prioAt) < causeWindow {
		i.cause = me.prioCause
	}
	in := fsm.Input{Kind: fsm.InputAdvert, Advert: fsm.Advert{Src: ip.Src, Priority: int(me.rxAdv.Priority), AddrMismatch: r.AddressMismatch}}
	if me.rxAdv.Version == vrrp.Version3 {
		in.Advert.Interval = me.rxAdv.Interval()
	}
	i.step(now, me.idx, in)
}

// step feeds the machine (or the group; member -1 is a plain tick) and
// performs the actions in order; mu held. now is the instance's clock read
// under mu (the machines' time must not go back).
func (i *Instance) step(now time.Duration, member int, in fsm.Input) {
	if in.Kind != fsm.InputAdvert {
		i.lastTime = time.Now()
	}
	if i.group == nil {
		i.perform(i.ms[0], i.m.Step(now, in))
	} else {
		gas := i.group.Step(now, member, in)
		// Group actions come member by member, in order; perform each
		// member's run with its own transition first.
		for start := 0; start < len(gas); {
			end := start
			for end < len(gas) && gas[end].Member == gas[start].Member {
				end++
			}
			i.scratch = i.scratch[:0]
			for _, ga := range gas[start:end] {
				i.scratch = append(i.scratch, ga.Action)
			}
			i.perform(i.ms[gas[start].Member], i.scratch)
			start = end
		}
	}
	i.snapMu.Lock()
	for _, me := range i.ms {
		me.snap.State = me.m.State()
		me.snap.Priority = me.m.Priority()
		me.snap.BasePriority = me.m.BasePriority()
		me.snap.Master, me.snap.MasterPriority = me.m.Master()
		me.snap.VIPsHeld = me.held
		me.snap.MasterDown = me.m.MasterDownInterval()
	}
	i.snapMu.Unlock()
}

func (i *Instance) perform(me *member, acts []fsm.Action) {
	// Report a transition before performing its actions, so that the
	// advert, VIP and gratuitous ARP events it causes carry its ID. The
	// actions themselves keep the machine's order (advert, VIPs, ARPs).
	for k := range acts {
		if a := &acts[k]; a.Kind == fsm.ActionEvent && a.Event.Kind == event.KindTransition {
			i.cause = me.emit(a.Event)
			me.noteTransition(a.Event)
		}
	}
	for k := range acts {
		a := &acts[k]
		switch a.Kind {
		case fsm.ActionSendAdvert:
			me.sendAdvert(a.Priority)
		case fsm.ActionAddVIPs:
			me.addVIPs()
		case fsm.ActionRemoveVIPs:
			me.removeVIPs()
		case fsm.ActionSendGratuitous:
			me.gratuitous(a.Count)
		case fsm.ActionEvent:
			if a.Event.Kind != event.KindTransition {
				me.emit(a.Event)
			}
		case fsm.ActionNotify, fsm.ActionNotifyLowerPrio:
			// Notify scripts follow KindTransition events (engine/notify).
		}
	}
}

func (me *member) noteTransition(e event.Event) {
	me.inst.snapMu.Lock()
	me.snap.LastTransition = me.inst.lastTime
	me.snap.LastReason = e.Reason
	me.inst.snapMu.Unlock()
	me.log.Debug("transition", "from", e.From.String(), "to", e.To.String(), "reason", string(e.Reason), "priority", e.Priority)
}

// emit stamps identity, time, ID and cause on e and sends it.
func (me *member) emit(e event.Event) uint64 {
	me.stamp(&e)
	me.inst.deps.Sink.Emit(e)
	return e.ID
}

// stamp sets e's identity, time, ID and cause; mu held.
func (me *member) stamp(e *event.Event) {
	i := me.inst
	e.ID = event.NewID()
	if e.Cause == 0 {
		e.Cause = i.cause
	}
	e.Time = i.lastTime
	e.Instance = me.cfg.FSM.Name
	e.VRID = me.cfg.FSM.VRID
	if e.Interface == "" {
		e.Interface = me.cfg.FSM.Interface
	}
	e.Family = me.cfg.FSM.Family
}

func (me *member) sendAdvert(prio int) {
	me.adv.Priority = uint8(prio)
	late := me.inst.late
	if me.cfg.AuthType == vrrp.AuthAH && me.ahSeq <= 0xfffffffd {
		// One sequence number per advert, unicast copies included.
		// keepalived stops counting at 0xfffffffd (and would give up
		// mastership there: 136 years of one-second adverts).
		me.ahSeq++
	}
	for _, dst := range me.cfg.Dsts {
		// One advert, one lateness: unicast copies after the first say 0.
		ev := event.Event{Kind: event.KindAdvertSent, Priority: prio, Addr: dst, Duration: late}
		var queued bool
		var err error
		if me.cfg.FSM.Family == vrrp.IPv4 {
			queued, err = me.sendIPv4(dst, &ev)
		} else {
			queued, err = me.sendIPv6(dst, &ev)
		}
		if err != nil {
			me.log.Warn("sending advert", "dst", dst, "err", err)
			continue
		}
		if !queued {
			me.emit(ev)
		}
		late = 0
	}
}

// sendIPv4 sends the advert to dst, or queues it in the scheduler's batch
// (queued: ev, stamped now, is emitted once the kernel took it).
func (me *member) sendIPv4(dst netip.Addr, ev *event.Event) (queued bool, err error) {
	// keepalived's IP ID counts from 1 per instance and is never 0 (reference §2.1).
	me.ipID++
	if me.ipID == 0 {
		me.ipID = 1
	}
	n := me.adv.Len()
	ah := me.cfg.AuthType == vrrp.AuthAH
	if ah {
		n += vrrp.AHLen
	}
	h := vrrp.NewIPv4Header(me.cfg.Src, dst, me.ipID, me.cfg.TTL, n)
	if ah {
		h.Protocol = vrrp.ProtocolAH
	}
	b, err := h.AppendBinary(me.out[:0])
	if err != nil {
		return false, err
	}
	if ah {
		a := vrrp.NewAH(me.cfg.Src.As4(), me.ahSeq)
		b, _ = a.AppendBinary(b)
	}
	b, err = me.adv.AppendWithChecksum(b, me.cfg.Src, dst, me.cfg.Checksum)
	if err != nil {
		return false, err
	}
	if ah {
		if err := vrrp.SealAH(me.cfg.AuthData, b, vrrp.IPv4HeaderLen, len(me.cfg.Receive.Peers) > 0); err != nil {
			return false, err
		}
	}
	me.out = b
	if s := me.inst.inline; s != nil {
		if queued, err := s.batch(me, dst, b, netip.Addr{}, 0, ev); queued || err != nil {
			return queued, err
		}
	}
	return false, me.conn.WriteIPv4(b)
}

// sendIPv6 is sendIPv4 for IPv6.
func (me *member) sendIPv6(dst netip.Addr, ev *event.Event) (queued bool, err error) {
	// The kernel computes the IPv6 checksum (IPV6_CHECKSUM, reference §2.1).
	b, err := me.adv.AppendBinary(me.out[:0])
	if err != nil {
		return false, err
	}
	me.out = b
	// Multicast leaves from the link-local address (RFC 9568 §5.1.2.1);
	// unicast from unicast_src_ip, as keepalived sends it (a peer that
	// checks the source against its unicast_peer list needs that).
	src, hop := netip.Addr{}, 0
	if !dst.IsMulticast() {
		src, hop = me.cfg.Src, me.cfg.HopLimit
	}
	if s := me.inst.inline; s != nil {
		if queued, err := s.batch(me, dst, b, src, hop, ev); queued || err != nil {
			return queued, err
		}
	}
	return false, me.conn.WriteIPv6(b, src, dst, hop)
}

func (me *member) addVIPs() {
	addrs := me.inst.deps.Addrs
	for _, list := range [][]netif.Address{me.cfg.VIPs, me.cfg.ExcludedVIPs} {
		for _, a := range list {
			if err := addrs.AddAddress(a); err != nil {
				me.log.Error("adding VIP", "address", a.Prefix, "err", err)
				continue
			}
			me.emit(event.Event{Kind: event.KindVIPAdded, Addr: a.Prefix.Addr()})
		}
	}
	for _, r := range me.cfg.Routes {
		if err := addrs.AddRoute(r); err != nil {
			me.log.Error("adding virtual route", "route", r.String(), "err", err)
		}
	}
	for _, r := range me.cfg.Rules {
		if err := addrs.AddRule(r); err != nil {
			me.log.Error("adding virtual rule", "rule", r.String(), "err", err)
		}
	}
	me.held = true
}

func (me *member) removeVIPs() {
	// No gratuitous ARP may claim a VIP after it is gone: the peer that
	// takes over announces it now (RFC 9568 §6.4.3, RFC 3768 §6.4.3).
	me.stopBursts()
	addrs := me.inst.deps.Addrs
	for _, r := range me.cfg.Rules {
		_ = addrs.RemoveRule(r)
	}
	for _, r := range me.cfg.Routes {
		_ = addrs.RemoveRoute(r)
	}
	for _, list := range [][]netif.Address{me.cfg.VIPs, me.cfg.ExcludedVIPs} {
		for _, a := range list {
			if err := addrs.RemoveAddress(a); err != nil {
				me.log.Error("removing VIP", "address", a.Prefix, "err", err)
				continue
			}
			me.emit(event.Event{Kind: event.KindVIPRemoved, Addr: a.Prefix.Addr()})
		}
	}
	me.held = false
}

// announceTarget is one gratuitous packet's interface and address.
type announceTarget struct {
	ifname string
	addr   netip.Addr
}

// gratuitous sends count rounds of one gratuitous ARP / NA per VIP and eVIP,
// the addresses interleaved as keepalived sends them (vectors/README.md).
// Back to back (no spacing) it sends them here, under mu. Spaced, the burst
// runs as a child task of the member (startBurst), so it holds up neither
// the instance's timers nor its lock; mu held.
func (me *member) gratuitous(count int) {
	if me.inst.deps.Announcer == nil || count <= 0 {
		return
	}
	var targets []announceTarget
	for _, list := range [][]netif.Address{me.cfg.VIPs, me.cfg.ExcludedVIPs} {
		for _, a := range list {
			ifname := a.Dev
			if ifname == "" {
				ifname = me.cfg.FSM.Interface
			}
			targets = append(targets, announceTarget{ifname, a.Prefix.Addr()})
		}
	}
	if me.cfg.GarpSpacing > 0 {
		me.startBurst(targets, count, me.cfg.GarpSpacing)
		return
	}
	for range count {
		for _, t := range targets {
			if err := me.inst.deps.Announcer.Announce(t.ifname, t.addr); err != nil {
				me.log.Warn("gratuitous announcement", "address", t.addr, "err", err)
				continue
			}
			me.emit(event.Event{Kind: event.KindGratuitousSent, Addr: t.addr, Interface: t.ifname})
		}
	}
}

// startBurst runs a spaced burst as the member's child task; mu held. The
// task touches nothing mu guards: it takes copies of what it needs (the
// member's identity, the cause) now, so the instance can step, and its
// config change, while it runs.
func (me *member) startBurst(targets []announceTarget, count int, spacing time.Duration) {
	if me.burstCancel == nil {
		me.burstCtx, me.burstCancel = context.WithCancel(context.Background())
	}
	ctx := me.burstCtx
	id := event.Event{Kind: event.KindGratuitousSent, Cause: me.inst.cause, Instance: me.cfg.FSM.Name,
		VRID: me.cfg.FSM.VRID, Family: me.cfg.FSM.Family}
	annc, sink, log := me.inst.deps.Announcer, me.inst.deps.Sink, me.log
	me.bursts.Add(1)
	go func() {
		defer me.bursts.Done()
		t := time.NewTimer(0)
		defer t.Stop()
		<-t.C
		for range count {
			for _, tg := range targets {
				if ctx.Err() != nil {
					return
				}
				if err := annc.Announce(tg.ifname, tg.addr); err != nil {
					log.Warn("gratuitous announcement", "address", tg.addr, "err", err)
				} else {
					e := id
					e.ID, e.Time, e.Addr, e.Interface = event.NewID(), time.Now(), tg.addr, tg.ifname
					sink.Emit(e)
				}
				t.Reset(spacing)
				select {
				case <-ctx.Done():
					return
				case <-t.C:
				}
			}
		}
	}()
}

// stopBursts cancels the member's spaced bursts and waits until none can
// send again; mu held. A burst only ever waits for its spacing or one
// send, so this is quick.
func (me *member) stopBursts() {
	if me.burstCancel == nil {
		return
	}
	me.burstCancel()
	me.bursts.Wait()
	me.burstCancel, me.burstCtx = nil, nil
}
