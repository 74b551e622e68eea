package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/sys/unix"

	"github.com/keepwatch/keepwatch/deploy/lab"
	"github.com/keepwatch/keepwatch/engine/netif/nskit"
)

type labFlags struct {
	nodes         int
	withKA        bool
	script        string
	duration      time.Duration
	grace         time.Duration
	proxyPort     int
	template      string
	version       int
	interval      time.Duration
	unicast       bool
	verbose       bool
	refreshPeriod time.Duration
	observe       bool
	promAddr      string
	amAddr        string
}

func labCommand() *cobra.Command {
	var f labFlags
	cmd := &cobra.Command{
		Use:   "lab",
		Short: "a three-node VRRP cluster in network namespaces on this host, with a live view (needs root)",
		Long: `lab builds a VRRP cluster in network namespaces on a bridge, each node a real
keepwatch agent (this binary) running a bundled keepalived.conf: priorities 150/100/50,
VRRPv3 at advert_int 0.1 s, VIPs 192.0.2.100/24 (VI_4) and 2001:db8::100/64 (VI_6).

Interactive keys: 1-3 cut/restore a node's link; s then 1-3 (or shift+1-3) stop/start
a node; l then 1-3 toggles 30% packet loss; q (or Ctrl-C) quits and removes everything.

With --script, it runs the steps instead, prints a timeline and exits 0 if no VIP ever
had two holders (after convergence) for longer than --split-grace:
  keepwatch lab --script "2s cut 1; 4s restore 1; 6s stop 2" --duration 10s
Operations: cut, restore, stop, start, kill, reload N, and loss N PERCENT.

With --observe, the real Prometheus and Alertmanager (Debian packages prometheus and
prometheus-alertmanager) run beside it with the bundled rules, scraping every node each
second: firing alerts show under the VRRP table, and in script mode the timeline shows
each alert notification with its latency from the step before it:
  keepwatch lab --observe --script "3s cut 1" --duration 40s`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return runLab(cmd.Context(), f) },
	}
	fl := cmd.Flags()
	fl.IntVar(&f.nodes, "nodes", 3, "number of nodes (1-9)")
	fl.BoolVar(&f.withKA, "with-keepalived", false, "run the Debian keepalived on node 3 (the last node) instead of keepwatch")
	fl.StringVar(&f.script, "script", "", `run these steps instead of the interactive view, e.g. "2s cut 1; 4s restore 1"`)
	fl.DurationVar(&f.duration, "duration", 10*time.Second, "how long --script runs")
	fl.DurationVar(&f.grace, "split-grace", 250*time.Millisecond, "longest two-holder overlap not counted as split brain (a preemption's instant)")
	fl.IntVar(&f.proxyPort, "proxy-port", 9761, "serve node N's HTTP (metrics, status) on 127.0.0.1:PORT+N-1 (0: off)")
	fl.StringVar(&f.template, "config", lab.DefaultTemplate, "bundled config template")
	fl.IntVar(&f.version, "vrrp-version", 3, "VRRP version (2 uses whole-second advert_int)")
	fl.DurationVar(&f.interval, "advert-int", 100*time.Millisecond, "advert_int")
	fl.BoolVar(&f.unicast, "unicast", false, "unicast peers instead of multicast")
	fl.BoolVar(&f.verbose, "verbose", false, "print the nodes' logs (script mode)")
	fl.DurationVar(&f.refreshPeriod, "refresh", 250*time.Millisecond, "live view refresh period")
	fl.BoolVar(&f.observe, "observe", false, "also run the real Prometheus and Alertmanager with the bundled rules, scraping every node each second; firing alerts show beside the VRRP table and in the script's timeline")
	fl.StringVar(&f.promAddr, "observe.prometheus", "127.0.0.1:19090", "where --observe's Prometheus listens")
	fl.StringVar(&f.amAddr, "observe.alertmanager", "127.0.0.1:19093", "where --observe's Alertmanager listens")
	return cmd
}

