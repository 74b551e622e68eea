package lab_test

import (
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/keepwatch/keepwatch/deploy/lab"
)

// benchEnv gates the side-by-side benchmarks: they take minutes, so the
// `go test -bench=. ./...` sweep of make bench leaves them to
// deploy/bench.d/vrrp.sh, which sets it.
const benchEnv = "KEEPWATCH_BENCH_VRRP"

func requireBench(b *testing.B) {
	if os.Getenv(benchEnv) == "" {
		b.Skipf("run by deploy/bench.d/vrrp.sh (set %s=1)", benchEnv)
	}
}

// BenchmarkFailover measures failover time, the master's link cut → the VIP
// on the backup (by netlink event), for keepwatch and keepalived pairs with
// the same config in the same run, and reports the medians and their ratio.
func BenchmarkFailover(b *testing.B) {
	requireBench(b)
	for _, c := range []struct {
		name    string
		p       lab.Params
		samples int
	}{
		{"v3_0.1s", lab.Params{Family: 4}, 5},
		{"v2_1s", lab.Params{Family: 4, Version: 2, Interval: time.Second}, 3},
	} {
		b.Run(c.name, func(b *testing.B) {
			kw := newCluster(b, "bfkw", lab.Options{Nodes: 2, Params: c.p})
			ka := newCluster(b, "bfka", lab.Options{Nodes: 2, Params: c.p, Keepalived: []int{1, 2}})
			var kwT, kaT, kwG, kaG []time.Duration
			for range b.N {
				for range c.samples {
					t, g := failover(b, kw)
					kwT, kwG = append(kwT, t), append(kwG, g)
					t, g = failover(b, ka)
					kaT, kaG = append(kaT, t), append(kaG, g)
				}
			}
			mkw, mka := median(kwT), median(kaT)
			gkw, gka := median(kwG), median(kaG)
			b.ReportMetric(float64(mkw.Microseconds())/1000, "keepwatch-ms")
			b.ReportMetric(float64(mka.Microseconds())/1000, "keepalived-ms")
			b.ReportMetric(float64(mkw)/float64(mka), "keepwatch/keepalived")
			b.ReportMetric(float64(gkw.Microseconds())/1000, "keepwatch-garp-ms")
			b.ReportMetric(float64(gka.Microseconds())/1000, "keepalived-garp-ms")
			b.Logf("failover %s (cut → VIP on the backup): keepwatch median %s %v, keepalived median %s %v, ratio %.3f",
				c.name, mkw.Round(time.Millisecond), rounded(kwT), mka.Round(time.Millisecond), rounded(kaT), float64(mkw)/float64(mka))
			b.Logf("failover %s (cut → first gratuitous ARP on the wire): keepwatch median %s %v, keepalived median %s %v, ratio %.3f",
				c.name, gkw.Round(time.Millisecond), rounded(kwG), gka.Round(time.Millisecond), rounded(kaG), float64(gkw)/float64(gka))
		})
	}
}

// failover cuts node 1's link (node 1 master) just after node 2 has
// received one of its adverts, measures until node 2 has the VIP, then
// restores node 1 and waits until it is master again. Cutting at the same
// phase of the advert schedule for both daemons keeps the comparison fair
// (a cut at a random instant adds up to one advert interval of noise, a
// cut at a fixed delay after the takeover a bias).
func failover(b *testing.B, c *lab.Cluster) (vip, garp time.Duration) {
	b.Helper()
	n1, n2 := c.Node(1), c.Node(2)
	wait := 10 * n1.Params.Interval
	waitHolders(b, c, []int{1}, wait+5*time.Second, vip4)
	arps := watchGARP(b, n2, vip4, wait+5*time.Second)
	awaitAdvert(b, n2, n1.IPv4.Addr(), wait+5*time.Second)
	start := time.Now()
	if err := n1.Cut(); err != nil {
		b.Fatal(err)
	}
	took := timeTo(b, n2, vip4, true, start, wait+5*time.Second)
	at := <-arps
	if at.IsZero() {
		b.Fatalf("node %d sent no gratuitous ARP for %s", n2.Index, vip4)
	}
	if err := n1.Restore(); err != nil {
		b.Fatal(err)
	}
	waitHolders(b, c, []int{1}, wait+5*time.Second, vip4)
	// Let node 2 settle into BACKUP before the next sample.
	time.Sleep(3 * n1.Params.Interval)
	return took, at.Sub(start)
}

