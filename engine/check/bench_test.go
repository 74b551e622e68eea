package check

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/keepwatch/keepwatch/engine/config"
	"github.com/keepwatch/keepwatch/engine/event"
	"github.com/keepwatch/keepwatch/engine/netif/nskit/nskittest"
)

// The benchmark's helper processes: the test binary re-executed in a role
// named by one of these variables.
const (
	// listenerEnv (a count) serves that many TCP listeners on
	// listenIPEnv's address and prints their addresses.
	listenerEnv = "KEEPWATCH_CHECK_LISTENERS"
	listenIPEnv = "KEEPWATCH_CHECK_LISTEN_IP"
	// checkerEnv (seconds) runs the scheduler against the addresses read
	// from stdin and prints a benchResult as JSON.
	checkerEnv = "KEEPWATCH_CHECK_CHECKER"
	// napiEnv (interface names, comma-separated) turns on GRO and threaded
	// NAPI on those veths of the current namespace, then exits.
	napiEnv = "KEEPWATCH_CHECK_NAPI"
	// finEnv set to 1 makes the checker close normally (FIN) instead of
	// with a reset, to measure the difference.
	finEnv = "KEEPWATCH_CHECK_FIN"
	// floorEnv set to 1 runs testdata/tcpfloor.c as the checker: the same
	// probes with only their system calls, the floor of the cost.
	floorEnv = "KEEPWATCH_CHECK_FLOOR"
)

