package lab

import (
	"cmp"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Op is something a script does to a node.
type Op string

const (
	OpCut     Op = "cut"     // take the node's link down (carrier loss)
	OpRestore Op = "restore" // bring it back
	OpStop    Op = "stop"    // SIGTERM the daemon (a master resigns)
	OpStart   Op = "start"   // start it again
	OpKill    Op = "kill"    // SIGKILL the daemon (no resignation)
	OpLoss    Op = "loss"    // drop Arg percent of the node's packets
	OpReload  Op = "reload"  // SIGHUP
)

var ops = []Op{OpCut, OpRestore, OpStop, OpStart, OpKill, OpLoss, OpReload}

// Step is one timed action of a script.
type Step struct {
	At   time.Duration
	Op   Op
	Node int
	Arg  int // loss: percent
}

func (s Step) String() string {
	if s.Op == OpLoss {
		return fmt.Sprintf("%s %d %d%%", s.Op, s.Node, s.Arg)
	}
	return fmt.Sprintf("%s %d", s.Op, s.Node)
}

// ParseScript reads a script such as "2s cut 1; 4s restore 1; 6s stop 2":
// steps separated by ';' or newlines, each a time since the start, an
// operation and a 1-based node number (loss takes a percentage after it,
// "3s loss 2 30"). Steps are returned in time order.
func ParseScript(s string, nodes int) ([]Step, error) {
	var out []Step
	for _, part := range strings.FieldsFunc(s, func(r rune) bool { return r == ';' || r == '\n' }) {
		f := strings.Fields(part)
		if len(f) == 0 {
			continue
		}
		if len(f) < 3 {
			return nil, fmt.Errorf("lab: script step %q: want TIME OP NODE", strings.TrimSpace(part))
		}
		at, err := time.ParseDuration(f[0])
		if err != nil || at < 0 {
			return nil, fmt.Errorf("lab: script step %q: bad time %q", strings.TrimSpace(part), f[0])
		}
		op := Op(strings.ToLower(f[1]))
		if !slices.Contains(ops, op) {
			return nil, fmt.Errorf("lab: script step %q: unknown operation %q (want one of %v)", strings.TrimSpace(part), f[1], ops)
		}
		node, err := strconv.Atoi(f[2])
		if err != nil || node < 1 || node > nodes {
			return nil, fmt.Errorf("lab: script step %q: node %q: want 1 to %d", strings.TrimSpace(part), f[2], nodes)
		}
		st := Step{At: at, Op: op, Node: node}
		want := 3
		if op == OpLoss {
			want = 4
			if len(f) < 4 {
				return nil, fmt.Errorf("lab: script step %q: loss needs a percentage", strings.TrimSpace(part))
			}
			pct, err := strconv.Atoi(strings.TrimSuffix(f[3], "%"))
			if err != nil || pct < 0 || pct > 100 {
				return nil, fmt.Errorf("lab: script step %q: percentage %q: want 0 to 100", strings.TrimSpace(part), f[3])
			}
			st.Arg = pct
		}
		if len(f) > want {
			return nil, fmt.Errorf("lab: script step %q: unexpected %q", strings.TrimSpace(part), strings.Join(f[want:], " "))
		}
		out = append(out, st)
	}
	slices.SortStableFunc(out, func(a, b Step) int { return cmp.Compare(a.At, b.At) })
	return out, nil
}