func runLab(ctx context.Context, f labFlags) error {
	if os.Geteuid() != 0 {
		return errors.New("keepwatch lab needs root (it creates network namespaces)")
	}
	if f.nodes < 1 || f.nodes > 9 {
		return fmt.Errorf("--nodes %d: want 1 to 9", f.nodes)
	}
	if ctx == nil {
		ctx = context.Background()
	}
	// Ctrl-C and SIGTERM end the lab through ctx: Close below then removes
	// every namespace and process it created.
	ctx, stop := signal.NotifyContext(ctx, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP)
	defer stop()
	if removed, err := nskit.Sweep(); err != nil {
		fmt.Fprintf(os.Stderr, "removing stale labs: %v\n", err)
	} else if len(removed) > 0 {
		fmt.Fprintf(os.Stderr, "removed %d namespaces of crashed labs\n", len(removed))
	}
	var steps []lab.Step
	if f.script != "" {
		var err error
		if steps, err = lab.ParseScript(f.script, f.nodes); err != nil {
			return err
		}
	}
	o := lab.Options{Name: "lab", Nodes: f.nodes, Template: f.template,
		Params: lab.Params{Version: f.version, Interval: f.interval, Unicast: f.unicast}}
	if f.withKA {
		o.Keepalived = []int{f.nodes}
	}
	if f.verbose {
		o.Log = os.Stderr
	}
	fmt.Fprintf(os.Stderr, "building a %d-node lab...\n", f.nodes)
	c, err := lab.New(ctx, o)
	if err != nil {
		return err
	}
	defer func() {
		if err := c.Close(); err != nil {
			fmt.Fprintf(os.Stderr, "removing the lab: %v\n", err)
		}
	}()
	urls := labProxies(ctx, c, f.proxyPort)
	var obs *labObserver
	if f.observe {
		if obs, err = startObserver(ctx, c, f); err != nil {
			return err
		}
		defer obs.mon.Close()
		urls = append(urls, "prometheus: http://"+f.promAddr+"  alertmanager: http://"+f.amAddr+"  (rules: the bundled alerts/keepwatch.rules.yml)")
	}
	if f.script != "" {
		return labScript(ctx, c, steps, f, urls, obs)
	}
	return labInteractive(ctx, c, f, urls, obs)
}

// labProxies serves each keepwatch node's HTTP port on the host's loopback
// and returns how to reach every node.
func labProxies(ctx context.Context, c *lab.Cluster, port int) []string {
	var out []string
	for _, n := range c.Nodes {
		how := fmt.Sprintf("n%d %s: ip netns exec %s curl -s %s", n.Index, n.IPv4.Addr(), n.NS, n.URL("/metrics"))
		if n.Impl == lab.Keepalived {
			how = fmt.Sprintf("n%d %s: keepalived (no HTTP); log %s/node.log", n.Index, n.IPv4.Addr(), n.Dir)
		} else if port > 0 {
			addr := fmt.Sprintf("127.0.0.1:%d", port+n.Index-1)
			if _, err := n.Proxy(ctx, addr); err == nil {
				how = fmt.Sprintf("n%d %s: http://%s/metrics  http://%s/api/v1/status  (in the namespace: %s)", n.Index, n.IPv4.Addr(), addr, addr, n.URL("/metrics"))
			}
		}
		out = append(out, how)
	}
	return out
}

func labScript(ctx context.Context, c *lab.Cluster, steps []lab.Step, f labFlags, urls []string, obs *labObserver) error {
	for _, u := range urls {
		fmt.Println(u)
	}
	fmt.Printf("script: %d steps over %s\n", len(steps), f.duration)
	var w io.Writer = os.Stdout
	if obs != nil {
		w = obs.timeline(ctx, os.Stdout, steps)
	}
	res, err := c.RunScript(ctx, steps, f.duration, f.grace, w)
	if obs != nil {
		obs.stop()
	}
	if err != nil {
		return err
	}
	if !res.Converged {
		fmt.Println("FAIL: the VIPs never had a single holder")
		return exitError{1}
	}
	if len(res.SplitBrain) > 0 {
		for _, o := range res.SplitBrain {
			fmt.Printf("FAIL: split brain: %s\n", o)
		}
		return exitError{1}
	}
	fmt.Printf("OK: never more than one VIP holder after convergence (longest overlap %s)\n", res.Timeline.Longest().Duration().Round(time.Millisecond))
	return nil
}