func TestMain(m *testing.M) {
	switch {
	case os.Getenv(listenerEnv) != "":
		count, _ := strconv.Atoi(os.Getenv(listenerEnv))
		serveListeners(count, os.Getenv(listenIPEnv))
		return
	case os.Getenv(checkerEnv) != "":
		secs, _ := strconv.Atoi(os.Getenv(checkerEnv))
		runCheckerRole(time.Duration(secs) * time.Second)
		return
	case os.Getenv(napiEnv) != "":
		for _, dev := range strings.Split(os.Getenv(napiEnv), ",") {
			if err := threadedNAPI(dev); err != nil {
				fmt.Fprintln(os.Stderr, err)
				os.Exit(1)
			}
		}
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

// serveListeners opens count TCP listeners on ip (on loopback when ip is
// empty: 500 ports on each of 127.0.1.1, 127.0.1.2, ...), prints their
// addresses, accepts and closes connections, and exits when stdin closes
// (the benchmark is done or died).
func serveListeners(count int, ip string) {
	if err := raiseNofile(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	if _, cpus := benchCPUs(); cpus != nil {
		pinSelf(cpus)
	}
	w := bufio.NewWriter(os.Stdout)
	for i := range count {
		a := ip
		if a == "" {
			a = fmt.Sprintf("127.0.1.%d", 1+i/500)
		}
		l, err := net.Listen("tcp", net.JoinHostPort(a, "0"))
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

// threadedNAPI turns on GRO on the veth dev, which makes the veth receive
// through NAPI (drivers/net/veth.c veth_set_features), and makes that NAPI
// threaded (/sys/class/net/DEV/threaded, which `ip netns exec` mounts for
// the namespace): the receive work then runs in the kernel thread
// "napi/DEV-N", not in the softirq of whichever process sent the packet.
func threadedNAPI(dev string) error {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	// struct ethtool_value commands (include/uapi/linux/ethtool.h): TSO off,
	// since veth_xmit hands a packet to the peer's NAPI only when the
	// sending veth does no TSO (veth_skb_is_eligible_for_gro); GRO on.
	for _, ev := range []struct{ cmd, data uint32 }{{0x1f /* ETHTOOL_STSO */, 0}, {0x2c /* ETHTOOL_SGRO */, 1}} {
		var ifr struct {
			name [unix.IFNAMSIZ]byte
			data uintptr
			_    [16]byte
		}
		copy(ifr.name[:], dev)
		ifr.data = uintptr(unsafe.Pointer(&ev))
		_, _, errno := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), unix.SIOCETHTOOL, uintptr(unsafe.Pointer(&ifr)))
		runtime.KeepAlive(&ev)
		if errno != 0 {
			return fmt.Errorf("%s: ethtool %#x: %w", dev, ev.cmd, errno)
		}
	}
	return os.WriteFile("/sys/class/net/"+dev+"/threaded", []byte("1"), 0)
}

// BenchmarkTCPCheck10k runs 10,000 real servers, each with a TCP_CHECK
// every second, against real listeners, and reports the checker's CPU
// (percent of one core, from getrusage), its RSS, probes per second, and
// probe lateness (scheduled start → actual start) p50 and p99. It runs
// once, for KEEPWATCH_BENCH_SECONDS (default 12; the first 4 s, warmup and
// ramp, are not measured):
//
//	go test -run '^$' -bench TCPCheck10k -benchtime 1x ./engine/check/
//
// The checker and the listeners are separate processes in separate
// network namespaces, joined through a bridge by veths whose receive side
// runs in threaded NAPI: on loopback (or plain veths) the kernel runs the
// listener's half of every handshake in the softirq of the process that
// sent the packet, so the checker's sys time would include the real
// servers' accept work. Here the checker's process is billed for its
// syscalls and the packets it sends; the kernel's receive work on the
// checker's side (SYN-ACK in, ACK out), which a real NIC does in softirq,
// is reported apart as rx_%_of_core, from the NAPI thread's CPU time.
func BenchmarkTCPCheck10k(b *testing.B) { benchTCPCheck(b, 10000) }

// BenchmarkTCPCheck1k is BenchmarkTCPCheck10k with 1,000 real servers
// (DESIGN.md §9 asks for both sizes).
func BenchmarkTCPCheck1k(b *testing.B) { benchTCPCheck(b, 1000) }

// benchResult is what the checker process reports.
type benchResult struct {
	User, Sys, Wall             time.Duration
	Waits                       int64
	RSS                         int64
	Probes                      int
	P50, P99, Max               time.Duration
	Failures                    int
	FirstFailure                string
	Up                          int
	MeasureStart, MeasureFinish time.Time
}

func benchTCPCheck(b *testing.B, n int) {
	total := 12 * time.Second
	if s, err := strconv.Atoi(os.Getenv("KEEPWATCH_BENCH_SECONDS")); err == nil && s > 4 {
		total = time.Duration(s) * time.Second
	}
	lab := nskittest.New(b, "chkbench", 2)
	checker, server := lab.Node(1), lab.Node(2)
	for ns, devs := range map[string][]string{checker.NS: {checker.Link}, server.NS: {server.Link},
		lab.Switch: {checker.Port, server.Port}} {
		cmd := exec.Command("ip", "netns", "exec", ns, os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), napiEnv+"="+strings.Join(devs, ","))
		if out, err := cmd.CombinedOutput(); err != nil {
			b.Fatalf("threaded NAPI in %s: %v: %s", ns, err, out)
		}
	}
	// The NAPI threads run at real-time priority, as a NIC's softirq
	// preempts processes: at the default priority, on a loaded machine,
	// a starved NAPI thread lets the veth's ring (256 packets) overflow,
	// and each dropped SYN or SYN-ACK costs its probe a 1 s retransmit
	// (or a timeout), which the benchmark then counted as the checker's
	// probe rate and failures. They and the listeners run on the last CPU,
	// the checker on the others (benchCPUs): a real-time NAPI thread woken
	// by the checker's send on the checker's own CPU preempts it at once,
	// and the context switches were billed to the checker (92 µs a probe
	// against 51 unpinned at the default priority, same run), which a
	// NIC's transmit does not cost.
	_, netCPUs := benchCPUs()
	for _, dev := range []string{checker.Link, server.Link, checker.Port, server.Port} {
		for _, pid := range napiThreads(dev) {
			if err := unix.SchedSetAttr(pid, &unix.SchedAttr{Size: unix.SizeofSchedAttr, Policy: unix.SCHED_FIFO, Priority: 50}, 0); err != nil {
				b.Fatalf("NAPI thread %d of %s: SCHED_FIFO: %v", pid, dev, err)
			}
			if netCPUs != nil {
				if err := unix.SchedSetaffinity(pid, netCPUs); err != nil {
					b.Fatalf("NAPI thread %d of %s: affinity: %v", pid, dev, err)
				}
			}
		}
	}

	lcmd := exec.Command(os.Args[0], "-test.run=^$")
	lcmd.Env = append(os.Environ(), listenerEnv+"="+strconv.Itoa(n), listenIPEnv+"="+server.IPv4.Addr().String())
	lin, _ := lcmd.StdinPipe()
	lout, _ := lcmd.StdoutPipe()
	lcmd.Stderr = os.Stderr
	if _, err := server.Start(lcmd); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { lin.Close() })
	addrs, err := io.ReadAll(lout)
	if err != nil {
		b.Fatal(err)
	}
	if got := strings.Count(string(addrs), "\n"); got != n {
		b.Fatalf("listeners: %d addresses, want %d", got, n)
	}

	ccmd := exec.Command(os.Args[0], "-test.run=^$")
	ccmd.Env = append(os.Environ(), checkerEnv+"="+strconv.Itoa(int(total/time.Second)))
	if os.Getenv(floorEnv) == "1" {
		// The floor: the same probes from a C loop doing only their
		// system calls (testdata/tcpfloor.c), on the checker's CPUs.
		bin := b.TempDir() + "/tcpfloor"
		if out, err := exec.Command("cc", "-O2", "-o", bin, "testdata/tcpfloor.c").CombinedOutput(); err != nil {
			b.Fatalf("cc tcpfloor.c: %v: %s", err, out)
		}
		args := []string{bin, strconv.Itoa(int(total / time.Second))}
		if cpus, _ := benchCPUs(); cpus != nil {
			var list []string
			for i := range len(cpus) * 64 {
				if cpus.IsSet(i) {
					list = append(list, strconv.Itoa(i))
				}
			}
			args = append([]string{"taskset", "-c", strings.Join(list, ",")}, args...)
		}
		ccmd = exec.Command(args[0], args[1:]...)
	}
	ccmd.Stdin = strings.NewReader(string(addrs))
	cout, _ := ccmd.StdoutPipe()
	ccmd.Stderr = os.Stderr
	b.ResetTimer()
	if _, err := checker.Start(ccmd); err != nil {
		b.Fatal(err)
	}
	// The NAPI thread of the checker's interface does its receive work.
	rx := napiThreads(checker.Link)
	sc := bufio.NewScanner(cout)
	var rx0, rx1 time.Duration
	var res benchResult
	for sc.Scan() {
		switch line := sc.Text(); line {
		case "start":
			rx0 = threadsCPU(rx)
		case "stop":
			rx1 = threadsCPU(rx)
		default:
			if err := json.Unmarshal([]byte(line), &res); err != nil {
				b.Fatalf("checker: %q: %v", line, err)
			}
		}
	}
	b.StopTimer()
	if res.Wall == 0 {
		b.Fatal("checker reported nothing")
	}
	if len(rx) == 0 {
		b.Errorf("no NAPI thread for %s", checker.Link)
	}
	wall := res.Wall.Seconds()
	b.ReportMetric(100*(res.User+res.Sys).Seconds()/wall, "cpu_%_of_core")
	b.ReportMetric(100*res.Sys.Seconds()/wall, "sys_%_of_core")
	b.ReportMetric(100*(rx1-rx0).Seconds()/wall, "rx_%_of_core")
	if res.Probes > 0 {
		// Per probe, so a starved run (fewer probes) compares with others.
		b.ReportMetric(1e6*(res.User+res.Sys).Seconds()/float64(res.Probes), "cpu_µs/probe")
		b.ReportMetric(float64(res.Waits)/float64(res.Probes), "waits/probe")
	}
	b.ReportMetric(float64(res.RSS)/(1<<20), "rss_MiB")
	b.ReportMetric(float64(res.Probes)/wall, "probes/s")
	b.ReportMetric(float64(res.P50.Microseconds())/1000, "lateness_p50_ms")
	b.ReportMetric(float64(res.P99.Microseconds())/1000, "lateness_p99_ms")
	b.ReportMetric(float64(res.Max.Microseconds())/1000, "lateness_max_ms")
	// Packets the veths dropped: a NAPI thread starved of CPU lets its
	// ring (256 packets) overflow, and a check whose SYN or SYN-ACK is
	// dropped three times times out. Such failures are the host's, not
	// the checker's.
	var drops uint64
	for _, nd := range []struct {
		h   *netlink.Handle
		dev string
	}{{checker.Handle(), checker.Link}, {server.Handle(), server.Link}} {
		if l, err := nd.h.LinkByName(nd.dev); err == nil && l.Attrs().Statistics != nil {
			st := l.Attrs().Statistics
			drops += st.TxDropped + st.RxDropped
		}
	}
	b.ReportMetric(float64(drops), "veth_drops")
	if res.Failures > 0 {
		b.Errorf("%d probes failed against live listeners (%d packets dropped by the veths), the first %s",
			res.Failures, drops, res.FirstFailure)
	}
	if res.Up != n {
		b.Errorf("%d of %d real servers up", res.Up, n)
	}
}

// benchCPUs splits the CPUs for BenchmarkTCPCheck10k: the last for the
// NAPI threads and the listeners, the others for the checker; nil, nil
// with one CPU, or with KEEPWATCH_CHECK_NOPIN=1 (to measure unpinned).
func benchCPUs() (checker, net *unix.CPUSet) {
	var all unix.CPUSet
	if os.Getenv("KEEPWATCH_CHECK_NOPIN") == "1" || unix.SchedGetaffinity(0, &all) != nil || all.Count() < 2 {
		return nil, nil
	}
	last := -1
	for i := range len(all) * 64 {
		if all.IsSet(i) {
			last = i
		}
	}
	checker, net = new(unix.CPUSet), new(unix.CPUSet)
	*checker = all
	checker.Clear(last)
	net.Set(last)
	return checker, net
}

// pinSelf sets the affinity of every thread of this process (threads
// started later inherit it).
func pinSelf(cpus *unix.CPUSet) {
	ents, _ := os.ReadDir("/proc/self/task")
	for _, e := range ents {
		if tid, err := strconv.Atoi(e.Name()); err == nil {
			unix.SchedSetaffinity(tid, cpus)
		}
	}
}

// napiThreads returns the pids of the kernel threads running dev's
// threaded NAPI ("napi/DEV-ID", cut to 15 characters).
func napiThreads(dev string) []int {
	want := "napi/" + dev
	want = want[:min(len(want), 15)]
	ents, _ := os.ReadDir("/proc")
	var pids []int
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		comm, err := os.ReadFile("/proc/" + e.Name() + "/comm")
		if err == nil && strings.HasPrefix(strings.TrimSpace(string(comm)), want) {
			pids = append(pids, pid)
		}
	}
	return pids
}

