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
		// Issue 12 asks for the median of at least ten cuts each.
		{"v3_0.1s", lab.Params{Family: 4}, 10},
		{"v2_1s", lab.Params{Family: 4, Version: 2, Interval: time.Second}, 10},
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