func labInteractive(ctx context.Context, c *lab.Cluster, f labFlags, urls []string, obs *labObserver) error {
	fd := int(os.Stdin.Fd())
	old, err := unix.IoctlGetTermios(fd, unix.TCGETS)
	if err != nil {
		return fmt.Errorf("the live view needs a terminal (or use --script): %w", err)
	}
	// Keys without Enter and without echo; Ctrl-C still raises SIGINT.
	raw := *old
	raw.Lflag &^= unix.ICANON | unix.ECHO
	raw.Cc[unix.VMIN], raw.Cc[unix.VTIME] = 1, 0
	if err := unix.IoctlSetTermios(fd, unix.TCSETS, &raw); err != nil {
		return err
	}
	defer func() { _ = unix.IoctlSetTermios(fd, unix.TCSETS, old) }()

	keys := make(chan byte)
	go func() {
		b := make([]byte, 1)
		for {
			if _, err := os.Stdin.Read(b); err != nil {
				close(keys)
				return
			}
			keys <- b[0]
		}
	}()
	title := fmt.Sprintf("keepwatch lab: %d nodes, VRRPv%d advert_int %s", len(c.Nodes), f.version, f.interval)
	help := "keys: 1-9 cut/restore link · s+N or shift+N stop/start · l+N 30% loss · q quit"
	msg := ""
	prefix := byte(0)
	tick := time.NewTicker(f.refreshPeriod)
	defer tick.Stop()
	draw := func() {
		// A node under packet loss answers slowly: nskit's loss rules
		// also drop loopback packets, the status API's included.
		vctx, cancel := context.WithTimeout(ctx, max(f.refreshPeriod, time.Second))
		view := lab.FormatView(title, c.Elapsed(), c.View(vctx))
		cancel()
		var b strings.Builder
		b.WriteString("\x1b[H\x1b[2J")
		b.WriteString(view)
		b.WriteString("\n* = holds the VIP\n\n")
		if obs != nil {
			b.WriteString(obs.firingView(ctx))
		}
		for _, u := range urls {
			b.WriteString(u + "\n")
		}
		b.WriteString("\n" + help + "\n" + msg + "\n")
		_, _ = io.WriteString(os.Stdout, b.String())
	}
	shifted := map[byte]int{'!': 1, '@': 2, '#': 3, '$': 4, '%': 5, '^': 6, '&': 7, '*': 8, '(': 9}
	for {
		draw()
		select {
		case <-ctx.Done():
			fmt.Println("removing the lab...")
			return nil
		case <-tick.C:
		case k, ok := <-keys:
			if !ok {
				<-ctx.Done()
				return nil
			}
			node := 0
			op := lab.Op("")
			switch {
			case k == 'q' || k == 'Q' || k == 3:
				fmt.Println("removing the lab...")
				return nil
			case k == 's' || k == 'l':
				prefix = k
				msg = fmt.Sprintf("%c: which node?", k)
				continue
			case k >= '1' && k <= '9':
				node = int(k - '0')
				switch prefix {
				case 's':
					op = lab.OpStop
				case 'l':
					op = lab.OpLoss
				default:
					op = lab.OpCut
				}
			case shifted[k] > 0:
				node, op = shifted[k], lab.OpStop
			}
			prefix = 0
			if node == 0 || node > len(c.Nodes) {
				msg = ""
				continue
			}
			n := c.Node(node)
			st := lab.Step{Op: op, Node: node}
			cut, loss := n.LinkState()
			switch {
			case op == lab.OpCut && cut:
				st.Op = lab.OpRestore
			case op == lab.OpStop && !n.Running():
				st.Op = lab.OpStart
			case op == lab.OpLoss && loss == 0:
				st.Arg = 30
			}
			msg = fmt.Sprintf("%s: %s...", c.Elapsed().Round(time.Millisecond), st)
			draw()
			if err := c.Apply(ctx, st); err != nil {
				msg = fmt.Sprintf("%s: %v", st, err)
			} else {
				msg = fmt.Sprintf("%s: %s done", c.Elapsed().Round(time.Millisecond), st)
			}
		}
	}
}
