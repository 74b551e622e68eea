package check

import (
	"context"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/keepwatch/keepwatch/engine/config"
	"github.com/keepwatch/keepwatch/engine/event"
	"github.com/keepwatch/keepwatch/engine/event/eventtest"
)

// start runs a scheduler over servers until the test ends.
func start(t *testing.T, servers []RealServer, opts Options) (*Scheduler, *eventtest.Recorder) {
	t.Helper()
	rec := &eventtest.Recorder{}
	opts.Sink = rec
	for i := range servers {
		for k := range servers[i].Checkers {
			if err := servers[i].Checkers[k].Compile(); err != nil {
				t.Fatal(err)
			}
		}
	}
	s := New(servers, opts)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != context.Canceled {
				t.Errorf("Run = %v, want context.Canceled", err)
			}
		case <-time.After(5 * time.Second):
			t.Error("Run did not return after cancel")
		}
	})
	return s, rec
}

func server(kind event.Kind, ok bool) func(event.Event) bool {
	return func(e event.Event) bool { return e.Kind == kind && e.OK == ok }
}

func tcpChecker(a net.Addr, retry int) Checker {
	return Checker{Target: Target{Type: config.TCPCheck, Addr: addrOf(a), Timeout: 2 * time.Second},
		DelayLoop: 40 * time.Millisecond, DelayBeforeRetry: 15 * time.Millisecond, Retry: retry}
}

// acceptLoop accepts and closes connections until l is closed.
func acceptLoop(l net.Listener) {
	for {
		c, err := l.Accept()
		if err != nil {
			return
		}
		c.Close()
	}
}

// TestSchedulerRetry: an up real server goes down only after its first
// failure and `retry` failed retries, and comes back on one success, with
// KindProbe and KindRealServer events that say so.
func TestSchedulerRetry(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr()
	go acceptLoop(l)
	_, rec := start(t, []RealServer{{Service: "192.0.2.10:80/tcp", Target: addr.String(), Weight: 3,
		Checkers: []Checker{tcpChecker(addr, 2)}}}, Options{})

	e, ok := rec.Wait(time.Second, server(event.KindRealServer, true))
	if !ok || e.Reason != event.ReasonStartup || e.Value != 3 || e.Service != "192.0.2.10:80/tcp" {
		t.Fatalf("startup event %+v found %v", e, ok)
	}
	if _, ok := rec.Wait(time.Second, server(event.KindProbe, true)); !ok {
		t.Fatal("no successful probe")
	}
	l.Close()
	down, ok := rec.Wait(3*time.Second, server(event.KindRealServer, false))
	if !ok {
		t.Fatal("real server never went down")
	}
	var failed int
	for _, e := range rec.Of(event.KindProbe) {
		if !e.OK && !e.Time.After(down.Time) {
			failed++
			if e.Name != "TCP_CHECK" || e.Reason != ReasonRefused || e.Target != addr.String() || e.Duration <= 0 {
				t.Errorf("failed probe event %+v", e)
			}
		}
	}
	if failed != 3 {
		t.Errorf("%d failed probes before down, want 1 + retry 2", failed)
	}

	l2, err := net.Listen("tcp", addr.String())
	if err != nil {
		t.Fatal(err)
	}
	defer l2.Close()
	go acceptLoop(l2)
	up, ok := rec.Wait(3*time.Second, func(e event.Event) bool { return e.Kind == event.KindRealServer && e.OK && e.Reason == "" })
	if !ok || up.Value != 3 {
		t.Fatalf("real server back up: %+v %v", up, ok)
	}
}

