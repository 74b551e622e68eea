package lab_test

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/vishvananda/netlink"

	"github.com/keepwatch/keepwatch/deploy/lab"
)

// sigJSON is keepalived's SIGJSON (SIGRTMIN+2 with glibc's SIGRTMIN, 34).
const sigJSON = syscall.Signal(36)

// Signals at any moment (issue 10 §5): HUP, TERM, INT, USR1, USR2 and
// SIGJSON sent to a real agent right after exec, during the reload of a
// large config, and right after SIGTERM, many times over. Each run must end
// without a panic, with exit status 0 (a TERM stops the agent cleanly), and
// leave none of its VIPs on the link. The one exception is a signal
// that lands before the agent has installed its handlers (the first
// milliseconds: `ip netns exec` before it execs the agent, the Go runtime's
// start, package initialisation): the process then dies of it (HUP, TERM,
// INT, and in ip also USR1 and USR2), with no output and, having added
// nothing, nothing to leave behind.
func TestSignalsAnyMoment(t *testing.T) {
	t.Parallel()
	// A lone node: every instance becomes master and holds its VIP, so a
	// VIP left behind by a shutdown that went wrong shows on the link.
	small := lab.Params{Instances: 20}
	large := lab.Params{Instances: 150}
	c := newCluster(t, "signals", lab.Options{Nodes: 1, Params: small, Stopped: []int{1}})
	n := c.Node(1)
	bin := keepwatchBinary(t)
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 10))
	t.Logf("seed time %s", time.Now().Format(time.RFC3339Nano))
	sigSet := []syscall.Signal{syscall.SIGHUP, syscall.SIGUSR1, syscall.SIGUSR2, sigJSON, syscall.SIGHUP, syscall.SIGTERM, syscall.SIGINT}
	pick := func() syscall.Signal { return sigSet[rng.IntN(len(sigSet))] }
	jitter := func(max time.Duration) time.Duration { return time.Duration(rng.Int64N(int64(max))) }

	type run struct {
		name string
		// script acts on the running process; the harness then sends TERM
		// (again) and waits for the exit.
		script func(r *agentRun)
	}
	runs := []run{
		{"after-exec", func(r *agentRun) {
			time.Sleep(jitter(400 * time.Millisecond))
			for range 1 + rng.IntN(4) {
				r.signal(pick())
				time.Sleep(jitter(20 * time.Millisecond))
			}
		}},
		{"mid-reload", func(r *agentRun) {
			r.waitReady(t)
			time.Sleep(jitter(600 * time.Millisecond)) // sometimes master already
			p := large
			if r.i%2 == 1 {
				p = lab.Params{Instances: 60, Interval: 200 * time.Millisecond}
			}
			if err := n.Render(p); err != nil {
				t.Error(err)
			}
			r.signal(syscall.SIGHUP)
			time.Sleep(jitter(30 * time.Millisecond))
			for range 1 + rng.IntN(4) {
				r.signal(pick())
				time.Sleep(jitter(10 * time.Millisecond))
			}
		}},
		{"after-term", func(r *agentRun) {
			r.waitReady(t)
			time.Sleep(jitter(600 * time.Millisecond))
			r.signal(syscall.SIGTERM)
			time.Sleep(jitter(5 * time.Millisecond))
			for range 2 + rng.IntN(6) {
				r.signal(pick())
				time.Sleep(jitter(5 * time.Millisecond))
			}
		}},
	}
	rounds := 8
	early := 0
	for round := range rounds {
		for _, rc := range runs {
			if err := n.Render(small); err != nil {
				t.Fatal(err)
			}
			r := startAgent(t, n, bin, round)
			rc.script(r)
			r.signal(syscall.SIGTERM)
			if r.check(t, rc.name) {
				early++
			}
			if t.Failed() {
				return
			}
		}
	}
	t.Logf("%d runs per case (%d in all), each checked for a panic, its exit status and VIPs left behind; %d early deaths",
		rounds, rounds*len(runs), early)
}

