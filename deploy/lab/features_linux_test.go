package lab_test

import (
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"syscall"
	"testing"
	"time"

	"github.com/keepwatch/keepwatch/deploy/lab"
	"github.com/keepwatch/keepwatch/engine/vrrp"
	"github.com/keepwatch/keepwatch/engine/vrrp/vrrptest"
)

// Unicast (both families): adverts go to each unicast_peer, none to the
// multicast groups; election and failover work as with multicast.
func TestUnicast(t *testing.T) {
	t.Parallel()
	c := newCluster(t, "ucast", lab.Options{Params: lab.Params{Unicast: true}})
	n1, n2, n3 := c.Node(1), c.Node(2), c.Node(3)
	waitHolders(t, c, []int{1}, 10*time.Second, vip4, vip6)
	capture, err := n3.Capture(filepath.Join(t.TempDir(), "u.pcap"), "ip proto 112 or ip6 proto 112")
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(500 * time.Millisecond)
	if err := capture.Stop(); err != nil {
		t.Fatal(err)
	}
	// The bridge floods every frame, so node 3 sees node 1's copies for
	// node 2 as well as its own.
	peers := []netip.Addr{n2.IPv4.Addr(), n3.IPv4.Addr(), n2.IPv6.Addr(), n3.IPv6.Addr()}
	seen := map[netip.Addr]int{}
	for _, f := range vrrptest.ReadFile(t, capture.Path) {
		src, dst := f.IPv4.Src, f.IPv4.Dst
		if f.Family == vrrp.IPv6 {
			src, dst = f.IPv6.Src, f.IPv6.Dst
		}
		if src != n1.IPv4.Addr() && src != n1.IPv6.Addr() {
			continue
		}
		if !slices.Contains(peers, dst) {
			t.Errorf("node 1 sent an advert to %s, want only its unicast peers %v", dst, peers)
		}
		seen[dst]++
	}
	for _, p := range peers {
		if seen[p] == 0 {
			t.Errorf("no advert from node 1 to peer %s in 0.5 s (seen %v)", p, seen)
		}
	}
	w := c.Watch(10*time.Millisecond, nil)
	w.Mark("cut 1")
	if err := n1.Cut(); err != nil {
		t.Fatal(err)
	}
	waitHolders(t, c, []int{2}, 3*time.Second, vip4, vip6)
	w.Mark("restore 1")
	if err := n1.Restore(); err != nil {
		t.Fatal(err)
	}
	waitHolders(t, c, []int{1}, 3*time.Second, vip4, vip6)
	// After a link restore, node 1's first unicast adverts wait in the
	// kernel's neighbour queue: its ARP/ND entry for node 2 failed while the
	// link was down, and the kernel retries resolution only after its
	// retransmit timer (1 s). keepalived sends through the same kernel path.
	// So two holders may last up to about a second here, never longer.
	tl := w.Stop()
	t.Logf("timeline:\n%s", tl.Format())
	checkOverlaps(t, tl, 1500*time.Millisecond)
}

// IPv6 alone: VRRPv3 from link-local sources to ff02::12, unsolicited
// neighbor advertisements for the VIP on takeover.
func TestIPv6(t *testing.T) {
	t.Parallel()
	c := newCluster(t, "ipv6", lab.Options{Params: lab.Params{Family: 6}})
	n1, n2 := c.Node(1), c.Node(2)
	waitHolders(t, c, []int{1}, 10*time.Second, vip6)
	waitState(t, n2, "VI_6", "backup", 2*time.Second)
	if s := instance(t, n2, "VI_6"); s.Master != n1.LinkLocal.String() || s.MasterPriority != 150 {
		t.Errorf("node 2 hears %s@%d, want node 1's link-local %s@150", s.Master, s.MasterPriority, n1.LinkLocal)
	}
	if v := metric(t, n1, "keepwatch_vrrp_neighbor_adverts_sent_total", "vrrp_instance", "VI_6"); v < 1 {
		t.Errorf("node 1 sent %v unsolicited NAs, want >= 1", v)
	}
	w := c.Watch(10*time.Millisecond, nil)
	w.Mark("cut 1")
	if err := n1.Cut(); err != nil {
		t.Fatal(err)
	}
	waitHolders(t, c, []int{2}, 3*time.Second, vip6)
	if v := metric(t, n2, "keepwatch_vrrp_neighbor_adverts_sent_total", "vrrp_instance", "VI_6"); v < 1 {
		t.Errorf("node 2 sent %v unsolicited NAs after taking over, want >= 1", v)
	}
	w.Mark("restore 1")
	if err := n1.Restore(); err != nil {
		t.Fatal(err)
	}
	waitHolders(t, c, []int{1}, 3*time.Second, vip6)
	checkOverlaps(t, w.Stop(), 300*time.Millisecond)
}

