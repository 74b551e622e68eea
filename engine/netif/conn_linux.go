package netif

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Config tunes a VRRP socket. The zero value is keepalived's default.
type Config struct {
	// Group is the multicast group to join: 224.0.0.18 or ff02::12 when
	// invalid (keepalived's vrrp_mcast_group4 / vrrp_mcast_group6).
	Group netip.Addr
	// NoJoin leaves the group unjoined, for an interface whose instances
	// all use unicast peers.
	NoJoin bool
	// ReadBuffer sets SO_RCVBUF (keepalived's kernel_rx_buf_size); 0 keeps
	// the kernel's default.
	ReadBuffer int
	// Unknown, if set, is called for packets whose VRID has no handler,
	// after the Unknown counter is incremented (drop reason vrid_unknown).
	Unknown Handler
	// AH opens an IPv4 socket for IP protocol 51 rather than 112: it
	// receives keepalived's auth_type AH adverts (keepalived opens its
	// receive socket with IPPROTO_AH for such an instance), Packet.AH
	// holding the AH header and Packet.VRRP the message behind it. Writes
	// are the same (the caller's header names the protocol).
	AH bool
}

// maxPacket is larger than any VRRP packet: 255 IPv6 addresses and the
// 2.4.0 HMAC trailer fit in well under 9000 bytes (a jumbo frame).
const maxPacket = 9216

// rxBatch is how many datagrams one recvmmsg(2) takes. 250 instances at
// 0.05 s bring 5000 adverts a second to one socket, and a wake-up of the
// reader often finds several queued; a short batch also tells the reader
// the queue is empty, which saves the recvmsg that would return EAGAIN.
const rxBatch = 8

// mmsghdr is struct mmsghdr of recvmmsg(2): x/sys/unix has the syscall
// number but not the type. Go pads it to Msghdr's alignment as C does.
type mmsghdr struct {
	hdr unix.Msghdr
	n   uint32
}

// Conn is a raw VRRP socket bound to one interface for one address family
// (keepalived opens the same pair, reference §2.1). One goroutine reads it
// (Run) and hands each packet to the handler of its VRID; any number of
// goroutines may write to it.
type Conn struct {
	ifname    string
	ifindex   int
	v6        bool
	ah        bool
	group     netip.Addr
	linkLocal atomic.Pointer[netip.Addr]
	// in is the namespace the socket was opened in, for later lookups.
	in inNS

	f  *os.File
	rc syscall.RawConn

	handlers [256]atomic.Pointer[handlerRef]
	unknownH Handler
	received atomic.Uint64
	unknown  atomic.Uint64
	short    atomic.Uint64

	// Read state: only the Run goroutine touches it. It lives here, with
	// readFn bound once, so that reading a packet allocates nothing.
	running atomic.Bool
	readFn  func(fd uintptr) bool
	buf     []byte              // rxBatch slots of maxPacket bytes
	roob    [rxBatch][32]uint64 // control messages, 8-byte aligned as cmsghdr requires
	rname   [rxBatch]unix.RawSockaddrInet6
	riov    [rxBatch]unix.Iovec
	rmsgs   [rxBatch]mmsghdr
	rerr    syscall.Errno
	pkt     Packet

	// Write state, under wmu.
	wmu     sync.Mutex
	write4  func(fd uintptr) bool
	write6  func(fd uintptr) bool
	wpkt    []byte
	wflags  int
	wsa4    unix.SockaddrInet4
	wname   unix.RawSockaddrInet6
	wiov    unix.Iovec
	wmsg    unix.Msghdr
	woob    [8]uint64
	werr    error
	wclosed bool
	closed  atomic.Bool
}

type handlerRef struct{ h Handler }

var (
	_ Sender    = (*Conn)(nil)
	_ Registrar = (*Conn)(nil)
)

// ListenIPv4 opens the IPv4 VRRP socket of an interface. The socket takes
// complete IP packets to send (IP_HDRINCL: keepalived builds the header
// itself, TTL 255 and TOS 0xc0, reference §2.1) and delivers them with the
// IP header. Multicast loopback is off and only the joined group is
// received (IP_MULTICAST_ALL=0), as in keepalived.
func ListenIPv4(ifname string, cfg Config) (*Conn, error) {
	return listen(ifname, false, cfg)
}

