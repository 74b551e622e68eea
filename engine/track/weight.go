package track

// Kind is the kind of a tracker.
type Kind uint8

// Tracker kinds.
const (
	KindScript Kind = iota + 1
	KindInterface
	KindFile
	KindProcess
)

func (k Kind) String() string {
	switch k {
	case KindScript:
		return "script"
	case KindInterface:
		return "interface"
	case KindFile:
		return "file"
	case KindProcess:
		return "process"
	}
	return "unknown"
}

// BoolContribution is what a boolean tracker (script, interface, process
// quorum) adds to an instance's priority, or whether it faults it, following
// keepalived (vrrp_track.c process_script_update_priority and the
// initialise_* functions):
//   - weight 0: the instance is in FAULT while the tracker is down (with
//     reverse, while it is up);
//   - weight > 0: up adds weight (reverse: subtracts it), down adds nothing;
//   - weight < 0: down adds weight (reverse: subtracts it), up adds nothing.
func BoolContribution(weight int, reverse, up bool) (delta int, fault bool) {
	m := 1
	if reverse {
		m = -1
	}
	switch {
	case weight == 0:
		return 0, up != (m == 1)
	case weight > 0:
		if up {
			return weight * m, false
		}
		return 0, false
	default:
		if up {
			return 0, false
		}
		return weight * m, false
	}
}

// FileContribution is what a track_file value adds (reference §1.5): weight 0
// faults on any non-zero value; otherwise value × weight (negated with
// reverse), clamped to [-254, 253], where -254 means FAULT.
func FileContribution(weight int, reverse bool, value int64) (delta int, fault bool) {
	if weight == 0 {
		return 0, value != 0
	}
	if reverse {
		weight = -weight
	}
	s := value * int64(weight)
	if s <= -254 {
		return 0, true
	}
	if s > 253 {
		s = 253
	}
	return int(s), false
}

// EffectivePriority applies tracker deltas to a base priority (reference
// §1.5): the address owner (255) never changes, and the result is clamped to
// [1, 254] so trackers can neither reach 255 nor 0.
func EffectivePriority(base, delta int) int {
	if base == 255 {
		return 255
	}
	p := base + delta
	if p < 1 {
		return 1
	}
	if p > 254 {
		return 254
	}
	return p
}
