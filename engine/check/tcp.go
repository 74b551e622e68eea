package check

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"os"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// ProbeTCP is TCP_CHECK: the real server is up when a TCP connection to
// t.Addr completes within connect_timeout (keepalived check_tcp.c: connect,
// then close).
//
// It is the probe 10,000 real servers run every second, so it skips the
// net package's dialer (address parsing, keep-alive and no-delay options,
// getsockname/getpeername, a context timer) and the runtime's poller: a
// non-blocking socket, one connect, one registration with the epoll
// instance all checks share (connPoll), a wait bounded by connect_timeout,
// TCP_INFO, close.
func ProbeTCP(ctx context.Context, t *Target) Result {
	if err := connectTCP(ctx, t, deadline(ctx, t)); err != nil {
		return failErr(ctx, err, ReasonConnect)
	}
	return ok
}

// resetOnClose closes a TCP_CHECK's connection with a reset (SO_LINGER
// 0) where keepalived 2.2.7 sends a FIN: its layer4.c socket_bind_connect
// sets SO_LINGER {1, 5} (checked in the installed binary), so close sends
// a FIN and waits up to 5 s for it to be acknowledged, and the connection
// then sits in TIME_WAIT on the checker for 60 s. At 10,000 checks a
// second that is 600,000 TIME_WAIT sockets, far above the usual
// tcp_max_tw_buckets (the kernel then drops them early and logs "time wait
// bucket table overflow"). A check is 4 packets with a reset (SYN, SYN-ACK,
// ACK, RST) against 6 or 7 with a FIN, and leaves nothing behind; in
// BenchmarkTCPCheck1k the checker side's kernel receive work halves. The
// real server's accept still returns the connection, since the handshake
// completed; its first read or write then fails with ECONNRESET instead of
// seeing EOF. A variable so the benchmark can measure both.
var resetOnClose = true

// connectTCP connects to t.Addr and closes the connection.
func connectTCP(ctx context.Context, t *Target, dl time.Time) error {
	sa, fam, err := sockaddr(t.Addr)
	if err != nil {
		return err
	}
	fd, err := unix.Socket(fam, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return os.NewSyscallError("socket", err)
	}
	if err := prepare(fd, fam, t); err != nil {
		unix.Close(fd)
		return err
	}
	switch err := unix.Connect(fd, sa); err {
	case nil:
		unix.Close(fd)
		return nil
	case unix.EINPROGRESS, unix.EINTR:
	default:
		unix.Close(fd)
		return os.NewSyscallError("connect", err)
	}
	// No look at the socket before the wait: across a real network the
	// connect is always still in progress here, and a socket that is
	// already connected (loopback) is reported by the epoll at once.
	p, err := theConnPoll()
	if err == nil {
		err = p.await(ctx, fd, dl)
	}
	unix.Close(fd)
	return err
}

// prepare sets up a new socket of family fam for a probe of t: bind_if
// and fwmark, the reset close (resetOnClose), bindto and bind_port.
func prepare(fd, fam int, t *Target) error {
	if err := sockopts(fd, t); err != nil {
		return err
	}
	if resetOnClose {
		if err := unix.SetsockoptLinger(fd, unix.SOL_SOCKET, unix.SO_LINGER, &unix.Linger{Onoff: 1}); err != nil {
			return os.NewSyscallError("setsockopt", err)
		}
	}
	if t.Bind.Addr().IsValid() || t.Bind.Port() != 0 {
		b := t.Bind
		if !b.Addr().IsValid() {
			b = netip.AddrPortFrom(netip.IPv6Unspecified(), b.Port())
			if fam == unix.AF_INET {
				b = netip.AddrPortFrom(netip.IPv4Unspecified(), b.Port())
			}
		}
		bsa, _, err := sockaddr(b)
		if err == nil {
			err = unix.Bind(fd, bsa)
		}
		if err != nil {
			return os.NewSyscallError("bind", err)
		}
	}
	return nil
}

// connected reports whether the non-blocking connect on fd has finished,
// and its error if it failed. One TCP_INFO read tells the state, so the
// common case costs a single syscall.
func connected(fd int) (bool, error) {
	info, err := unix.GetsockoptTCPInfo(fd, unix.IPPROTO_TCP, unix.TCP_INFO)
	if err != nil {
		return true, os.NewSyscallError("getsockopt", err)
	}
	switch info.State {
	case tcpSynSent:
		return false, nil
	case tcpClose: // the connect failed: SO_ERROR says why
		v, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_ERROR)
		if err != nil {
			return true, os.NewSyscallError("getsockopt", err)
		}
		if v == 0 {
			v = int(unix.ECONNREFUSED)
		}
		return true, os.NewSyscallError("connect", syscall.Errno(v))
	}
	// ESTABLISHED, or already CLOSE_WAIT if the server closed at once:
	// the handshake completed either way.
	return true, nil
}

// TCP states (include/net/tcp_states.h) as TCP_INFO reports them.
const (
	tcpSynSent = 2
	tcpClose   = 7
)

// sockaddr converts ap for the socket calls.
func sockaddr(ap netip.AddrPort) (unix.Sockaddr, int, error) {
	a := ap.Addr()
	switch {
	case a.Is4() || a.Is4In6():
		return &unix.SockaddrInet4{Addr: a.Unmap().As4(), Port: int(ap.Port())}, unix.AF_INET, nil
	case a.Is6():
		sa := &unix.SockaddrInet6{Addr: a.As16(), Port: int(ap.Port())}
		if z := a.Zone(); z != "" {
			ifi, err := net.InterfaceByName(z)
			if err != nil {
				return nil, 0, err
			}
			sa.ZoneId = uint32(ifi.Index)
		}
		return sa, unix.AF_INET6, nil
	}
	return nil, 0, fmt.Errorf("no address to connect to: %v", ap)
}

// dial connects to t.Addr over network ("tcp" or "udp") with the checker's
// connection options: bindto/bind_port, bind_if and fwmark.
func dial(ctx context.Context, network string, t *Target) (net.Conn, error) {
	d := dialer(network, t)
	return d.DialContext(ctx, network, t.Addr.String())
}

// dialer is a net.Dialer for network ("tcp" or "udp") that applies t's
// connection options.
func dialer(network string, t *Target) *net.Dialer {
	d := &net.Dialer{}
	if t.Bind.Addr().IsValid() || t.Bind.Port() != 0 {
		var ip net.IP
		if a := t.Bind.Addr(); a.IsValid() {
			ip = a.AsSlice()
		}
		// The dialer asserts LocalAddr's concrete type against the network.
		if network == "udp" {
			d.LocalAddr = &net.UDPAddr{IP: ip, Port: int(t.Bind.Port())}
		} else {
			d.LocalAddr = &net.TCPAddr{IP: ip, Port: int(t.Bind.Port())}
		}
	}
	if t.BindIf != "" || t.FWMark != 0 {
		d.Control = func(_, _ string, rc syscall.RawConn) error {
			var serr error
			err := rc.Control(func(fd uintptr) { serr = sockopts(int(fd), t) })
			if err != nil {
				return err
			}
			return serr
		}
	}
	return d
}

// sockopts sets SO_BINDTODEVICE and SO_MARK on fd as t asks.
func sockopts(fd int, t *Target) error {
	if t.BindIf != "" {
		if err := unix.BindToDevice(fd, t.BindIf); err != nil {
			return err
		}
	}
	if t.FWMark != 0 {
		if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_MARK, int(t.FWMark)); err != nil {
			return err
		}
	}
	return nil
}
