package config

import "fmt"

// GroupOf returns the vrrp_sync_group that has the named instance as a
// member, or nil.
func (c *Config) GroupOf(instance string) *SyncGroup {
	for i := range c.SyncGroups {
		for _, m := range c.SyncGroups[i].Members {
			if m == instance {
				return &c.SyncGroups[i]
			}
		}
	}
	return nil
}

// MemberTracker is a tracker of a sync group member whose weight keepalived
// does not apply: the members of a group must move together, and a weight
// on one member alone would let their priorities drift apart.
type MemberTracker struct {
	Keyword string // track_interface, track_script or track_file
	Name    string
	Weight  int // the weight the tracker would have had
	// Dropped: the instance does not follow the tracker at all; otherwise
	// it follows it with weight 0 (down or non-zero is FAULT).
	Dropped bool
	Pos     Pos
}

// Message is keepalived's log line for the tracker ("(VI_1) ignoring …").
func (m MemberTracker) Message(instance string) string {
	switch {
	case m.Keyword == "track_interface":
		return fmt.Sprintf("(%s) ignoring %s tracked interface weight due to SYNC group", instance, m.Name)
	case m.Keyword == "track_script":
		return fmt.Sprintf("(%s) ignoring tracked script %s with weights due to SYNC group", instance, m.Name)
	case m.Dropped:
		return fmt.Sprintf("(%s) ignoring tracked file %s with weight %d due to SYNC group", instance, m.Name, m.Weight)
	default:
		return fmt.Sprintf("(%s) ignoring weight from tracked file %s due to SYNC group. specify weight 0", instance, m.Name)
	}
}

// UnweightedMemberTrackers lists the weighted trackers of in that keepalived
// 2.2.7 neutralises because in is a sync group member and the group does
// not set sync_group_tracking_weight (vrrp.c vrrp_complete_instance, man5
// keepalived.conf; each case verified against 2.2.7's log and -d dump):
//   - track_interface with a weight: followed with weight 0;
//   - track_script with a weight: dropped;
//   - track_file with weight 1 (the default): followed with weight 0; with
//     any other non-zero weight: dropped.
//
// track_process keeps its weight: 2.2.7 does not apply the rule to it
// (its dump lists a member's process with its weight), and neither do we.
// Nil when in is in no group, or the group allows weights.
func (c *Config) UnweightedMemberTrackers(in *Instance) []MemberTracker {
	sg := c.GroupOf(in.Name)
	if sg == nil || sg.TrackingWeight {
		return nil
	}
	var out []MemberTracker
	for _, r := range in.TrackInterfaces {
		if r.Weight != nil && *r.Weight != 0 {
			out = append(out, MemberTracker{Keyword: "track_interface", Name: r.Name, Weight: *r.Weight, Pos: r.Pos})
		}
	}
	for _, r := range in.TrackScripts {
		w := 0
		for _, s := range c.Scripts {
			if s.Name == r.Name {
				w = s.Weight
			}
		}
		if r.Weight != nil {
			w = *r.Weight
		}
		if w != 0 {
			out = append(out, MemberTracker{Keyword: "track_script", Name: r.Name, Weight: w, Dropped: true, Pos: r.Pos})
		}
	}
	for _, r := range in.TrackFiles {
		w := 1
		for _, f := range c.TrackFiles {
			if f.Name == r.Name {
				w = f.Weight
			}
		}
		if r.Weight != nil {
			w = *r.Weight
		}
		if w != 0 {
			out = append(out, MemberTracker{Keyword: "track_file", Name: r.Name, Weight: w, Dropped: w != 1, Pos: r.Pos})
		}
	}
	return out
}
