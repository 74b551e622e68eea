package metrics

import (
	"slices"
	"sync"
	"sync/atomic"
)

// cowMap is a copy-on-write map: lookups are a lock-free atomic load and a
// plain map read, so the event path never allocates or contends; inserts copy
// the map under a mutex. It suits label children, which are created rarely
// (at declaration or on a label value's first event) and read on every event.
type cowMap[K comparable, V any] struct {
	mu sync.Mutex
	m  atomic.Pointer[map[K]V]
}

// load returns the value for k, if any.
func (c *cowMap[K, V]) load(k K) (V, bool) {
	if p := c.m.Load(); p != nil {
		v, ok := (*p)[k]
		return v, ok
	}
	var zero V
	return zero, false
}

// loadOrCreate returns the value for k, calling create (under the lock) to
// make it if it is missing.
func (c *cowMap[K, V]) loadOrCreate(k K, create func() V) V {
	if v, ok := c.load(k); ok {
		return v
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	old := c.m.Load()
	if old != nil {
		if v, ok := (*old)[k]; ok {
			return v
		}
	}
	v := create()
	c.storeLocked(old, func(m map[K]V) { m[k] = v })
	return v
}

// update copies the map, lets edit change the copy and publishes it.
func (c *cowMap[K, V]) update(edit func(m map[K]V)) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.storeLocked(c.m.Load(), edit)
}

func (c *cowMap[K, V]) storeLocked(old *map[K]V, edit func(m map[K]V)) {
	n := 1
	if old != nil {
		n += len(*old)
	}
	m := make(map[K]V, n)
	if old != nil {
		for k, v := range *old {
			m[k] = v
		}
	}
	edit(m)
	c.m.Store(&m)
}

// snapshot returns the current map; callers must not modify it.
func (c *cowMap[K, V]) snapshot() map[K]V {
	if p := c.m.Load(); p != nil {
		return *p
	}
	return nil
}

// cowList is a copy-on-write list of one instance's label children that
// appear rarely and are few: its VIPs, its (from, to, reason) transitions,
// drop reasons outside event.DropReasons. A cowMap of one or two entries
// held a map group of 8 slots (288 bytes) and a header per instance (issue
// 12); a list holds the entries it has. Lookups are a lock-free atomic load
// and a linear scan, which suits them: they run on a VIP's, a transition's
// or an unknown drop reason's event, never per advert, and a scan of an
// instance's VIPs (at most a few hundred) costs less than the event.
type cowList[K comparable, V any] struct {
	mu sync.Mutex
	l  atomic.Pointer[[]cowEntry[K, V]]
}

type cowEntry[K comparable, V any] struct {
	k K
	v V
}

// load returns the value for k, if any.
func (c *cowList[K, V]) load(k K) (V, bool) {
	if p := c.l.Load(); p != nil {
		for i := range *p {
			if e := &(*p)[i]; e.k == k {
				return e.v, true
			}
		}
	}
	var zero V
	return zero, false
}

// loadOrCreate returns the value for k, calling create (under the lock) to
// make it if it is missing.
func (c *cowList[K, V]) loadOrCreate(k K, create func() V) V {
	if v, ok := c.load(k); ok {
		return v
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if v, ok := c.load(k); ok {
		return v
	}
	v := create()
	var old []cowEntry[K, V]
	if p := c.l.Load(); p != nil {
		old = *p
	}
	l := make([]cowEntry[K, V], len(old)+1)
	copy(l, old)
	l[len(old)] = cowEntry[K, V]{k, v}
	c.l.Store(&l)
	return v
}

// replace publishes l, which the caller no longer writes, as the whole
// list.
func (c *cowList[K, V]) replace(l []cowEntry[K, V]) {
	c.mu.Lock()
	defer c.mu.Unlock()
	l = slices.Clip(l)
	c.l.Store(&l)
}

// keep drops the entries for which keep returns false.
func (c *cowList[K, V]) keep(keep func(K) bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	p := c.l.Load()
	if p == nil {
		return
	}
	var l []cowEntry[K, V]
	for _, e := range *p {
		if keep(e.k) {
			l = append(l, e)
		}
	}
	if len(l) == len(*p) {
		return
	}
	l = slices.Clip(l)
	c.l.Store(&l)
}

// snapshot returns the current entries; callers must not modify them.
func (c *cowList[K, V]) snapshot() []cowEntry[K, V] {
	if p := c.l.Load(); p != nil {
		return *p
	}
	return nil
}
