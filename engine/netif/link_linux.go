package netif

import (
	"context"
	"fmt"
	"net"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// LinkWatcher reports interfaces going up and down.
type LinkWatcher interface {
	WatchLinks(ctx context.Context, fn func(LinkEvent)) error
}

var _ LinkWatcher = (*System)(nil)

// WatchLinks subscribes to rtnetlink link notifications in the System's
// namespace and calls fn once with the current state of every interface,
// then again whenever one's usability changes (up with carrier, or not) or
// it is deleted. Notifications that change nothing else for it (MTU,
// statistics) are not passed on. fn runs on WatchLinks' goroutine.
// WatchLinks blocks until ctx is done and returns ctx.Err(), or an error if
// the subscription fails.
func (s *System) WatchLinks(ctx context.Context, fn func(LinkEvent)) error {
	ch := make(chan netlink.LinkUpdate, 64)
	done := make(chan struct{})
	defer close(done)
	errc := make(chan error, 1)
	opts := netlink.LinkSubscribeOptions{
		ListExisting: true,
		ErrorCallback: func(err error) {
			select {
			case errc <- err:
			default:
			}
		},
	}
	if s.hasNS {
		ns := s.ns
		opts.Namespace = &ns
	}
	if err := netlink.LinkSubscribeWithOptions(ch, done, opts); err != nil {
		return fmt.Errorf("netif: link subscription: %w", err)
	}
	last := map[int]bool{}
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case err := <-errc:
			return fmt.Errorf("netif: link subscription: %w", err)
		case u, ok := <-ch:
			if !ok {
				return fmt.Errorf("netif: link subscription closed")
			}
			a := u.Attrs()
			if u.Header.Type == unix.RTM_DELLINK {
				delete(last, a.Index)
				fn(LinkEvent{Name: a.Name, Index: a.Index, Deleted: true})
				continue
			}
			up := a.Flags&net.FlagUp != 0 && u.IfInfomsg.Flags&unix.IFF_RUNNING != 0
			if was, seen := last[a.Index]; seen && was == up {
				continue
			}
			last[a.Index] = up
			fn(LinkEvent{Name: a.Name, Index: a.Index, Up: up})
		}
	}
}
