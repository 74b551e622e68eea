package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/keepwatch/keepwatch/alerts"
	"github.com/keepwatch/keepwatch/deploy/lab"
)

// labObserver is `keepwatch lab --observe`: the lab's monitoring stack and
// the alert notifications it receives.
type labObserver struct {
	mon   *lab.Monitor
	notes chan lab.Notification
	done  chan struct{}
	wg    sync.WaitGroup
}

func startObserver(ctx context.Context, c *lab.Cluster, f labFlags) (*labObserver, error) {
	if err := lab.MissingTools(); err != nil {
		return nil, err
	}
	if f.proxyPort == 0 {
		return nil, fmt.Errorf("--observe scrapes the nodes through their proxies: set --proxy-port")
	}
	var targets []string
	for _, n := range c.Nodes {
		if n.Impl == lab.Keepwatch {
			targets = append(targets, fmt.Sprintf("127.0.0.1:%d", f.proxyPort+n.Index-1))
		}
	}
	dir := filepath.Join(c.Dir, "monitor")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	o := &labObserver{notes: make(chan lab.Notification, 256), done: make(chan struct{})}
	fmt.Fprintln(os.Stderr, "starting Prometheus and Alertmanager...")
	mon, err := lab.StartMonitor(ctx, lab.MonitorOptions{
		Targets: targets, Rules: alerts.Rules, Alertmanager: alerts.Alertmanager, Dir: dir,
		PrometheusAddr: f.promAddr, AlertmanagerAddr: f.amAddr,
		Notify: func(n lab.Notification) {
			select {
			case o.notes <- n:
			default:
			}
		},
	})
	if err != nil {
		return nil, err
	}
	o.mon = mon
	if err := mon.WaitScraped(ctx, 30*time.Second); err != nil {
		mon.Close()
		return nil, err
	}
	return o, nil
}

// syncWriter serialises the script's timeline and the alert lines.
type syncWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (s *syncWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(p)
}

// timeline returns the writer the script's timeline goes to, and prints
// each alert notification into it as it arrives, with its latency from the
// latest step before it (the cut that caused a page).
func (o *labObserver) timeline(ctx context.Context, out io.Writer, steps []lab.Step) io.Writer {
	w := &syncWriter{w: out}
	start := time.Now()
	o.wg.Add(1)
	go func() {
		defer o.wg.Done()
		for {
			select {
			case <-ctx.Done():
				return
			case <-o.done:
				return
			case n := <-o.notes:
				at := n.At.Sub(start)
				since := ""
				for _, s := range steps {
					if s.At <= at {
						since = fmt.Sprintf(", %s after %s", (at - s.At).Round(time.Millisecond), s)
					}
				}
				fmt.Fprintf(w, "%8s  ALERT %s %s (%s%s)\n", fmtSeconds(at), n.Status, n, n.Receiver, since)
			}
		}
	}()
	return w
}

func (o *labObserver) stop() {
	close(o.done)
	o.wg.Wait()
}

// firingView is the live view's alert list: what Prometheus has pending or
// firing now.
func (o *labObserver) firingView(ctx context.Context) string {
	qctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	firing, err := o.mon.Firing(qctx)
	var b strings.Builder
	b.WriteString("alerts (Prometheus, bundled rules):\n")
	switch {
	case err != nil:
		fmt.Fprintf(&b, "  ? %v\n", err)
	case len(firing) == 0:
		b.WriteString("  none\n")
	}
	for _, a := range firing {
		b.WriteString("  " + a + "\n")
	}
	return b.String() + "\n"
}

func fmtSeconds(d time.Duration) string {
	return fmt.Sprintf("%.3fs", d.Seconds())
}
