package netif

import (
	"fmt"
	"net/netip"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Batch collects adverts for one socket and sends them with sendmmsg(2):
// one system call for the batch where WriteIPv4 and WriteIPv6 make one per
// advert. engine/vrrp/router sends every master advert due in one wake-up
// of a socket's scheduler this way (250 instances at 0.05 s are 5000
// sends a second, and the master's profile was mostly the send call).
//
// A Batch is used by one goroutine at a time. It copies what it is given,
// so the caller may reuse its buffer at once; after the first few batches
// it allocates nothing.
type Batch struct {
	c     *Conn
	buf   []byte // the packets, back to back
	ends  []int  // where each packet ends in buf
	ctl   []int  // each IPv6 packet's control length
	flags []int
	sa4   []unix.RawSockaddrInet4
	sa6   []unix.RawSockaddrInet6
	oob   [][8]uint64
	iov   []unix.Iovec
	msgs  []mmsghdr
	errs  []error
	errno []unix.Errno

	// The run Flush is sending: msgs[next:end], all with flags runFlags.
	next, end int
	runFlags  int
	sendFn    func(fd uintptr) bool
}

// NewBatch returns an empty batch for the socket.
func (c *Conn) NewBatch() *Batch {
	b := &Batch{c: c}
	b.sendFn = b.sendRun
	return b
}

// Len is the number of packets waiting to be sent.
func (b *Batch) Len() int { return len(b.ends) }

// Reset forgets the packets added (Flush does this itself).
func (b *Batch) Reset() {
	b.buf, b.ends, b.ctl, b.flags = b.buf[:0], b.ends[:0], b.ctl[:0], b.flags[:0]
	b.sa4, b.sa6, b.oob = b.sa4[:0], b.sa6[:0], b.oob[:0]
}

// AddIPv4 queues a complete IPv4 packet, as WriteIPv4 would send it:
// multicast with MSG_DONTROUTE, as keepalived sends it.
func (b *Batch) AddIPv4(pkt []byte) error {
	c := b.c
	if c.v6 {
		return ErrFamily
	}
	if len(pkt) < 20 || pkt[0]>>4 != 4 {
		return fmt.Errorf("netif: send on %q: not an IPv4 packet (%d bytes)", c.ifname, len(pkt))
	}
	flags := 0
	if pkt[16]&0xf0 == 0xe0 {
		flags = unix.MSG_DONTROUTE
	}
	b.sa4 = append(b.sa4, unix.RawSockaddrInet4{Family: unix.AF_INET, Addr: [4]byte(pkt[16:20])})
	b.add(pkt, flags)
	return nil
}

// AddIPv6 queues a VRRP message from src (invalid: the link-local address)
// to dst, as WriteIPv6 would send it.
func (b *Batch) AddIPv6(msg []byte, src, dst netip.Addr, hopLimit int) error {
	c := b.c
	src, err := c.checkIPv6(msg, src, dst)
	if err != nil {
		return err
	}
	name := unix.RawSockaddrInet6{Family: unix.AF_INET6, Addr: dst.As16()}
	if dst.IsLinkLocalUnicast() || dst.IsLinkLocalMulticast() || dst.IsInterfaceLocalMulticast() {
		name.Scope_id = uint32(c.ifindex)
	}
	b.sa6 = append(b.sa6, name)
	b.oob = append(b.oob, [8]uint64{})
	b.add(msg, 0)
	k := len(b.oob) - 1
	oob := unsafe.Slice((*byte)(unsafe.Pointer(&b.oob[k][0])), len(b.oob[k])*8)
	b.ctl = append(b.ctl, control6(oob, src, c.ifindex, hopLimit))
	return nil
}

func (b *Batch) add(pkt []byte, flags int) {
	b.buf = append(b.buf, pkt...)
	b.ends = append(b.ends, len(b.buf))
	b.flags = append(b.flags, flags)
}

// Err is packet k's outcome in the last Flush: nil if the kernel took it.
func (b *Batch) Err(k int) error {
	if k < 0 || k >= len(b.errs) {
		return nil
	}
	return b.errs[k]
}

// Flush sends the queued packets in order, with as few sendmmsg(2) calls
// as their flags allow (sendmmsg takes one set of flags; in practice all
// of an interface's adverts are multicast, or all unicast). It returns how
// many packets were queued; Err(k) tells each one's outcome. The returned
// error is ErrClosed once the socket is closed (every packet then failed);
// the batch is empty afterwards.
func (b *Batch) Flush() (int, error) {
	n := len(b.ends)
	b.errs = b.errs[:0]
	if n == 0 {
		return 0, nil
	}
	c := b.c
	if cap(b.msgs) < n {
		b.iov = make([]unix.Iovec, n, 2*n)
		b.msgs = make([]mmsghdr, n, 2*n)
		b.errno = make([]unix.Errno, n, 2*n)
	}
	b.iov, b.msgs, b.errno = b.iov[:n], b.msgs[:n], b.errno[:n]
	clear(b.errno)
	start := 0
	for k := range n {
		end := b.ends[k]
		b.iov[k].Base = &b.buf[start]
		b.iov[k].SetLen(end - start)
		h := &b.msgs[k].hdr
		*h = unix.Msghdr{Iov: &b.iov[k], Iovlen: 1}
		if c.v6 {
			h.Name = (*byte)(unsafe.Pointer(&b.sa6[k]))
			h.Namelen = unix.SizeofSockaddrInet6
			h.Control = (*byte)(unsafe.Pointer(&b.oob[k][0]))
			h.SetControllen(b.ctl[k])
		} else {
			h.Name = (*byte)(unsafe.Pointer(&b.sa4[k]))
			h.Namelen = unix.SizeofSockaddrInet4
		}
		b.msgs[k].n = 0
		start = end
	}
	var werr error
	c.wmu.Lock()
	if c.wclosed {
		werr = ErrClosed
	}
	for s := 0; s < n && werr == nil; {
		e := s
		for e < n && b.flags[e] == b.flags[s] {
			e++
		}
		b.next, b.end, b.runFlags = s, e, b.flags[s]
		if err := c.rc.Write(b.sendFn); err != nil {
			werr = ErrClosed
		}
		s = e
	}
	c.wmu.Unlock()
	for k := range n {
		var err error
		switch {
		case werr != nil:
			err = werr
		case b.errno[k] != 0:
			var dst netip.Addr
			if c.v6 {
				dst = netip.AddrFrom16(b.sa6[k].Addr)
			} else {
				dst = netip.AddrFrom4(b.sa4[k].Addr)
			}
			err = fmt.Errorf("netif: send to %s on %q: %w", dst, c.ifname, b.errno[k])
		}
		b.errs = append(b.errs, err)
	}
	// Drop the iovecs' pointers into buf before the next Add may move it.
	clear(b.iov)
	b.Reset()
	return n, werr
}

// sendRun sends msgs[next:end] with sendmmsg(2). A message the kernel
// refuses comes back as the error of a call that starts with it (sendmmsg
// reports an error only when no message was sent); it is recorded and
// the run goes on after it.
func (b *Batch) sendRun(fd uintptr) bool {
	for b.next < b.end {
		n, _, e := unix.Syscall6(unix.SYS_SENDMMSG, fd, uintptr(unsafe.Pointer(&b.msgs[b.next])),
			uintptr(b.end-b.next), uintptr(b.runFlags), 0, 0)
		switch {
		case e == unix.EAGAIN:
			return false
		case e != 0:
			b.errno[b.next] = e
			b.next++
		default:
			b.next += int(n)
		}
	}
	return true
}

// control6 writes the control messages of an IPv6 advert into oob:
// IPV6_PKTINFO picks the source address and the interface, and
// IPV6_HOPLIMIT a unicast hop limit when one is set. It returns their
// length.
func control6(oob []byte, src netip.Addr, ifindex, hopLimit int) int {
	clear(oob)
	h := (*unix.Cmsghdr)(unsafe.Pointer(&oob[0]))
	h.Level, h.Type = unix.IPPROTO_IPV6, unix.IPV6_PKTINFO
	h.SetLen(unix.CmsgLen(unix.SizeofInet6Pktinfo))
	info := (*unix.Inet6Pktinfo)(unsafe.Pointer(&oob[unix.CmsgLen(0)]))
	info.Addr = src.As16()
	info.Ifindex = uint32(ifindex)
	n := unix.CmsgSpace(unix.SizeofInet6Pktinfo)
	if hopLimit > 0 {
		h := (*unix.Cmsghdr)(unsafe.Pointer(&oob[n]))
		h.Level, h.Type = unix.IPPROTO_IPV6, unix.IPV6_HOPLIMIT
		h.SetLen(unix.CmsgLen(4))
		*(*int32)(unsafe.Pointer(&oob[n+unix.CmsgLen(0)])) = int32(min(hopLimit, 255))
		n += unix.CmsgSpace(4)
	}
	return n
}
