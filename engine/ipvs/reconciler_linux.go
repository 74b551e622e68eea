package ipvs

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/keepwatch/keepwatch/engine/event"
)

// Reconciler keeps the kernel's IPVS table equal to a desired set of
// services. It owns the services it was asked for: services that others put
// in the kernel are left alone unless Flush is called, as keepalived does
// without lvs_flush. Methods are safe for concurrent use.
type Reconciler struct {
	k    Kernel
	sink event.Sink
	now  func() time.Time

	mu      sync.Mutex
	desired map[Key]Service
	// applied is what the kernel holds of our services, as far as we know:
	// Set diffs against it instead of re-reading the kernel, so a weight
	// change costs one netlink request. Resync re-reads and repairs.
	applied map[Key]Service
	// stale is set when an apply failed, so the next Set re-reads the kernel.
	stale bool
	// repairing is set while an apply that found a service gone resyncs,
	// so that the resync's own apply does not start another.
	repairing bool
}

// NewReconciler returns a reconciler that programs k and reports each
// reconcile to sink.
func NewReconciler(k Kernel, sink event.Sink) *Reconciler {
	if sink == nil {
		sink = event.Discard
	}
	return &Reconciler{k: k, sink: sink, now: time.Now, desired: map[Key]Service{}, applied: map[Key]Service{}}
}

// Report says what one reconcile did.
type Report struct {
	Ops                     []Op
	Added, Changed, Removed int
	Duration                time.Duration
}

// Set makes services the desired table and applies the difference. The
// difference is computed against what the reconciler last applied, not
// read back from the kernel (Resync does that), unless a previous apply
// failed. Invalid services are rejected before anything is applied.
func (r *Reconciler) Set(services []Service) (Report, error) {
	desired, err := own(services)
	if err != nil {
		return Report{}, err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	clear(r.desired)
	for _, s := range desired {
		r.desired[s.Key] = s
	}
	if r.stale {
		return r.resyncLocked()
	}
	actual := make([]Service, 0, len(r.applied))
	for _, s := range r.applied {
		actual = append(actual, s)
	}
	return r.applyLocked(Diff(desired, actual))
}

// Update adds or replaces only the given services in the desired table and
// applies their difference, leaving the other services alone: what the
// agent calls when one virtual server's real servers change, so the work is
// proportional to that virtual server, not to the whole table.
func (r *Reconciler) Update(services ...Service) (Report, error) {
	desired, err := own(services)
	if err != nil {
		return Report{}, err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, s := range desired {
		r.desired[s.Key] = s
	}
	if r.stale {
		return r.resyncLocked()
	}
	actual := make([]Service, 0, len(desired))
	for _, s := range desired {
		if a, ok := r.applied[s.Key]; ok {
			actual = append(actual, a)
		}
	}
	return r.applyLocked(Diff(desired, actual))
}

// Remove takes services out of the desired table and the kernel.
func (r *Reconciler) Remove(keys ...Key) (Report, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	var actual []Service
	for _, k := range keys {
		delete(r.desired, k)
		if a, ok := r.applied[k]; ok {
			actual = append(actual, a)
		}
	}
	if r.stale {
		return r.resyncLocked()
	}
	return r.applyLocked(Diff(nil, actual))
}

// own validates services and returns a copy the reconciler owns.
func own(services []Service) ([]Service, error) {
	for i := range services {
		if err := services[i].Validate(); err != nil {
			return nil, err
		}
	}
	desired := make([]Service, len(services))
	for i := range services {
		desired[i] = services[i]
		desired[i].Key = services[i].Key.normal()
		desired[i].Destinations = slices.Clone(services[i].Destinations)
		for j := range desired[i].Destinations {
			desired[i].Destinations[j].Addr = desired[i].Destinations[j].Addr.Unmap()
		}
	}
	if err := duplicates(desired); err != nil {
		return nil, err
	}
	return desired, nil
}

// Resync reads the kernel's table and repairs whatever differs from the
// desired one: services or destinations removed, added or edited behind the
// reconciler's back (someone ran ipvsadm -C, or -e). Services the reconciler
// does not own are neither read in detail nor touched.
func (r *Reconciler) Resync() (Report, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.resyncLocked()
}

func (r *Reconciler) resyncLocked() (Report, error) {
	start := r.now()
	mine := func(k Key) bool {
		_, ok := r.applied[k]
		_, want := r.desired[k]
		return ok || want
	}
	all, err := Read(r.k, mine)
	if err != nil {
		r.emit(start, nil, err)
		return Report{}, err
	}
	actual := all[:0]
	for _, s := range all {
		if mine(s.Key) {
			actual = append(actual, s)
		}
	}
	clear(r.applied)
	for _, s := range actual {
		r.applied[s.Key] = s
	}
	r.stale = false
	desired := make([]Service, 0, len(r.desired))
	for _, s := range r.desired {
		desired = append(desired, s)
	}
	return r.applyLockedFrom(start, Diff(desired, actual))
}

func (r *Reconciler) applyLocked(ops []Op) (Report, error) {
	return r.applyLockedFrom(r.now(), ops)
}

func (r *Reconciler) applyLockedFrom(start time.Time, ops []Op) (Report, error) {
	_, err := Apply(r.k, ops)
	r.record(ops)
	if err != nil && errors.Is(err, unix.ESRCH) && !r.repairing {
		// A service the reconciler had applied is gone: someone removed
		// it behind our back (ipvsadm -C) since the last read. Read the
		// table back and repair it now, rather than report a failure the
		// next resync would repair anyway (the kernel tier's "ipvsadm -C"
		// step caught a health change landing in that window).
		r.repairing = true
		defer func() { r.repairing = false }()
		return r.resyncLocked()
	}
	if err != nil {
		r.stale = true
	}
	rep := Report{Ops: ops, Duration: r.now().Sub(start)}
	rep.Added, rep.Changed, rep.Removed = Counts(ops)
	r.emit(start, ops, err)
	return rep, err
}

// record updates applied as if every op had succeeded; a failure marks the
// reconciler stale, and the next Set or Resync reads the truth back.
func (r *Reconciler) record(ops []Op) {
	for i := range ops {
		o := &ops[i]
		k := o.Service.Key
		switch o.Kind {
		case DelService:
			delete(r.applied, k)
		case AddService:
			s := o.Service
			s.Destinations = nil
			r.applied[k] = s
		case UpdateService:
			s := o.Service
			s.Destinations = r.applied[k].Destinations
			r.applied[k] = s
		case AddDestination, UpdateDestination, DelDestination:
			s := r.applied[k]
			i := slices.IndexFunc(s.Destinations, func(d Destination) bool { return d.AddrPort() == o.Dest.AddrPort() })
			switch {
			case o.Kind == DelDestination && i >= 0:
				s.Destinations = slices.Delete(s.Destinations, i, i+1)
			case o.Kind != DelDestination && i >= 0:
				s.Destinations[i] = o.Dest
			case o.Kind != DelDestination:
				s.Destinations = append(s.Destinations, o.Dest)
			}
			r.applied[k] = s
		}
	}
}

func (r *Reconciler) emit(start time.Time, ops []Op, err error) {
	e := event.Event{Kind: event.KindIPVSReconcile, Time: start, Duration: r.now().Sub(start), Err: err}
	e.Added, e.Changed, e.Removed = Counts(ops)
	r.sink.Emit(e)
}

// Run resyncs every interval until ctx is cancelled, so changes made behind
// the reconciler's back are repaired within one interval. Failures are
// reported as events and retried on the next tick. Run returns ctx.Err().
func (r *Reconciler) Run(ctx context.Context, interval time.Duration) error {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
			_, _ = r.Resync()
		}
	}
}

