package router

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"sync"
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
	// interface's primary address). IPv6 adverts use the link-local address.
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
	// AuthType and AuthData are sent in v2 adverts.
	AuthType vrrp.AuthType
	AuthData [vrrp.AuthDataLen]byte

	VIPs         []netif.Address // in the advert, and held by the master
	ExcludedVIPs []netif.Address // held by the master, not advertised
	Routes       []netif.Route
	Rules        []netif.Rule
	// GarpSpacing separates successive gratuitous packets
	// (vrrp_garp_interval / vrrp_gna_interval); 0 sends a burst back to back.
	GarpSpacing time.Duration
}

// Deps are the instance's connections to the outside.
type Deps struct {
	Conn      Conn
	Addrs     Addresses
	Announcer Announcer
	Sink      event.Sink
	Log       *slog.Logger
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

// Instance is one running VRRP instance.
type Instance struct {
	cfg  Config
	deps Deps
	log  *slog.Logger
	m    *fsm.Machine

	origin time.Time

	rx   chan *rxBuf
	free chan *rxBuf
	ctl  chan control

	// The send path reuses these: no allocation per advert.
	adv    vrrp.Advertisement
	out    []byte
	ipID   uint16
	vipIPs []netip.Addr

	cause    uint64 // event ID of what caused the current step
	held     bool   // VIPs are installed
	rxAdv    vrrp.Advertisement
	snapMu   sync.Mutex
	snap     Snapshot
	lastTime time.Time
}

type rxBuf struct {
	b        [1500]byte
	n        int
	src, dst netip.Addr
	ttl      int
	ipTotal  int
	ipHdrLen int
}

type controlKind uint8

const (
	ctlPriority controlKind = iota + 1
	ctlFault
	ctlFaultCleared
	ctlSync
)

type control struct {
	kind     controlKind
	priority int
	cause    uint64
	input    fsm.Input
}

// rxQueue bounds how many received adverts wait for the instance. keepalived
// handles at most one advert per VRID per read burst (reference §2.1); a
// deeper queue only adds latency.
const rxQueue = 16

// New prepares an instance. Run starts it.
func New(cfg Config, deps Deps) (*Instance, error) {
	m, err := fsm.New(cfg.FSM)
	if err != nil {
		return nil, err
	}
	if deps.Sink == nil {
		deps.Sink = event.Discard
	}
	if deps.Log == nil {
		deps.Log = slog.New(slog.DiscardHandler)
	}
	if len(cfg.Dsts) == 0 {
		return nil, errors.New("router: no advert destination")
	}
	i := &Instance{
		cfg:  cfg,
		deps: deps,
		log:  deps.Log.With("vrrp_instance", cfg.FSM.Name, "vrid", cfg.FSM.VRID),
		m:    m,
		rx:   make(chan *rxBuf, rxQueue),
		free: make(chan *rxBuf, rxQueue),
		ctl:  make(chan control, 16),
		out:  make([]byte, 0, 1500),
	}
	for range rxQueue {
		i.free <- new(rxBuf)
	}
	for _, a := range cfg.VIPs {
		i.vipIPs = append(i.vipIPs, a.Prefix.Addr())
	}
	i.adv = vrrp.Advertisement{
		Version:   vrrp.Version(cfg.FSM.Version),
		Type:      vrrp.TypeAdvertisement,
		VRID:      cfg.FSM.VRID,
		AuthType:  cfg.AuthType,
		AuthData:  cfg.AuthData,
		Family:    cfg.FSM.Family,
		Addresses: i.vipIPs,
	}
	if err := i.adv.SetInterval(cfg.FSM.AdvertInterval); err != nil {
		return nil, fmt.Errorf("router: vrrp_instance %s: %w", cfg.FSM.Name, err)
	}
	i.rxAdv.Addresses = make([]netip.Addr, 0, 255)
	i.snap = Snapshot{Name: cfg.FSM.Name, VRID: cfg.FSM.VRID, Interface: cfg.FSM.Interface, Family: cfg.FSM.Family,
		BasePriority: cfg.FSM.Priority, Priority: cfg.FSM.Priority, AdvertInterval: cfg.FSM.AdvertInterval}
	return i, nil
}

// Name is the instance's name.
func (i *Instance) Name() string { return i.cfg.FSM.Name }

// Snapshot returns the instance's current state; safe from any goroutine.
func (i *Instance) Snapshot() Snapshot {
	i.snapMu.Lock()
	defer i.snapMu.Unlock()
	return i.snap
}

// SetPriority hands the instance a new effective priority from its
// trackers; cause is the event ID of the tracker change.
func (i *Instance) SetPriority(p int, cause uint64) {
	i.ctl <- control{kind: ctlPriority, priority: p, cause: cause}
}

// SetFault puts the instance in FAULT (an interface or weight-0 tracker is
// down) or takes it out.
func (i *Instance) SetFault(fault bool, cause uint64) {
	k := ctlFaultCleared
	if fault {
		k = ctlFault
	}
	i.ctl <- control{kind: k, cause: cause}
}

// Sync delivers a sync-group decision to the instance.
func (i *Instance) Sync(in fsm.Input, cause uint64) {
	i.ctl <- control{kind: ctlSync, input: in, cause: cause}
}

// HandleVRRP is called on the socket's read goroutine: it copies the packet
// into a free buffer and queues it, dropping it if the instance is behind.
func (i *Instance) HandleVRRP(p *netif.Packet) {
	var b *rxBuf
	select {
	case b = <-i.free:
	default:
		return // the instance is behind; a later advert will do
	}
	b.n = copy(b.b[:], p.VRRP)
	b.src, b.dst, b.ttl = p.Src, p.Dst, int(p.TTL)
	b.ipHdrLen, b.ipTotal = 0, 0
	if len(p.IPHeader) >= 20 {
		b.ipHdrLen = len(p.IPHeader)
		b.ipTotal = int(p.IPHeader[2])<<8 | int(p.IPHeader[3])
	}
	select {
	case i.rx <- b:
	default:
		i.free <- b
	}
}

func (i *Instance) now() time.Duration { return time.Since(i.origin) }

// Run starts the instance and blocks until ctx is cancelled. On the way out
// a master sends its priority-0 advert and removes its VIPs (reference §2.4).
func (i *Instance) Run(ctx context.Context) error {
	i.origin = time.Now()
	i.deps.Conn.Handle(i.cfg.FSM.VRID, i)
	defer i.deps.Conn.Handle(i.cfg.FSM.VRID, nil)

	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	i.step(fsm.Input{Kind: fsm.InputStart})
	for {
		if at, ok := i.m.NextDeadline(); ok {
			timer.Reset(max(at-i.now(), 0))
		} else {
			timer.Stop()
		}
		select {
		case <-ctx.Done():
			i.cause = 0
			i.step(fsm.Input{Kind: fsm.InputShutdown})
			if i.held {
				i.removeVIPs()
			}
			return nil
		case <-timer.C:
			i.cause = 0
			i.step(fsm.Input{Kind: fsm.InputTick})
		case b := <-i.rx:
			i.receive(b)
			i.free <- b
		case c := <-i.ctl:
			i.cause = c.cause
			switch c.kind {
			case ctlPriority:
				i.step(fsm.Input{Kind: fsm.InputPriority, Priority: c.priority})
			case ctlFault:
				i.step(fsm.Input{Kind: fsm.InputFault})
			case ctlFaultCleared:
				i.step(fsm.Input{Kind: fsm.InputFaultCleared})
			case ctlSync:
				i.step(c.input)
			}
		}
	}
}

func (i *Instance) receive(b *rxBuf) {
	ip := receive.IP{Src: b.src, Dst: b.dst, TTL: b.ttl, HeaderLen: b.ipHdrLen, TotalLen: b.ipTotal}
	r := receive.Validate(b.b[:b.n], ip, &i.cfg.Receive, &i.rxAdv)
	i.lastTime = time.Now()
	if !r.Accepted() {
		i.emit(event.Event{Kind: event.KindAdvertDropped, Reason: r.Drop, Addr: b.src})
		return
	}
	if r.OldUnicastChecksum {
		i.cfg.Receive.OldUnicastChecksum = receive.UnicastChecksumOld
	}
	i.emit(event.Event{Kind: event.KindAdvertReceived, Priority: int(i.rxAdv.Priority), Addr: b.src, Interval: i.rxAdv.Interval()})
	if r.AddressMismatch {
		// Accepted (keepalived ≥ 2.3.3), but counted: on 2.2.x peers this
		// mismatch is the classic split brain (reference §0 item 4).
		i.emit(event.Event{Kind: event.KindAdvertDropped, Reason: event.DropAddressList, Addr: b.src, OK: true})
	}
	i.cause = 0
	in := fsm.Input{Kind: fsm.InputAdvert, Advert: fsm.Advert{Src: b.src, Priority: int(i.rxAdv.Priority), AddrMismatch: r.AddressMismatch}}
	if i.rxAdv.Version == vrrp.Version3 {
		in.Advert.Interval = i.rxAdv.Interval()
	}
	i.step(in)
}

// step feeds the machine and performs its actions in order.
func (i *Instance) step(in fsm.Input) {
	if in.Kind != fsm.InputAdvert {
		i.lastTime = time.Now()
	}
	acts := i.m.Step(i.now(), in)
	// Report a transition before performing its actions, so that the
	// advert, VIP and gratuitous ARP events it causes carry its ID. The
	// actions themselves keep the machine's order (advert, VIPs, ARPs).
	for k := range acts {
		if a := &acts[k]; a.Kind == fsm.ActionEvent && a.Event.Kind == event.KindTransition {
			i.cause = i.emit(a.Event)
			i.noteTransition(a.Event)
		}
	}
	for k := range acts {
		a := &acts[k]
		switch a.Kind {
		case fsm.ActionSendAdvert:
			i.sendAdvert(a.Priority)
		case fsm.ActionAddVIPs:
			i.addVIPs()
		case fsm.ActionRemoveVIPs:
			i.removeVIPs()
		case fsm.ActionSendGratuitous:
			i.gratuitous(a.Count)
		case fsm.ActionEvent:
			if a.Event.Kind != event.KindTransition {
				i.emit(a.Event)
			}
		case fsm.ActionNotify, fsm.ActionNotifyLowerPrio:
			// Notify scripts follow KindTransition events (engine/notify).
		}
	}
	i.snapMu.Lock()
	i.snap.State = i.m.State()
	i.snap.Priority = i.m.Priority()
	i.snap.BasePriority = i.m.BasePriority()
	i.snap.Master, i.snap.MasterPriority = i.m.Master()
	i.snap.VIPsHeld = i.held
	i.snap.MasterDown = i.m.MasterDownInterval()
	i.snapMu.Unlock()
}

func (i *Instance) noteTransition(e event.Event) {
	i.snapMu.Lock()
	i.snap.LastTransition = i.lastTime
	i.snap.LastReason = e.Reason
	i.snapMu.Unlock()
	i.log.Info("transition", "from", e.From.String(), "to", e.To.String(), "reason", string(e.Reason), "priority", e.Priority)
}

// emit stamps identity, time, ID and cause on e and sends it.
func (i *Instance) emit(e event.Event) uint64 {
	e.ID = event.NewID()
	if e.Cause == 0 {
		e.Cause = i.cause
	}
	e.Time = i.lastTime
	e.Instance = i.cfg.FSM.Name
	e.VRID = i.cfg.FSM.VRID
	e.Interface = i.cfg.FSM.Interface
	e.Family = i.cfg.FSM.Family
	i.deps.Sink.Emit(e)
	return e.ID
}

func (i *Instance) sendAdvert(prio int) {
	i.adv.Priority = uint8(prio)
	for _, dst := range i.cfg.Dsts {
		var err error
		if i.cfg.FSM.Family == vrrp.IPv4 {
			err = i.sendIPv4(dst)
		} else {
			err = i.sendIPv6(dst)
		}
		if err != nil {
			i.log.Warn("sending advert", "dst", dst, "err", err)
			continue
		}
		i.emit(event.Event{Kind: event.KindAdvertSent, Priority: prio, Addr: dst})
	}
}

func (i *Instance) sendIPv4(dst netip.Addr) error {
	// keepalived's IP ID counts from 1 per instance and is never 0 (reference §2.1).
	i.ipID++
	if i.ipID == 0 {
		i.ipID = 1
	}
	n := i.adv.Len()
	h := vrrp.NewIPv4Header(i.cfg.Src, dst, i.ipID, i.cfg.TTL, n)
	b, err := h.AppendBinary(i.out[:0])
	if err != nil {
		return err
	}
	b, err = i.adv.AppendWithChecksum(b, i.cfg.Src, dst, i.cfg.Checksum)
	if err != nil {
		return err
	}
	i.out = b
	return i.deps.Conn.WriteIPv4(b)
}

func (i *Instance) sendIPv6(dst netip.Addr) error {
	// The kernel computes the IPv6 checksum (IPV6_CHECKSUM, reference §2.1).
	b, err := i.adv.AppendBinary(i.out[:0])
	if err != nil {
		return err
	}
	i.out = b
	hop := 0
	if !dst.IsMulticast() {
		hop = i.cfg.HopLimit
	}
	return i.deps.Conn.WriteIPv6(b, netip.Addr{}, dst, hop)
}

func (i *Instance) addVIPs() {
	for _, list := range [][]netif.Address{i.cfg.VIPs, i.cfg.ExcludedVIPs} {
		for _, a := range list {
			if err := i.deps.Addrs.AddAddress(a); err != nil {
				i.log.Error("adding VIP", "address", a.Prefix, "err", err)
				continue
			}
			i.emit(event.Event{Kind: event.KindVIPAdded, Addr: a.Prefix.Addr()})
		}
	}
	for _, r := range i.cfg.Routes {
		if err := i.deps.Addrs.AddRoute(r); err != nil {
			i.log.Error("adding virtual route", "route", r.String(), "err", err)
		}
	}
	for _, r := range i.cfg.Rules {
		if err := i.deps.Addrs.AddRule(r); err != nil {
			i.log.Error("adding virtual rule", "rule", r.String(), "err", err)
		}
	}
	i.held = true
}

func (i *Instance) removeVIPs() {
	for _, r := range i.cfg.Rules {
		_ = i.deps.Addrs.RemoveRule(r)
	}
	for _, r := range i.cfg.Routes {
		_ = i.deps.Addrs.RemoveRoute(r)
	}
	for _, list := range [][]netif.Address{i.cfg.VIPs, i.cfg.ExcludedVIPs} {
		for _, a := range list {
			if err := i.deps.Addrs.RemoveAddress(a); err != nil {
				i.log.Error("removing VIP", "address", a.Prefix, "err", err)
				continue
			}
			i.emit(event.Event{Kind: event.KindVIPRemoved, Addr: a.Prefix.Addr()})
		}
	}
	i.held = false
}

// gratuitous sends count rounds of one gratuitous ARP / NA per VIP and eVIP,
// the addresses interleaved as keepalived sends them (vectors/README.md).
func (i *Instance) gratuitous(count int) {
	if i.deps.Announcer == nil || count <= 0 {
		return
	}
	send := func() {
		for range count {
			for _, list := range [][]netif.Address{i.cfg.VIPs, i.cfg.ExcludedVIPs} {
				for _, a := range list {
					ifname := a.Dev
					if ifname == "" {
						ifname = i.cfg.FSM.Interface
					}
					if err := i.deps.Announcer.Announce(ifname, a.Prefix.Addr()); err != nil {
						i.log.Warn("gratuitous announcement", "address", a.Prefix.Addr(), "err", err)
						continue
					}
					i.emit(event.Event{Kind: event.KindGratuitousSent, Addr: a.Prefix.Addr(), Interface: ifname})
					if i.cfg.GarpSpacing > 0 {
						time.Sleep(i.cfg.GarpSpacing)
					}
				}
			}
		}
	}
	if i.cfg.GarpSpacing > 0 {
		// Spaced bursts must not hold up the instance's timers.
		go send()
		return
	}
	send()
}
