package lab

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"syscall"
	"time"

	"github.com/vishvananda/netlink"

	"github.com/keepwatch/keepwatch/engine/netif/nskit"
)

// Impl is what runs on a node.
type Impl int

const (
	Keepwatch  Impl = iota // bin/keepwatch run
	Keepalived             // the Debian keepalived
)

func (i Impl) String() string {
	if i == Keepalived {
		return "keepalived"
	}
	return "keepwatch"
}

// HTTPPort is where each keepwatch node serves /metrics and /api/v1/status,
// inside its own namespace.
const HTTPPort = 9759

// DefaultPriorities are the nodes' priorities unless Options say otherwise.
var DefaultPriorities = []int{150, 100, 50}

// Options describe a cluster.
type Options struct {
	// Name labels the namespaces (1-10 lowercase letters or digits), so
	// parallel tests never collide; empty is "lab".
	Name  string
	Nodes int // 3 when zero
	// Priorities per node (1-based order); missing entries count down from
	// the last by 10.
	Priorities []int
	// Keepalived lists the (1-based) nodes that run the Debian keepalived.
	Keepalived []int
	// Template is a bundled template's name (DefaultTemplate when empty);
	// TemplateText, when set, is used instead.
	Template     string
	TemplateText string
	Params       Params
	// NodeParams, if set, adjusts each node's copy of Params.
	NodeParams func(node int, p *Params)
	// Binary is the keepwatch executable; os.Executable() when empty.
	Binary string
	// KeepalivedBinary is the keepalived executable ("keepalived" in PATH).
	KeepalivedBinary string
	// Dir holds configs, logs and pid files; a new temporary directory,
	// removed by Close, when empty.
	Dir string
	// Stopped lists nodes that New configures but does not start.
	Stopped []int
	// Log, if set, receives every node's output, each line prefixed by the
	// node's number (it also goes to DIR/nN/node.log).
	Log io.Writer
	// Nice is the daemons' nice value; 0 means DefaultNice.
	Nice int
}

// DefaultNice runs the daemons ahead of whatever else loads the machine
// (builds, fuzzers, other tests): at advert_int 0.1 s a backup declares
// the master dead after 0.36 s, and a daemon kept off the CPU that long
// makes a split brain the protocol did not cause. Both keepwatch and
// keepalived get the same (keepalived can raise its own with vrrp_priority).
const DefaultNice = -15

// Cluster is a VRRP cluster in network namespaces: an nskit lab whose nodes
// each run a keepwatch agent or keepalived with a config rendered from a
// template.
type Cluster struct {
	Lab   *nskit.Lab
	Nodes []*Node
	Dir   string

	opts    Options
	tmpl    *Template
	ownDir  bool
	binary  string
	kaBin   string
	started time.Time

	closeOnce sync.Once
	closeErr  error
}

// New builds the namespaces, renders each node's config and starts the
// nodes (except Options.Stopped), waiting until each is up. On error
// everything created is removed.
func New(ctx context.Context, o Options) (*Cluster, error) {
	if o.Nodes == 0 {
		o.Nodes = 3
	}
	if o.Template == "" {
		o.Template = DefaultTemplate
	}
	if o.KeepalivedBinary == "" {
		o.KeepalivedBinary = "keepalived"
	}
	tmpl, err := ParseTemplate(o.Template, o.TemplateText)
	if err != nil {
		return nil, err
	}
	c := &Cluster{opts: o, tmpl: tmpl, binary: o.Binary, kaBin: o.KeepalivedBinary, started: time.Now()}
	if c.binary == "" && len(o.Keepalived) < o.Nodes {
		if c.binary, err = os.Executable(); err != nil {
			return nil, fmt.Errorf("lab: finding the keepwatch binary: %w", err)
		}
	}
	c.Dir = o.Dir
	if c.Dir == "" {
		if c.Dir, err = os.MkdirTemp("", "keepwatch-lab-"); err != nil {
			return nil, err
		}
		c.ownDir = true
	}
	if c.Lab, err = nskit.New(nskit.Options{Name: o.Name, Nodes: o.Nodes}); err != nil {
		c.removeDir()
		return nil, err
	}
	if err := c.build(ctx); err != nil {
		_ = c.Close()
		return nil, err
	}
	return c, nil
}

