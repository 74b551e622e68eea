package fsm

// Track is one tracker's say in an instance's priority: what it adds now, or
// that it forces FAULT. Trackers (engine/track) compute it; ScriptTrack does
// so for the common weight semantics.
type Track struct {
	Delta int  // added to the base priority
	Fault bool // the instance must be in FAULT
}

// ScriptTrack is the contribution of a vrrp_script or track_interface with
// the given weight (after `reverse`) in state ok (reference §1.5): a positive
// weight is added while it succeeds, a negative one while it fails, and a
// weight of 0 turns a failure into FAULT.
func ScriptTrack(weight int, ok bool) Track {
	switch {
	case weight == 0:
		return Track{Fault: !ok}
	case weight > 0 && ok, weight < 0 && !ok:
		return Track{Delta: weight}
	}
	return Track{}
}

// minTrackValue: one tracker contributing less than -253 forces FAULT (man5 "Track files",
// reference §1.5).
const minTrackValue = -253

// EffectivePriority is base + Σ deltas clamped to [1, 254], and whether the
// instance must be in FAULT (reference §1.5). A base of 255 (the owner) is
// never changed, and no tracker can lift another base to 255.
func EffectivePriority(base int, tracks []Track) (prio int, fault bool) {
	sum := 0
	for _, t := range tracks {
		if t.Fault || t.Delta < minTrackValue {
			fault = true
		}
		sum += t.Delta
	}
	if base >= ownerPriority {
		return ownerPriority, fault
	}
	return min(max(base+sum, 1), ownerPriority-1), fault
}
