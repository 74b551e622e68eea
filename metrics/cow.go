package metrics

import (
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
