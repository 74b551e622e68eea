package lab_test

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vishvananda/netlink"

	"github.com/keepwatch/keepwatch/deploy/lab"
)

// syncTrackTemplate is lab.conf's two instances in one vrrp_sync_group that
// tracks, for both members, an interface (sgtrk), a track_file (weight 0:
// non-zero is FAULT), a weighted track_file (-60 per unit) and a script
// (fails while DIR/fail exists). VI_4 also tracks a track_file of its own
// with weight -60, which keepalived drops unless sync_group_tracking_weight
// (SGWEIGHT below) is set.
const syncTrackTemplate = `global_defs {
  router_id lab{{.Index}}
  script_user root
  enable_script_security
}

vrrp_script grp_chk {
  script "/usr/bin/test ! -e {{.Dir}}/fail"
  interval 1
  fall 1
  rise 1
}

track_file grp_fault {
  file "{{.Dir}}/fault"
  init_file 0 overwrite
}

track_file grp_w {
  file "{{.Dir}}/weight"
  weight -60
  init_file 0 overwrite
}

track_file mem_w {
  file "{{.Dir}}/member"
  weight -60
  init_file 0 overwrite
}

vrrp_sync_group LAB {
  group {
    VI_4
    VI_6
  }
  track_interface {
    sgtrk
  }
  track_file {
    grp_fault weight 0
    grp_w
  }
  track_script {
    grp_chk
  }
SGWEIGHT}
{{- range .Instances}}

vrrp_instance {{.Name}} {
  state BACKUP
  interface {{$.Link}}
  virtual_router_id {{.VRID}}
  priority {{$.Priority}}
  advert_int {{secs $.P.Interval}}
  version {{$.P.Version}}
{{- if eq .Family 4}}
  track_file {
    mem_w
  }
{{- end}}
  virtual_ipaddress {
    {{.VIP}}
  }
}
{{- end}}
`

// setLink creates (present) the veth pair sgtrk/sgtrkp inside the node, or
// sets sgtrk up or down.
func setLink(t *testing.T, n *lab.Node, create, up bool) {
	t.Helper()
	h, err := netlink.NewHandleAt(n.NsHandle())
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	if create {
		// A veth pair: this kernel may lack the dummy driver.
		if err := h.LinkAdd(&netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "sgtrk"}, PeerName: "sgtrkp"}); err != nil {
			t.Fatal(err)
		}
		for _, name := range []string{"sgtrkp", "sgtrk"} {
			l, err := h.LinkByName(name)
			if err == nil {
				err = h.LinkSetUp(l)
			}
			if err != nil {
				t.Fatal(err)
			}
		}
		return
	}
	l, err := h.LinkByName("sgtrk")
	if err == nil {
		if up {
			err = h.LinkSetUp(l)
		} else {
			err = h.LinkSetDown(l)
		}
	}
	if err != nil {
		t.Fatal(err)
	}
}

// TestSyncGroupTracking: the same config run by keepalived 2.2.7 on one
// node and keepwatch on the other, each in turn the tracking master (node
// 1, priority 150; node 2 at 100). Each tracker of the sync group faults or
// lowers both members, and the peer takes both VIPs; a member's own weighted
// track_file is dropped as keepalived drops it, unless the group sets
// sync_group_tracking_weight (reference §1.4, §1.5).
func TestSyncGroupTracking(t *testing.T) {
	t.Parallel()
	for _, kaMaster := range []bool{true, false} {
		for _, weighted := range []bool{false, true} {
			name := fmt.Sprintf("kamaster=%v/sync_group_tracking_weight=%v", kaMaster, weighted)
			t.Run(name, func(t *testing.T) {
				t.Parallel()
				syncGroupTracking(t, kaMaster, weighted)
			})
		}
	}
}