// Flush empties the kernel's whole IPVS table, including services the
// reconciler does not own: keepalived's lvs_flush at start, and
// lvs_flush_on_stop (full) at stop. The desired table is kept, so a Resync
// after a start-time Flush puts it back.
func (r *Reconciler) Flush() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	clear(r.applied)
	if err := r.k.Flush(); err != nil {
		r.stale = true
		return fmt.Errorf("ipvs: flush: %w", err)
	}
	return nil
}

// Stop removes the services the reconciler owns and forgets the desired
// table: keepalived's behaviour at shutdown without a full lvs_flush_on_stop.
func (r *Reconciler) Stop() (Report, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	clear(r.desired)
	if r.stale {
		return r.resyncLocked()
	}
	actual := make([]Service, 0, len(r.applied))
	for _, s := range r.applied {
		actual = append(actual, s)
	}
	return r.applyLocked(Diff(nil, actual))
}

// Counters reads the kernel's counters of the services the reconciler owns,
// each with its destinations, sorted by key.
func (r *Reconciler) Counters() ([]Service, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	mine := func(k Key) bool { _, ok := r.applied[k]; return ok }
	all, err := Read(r.k, mine)
	if err != nil {
		return nil, err
	}
	out := slices.DeleteFunc(all, func(s Service) bool { return !mine(s.Key) })
	slices.SortFunc(out, func(a, b Service) int { return compareKeys(a.Key, b.Key) })
	return out, nil
}

func duplicates(services []Service) error {
	seen := make(map[Key]bool, len(services))
	for i := range services {
		if seen[services[i].Key] {
			return fmt.Errorf("ipvs: service %s twice in the desired table", services[i].Key)
		}
		seen[services[i].Key] = true
	}
	return nil
}