// A vrrp_sync_group moves together: a fault in one member (its track_file
// says 1) takes both to FAULT, and the peer takes both VIPs (reference §1.4).
func TestSyncGroup(t *testing.T) {
	t.Parallel()
	c := newCluster(t, "sync", lab.Options{Nodes: 2, Params: lab.Params{SyncGroup: true, FaultFile: true}})
	n1, n2 := c.Node(1), c.Node(2)
	waitHolders(t, c, []int{1}, 10*time.Second, vip4, vip6)
	w := c.Watch(5*time.Millisecond, nil)
	w.Mark("fault VI_4 on 1")
	if err := os.WriteFile(filepath.Join(n1.Dir, "fault"), []byte("1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	waitHolders(t, c, []int{2}, 3*time.Second, vip4, vip6)
	waitState(t, n1, "VI_4", "fault", 2*time.Second)
	waitState(t, n1, "VI_6", "fault", 2*time.Second)
	if s := instance(t, n1, "VI_6"); s.Reason != "sync_group" {
		t.Errorf("node 1 VI_6 went to FAULT for %q, want sync_group", s.Reason)
	}
	w.Mark("clear fault on 1")
	if err := os.WriteFile(filepath.Join(n1.Dir, "fault"), []byte("0\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	waitHolders(t, c, []int{1}, 3*time.Second, vip4, vip6)
	waitState(t, n2, "VI_6", "backup", 2*time.Second)
	tl := w.Stop()
	t.Logf("timeline:\n%s", tl.Format())
	// Both VIPs moved together: the group's members never had different
	// masters for longer than one step of the group.
	for _, r := range tl.Records {
		if !slices.Equal(r.Holders[0], r.Holders[1]) {
			t.Logf("at %s the members' VIPs differ: %v / %v", r.At, r.Holders[0], r.Holders[1])
		}
	}
	checkOverlaps(t, tl, 300*time.Millisecond)
}

// A tracking script lowers the master's priority below the backup's: the
// backup preempts; the script succeeds again and the master takes back.
func TestTrackScript(t *testing.T) {
	t.Parallel()
	o := lab.Options{Nodes: 2, Params: lab.Params{Family: 4, ScriptWeight: -60}}
	o.NodeParams = func(node int, p *lab.Params) {
		// Fails while the node's "down" file exists; the node's Dir is
		// Options.Dir/nN.
		p.TrackScript = "/usr/bin/test ! -e " + filepath.Join(o.Dir, "n"+string(rune('0'+node)), "down")
	}
	o.Dir = t.TempDir()
	c := newCluster(t, "track", o)
	n1, n2 := c.Node(1), c.Node(2)
	waitHolders(t, c, []int{1}, 10*time.Second, vip4)
	if v := metric(t, n1, "keepwatch_track_script_up", "script", "chk_lab"); v != 1 {
		t.Errorf("node 1 track_script_up = %v, want 1", v)
	}
	w := c.Watch(10*time.Millisecond, nil)
	w.Mark("script fails on 1")
	if err := os.WriteFile(filepath.Join(n1.Dir, "down"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	waitHolders(t, c, []int{2}, 3*time.Second, vip4)
	if s := instance(t, n1, "VI_4"); s.Priority != 90 || s.State != "backup" {
		t.Errorf("node 1 with its script failing: %+v, want backup at 150-60 = 90", s)
	}
	if v := metric(t, n1, "keepwatch_track_script_up", "script", "chk_lab"); v != 0 {
		t.Errorf("node 1 track_script_up = %v, want 0", v)
	}
	if v := metric(t, n2, "keepwatch_vrrp_transitions_total", "vrrp_instance", "VI_4", "to", "master", "reason", "preempted"); v < 1 {
		t.Errorf("node 2 preempted %v times, want >= 1", v)
	}
	w.Mark("script ok on 1")
	if err := os.Remove(filepath.Join(n1.Dir, "down")); err != nil {
		t.Fatal(err)
	}
	waitHolders(t, c, []int{1}, 3*time.Second, vip4)
	if s := instance(t, n1, "VI_4"); s.Priority != 150 {
		t.Errorf("node 1 priority %d after its script recovered, want 150", s.Priority)
	}
	checkOverlaps(t, w.Stop(), 300*time.Millisecond)
}

// VRRPv2 with mismatched auth_pass: each side drops the other's adverts
// (counted as reason "auth"), so both become master: the classic
// misconfiguration the metric exists to reveal.
func TestPasswordMismatch(t *testing.T) {
	t.Parallel()
	c := newCluster(t, "pass", lab.Options{Nodes: 2, Params: lab.Params{Family: 4, Version: 2, Interval: time.Second, Pass: "secret1"},
		NodeParams: func(node int, p *lab.Params) {
			if node == 2 {
				p.Pass = "other22"
			}
		}})
	// v2 at 1 s: Master_Down_Interval is 3.6 s for both.
	waitHolders(t, c, []int{1, 2}, 10*time.Second, vip4)
	for _, n := range c.Nodes {
		if v := metric(t, n, "keepwatch_vrrp_adverts_dropped_total", "vrrp_instance", "VI_4", "reason", "auth"); v < 1 {
			t.Errorf("node %d dropped %v adverts for auth, want >= 1", n.Index, v)
		}
		if v := metric(t, n, "keepwatch_vrrp_adverts_received_total", "vrrp_instance", "VI_4"); v != 0 {
			t.Errorf("node %d accepted %v adverts with the wrong password, want 0", n.Index, v)
		}
	}
}

// SIGHUP with a broken config is rejected: the agent keeps the old config,
// its state and the VIPs, and says so in keepwatch_config_last_reload_successful.
// A good config that leaves an instance unchanged keeps its state: no
// transition, no VIP flap; the removed instance resigns.
func TestReload(t *testing.T) {
	t.Parallel()
	c := newCluster(t, "reload", lab.Options{Nodes: 2})
	n1, n2 := c.Node(1), c.Node(2)
	waitHolders(t, c, []int{1}, 10*time.Second, vip4, vip6)
	good, err := os.ReadFile(n1.Config)
	if err != nil {
		t.Fatal(err)
	}
	last := metric(t, n1, "keepwatch_vrrp_last_transition_timestamp_seconds", "vrrp_instance", "VI_4")
	w := c.Watch(5*time.Millisecond, nil)

	w.Mark("bad reload 1")
	if err := n1.WriteConfig(append(good, []byte("\nvrrp_instance BROKEN {\n  virtual_router_id 999\n  priority banana\n}\n")...)); err != nil {
		t.Fatal(err)
	}
	if err := n1.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for metric(t, n1, "keepwatch_config_last_reload_successful") != 0 {
		if time.Now().After(deadline) {
			t.Fatal("keepwatch_config_last_reload_successful still 1 after a bad reload")
		}
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(500 * time.Millisecond) // more than Master_Down_Interval
	for _, name := range []string{"VI_4", "VI_6"} {
		if s := instance(t, n1, name); s.State != "master" || !s.VIPHeld {
			t.Errorf("node 1 %s after a rejected reload: %+v, want master holding its VIP", name, s)
		}
	}

	w.Mark("good reload 1")
	if err := n1.Reload(lab.Params{Family: 4}); err != nil { // VI_6 removed, VI_4 unchanged
		t.Fatal(err)
	}
	for metric(t, n1, "keepwatch_config_last_reload_successful") != 1 {
		if time.Now().After(deadline.Add(5 * time.Second)) {
			t.Fatal("keepwatch_config_last_reload_successful not 1 after a good reload")
		}
		time.Sleep(20 * time.Millisecond)
	}
	waitHolders(t, c, []int{2}, 3*time.Second, vip6) // the removed instance resigned
	if got := metric(t, n1, "keepwatch_vrrp_last_transition_timestamp_seconds", "vrrp_instance", "VI_4"); got != last {
		t.Errorf("VI_4's last transition moved from %v to %v across a reload that did not change it", last, got)
	}
	if s := instance(t, n1, "VI_4"); s.State != "master" || !s.VIPHeld {
		t.Errorf("node 1 VI_4 after the reload: %+v, want master holding its VIP", s)
	}
	tl := w.Stop()
	if moves := tl.Moves(0); moves != 0 {
		t.Errorf("VIP %s moved %d times across the reloads, want 0:\n%s", vip4, moves, tl.Format())
	}
	if s := instance(t, n2, "VI_4"); s.State != "backup" {
		t.Errorf("node 2 VI_4: %s, want backup", s.State)
	}
}
