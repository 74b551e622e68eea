package agenttest

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"sync"

	"github.com/keepwatch/keepwatch/engine/agent"
	"github.com/keepwatch/keepwatch/engine/netif"
	"github.com/keepwatch/keepwatch/engine/netif/netiftest"
	"github.com/keepwatch/keepwatch/engine/vrrp"
)

// Platform is a fake operating system for the agent. Interfaces exist once
// added with AddLink; addresses, routes and rules live in Net; every call
// is appended to an ordered log (Log) so tests can assert what happened
// and in which order: "listen eth0 4", "advert eth0 vrid 51 prio 200",
// "add 192.0.2.100/24 eth0", "announce eth0 192.0.2.100", "close eth0 4",
// "vmac add vrrp.51", "stale", "platform close". It is safe for concurrent use.
type Platform struct {
	// Net holds the installed addresses, routes and rules.
	Net netiftest.Network

	mu      sync.Mutex
	links   map[string]*link
	log     []string
	socks   map[sockKey]*Socket
	watch   map[int]func(netif.LinkEvent)
	watchID int
	failVM  error
	gate    chan struct{} // AddAddress waits for it to close, when set

	watchFail  chan error
	watchEnded chan struct{}
	closed     bool
}

type link struct {
	up   bool
	addr [2]netip.Addr // IPv4, IPv6 link-local
}

type sockKey struct {
	ifname string
	v6     bool
	ah     bool // netif.Config.AH: IP protocol 51
}

var _ agent.Platform = (*Platform)(nil)

// New returns a platform without interfaces.
func New() *Platform {
	return &Platform{links: map[string]*link{}, socks: map[sockKey]*Socket{}, watch: map[int]func(netif.LinkEvent){}, watchFail: make(chan error), watchEnded: make(chan struct{})}
}

func (p *Platform) record(format string, a ...any) {
	p.log = append(p.log, fmt.Sprintf(format, a...))
}

// Log returns every call so far, in order.
func (p *Platform) Log() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.log)
}

// Grep returns the log entries that start with prefix.
func (p *Platform) Grep(prefix string) []string {
	var out []string
	for _, l := range p.Log() {
		if strings.HasPrefix(l, prefix) {
			out = append(out, l)
		}
	}
	return out
}

// AddLink creates an up interface with an IPv4 and an IPv6 link-local
// address (either may be invalid: the interface has none), and reports it
// to the link watch.
func (p *Platform) AddLink(name string, v4, ll6 netip.Addr) {
	p.mu.Lock()
	p.links[name] = &link{up: true, addr: [2]netip.Addr{v4, ll6}}
	fns := p.watchers()
	p.mu.Unlock()
	for _, fn := range fns {
		fn(netif.LinkEvent{Name: name, Up: true})
	}
}

// watchers is every WatchLinks callback; mu held.
func (p *Platform) watchers() []func(netif.LinkEvent) {
	out := make([]func(netif.LinkEvent), 0, len(p.watch))
	for _, fn := range p.watch {
		out = append(out, fn)
	}
	return out
}

// SetLink sets an interface up or down and reports it to the link watch.
func (p *Platform) SetLink(name string, up bool) {
	p.mu.Lock()
	if l, ok := p.links[name]; ok {
		l.up = up
	}
	fns := p.watchers()
	p.mu.Unlock()
	for _, fn := range fns {
		fn(netif.LinkEvent{Name: name, Up: up})
	}
}

// FailVMAC makes AddVMAC fail with err (nil: succeed).
func (p *Platform) FailVMAC(err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.failVM = err
}

// Socket returns the open socket of an interface and family, or nil.
func (p *Platform) Socket(ifname string, v6 bool) *Socket {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.socks[sockKey{ifname, v6, false}]
}

// AHSocket returns the interface's open AH socket (netif.Config.AH), or nil.
func (p *Platform) AHSocket(ifname string) *Socket {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.socks[sockKey{ifname, false, true}]
}

// Listen opens a fake socket on an existing interface.
func (p *Platform) Listen(ifname string, v6 bool, cfg netif.Config) (netif.Socket, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if _, ok := p.links[ifname]; !ok {
		return nil, fmt.Errorf("agenttest: interface %q: no such interface", ifname)
	}
	fam := 4
	if v6 {
		fam = 6
	}
	s := &Socket{p: p, ifname: ifname, fam: fam, ah: cfg.AH, done: make(chan struct{}), unknown: cfg.Unknown}
	p.socks[sockKey{ifname, v6, cfg.AH}] = s
	if cfg.AH {
		p.record("listen %s %d ah", ifname, fam)
	} else {
		p.record("listen %s %d", ifname, fam)
	}
	return s, nil
}

