package lab

import (
	"fmt"
	"strings"
	"time"
)

// NodeView is one node's line of the live view.
type NodeView struct {
	Index     int
	Impl      Impl
	Running   bool
	Cut       bool
	Loss      int
	Instances []InstanceState
}

// FormatView renders the live view: one row per node and instance with
// state, priority, whether it holds the VIP, the master it hears, and its
// advert counters.
func FormatView(title string, elapsed time.Duration, nodes []NodeView) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s   t=%s\n\n", title, fmtDur(elapsed))
	fmt.Fprintf(&b, "%-4s %-10s %-8s %-6s %-7s %5s  %-20s %-30s %7s %7s %5s\n",
		"NODE", "DAEMON", "LINK", "INST", "STATE", "PRIO", "VIP", "MASTER HEARD", "SENT", "RCVD", "DROP")
	for _, n := range nodes {
		link := "up"
		if n.Cut {
			link = "CUT"
		} else if n.Loss > 0 {
			link = fmt.Sprintf("loss%d%%", n.Loss)
		}
		daemon := n.Impl.String()
		if !n.Running {
			daemon = "(stopped)"
		}
		for k, s := range n.Instances {
			node, d, l := fmt.Sprintf("n%d", n.Index), daemon, link
			if k > 0 {
				node, d, l = "", "", ""
			}
			vip := s.VIP.String()
			if s.VIPHeld {
				vip += " *"
			}
			heard := "-"
			if s.Master != "" {
				heard = fmt.Sprintf("%s@%d", s.Master, s.MasterPriority)
			}
			prio := fmt.Sprint(s.Priority)
			if s.Priority != s.BasePriority {
				prio = fmt.Sprintf("%d/%d", s.Priority, s.BasePriority)
			}
			fmt.Fprintf(&b, "%-4s %-10s %-8s %-6s %-7s %5s  %-20s %-30s %7s %7s %5s\n",
				node, d, l, s.Name, strings.ToUpper(s.State), prio, vip, heard, count(s.Sent), count(s.Received), count(s.Dropped))
		}
	}
	return b.String()
}

func count(v float64) string {
	if v < 0 {
		return "-"
	}
	return fmt.Sprint(int64(v))
}