// ListenIPv6 opens the IPv6 VRRP socket of an interface. The kernel fills
// in the checksum (IPV6_CHECKSUM at offset 6) over the IPv6 pseudo-header
// (RFC 9568 §5.2.8); multicast leaves with hop limit 255 and traffic class
// 0xc0; received packets carry their hop limit, traffic class and
// destination.
func ListenIPv6(ifname string, cfg Config) (*Conn, error) {
	return listen(ifname, true, cfg)
}

// listenIn opens the socket (and looks the interface up) in a namespace:
// the socket stays in it for its life.
func listenIn(in inNS, ifname string, v6 bool, cfg Config) (c *Conn, err error) {
	err = in.do(func() error {
		c, err = listen(ifname, v6, cfg)
		return err
	})
	if c != nil {
		c.in = in
	}
	return c, err
}

func listen(ifname string, v6 bool, cfg Config) (*Conn, error) {
	if cfg.AH && v6 {
		// keepalived's AH is IPv4 only (RFC 2402 in front of a VRRPv2 advert).
		return nil, fmt.Errorf("netif: AH socket on %q: %w", ifname, ErrFamily)
	}
	ifi, err := net.InterfaceByName(ifname)
	if err != nil {
		return nil, fmt.Errorf("netif: interface %q: %w", ifname, err)
	}
	c := &Conn{ifname: ifname, ifindex: ifi.Index, v6: v6, ah: cfg.AH, group: cfg.Group, unknownH: cfg.Unknown,
		buf: make([]byte, rxBatch*maxPacket)}
	proto := ProtocolVRRP
	if cfg.AH {
		proto = ProtocolAH
	}
	family := unix.AF_INET
	if v6 {
		family = unix.AF_INET6
		if !c.group.IsValid() {
			c.group = GroupIPv6
		}
		if !c.group.Is6() || c.group.Is4In6() {
			return nil, fmt.Errorf("netif: group %s on %q: %w", c.group, ifname, ErrFamily)
		}
	} else {
		if !c.group.IsValid() {
			c.group = GroupIPv4
		}
		if !c.group.Is4() {
			return nil, fmt.Errorf("netif: group %s on %q: %w", c.group, ifname, ErrFamily)
		}
	}
	fd, err := unix.Socket(family, unix.SOCK_RAW|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, proto)
	if err != nil {
		return nil, fmt.Errorf("netif: raw socket on %q: %w", ifname, err)
	}
	if err := c.setup(fd, cfg); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("netif: socket on %q: %w", ifname, err)
	}
	name := "vrrp4/" + ifname
	if cfg.AH {
		name = "vrrp4ah/" + ifname
	}
	if v6 {
		name = "vrrp6/" + ifname
		if ll, ok := linkLocal(ifi); ok {
			c.linkLocal.Store(&ll)
		}
	}
	c.f = os.NewFile(uintptr(fd), name)
	if c.rc, err = c.f.SyscallConn(); err != nil {
		c.f.Close()
		return nil, fmt.Errorf("netif: socket on %q: %w", ifname, err)
	}
	c.readFn = c.recv
	c.write4 = c.send4
	c.write6 = c.send6
	for k := range c.rmsgs {
		c.riov[k].Base = &c.buf[k*maxPacket]
		c.riov[k].SetLen(maxPacket)
		h := &c.rmsgs[k].hdr
		h.Name = (*byte)(unsafe.Pointer(&c.rname[k]))
		h.Iov = &c.riov[k]
		h.Iovlen = 1
		h.Control = (*byte)(unsafe.Pointer(&c.roob[k][0]))
	}
	return c, nil
}

