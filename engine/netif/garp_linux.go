package netif

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"sync"

	"golang.org/x/sys/unix"
)

// Gratuitous sends gratuitous ARPs and unsolicited NAs on one interface
// (the VRRP interface, or its VMAC) through a packet socket, building the
// whole frame as keepalived does: an NA must leave from the VIP even while
// the kernel may hold that address tentative, and a VMAC may have no IPv4
// address of its own.
type Gratuitous struct {
	ifname  string
	ifindex int
	mac     net.HardwareAddr
	// fd is an AF_PACKET socket bound to no protocol, so it receives
	// nothing: it only sends.
	fd int
	// fwd is /proc/sys/net/ipv6/conf/IF/forwarding, opened in the
	// interface's namespace and re-read before each NA: keepalived sets the
	// Router flag from it (reference §2.6).
	fwd *os.File
	// in is the namespace follow looks the interface up in.
	in inNS

	mu  sync.Mutex
	buf []byte
	sa  unix.SockaddrLinklayer
}

var _ Announcer = (*Gratuitous)(nil)

// NewGratuitous opens the socket for an interface. Call it in the
// interface's network namespace.
func NewGratuitous(ifname string) (*Gratuitous, error) {
	ifi, err := net.InterfaceByName(ifname)
	if err != nil {
		return nil, fmt.Errorf("netif: interface %q: %w", ifname, err)
	}
	if len(ifi.HardwareAddr) != 6 {
		return nil, fmt.Errorf("netif: interface %q: not Ethernet (hardware address %q)", ifname, ifi.HardwareAddr)
	}
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("netif: packet socket on %q: %w", ifname, err)
	}
	g := &Gratuitous{ifname: ifname, ifindex: ifi.Index, mac: ifi.HardwareAddr, fd: fd, buf: make([]byte, 0, NALen)}
	// Absent when IPv6 is disabled on the interface: then no NA goes out anyway.
	g.fwd, _ = os.Open("/proc/sys/net/ipv6/conf/" + ifname + "/forwarding")
	return g, nil
}

// MAC is the sender hardware address of the frames.
func (g *Gratuitous) MAC() net.HardwareAddr {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.mac
}

// Close closes the socket.
func (g *Gratuitous) Close() error {
	g.mu.Lock()
	defer g.mu.Unlock()
	var errs []error
	if g.fd >= 0 {
		errs = append(errs, unix.Close(g.fd))
		g.fd = -1
	}
	if g.fwd != nil {
		errs = append(errs, g.fwd.Close())
		g.fwd = nil
	}
	return errors.Join(errs...)
}

// Announce sends one gratuitous ARP for an IPv4 vip or one unsolicited NA
// for an IPv6 vip. keepalived's repeat and delay schedule is the caller's.
func (g *Gratuitous) Announce(vip netip.Addr) error {
	vip = vip.Unmap()
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.fd < 0 {
		return ErrClosed
	}
	err := g.send(vip)
	if errors.Is(err, unix.ENXIO) || errors.Is(err, unix.ENODEV) {
		// The interface was deleted and perhaps made again under its name
		// (a VMAC recreated after a crash or a restart of its instance):
		// follow the name to its new index and send again, once.
		if g.follow() == nil {
			err = g.send(vip)
		}
	}
	if err != nil {
		return fmt.Errorf("netif: announce %s on %q: %w", vip, g.ifname, err)
	}
	return nil
}

// send builds and sends one frame; g.mu held.
func (g *Gratuitous) send(vip netip.Addr) error {
	g.sa = unix.SockaddrLinklayer{Ifindex: g.ifindex, Halen: 6}
	switch {
	case vip.Is4():
		g.buf = AppendGARP(g.buf[:0], g.mac, vip)
		g.sa.Protocol = htons(etherTypeARP)
	case vip.Is6():
		g.buf = AppendUnsolicitedNA(g.buf[:0], g.mac, vip, g.forwarding())
		g.sa.Protocol = htons(etherTypeIPv6)
	default:
		return errors.New("invalid address")
	}
	copy(g.sa.Addr[:], g.buf[:6]) // the frame's own destination
	return unix.Sendto(g.fd, g.buf, 0, &g.sa)
}

// follow looks the interface up again by name, in the calling thread's
// namespace; g.mu held. The frames are rebuilt by the caller, with the new
// hardware address.
func (g *Gratuitous) follow() error {
	return g.in.do(g.followHere)
}

func (g *Gratuitous) followHere() error {
	ifi, err := net.InterfaceByName(g.ifname)
	if err != nil {
		return err
	}
	if ifi.Index == g.ifindex || len(ifi.HardwareAddr) != 6 {
		return fmt.Errorf("netif: interface %q: no new index to follow", g.ifname)
	}
	g.ifindex, g.mac = ifi.Index, ifi.HardwareAddr
	if g.fwd != nil {
		g.fwd.Close()
	}
	g.fwd, _ = os.Open("/proc/sys/net/ipv6/conf/" + g.ifname + "/forwarding")
	return nil
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }

// forwarding reports whether IPv6 forwarding is on for the interface.
func (g *Gratuitous) forwarding() bool {
	if g.fwd == nil {
		return false
	}
	var b [4]byte
	n, _ := g.fwd.ReadAt(b[:], 0)
	return n > 0 && b[0] != '0'
}

// Forwarding6 reports whether IPv6 forwarding is on for an interface, in
// the calling thread's namespace.
func Forwarding6(ifname string) (bool, error) {
	b, err := os.ReadFile("/proc/sys/net/ipv6/conf/" + ifname + "/forwarding")
	if err != nil {
		return false, fmt.Errorf("netif: interface %q: %w", ifname, err)
	}
	return len(b) > 0 && b[0] != '0', nil
}