// watchGARP reports when n sends its first gratuitous ARP for vip (an ARP
// whose sender address is vip), read from a packet socket on n's link
// that sees outgoing frames too; the zero time if none came in timeout.
// The socket takes every protocol: a frame sent on a packet socket with
// protocol 0 (as engine/netif sends GARPs) reaches only ETH_P_ALL taps.
func watchGARP(b *testing.B, n *lab.Node, vip netip.Addr, timeout time.Duration) <-chan time.Time {
	b.Helper()
	link, err := n.Handle().LinkByName(n.Link)
	if err != nil {
		b.Fatal(err)
	}
	var fd int
	proto := int(htons(unix.ETH_P_ALL))
	if err := n.Do(func() error {
		var err error
		if fd, err = unix.Socket(unix.AF_PACKET, unix.SOCK_RAW, proto); err != nil {
			return err
		}
		return unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_ALL), Ifindex: link.Attrs().Index})
	}); err != nil {
		b.Fatal(err)
	}
	tv := unix.NsecToTimeval(int64(timeout))
	_ = unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv)
	out := make(chan time.Time, 1)
	want := vip.As4()
	go func() {
		defer unix.Close(fd)
		buf := make([]byte, 128)
		deadline := time.Now().Add(timeout)
		for time.Now().Before(deadline) {
			k, _, err := unix.Recvfrom(fd, buf, 0)
			now := time.Now()
			if err == unix.EINTR { // the Go runtime's preemption signal
				continue
			}
			if err != nil {
				break
			}
			// Ethernet (14, type 0x0806) + ARP: the sender protocol address
			// is at 14+14.
			if k >= 42 && buf[12] == 0x08 && buf[13] == 0x06 && [4]byte(buf[28:32]) == want {
				out <- now
				return
			}
		}
		out <- time.Time{}
	}()
	return out
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }

// BenchmarkFootprint measures CPU (user+system time over a window, as a
// percentage of one core) and RSS of master and backup with 1, 50 and 250
// instances advertising every 1 s and every 0.05 s (DESIGN §9), keepwatch
// beside keepalived in the same run, and prints both and their ratios.
func BenchmarkFootprint(b *testing.B) {
	requireBench(b)
	for _, c := range []struct {
		instances int
		interval  time.Duration
	}{
		{1, time.Second}, {50, time.Second}, {250, time.Second},
		{1, 50 * time.Millisecond}, {50, 50 * time.Millisecond}, {250, 50 * time.Millisecond},
	} {
		b.Run(fmt.Sprintf("%d_%gs", c.instances, c.interval.Seconds()), func(b *testing.B) {
			footprint(b, c.instances, c.interval)
		})
	}
}

func footprint(b *testing.B, instances int, interval time.Duration) {
	p := lab.Params{Instances: instances, Interval: interval}
	kw := newCluster(b, "bpkw", lab.Options{Nodes: 2, Params: p})
	ka := newCluster(b, "bpka", lab.Options{Nodes: 2, Params: p, Keepalived: []int{1, 2}})
	first := netip.AddrFrom4([4]byte{198, 51, 100, 1})
	last := netip.AddrFrom4([4]byte{198, 51, 100, byte(instances)})
	for _, c := range []*lab.Cluster{kw, ka} {
		waitHolders(b, c, []int{1}, 30*time.Second+10*interval, first, last)
	}
	time.Sleep(2 * time.Second) // past startup and the GARP bursts
	// A light load is a few clock ticks a second (USER_HZ 100): measure
	// longer so that the ratio means something.
	window := 5 * time.Second
	if instances*int(time.Second/interval) < 1000 {
		window = 10 * time.Second
	}
	for range b.N {
		// The masters' adverts are counted on the wire at each backup, not
		// read from /metrics: a scrape of 250 instances' series would add
		// its own CPU and heap to the keepwatch figures only.
		kwCount := countAdverts(b, kw.Node(2), kw.Node(1).IPv4.Addr())
		kaCount := countAdverts(b, ka.Node(2), ka.Node(1).IPv4.Addr())
		t0 := time.Now()
		var wg sync.WaitGroup
		res := map[string]usage{}
		var mu sync.Mutex
		for name, n := range map[string]*lab.Node{"keepwatch-master": kw.Node(1), "keepwatch-backup": kw.Node(2),
			"keepalived-master": ka.Node(1), "keepalived-backup": ka.Node(2)} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				u, err := measure(n.Pids(), window)
				if err != nil {
					b.Error(err)
				}
				mu.Lock()
				res[name] = u
				mu.Unlock()
			}()
		}
		wg.Wait()
		// Both masters really advertised: instances / interval adverts a
		// second (less one advert per instance for the window's edges).
		elapsed := time.Since(t0).Seconds()
		want := float64(instances) * (elapsed/interval.Seconds() - 1)
		for _, c := range []struct {
			impl  string
			count func() int
		}{{"keepwatch", kwCount}, {"keepalived", kaCount}} {
			sent := float64(c.count())
			b.ReportMetric(sent/elapsed, c.impl+"-master-adverts/s")
			if sent < 0.9*want {
				b.Errorf("%s master: %.0f adverts reached the backup in %.1f s, want about %.0f", c.impl, sent, elapsed, want)
			}
		}
		for _, role := range []string{"master", "backup"} {
			k, a := res["keepwatch-"+role], res["keepalived-"+role]
			b.ReportMetric(k.cpu, "keepwatch-"+role+"-cpu%")
			b.ReportMetric(a.cpu, "keepalived-"+role+"-cpu%")
			b.ReportMetric(k.rss/(1<<20), "keepwatch-"+role+"-rss-MiB")
			b.ReportMetric(a.rss/(1<<20), "keepalived-"+role+"-rss-MiB")
			// A daemon idle to the clock tick has no CPU ratio.
			cpuRatio := "n/a"
			if a.cpu > 0 {
				b.ReportMetric(k.cpu/a.cpu, "cpu-ratio-"+role)
				cpuRatio = fmt.Sprintf("%.2f", k.cpu/a.cpu)
			}
			b.ReportMetric(k.rss/a.rss, "rss-ratio-"+role)
			b.Logf("%d instances at %g s, %s (%v window): keepwatch cpu %.2f%% rss %.1f MiB; keepalived cpu %.2f%% rss %.1f MiB; ratio cpu %s rss %.2f",
				instances, interval.Seconds(), role, window, k.cpu, k.rss/(1<<20), a.cpu, a.rss/(1<<20), cpuRatio, k.rss/a.rss)
		}
	}
	// Both masters kept every VIP: the numbers are of a working cluster.
	for _, c := range []*lab.Cluster{kw, ka} {
		waitHolders(b, c, []int{1}, time.Second, first, last)
	}
}

