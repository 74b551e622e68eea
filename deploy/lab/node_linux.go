package lab

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sync"
	"syscall"
	"time"

	"github.com/vishvananda/netlink"

	"github.com/keepwatch/keepwatch/engine/netif/nskit"
)

// Node is one member of the cluster.
type Node struct {
	*nskit.Node
	Impl     Impl
	Priority int
	// Params are this node's template knobs (Render changes them).
	Params Params
	// Dir is the node's working directory; Config its config file.
	Dir, Config string
	// Link2 is the node's interface on the lab's second segment (with
	// Link2Addr), made when Params.Instances is over 250; empty otherwise.
	Link2 string

	c      *Cluster
	log    *logBuffer
	client *http.Client

	mu   sync.Mutex
	proc *nskit.Proc
	cut  bool
	loss int
}

// Cut takes the node's link down from the switch side (carrier loss).
func (n *Node) Cut() error {
	err := n.Node.Cut()
	if err == nil {
		n.mu.Lock()
		n.cut = true
		n.mu.Unlock()
	}
	return err
}

// Restore brings the node's link back after Cut.
func (n *Node) Restore() error {
	err := n.Node.Restore()
	if err == nil {
		n.mu.Lock()
		n.cut = false
		n.mu.Unlock()
	}
	return err
}

// Loss makes the node drop percent of its IP packets, both ways (0 stops).
func (n *Node) Loss(percent int) error {
	err := n.Node.Loss(percent)
	if err == nil {
		n.mu.Lock()
		n.loss = percent
		n.mu.Unlock()
	}
	return err
}

// LinkState reports whether the link is cut and the packet loss set.
func (n *Node) LinkState() (cut bool, lossPercent int) {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.cut, n.loss
}

func (n *Node) instances() []InstanceInfo {
	var v4, v6 []netip.Addr
	for _, m := range n.c.Lab.Nodes {
		v4 = append(v4, m.IPv4.Addr())
		v6 = append(v6, m.IPv6.Addr())
	}
	return instances(n.Params, n.Index, v4, v6)
}

// Render writes the node's config for p (the node keeps p as its Params);
// a running node sees it on Reload or on its next Start.
func (n *Node) Render(p Params) error {
	n.Params = p.withDefaults()
	if n.Params.Instances > 250 && n.Link2 == "" {
		return fmt.Errorf("lab: node %d: %d instances need the second segment, made only by New", n.Index, n.Params.Instances)
	}
	b, err := n.c.tmpl.Render(TemplateData{
		Index: n.Index, Link: n.Link, Link2: n.Link2, IPv4: n.IPv4.Addr(), IPv6: n.IPv6.Addr(), LinkLocal: n.LinkLocal,
		Priority: n.Priority, Keepalived: n.Impl == Keepalived, Dir: n.Dir, P: n.Params, Instances: n.instances(),
	})
	if err != nil {
		return err
	}
	return n.WriteConfig(b)
}

// WriteConfig replaces the node's config file with b, atomically.
func (n *Node) WriteConfig(b []byte) error {
	tmp := n.Config + ".new"
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, n.Config)
}

