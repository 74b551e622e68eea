package netif_test

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vishvananda/netlink"

	"github.com/keepwatch/keepwatch/engine/netif"
	"github.com/keepwatch/keepwatch/engine/netif/nskit/nskittest"
)

// TestWatchLinksResubscribes overflows the link subscription's socket for
// real (the kernel drops notifications with ENOBUFS while the watch is
// stuck in its callback), and checks that the watch reports the error,
// subscribes again and resynchronises: an interface deleted, one set down
// and one created while notifications were being lost are all reported,
// and changes after that are tracked as before.
func TestWatchLinksResubscribes(t *testing.T) {
	t.Parallel()
	l := nskittest.New(t, "relink", 1)
	n := l.Node(1)
	s := openSystem(t, n)
	h := n.Handle()
	parent, err := h.LinkByName(n.Link)
	if err != nil {
		t.Fatal(err)
	}
	// macvlans on the node's link (this kernel may lack the dummy driver).
	add := func(name string) netlink.Link {
		t.Helper()
		d := &netlink.Macvlan{LinkAttrs: netlink.LinkAttrs{Name: name, ParentIndex: parent.Attrs().Index}, Mode: netlink.MACVLAN_MODE_BRIDGE}
		if err := h.LinkAdd(d); err != nil {
			t.Fatal(err)
		}
		if err := h.LinkSetUp(d); err != nil {
			t.Fatal(err)
		}
		return d
	}
	flap, gone, down := add("kwflap0"), add("kwgone0"), add("kwdown0")

	var (
		mu    sync.Mutex
		state = map[string]netif.LinkEvent{}
	)
	var stuck atomic.Bool
	gate := make(chan struct{})
	blocked := make(chan struct{}, 1)
	errs := make(chan error, 16)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- s.WatchLinksErrors(ctx, func(e netif.LinkEvent) {
			if stuck.Load() {
				select {
				case blocked <- struct{}{}:
				default:
				}
				<-gate
			}
			mu.Lock()
			defer mu.Unlock()
			if e.Deleted {
				delete(state, e.Name)
			} else {
				state[e.Name] = e
			}
		}, func(err error) {
			select {
			case errs <- err:
			default:
			}
		})
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != context.Canceled {
			t.Errorf("WatchLinksErrors: %v", err)
		}
	})
	// waitFor polls the tracked state until ok holds.
	waitFor := func(what string, ok func(map[string]netif.LinkEvent) bool) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for {
			mu.Lock()
			good := ok(state)
			mu.Unlock()
			if good {
				return
			}
			if time.Now().After(deadline) {
				mu.Lock()
				defer mu.Unlock()
				t.Fatalf("%s: tracked state %+v", what, state)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	isUp := func(m map[string]netif.LinkEvent, name string) bool { e, ok := m[name]; return ok && e.Up }
	isDown := func(m map[string]netif.LinkEvent, name string) bool { e, ok := m[name]; return ok && !e.Up }
	waitFor("initial dump", func(m map[string]netif.LinkEvent) bool {
		return isUp(m, "kwflap0") && isUp(m, "kwgone0") && isUp(m, "kwdown0")
	})

	// Wedge the watch in its callback, then flood the subscription.
	stuck.Store(true)
	if err := h.LinkSetDown(flap); err != nil {
		t.Fatal(err)
	}
	select {
	case <-blocked:
	case <-time.After(5 * time.Second):
		t.Fatal("the watch did not report the flap")
	}
	for i := range 3000 {
		var err error
		if i%2 == 0 {
			err = h.LinkSetUp(flap)
		} else {
			err = h.LinkSetDown(flap)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	if err := h.LinkSetUp(flap); err != nil {
		t.Fatal(err)
	}
	// What the lost notifications carried.
	if err := h.LinkDel(gone); err != nil {
		t.Fatal(err)
	}
	if err := h.LinkSetDown(down); err != nil {
		t.Fatal(err)
	}
	add("kwnew0")
	stuck.Store(false)
	close(gate)

	select {
	case err := <-errs:
		t.Logf("subscription error, resubscribed: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("no subscription error reported after overflowing the socket")
	}
	waitFor("after resync", func(m map[string]netif.LinkEvent) bool {
		_, stillThere := m["kwgone0"]
		return !stillThere && isDown(m, "kwdown0") && isUp(m, "kwnew0") && isUp(m, "kwflap0")
	})
	// Still watching: a change after the resync is reported.
	if err := h.LinkSetUp(down); err != nil {
		t.Fatal(err)
	}
	waitFor("a change after the resync", func(m map[string]netif.LinkEvent) bool { return isUp(m, "kwdown0") })
	if err := h.LinkDel(flap); err != nil {
		t.Fatal(err)
	}
	waitFor("a deletion after the resync", func(m map[string]netif.LinkEvent) bool { _, ok := m["kwflap0"]; return !ok })
}
