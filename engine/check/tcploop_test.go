package check

import (
	"context"
	"net"
	"net/netip"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/keepwatch/keepwatch/engine/config"
	"github.com/keepwatch/keepwatch/engine/event"
	"github.com/keepwatch/keepwatch/engine/event/eventtest"
	"github.com/keepwatch/keepwatch/engine/netif/nskit/nskittest"
)

// TestTCPLoopNetns runs the TCP_CHECK connect loop in one network
// namespace against real servers in another, across a bridge: a live
// listener over IPv4 and IPv6 is up, and stays up probe after probe on
// the pooled sockets; a closed port is refused; a listener whose accept
// queue is full times out after connect_timeout; bindto with bind_port
// connects from that address and port, probe after probe (the reset
// close leaves no TIME_WAIT behind to refuse the port).
func TestTCPLoopNetns(t *testing.T) {
	lab := nskittest.New(t, "chkloop", 2)
	cn, sn := lab.Node(1), lab.Node(2)
	var up4, up6, bound net.Listener
	var refused, full netip.AddrPort
	err := sn.Do(func() error {
		var err error
		if up4, err = net.Listen("tcp", netip.AddrPortFrom(sn.IPv4.Addr(), 0).String()); err != nil {
			return err
		}
		if up6, err = net.Listen("tcp", netip.AddrPortFrom(sn.IPv6.Addr(), 0).String()); err != nil {
			return err
		}
		if bound, err = net.Listen("tcp", netip.AddrPortFrom(sn.IPv4.Addr(), 0).String()); err != nil {
			return err
		}
		l, err := net.Listen("tcp", netip.AddrPortFrom(sn.IPv4.Addr(), 0).String())
		if err != nil {
			return err
		}
		refused = addrOf(l.Addr())
		l.Close()
		full = fullListenerOn(t, sn.IPv4.Addr())
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range []net.Listener{up4, up6} {
		t.Cleanup(func() { l.Close() })
		go acceptLoop(l)
	}
	t.Cleanup(func() { bound.Close() })
	peers := make(chan net.Addr, 64)
	go func() {
		for {
			c, err := bound.Accept()
			if err != nil {
				return
			}
			select {
			case peers <- c.RemoteAddr():
			default:
			}
			c.Close()
		}
	}()

	bindPort := uint16(40000 + time.Now().UnixNano()%20000)
	mk := func(a netip.AddrPort, timeout time.Duration) Checker {
		return Checker{Target: Target{Type: config.TCPCheck, Addr: a, Timeout: timeout},
			DelayLoop: 100 * time.Millisecond, DelayBeforeRetry: 100 * time.Millisecond}
	}
	withBind := mk(addrOf(bound.Addr()), time.Second)
	withBind.Bind = netip.AddrPortFrom(cn.IPv4.Addr(), bindPort)
	servers := []RealServer{
		{Service: "s", Target: "up4", Checkers: []Checker{mk(addrOf(up4.Addr()), time.Second)}},
		{Service: "s", Target: "up6", Checkers: []Checker{mk(addrOf(up6.Addr()), time.Second)}},
		{Service: "s", Target: "refused", Checkers: []Checker{mk(refused, time.Second)}},
		{Service: "s", Target: "full", Checkers: []Checker{mk(full, 300*time.Millisecond)}},
		{Service: "s", Target: "bindto", Checkers: []Checker{withBind}},
	}
	rec := &eventtest.Recorder{}
	s := New(servers, Options{Sink: rec})
	loop, err := newTCPLoop(s)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	for _, srv := range s.servers {
		for _, j := range srv.checkers {
			if !j.async {
				t.Fatalf("%s: TCP_CHECK not on the connect loop", srv.Target)
			}
			loop.add(j, start)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 1200*time.Millisecond)
	defer cancel()
	// Sockets belong to the namespace of the thread that opens them, and
	// the loop opens them all on its own goroutine: run it on a thread in
	// the checker's namespace.
	if err := cn.Do(func() error { loop.run(ctx); return nil }); err != nil {
		t.Fatal(err)
	}

	type tally struct {
		ok      int
		reasons map[event.Reason]int
		maxDur  time.Duration
	}
	got := map[string]*tally{}
	for _, e := range rec.Of(event.KindProbe) {
		tl := got[e.Target]
		if tl == nil {
			tl = &tally{reasons: map[event.Reason]int{}}
			got[e.Target] = tl
		}
		if e.OK {
			tl.ok++
		} else {
			tl.reasons[e.Reason]++
		}
		tl.maxDur = max(tl.maxDur, e.Duration)
	}
	for target, tl := range got {
		t.Logf("%s: %d up, failures %v, longest %v", target, tl.ok, tl.reasons, tl.maxDur)
	}
	for _, target := range []string{"up4", "up6", "bindto"} {
		// 1.2 s at a 100 ms delay_loop: about ten probes, all up.
		if tl := got[target]; tl == nil || tl.ok < 5 || len(tl.reasons) > 0 {
			t.Errorf("%s: %+v, want at least 5 probes, all up", target, tl)
		}
	}
	if tl := got["refused"]; tl == nil || tl.ok > 0 || tl.reasons[ReasonRefused] < 5 {
		t.Errorf("refused: %+v, want at least 5 probes, all refused", got["refused"])
	}
	if tl := got["full"]; tl == nil || tl.ok > 0 || tl.reasons[ReasonTimeout] < 2 {
		t.Errorf("full: %+v, want at least 2 probes, all timed out", got["full"])
	} else if tl.maxDur < 300*time.Millisecond || tl.maxDur > 500*time.Millisecond {
		t.Errorf("full: timed out after %v, want connect_timeout 300ms", tl.maxDur)
	}
	close(peers)
	n := 0
	for a := range peers {
		n++
		if got, want := addrOf(a), withBind.Bind; got != want {
			t.Errorf("bindto probe came from %v, want %v", got, want)
		}
	}
	if n < 5 {
		t.Errorf("bindto: the server accepted %d probes, want at least 5", n)
	}
	// The loop's sockets and epoll instance are closed on return.
	for i := range loop.socks {
		if loop.socks[i].fd >= 0 {
			t.Errorf("slot %d: fd %d left open", i, loop.socks[i].fd)
		}
	}
}

// fullListenerOn is fullListener on address a of the calling thread's
// namespace.
func fullListenerOn(tb testing.TB, a netip.Addr) netip.AddrPort {
	tb.Helper()
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { syscall.Close(fd) })
	if err := syscall.Bind(fd, &syscall.SockaddrInet4{Addr: a.As4()}); err != nil {
		tb.Fatal(err)
	}
	if err := syscall.Listen(fd, 0); err != nil {
		tb.Fatal(err)
	}
	sa, _ := syscall.Getsockname(fd)
	ap := netip.AddrPortFrom(a, uint16(sa.(*syscall.SockaddrInet4).Port))
	for range 4 {
		// Dialled from this thread, so from the listener's namespace.
		cfd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM|syscall.SOCK_NONBLOCK|syscall.SOCK_CLOEXEC, 0)
		if err != nil {
			tb.Fatal(err)
		}
		tb.Cleanup(func() { syscall.Close(cfd) })
		syscall.Connect(cfd, &syscall.SockaddrInet4{Addr: a.As4(), Port: int(ap.Port())})
	}
	time.Sleep(50 * time.Millisecond) // the handshakes that can complete have
	return ap
}

// TestTCPLoopAllocs: a TCP_CHECK that succeeds allocates nothing on the
// connect loop (a socket from the pool, the address converted once, a
// typed heap, the result and its event by value), so 10,000 of them a
// second make no garbage.
func TestTCPLoopAllocs(t *testing.T) {
	// The listener accepts and closes with raw syscalls, so that the
	// allocations counted are the checker's.
	lfd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := syscall.Bind(lfd, &syscall.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Listen(lfd, 128); err != nil {
		t.Fatal(err)
	}
	sa, _ := syscall.Getsockname(lfd)
	addr := netip.AddrPortFrom(netip.AddrFrom4([4]byte{127, 0, 0, 1}), uint16(sa.(*syscall.SockaddrInet4).Port))
	go func() {
		for {
			fd, _, errno := syscall.Syscall6(syscall.SYS_ACCEPT4, uintptr(lfd), 0, 0, syscall.SOCK_CLOEXEC, 0, 0)
			if errno != 0 {
				if errno == syscall.EINTR || errno == syscall.ECONNABORTED {
					continue
				}
				return
			}
			syscall.Close(int(fd))
		}
	}()
	// shutdown wakes the blocked accept (close alone would not).
	defer syscall.Close(lfd)
	defer syscall.Shutdown(lfd, syscall.SHUT_RDWR)

	var probes, failed atomic.Int64
	s := New([]RealServer{{Service: "s", Target: addr.String(), Checkers: []Checker{{
		Target:    Target{Type: config.TCPCheck, Addr: addr, Timeout: time.Second},
		DelayLoop: time.Millisecond}}}}, Options{Sink: sinkFunc(func(e event.Event) {
		probes.Add(1)
		if !e.OK {
			failed.Add(1)
		}
	})})
	loop, err := newTCPLoop(s)
	if err != nil {
		t.Fatal(err)
	}
	defer loop.close()
	j := s.servers[0].checkers[0]
	loop.add(j, time.Now())
	ctx := context.Background()
	probeOnce := func() {
		for want := probes.Load() + 1; probes.Load() < want; {
			loop.once(ctx)
		}
	}
	for range 20 { // the pool, the slices and the heap reach their size
		probeOnce()
	}
	if n := testing.AllocsPerRun(200, probeOnce); n != 0 {
		t.Errorf("%v allocations per probe, want 0", n)
	}
	if failed.Load() > 0 {
		t.Errorf("%d of %d probes failed against a live listener", failed.Load(), probes.Load())
	}
	if len(loop.socks) != 1 {
		t.Errorf("%d sockets for one checker probing in turn, want 1 (reused)", len(loop.socks))
	}
}

// TestTCPLoopMaxConcurrent: at Options.MaxConcurrent probes in flight the
// loop holds due probes back until one ends, and the held ones still take
// their turns (none starves): two checkers against servers that never
// answer, at most one probe at a time, time out one after the other.
func TestTCPLoopMaxConcurrent(t *testing.T) {
	var servers []RealServer
	for _, name := range []string{"a", "b"} {
		servers = append(servers, RealServer{Service: "s", Target: name, Checkers: []Checker{{
			Target:    Target{Type: config.TCPCheck, Addr: fullListener(t), Timeout: 150 * time.Millisecond},
			DelayLoop: 10 * time.Millisecond}}})
	}
	rec := &eventtest.Recorder{}
	s := New(servers, Options{Sink: rec, MaxConcurrent: 1})
	loop, err := newTCPLoop(s)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	for _, srv := range s.servers {
		loop.add(srv.checkers[0], now)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 1100*time.Millisecond)
	defer cancel()
	loop.run(ctx)
	per := map[string]int{}
	evs := rec.Of(event.KindProbe)
	for _, e := range evs {
		if e.OK || e.Reason != ReasonTimeout {
			t.Errorf("%s: ok %v reason %s, want a timeout", e.Target, e.OK, e.Reason)
		}
		per[e.Target]++
	}
	// One at a time, 150 ms each: about 7 in 1.1 s (14 if both ran at once).
	if len(evs) < 4 || len(evs) > 8 {
		t.Errorf("%d probes ended, want 4 to 8 (one in flight at a time)", len(evs))
	}
	if per["a"] < 2 || per["b"] < 2 {
		t.Errorf("probes per checker %v: one starved", per)
	}
	// Ends in sequence: no two within one connect_timeout of each other.
	for i := 1; i < len(evs); i++ {
		if d := evs[i].Time.Sub(evs[i-1].Time); d < 120*time.Millisecond {
			t.Errorf("probes %d and %d ended %v apart: ran at once", i-1, i, d)
		}
	}
}
