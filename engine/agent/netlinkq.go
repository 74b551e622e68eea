package agent

import (
	"github.com/keepwatch/keepwatch/engine/netif"
)

// serialAddrs runs every address, route and rule change on one goroutine.
// vishvananda/netlink keeps a 64 KiB receive buffer on the stack, so each
// instance goroutine that added a VIP itself grew to 128 KiB and kept it
// (a steady state that allocates nothing rarely collects): 250 masters held
// about 30 MiB of stacks. One worker holds one such stack. A takeover waits
// for its turn, microseconds against the netlink call's 200 µs.
type serialAddrs struct {
	sys  addrSystem
	work chan func()
}

// addrSystem is the part of the Platform serialAddrs serialises.
type addrSystem interface {
	netif.Addresses
	netif.Routes
	netif.Rules
}

func newSerialAddrs(sys addrSystem) *serialAddrs {
	s := &serialAddrs{sys: sys, work: make(chan func())}
	go func() {
		for f := range s.work {
			f()
		}
	}()
	return s
}

func (s *serialAddrs) do(f func() error) error {
	done := make(chan error, 1)
	s.work <- func() { done <- f() }
	return <-done
}

// close stops the worker; no call may follow.
func (s *serialAddrs) close() { close(s.work) }

func (s *serialAddrs) AddAddress(a netif.Address) error {
	return s.do(func() error { return s.sys.AddAddress(a) })
}

func (s *serialAddrs) RemoveAddress(a netif.Address) error {
	return s.do(func() error { return s.sys.RemoveAddress(a) })
}

func (s *serialAddrs) AddRoute(r netif.Route) error {
	return s.do(func() error { return s.sys.AddRoute(r) })
}

func (s *serialAddrs) RemoveRoute(r netif.Route) error {
	return s.do(func() error { return s.sys.RemoveRoute(r) })
}

func (s *serialAddrs) AddRule(r netif.Rule) error {
	return s.do(func() error { return s.sys.AddRule(r) })
}

func (s *serialAddrs) RemoveRule(r netif.Rule) error {
	return s.do(func() error { return s.sys.RemoveRule(r) })
}
