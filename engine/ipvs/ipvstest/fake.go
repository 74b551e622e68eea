// Package ipvstest provides an in-memory IPVS kernel for unit tests of the reconciler's pure logic.
package ipvstest

import (
	"fmt"
	"slices"
	"sync"

	"github.com/moby/ipvs"
	"golang.org/x/sys/unix"
)

// Kernel is an in-memory stand-in for a moby/ipvs Handle. It keeps services
// and destinations as the kernel would (returning the same errnos for
// missing and duplicate objects, setting the hashed flag) and counts calls.
// It is for unit tests of diff logic only: the real kernel is tested in the
// VM tier.
type Kernel struct {
	mu    sync.Mutex
	svcs  []*entry
	Calls map[string]int
	// Fail, if set, is consulted before each mutating call; a non-nil
	// return is that call's error.
	Fail func(op string, s *ipvs.Service, d *ipvs.Destination) error
}

type entry struct {
	svc   ipvs.Service
	dests []ipvs.Destination
}

// New returns an empty fake kernel.
func New() *Kernel { return &Kernel{Calls: map[string]int{}} }

func svcKey(s *ipvs.Service) string {
	if s.FWMark != 0 {
		return fmt.Sprintf("fwm/%d/%d", s.AddressFamily, s.FWMark)
	}
	return fmt.Sprintf("%d/%s/%d/%d", s.AddressFamily, s.Address.String(), s.Port, s.Protocol)
}

func (k *Kernel) find(s *ipvs.Service) int {
	key := svcKey(s)
	return slices.IndexFunc(k.svcs, func(e *entry) bool { return svcKey(&e.svc) == key })
}

func destIndex(e *entry, d *ipvs.Destination) int {
	return slices.IndexFunc(e.dests, func(x ipvs.Destination) bool {
		return x.Address.Equal(d.Address) && x.Port == d.Port
	})
}

func (k *Kernel) call(op string, s *ipvs.Service, d *ipvs.Destination) error {
	k.Calls[op]++
	if k.Fail != nil {
		return k.Fail(op, s, d)
	}
	return nil
}

func copySvc(s *ipvs.Service) ipvs.Service {
	c := *s
	c.Address = slices.Clone(s.Address)
	c.Flags |= 0x2 // IP_VS_SVC_F_HASHED, as the kernel reports it
	return c
}

// GetServices implements the reconciler's Kernel interface.
func (k *Kernel) GetServices() ([]*ipvs.Service, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.Calls["GetServices"]++
	out := make([]*ipvs.Service, 0, len(k.svcs))
	for _, e := range k.svcs {
		c := e.svc
		out = append(out, &c)
	}
	return out, nil
}

// GetDestinations implements the reconciler's Kernel interface.
func (k *Kernel) GetDestinations(s *ipvs.Service) ([]*ipvs.Destination, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.Calls["GetDestinations"]++
	i := k.find(s)
	if i < 0 {
		return nil, unix.ESRCH
	}
	out := make([]*ipvs.Destination, 0, len(k.svcs[i].dests))
	for _, d := range k.svcs[i].dests {
		c := d
		out = append(out, &c)
	}
	return out, nil
}

// NewService implements the reconciler's Kernel interface.
func (k *Kernel) NewService(s *ipvs.Service) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	if err := k.call("NewService", s, nil); err != nil {
		return err
	}
	if k.find(s) >= 0 {
		return unix.EEXIST
	}
	k.svcs = append(k.svcs, &entry{svc: copySvc(s)})
	return nil
}

// UpdateService implements the reconciler's Kernel interface.
func (k *Kernel) UpdateService(s *ipvs.Service) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	if err := k.call("UpdateService", s, nil); err != nil {
		return err
	}
	i := k.find(s)
	if i < 0 {
		return unix.ESRCH
	}
	k.svcs[i].svc = copySvc(s)
	return nil
}

// DelService implements the reconciler's Kernel interface.
func (k *Kernel) DelService(s *ipvs.Service) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	if err := k.call("DelService", s, nil); err != nil {
		return err
	}
	i := k.find(s)
	if i < 0 {
		return unix.ESRCH
	}
	k.svcs = slices.Delete(k.svcs, i, i+1)
	return nil
}

// NewDestination implements the reconciler's Kernel interface.
func (k *Kernel) NewDestination(s *ipvs.Service, d *ipvs.Destination) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	if err := k.call("NewDestination", s, d); err != nil {
		return err
	}
	i := k.find(s)
	if i < 0 {
		return unix.ESRCH
	}
	if destIndex(k.svcs[i], d) >= 0 {
		return unix.EEXIST
	}
	c := *d
	c.Address = slices.Clone(d.Address)
	k.svcs[i].dests = append(k.svcs[i].dests, c)
	return nil
}

// UpdateDestination implements the reconciler's Kernel interface.
func (k *Kernel) UpdateDestination(s *ipvs.Service, d *ipvs.Destination) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	if err := k.call("UpdateDestination", s, d); err != nil {
		return err
	}
	i := k.find(s)
	if i < 0 {
		return unix.ESRCH
	}
	j := destIndex(k.svcs[i], d)
	if j < 0 {
		return unix.ENOENT
	}
	c := *d
	c.Address = slices.Clone(d.Address)
	k.svcs[i].dests[j] = c
	return nil
}

// DelDestination implements the reconciler's Kernel interface.
func (k *Kernel) DelDestination(s *ipvs.Service, d *ipvs.Destination) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	if err := k.call("DelDestination", s, d); err != nil {
		return err
	}
	i := k.find(s)
	if i < 0 {
		return unix.ESRCH
	}
	j := destIndex(k.svcs[i], d)
	if j < 0 {
		return unix.ENOENT
	}
	k.svcs[i].dests = slices.Delete(k.svcs[i].dests, j, j+1)
	return nil
}

// Flush implements the reconciler's Kernel interface.
func (k *Kernel) Flush() error {
	k.mu.Lock()
	defer k.mu.Unlock()
	if err := k.call("Flush", nil, nil); err != nil {
		return err
	}
	k.svcs = nil
	return nil
}

// Mutations is the number of mutating calls so far.
func (k *Kernel) Mutations() int {
	k.mu.Lock()
	defer k.mu.Unlock()
	n := 0
	for op, c := range k.Calls {
		if op != "GetServices" && op != "GetDestinations" {
			n += c
		}
	}
	return n
}

// ResetCalls zeroes the call counters.
func (k *Kernel) ResetCalls() {
	k.mu.Lock()
	defer k.mu.Unlock()
	clear(k.Calls)
}
