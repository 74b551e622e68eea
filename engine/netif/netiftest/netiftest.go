package netiftest

import (
	"bytes"
	"net/netip"
	"slices"
	"sync"

	"github.com/keepwatch/keepwatch/engine/netif"
)

// Sent is one packet passed to a Sender.
type Sent struct {
	// Packet is the IPv4 packet, or the IPv6 VRRP message.
	Packet   []byte
	Src, Dst netip.Addr // IPv6 only (IPv4 carries them in Packet)
	HopLimit int        // IPv6 only
}

// Network records what it is asked to do, and keeps the set of addresses,
// routes and rules it was asked to install. It implements netif's Sender,
// Registrar, Announcer, Addresses, Routes and Rules, and is safe for
// concurrent use. Fail, if set, is returned by every call (and the call is
// not recorded).
type Network struct {
	mu        sync.Mutex
	Fail      error
	sent      []Sent
	announced []netip.Addr
	addrs     []netif.Address
	routes    []netif.Route
	rules     []netif.Rule
	handlers  map[uint8]netif.Handler
	unknown   int
}

var (
	_ netif.Sender    = (*Network)(nil)
	_ netif.Registrar = (*Network)(nil)
	_ netif.Announcer = (*Network)(nil)
	_ netif.Addresses = (*Network)(nil)
	_ netif.Routes    = (*Network)(nil)
	_ netif.Rules     = (*Network)(nil)
)

// WriteIPv4 records a copy of pkt.
func (n *Network) WriteIPv4(pkt []byte) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.Fail != nil {
		return n.Fail
	}
	n.sent = append(n.sent, Sent{Packet: bytes.Clone(pkt)})
	return nil
}

// WriteIPv6 records a copy of msg with its addresses.
func (n *Network) WriteIPv6(msg []byte, src, dst netip.Addr, hopLimit int) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.Fail != nil {
		return n.Fail
	}
	n.sent = append(n.sent, Sent{Packet: bytes.Clone(msg), Src: src, Dst: dst, HopLimit: hopLimit})
	return nil
}

// Sent returns what was sent, in order, and forgets it.
func (n *Network) Sent() []Sent {
	n.mu.Lock()
	defer n.mu.Unlock()
	s := n.sent
	n.sent = nil
	return s
}

// Handle registers h for vrid (nil removes it).
func (n *Network) Handle(vrid uint8, h netif.Handler) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.handlers == nil {
		n.handlers = map[uint8]netif.Handler{}
	}
	if h == nil {
		delete(n.handlers, vrid)
		return
	}
	n.handlers[vrid] = h
}

// Deliver hands p to the handler of its VRID, as a socket's read loop
// would, and reports whether one was registered (if not, it counts towards
// Unknown).
func (n *Network) Deliver(p *netif.Packet) bool {
	n.mu.Lock()
	h, ok := n.handlers[p.VRID()]
	if !ok {
		n.unknown++
	}
	n.mu.Unlock()
	if ok {
		h.HandleVRRP(p)
	}
	return ok
}

// Unknown is the number of delivered packets no handler took.
func (n *Network) Unknown() int {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.unknown
}

// Announce records vip.
func (n *Network) Announce(vip netip.Addr) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.Fail != nil {
		return n.Fail
	}
	n.announced = append(n.announced, vip)
	return nil
}

// Announced returns the announced VIPs, in order, and forgets them.
func (n *Network) Announced() []netip.Addr {
	n.mu.Lock()
	defer n.mu.Unlock()
	a := n.announced
	n.announced = nil
	return a
}

// AddAddress installs a (idempotently, keyed by address and interface).
func (n *Network) AddAddress(a netif.Address) error {
	return add(n, &n.addrs, a, func(x netif.Address) bool { return x.Prefix.Addr() == a.Prefix.Addr() && x.Dev == a.Dev })
}

// RemoveAddress removes a, if present.
func (n *Network) RemoveAddress(a netif.Address) error {
	return remove(n, &n.addrs, func(x netif.Address) bool { return x.Prefix.Addr() == a.Prefix.Addr() && x.Dev == a.Dev })
}

// Addresses returns the installed addresses, in the order added.
func (n *Network) Addresses() []netif.Address {
	n.mu.Lock()
	defer n.mu.Unlock()
	return slices.Clone(n.addrs)
}

// AddRoute installs r (idempotently).
func (n *Network) AddRoute(r netif.Route) error {
	return add(n, &n.routes, r, func(x netif.Route) bool { return x == r })
}

// RemoveRoute removes r, if present.
func (n *Network) RemoveRoute(r netif.Route) error {
	return remove(n, &n.routes, func(x netif.Route) bool { return x == r })
}

// Routes returns the installed routes.
func (n *Network) Routes() []netif.Route {
	n.mu.Lock()
	defer n.mu.Unlock()
	return slices.Clone(n.routes)
}

// AddRule installs r (idempotently).
func (n *Network) AddRule(r netif.Rule) error {
	return add(n, &n.rules, r, func(x netif.Rule) bool { return x == r })
}

// RemoveRule removes r, if present.
func (n *Network) RemoveRule(r netif.Rule) error {
	return remove(n, &n.rules, func(x netif.Rule) bool { return x == r })
}

// Rules returns the installed rules.
func (n *Network) Rules() []netif.Rule {
	n.mu.Lock()
	defer n.mu.Unlock()
	return slices.Clone(n.rules)
}

func add[T any](n *Network, set *[]T, v T, same func(T) bool) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.Fail != nil {
		return n.Fail
	}
	if !slices.ContainsFunc(*set, same) {
		*set = append(*set, v)
	}
	return nil
}

func remove[T any](n *Network, set *[]T, same func(T) bool) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.Fail != nil {
		return n.Fail
	}
	*set = slices.DeleteFunc(*set, same)
	return nil
}
