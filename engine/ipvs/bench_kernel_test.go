package ipvs

import (
	"bytes"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/keepwatch/keepwatch/deploy/kernel/vm"
)

// BenchmarkKernelIPVS times IPVS programming in the VM (DESIGN.md §9):
// 100 services × 100 real servers from an empty table, then one weight
// changed, by the reconciler and by ipvsadm -R (what ipvsadm-restore runs)
// on the same table in the same kernel, and prints the medians and ratios.
// The guest clock counts instructions (vm.Deterministic), so the figures are
// in guest time and do not depend on how busy the host is.
// Run it with: go test -run '^$' -bench BenchmarkKernelIPVS -benchtime 1x ./engine/ipvs
func BenchmarkKernelIPVS(b *testing.B) {
	if os.Getenv("KEEPWATCH_VM") == "bench" {
		kernelBench(b)
		return
	}
	if os.Getenv("KEEPWATCH_VM") != "" {
		return
	}
	out, ok := bootSelf(b, "bench", "-test.run=^$ -test.bench=^BenchmarkKernelIPVS$ -test.benchtime=1x", 10*time.Minute, vm.Deterministic...)
	if !ok {
		b.Fatalf("benchmark failed in the VM:\n%s", out)
	}
	re := regexp.MustCompile(`(?m)^KWBENCH (\S+) (\S+)`)
	for _, m := range re.FindAllStringSubmatch(out, -1) {
		fmt.Printf("ipvs %s %s\n", m[1], m[2])
		if v, err := strconv.ParseFloat(m[2], 64); err == nil {
			b.ReportMetric(v, m[1])
		}
	}
	if len(re.FindAllString(out, -1)) == 0 {
		b.Fatalf("no KWBENCH lines in the guest output:\n%s", out)
	}
}

// benchTable is services 192.0.2.1-100:80 each with real servers
// 198.51.100.1-100:8080, direct routing, weight 1.
func benchTable(nsvc, ndst int) []Service {
	out := make([]Service, nsvc)
	for i := range out {
		s := Service{Key: AddrKey(netip.AddrFrom4([4]byte{192, 0, 2, byte(1 + i)}), 80, TCP), Scheduler: WeightedRoundRobin,
			Destinations: make([]Destination, ndst)}
		for j := range s.Destinations {
			s.Destinations[j] = Destination{Addr: netip.AddrFrom4([4]byte{198, 51, 100, byte(1 + j)}), Port: 8080, Weight: 1, Forward: DR}
		}
		out[i] = s
	}
	return out
}

func restoreRules(table []Service) []byte {
	var buf bytes.Buffer
	for _, s := range table {
		fmt.Fprintf(&buf, "-A -t %s -s %s\n", netip.AddrPortFrom(s.Addr, s.Port), s.Scheduler)
		for _, d := range s.Destinations {
			fmt.Fprintf(&buf, "-a -t %s -r %s -g -w %d\n", netip.AddrPortFrom(s.Addr, s.Port), d.AddrPort(), d.Weight)
		}
	}
	return buf.Bytes()
}

func median(ds []time.Duration) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)/2]
}

// inFreshNetns runs f on a thread of its own in a new network namespace,
// so it sees an IPVS table that is empty in every way: deleted destinations
// linger in a per-namespace trash list for minutes (ip_vs_ctl.c,
// __ip_vs_del_dest) and every later add scans it, which would charge one
// contender for the other's leftovers. Children f starts inherit the
// namespace.
func inFreshNetns(f func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread dies with the goroutine
		if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
			errc <- fmt.Errorf("unshare: %w", err)
			return
		}
		// The kernel takes real servers only at unicast or local
		// addresses (ip_vs_new_dest): give the namespace a route to them.
		for _, args := range [][]string{{"link", "add", "kw0", "type", "dummy"}, {"link", "set", "kw0", "up"},
			{"addr", "add", "198.51.100.254/24", "dev", "kw0"}} {
			if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
				errc <- fmt.Errorf("ip %v: %v: %s", args, err, out)
				return
			}
		}
		errc <- f()
	}()
	return <-errc
}

