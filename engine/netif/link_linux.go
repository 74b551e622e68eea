package netif

import (
	"context"
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// LinkWatcher reports interfaces going up and down.
type LinkWatcher interface {
	WatchLinks(ctx context.Context, fn func(LinkEvent)) error
}

var _ LinkWatcher = (*System)(nil)

// Resubscription back-off after a link subscription fails: the first retry
// is quick (an overflow, ENOBUFS, heals at once), later ones slow down so a
// netlink that keeps failing does not spin.
const (
	linkRetryMin = 50 * time.Millisecond
	linkRetryMax = 5 * time.Second
)

// WatchLinks is WatchLinksErrors without an error callback.
func (s *System) WatchLinks(ctx context.Context, fn func(LinkEvent)) error {
	return s.WatchLinksErrors(ctx, fn, nil)
}

// WatchLinksErrors subscribes to rtnetlink link notifications in the
// System's namespace and calls fn once with the current state of every
// interface, then again whenever one's usability changes (up with carrier,
// or not) or it is deleted. Notifications that change nothing else for it
// (MTU, statistics) are not passed on. fn runs on WatchLinksErrors'
// goroutine.
//
// A netlink socket loses notifications when its buffer overflows (ENOBUFS,
// netlink(7)) and can fail outright; the watch then reports the error to
// onErr (if set), subscribes again and resynchronises from a dump of every
// link: fn sees each change it missed, and a Deleted event for every
// interface that went away meanwhile. Stopping for good instead would
// freeze every interface's state, FAULT included. It returns ctx.Err() once
// ctx is done.
func (s *System) WatchLinksErrors(ctx context.Context, fn func(LinkEvent), onErr func(error)) error {
	w := &linkWatch{s: s, fn: fn, last: map[int]linkState{}}
	wait := linkRetryMin
	for {
		start := time.Now()
		err := w.run(ctx)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if onErr != nil {
			onErr(err)
		}
		if time.Since(start) > linkRetryMax {
			wait = linkRetryMin // it had worked for a while: retry at once
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(wait):
		}
		wait = min(2*wait, linkRetryMax)
	}
}

// linkState is what the watch last reported of an interface.
type linkState struct {
	name string
	up   bool
}

type linkWatch struct {
	s    *System
	fn   func(LinkEvent)
	last map[int]linkState // by ifindex
}

// run subscribes, resynchronises from a dump and follows notifications
// until ctx is done or the subscription fails.
func (w *linkWatch) run(ctx context.Context) error {
	ch := make(chan netlink.LinkUpdate, 64)
	done := make(chan struct{})
	errc := make(chan error, 1)
	opts := netlink.LinkSubscribeOptions{
		ErrorCallback: func(err error) {
			select {
			case errc <- err:
			default:
			}
		},
	}
	if w.s.hasNS {
		ns := w.s.ns
		opts.Namespace = &ns
	}
	if err := netlink.LinkSubscribeWithOptions(ch, done, opts); err != nil {
		return fmt.Errorf("netif: link subscription: %w", err)
	}
	defer func() {
		close(done)
		// The library's reader closes ch when its socket is closed; until
		// then it may be blocked sending to ch.
		go func() {
			for range ch {
			}
		}()
	}()
	// Subscribed first, dumped second: a change between the two is in both,
	// and none is lost.
	if err := w.resync(); err != nil {
		return err
	}
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case err := <-errc:
			if errors.Is(err, netlink.ErrDumpInterrupted) {
				continue // only dumps are interrupted; this socket dumps nothing
			}
			return fmt.Errorf("netif: link subscription: %w", err)
		case u, ok := <-ch:
			if !ok {
				// The reader stops on a receive error, reported to errc first.
				select {
				case err := <-errc:
					return fmt.Errorf("netif: link subscription: %w", err)
				default:
					return errors.New("netif: link subscription closed")
				}
			}
			a := u.Attrs()
			if u.Header.Type == unix.RTM_DELLINK {
				w.deleted(a.Index, a.Name)
				continue
			}
			w.update(a.Index, a.Name, a.Flags&net.FlagUp != 0 && u.IfInfomsg.Flags&unix.IFF_RUNNING != 0)
		}
	}
}

// resync reads every link and reports what changed since the last report,
// including the interfaces that are gone.
func (w *linkWatch) resync() error {
	links, err := redump(w.s.h.LinkList)
	if err != nil {
		return fmt.Errorf("netif: link dump: %w", err)
	}
	seen := make(map[int]bool, len(links))
	for _, l := range links {
		a := l.Attrs()
		seen[a.Index] = true
		w.update(a.Index, a.Name, a.Flags&net.FlagUp != 0 && a.RawFlags&unix.IFF_RUNNING != 0)
	}
	for idx, st := range w.last {
		if !seen[idx] {
			w.deleted(idx, st.name)
		}
	}
	return nil
}

func (w *linkWatch) update(idx int, name string, up bool) {
	if was, ok := w.last[idx]; ok && was.up == up && was.name == name {
		return
	}
	if was, ok := w.last[idx]; ok && was.name != name {
		// Renamed: the old name is gone as far as anyone tracking it knows.
		w.fn(LinkEvent{Name: was.name, Index: idx, Deleted: true})
	}
	w.last[idx] = linkState{name: name, up: up}
	w.fn(LinkEvent{Name: name, Index: idx, Up: up})
}

func (w *linkWatch) deleted(idx int, name string) {
	if was, ok := w.last[idx]; ok && name == "" {
		name = was.name
	}
	delete(w.last, idx)
	w.fn(LinkEvent{Name: name, Index: idx, Deleted: true})
}
