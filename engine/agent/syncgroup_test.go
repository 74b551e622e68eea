package agent_test

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/keepwatch/keepwatch/engine/vrrp"
)

// syncGroup is a vrrp_sync_group of A and B with body inside its block.
func syncGroup(body string) raw {
	return raw("vrrp_sync_group G {\n  group {\n    A\n    B\n  }\n" + body + "}\n")
}

var (
	memberA = inst{name: "A", vrid: 1, prio: 200, vips: []string{"192.0.2.11/24"}}
	memberB = inst{name: "B", vrid: 2, prio: 180, vips: []string{"192.0.2.12/24"}}
)

func (n *node) trackers(name string) []string {
	var out []string
	for _, tr := range n.status(name).Trackers {
		out = append(out, fmt.Sprintf("%s %s %d", tr.Kind, tr.Name, tr.Weight))
	}
	return out
}

// TestSyncGroupTrackInterface: a group's track_interface (weight 0) is
// followed by every member; the link going down faults both, and both are
// master again once it is back (reference §1.4).
func TestSyncGroupTrackInterface(t *testing.T) {
	t.Parallel()
	n := start(t, conf(syncGroup("  track_interface {\n    eth1\n  }\n"), memberA, memberB))
	n.waitState("A", vrrp.StateMaster)
	n.waitState("B", vrrp.StateMaster)
	for _, m := range []string{"A", "B"} {
		if got := n.trackers(m); !slices.Contains(got, "interface eth1 0") {
			t.Errorf("%s follows %v, want the group's eth1", m, got)
		}
	}
	n.plat.SetLink("eth1", false)
	n.waitState("A", vrrp.StateFault)
	n.waitState("B", vrrp.StateFault)
	n.plat.SetLink("eth1", true)
	n.waitState("A", vrrp.StateMaster)
	n.waitState("B", vrrp.StateMaster)
	// One FAULT and one way out each: the member cleared first waits in
	// FAULT for the other instead of flapping through BACKUP.
	for _, m := range []string{"A", "B"} {
		in, out := 0, 0
		for _, tr := range n.transitions(m) {
			in += strings.Count(tr, "->fault")
			out += strings.Count(tr, "fault->")
		}
		if in != 1 || out != 1 {
			t.Errorf("%s transitions %v, want one into FAULT and one out", m, n.transitions(m))
		}
	}
}