// threadsCPU is the user and system time of the threads pids, from
// /proc/PID/stat (clock ticks of 1/100 s).
func threadsCPU(pids []int) time.Duration {
	var d time.Duration
	for _, pid := range pids {
		b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
		if err != nil {
			continue
		}
		s := string(b)
		f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
		// Fields 14 and 15 of stat: utime, stime; f starts at field 3.
		u, _ := strconv.Atoi(f[11])
		k, _ := strconv.Atoi(f[12])
		d += time.Duration(u+k) * 10 * time.Millisecond
	}
	return d
}

// runCheckerRole runs the scheduler for total against the addresses on
// stdin, prints "start" and "stop" around the measured window (after a 4 s
// warmup and ramp), then the benchResult as JSON.
func runCheckerRole(total time.Duration) {
	const settle = 4 * time.Second
	if err := raiseNofile(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	if os.Getenv(finEnv) == "1" {
		resetOnClose = false
	}
	if cpus, _ := benchCPUs(); cpus != nil {
		pinSelf(cpus)
	}
	var servers []RealServer
	sc := bufio.NewScanner(os.Stdin)
	for sc.Scan() {
		ap, err := netip.ParseAddrPort(sc.Text())
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		servers = append(servers, RealServer{Service: "192.0.2.1:80/tcp", Target: ap.String(), Weight: 1,
			Checkers: []Checker{{Target: Target{Type: config.TCPCheck, Addr: ap, Timeout: 5 * time.Second},
				DelayLoop: time.Second, DelayBeforeRetry: time.Second, Warmup: time.Second, Retry: 1}}})
	}
	n := len(servers)
	// Lateness samples after the settle time, in a preallocated ring so
	// recording them costs no allocation or lock.
	samples := make([]time.Duration, int(total/time.Second+2)*n)
	var idx atomic.Int64
	var measuring atomic.Bool
	var failures atomic.Int64
	var firstFailure atomic.Value
	sink := sinkFunc(func(e event.Event) {
		if !e.OK {
			if failures.Add(1) == 1 {
				firstFailure.Store(fmt.Sprintf("%s: %s: %v", e.Target, e.Reason, e.Err))
			}
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

	time.Sleep(settle)
	fmt.Println("start")
	measuring.Store(true)
	ru0, t0 := rusage(), time.Now()
	time.Sleep(total - settle)
	ru1, t1 := rusage(), time.Now()
	measuring.Store(false)
	fmt.Println("stop")
	cancel()
	<-done

	got := samples[:min(int(idx.Load()), len(samples))]
	slices.Sort(got)
	res := benchResult{User: ru1.user - ru0.user, Sys: ru1.sys - ru0.sys, Waits: ru1.waits - ru0.waits, Wall: t1.Sub(t0), RSS: rssBytes(),
		Probes: len(got), Failures: int(failures.Load())}
	if f, ok := firstFailure.Load().(string); ok {
		res.FirstFailure = f
	}
	if len(got) > 0 {
		pct := func(p float64) time.Duration { return got[int(p*float64(len(got)-1))] }
		res.P50, res.P99, res.Max = pct(0.50), pct(0.99), got[len(got)-1]
	}
	for _, st := range s.Status() {
		if st.Up {
			res.Up++
		}
	}
	json.NewEncoder(os.Stdout).Encode(res)
}

// sinkFunc sees probe outcomes without keeping events.
type sinkFunc func(e event.Event)

func (f sinkFunc) Emit(e event.Event) {
	if e.Kind == event.KindProbe {
		f(e)
	}
}

// cpuTime is the CPU this process has used, user and system (kernel), and
// how often its threads gave up the CPU to wait (voluntary context
// switches), a figure the machine's load does not inflate.
type cpuTime struct {
	user, sys time.Duration
	waits     int64
}

func rusage() cpuTime {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return cpuTime{time.Duration(ru.Utime.Nano()), time.Duration(ru.Stime.Nano()), ru.Nvcsw}
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

// BenchmarkTCPLoopQueue is the connect loop's schedule at 10,000
// checkers: one probe's pop of the earliest due job and push of its next
// due time, in the due-time heap (keys in the array) and in the deadline
// heap's layout (keys in the jobs, reached through pointers).
func BenchmarkTCPLoopQueue(b *testing.B) {
	const n = 10000
	jobs := make([]*job, n)
	for i := range jobs {
		jobs[i] = &job{tindex: -1}
	}
	step := time.Second / n
	b.Run("due", func(b *testing.B) {
		var q dueQueue
		for i, j := range jobs {
			q.push(time.Duration((i*7919)%n)*step, j)
		}
		now := time.Duration(0)
		for b.Loop() {
			j := q.pop()
			now += step
			q.push(now+time.Second, j)
		}
	})
	b.Run("pointer", func(b *testing.B) {
		var q tcpQueue
		for i, j := range jobs {
			j.tkey = time.Duration((i*7919)%n) * step
			q.push(j)
		}
		now := time.Duration(0)
		for b.Loop() {
			j := q[0]
			q.remove(0)
			now += step
			j.tkey = now + time.Second
			q.push(j)
		}
	})
}
