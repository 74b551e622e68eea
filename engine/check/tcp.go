package check

import (
	"context"
	"net"
	"syscall"

	"golang.org/x/sys/unix"
)

// ProbeTCP is TCP_CHECK: the real server is up when a TCP connection to
// t.Addr completes within connect_timeout (keepalived check_tcp.c: connect,
// then close).
func ProbeTCP(ctx context.Context, t *Target) Result {
	ctx, cancel := context.WithDeadline(ctx, deadline(ctx, t))
	defer cancel()
	c, err := dial(ctx, "tcp", t)
	if err != nil {
		return failErr(ctx, err, ReasonConnect)
	}
	c.Close()
	return ok
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
