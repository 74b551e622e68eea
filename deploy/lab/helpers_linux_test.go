package lab_test

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keepwatch/keepwatch/deploy/lab"
	"github.com/keepwatch/keepwatch/engine/netif/nskit"
	"github.com/keepwatch/keepwatch/engine/netif/nskit/nskittest"
)

var (
	vip4 = lab.VIP4.Addr()
	vip6 = lab.VIP6.Addr()
)

func TestMain(m *testing.M) {
	code := m.Run()
	if binDir != "" {
		os.RemoveAll(binDir)
	}
	os.Exit(code)
}

var (
	binOnce sync.Once
	binDir  string
	binPath string
	binErr  error
)

// keepwatchBinary builds bin/keepwatch once per test run (KEEPWATCH_BIN
// overrides it): the lab runs the real agent, as `keepwatch lab` does.
func keepwatchBinary(t testing.TB) string {
	t.Helper()
	binOnce.Do(func() {
		if p := os.Getenv("KEEPWATCH_BIN"); p != "" {
			binPath = p
			return
		}
		// Labs left by a crashed run are removed first.
		_, _ = nskit.Sweep()
		binDir, binErr = os.MkdirTemp("", "kwlab-bin-")
		if binErr != nil {
			return
		}
		binPath = filepath.Join(binDir, "keepwatch")
		cmd := exec.Command("go", "build", "-o", binPath, "github.com/keepwatch/keepwatch/cmd/keepwatch")
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			binErr = fmt.Errorf("building keepwatch: %v\n%s", err, out)
		}
	})
	if binErr != nil {
		t.Fatal(binErr)
	}
	return binPath
}

// newCluster builds a cluster for the test (root, never skipped in CI) and
// removes it when the test ends, printing the nodes' logs if it failed.
func newCluster(t testing.TB, name string, o lab.Options) *lab.Cluster {
	t.Helper()
	tools := []string{"nft", "tcpdump"}
	if len(o.Keepalived) > 0 {
		tools = append(tools, "keepalived")
	}
	nskittest.Require(t, tools...)
	if o.Binary == "" && len(o.Keepalived) < max(o.Nodes, 3) {
		o.Binary = keepwatchBinary(t)
	}
	o.Name = name
	if o.Dir == "" {
		o.Dir = t.TempDir()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	c, err := lab.New(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			for _, n := range c.Nodes {
				b, _ := os.ReadFile(n.Config)
				t.Logf("node %d (%s) config:\n%s\nlog:\n%s%s", n.Index, n.Impl, b, lastLines(n.Log(), 60), vrrpCounters(n))
			}
		}
		if err := c.Close(); err != nil {
			t.Errorf("closing cluster: %v", err)
		}
	})
	return c
}

func lastLines(s string, n int) string {
	l := strings.Split(s, "\n")
	if len(l) > n {
		l = l[len(l)-n:]
	}
	return strings.Join(l, "\n")
}

// waitHolders waits until exactly the nodes want hold every vip.
func waitHolders(t testing.TB, c *lab.Cluster, want []int, timeout time.Duration, vips ...netip.Addr) {
	t.Helper()
	for _, v := range vips {
		if err := c.WaitHolders(context.Background(), v, want, timeout); err != nil {
			t.Fatal(err)
		}
	}
}

// metric reads one metric sum from a keepwatch node.
func metric(t testing.TB, n *lab.Node, name string, labels ...string) float64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	v, err := n.Metric(ctx, name, labels...)
	if err != nil {
		t.Fatalf("node %d: %v", n.Index, err)
	}
	return v
}

// instance returns a node's view of one instance.
func instance(t testing.TB, n *lab.Node, name string) lab.InstanceState {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for _, s := range n.Instances(ctx, true) {
		if s.Name == name {
			return s
		}
	}
	t.Fatalf("node %d has no instance %s", n.Index, name)
	return lab.InstanceState{}
}

// waitState waits for a node's instance to reach a state.
func waitState(t testing.TB, n *lab.Node, name, state string, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	got := ""
	for time.Now().Before(deadline) {
		if got = instance(t, n, name).State; got == state {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("node %d %s: state %q after %s, want %q", n.Index, name, got, timeout, state)
}

// checkOverlaps fails if two nodes held a VIP at once for longer than limit.
func checkOverlaps(t testing.TB, tl lab.Timeline, limit time.Duration) {
	t.Helper()
	for _, o := range tl.Overlaps() {
		if o.Duration() > limit {
			t.Errorf("split brain longer than %s: %s\n%s", limit, o, tl.Format())
		}
	}
}

// timeTo measures from now until vip appears on n (by netlink event).
func timeTo(t testing.TB, n *lab.Node, vip netip.Addr, present bool, start time.Time, timeout time.Duration) time.Duration {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	at, err := n.WaitAddr(ctx, vip, present)
	if err != nil {
		t.Fatal(err)
	}
	return at.Sub(start)
}

// vrrpCounters lists a keepwatch node's non-zero drop counters and its
// advert gap histogram, for failure reports.
func vrrpCounters(n *lab.Node) string {
	if n.Impl != lab.Keepwatch || !n.Running() {
		return ""
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	b, err := n.Fetch(ctx, "/metrics")
	if err != nil {
		return ""
	}
	var out []string
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, "#") || strings.HasSuffix(l, " 0") {
			continue
		}
		if strings.Contains(l, "dropped_total") || strings.Contains(l, "gap_seconds_bucket") || strings.Contains(l, "transitions_total") {
			out = append(out, l)
		}
	}
	return "\nmetrics:\n" + strings.Join(out, "\n")
}
