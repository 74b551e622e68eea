package check

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"sync/atomic"
	"time"

	"golang.org/x/net/icmp"
	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"
	"golang.org/x/sys/unix"
)

// ErrPingUnreachable is the error of an echo answered by ICMP destination
// unreachable.
var ErrPingUnreachable = errors.New("icmp destination unreachable")

// pingSeq numbers echo requests across probes so replies to an earlier,
// timed-out probe are not taken for this one's.
var pingSeq atomic.Uint32

// ProbePing is PING_CHECK: one ICMP (or ICMPv6) echo request to t.Addr's
// address; an echo reply carrying our identifier, sequence and token within
// connect_timeout is up (keepalived check_ping.c). Like keepalived it uses an
// unprivileged ICMP datagram socket when net.ipv4.ping_group_range allows;
// otherwise, as root, a raw socket (on which the kernel also delivers
// destination unreachable errors, counted as ReasonUnreachable). bindto,
// bind_if and fwmark apply as to the other checkers.
func ProbePing(ctx context.Context, t *Target) Result {
	dst := t.Addr.Addr().Unmap()
	if !dst.IsValid() {
		return fail(ReasonConfig, errors.New("PING_CHECK without an address"))
	}
	dl := deadline(ctx, t)
	dctx, cancel := context.WithDeadline(ctx, dl)
	defer cancel()

	v6 := dst.Is6()
	c, raw, err := listenICMP(v6, t)
	if err != nil {
		return fail(ReasonConnect, err)
	}
	defer c.Close()
	stop := context.AfterFunc(dctx, func() { c.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	c.SetDeadline(dl)

	id := int(rand.Uint32() & 0xffff)
	seq := int(pingSeq.Add(1) & 0xffff)
	token := make([]byte, 16)
	for i := range token {
		token[i] = byte(rand.Uint32())
	}
	var typ icmp.Type = ipv4.ICMPTypeEcho
	if v6 {
		typ = ipv6.ICMPTypeEchoRequest
	}
	wm := icmp.Message{Type: typ, Body: &icmp.Echo{ID: id, Seq: seq, Data: token}}
	wb, err := wm.Marshal(nil) // the kernel computes the ICMPv6 checksum
	if err != nil {
		return fail(ReasonConfig, err)
	}
	var to net.Addr = &net.UDPAddr{IP: dst.AsSlice(), Zone: dst.Zone()}
	if raw {
		to = &net.IPAddr{IP: dst.AsSlice(), Zone: dst.Zone()}
	}
	if _, err := c.WriteTo(wb, to); err != nil {
		return failErr(dctx, err, ReasonConnect)
	}
	// One packet at a time into one buffer (a longer one is truncated):
	// whatever arrives, and however much, the probe holds 1500 bytes and
	// the deadline ends the wait.
	rb := make([]byte, 1500)
	e := echo{v6: v6, raw: raw, id: id, seq: seq, token: token, dst: dst}
	for {
		n, from, err := c.ReadFrom(rb)
		if err != nil {
			return failErr(dctx, err, ReasonIO)
		}
		if r, done := e.reply(rb[:n], from); done {
			return r
		}
	}
}

// echo is what ProbePing sent, to judge what comes back.
type echo struct {
	v6, raw bool // ICMPv6; a raw socket (else a datagram one)
	id, seq int
	token   []byte
	dst     netip.Addr
}

// reply judges one ICMP message received from from: done is false when it
// is not the answer to e (ignored, the wait goes on). An echo reply from
// the target with our sequence, token and (raw socket) identifier is up;
// a destination unreachable quoting our request (raw sockets only: the
// kernel gives datagram sockets none) is down.
func (e *echo) reply(b []byte, from net.Addr) (r Result, done bool) {
	fromDst := sameIP(from, e.dst.AsSlice())
	if !fromDst && !e.raw {
		return Result{}, false
	}
	proto := 1 // IANA protocol number, for icmp.ParseMessage
	if e.v6 {
		proto = 58
	}
	m, err := icmp.ParseMessage(proto, b)
	if err != nil {
		return Result{}, false
	}
	switch body := m.Body.(type) {
	case *icmp.Echo:
		if m.Type != ipv4.ICMPTypeEchoReply && m.Type != ipv6.ICMPTypeEchoReply {
			return Result{}, false
		}
		// A datagram socket's kernel rewrites the ID to the socket's
		// port, so only a raw socket checks it.
		if !fromDst || body.Seq != e.seq || (e.raw && body.ID != e.id) || string(body.Data) != string(e.token) {
			return Result{}, false
		}
		return ok, true
	case *icmp.DstUnreach:
		if e.raw && quotesEcho(body.Data, e.v6, e.id, e.seq) {
			return fail(ReasonUnreachable, fmt.Errorf("%w from %v", ErrPingUnreachable, from)), true
		}
	}
	return Result{}, false
}

// listenICMP opens an ICMP datagram socket, or a raw one where the kernel
// refuses datagram sockets to this group (ping_group_range), with t's
// connection options (bind_if, fwmark, bindto).
func listenICMP(v6 bool, t *Target) (net.PacketConn, bool, error) {
	fam, proto := unix.AF_INET, unix.IPPROTO_ICMP
	if v6 {
		fam, proto = unix.AF_INET6, unix.IPPROTO_ICMPV6
	}
	raw := false
	fd, err := unix.Socket(fam, unix.SOCK_DGRAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, proto)
	if errors.Is(err, unix.EACCES) || errors.Is(err, unix.EPERM) || errors.Is(err, unix.EPROTONOSUPPORT) {
		raw = true
		fd, err = unix.Socket(fam, unix.SOCK_RAW|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, proto)
	}
	if err != nil {
		return nil, false, fmt.Errorf("icmp socket: %w", os.NewSyscallError("socket", err))
	}
	if err := sockopts(fd, t); err != nil {
		unix.Close(fd)
		return nil, false, err
	}
	if b := t.Bind.Addr(); b.IsValid() {
		sa, _, err := sockaddr(netip.AddrPortFrom(b, 0))
		if err == nil {
			err = unix.Bind(fd, sa)
		}
		if err != nil {
			unix.Close(fd)
			return nil, false, os.NewSyscallError("bind", err)
		}
	}
	f := os.NewFile(uintptr(fd), "icmp")
	defer f.Close() // FilePacketConn holds its own duplicate
	c, err := net.FilePacketConn(f)
	if err != nil {
		return nil, false, err
	}
	return c, raw, nil
}

func sameIP(a net.Addr, ip net.IP) bool {
	switch a := a.(type) {
	case *net.UDPAddr:
		return a.IP.Equal(ip)
	case *net.IPAddr:
		return a.IP.Equal(ip)
	}
	return false
}

// quotesEcho reports whether the datagram quoted in an ICMP error (its IP
// header, then at least 8 bytes of our ICMP header; RFC 792, RFC 4443 §3.1)
// is our echo request.
func quotesEcho(quoted []byte, v6 bool, id, seq int) bool {
	hl := 40
	if !v6 {
		if len(quoted) < 20 {
			return false
		}
		hl = int(quoted[0]&0x0f) * 4
	}
	if len(quoted) < hl+8 {
		return false
	}
	h := quoted[hl:]
	return int(h[4])<<8|int(h[5]) == id && int(h[6])<<8|int(h[7]) == seq
}