// Start starts the node's daemon and waits until it is up: keepwatch's
// /-/ready answers, or keepalived's VRRP child is running and has logged
// the initial state (BACKUP, MASTER or FAULT) of every vrrp_instance.
func (n *Node) Start(ctx context.Context) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.proc != nil {
		select {
		case <-n.proc.Done():
		default:
			return fmt.Errorf("lab: node %d already running", n.Index)
		}
	}
	cmd := n.command()
	cmd.Stdout, cmd.Stderr = n.log, n.log
	// If the lab process dies without Close (SIGKILL, a test binary's
	// timeout), its daemons die with it instead of running on in
	// namespaces nskit.Sweep removes later.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
	n.log.started(n.Impl)
	p, err := startHeld(n.Node, cmd)
	if err != nil {
		return err
	}
	n.proc = p
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	for {
		if n.up(ctx) {
			return nil
		}
		select {
		case <-p.Done():
			return fmt.Errorf("lab: node %d (%s) exited at start: %s", n.Index, n.Impl, n.log.tail(20))
		case <-ctx.Done():
			return fmt.Errorf("lab: node %d (%s) not up: %w: %s", n.Index, n.Impl, ctx.Err(), n.log.tail(20))
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// startHeld starts cmd from an OS thread kept for the daemon's whole life.
// Pdeathsig fires when the forking thread ends, not the process: a thread
// that some goroutine locks and then abandons (namespace switching does
// that when it cannot switch back) would otherwise take a daemon with it —
// a soak once saw a node stopped by SIGTERM nobody sent. The goroutine
// stays locked until the daemon has exited; the runtime then ends the
// thread.
func startHeld(node *nskit.Node, cmd *exec.Cmd) (*nskit.Proc, error) {
	type started struct {
		p   *nskit.Proc
		err error
	}
	ch := make(chan started, 1)
	go func() {
		runtime.LockOSThread()
		p, err := node.Start(cmd)
		ch <- started{p, err}
		if err == nil {
			<-p.Done()
		}
	}()
	r := <-ch
	return r.p, r.err
}

func (n *Node) pidFile(name string) string { return filepath.Join(n.Dir, name) }

func (n *Node) command() *exec.Cmd {
	nice := n.c.opts.Nice
	if nice == 0 {
		nice = DefaultNice
	}
	// nice execs the daemon, so the pid nskit records is the daemon's, and
	// every thread it starts inherits the nice value.
	argv := []string{"-n", fmt.Sprint(nice)}
	if n.Impl == Keepalived {
		_ = os.Remove(n.pidFile("vrrp.pid"))
		// -P: the VRRP child only (this kernel may lack IPVS); pid files
		// per node so several keepalived run side by side.
		argv = append(argv, n.c.kaBin, "-P", "-n", "-l", "-D", "-G", "-f", n.Config,
			"-p", n.pidFile("keepalived.pid"), "-r", n.pidFile("vrrp.pid"), "-c", n.pidFile("checkers.pid"))
	} else {
		argv = append(argv, n.c.binary, "run", "-f", n.Config, "--web.listen-address", fmt.Sprintf(":%d", HTTPPort))
	}
	return n.Command("nice", argv...)
}

func (n *Node) up(ctx context.Context) bool {
	if n.Impl == Keepalived {
		// vrrp.pid exists as soon as the VRRP child is forked
		// (keepalived 2.2.7 vrrp_daemon.c start_vrrp_child), before the
		// child has read the config and put its instances in their
		// first state (start_vrrp): 2-110 ms later on a loaded machine.
		// A peer started first with a 100 ms advert_int is master by
		// then (its Master_Down_Interval, RFC 9568 section 6.1, is
		// ~340 ms; keepalived took 100-340 ms to fork the child), so a
		// test reading keepalived's state right after Start saw none.
		// Up is when every configured instance has logged its initial
		// state, as keepwatch's /-/ready means its instances run.
		if _, err := os.Stat(n.pidFile("vrrp.pid")); err != nil {
			return false
		}
		b, err := os.ReadFile(n.Config)
		if err != nil {
			return false
		}
		return n.log.kaLogged(kaInstances(string(b)))
	}
	resp, err := n.get(ctx, "/-/ready")
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

// Running reports whether the node's daemon is running.
func (n *Node) Running() bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.proc == nil {
		return false
	}
	select {
	case <-n.proc.Done():
		return false
	default:
		return true
	}
}

// Pid is the daemon's pid (keepalived: its parent), 0 if it is not running.
func (n *Node) Pid() int {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.proc == nil {
		return 0
	}
	return n.proc.Pid
}

// Pids are the daemon's processes: keepwatch's one, or keepalived's parent
// and VRRP child.
func (n *Node) Pids() []int {
	pid := n.Pid()
	if pid == 0 {
		return nil
	}
	out := []int{pid}
	if n.Impl == Keepalived {
		if b, err := os.ReadFile(n.pidFile("vrrp.pid")); err == nil {
			var child int
			if _, err := fmt.Sscan(string(b), &child); err == nil && child > 0 {
				out = append(out, child)
			}
		}
	}
	return out
}

// Stop sends SIGTERM (a master resigns with priority 0 and removes its
// VIPs) and waits for the daemon to exit. Stopping a stopped node is a no-op.
func (n *Node) Stop() error {
	n.mu.Lock()
	p := n.proc
	n.mu.Unlock()
	if p == nil {
		return nil
	}
	err := p.Stop()
	n.log.stopped()
	return err
}

// Kill ends the daemon with SIGKILL, as a crash would: no resignation, and
// its VIPs stay on the link.
func (n *Node) Kill() error {
	if err := n.Signal(syscall.SIGKILL); err != nil {
		return err
	}
	return n.Stop()
}

// Signal sends sig to the daemon (keepalived: its parent).
func (n *Node) Signal(sig os.Signal) error {
	n.mu.Lock()
	p := n.proc
	n.mu.Unlock()
	if p == nil {
		return os.ErrProcessDone
	}
	return p.Signal(sig)
}

// Reload renders the config for p and sends SIGHUP.
func (n *Node) Reload(p Params) error {
	if err := n.Render(p); err != nil {
		return err
	}
	return n.Signal(syscall.SIGHUP)
}

// Log is the tail of the node's output (every run of its daemon).
func (n *Node) Log() string { return n.log.tail(0) }

// Holds reports whether vip is on the node's link.
func (n *Node) Holds(vip netip.Addr) (bool, error) {
	fam := netlink.FAMILY_V4
	if vip.Is6() {
		fam = netlink.FAMILY_V6
	}
	var addrs []netlink.Addr
	var err error
	// A dump taken while addresses change (1,000 VIPs arriving) comes back
	// interrupted and partial: take it again.
	for range 10 {
		if addrs, err = n.Handle().AddrList(nil, fam); !errors.Is(err, netlink.ErrDumpInterrupted) {
			break
		}
	}
	if err != nil {
		return false, fmt.Errorf("lab: addresses of node %d: %w", n.Index, err)
	}
	for _, a := range addrs {
		if ip, ok := netip.AddrFromSlice(a.IP); ok && ip.Unmap() == vip {
			return true, nil
		}
	}
	return false, nil
}

// WaitAddr waits for vip to be added to (present) or removed from the
// node's link and returns when the kernel reported it, by a netlink
// subscription inside the namespace, so the time is the change's own and
// not a polling period's.
func (n *Node) WaitAddr(ctx context.Context, vip netip.Addr, present bool) (time.Time, error) {
	ch := make(chan netlink.AddrUpdate, 64)
	done := make(chan struct{})
	defer close(done)
	ns := n.NsHandle()
	var subErr error
	var errMu sync.Mutex
	err := netlink.AddrSubscribeWithOptions(ch, done, netlink.AddrSubscribeOptions{
		Namespace: &ns, ListExisting: true,
		ErrorCallback: func(err error) { errMu.Lock(); subErr = err; errMu.Unlock() },
	})
	if err != nil {
		return time.Time{}, fmt.Errorf("lab: address updates of node %d: %w", n.Index, err)
	}
	// ListExisting only reports present addresses: check absence directly.
	if !present {
		if ok, err := n.Holds(vip); err == nil && !ok {
			return time.Now(), nil
		}
	}
	for {
		select {
		case u, ok := <-ch:
			if !ok {
				errMu.Lock()
				defer errMu.Unlock()
				return time.Time{}, fmt.Errorf("lab: address updates of node %d ended: %v", n.Index, subErr)
			}
			now := time.Now()
			if ip, ok := netip.AddrFromSlice(u.LinkAddress.IP); ok && ip.Unmap() == vip && u.NewAddr == present {
				return now, nil
			}
		case <-ctx.Done():
			return time.Time{}, fmt.Errorf("lab: node %d: %s present=%t: %w", n.Index, vip, present, ctx.Err())
		}
	}
}

// URL is the address of a path on the node's HTTP server, as seen from
// inside its namespace (the client of HTTPClient dials there).
func (n *Node) URL(path string) string {
	return fmt.Sprintf("http://127.0.0.1:%d%s", HTTPPort, path)
}

// HTTPClient is a client whose connections start inside the node's namespace.
func (n *Node) HTTPClient() *http.Client { return n.client }

func (n *Node) get(ctx context.Context, path string) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, n.URL(path), nil)
	if err != nil {
		return nil, err
	}
	return n.client.Do(req)
}

// Fetch returns the body of a GET of path on the node's HTTP server.
func (n *Node) Fetch(ctx context.Context, path string) ([]byte, error) {
	if n.Impl != Keepwatch {
		return nil, fmt.Errorf("lab: node %d runs %s: no HTTP API", n.Index, n.Impl)
	}
	resp, err := n.get(ctx, path)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return b, fmt.Errorf("lab: node %d %s: %s", n.Index, path, resp.Status)
	}
	return b, nil
}

// Metric sums the samples of a metric family on the node's /metrics whose
// labels include every name=value pair given.
func (n *Node) Metric(ctx context.Context, name string, labels ...string) (float64, error) {
	b, err := n.Fetch(ctx, "/metrics")
	if err != nil {
		return 0, err
	}
	return SumMetric(string(b), name, labels...)
}
