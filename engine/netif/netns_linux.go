package netif

import (
	"errors"
	"fmt"
	"runtime"

	"github.com/vishvananda/netns"
)

// A network namespace is a property of an OS thread, and Go moves
// goroutines between threads. Two rules keep every platform call of a Host
// in its namespace: a file descriptor stays in the namespace it was made in
// (sockets, netlink handles from NewHandleAt, /proc/sys/net files), so each
// is made once inside it; and the few lookups that open a socket per call
// (the net package's interface lookups) run on a thread locked into the
// namespace for the call's length (runIn).

// runIn calls fn on the calling goroutine's thread switched into ns, then
// switches back. If switching back fails the thread stays locked, so the
// runtime discards it rather than hand a goroutine a thread in ns.
func runIn(ns netns.NsHandle, fn func() error) error {
	runtime.LockOSThread()
	orig, err := netns.Get()
	if err != nil {
		runtime.UnlockOSThread()
		return fmt.Errorf("netif: current network namespace: %w", err)
	}
	defer orig.Close()
	if err := netns.Set(ns); err != nil {
		runtime.UnlockOSThread()
		return fmt.Errorf("netif: enter network namespace: %w", err)
	}
	ferr := fn()
	if err := netns.Set(orig); err != nil {
		return errors.Join(ferr, fmt.Errorf("netif: leave network namespace: %w", err))
	}
	runtime.UnlockOSThread()
	return ferr
}

// inNS is where a socket or a per-call lookup runs: the caller's thread
// as it is (the zero value), or a named network namespace.
type inNS struct {
	ns    netns.NsHandle
	hasNS bool
}

func (n inNS) do(fn func() error) error {
	if !n.hasNS {
		return fn()
	}
	return runIn(n.ns, fn)
}