type usage struct {
	cpu float64 // percent of one core
	rss float64 // bytes
}

// measure sums the processes' CPU time over window (from /proc/PID/stat)
// and their resident set size at the end (VmRSS, /proc/PID/status).
func measure(pids []int, window time.Duration) (usage, error) {
	if len(pids) == 0 {
		return usage{}, fmt.Errorf("no process")
	}
	t0, err := cpuTicks(pids)
	if err != nil {
		return usage{}, err
	}
	start := time.Now()
	time.Sleep(window)
	t1, err := cpuTicks(pids)
	if err != nil {
		return usage{}, err
	}
	elapsed := time.Since(start).Seconds()
	// USER_HZ is 100 on Linux.
	u := usage{cpu: float64(t1-t0) / 100 / elapsed * 100}
	for _, pid := range pids {
		b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "status"))
		if err != nil {
			return u, err
		}
		for _, l := range strings.Split(string(b), "\n") {
			if f := strings.Fields(l); len(f) >= 2 && f[0] == "VmRSS:" {
				kb, _ := strconv.ParseFloat(f[1], 64)
				u.rss += kb * 1024
			}
		}
	}
	return u, nil
}

func cpuTicks(pids []int) (uint64, error) {
	var sum uint64
	for _, pid := range pids {
		b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
		if err != nil {
			return 0, err
		}
		// Fields after the parenthesised command: state is field 3; utime
		// and stime are fields 14 and 15.
		s := string(b)
		f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
		if len(f) < 13 {
			return 0, fmt.Errorf("/proc/%d/stat: short", pid)
		}
		ut, _ := strconv.ParseUint(f[11], 10, 64)
		st, _ := strconv.ParseUint(f[12], 10, 64)
		sum += ut + st
	}
	return sum, nil
}

func median(d []time.Duration) time.Duration {
	if len(d) == 0 {
		return 0
	}
	s := slices.Clone(d)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func rounded(d []time.Duration) []time.Duration {
	out := make([]time.Duration, len(d))
	for i, v := range d {
		out[i] = v.Round(time.Millisecond)
	}
	return out
}

// countAdverts counts the VRRP packets from src that reach n, from now
// until the returned function is called: a raw socket in n's namespace
// gets a copy of every advert the daemon there receives.
func countAdverts(b *testing.B, n *lab.Node, src netip.Addr) func() int {
	b.Helper()
	var pc net.PacketConn
	if err := n.Do(func() error {
		var err error
		pc, err = net.ListenPacket("ip4:112", "0.0.0.0")
		return err
	}); err != nil {
		b.Fatal(err)
	}
	count := make(chan int, 1)
	stop := make(chan struct{})
	go func() {
		k := 0
		buf := make([]byte, 1500)
		for {
			select {
			case <-stop:
				pc.Close()
				count <- k
				return
			default:
			}
			_ = pc.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
			_, from, err := pc.ReadFrom(buf)
			if ip, ok := from.(*net.IPAddr); err == nil && ok && ip.IP.Equal(src.AsSlice()) {
				k++
			}
		}
	}()
	return func() int { close(stop); return <-count }
}

// awaitAdvert returns when n receives a VRRP packet from src: a raw socket
// in n's namespace gets a copy of every advert the daemon there receives.
func awaitAdvert(b *testing.B, n *lab.Node, src netip.Addr, timeout time.Duration) {
	b.Helper()
	var pc net.PacketConn
	if err := n.Do(func() error {
		var err error
		pc, err = net.ListenPacket("ip4:112", "0.0.0.0")
		return err
	}); err != nil {
		b.Fatal(err)
	}
	defer pc.Close()
	deadline := time.Now().Add(timeout)
	_ = pc.SetReadDeadline(deadline)
	buf := make([]byte, 1500)
	for {
		_, from, err := pc.ReadFrom(buf)
		if err != nil {
			b.Fatalf("node %d: no advert from %s: %v", n.Index, src, err)
		}
		if ip, ok := from.(*net.IPAddr); ok && ip.IP.Equal(src.AsSlice()) {
			return
		}
	}
}
