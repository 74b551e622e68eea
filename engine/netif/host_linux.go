package netif

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"

	"github.com/vishvananda/netns"
)

// Socket is an open VRRP socket as its owner sees it: send, route received
// adverts by VRID, read (Run, until ctx is done or Close) and close.
type Socket interface {
	Sender
	Registrar
	Run(ctx context.Context) error
	Close() error
}

var _ Socket = (*Conn)(nil)

// Host is the host's network as one value, for the agent's platform
// interface (engine/agent.Platform): the rtnetlink System, VRRP sockets,
// one gratuitous ARP / NA socket per interface, the link watch and the
// interfaces' primary addresses. It is a thin adapter over the functions of
// this package; it adds only the per-interface announcer cache.
type Host struct {
	*System
	// OnLinkError, if set, hears each netlink error the link watch
	// recovers from (before it subscribes again).
	OnLinkError func(error)

	// in is the namespace of every socket and lookup (net_namespace);
	// zero: the thread's that opened the Host. System's netlink handle is
	// bound to the same one.
	in     inNS
	nsName string

	mu   sync.Mutex
	annc map[string]*Gratuitous
}

// OpenHost opens the calling thread's network namespace.
func OpenHost() (*Host, error) {
	s, err := Open()
	if err != nil {
		return nil, err
	}
	return &Host{System: s, annc: map[string]*Gratuitous{}}, nil
}

// UseNamespace binds the Host to the named network namespace (keepalived's
// net_namespace: /var/run/netns/NAME, as `ip netns add` makes it) before
// its first use: its netlink handle is made in the namespace
// (netlink.NewHandleAt), the link watch subscribes there, and sockets and
// interface lookups are made on a thread switched into it. Only the
// Host's calls move; the process, and so its HTTP listener, stays where
// it was started. "" leaves the Host where it is. A Host already bound to
// another namespace refuses (keepalived cannot change net_namespace
// either, reference §4.1).
func (h *Host) UseNamespace(name string) error {
	if name == h.nsName {
		return nil
	}
	if h.nsName != "" {
		return fmt.Errorf("netif: already in network namespace %q, cannot move to %q", h.nsName, name)
	}
	ns, err := netns.GetFromName(name)
	if err != nil {
		return fmt.Errorf("netif: network namespace %q: %w", name, err)
	}
	s, err := OpenAt(ns)
	if err != nil {
		ns.Close()
		return fmt.Errorf("netif: network namespace %q: %w", name, err)
	}
	h.CloseAnnouncers()
	h.System.Close()
	h.System, h.in, h.nsName = s, inNS{ns: ns, hasNS: true}, name
	return nil
}

// Namespace is the network namespace UseNamespace bound the Host to; ""
// for the one it was opened in.
func (h *Host) Namespace() string { return h.nsName }

// Listen opens the VRRP socket of ifname (IPv6 if v6).
func (h *Host) Listen(ifname string, v6 bool, cfg Config) (Socket, error) {
	return listenIn(h.in, ifname, v6, cfg)
}

// Announce sends one gratuitous ARP (IPv4) or unsolicited NA (IPv6) for
// addr on ifname, opening the interface's packet socket on first use.
func (h *Host) Announce(ifname string, addr netip.Addr) error {
	h.mu.Lock()
	g, ok := h.annc[ifname]
	if !ok {
		err := h.in.do(func() (err error) {
			g, err = NewGratuitous(ifname)
			return err
		})
		if err != nil {
			h.mu.Unlock()
			return err
		}
		g.in = h.in
		h.annc[ifname] = g
	}
	h.mu.Unlock()
	return g.Announce(addr)
}

// CloseAnnouncers closes the packet sockets Announce opened.
func (h *Host) CloseAnnouncers() {
	h.mu.Lock()
	defer h.mu.Unlock()
	for name, g := range h.annc {
		g.Close()
		delete(h.annc, name)
	}
}

// WatchLinks is System.WatchLinksErrors: it subscribes again after a
// netlink error and resynchronises from a dump (reporting interfaces that
// vanished meanwhile as Deleted), so it returns only when ctx is done. A
// deleted interface's announcer socket is closed: one of the same name made
// later (a VMAC recreated) gets its own.
func (h *Host) WatchLinks(ctx context.Context, fn func(LinkEvent)) error {
	return h.System.WatchLinksErrors(ctx, func(ev LinkEvent) {
		if ev.Deleted {
			h.mu.Lock()
			if g, ok := h.annc[ev.Name]; ok {
				g.Close()
				delete(h.annc, ev.Name)
			}
			h.mu.Unlock()
		}
		fn(ev)
	}, h.OnLinkError)
}

// Links returns every interface's current usability, as WatchLinks
// reports it (up: IFF_UP and IFF_RUNNING).
func (h *Host) Links() ([]LinkEvent, error) {
	var ifs []net.Interface
	err := h.in.do(func() (err error) {
		ifs, err = net.Interfaces()
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("netif: interfaces: %w", err)
	}
	out := make([]LinkEvent, 0, len(ifs))
	for _, ifi := range ifs {
		out = append(out, LinkEvent{Name: ifi.Name, Index: ifi.Index, Up: ifi.Flags&net.FlagUp != 0 && ifi.Flags&net.FlagRunning != 0})
	}
	return out, nil
}

// ErrNoAddress is returned by PrimaryAddress when the interface has no
// address of the family.
var ErrNoAddress = errors.New("netif: no address of the family")

// PrimaryAddress is the first IPv4 address of ifname, or (v6) its
// link-local address, the source of VRRPv3 adverts (RFC 9568 §5.1.2.1).
func (h *Host) PrimaryAddress(ifname string, v6 bool) (netip.Addr, error) {
	var addrs []net.Addr
	err := h.in.do(func() error {
		ifi, err := net.InterfaceByName(ifname)
		if err != nil {
			return err
		}
		addrs, err = ifi.Addrs()
		return err
	})
	if err != nil {
		return netip.Addr{}, fmt.Errorf("netif: interface %q: %w", ifname, err)
	}
	for _, a := range addrs {
		ipn, ok := a.(*net.IPNet)
		if !ok {
			continue
		}
		ip, ok := netip.AddrFromSlice(ipn.IP)
		if !ok {
			continue
		}
		ip = ip.Unmap()
		if !v6 && ip.Is4() || v6 && ip.Is6() && ip.IsLinkLocalUnicast() {
			return ip, nil
		}
	}
	fam := "IPv4"
	if v6 {
		fam = "IPv6 link-local"
	}
	return netip.Addr{}, fmt.Errorf("interface %s has no %s address: %w", ifname, fam, ErrNoAddress)
}

// Close closes the announcers and the netlink socket.
func (h *Host) Close() error {
	h.CloseAnnouncers()
	h.System.Close()
	if h.in.hasNS {
		h.in.ns.Close()
	}
	return nil
}
