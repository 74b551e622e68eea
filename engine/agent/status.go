package agent

import (
	"sort"
	"strings"

	"github.com/keepwatch/keepwatch/engine/dump"
	"github.com/keepwatch/keepwatch/engine/event"
	"github.com/keepwatch/keepwatch/engine/vrrp"
	"github.com/keepwatch/keepwatch/engine/vrrp/router"
)

// Status is a snapshot of every instance, sorted by name: the running ones,
// and those that could not start, in FAULT with FaultReason.
func (a *Agent) Status() []InstanceStatus {
	a.mu.Lock()
	defer a.mu.Unlock()
	out := make([]InstanceStatus, 0, len(a.units)+len(a.failed))
	for r := range a.runningInstances() {
		s := InstanceStatus{Snapshot: r.unit.inst.Snapshots()[r.idx]}
		if len(r.unit.members) > 1 || strings.HasPrefix(r.unit.name, "group:") {
			s.SyncGroup = strings.TrimPrefix(r.unit.name, "group:")
		}
		for _, v := range r.plan.router.VIPs {
			s.VIPs = append(s.VIPs, v.Prefix.String())
		}
		for _, c := range r.set.Contributions() {
			s.Trackers = append(s.Trackers, TrackerStatus{Kind: c.Ref.Kind.String(), Name: c.Ref.Name, Weight: c.Ref.Weight,
				Known: c.State.Known, Up: c.State.Up, Value: c.State.Value, Delta: c.Delta, Fault: c.Fault,
				Disabled: c.State.Disabled, Error: c.State.Err})
		}
		a.addDump(&s)
		out = append(out, s)
	}
	for _, f := range a.failed {
		s := InstanceStatus{Snapshot: router.Snapshot{Name: f.name, VRID: uint8(f.vrid), Interface: f.ifname, Family: f.family,
			State: vrrp.StateFault, LastReason: event.ReasonFault}, SyncGroup: f.syncGroup, FaultReason: f.reason}
		if a.cfg != nil {
			for i := range a.cfg.Instances {
				if in := &a.cfg.Instances[i]; in.Name == f.name {
					s.BasePriority, s.Priority = in.Priority, in.Priority
					for _, v := range in.VIPs {
						s.VIPs = append(s.VIPs, v.Prefix.String())
					}
				}
			}
		}
		out = append(out, s)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// Failed lists the instances that could not start, as "vrrp_instance NAME:
// reason", sorted.
func (a *Agent) Failed() []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	out := make([]string, 0, len(a.failed))
	for _, f := range a.failed {
		out = append(out, "vrrp_instance "+f.name+": "+f.reason)
	}
	sort.Strings(out)
	return out
}

// InstanceStatus is one instance in the status API.
type InstanceStatus struct {
	router.Snapshot
	SyncGroup string
	VIPs      []string
	Trackers  []TrackerStatus
	// FaultReason says why an instance that could not start is in FAULT.
	FaultReason string
	// Data and Stats are the instance as keepalived's JSON dump shows it.
	Data  dump.Data
	Stats dump.Stats
}

// addDump fills s's keepalived dump fields (a.mu held).
func (a *Agent) addDump(s *InstanceStatus) {
	s.Stats = a.stats.Get(s.Name)
	if a.cfg == nil {
		return
	}
	for i := range a.cfg.Instances {
		if in := &a.cfg.Instances[i]; in.Name == s.Name {
			s.Data = dump.NewData(a.cfg, in, s.Snapshot)
		}
	}
}

// ClearStats zeroes keepalived's counters (its STATS_CLEAR signal); the
// Prometheus counters are not touched.
func (a *Agent) ClearStats() { a.stats.Clear() }

// TrackerStatus is one tracker's share of an instance's priority.
type TrackerStatus struct {
	Kind   string `json:"kind"`
	Name   string `json:"name"`
	Weight int    `json:"weight"`
	Known  bool   `json:"known"`
	Up     bool   `json:"up"`
	Value  int64  `json:"value,omitempty"`
	Delta  int    `json:"priority_delta"`
	Fault  bool   `json:"fault,omitempty"`
	// Disabled: a vrrp_script script security (or a missing script or
	// user) keeps from running; it counts for nothing, as in keepalived.
	Disabled bool `json:"disabled,omitempty"`
	// Error says why it is disabled, or why a track_file cannot be read.
	Error string `json:"error,omitempty"`
}
