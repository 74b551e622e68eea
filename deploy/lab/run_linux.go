package lab

import (
	"context"
	"fmt"
	"io"
	"net"
	"sort"
	"strings"
	"sync"
	"time"
)

// View is the live view of the whole cluster.
func (c *Cluster) View(ctx context.Context) []NodeView {
	states := c.Observe(ctx, true)
	out := make([]NodeView, len(c.Nodes))
	for i, n := range c.Nodes {
		cut, loss := n.LinkState()
		out[i] = NodeView{Index: n.Index, Impl: n.Impl, Running: n.Running(), Cut: cut, Loss: loss, Instances: states[i]}
	}
	return out
}

// Elapsed is the time since the cluster was built.
func (c *Cluster) Elapsed() time.Duration { return time.Since(c.started) }

// ScriptResult is the outcome of RunScript.
type ScriptResult struct {
	Timeline  Timeline
	Converged bool
	// SplitBrain lists the overlaps (two VIP holders at once, after
	// convergence) longer than the grace RunScript was given.
	SplitBrain []Overlap
}

// OK is true when every VIP converged to one holder and never had two for
// longer than the grace afterwards.
func (r ScriptResult) OK() bool { return r.Converged && len(r.SplitBrain) == 0 }

// RunScript performs steps at their times while watching who holds each
// VIP, for duration, and writes the timeline to w as it happens: time,
// event, the masters the nodes report, and the VIP holders. Overlaps no
// longer than grace (the instant of a preemption, when the new master has
// added the VIP and the old one has not yet heard it) are not split brain.
func (c *Cluster) RunScript(ctx context.Context, steps []Step, duration, grace time.Duration, w io.Writer) (ScriptResult, error) {
	recs := make(chan Record, 256)
	var printed sync.WaitGroup
	printed.Add(1)
	vips := c.VIPs()
	go func() {
		defer printed.Done()
		for r := range recs {
			// The VIP is on the link a moment before the daemon's status
			// says master: let it catch up.
			time.Sleep(30 * time.Millisecond)
			octx, cancel := context.WithTimeout(ctx, time.Second)
			masters := c.mastersString(octx)
			cancel()
			var hs []string
			for v, vip := range vips {
				hs = append(hs, fmt.Sprintf("%s=%s", vip.Addr(), nodesString(r.Holders[v])))
			}
			fmt.Fprintf(w, "%8s  %-14s master: %-24s VIP: %s\n", fmtDur(r.At), r.Event, masters, strings.Join(hs, " "))
		}
	}()
	watcher := c.Watch(10*time.Millisecond, func(r Record) {
		select {
		case recs <- r:
		default:
		}
	})
	var err error
	timer := time.NewTimer(duration)
	defer timer.Stop()
	for _, s := range steps {
		if s.At > duration {
			break
		}
		select {
		case <-ctx.Done():
			err = ctx.Err()
		case <-timer.C:
			err = context.DeadlineExceeded
		case <-time.After(s.At - watcher.Since()):
		}
		if err != nil {
			break
		}
		if aerr := c.Apply(ctx, s); aerr != nil {
			fmt.Fprintf(w, "%8s  %s: %v\n", fmtDur(watcher.Since()), s, aerr)
		}
		watcher.Mark(s.String())
	}
	if err == nil {
		select {
		case <-ctx.Done():
			err = ctx.Err()
		case <-timer.C:
		}
	}
	if err == context.DeadlineExceeded {
		err = nil
	}
	tl := watcher.Stop()
	close(recs)
	printed.Wait()
	res := ScriptResult{Timeline: tl}
	_, res.Converged = tl.Converged()
	for _, o := range tl.Overlaps() {
		if o.Duration() > grace {
			res.SplitBrain = append(res.SplitBrain, o)
		}
	}
	return res, err
}

// mastersString names, per instance, the nodes that say they are master.
func (c *Cluster) mastersString(ctx context.Context) string {
	by := map[string][]int{}
	var names []string
	for _, node := range c.Observe(ctx, false) {
		for _, s := range node {
			if _, ok := by[s.Name]; !ok {
				names = append(names, s.Name)
				by[s.Name] = nil
			}
			if s.State == "master" {
				by[s.Name] = append(by[s.Name], s.Node)
			}
		}
	}
	sort.Strings(names)
	var parts []string
	for _, n := range names {
		parts = append(parts, n+"="+nodesString(by[n]))
	}
	return strings.Join(parts, " ")
}

// Proxy serves the node's HTTP port (inside its namespace) on addr in the
// caller's namespace, such as 127.0.0.1:9761, so a browser or Prometheus on
// the host can reach /metrics. It stops when ctx ends.
func (n *Node) Proxy(ctx context.Context, addr string) (net.Listener, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	go func() {
		<-ctx.Done()
		ln.Close()
	}()
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer conn.Close()
				dctx, cancel := context.WithTimeout(ctx, 2*time.Second)
				up, err := n.DialContext(dctx, "tcp", fmt.Sprintf("127.0.0.1:%d", HTTPPort))
				cancel()
				if err != nil {
					return
				}
				defer up.Close()
				done := make(chan struct{}, 2)
				go func() { _, _ = io.Copy(up, conn); done <- struct{}{} }()
				go func() { _, _ = io.Copy(conn, up); done <- struct{}{} }()
				select {
				case <-done:
				case <-ctx.Done():
				}
			}()
		}
	}()
	return ln, nil
}
