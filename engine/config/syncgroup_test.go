package config

import (
	"slices"
	"strings"
	"testing"
)

func weight(w int) *int { return &w }

// groupConfig is A and B in sync group G; A tracks an interface, a script
// and two files with weights, and a process.
func groupConfig(trackingWeight bool) *Config {
	a := baseInstance("A", 51)
	a.TrackInterfaces = []TrackRef{{Name: "eth1", Weight: weight(-10)}, {Name: "eth2"}}
	a.TrackScripts = []TrackRef{{Name: "s_w"}, {Name: "s_0"}}
	a.TrackFiles = []TrackRef{{Name: "f_def"}, {Name: "f_w"}, {Name: "f_zero", Weight: weight(0)}}
	a.TrackProcesses = []TrackRef{{Name: "p_w"}}
	return &Config{
		Instances:      []Instance{a, baseInstance("B", 52)},
		Scripts:        []Script{{Name: "s_w", Command: "/bin/true", Weight: -20}, {Name: "s_0", Command: "/bin/true"}},
		TrackFiles:     []TrackFile{{Name: "f_def", File: "f1", Weight: 1}, {Name: "f_w", File: "f2", Weight: 5}, {Name: "f_zero", File: "f3", Weight: 1}},
		TrackProcesses: []TrackProcess{{Name: "p_w", Process: "sleep", Weight: 10}},
		SyncGroups:     []SyncGroup{{Name: "G", Members: []string{"A", "B"}, TrackingWeight: trackingWeight}},
	}
}

// TestUnweightedMemberTrackers: what keepalived 2.2.7 logged for this very
// config run in a namespace (its -d dump then listed d1 weight 0, s_0, f_def
// weight 0 and p_w weight 10 on the member): weighted interfaces are kept at
// weight 0, weighted scripts dropped, a file at the default weight 1 kept
// at 0 and one at another weight dropped, processes untouched.
func TestUnweightedMemberTrackers(t *testing.T) {
	c := groupConfig(false)
	var got []string
	for _, m := range c.UnweightedMemberTrackers(&c.Instances[0]) {
		got = append(got, m.Message("A"))
	}
	want := []string{
		"(A) ignoring eth1 tracked interface weight due to SYNC group",
		"(A) ignoring tracked script s_w with weights due to SYNC group",
		"(A) ignoring weight from tracked file f_def due to SYNC group. specify weight 0",
		"(A) ignoring tracked file f_w with weight 5 due to SYNC group",
	}
	if !slices.Equal(got, want) {
		t.Errorf("got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if m := c.UnweightedMemberTrackers(&c.Instances[1]); m != nil {
		t.Errorf("B tracks nothing, got %v", m)
	}
	ds := Validate(c, ValidateOptions{})
	for _, w := range want {
		if !strings.Contains(ds.String(), ": warning: "+w+"\n") {
			t.Errorf("diagnostics:\n%swant a warning %q", ds.String(), w)
		}
	}

	c = groupConfig(true)
	if m := c.UnweightedMemberTrackers(&c.Instances[0]); m != nil {
		t.Errorf("with sync_group_tracking_weight: %v, want none", m)
	}
	if ds := Validate(c, ValidateOptions{}); strings.Contains(ds.String(), "SYNC group") {
		t.Errorf("with sync_group_tracking_weight:\n%s", ds.String())
	}
}

// TestValidateSyncGroupTrackRefs: a group's track_* naming no tracker is
// dropped with a warning naming the group; a weight out of range falls back
// to the tracker's own.
func TestValidateSyncGroupTrackRefs(t *testing.T) {
	c := groupConfig(false)
	c.SyncGroups[0].TrackScripts = []TrackRef{{Name: "nope"}, {Name: "s_w"}}
	c.SyncGroups[0].TrackFiles = []TrackRef{{Name: "f_w", Weight: weight(300)}}
	ds := Validate(c, ValidateOptions{Apply: true})
	for _, w := range []string{
		`warning: vrrp_sync_group "G": track_script "nope" is not defined by any vrrp_script - ignoring`,
		`error: vrrp_sync_group "G": weight 300 of track_file "f_w" is invalid: must be -254 to 254`,
	} {
		if !strings.Contains(ds.String(), ": "+w+"\n") {
			t.Errorf("diagnostics:\n%swant %q", ds.String(), w)
		}
	}
	sg := c.SyncGroups[0]
	if len(sg.TrackScripts) != 1 || sg.TrackScripts[0].Name != "s_w" || sg.TrackFiles[0].Weight != nil {
		t.Errorf("after the repairs: %+v", sg)
	}
}

// TestValidateSyncGroupMissingInterface: keepalived's line for a group's
// track_interface that does not exist.
func TestValidateSyncGroupMissingInterface(t *testing.T) {
	c := groupConfig(true)
	c.SyncGroups[0].TrackInterfaces = []TrackRef{{Name: "nosuch0"}, {Name: "eth0"}}
	ds := Validate(c, ValidateOptions{InterfaceExists: func(n string) bool { return n != "nosuch0" }})
	if got := ds.String(); !strings.Contains(got, ": warning: (G) tracked interface nosuch0 doesn't exist\n") || strings.Contains(got, "interface eth0") {
		t.Errorf("diagnostics:\n%s", got)
	}
}

// TestValidateSyncGroupOwnerWeights: keepalived 2.2.7's line for a group's
// weighted tracker when a member is the address owner; unweighted ones get
// none.
func TestValidateSyncGroupOwnerWeights(t *testing.T) {
	c := groupConfig(true)
	c.Instances[1].Priority = 255
	c.SyncGroups[0].TrackInterfaces = []TrackRef{{Name: "d2", Weight: weight(-50)}, {Name: "eth0"}}
	c.SyncGroups[0].TrackFiles = []TrackRef{{Name: "f_w"}, {Name: "f_def", Weight: weight(0)}}
	got := Validate(c, ValidateOptions{}).String()
	for _, w := range []string{
		"(G) Cannot have weighted track interface 'd2' with member having priority 255 - clearing weight",
		"(G) Cannot have weighted track file 'f_w' with member having priority 255 - setting weight 0",
	} {
		if !strings.Contains(got, ": warning: "+w+"\n") {
			t.Errorf("diagnostics:\n%swant %q", got, w)
		}
	}
	if strings.Contains(got, "'eth0'") || strings.Contains(got, "'f_def'") {
		t.Errorf("an unweighted tracker reported:\n%s", got)
	}
}