// TestSyncGroupTrackFileWeight: a group's weighted track_file moves every
// member's priority alike; a value below -253 faults them all (man5 "Track
// files").
func TestSyncGroupTrackFileWeight(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	file := filepath.Join(dir, "weight")
	if err := os.WriteFile(file, []byte("0\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	tf := raw(fmt.Sprintf("track_file tf {\n  file %q\n}\n", file))
	n := start(t, conf(tf, syncGroup("  track_file {\n    tf weight -10\n  }\n"), memberA, memberB))
	n.waitState("A", vrrp.StateMaster)
	n.waitState("B", vrrp.StateMaster)
	if err := os.WriteFile(file, []byte("3\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	n.waitFor(3*time.Second, "A at 170 and B at 150", func() bool {
		return n.status("A").Priority == 170 && n.status("B").Priority == 150
	})
	if err := os.WriteFile(file, []byte("26\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	n.waitState("A", vrrp.StateFault)
	n.waitState("B", vrrp.StateFault)
}

// TestSyncGroupMemberWeights: without sync_group_tracking_weight a member's
// own weighted trackers are neutralised as keepalived 2.2.7 does (its log:
// "(A) ignoring eth1 tracked interface weight due to SYNC group", "(A)
// ignoring tracked script s with weights due to SYNC group"): the
// interface faults instead of lowering the priority, the weighted script is
// not followed; with it, the weights apply.
func TestSyncGroupMemberWeights(t *testing.T) {
	t.Parallel()
	script := raw("global_defs {\n  script_user root\n}\nvrrp_script s {\n  script \"/bin/true\"\n  weight -20\n}\n")
	a := memberA
	a.extra = "  track_interface {\n    eth1 weight -30\n  }\n  track_script {\n    s\n  }\n"
	for _, weighted := range []bool{false, true} {
		t.Run(fmt.Sprint("tracking_weight=", weighted), func(t *testing.T) {
			t.Parallel()
			body := ""
			if weighted {
				body = "  sync_group_tracking_weight\n"
			}
			n := start(t, conf(script, syncGroup(body), a, memberB))
			n.waitState("A", vrrp.StateMaster)
			n.waitState("B", vrrp.StateMaster)
			got := n.trackers("A")
			want := []string{"interface eth0 0", "interface eth1 0"}
			if weighted {
				want = []string{"interface eth0 0", "interface eth1 -30", "script s -20"}
			}
			if !slices.Equal(got, want) {
				t.Errorf("A follows %v, want %v", got, want)
			}
			n.plat.SetLink("eth1", false)
			if weighted {
				n.waitFor(2*time.Second, "A at 170", func() bool { return n.status("A").Priority == 170 })
				if s := n.status("B"); s.State != vrrp.StateMaster {
					t.Errorf("B %v after A's weighted link went down, want MASTER", s.State)
				}
				return
			}
			n.waitState("A", vrrp.StateFault)
			n.waitState("B", vrrp.StateFault)
		})
	}
}

// TestReloadSyncGroupTracker: a tracker added to the group by a reload is
// followed by its members in place (no restart, no transition), and taking
// it out again stops it.
func TestReloadSyncGroupTracker(t *testing.T) {
	t.Parallel()
	n := start(t, conf(syncGroup(""), memberA, memberB))
	n.waitState("A", vrrp.StateMaster)
	n.waitState("B", vrrp.StateMaster)
	before := len(n.transitions("A")) + len(n.transitions("B"))
	if err := n.reload(conf(syncGroup("  track_interface {\n    eth1 weight -50\n  }\n"), memberA, memberB)); err != nil {
		t.Fatal(err)
	}
	n.waitFor(2*time.Second, "both following eth1", func() bool {
		return slices.Contains(n.trackers("A"), "interface eth1 -50") && slices.Contains(n.trackers("B"), "interface eth1 -50")
	})
	n.plat.SetLink("eth1", false)
	n.waitFor(2*time.Second, "A at 150 and B at 130", func() bool {
		return n.status("A").Priority == 150 && n.status("B").Priority == 130
	})
	if err := n.reload(conf(syncGroup(""), memberA, memberB)); err != nil {
		t.Fatal(err)
	}
	n.waitFor(2*time.Second, "base priorities back", func() bool {
		return n.status("A").Priority == 200 && n.status("B").Priority == 180
	})
	for _, m := range []string{"A", "B"} {
		if got := n.trackers(m); slices.ContainsFunc(got, func(s string) bool { return strings.Contains(s, "eth1") }) {
			t.Errorf("%s still follows %v", m, got)
		}
	}
	if after := len(n.transitions("A")) + len(n.transitions("B")); after != before {
		t.Errorf("transitions %v %v: the reloads restarted the group", n.transitions("A"), n.transitions("B"))
	}
}

// TestSyncGroupOwnerClearsWeights: with an address owner (priority 255) in
// the group, the group's trackers lose their weights, as keepalived's
// sync_group_tracking_init clears them ("Cannot have weighted track
// interface ... with member having priority 255"): the link going down
// faults the group instead of lowering it.
func TestSyncGroupOwnerClearsWeights(t *testing.T) {
	t.Parallel()
	owner := memberA
	owner.prio = 255
	n := start(t, conf(syncGroup("  track_interface {\n    eth1 weight -50\n  }\n"), owner, memberB))
	n.waitState("A", vrrp.StateMaster)
	n.waitState("B", vrrp.StateMaster)
	for _, m := range []string{"A", "B"} {
		if got := n.trackers(m); !slices.Contains(got, "interface eth1 0") {
			t.Errorf("%s follows %v, want eth1 at weight 0", m, got)
		}
	}
	n.plat.SetLink("eth1", false)
	n.waitState("A", vrrp.StateFault)
	n.waitState("B", vrrp.StateFault)
}
