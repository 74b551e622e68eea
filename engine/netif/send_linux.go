package netif

import (
	"fmt"
	"net/netip"
	"unsafe"

	"golang.org/x/sys/unix"
)

// WriteIPv4 sends a complete IPv4 packet to the destination in its header.
// Multicast goes out with MSG_DONTROUTE, as keepalived sends it; for
// unicast peers the caller sends one packet per peer (reference §2.1).
func (c *Conn) WriteIPv4(pkt []byte) error {
	if c.v6 {
		return ErrFamily
	}
	if len(pkt) < 20 || pkt[0]>>4 != 4 {
		return fmt.Errorf("netif: send on %q: not an IPv4 packet (%d bytes)", c.ifname, len(pkt))
	}
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.wclosed {
		return ErrClosed
	}
	c.wsa4.Addr = [4]byte(pkt[16:20])
	c.wflags = 0
	if pkt[16]&0xf0 == 0xe0 {
		c.wflags = unix.MSG_DONTROUTE
	}
	c.wpkt = pkt
	err := c.rc.Write(c.write4)
	c.wpkt = nil
	if err != nil {
		return ErrClosed
	}
	if c.werr != nil {
		return fmt.Errorf("netif: send to %s on %q: %w", netip.AddrFrom4(c.wsa4.Addr), c.ifname, c.werr)
	}
	return nil
}

func (c *Conn) send4(fd uintptr) bool {
	err := unix.Sendto(int(fd), c.wpkt, c.wflags, &c.wsa4)
	if err == unix.EAGAIN {
		return false
	}
	c.werr = err
	return true
}

// WriteIPv6 sends a VRRP message from src (invalid: the interface's
// link-local address, RFC 9568 §5.1.2.1) to dst. The kernel adds the IPv6
// header and the checksum. hopLimit 0 leaves the socket's: 255 for
// multicast, the kernel default for unicast (keepalived sets a unicast hop
// limit only when unicast_ttl is configured, reference §2.1).
func (c *Conn) WriteIPv6(msg []byte, src, dst netip.Addr, hopLimit int) error {
	src, err := c.checkIPv6(msg, src, dst)
	if err != nil {
		return err
	}
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.wclosed {
		return ErrClosed
	}
	c.wname = unix.RawSockaddrInet6{Family: unix.AF_INET6, Addr: dst.As16()}
	if dst.IsLinkLocalUnicast() || dst.IsLinkLocalMulticast() || dst.IsInterfaceLocalMulticast() {
		c.wname.Scope_id = uint32(c.ifindex)
	}
	oob := unsafe.Slice((*byte)(unsafe.Pointer(&c.woob[0])), len(c.woob)*8)
	n := control6(oob, src, c.ifindex, hopLimit)
	c.wiov.Base = &msg[0]
	c.wiov.SetLen(len(msg))
	c.wmsg = unix.Msghdr{
		Name:    (*byte)(unsafe.Pointer(&c.wname)),
		Namelen: unix.SizeofSockaddrInet6,
		Iov:     &c.wiov,
		Iovlen:  1,
		Control: &oob[0],
	}
	c.wmsg.SetControllen(n)
	err = c.rc.Write(c.write6)
	c.wiov.Base = nil
	if err != nil {
		return ErrClosed
	}
	if c.werr != nil {
		return fmt.Errorf("netif: send from %s to %s on %q: %w", src, dst, c.ifname, c.werr)
	}
	return nil
}

func (c *Conn) send6(fd uintptr) bool {
	_, _, e := unix.Syscall(unix.SYS_SENDMSG, fd, uintptr(unsafe.Pointer(&c.wmsg)), 0)
	if e == unix.EAGAIN {
		return false
	}
	c.werr = nil
	if e != 0 {
		c.werr = e
	}
	return true
}

// checkIPv6 is what WriteIPv6 and Batch.AddIPv6 check before they send: the
// socket's family, a message, and the source, the link-local address when
// src is invalid.
func (c *Conn) checkIPv6(msg []byte, src, dst netip.Addr) (netip.Addr, error) {
	if !c.v6 || !dst.Is6() || dst.Is4In6() {
		return src, ErrFamily
	}
	if len(msg) == 0 {
		return src, fmt.Errorf("netif: send on %q: empty message", c.ifname)
	}
	if src.IsValid() {
		return src, nil
	}
	return c.LinkLocal()
}
