package agent

import (
	"cmp"
	"context"
	"reflect"

	"github.com/keepwatch/keepwatch/engine/config"
	"github.com/keepwatch/keepwatch/engine/script"
	"github.com/keepwatch/keepwatch/engine/track"
)

// syncTrackers starts the trackers the config's instances follow and
// returns the others, to be stopped; a tracker whose config did not change
// keeps running, with its state. Called with a.mu held, so it never waits
// for a tracker to stop (a stopping tracker may be waiting for a.mu to
// report): the caller stops them after unlocking. Reports from a replaced
// tracker are ignored.
func (a *Agent) syncTrackers(c *config.Config) []*task {
	used := map[trackerKey]bool{}
	for r := range a.runningInstances() {
		for _, ref := range r.plan.refs {
			used[trackerKey{ref.Kind, ref.Name}] = true
		}
	}
	for i := range c.Instances {
		for _, ref := range trackRefs(c, &c.Instances[i]) {
			used[trackerKey{ref.Kind, ref.Name}] = true
		}
	}
	want := map[trackerKey]any{}
	for _, s := range c.Scripts {
		if k := (trackerKey{track.KindScript, s.Name}); used[k] {
			want[k] = s
		}
	}
	for _, f := range c.TrackFiles {
		if k := (trackerKey{track.KindFile, f.Name}); used[k] {
			want[k] = f
		}
	}
	for _, p := range c.TrackProcesses {
		if k := (trackerKey{track.KindProcess, p.Name}); used[k] {
			want[k] = p
		}
	}
	var stale []*task
	for k, rt := range a.trackers {
		if spec, ok := want[k]; ok && reflect.DeepEqual(spec, rt.spec) {
			delete(want, k)
			continue
		}
		stale = append(stale, rt.task)
		delete(a.trackers, k)
		delete(a.states, k)
	}
	for k, spec := range want {
		a.startTracker(c, k, spec)
	}
	return stale
}

func (a *Agent) startTracker(c *config.Config, k trackerKey, spec any) {
	rt := &runningTracker{spec: spec}
	report := func(st track.State) { a.onTrackerFrom(rt, k, st) }
	var run func(ctx context.Context) error
	switch s := spec.(type) {
	case config.Script:
		argv := s.Args
		if len(argv) == 0 {
			argv = config.SplitCommand(s.Command)
		}
		pol := script.Policy{User: c.Global.ScriptUser, Group: c.Global.ScriptGroup, Security: c.Global.EnableScriptSecurity}
		t := &track.Script{Name: s.Name, Spec: script.Spec{Argv: argv, User: s.User, Group: s.Group, Policy: pol, Timeout: s.Timeout},
			Interval: s.Interval, Rise: s.Rise, Fall: s.Fall, InitFail: s.InitFail, Sink: a.sink, OnChange: report}
		if t.Interval == 0 {
			t.Interval = config.DefaultScriptInterval
		}
		run = func(ctx context.Context) error { t.Run(ctx); return nil }
	case config.TrackFile:
		t := &track.File{Name: s.Name, Path: s.File, Init: s.InitFile, InitOverwrite: s.InitOverwrite, Sink: a.sink, OnChange: report, Log: a.log}
		run = func(ctx context.Context) error { return untilCancelled(ctx, t.Run(ctx)) }
	case config.TrackProcess:
		t := &track.Process{Name: s.Name, Process: s.Process, Args: s.Args, ParamMatch: s.ParamMatch,
			FullCommand: s.FullCommand, Quorum: s.Quorum, QuorumMax: s.QuorumMax,
			TerminateDelay: cmp.Or(s.TerminateDelay, s.Delay), ForkDelay: cmp.Or(s.ForkDelay, s.Delay), OnChange: report}
		run = func(ctx context.Context) error { t.Run(ctx); return nil }
	default:
		return
	}
	a.trackers[k] = rt
	rt.task = goTask(a.log, k.kind.String()+" "+k.name, run)
}

// onTrackerFrom applies a report if its tracker is still the running one.
func (a *Agent) onTrackerFrom(rt *runningTracker, k trackerKey, st track.State) {
	a.mu.Lock()
	live := a.trackers[k] == rt
	a.mu.Unlock()
	if live {
		a.onTracker(k.kind, k.name, st, st.Cause)
	}
}

// syncGroupRefs applies in's vrrp_sync_group to the trackers it follows
// (reference §1.4): without sync_group_tracking_weight the member's own
// weighted trackers are neutralised as keepalived does
// (config.UnweightedMemberTrackers), then every tracker of the group is
// followed by every member, with the group's weights, so one failure
// faults or lowers them all alike (vrrp.c sync_group_tracking_init). A
// member at priority 255 clears the group's weights [verified 2.2.7]: an address owner's
// priority never moves, so a weighted tracker could only ever be ignored.
func syncGroupRefs(c *config.Config, in *config.Instance, refs []track.Ref) []track.Ref {
	sg := c.GroupOf(in.Name)
	if sg == nil {
		return refs
	}
	kinds := map[string]track.Kind{"track_interface": track.KindInterface, "track_script": track.KindScript, "track_file": track.KindFile}
	for _, m := range c.UnweightedMemberTrackers(in) {
		kind := kinds[m.Keyword]
		out := refs[:0:0]
		for _, r := range refs {
			if r.Kind == kind && r.Name == m.Name {
				if m.Dropped {
					continue
				}
				r.Weight = 0
			}
			out = append(out, r)
		}
		refs = out
	}
	owner := false
	for _, m := range sg.Members {
		for i := range c.Instances {
			owner = owner || (c.Instances[i].Name == m && c.Instances[i].Priority == 255)
		}
	}
	add := func(kind track.Kind, r config.TrackRef, weight int, reverse bool) {
		if r.Weight != nil {
			weight = *r.Weight
		}
		if r.Reverse != nil {
			reverse = *r.Reverse
		}
		if owner {
			weight = 0
		}
		refs = append(refs, track.Ref{Kind: kind, Name: r.Name, Weight: weight, Reverse: reverse})
	}
	for _, r := range sg.TrackInterfaces {
		add(track.KindInterface, r, 0, false)
	}
	addNamed(c, sg.TrackScripts, sg.TrackFiles, sg.TrackProcesses, add)
	return refs
}
