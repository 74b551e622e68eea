package check

import (
	"context"
	"net"
	"net/netip"
	"os"
	"syscall"
	"testing"
	"time"

	"github.com/keepwatch/keepwatch/engine/config"
)

// requireRoot fails the test in CI, and skips it in -short runs elsewhere,
// when it cannot run for want of root.
func requireRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() == 0 {
		return
	}
	if os.Getenv("CI") == "true" || !testing.Short() {
		t.Fatal("this test needs root")
	}
	t.Skip("needs root")
}

// probe runs p on t with a fresh context and checks the verdict.
func probe(tb testing.TB, p Prober, t *Target, wantOK bool, wantReason string) Result {
	tb.Helper()
	if err := t.Compile(); err != nil {
		tb.Fatalf("Compile: %v", err)
	}
	start := time.Now()
	r := p(context.Background(), t)
	if r.OK != wantOK || string(r.Reason) != wantReason {
		tb.Fatalf("probe %s %v = ok %v reason %q (err %v), want ok %v reason %q",
			t.Type, t.Addr, r.OK, r.Reason, r.Err, wantOK, wantReason)
	}
	if r.OK && r.Err != nil {
		tb.Errorf("ok result carries err %v", r.Err)
	}
	if d := time.Since(start); d > t.Timeout+2*time.Second {
		tb.Errorf("probe took %v, timeout %v", d, t.Timeout)
	}
	return r
}

// addrOf returns l's address as a netip.AddrPort.
func addrOf(a net.Addr) netip.AddrPort {
	return netip.MustParseAddrPort(a.String())
}

// closedPort returns a loopback TCP and UDP address nobody listens on.
func closedPort(tb testing.TB, network string) netip.AddrPort {
	tb.Helper()
	var a net.Addr
	switch network {
	case "udp":
		c, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			tb.Fatal(err)
		}
		a = c.LocalAddr()
		c.Close()
	default:
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			tb.Fatal(err)
		}
		a = l.Addr()
		l.Close()
	}
	return addrOf(a)
}

// fullListener returns a loopback TCP address whose accept queue is full,
// so a further connect gets no SYN-ACK and times out: a server too slow to
// accept. It listens with backlog 0 and never accepts.
func fullListener(tb testing.TB) netip.AddrPort {
	tb.Helper()
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM, 0)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { syscall.Close(fd) })
	if err := syscall.Bind(fd, &syscall.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		tb.Fatal(err)
	}
	if err := syscall.Listen(fd, 0); err != nil {
		tb.Fatal(err)
	}
	sa, _ := syscall.Getsockname(fd)
	ap := netip.AddrPortFrom(netip.AddrFrom4([4]byte{127, 0, 0, 1}), uint16(sa.(*syscall.SockaddrInet4).Port))
	// Fill the queue: backlog 0 admits one established connection; more
	// dials fill the SYN side until the kernel drops new SYNs.
	for i := 0; i < 4; i++ {
		d := net.Dialer{Timeout: 200 * time.Millisecond}
		if c, err := d.Dial("tcp", ap.String()); err == nil {
			tb.Cleanup(func() { c.Close() })
		}
	}
	return ap
}

func tcpTarget(typ config.CheckerType, a netip.AddrPort, timeout time.Duration) *Target {
	return &Target{Type: typ, Addr: a, Timeout: timeout}
}
