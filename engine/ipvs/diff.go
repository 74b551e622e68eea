package ipvs

import (
	"fmt"
	"net/netip"
	"slices"
)

// OpKind says what one kernel operation does.
type OpKind uint8

// Operation kinds, in the order Diff emits them for one service.
const (
	DelService OpKind = iota + 1
	AddService
	UpdateService
	DelDestination
	AddDestination
	UpdateDestination
)

func (k OpKind) String() string {
	switch k {
	case DelService:
		return "del-service"
	case AddService:
		return "add-service"
	case UpdateService:
		return "update-service"
	case DelDestination:
		return "del-destination"
	case AddDestination:
		return "add-destination"
	case UpdateDestination:
		return "update-destination"
	}
	return "unknown"
}

// Op is one kernel operation. Service carries the service's settings (its
// Destinations are ignored); Dest is set for destination operations.
type Op struct {
	Kind    OpKind
	Service Service
	Dest    Destination
}

func (o Op) String() string {
	if o.Kind >= DelDestination {
		return fmt.Sprintf("%s %s %s w=%d %s", o.Kind, o.Service.Key, o.Dest.AddrPort(), o.Dest.Weight, o.Dest.Forward)
	}
	return fmt.Sprintf("%s %s %s", o.Kind, o.Service.Key, o.Service.Scheduler)
}

// Diff returns the operations that turn actual into desired: services in
// actual but not desired are deleted first (the kernel drops their
// destinations with them), then each desired service is added or updated and
// its destinations deleted, added or updated. Services compare by Key,
// destinations by address and port; the order is deterministic. Neither
// argument is modified.
func Diff(desired, actual []Service) []Op {
	have := make(map[Key]*Service, len(actual))
	for i := range actual {
		have[actual[i].Key] = &actual[i]
	}
	want := make(map[Key]bool, len(desired))
	for i := range desired {
		want[desired[i].Key] = true
	}

	var ops []Op
	var gone []Key
	for k := range have {
		if !want[k] {
			gone = append(gone, k)
		}
	}
	slices.SortFunc(gone, compareKeys)
	for _, k := range gone {
		ops = append(ops, Op{Kind: DelService, Service: bare(have[k])})
	}

	order := make([]int, len(desired))
	for i := range order {
		order[i] = i
	}
	slices.SortStableFunc(order, func(a, b int) int { return compareKeys(desired[a].Key, desired[b].Key) })
	for _, i := range order {
		d := &desired[i]
		a := have[d.Key]
		if a == nil {
			ops = append(ops, Op{Kind: AddService, Service: bare(d)})
			for _, dst := range d.Destinations {
				ops = append(ops, Op{Kind: AddDestination, Service: bare(d), Dest: clean(dst)})
			}
			continue
		}
		if !sameService(d, a) {
			ops = append(ops, Op{Kind: UpdateService, Service: bare(d)})
		}
		ops = diffDestinations(ops, d, a)
	}
	return ops
}

func diffDestinations(ops []Op, d, a *Service) []Op {
	// Fast path, the steady state: the same destinations in the same order
	// (what the reconciler recorded is in desired order), so no maps.
	if len(d.Destinations) == len(a.Destinations) {
		same := true
		for i := range d.Destinations {
			if d.Destinations[i].AddrPort() != a.Destinations[i].AddrPort() {
				same = false
				break
			}
		}
		if same {
			for i := range d.Destinations {
				if !sameDestination(&d.Destinations[i], &a.Destinations[i]) {
					ops = append(ops, Op{Kind: UpdateDestination, Service: bare(d), Dest: clean(d.Destinations[i])})
				}
			}
			return ops
		}
	}
	have := make(map[netip.AddrPort]*Destination, len(a.Destinations))
	for i := range a.Destinations {
		have[a.Destinations[i].AddrPort()] = &a.Destinations[i]
	}
	want := make(map[netip.AddrPort]bool, len(d.Destinations))
	for _, dst := range d.Destinations {
		want[dst.AddrPort()] = true
	}
	var gone []netip.AddrPort
	for ap := range have {
		if !want[ap] {
			gone = append(gone, ap)
		}
	}
	slices.SortFunc(gone, netip.AddrPort.Compare)
	for _, ap := range gone {
		ops = append(ops, Op{Kind: DelDestination, Service: bare(d), Dest: clean(*have[ap])})
	}
	for _, dst := range d.Destinations {
		cur := have[dst.AddrPort()]
		switch {
		case cur == nil:
			ops = append(ops, Op{Kind: AddDestination, Service: bare(d), Dest: clean(dst)})
		case !sameDestination(&dst, cur):
			ops = append(ops, Op{Kind: UpdateDestination, Service: bare(d), Dest: clean(dst)})
		}
	}
	return ops
}

// bare is s without its destinations and counters, as carried by an Op.
func bare(s *Service) Service {
	c := *s
	c.Destinations = nil
	c.Stats = Counters{}
	return c
}

func clean(d Destination) Destination {
	d.Stats = Counters{}
	return d
}

// Counts tallies ops the way KindIPVSReconcile reports them.
func Counts(ops []Op) (added, changed, removed int) {
	for _, o := range ops {
		switch o.Kind {
		case AddService, AddDestination:
			added++
		case UpdateService, UpdateDestination:
			changed++
		case DelService, DelDestination:
			removed++
		}
	}
	return added, changed, removed
}