// AddAddress installs a in Net (after Release, if Hold was called).
func (p *Platform) AddAddress(a netif.Address) error {
	p.mu.Lock()
	gate := p.gate
	p.mu.Unlock()
	if gate != nil {
		<-gate
	}
	p.mu.Lock()
	p.record("add %s %s", a.Prefix, a.Dev)
	p.mu.Unlock()
	return p.Net.AddAddress(a)
}

// Hold makes AddAddress wait, as a stuck netlink call would, until Release.
func (p *Platform) Hold() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.gate = make(chan struct{})
}

// Release lets waiting and later AddAddress calls through.
func (p *Platform) Release() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.gate != nil {
		close(p.gate)
		p.gate = nil
	}
}

// RemoveAddress removes a from Net.
func (p *Platform) RemoveAddress(a netif.Address) error {
	p.mu.Lock()
	p.record("remove %s %s", a.Prefix, a.Dev)
	p.mu.Unlock()
	return p.Net.RemoveAddress(a)
}

// AddRoute installs r in Net.
func (p *Platform) AddRoute(r netif.Route) error {
	p.mu.Lock()
	p.record("route add %s", r)
	p.mu.Unlock()
	return p.Net.AddRoute(r)
}

// RemoveRoute removes r from Net.
func (p *Platform) RemoveRoute(r netif.Route) error {
	p.mu.Lock()
	p.record("route remove %s", r)
	p.mu.Unlock()
	return p.Net.RemoveRoute(r)
}

// AddRule installs r in Net.
func (p *Platform) AddRule(r netif.Rule) error {
	p.mu.Lock()
	p.record("rule add %s", r)
	p.mu.Unlock()
	return p.Net.AddRule(r)
}

// RemoveRule removes r from Net.
func (p *Platform) RemoveRule(r netif.Rule) error {
	p.mu.Lock()
	p.record("rule remove %s", r)
	p.mu.Unlock()
	return p.Net.RemoveRule(r)
}

// Announce records a gratuitous ARP / NA.
func (p *Platform) Announce(ifname string, addr netip.Addr) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.record("announce %s %s", ifname, addr)
	return nil
}

// WatchLinks reports every interface, then each AddLink and SetLink, until
// ctx is done.
func (p *Platform) WatchLinks(ctx context.Context, fn func(netif.LinkEvent)) error {
	p.mu.Lock()
	p.watchID++
	id := p.watchID
	p.watch[id] = fn
	var now []netif.LinkEvent
	for name, l := range p.links {
		now = append(now, netif.LinkEvent{Name: name, Up: l.up})
	}
	p.mu.Unlock()
	for _, ev := range now {
		fn(ev)
	}
	var err error
	failed := false
	select {
	case <-ctx.Done():
		err = ctx.Err()
	case err = <-p.watchFail:
		failed = true
	}
	p.mu.Lock()
	delete(p.watch, id)
	p.record("watch ended")
	p.mu.Unlock()
	if failed {
		p.watchEnded <- struct{}{}
	}
	return err
}

// FailWatch makes a running WatchLinks return err, as a netlink
// subscription that broke (ENOBUFS, a closed socket).
// It returns once that subscription is gone.
func (p *Platform) FailWatch(err error) {
	p.watchFail <- err
	<-p.watchEnded
}

// Links lists the interfaces.
func (p *Platform) Links() ([]netif.LinkEvent, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []netif.LinkEvent
	for name, l := range p.links {
		out = append(out, netif.LinkEvent{Name: name, Up: l.up})
	}
	return out, nil
}

// AddVMAC records the VMAC and creates its interface (with the parent's addresses).
func (p *Platform) AddVMAC(v netif.VMAC) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.failVM != nil {
		return p.failVM
	}
	p.record("vmac add %s", v.LinkName())
	if parent, ok := p.links[v.Parent]; ok {
		l := *parent
		p.links[v.LinkName()] = &l
	}
	return nil
}

// RemoveVMAC records the removal and deletes the interface.
func (p *Platform) RemoveVMAC(v netif.VMAC) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.record("vmac remove %s", v.LinkName())
	delete(p.links, v.LinkName())
	return nil
}

