package ipvs

import (
	"errors"
	"fmt"
	"runtime"

	"github.com/vishvananda/netns"

	"github.com/keepwatch/keepwatch/engine/event"
)

// OpenNamespace is Open in the named network namespace (keepalived's
// net_namespace / net_namespace_ipvs; "" is the caller's). Open's netlink
// sockets (moby/ipvs's and the batch one) are made on a thread switched
// into the namespace and stay bound to it; the family lookup runs there
// too, since IPVS is per namespace.
func OpenNamespace(sink event.Sink, name string) (*Handle, error) {
	if name == "" {
		return Open(sink)
	}
	ns, err := netns.GetFromName(name)
	if err != nil {
		return nil, fmt.Errorf("ipvs: network namespace %q: %w", name, err)
	}
	defer ns.Close()
	runtime.LockOSThread()
	orig, err := netns.Get()
	if err != nil {
		runtime.UnlockOSThread()
		return nil, fmt.Errorf("ipvs: current network namespace: %w", err)
	}
	defer orig.Close()
	if err := netns.Set(ns); err != nil {
		runtime.UnlockOSThread()
		return nil, fmt.Errorf("ipvs: enter network namespace %q: %w", name, err)
	}
	h, oerr := Open(sink)
	if err := netns.Set(orig); err != nil {
		// The thread stays locked: the runtime discards it.
		if h != nil {
			h.Close()
		}
		return nil, errors.Join(oerr, fmt.Errorf("ipvs: leave network namespace %q: %w", name, err))
	}
	runtime.UnlockOSThread()
	return h, oerr
}
