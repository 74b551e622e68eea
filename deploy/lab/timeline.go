package lab

import (
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Record is one moment of a Timeline: an event the caller marked, or a
// change of who holds a virtual address.
type Record struct {
	At    time.Duration // since the timeline started
	Event string        // what was done ("cut 1"); empty for a change
	// Holders has, per VIP of the timeline, the nodes holding it.
	Holders [][]int
}

// Timeline is who held each VIP over time.
type Timeline struct {
	VIPs    []netip.Addr
	Records []Record
	End     time.Duration
}

// Overlap is a span during which more than one node held a VIP: two
// masters as the network sees them.
type Overlap struct {
	VIP      netip.Addr
	From, To time.Duration
	Nodes    []int // the most nodes holding it at once during the span
}

func (o Overlap) Duration() time.Duration { return o.To - o.From }

func (o Overlap) String() string {
	return fmt.Sprintf("%s held by nodes %v from %s to %s (%s)", o.VIP, o.Nodes, fmtDur(o.From), fmtDur(o.To), o.Duration().Round(time.Millisecond))
}

// Converged is when every VIP first had exactly one holder; ok is false if
// that never happened.
func (t *Timeline) Converged() (at time.Duration, ok bool) {
	for v := range t.VIPs {
		found := false
		for _, r := range t.Records {
			if len(r.Holders[v]) == 1 {
				at, found = max(at, r.At), true
				break
			}
		}
		if !found {
			return 0, false
		}
	}
	return at, true
}

// Overlaps lists the spans, after each VIP first had a single holder,
// during which more than one node held it.
func (t *Timeline) Overlaps() []Overlap {
	var out []Overlap
	for v, vip := range t.VIPs {
		converged := false
		var cur *Overlap
		for k, r := range t.Records {
			h := r.Holders[v]
			if len(h) == 1 {
				converged = true
			}
			if !converged {
				continue
			}
			end := t.End
			if k+1 < len(t.Records) {
				end = t.Records[k+1].At
			}
			if len(h) > 1 {
				if cur == nil {
					cur = &Overlap{VIP: vip, From: r.At}
				}
				cur.To = end
				if len(h) > len(cur.Nodes) {
					cur.Nodes = slices.Clone(h)
				}
			} else if cur != nil {
				out = append(out, *cur)
				cur = nil
			}
		}
		if cur != nil {
			out = append(out, *cur)
		}
	}
	return out
}

// Longest is the longest overlap (zero if none).
func (t *Timeline) Longest() Overlap {
	var best Overlap
	for _, o := range t.Overlaps() {
		if o.Duration() > best.Duration() {
			best = o
		}
	}
	return best
}

// Moves counts how often a VIP's holder set changed after convergence.
func (t *Timeline) Moves(vip int) int {
	n := 0
	converged := false
	var last []int
	for _, r := range t.Records {
		h := r.Holders[vip]
		if converged && !slices.Equal(h, last) {
			n++
		}
		if len(h) == 1 {
			converged = true
		}
		last = h
	}
	return n
}

// Format prints the timeline, one line per record: time, event, and who
// holds each VIP (the master as the network sees it).
func (t *Timeline) Format() string {
	var b strings.Builder
	for _, r := range t.Records {
		fmt.Fprintf(&b, "%8s  %-14s %s\n", fmtDur(r.At), r.Event, t.holdersString(r))
	}
	return b.String()
}

func (t *Timeline) holdersString(r Record) string {
	var parts []string
	for v, vip := range t.VIPs {
		parts = append(parts, fmt.Sprintf("%s=%s", vip, nodesString(r.Holders[v])))
	}
	return strings.Join(parts, " ")
}

func nodesString(ns []int) string {
	if len(ns) == 0 {
		return "none"
	}
	var s []string
	for _, n := range ns {
		s = append(s, "n"+strconv.Itoa(n))
	}
	return strings.Join(s, "+")
}

func fmtDur(d time.Duration) string {
	return strconv.FormatFloat(d.Seconds(), 'f', 3, 64) + "s"
}