// RemoveLeftovers removes those of want that Net holds, and the VMACs of
// vmacs that exist.
func (p *Platform) RemoveLeftovers(want []netif.Address, vmacs []netif.VMAC) (netif.Leftovers, error) {
	p.mu.Lock()
	p.record("stale")
	var left netif.Leftovers
	for _, v := range vmacs {
		if _, ok := p.links[v.LinkName()]; ok {
			delete(p.links, v.LinkName())
			left.VMACs = append(left.VMACs, v.LinkName())
		}
	}
	p.mu.Unlock()
	var removed []netif.Address
	held := p.Net.Addresses()
	for _, a := range want {
		if slices.ContainsFunc(held, func(h netif.Address) bool { return h.Prefix.Addr() == a.Prefix.Addr() && h.Dev == a.Dev }) {
			_ = p.Net.RemoveAddress(a)
			removed = append(removed, a)
		}
	}
	left.VIPs = removed
	return left, nil
}

// ErrNoAddress is returned by PrimaryAddress for an interface without one.
var ErrNoAddress = errors.New("agenttest: no address")

// PrimaryAddress returns what AddLink gave the interface.
func (p *Platform) PrimaryAddress(ifname string, v6 bool) (netip.Addr, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	l, ok := p.links[ifname]
	if !ok {
		return netip.Addr{}, fmt.Errorf("interface %q: no such interface", ifname)
	}
	a := l.addr[0]
	if v6 {
		a = l.addr[1]
	}
	if !a.IsValid() {
		return netip.Addr{}, fmt.Errorf("interface %s: %w", ifname, ErrNoAddress)
	}
	return a, nil
}

// SetAddress gives an existing interface its IPv4 (or IPv6 link-local) address.
func (p *Platform) SetAddress(ifname string, a netip.Addr) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if l, ok := p.links[ifname]; ok {
		if a.Is4() {
			l.addr[0] = a
		} else {
			l.addr[1] = a
		}
	}
}

// Close records the close.
func (p *Platform) Close() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.record("platform close")
	p.closed = true
	return nil
}

// Closed reports whether Close was called.
func (p *Platform) Closed() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.closed
}

// Socket is a fake VRRP socket: what is written is recorded (and logged
// as "advert IFNAME vrid N prio P"), Deliver hands a packet to the handler
// of its VRID.
type Socket struct {
	netiftest.Network
	p       *Platform
	ifname  string
	fam     int
	ah      bool
	unknown netif.Handler

	closeOnce sync.Once
	done      chan struct{}
}

var _ netif.Socket = (*Socket)(nil)

// WriteIPv4 records the packet and logs its advert.
func (s *Socket) WriteIPv4(pkt []byte) error {
	if err := s.Network.WriteIPv4(pkt); err != nil {
		return err
	}
	if n := 20 + s.ahLen(); len(pkt) > n {
		s.logAdvert(pkt[n:])
	}
	return nil
}

// WriteIPv6 records the message and logs its advert.
func (s *Socket) WriteIPv6(msg []byte, src, dst netip.Addr, hop int) error {
	if err := s.Network.WriteIPv6(msg, src, dst, hop); err != nil {
		return err
	}
	s.logAdvert(msg)
	return nil
}

func (s *Socket) ahLen() int {
	if s.ah {
		return vrrp.AHLen
	}
	return 0
}

func (s *Socket) logAdvert(b []byte) {
	var a vrrp.Advertisement
	a.Family = vrrp.IPv4
	if s.fam == 6 {
		a.Family = vrrp.IPv6
	}
	if err := a.UnmarshalBinary(b); err != nil {
		return
	}
	s.p.mu.Lock()
	s.p.record("advert %s vrid %d prio %d", s.ifname, a.VRID, a.Priority)
	s.p.mu.Unlock()
}

// Deliver hands p to its VRID's handler, or the socket's Unknown handler.
func (s *Socket) Deliver(pkt *netif.Packet) {
	if !s.Network.Deliver(pkt) && s.unknown != nil {
		s.unknown.HandleVRRP(pkt)
	}
}

// Run blocks until ctx is done or the socket is closed.
func (s *Socket) Run(ctx context.Context) error {
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-s.done:
		return netif.ErrClosed
	}
}

// Close closes the socket (once) and logs "close IFNAME FAMILY".
func (s *Socket) Close() error {
	s.closeOnce.Do(func() {
		close(s.done)
		s.p.mu.Lock()
		s.p.record("close %s %d", s.ifname, s.fam)
		if k := (sockKey{s.ifname, s.fam == 6, s.ah}); s.p.socks[k] == s {
			delete(s.p.socks, k)
		}
		s.p.mu.Unlock()
	})
	return nil
}