func kernelBench(b *testing.B) {
	const nsvc, ndst, rounds = 100, 100, 3
	table := benchTable(nsvc, ndst)
	changed := benchTable(nsvc, ndst)
	changed[nsvc/2].Destinations[ndst/2].Weight = 5
	rules := restoreRules(table)
	edit := []string{"-e", "-t", netip.AddrPortFrom(changed[nsvc/2].Addr, 80).String(),
		"-r", changed[nsvc/2].Destinations[ndst/2].AddrPort().String(), "-g", "-w", "5"}
	check := func(h *Handle, who string) error {
		got, err := Read(h, nil)
		if err != nil || len(got) != nsvc || destinationCount(got) != nsvc*ndst {
			return fmt.Errorf("after %s the kernel has %d services, %d destinations (%v)", who, len(got), destinationCount(got), err)
		}
		return nil
	}

	var oursFull, oursOne, oursOneSet, theirsFull, theirsOne []time.Duration
	for range rounds {
		err := inFreshNetns(func() error {
			h, err := Open(nil)
			if err != nil {
				return err
			}
			defer h.Close()
			r := NewReconciler(h, nil)
			t0 := time.Now()
			if _, err := r.Set(table); err != nil {
				return err
			}
			oursFull = append(oursFull, time.Since(t0))
			if err := check(h, "Set"); err != nil {
				return err
			}
			// One real server's weight changes: the agent re-evaluates that
			// virtual server and hands it to Update.
			t0 = time.Now()
			rep, err := r.Update(changed[nsvc/2])
			if err != nil || len(rep.Ops) != 1 {
				return fmt.Errorf("weight change: %v %v", rep.Ops, err)
			}
			oursOne = append(oursOne, time.Since(t0))
			// The same through Set of the whole table (back to weight 1).
			t0 = time.Now()
			if rep, err = r.Set(table); err != nil || len(rep.Ops) != 1 {
				return fmt.Errorf("weight change by Set: %v %v", rep.Ops, err)
			}
			oursOneSet = append(oursOneSet, time.Since(t0))
			return nil
		})
		if err != nil {
			b.Fatal(err)
		}
		err = inFreshNetns(func() error {
			cmd := exec.Command("ipvsadm", "-R")
			cmd.Stdin = bytes.NewReader(rules)
			t0 := time.Now()
			if out, err := cmd.CombinedOutput(); err != nil {
				return fmt.Errorf("ipvsadm -R: %v: %s", err, out)
			}
			theirsFull = append(theirsFull, time.Since(t0))
			t0 = time.Now()
			if out, err := exec.Command("ipvsadm", edit...).CombinedOutput(); err != nil {
				return fmt.Errorf("ipvsadm -e: %v: %s", err, out)
			}
			theirsOne = append(theirsOne, time.Since(t0))
			h, err := Open(nil)
			if err != nil {
				return err
			}
			defer h.Close()
			return check(h, "ipvsadm -R")
		})
		if err != nil {
			b.Fatal(err)
		}
	}
	ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
	of, tf, oo, to := median(oursFull), median(theirsFull), median(oursOne), median(theirsOne)
	fmt.Printf("KWBENCH full_keepwatch_ms %.2f\n", ms(of))
	fmt.Printf("KWBENCH full_ipvsadm_restore_ms %.2f\n", ms(tf))
	fmt.Printf("KWBENCH full_ratio %.3f\n", ms(of)/ms(tf))
	fmt.Printf("KWBENCH one_weight_keepwatch_ms %.3f\n", ms(oo))
	fmt.Printf("KWBENCH one_weight_set_keepwatch_ms %.3f\n", ms(median(oursOneSet)))
	fmt.Printf("KWBENCH one_weight_ipvsadm_ms %.3f\n", ms(to))
	fmt.Printf("KWBENCH one_weight_ratio %.3f\n", ms(oo)/ms(to))
}