func (c *Conn) setup(fd int, cfg Config) error {
	type opt struct {
		name       string
		level, opt int
		val        int
	}
	// SO_BINDTODEVICE: one socket per interface, as keepalived does, so a
	// packet's interface is the socket's.
	if err := unix.SetsockoptString(fd, unix.SOL_SOCKET, unix.SO_BINDTODEVICE, c.ifname); err != nil {
		return fmt.Errorf("SO_BINDTODEVICE: %w", err)
	}
	var opts []opt
	if c.v6 {
		opts = []opt{
			{"IPV6_CHECKSUM", unix.IPPROTO_IPV6, unix.IPV6_CHECKSUM, 6},
			{"IPV6_MULTICAST_HOPS", unix.IPPROTO_IPV6, unix.IPV6_MULTICAST_HOPS, 255},
			{"IPV6_MULTICAST_LOOP", unix.IPPROTO_IPV6, unix.IPV6_MULTICAST_LOOP, 0},
			{"IPV6_MULTICAST_ALL", unix.IPPROTO_IPV6, unix.IPV6_MULTICAST_ALL, 0},
			{"IPV6_MULTICAST_IF", unix.IPPROTO_IPV6, unix.IPV6_MULTICAST_IF, c.ifindex},
			{"IPV6_TCLASS", unix.IPPROTO_IPV6, unix.IPV6_TCLASS, 0xc0},
			{"IPV6_RECVHOPLIMIT", unix.IPPROTO_IPV6, unix.IPV6_RECVHOPLIMIT, 1},
			{"IPV6_RECVPKTINFO", unix.IPPROTO_IPV6, unix.IPV6_RECVPKTINFO, 1},
			{"IPV6_RECVTCLASS", unix.IPPROTO_IPV6, unix.IPV6_RECVTCLASS, 1},
		}
	} else {
		opts = []opt{
			{"IP_HDRINCL", unix.IPPROTO_IP, unix.IP_HDRINCL, 1},
			{"IP_MULTICAST_LOOP", unix.IPPROTO_IP, unix.IP_MULTICAST_LOOP, 0},
			{"IP_MULTICAST_ALL", unix.IPPROTO_IP, unix.IP_MULTICAST_ALL, 0},
		}
	}
	if cfg.ReadBuffer > 0 {
		opts = append(opts, opt{"SO_RCVBUF", unix.SOL_SOCKET, unix.SO_RCVBUF, cfg.ReadBuffer})
	}
	for _, o := range opts {
		if err := unix.SetsockoptInt(fd, o.level, o.opt, o.val); err != nil {
			return fmt.Errorf("%s: %w", o.name, err)
		}
	}
	if c.v6 {
		if cfg.NoJoin {
			return nil
		}
		mreq := &unix.IPv6Mreq{Multiaddr: c.group.As16(), Interface: uint32(c.ifindex)}
		if err := unix.SetsockoptIPv6Mreq(fd, unix.IPPROTO_IPV6, unix.IPV6_JOIN_GROUP, mreq); err != nil {
			return fmt.Errorf("join %s: %w", c.group, err)
		}
		return nil
	}
	if err := unix.SetsockoptIPMreqn(fd, unix.IPPROTO_IP, unix.IP_MULTICAST_IF, &unix.IPMreqn{Ifindex: int32(c.ifindex)}); err != nil {
		return fmt.Errorf("IP_MULTICAST_IF: %w", err)
	}
	if cfg.NoJoin {
		return nil
	}
	mreq := &unix.IPMreqn{Multiaddr: c.group.As4(), Ifindex: int32(c.ifindex)}
	if err := unix.SetsockoptIPMreqn(fd, unix.IPPROTO_IP, unix.IP_ADD_MEMBERSHIP, mreq); err != nil {
		return fmt.Errorf("join %s: %w", c.group, err)
	}
	return nil
}

// linkLocal returns the first IPv6 link-local address of an interface.
func linkLocal(ifi *net.Interface) (netip.Addr, bool) {
	addrs, err := ifi.Addrs()
	if err != nil {
		return netip.Addr{}, false
	}
	for _, a := range addrs {
		n, ok := a.(*net.IPNet)
		if !ok {
			continue
		}
		ip, ok := netip.AddrFromSlice(n.IP)
		if ok && ip.Is6() && !ip.Is4In6() && ip.IsLinkLocalUnicast() {
			return ip, true
		}
	}
	return netip.Addr{}, false
}

