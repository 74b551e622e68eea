package agent

import (
	"context"
	"fmt"
	"net/netip"
	"time"

	"github.com/keepwatch/keepwatch/engine/config"
	"github.com/keepwatch/keepwatch/engine/event"
	"github.com/keepwatch/keepwatch/engine/netif"
	"github.com/keepwatch/keepwatch/engine/vrrp"
	"github.com/keepwatch/keepwatch/engine/vrrp/router"
)

// socket returns the shared VRRP socket of an interface and family,
// opening it and starting its read loop on first use.
func (a *Agent) socket(k sockKey, group netip.Addr) (*sock, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if s, ok := a.socks[k]; ok {
		s.users++
		return s, nil
	}
	cfg := netif.Config{Group: group, Unknown: a.unknownVRID(k), AH: k.ah}
	conn, err := a.plat.Listen(k.ifname, k.family == vrrp.IPv6, cfg)
	if err != nil {
		return nil, fmt.Errorf("VRRP socket on %s (%v): %w", k.ifname, k.family, err)
	}
	s := &sock{conn: conn, sched: router.NewScheduler(), users: 1}
	s.task = goTask(a.log, fmt.Sprintf("socket %s %v", k.ifname, k.family), func(ctx context.Context) error {
		// Close ends the read loop at once (cancelling alone may wait for
		// a packet on a quiet link), and the socket is closed when the
		// task is done, before shutdown moves on to the platform.
		closed := make(chan struct{})
		stop := context.AfterFunc(ctx, func() { _ = conn.Close(); close(closed) })
		err := conn.Run(ctx)
		if stop() {
			_ = conn.Close()
		} else {
			<-closed
		}
		return untilCancelled(ctx, err)
	})
	a.socks[k] = s
	return s, nil
}

// sockKeys are the sockets an instance uses: its interface and family's
// VRRP socket, and for auth_type AH the AH socket too.
func sockKeys(p *plan) []sockKey {
	k := sockKey{ifname: p.router.FSM.Interface, family: p.router.FSM.Family}
	if p.router.AuthType != vrrp.AuthAH {
		return []sockKey{k}
	}
	ah := k
	ah.ah = true
	return []sockKey{ah, k}
}

// scheduler is the router.Scheduler of an open socket (nil if it is not).
func (a *Agent) scheduler(k sockKey) *router.Scheduler {
	a.mu.Lock()
	defer a.mu.Unlock()
	if s, ok := a.socks[k]; ok {
		return s.sched
	}
	return nil
}

// instanceConn opens the sockets of sockKeys(p) and returns what the
// instance sends and registers its VRID on. An AH instance sends on the
// AH socket (its header says protocol 51) and listens on both: keepalived
// counts a plain advert reaching an AH instance as authtype_mismatch
// (reference §2.3 row 1), and so do we, where keepalived's AH-only socket
// would not even see it and both sides would silently become master.
func (a *Agent) instanceConn(p *plan) (router.Conn, error) {
	keys := sockKeys(p)
	var socks []*sock
	for k, key := range keys {
		s, err := a.socket(key, p.router.Receive.Group)
		if err != nil {
			a.releaseSockets(keys[:k])
			return nil, err
		}
		socks = append(socks, s)
	}
	if len(socks) == 1 {
		return socks[0].conn, nil
	}
	return ahConn{Socket: socks[0].conn, plain: socks[1].conn}, nil
}

// ahConn is an AH instance's connection: it sends on the AH socket and
// registers its VRID on the plain VRRP socket as well.
type ahConn struct {
	netif.Socket
	plain netif.Registrar
}

// Handle registers h on both sockets.
func (c ahConn) Handle(vrid uint8, h netif.Handler) {
	c.Socket.Handle(vrid, h)
	c.plain.Handle(vrid, h)
}

// releaseSockets closes each socket whose last instance stopped.
func (a *Agent) releaseSockets(keys []sockKey) {
	var stop []*task
	a.mu.Lock()
	for _, k := range keys {
		s, ok := a.socks[k]
		if !ok {
			continue
		}
		if s.users--; s.users > 0 {
			continue
		}
		stop = append(stop, s.task)
		delete(a.socks, k)
	}
	a.mu.Unlock()
	stopAll(stop)
}

// removeStale removes what a run killed without its shutdown left behind,
// before any instance starts: the config's VIPs wherever they are and its
// VMAC interfaces (Platform.RemoveLeftovers). Left there, they would make
// two hosts answer for the VIPs (keepalived clears its VIPs at startup too).
func (a *Agent) removeStale(c *config.Config) {
	var want []netif.Address
	var vmacs []netif.VMAC
	for i := range c.Instances {
		in := &c.Instances[i]
		for _, list := range [][]config.Address{in.VIPs, in.ExcludedVIPs} {
			for _, v := range list {
				if na, err := address(v, in.Interface); err == nil {
					want = append(want, na)
				}
			}
		}
		if in.VMAC != nil {
			vmacs = append(vmacs, netif.VMAC{Name: in.VMAC.Name, Prefix: c.Global.VMACPrefix, Parent: in.Interface, VRID: uint8(in.VRID), IPv6: vrrp.Family(in.Family()) == vrrp.IPv6})
		}
	}
	left, err := a.plat.RemoveLeftovers(want, vmacs)
	if err != nil {
		a.log.Warn("removing what an earlier run left", "err", err)
	}
	for _, name := range left.VMACs {
		a.log.Info("removed a VMAC left by an earlier run", "interface", name)
	}
	for _, r := range left.VIPs {
		a.log.Info("removed a VIP left by an earlier run", "address", r.Prefix.String(), "interface", r.Dev)
	}
}

// unknownVRID reports adverts for a VRID no instance on the interface runs
// (drop reason vrid_unknown): another cluster sharing the segment, or a
// peer whose config disagrees with ours.
func (a *Agent) unknownVRID(k sockKey) netif.Handler {
	return netif.HandlerFunc(func(p *netif.Packet) {
		a.sink.Emit(event.Event{Kind: event.KindAdvertDropped, ID: event.NewID(), Time: time.Now(), VRID: p.VRID(),
			Interface: k.ifname, Family: k.family, Reason: event.DropVRIDUnknown, Addr: p.Src})
		if a.logUnknownVRIDs.Load() {
			// keepalived logs each one only with log_unknown_vrids: other
			// clusters may share the segment (vrrp_scheduler.c; its
			// wording, from the 2.2.7 binary).
			a.log.Info(fmt.Sprintf("Unknown VRID(%d) received on interface(%s). ignoring...", p.VRID(), k.ifname),
				"vrid", p.VRID(), "interface", k.ifname, "from", p.Src.String())
		}
	})
}