// TestSchedulerAlpha: with alpha the real server starts down and comes up
// on the first success.
func TestSchedulerAlpha(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go acceptLoop(l)
	c := tcpChecker(l.Addr(), 1)
	c.Alpha = true
	_, rec := start(t, []RealServer{{Service: "s", Target: "t", Weight: 1, Checkers: []Checker{c}}}, Options{})
	e, ok := rec.Wait(time.Second, func(e event.Event) bool { return e.Kind == event.KindRealServer })
	if !ok || e.OK || e.Reason != event.ReasonStartup {
		t.Fatalf("first real-server event %+v, want down at startup", e)
	}
	if _, ok := rec.Wait(time.Second, server(event.KindRealServer, true)); !ok {
		t.Fatal("never came up")
	}
}

// TestSchedulerAllCheckers: a real server is up only while all of its
// checkers are.
func TestSchedulerAllCheckers(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go acceptLoop(l)
	dead := net.TCPAddrFromAddrPort(closedPort(t, "tcp"))
	s, rec := start(t, []RealServer{{Service: "s", Target: "t", Weight: 1,
		Checkers: []Checker{tcpChecker(l.Addr(), 0), tcpChecker(dead, 0)}}}, Options{})
	if _, ok := rec.Wait(2*time.Second, server(event.KindRealServer, false)); !ok {
		t.Fatal("real server with a failing checker stayed up")
	}
	time.Sleep(200 * time.Millisecond)
	st := s.Status()
	if len(st) != 1 || st[0].Up || !st[0].Checkers[0].Up || st[0].Checkers[1].Up || st[0].Checkers[1].Reason != ReasonRefused {
		t.Errorf("status %+v", st)
	}
	for _, e := range rec.Of(event.KindRealServer) {
		if e.OK && e.Reason == "" {
			t.Errorf("real server came up with a checker down: %+v", e)
		}
	}
}

// TestSchedulerWeights: misc_dynamic sets the weight from the exit code;
// FILE_CHECK adds value × weight, known at startup.
func TestSchedulerWeights(t *testing.T) {
	dir := t.TempDir()
	codeFile := filepath.Join(dir, "code")
	os.WriteFile(codeFile, []byte("0"), 0o644)
	misc := script(t, dir, "dyn.sh", `exit "$(cat "$1")"`)
	weightFile := filepath.Join(dir, "weight")
	os.WriteFile(weightFile, []byte("2\n"), 0o644)

	mc := Checker{Target: *miscTarget(misc, []string{codeFile}, true, time.Second), DelayLoop: 30 * time.Millisecond}
	fc := Checker{Target: Target{Type: config.FileCheck, TrackFile: weightFile, File: &config.FileSpec{Weight: 10}},
		DelayLoop: 30 * time.Millisecond}
	_, rec := start(t, []RealServer{{Service: "s", Target: "t", Weight: 4, Checkers: []Checker{mc, fc}}}, Options{})
	e, ok := rec.Wait(time.Second, server(event.KindRealServer, true))
	if !ok || e.Value != 24 || e.Reason != event.ReasonStartup {
		t.Fatalf("startup %+v, want weight 4 + 2×10", e)
	}
	os.WriteFile(codeFile, []byte("9"), 0o644) // misc_dynamic: weight 7
	if e, ok := rec.Wait(2*time.Second, func(e event.Event) bool { return e.Kind == event.KindRealServer && e.Value == 27 }); !ok || !e.OK {
		t.Fatalf("misc_dynamic weight not applied: %+v", rec.Of(event.KindRealServer))
	}
	os.WriteFile(weightFile, []byte("-70000"), 0o644) // fault: down
	if _, ok := rec.Wait(2*time.Second, server(event.KindRealServer, false)); !ok {
		t.Fatal("FILE_CHECK fault did not take the server down")
	}
}