// Interface is the name of the socket's interface.
func (c *Conn) Interface() string { return c.ifname }

// Ifindex is the index of the socket's interface.
func (c *Conn) Ifindex() int { return c.ifindex }

// Group is the multicast group the socket joined (or would have).
func (c *Conn) Group() netip.Addr { return c.group }

// LinkLocal is the interface's link-local address that IPv6 adverts leave
// from, looked up again if it was missing when the socket was opened.
func (c *Conn) LinkLocal() (netip.Addr, error) {
	if p := c.linkLocal.Load(); p != nil {
		return *p, nil
	}
	var ifi *net.Interface
	err := c.in.do(func() (err error) {
		ifi, err = net.InterfaceByIndex(c.ifindex)
		return err
	})
	if err != nil {
		return netip.Addr{}, fmt.Errorf("netif: interface %q: %w", c.ifname, err)
	}
	ll, ok := linkLocal(ifi)
	if !ok {
		return netip.Addr{}, fmt.Errorf("netif: interface %q: %w", c.ifname, ErrNoLinkLocal)
	}
	c.linkLocal.Store(&ll)
	return ll, nil
}

// Handle registers h for vrid, replacing any earlier handler; nil removes
// it. It is safe to call while Run is reading.
func (c *Conn) Handle(vrid uint8, h Handler) {
	if h == nil {
		c.handlers[vrid].Store(nil)
		return
	}
	c.handlers[vrid].Store(&handlerRef{h: h})
}

// Stats returns the read loop's counters.
func (c *Conn) Stats() Stats {
	return Stats{Received: c.received.Load(), Unknown: c.unknown.Load(), Short: c.short.Load()}
}

// Close closes the socket; Run returns ErrClosed.
func (c *Conn) Close() error {
	c.closed.Store(true)
	c.wmu.Lock()
	c.wclosed = true
	c.wmu.Unlock()
	return c.f.Close()
}

// Run reads packets and hands each to its VRID's handler until ctx is done
// (it returns ctx.Err()) or the socket is closed (ErrClosed). It reuses its
// buffers: nothing is allocated per packet. Only one Run may be active.
func (c *Conn) Run(ctx context.Context) error {
	if !c.running.CompareAndSwap(false, true) {
		return errors.New("netif: Run called twice")
	}
	defer c.running.Store(false)
	if err := c.f.SetReadDeadline(time.Time{}); err != nil {
		return ErrClosed
	}
	stop := context.AfterFunc(ctx, func() { _ = c.f.SetReadDeadline(time.Unix(1, 0)) })
	defer stop()
	for {
		c.rerr = 0
		err := c.rc.Read(c.readFn)
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			if c.closed.Load() {
				return ErrClosed
			}
			return fmt.Errorf("netif: read on %q: %w", c.ifname, err)
		}
		switch c.rerr {
		case unix.EBADF, unix.ENOTSOCK:
			return ErrClosed
		}
		// EINTR, ENOBUFS and the like are transient: keep reading.
	}
}

// recv is called by the runtime poller when the socket may be readable.
// It takes the queued datagrams rxBatch at a time with recvmmsg(2) and
// hands each to its handler right here. A batch that comes back short
// means the queue is empty (recvmmsg with MSG_DONTWAIT stops at EAGAIN),
// so recv reports false, to wait for readiness, without the extra
// syscall that would only return EAGAIN: the poller is edge-triggered,
// and a datagram that arrives after the batch marks the socket ready
// again within this same RawConn.Read, so the wait returns at once. recv
// reports true only on an error, left in rerr for Run.
func (c *Conn) recv(fd uintptr) bool {
	for {
		for k := range c.rmsgs {
			h := &c.rmsgs[k].hdr
			h.Namelen = unix.SizeofSockaddrInet6
			h.SetControllen(len(c.roob[k]) * 8)
			h.Flags = 0
			c.rmsgs[k].n = 0
		}
		n, _, e := unix.Syscall6(unix.SYS_RECVMMSG, fd, uintptr(unsafe.Pointer(&c.rmsgs[0])), rxBatch,
			unix.MSG_DONTWAIT, 0, 0)
		if e == unix.EAGAIN {
			return false
		}
		if e != 0 {
			c.rerr = e
			return true
		}
		for k := range int(n) {
			c.dispatch(k)
		}
		if int(n) < rxBatch {
			return false
		}
	}
}