func (c *Cluster) build(ctx context.Context) error {
	o := c.opts
	prio := 0
	for i, ln := range c.Lab.Nodes {
		idx := i + 1
		switch {
		case i < len(o.Priorities):
			prio = o.Priorities[i]
		case i < len(DefaultPriorities) && len(o.Priorities) == 0:
			prio = DefaultPriorities[i]
		default:
			prio = max(prio-10, 1)
		}
		n := &Node{Node: ln, Priority: prio, Params: o.Params, c: c, Dir: filepath.Join(c.Dir, fmt.Sprintf("n%d", idx))}
		if slices.Contains(o.Keepalived, idx) {
			n.Impl = Keepalived
		}
		if o.NodeParams != nil {
			o.NodeParams(idx, &n.Params)
		}
		n.Params = n.Params.withDefaults()
		if err := os.MkdirAll(n.Dir, 0o755); err != nil {
			return err
		}
		n.Config = filepath.Join(n.Dir, "keepalived.conf")
		n.log = newLogBuffer(idx, o.Log, filepath.Join(n.Dir, "node.log"))
		n.client = &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{DialContext: n.DialContext, MaxIdleConnsPerHost: 2}}
		c.Nodes = append(c.Nodes, n)
	}
	if slices.ContainsFunc(c.Nodes, func(n *Node) bool { return n.Params.Instances > 250 }) {
		if err := c.addSecondSegment(); err != nil {
			return err
		}
	}
	for _, n := range c.Nodes {
		if err := n.Render(n.Params); err != nil {
			return err
		}
	}
	// One after the other, in node order (highest priority first by
	// default): fewer startup elections than a simultaneous start.
	for _, n := range c.Nodes {
		if slices.Contains(o.Stopped, n.Index) {
			continue
		}
		if err := n.Start(ctx); err != nil {
			return err
		}
	}
	return nil
}

// addSecondSegment joins every node to a second bridge (nskit AddSegment),
// with Link2Addr on its end: room for 250 more VRIDs per family.
func (c *Cluster) addSecondSegment() error {
	names, err := c.Lab.AddSegment()
	if err != nil {
		return err
	}
	for i, n := range c.Nodes {
		n.Link2 = names[i]
		link, err := n.Handle().LinkByName(n.Link2)
		if err != nil {
			return fmt.Errorf("lab: node %d: %w", n.Index, err)
		}
		p := Link2Addr(n.Index)
		a := &netlink.Addr{IPNet: &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), 32)}}
		if err := n.Handle().AddrAdd(link, a); err != nil {
			return fmt.Errorf("lab: node %d: address on %s: %w", n.Index, n.Link2, err)
		}
	}
	return nil
}

// Node returns the node with the given 1-based index.
func (c *Cluster) Node(i int) *Node { return c.Nodes[i-1] }

// VIPs are the virtual addresses of node 1's config, in instance order.
func (c *Cluster) VIPs() []netip.Prefix {
	var out []netip.Prefix
	for _, in := range c.Nodes[0].instances() {
		out = append(out, in.VIP)
	}
	return out
}

// Holders returns the nodes that have vip on their link, read from each
// node's namespace by netlink: who the network sees as master.
func (c *Cluster) Holders(vip netip.Addr) ([]int, error) {
	var out []int
	for _, n := range c.Nodes {
		ok, err := n.Holds(vip)
		if err != nil {
			return nil, err
		}
		if ok {
			out = append(out, n.Index)
		}
	}
	return out, nil
}

// WaitHolders waits until exactly the nodes want hold vip.
func (c *Cluster) WaitHolders(ctx context.Context, vip netip.Addr, want []int, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var got []int
	for {
		var err error
		got, err = c.Holders(vip)
		if err != nil {
			return err
		}
		if slices.Equal(got, want) {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("lab: %s held by nodes %v after %s, want %v", vip, got, timeout, want)
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// Close stops every node (masters resign) and removes the namespaces and,
// if New created it, the working directory. It is safe to call twice.
func (c *Cluster) Close() error {
	c.closeOnce.Do(func() {
		var errs []error
		var wg sync.WaitGroup
		for _, n := range c.Nodes {
			wg.Add(1)
			go func() { defer wg.Done(); n.client.CloseIdleConnections(); _ = n.Stop() }()
		}
		wg.Wait()
		if c.Lab != nil {
			errs = append(errs, c.Lab.Close())
		}
		for _, n := range c.Nodes {
			n.log.close()
		}
		c.removeDir()
		c.closeErr = errors.Join(errs...)
	})
	return c.closeErr
}

func (c *Cluster) removeDir() {
	if c.ownDir {
		_ = os.RemoveAll(c.Dir)
	}
}

// Apply performs one script step.
func (c *Cluster) Apply(ctx context.Context, s Step) error {
	if s.Node < 1 || s.Node > len(c.Nodes) {
		return fmt.Errorf("lab: no node %d", s.Node)
	}
	n := c.Node(s.Node)
	switch s.Op {
	case OpCut:
		return n.Cut()
	case OpRestore:
		return n.Restore()
	case OpStop:
		return n.Stop()
	case OpStart:
		return n.Start(ctx)
	case OpKill:
		return n.Kill()
	case OpLoss:
		return n.Loss(s.Arg)
	case OpReload:
		return n.Signal(syscall.SIGHUP)
	}
	return fmt.Errorf("lab: unknown operation %q", s.Op)
}