// TestSchedulerNoStarvation: with 2 slots and 40 slow checkers, every
// checker still gets probed (a fake prober: this is the scheduling logic).
func TestSchedulerNoStarvation(t *testing.T) {
	var inflight, peak atomic.Int32
	var mu sync.Mutex
	count := map[string]int{}
	slow := func(ctx context.Context, tg *Target) Result {
		n := inflight.Add(1)
		for {
			p := peak.Load()
			if n <= p || peak.CompareAndSwap(p, n) {
				break
			}
		}
		time.Sleep(5 * time.Millisecond)
		inflight.Add(-1)
		mu.Lock()
		count[tg.Addr.String()]++
		mu.Unlock()
		return ok
	}
	var servers []RealServer
	for i := range 40 {
		a := net.TCPAddr{IP: net.IPv4(192, 0, 2, byte(i+1)), Port: 80}
		servers = append(servers, RealServer{Service: "s", Target: a.String(), Weight: 1,
			Checkers: []Checker{{Target: Target{Type: config.TCPCheck, Addr: addrOf(&a)}, DelayLoop: time.Millisecond}}})
	}
	var late atomic.Int64
	start(t, servers, Options{MaxConcurrent: 2, Probers: map[config.CheckerType]Prober{config.TCPCheck: slow},
		Lateness: func(d time.Duration) { late.Add(1) }})
	time.Sleep(time.Second)
	mu.Lock()
	defer mu.Unlock()
	if p := peak.Load(); p > 2 {
		t.Errorf("%d probes in flight, limit 2", p)
	}
	for _, s := range servers {
		if n := count[s.Checkers[0].Addr.String()]; n < 2 {
			t.Errorf("%s probed %d times in 1s", s.Target, n)
		}
	}
	if late.Load() == 0 {
		t.Error("Lateness never called")
	}
}

// TestFromConfig: inheritance and defaults from the config model.
func TestFromConfig(t *testing.T) {
	retry := 4
	cfg := &config.Config{
		Global:     config.Global{RouterID: "lb1"},
		TrackFiles: []config.TrackFile{{Name: "tf", File: "/run/tf", Weight: 3}},
		VirtualServers: []config.VirtualServer{{
			Addr: netip.MustParseAddr("192.0.2.1"), Port: 80, Protocol: "TCP", Virtualhost: "vs.example",
			CheckDefaults: config.CheckDefaults{DelayLoop: 10 * time.Second, Retry: &retry},
			RealServers: []config.RealServer{{
				Addr: netip.MustParseAddr("192.0.2.11"), Port: 8080, Weight: 2,
				Checkers: []config.Checker{
					{Type: config.TCPCheck, ConnectPort: 9000},
					{Type: config.HTTPGet, HTTP: &config.HTTPCheck{URLs: []config.URL{{Path: "/", Digest: "00112233445566778899aabbccddeeff"}}}},
					{Type: config.SMTPCheck},
					{Type: config.MiscCheck, Misc: &config.MiscSpec{Path: config.Script{Command: "/bin/true"}}},
					{Type: config.FileCheck, File: &config.FileSpec{TrackFile: "tf"}},
					{Type: config.BFDCheck},
				},
			}},
		}},
	}
	rs, err := FromConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if len(rs) != 1 || rs[0].Service != "192.0.2.1:80/tcp" || rs[0].Target != "192.0.2.11:8080" || len(rs[0].Checkers) != 5 {
		t.Fatalf("got %+v", rs)
	}
	c := rs[0].Checkers
	if c[0].Addr.String() != "192.0.2.11:9000" || c[0].DelayLoop != 10*time.Second || c[0].Retry != 4 || c[0].Warmup != 10*time.Second || c[0].Timeout != 5*time.Second {
		t.Errorf("TCP_CHECK %+v", c[0])
	}
	if c[1].DelayBeforeRetry != 3*time.Second || c[1].Virtualhost != "vs.example" || len(c[1].digests) != 1 {
		t.Errorf("HTTP_GET %+v", c[1])
	}
	if c[2].HeloName != DefaultHeloName {
		t.Errorf("SMTP_CHECK helo %q", c[2].HeloName)
	}
	if c[3].Timeout != 10*time.Second {
		t.Errorf("MISC_CHECK timeout %v, want delay_loop", c[3].Timeout)
	}
	if c[4].TrackFile != "/run/tf" || c[4].File.Weight != 3 || c[4].Retry != 0 || c[4].Warmup != 0 || c[4].DelayLoop != FilePoll {
		t.Errorf("FILE_CHECK %+v %+v", c[4], c[4].File)
	}
	// checker_log_all_failures is every checker's default; log_all_failures
	// on a checker wins.
	no := false
	cfg.Global.CheckerLogAllFailures = true
	cfg.VirtualServers[0].RealServers[0].Checkers[1].LogAllFailures = &no
	rs, err = FromConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if c := rs[0].Checkers; !c[0].LogAllFailures || c[1].LogAllFailures {
		t.Errorf("log_all_failures: TCP_CHECK %v (global on), HTTP_GET %v (its own off)", c[0].LogAllFailures, c[1].LogAllFailures)
	}
}

