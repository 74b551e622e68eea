package lab

import (
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/keepwatch/keepwatch/engine/netif/nskit"
)

// The holder invariants on a made-up run: each kind of violation is found,
// with its span, and the same pictures inside a fault's window are not.
func TestSoakCheckHolders(t *testing.T) {
	c := &Cluster{}
	for i := 1; i <= 3; i++ {
		c.Nodes = append(c.Nodes, &Node{Node: &nskit.Node{Index: i}})
	}
	ms := time.Millisecond
	v4, x := VIP4.Addr(), SoakExtra[0].Addr()
	h := func(m map[netip.Addr][]int) map[netip.Addr][]int { return m }
	s := &soak{c: c, grace: 500 * ms, mdi: 400 * ms,
		epochs: []epoch{{0, []netip.Addr{v4, VIP6.Addr(), x}}, {6000 * ms, []netip.Addr{v4, VIP6.Addr()}}},
		faults: []SoakFault{
			{Kind: "start", Nodes: []int{1, 2, 3}, Start: 0, End: 1000 * ms},
			{Kind: faultFlap, Nodes: []int{1}, Start: 2000 * ms, End: 3000 * ms},
			{Kind: faultKill, Nodes: []int{2}, Start: 7000 * ms, End: 8000 * ms},
		},
		samples: []holderSample{
			{0, h(nil)},
			{1200 * ms, h(map[netip.Addr][]int{v4: {1}, VIP6.Addr(): {1}, x: {1}})},
			// Two holders within the flap's window: allowed.
			{2300 * ms, h(map[netip.Addr][]int{v4: {1, 2}, VIP6.Addr(): {1, 2}, x: {1, 2}})},
			{3200 * ms, h(map[netip.Addr][]int{v4: {2}, VIP6.Addr(): {2}, x: {2}})},
			// Two holders with no fault near: a violation from 4.0 to 4.2 s.
			{4000 * ms, h(map[netip.Addr][]int{v4: {2, 3}, VIP6.Addr(): {2}, x: {2}})},
			{4200 * ms, h(map[netip.Addr][]int{v4: {2}, VIP6.Addr(): {2}, x: {2}})},
			// VIP6 on nobody while nodes are healthy: 5.0 to 5.3 s.
			{5000 * ms, h(map[netip.Addr][]int{v4: {2}, x: {2}})},
			{5300 * ms, h(map[netip.Addr][]int{v4: {2}, VIP6.Addr(): {2}, x: {2}})},
			// x removed from the config at 6 s: still on node 2 from 6.5 s
			// (one grace later) until its kill at 7 s excuses it, and on
			// node 3 as well at 6.6 s.
			{6600 * ms, h(map[netip.Addr][]int{v4: {2}, VIP6.Addr(): {2}, x: {2, 3}})},
			{6800 * ms, h(map[netip.Addr][]int{v4: {2}, VIP6.Addr(): {2}, x: {2}})},
			{8600 * ms, h(map[netip.Addr][]int{v4: {2}, VIP6.Addr(): {2}})},
		},
	}
	rep := &SoakReport{}
	s.checkHolders(rep, 9000*ms)
	var got []string
	for _, v := range rep.Violations {
		got = append(got, v.String())
	}
	want := []string{
		"at most one holder: 192.0.2.100 from 4.000s to 4.200s (200ms): held by n2+n3",
		"some holder: 2001:db8::100 from 5.000s to 5.300s (300ms): held by none while a node was healthy",
		"removed VIP gone: 192.0.2.101 from 6.500s to 7.000s (500ms): removed from the config, still on n2",
		"at most one holder: 192.0.2.101 from 6.600s to 6.800s (200ms): held by n2+n3",
		// The kill's window ends 0.5 s after the restart at 8 s.
		"removed VIP gone: 192.0.2.101 from 8.510s to 8.600s (90ms): removed from the config, still on n2",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("violations:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if len(rep.Violations) > 0 && !strings.Contains(rep.Violations[0].Timeline, "holders 192.0.2.100=n2+n3") {
		t.Errorf("timeline of the first violation lacks the two holders:\n%s", rep.Violations[0].Timeline)
	}
}