func (c *Conn) dispatch(k int) {
	p := &c.pkt
	b := c.buf[k*maxPacket : k*maxPacket+int(c.rmsgs[k].n)]
	if c.v6 {
		if !c.parse6(p, b, k) {
			c.short.Add(1)
			return
		}
	} else if !parse4(p, b, c.ah) {
		c.short.Add(1)
		return
	}
	p.Ifindex = c.ifindex
	if len(p.VRRP) < 2 {
		c.short.Add(1)
		return
	}
	ref := c.handlers[p.VRRP[1]].Load()
	if ref == nil {
		c.unknown.Add(1)
		if c.unknownH != nil {
			c.unknownH.HandleVRRP(p)
		}
		return
	}
	c.received.Add(1)
	ref.h.HandleVRRP(p)
}

// parse4 reads the IPv4 header a raw socket hands over with the payload,
// and on an AH socket the AH header after it.
func parse4(p *Packet, b []byte, ah bool) bool {
	if len(b) < 20 || b[0]>>4 != 4 {
		return false
	}
	ihl := int(b[0]&0x0f) * 4
	if ihl < 20 || len(b) < ihl {
		return false
	}
	p.TOS = b[1]
	p.TTL = b[8]
	p.Src = netip.AddrFrom4([4]byte(b[12:16]))
	p.Dst = netip.AddrFrom4([4]byte(b[16:20]))
	p.IPHeader = b[:ihl]
	p.VRRP = b[ihl:]
	p.AH = nil
	if ah {
		// A truncated AH header leaves no message to read a VRID from:
		// the read loop counts it Short.
		n := min(ahLen, len(p.VRRP))
		p.AH, p.VRRP = p.VRRP[:n:n], p.VRRP[n:]
	}
	return true
}

// parse6 reads the source from the socket address and the hop limit,
// traffic class and destination from the control messages.
func (c *Conn) parse6(p *Packet, b []byte, k int) bool {
	if c.rname[k].Family != unix.AF_INET6 {
		return false
	}
	p.Src = netip.AddrFrom16(c.rname[k].Addr)
	p.Dst = netip.Addr{}
	p.TTL, p.TOS = 0, 0
	p.IPHeader = nil
	p.VRRP = b
	oob := unsafe.Slice((*byte)(unsafe.Pointer(&c.roob[k][0])), len(c.roob[k])*8)
	parseControl(p, oob[:min(int(c.rmsgs[k].hdr.Controllen), len(oob))])
	return true
}

// parseControl reads the IPv6 control messages: hop limit, traffic class
// and destination (from IPV6_PKTINFO).
func parseControl(p *Packet, oob []byte) {
	hdr := unix.CmsgLen(0)
	for len(oob) >= hdr {
		h := (*unix.Cmsghdr)(unsafe.Pointer(&oob[0]))
		l := int(h.Len)
		if h.Len > uint64(len(oob)) || l < hdr {
			return
		}
		data := oob[hdr:l]
		if h.Level == unix.IPPROTO_IPV6 {
			switch h.Type {
			case unix.IPV6_HOPLIMIT:
				if len(data) >= 4 {
					p.TTL = uint8(binary.NativeEndian.Uint32(data))
				}
			case unix.IPV6_TCLASS:
				if len(data) >= 4 {
					p.TOS = uint8(binary.NativeEndian.Uint32(data))
				}
			case unix.IPV6_PKTINFO:
				if len(data) >= unix.SizeofInet6Pktinfo {
					p.Dst = netip.AddrFrom16([16]byte(data[:16]))
				}
			}
		}
		next := unix.CmsgSpace(l - hdr)
		if next > len(oob) {
			return
		}
		oob = oob[next:]
	}
}