// TestSchedulerInherit: after a reload a real server that was down stays
// down (no flap to up before its first probe), and its state is announced
// with Reason "reload".
func TestSchedulerInherit(t *testing.T) {
	dead := net.TCPAddrFromAddrPort(closedPort(t, "tcp"))
	servers := func() []RealServer {
		c := tcpChecker(dead, 0)
		c.DelayLoop = time.Hour // after the first probe, nothing more in this test
		return []RealServer{{Service: "s", Target: "t", Weight: 1, Checkers: []Checker{c}}}
	}
	rec := &eventtest.Recorder{}
	old := New(servers(), Options{Sink: rec})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { old.Run(ctx); close(done) }()
	if _, ok := rec.Wait(2*time.Second, server(event.KindRealServer, false)); !ok {
		t.Fatal("never went down")
	}
	cancel()
	<-done

	fresh := New(servers(), Options{})
	fresh.Inherit(old)
	if st := fresh.Status(); st[0].Up || !st[0].Checkers[0].HasRun || st[0].Checkers[0].Up {
		t.Errorf("inherited status %+v, want down", st[0])
	}
	rec2 := &eventtest.Recorder{}
	fresh.opts.Sink = rec2
	ctx2, cancel2 := context.WithCancel(context.Background())
	done2 := make(chan struct{})
	go func() { fresh.Run(ctx2); close(done2) }()
	defer func() { cancel2(); <-done2 }()
	e, ok := rec2.Wait(time.Second, func(e event.Event) bool { return e.Kind == event.KindRealServer })
	if !ok || e.OK || e.Reason != event.ReasonReload {
		t.Fatalf("first event after reload %+v, want down with reason reload", e)
	}
	if _, ok := rec2.Wait(200*time.Millisecond, func(e event.Event) bool { return e.Kind == event.KindProbe }); !ok {
		t.Fatal("no probe after reload")
	}
	for _, e := range rec2.Of(event.KindRealServer) {
		if e.OK {
			t.Errorf("real server flapped up across the reload: %+v", e)
		}
	}
}

func TestServiceName(t *testing.T) {
	for _, tc := range []struct {
		vs   config.VirtualServer
		want string
	}{
		{config.VirtualServer{Addr: netip.MustParseAddr("192.0.2.1"), Port: 443}, "192.0.2.1:443/tcp"},
		{config.VirtualServer{Addr: netip.MustParseAddr("2001:db8::1"), Port: 53, Protocol: "UDP"}, "[2001:db8::1]:53/udp"},
		{config.VirtualServer{FWMark: 7}, "fwmark:7/ipv4"},
		{config.VirtualServer{FWMark: 7, IPFamily: 6}, "fwmark:7/ipv6"},
		{config.VirtualServer{Group: "web"}, "group:web"},
	} {
		if got := ServiceName(&tc.vs); got != tc.want {
			t.Errorf("ServiceName(%+v) = %q, want %q", tc.vs, got, tc.want)
		}
	}
}
