package track

// Ref is one tracker an instance follows, with the weight that applies to it
// there (a track_* entry's own weight, else the tracker's).
type Ref struct {
	Kind    Kind
	Name    string
	Weight  int
	Reverse bool
}

// State is a tracker's last known state.
type State struct {
	Known bool  // false until the tracker first reports (a script that has not run yet)
	Up    bool  // scripts, interfaces, processes
	Value int64 // files
	// Disabled is set for a vrrp_script that script security or a missing
	// user or file keeps from running: keepalived removes such a script
	// from the instances that track it (vrrp_daemon.c vrrp_script_security),
	// so it adds nothing and faults nothing.
	Disabled bool
	// Err says why the tracker is disabled, or why a track_file could not
	// be read ("" when it was). A track_file in error (a FIFO, device or
	// directory in its place) faults the instances that track it: its
	// value is unknown, and keepalived itself would block on it forever.
	Err string
	// Cause is the ID of the event that produced this state (the script
	// run, the file change), so what it changes can name it as cause.
	Cause uint64
}

// Contribution is one tracker's share of an instance's priority, for the
// status API and for events saying which tracker changed the priority.
type Contribution struct {
	Ref   Ref
	State State
	Delta int
	Fault bool
}

// Set is the trackers of one instance and their state. It is not safe for
// concurrent use: its owner serialises access (the agent, under its lock).
type Set struct {
	Base  int
	refs  []Ref
	state []State
}

// NewSet returns a set for an instance of base priority base.
func NewSet(base int, refs []Ref) *Set {
	return &Set{Base: base, refs: refs, state: make([]State, len(refs))}
}

// Update records a tracker's new state. It reports whether the instance
// follows that tracker.
func (s *Set) Update(kind Kind, name string, st State) bool {
	found := false
	for i, r := range s.refs {
		if r.Kind == kind && r.Name == name {
			st.Known = true
			s.state[i] = st
			found = true
		}
	}
	return found
}

// Priority returns the effective priority and whether any tracker faults
// the instance. A weight-0 tracker that has not reported yet holds the
// instance in FAULT, as keepalived keeps it out of service until its
// scripts have run; other unknown trackers contribute nothing yet.
func (s *Set) Priority() (effective int, fault bool) {
	delta := 0
	for i, r := range s.refs {
		d, f := contribution(r, s.state[i])
		delta += d
		fault = fault || f
	}
	return EffectivePriority(s.Base, delta), fault
}

// Contributions lists each tracker's share, in configuration order.
func (s *Set) Contributions() []Contribution {
	out := make([]Contribution, len(s.refs))
	for i, r := range s.refs {
		d, f := contribution(r, s.state[i])
		out[i] = Contribution{Ref: r, State: s.state[i], Delta: d, Fault: f}
	}
	return out
}

func contribution(r Ref, st State) (int, bool) {
	if st.Disabled {
		return 0, false
	}
	if st.Known && st.Err != "" {
		return 0, true // a tracked file that cannot be read: FAULT
	}
	if !st.Known {
		return 0, r.Weight == 0
	}
	if r.Kind == KindFile {
		return FileContribution(r.Weight, r.Reverse, st.Value)
	}
	return BoolContribution(r.Weight, r.Reverse, st.Up)
}