func syncGroupTracking(t *testing.T, kaMaster, weighted bool) {
	ka := 2
	if kaMaster {
		ka = 1
	}
	text := strings.Replace(syncTrackTemplate, "SGWEIGHT", "", 1)
	if weighted {
		text = strings.Replace(syncTrackTemplate, "SGWEIGHT", "  sync_group_tracking_weight\n", 1)
	}
	cname := fmt.Sprintf("sg%c%c", "kw"[boolIndex(!kaMaster)], "nw"[boolIndex(weighted)])
	c := newCluster(t, cname, lab.Options{Nodes: 2, Params: lab.Params{}, Keepalived: []int{ka}, TemplateText: text, Stopped: []int{1, 2}})
	n1, n2 := c.Node(1), c.Node(2)
	kw := c.Node(3 - ka)
	for _, n := range c.Nodes {
		setLink(t, n, true, true)
		if err := n.Start(t.Context()); err != nil {
			t.Fatal(err)
		}
	}
	write := func(name, v string) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(n1.Dir, name), []byte(v+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// Scripts run every second (keepalived's whole seconds); a fault, a
	// takeover and a take-back each fit well within these on a loaded box.
	const settle = 8 * time.Second
	waitHolders(t, c, []int{1}, 20*time.Second, vip4, vip6)
	var start time.Time
	bothFault := func(what string) {
		t.Helper()
		waitHolders(t, c, []int{2}, settle, vip4, vip6)
		took := time.Since(start)
		waitState(t, n1, "VI_4", "fault", settle)
		waitState(t, n1, "VI_6", "fault", settle)
		t.Logf("%s: node 1 (%s) both FAULT, node 2 (%s) holds both VIPs %v after", what, n1.Impl, n2.Impl, took.Round(time.Millisecond))
	}
	back := func() {
		t.Helper()
		waitHolders(t, c, []int{1}, settle, vip4, vip6)
		waitState(t, n1, "VI_4", "master", settle)
		waitState(t, n1, "VI_6", "master", settle)
		waitState(t, n2, "VI_4", "backup", settle)
		waitState(t, n2, "VI_6", "backup", settle)
	}

	start = time.Now()
	setLink(t, n1, false, false)
	bothFault("track_interface sgtrk down")
	setLink(t, n1, false, true)
	back()

	start = time.Now()
	write("fault", "1")
	bothFault("track_file grp_fault 1")
	write("fault", "0")
	back()

	start = time.Now()
	if err := os.WriteFile(filepath.Join(n1.Dir, "fail"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	bothFault("track_script grp_chk failing")
	if err := os.Remove(filepath.Join(n1.Dir, "fail")); err != nil {
		t.Fatal(err)
	}
	back()

	if !weighted {
		reloadGroupInterface(t, c, false)
		// Without the group's track_interface, sgtrk going down moves
		// nothing on either daemon.
		setLink(t, n1, false, false)
		time.Sleep(2 * time.Second)
		for _, v := range []netip.Addr{vip4, vip6} {
			if h, err := c.Holders(v); err != nil || len(h) != 1 || h[0] != 1 {
				t.Errorf("%v held by %v (%v) with the group's track_interface reloaded away, want node 1", v, h, err)
			}
		}
		// Reloaded back in while sgtrk is down: the group faults.
		start = time.Now()
		reloadGroupInterface(t, c, true)
		bothFault("track_interface sgtrk reloaded in while down")
		setLink(t, n1, false, true)
		back()
	}

	// The group's weighted file lowers both members to 90: node 2 (100)
	// preempts both together.
	write("weight", "1")
	waitHolders(t, c, []int{2}, settle, vip4, vip6)
	waitState(t, n2, "VI_4", "master", settle)
	waitState(t, n2, "VI_6", "master", settle)
	if kw == n1 {
		for _, in := range []string{"VI_4", "VI_6"} {
			if s := instance(t, kw, in); s.Priority != 90 {
				t.Errorf("keepwatch %s at priority %d, want 90 (150 - 60)", in, s.Priority)
			}
		}
	} else {
		for _, in := range []string{"VI_4", "VI_6"} {
			if s := instance(t, n1, in); s.State != "backup" {
				t.Errorf("keepalived %s %s, want backup after the group's weight", in, s.State)
			}
		}
	}
	write("weight", "0")
	back()

	// VI_4's own weighted track_file: dropped without
	// sync_group_tracking_weight, so nothing moves; with it, VI_4 alone
	// drops to 90, but node 2's VI_6 still hears 150, so its group cannot
	// go MASTER and nothing moves either (vrrp_sync_can_goto_master). Either
	// way the VIPs stay; only the advertised priority tells the two apart.
	const lowered = "(VI_4) Changing effective priority from 150 to 90"
	// The group's weight step logged it too: look only at what follows.
	nodeLog := filepath.Join(n1.Dir, "node.log")
	var from int64
	if fi, err := os.Stat(nodeLog); err == nil {
		from = fi.Size()
	}
	loggedSince := func() bool {
		b, err := os.ReadFile(nodeLog)
		return err == nil && int64(len(b)) >= from && strings.Contains(string(b[from:]), lowered)
	}
	write("member", "1")
	want := 150
	if weighted {
		want = 90
	}
	// keepwatch says its priority; keepalived logs its change ("(VI_4)
	// Changing effective priority from 150 to 90"). A backup does not
	// learn a lower priority it ignores, so the peer cannot tell.
	deadline := time.Now().Add(settle)
	got := 0
	for time.Now().Before(deadline) {
		got = 150
		if kw == n1 {
			got = instance(t, kw, "VI_4").Priority
		} else if loggedSince() {
			got = 90
		}
		if got != 150 || time.Until(deadline) < settle/2 {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if got != want {
		t.Errorf("VI_4 of node 1 (%s) at priority %d with its own weighted track_file at 1, want %d", n1.Impl, got, want)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for _, n := range c.Nodes {
		for _, s := range n.Instances(ctx, false) {
			wantState := map[int]string{1: "master", 2: "backup"}[n.Index]
			if s.State != wantState {
				t.Errorf("node %d (%s) %s is %s, want %s: a member's own weight moved the group", n.Index, n.Impl, s.Name, s.State, wantState)
			}
		}
	}
}

const groupInterface = "  track_interface {\n    sgtrk\n  }\n"

// reloadGroupInterface takes the group's track_interface out of every
// node's config (or puts it back) and reloads the node (SIGHUP).
func reloadGroupInterface(t *testing.T, c *lab.Cluster, present bool) {
	t.Helper()
	for _, n := range c.Nodes {
		b, err := os.ReadFile(n.Config)
		if err != nil {
			t.Fatal(err)
		}
		conf := strings.Replace(string(b), groupInterface, "", 1)
		if present {
			conf = strings.Replace(conf, "  track_file {\n    grp_fault", groupInterface+"  track_file {\n    grp_fault", 1)
		}
		if conf == string(b) {
			t.Fatalf("node %d: the group's track_interface was not where expected:\n%s", n.Index, b)
		}
		if err := n.WriteConfig([]byte(conf)); err != nil {
			t.Fatal(err)
		}
		if err := n.Signal(syscall.SIGHUP); err != nil {
			t.Fatal(err)
		}
	}
	// keepalived reloads in its VRRP child; give both a moment.
	time.Sleep(time.Second)
}

func boolIndex(b bool) int {
	if b {
		return 1
	}
	return 0
}