// agentRun is one keepwatch process on a node, started without waiting.
type agentRun struct {
	i    int
	n    *lab.Node
	cmd  *exec.Cmd
	out  *lockedBuffer
	done chan struct{}
	sent []string
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func startAgent(t *testing.T, n *lab.Node, bin string, i int) *agentRun {
	t.Helper()
	out := &lockedBuffer{}
	cmd := n.Node.Command(bin, "run", "-f", n.Config, "--web.listen-address", fmt.Sprintf(":%d", lab.HTTPPort))
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	p, err := n.Node.Start(cmd)
	if err != nil {
		t.Fatal(err)
	}
	r := &agentRun{i: i, n: n, cmd: cmd, out: out, done: make(chan struct{})}
	go func() { <-p.Done(); close(r.done) }()
	return r
}

func (r *agentRun) signal(sig syscall.Signal) {
	select {
	case <-r.done:
		return
	default:
	}
	r.sent = append(r.sent, sig.String())
	_ = r.cmd.Process.Signal(sig)
}

// waitReady waits until the agent answers /-/ready (or has exited).
func (r *agentRun) waitReady(t *testing.T) {
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-r.done:
			return
		default:
		}
		resp, err := r.n.HTTPClient().Get(r.n.URL("/-/ready"))
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Errorf("run %d: agent not ready after 20s:\n%s", r.i, r.out.String())
}

// check waits for the exit and asserts what it must leave: no panic, exit
// status 0 (or death by an early HUP/TERM with no output, reported as
// early), no VIP.
func (r *agentRun) check(t *testing.T, name string) (early bool) {
	t.Helper()
	select {
	case <-r.done:
	case <-time.After(20 * time.Second):
		_ = r.cmd.Process.Kill()
		<-r.done
		t.Errorf("%s run %d: still running 20s after SIGTERM (signals %v):\n%s", name, r.i, r.sent, lastLines(r.out.String(), 40))
	}
	out := r.out.String()
	for _, bad := range []string{"panic:", "fatal error:", "goroutine "} {
		if strings.Contains(out, bad) {
			t.Errorf("%s run %d: %q in the output (signals %v):\n%s", name, r.i, bad, r.sent, out)
			break
		}
	}
	ws := r.cmd.ProcessState.Sys().(syscall.WaitStatus)
	switch {
	case ws.Exited() && ws.ExitStatus() == 0:
	case ws.Signaled() && out == "":
		// Before the handlers: in `ip netns exec` (where USR1 and USR2 kill
		// too) or the Go runtime's start; nothing had started.
		early = true
	default:
		t.Errorf("%s run %d: %s, want exit status 0 (signals %v):\n%s", name, r.i, r.cmd.ProcessState, r.sent, lastLines(out, 40))
	}
	if left := labVIPs(t, r.n); len(left) > 0 {
		t.Errorf("%s run %d: VIPs left on the link after exit: %v (signals %v):\n%s", name, r.i, left, r.sent, lastLines(out, 40))
		// Clean up so the next run starts from an empty link.
		for _, a := range left {
			_ = r.n.Handle().AddrDel(mustLink(t, r.n), &netlink.Addr{IPNet: prefixIPNet(a)})
		}
	}
	return early
}

// labVIPs lists the addresses on the node's link from the lab's VIP ranges
// (198.51.100.0/24 for Params.Instances, and VIP4/VIP6).
func labVIPs(t *testing.T, n *lab.Node) []netip.Prefix {
	t.Helper()
	addrs, err := n.Handle().AddrList(mustLink(t, n), netlink.FAMILY_ALL)
	if err != nil {
		t.Fatal(err)
	}
	var out []netip.Prefix
	r := netip.MustParsePrefix("198.51.100.0/24")
	for _, a := range addrs {
		ip, ok := netip.AddrFromSlice(a.IP)
		if !ok {
			continue
		}
		ip = ip.Unmap()
		if r.Contains(ip) || ip == vip4 || ip == vip6 {
			ones, _ := a.Mask.Size()
			out = append(out, netip.PrefixFrom(ip, ones))
		}
	}
	return out
}

func mustLink(t *testing.T, n *lab.Node) netlink.Link {
	t.Helper()
	l, err := n.Handle().LinkByName(n.Link)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func prefixIPNet(p netip.Prefix) *net.IPNet {
	return &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}
}
