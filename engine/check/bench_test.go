package check

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/keepwatch/keepwatch/engine/config"
	"github.com/keepwatch/keepwatch/engine/event"
)

// listenerEnv makes the test binary a helper process that only serves TCP
// listeners, so the benchmark's getrusage counts the checker alone.
const listenerEnv = "KEEPWATCH_CHECK_LISTENERS"

func TestMain(m *testing.M) {
	if n := os.Getenv(listenerEnv); n != "" {
		count, _ := strconv.Atoi(n)
		serveListeners(count)
		return
	}
	os.Exit(m.Run())
}

// raiseNofile lifts the soft open-files limit to the hard one.
func raiseNofile() error {
	var r syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &r); err != nil {
		return err
	}
	r.Cur = r.Max
	return syscall.Setrlimit(syscall.RLIMIT_NOFILE, &r)
}

// serveListeners opens count loopback listeners, 500 ports on each of
// 127.0.1.1, 127.0.1.2, ..., prints their addresses, accepts and closes
// connections, and exits when stdin closes (the benchmark is done or died).
func serveListeners(count int) {
	if err := raiseNofile(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	w := bufio.NewWriter(os.Stdout)
	for i := range count {
		ip := fmt.Sprintf("127.0.1.%d", 1+i/500)
		l, err := net.Listen("tcp", ip+":0")
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		fmt.Fprintln(w, l.Addr())
		go acceptLoop(l)
	}
	w.Flush()
	os.Stdout.Close()
	io.Copy(io.Discard, os.Stdin)
}

// BenchmarkTCPCheck10k runs 10,000 real servers, each with a TCP_CHECK
// every second, against real listeners served by a helper process, and
// reports the checker's CPU (percent of one core, from getrusage), its
// RSS, probes per second, and probe lateness (scheduled start → actual
// start) p50 and p99. It runs once, for KEEPWATCH_BENCH_SECONDS (default
// 12; the first 4 s, warmup and ramp, are not measured):
//
//	go test -run '^$' -bench TCPCheck10k -benchtime 1x ./engine/check/
func BenchmarkTCPCheck10k(b *testing.B) { benchTCPCheck(b, 10000) }

// BenchmarkTCPCheck1k is BenchmarkTCPCheck10k with 1,000 real servers
// (DESIGN.md §9 asks for both sizes).
func BenchmarkTCPCheck1k(b *testing.B) { benchTCPCheck(b, 1000) }

func benchTCPCheck(b *testing.B, n int) {
	total := 12 * time.Second
	if s, err := strconv.Atoi(os.Getenv("KEEPWATCH_BENCH_SECONDS")); err == nil && s > 4 {
		total = time.Duration(s) * time.Second
	}
	const settle = 4 * time.Second
	if err := raiseNofile(); err != nil {
		b.Fatal(err)
	}

	helper := exec.Command(os.Args[0], "-test.run=^$")
	helper.Env = append(os.Environ(), listenerEnv+"="+strconv.Itoa(n))
	// Its own session, so its own scheduler autogroup: the listeners play
	// the real servers, which are other machines in production, and must
	// not take CPU from the checker's share on a shared host.
	helper.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	stdin, _ := helper.StdinPipe()
	stdout, _ := helper.StdoutPipe()
	helper.Stderr = os.Stderr
	if err := helper.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		stdin.Close()
		helper.Process.Kill()
		helper.Wait()
	})
	var servers []RealServer
	sc := bufio.NewScanner(stdout)
	for sc.Scan() {
		ap, err := netip.ParseAddrPort(sc.Text())
		if err != nil {
			b.Fatal(err)
		}
		servers = append(servers, RealServer{Service: "192.0.2.1:80/tcp", Target: ap.String(), Weight: 1,
			Checkers: []Checker{{Target: Target{Type: config.TCPCheck, Addr: ap, Timeout: 5 * time.Second},
				DelayLoop: time.Second, DelayBeforeRetry: time.Second, Warmup: time.Second, Retry: 1}}})
	}
	if len(servers) != n {
		b.Fatalf("helper served %d listeners, want %d", len(servers), n)
	}

	// Lateness samples after the settle time, in a preallocated ring so
	// recording them costs no allocation or lock.
	samples := make([]time.Duration, int(total/time.Second+2)*n)
	var idx atomic.Int64
	var measuring, failures atomic.Bool
	sink := sinkFunc(func(okProbe bool) {
		if !okProbe {
			failures.Store(true)
		}
	})
	s := New(servers, Options{Sink: sink, Lateness: func(d time.Duration) {
		if measuring.Load() {
			if i := idx.Add(1) - 1; int(i) < len(samples) {
				samples[i] = d
			}
		}
	}})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { s.Run(ctx); close(done) }()

	b.ResetTimer()
	time.Sleep(settle)
	measuring.Store(true)
	ru0, t0 := rusage(), time.Now()
	time.Sleep(total - settle)
	ru1, t1 := rusage(), time.Now()
	measuring.Store(false)
	b.StopTimer()
	cancel()
	<-done

	user, sys := ru1.user-ru0.user, ru1.sys-ru0.sys
	wall := t1.Sub(t0)
	got := samples[:min(int(idx.Load()), len(samples))]
	slices.Sort(got)
	if len(got) == 0 {
		b.Fatal("no probes measured")
	}
	pct := func(p float64) time.Duration { return got[int(p*float64(len(got)-1))] }
	b.ReportMetric(100*(user+sys).Seconds()/wall.Seconds(), "cpu_%_of_core")
	// On loopback the kernel runs the listener's side of each handshake in
	// the connecting process, so sys is billed for the real servers' work too.
	b.ReportMetric(100*sys.Seconds()/wall.Seconds(), "sys_%_of_core")
	b.ReportMetric(float64(rssBytes())/(1<<20), "rss_MiB")
	b.ReportMetric(float64(len(got))/wall.Seconds(), "probes/s")
	b.ReportMetric(float64(pct(0.50).Microseconds())/1000, "lateness_p50_ms")
	b.ReportMetric(float64(pct(0.99).Microseconds())/1000, "lateness_p99_ms")
	b.ReportMetric(float64(got[len(got)-1].Microseconds())/1000, "lateness_max_ms")
	if failures.Load() {
		b.Error("some probes failed against live listeners")
	}
	up := 0
	for _, st := range s.Status() {
		if st.Up {
			up++
		}
	}
	if up != n {
		b.Errorf("%d of %d real servers up", up, n)
	}
}

// sinkFunc counts probe outcomes without keeping events.
type sinkFunc func(ok bool)

func (f sinkFunc) Emit(e event.Event) {
	if e.Kind == event.KindProbe {
		f(e.OK)
	}
}

// cpuTime is the CPU this process has used, user and system (kernel).
type cpuTime struct{ user, sys time.Duration }

func rusage() cpuTime {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return cpuTime{time.Duration(ru.Utime.Nano()), time.Duration(ru.Stime.Nano())}
}

// rssBytes is the current resident set size (VmRSS).
func rssBytes() int64 {
	b, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		return 0
	}
	var size, res int64
	fmt.Sscan(string(b), &size, &res)
	return res * int64(os.Getpagesize())
}

// BenchmarkProbeTCP is one TCP_CHECK against a loopback listener: the
// cost and allocations of a single probe.
func BenchmarkProbeTCP(b *testing.B) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	go acceptLoop(l)
	tg := &Target{Type: config.TCPCheck, Addr: addrOf(l.Addr()), Timeout: time.Second}
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if r := ProbeTCP(ctx, tg); !r.OK {
			b.Fatal(r.Err)
		}
	}
}
