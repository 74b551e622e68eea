package agent

import (
	"context"
	"fmt"
	"net/netip"

	"github.com/keepwatch/keepwatch/engine/netif"
)

// Platform is everything the agent needs from the operating system. The
// host's is engine/netif's Host (cmd/keepwatch passes it); tests pass
// engine/agent/agenttest's fake, which records what it is asked and needs
// no root. Every method may be called from any goroutine.
type Platform interface {
	// Listen opens the VRRP socket of an interface and family (v6); the
	// agent shares one per (interface, family) between its instances.
	Listen(ifname string, v6 bool, cfg netif.Config) (netif.Socket, error)
	// Addresses, routes and rules a master holds (idempotent).
	netif.Addresses
	netif.Routes
	netif.Rules
	// Announce sends one gratuitous ARP / unsolicited NA for addr on ifname.
	Announce(ifname string, addr netip.Addr) error
	// WatchLinks calls fn with every interface's state, then with each
	// change, until ctx is done (it then returns ctx.Err()) or the
	// subscription fails (the agent subscribes again).
	WatchLinks(ctx context.Context, fn func(netif.LinkEvent)) error
	// Links is every interface's state now.
	Links() ([]netif.LinkEvent, error)
	// VMAC interfaces (use_vmac), created before the instance starts.
	netif.VMACs
	// RemoveLeftovers removes what an earlier run killed without its
	// shutdown left (the config's VIPs wherever they are, its VMACs) and
	// says what it removed; the agent calls it before any instance starts.
	RemoveLeftovers(vips []netif.Address, vmacs []netif.VMAC) (netif.Leftovers, error)
	// PrimaryAddress is the interface's first IPv4 address, or (v6) its
	// link-local address: the source of adverts.
	PrimaryAddress(ifname string, v6 bool) (netip.Addr, error)
	// Close releases what the platform holds; Run calls it last.
	Close() error
}

var _ Platform = (*netif.Host)(nil)

// namespaced is a Platform that can move its calls into a named network
// namespace (net_namespace); netif.Host is one.
type namespaced interface {
	UseNamespace(name string) error
}

var _ namespaced = (*netif.Host)(nil)

// useNamespace binds plat to the config's net_namespace before its first
// use. Only the platform's calls (VRRP sockets, addresses, routes, link
// watch, VMACs) move: the process stays where it was started, so its HTTP
// listener (/metrics, status) stays reachable from there. keepalived has no
// HTTP side to place. A reload cannot change the namespace
// (config.GuardReload), so this runs once.
func useNamespace(plat Platform, name string) error {
	if name == "" {
		return nil
	}
	n, ok := plat.(namespaced)
	if !ok {
		return fmt.Errorf("net_namespace %q: this platform cannot enter a network namespace", name)
	}
	if err := n.UseNamespace(name); err != nil {
		return fmt.Errorf("net_namespace %q: %w", name, err)
	}
	return nil
}
