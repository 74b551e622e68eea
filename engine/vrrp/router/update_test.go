package router

import (
	"context"
	"errors"
	"net/netip"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/keepwatch/keepwatch/engine/event"
	"github.com/keepwatch/keepwatch/engine/event/eventtest"
	"github.com/keepwatch/keepwatch/engine/netif"
	"github.com/keepwatch/keepwatch/engine/netif/netiftest"
	"github.com/keepwatch/keepwatch/engine/vrrp"
)

type recAnnouncer struct {
	mu   sync.Mutex
	sent []netip.Addr
}

func (r *recAnnouncer) Announce(_ string, a netip.Addr) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.sent = append(r.sent, a)
	return nil
}

func (r *recAnnouncer) take() []netip.Addr {
	r.mu.Lock()
	defer r.mu.Unlock()
	s := r.sent
	r.sent = nil
	return s
}

// TestUpdateInPlace drives a master through a reload of each kind: none of
// them makes a transition, and the VIP it keeps is never removed.
func TestUpdateInPlace(t *testing.T) {
	const interval = 20 * time.Millisecond
	net := &netiftest.Network{}
	rec := &eventtest.Recorder{}
	an := &recAnnouncer{}
	f := startFake(t, 200, interval, net, rec)
	f.inst.deps.Announcer = an // before it is master: read only by its goroutine
	waitFor(t, 2*time.Second, "not MASTER", func() bool { return f.inst.Snapshot().State == vrrp.StateMaster })
	an.take()
	// The instance keeps the Config it is given (Member.Config): each
	// update hands it a copy, so cfg can change afterwards.
	cfg := *f.inst.ms[0].cfg
	ctx := context.Background()
	update := func(c Config) error { return f.inst.Update(ctx, []*Config{&c}) }

	cfg.FSM.Priority = 180
	if err := update(cfg); err != nil {
		t.Fatal(err)
	}
	if s := f.inst.Snapshot(); s.State != vrrp.StateMaster || s.BasePriority != 180 || s.Priority != 180 || !s.VIPsHeld {
		t.Fatalf("after priority 200→180: %+v, want MASTER at 180 holding its VIP", s)
	}
	f.net.Sent()
	waitFor(t, time.Second, "no advert at 180", func() bool {
		for _, p := range f.net.Sent() {
			var a vrrp.Advertisement
			if err := a.UnmarshalBinary(p.Packet[20:]); err == nil && a.Priority == 180 {
				return true
			}
		}
		return false
	})

	added := netip.MustParsePrefix("192.0.2.101/24")
	cfg.VIPs = append(slices.Clone(cfg.VIPs), netif.Address{Prefix: added, Dev: "eth0"})
	cfg.FSM.AdvertInterval = 2 * interval
	cfg.Receive.Interval = 2 * interval
	if err := update(cfg); err != nil {
		t.Fatal(err)
	}
	if got := vips(net); !slices.Equal(got, []netip.Addr{inlineVIP.Addr(), added.Addr()}) {
		t.Errorf("VIPs after adding one: %v", got)
	}
	if got := an.take(); len(got) != cfg.FSM.GARP.MasterRepeat || got[0] != added.Addr() {
		t.Errorf("announced %v, want the added VIP %d times", got, cfg.FSM.GARP.MasterRepeat)
	}
	if s := f.inst.Snapshot(); s.AdvertInterval != 2*interval {
		t.Errorf("advert interval %v, want %v", s.AdvertInterval, 2*interval)
	}

	cfg.VIPs = cfg.VIPs[1:]
	if err := update(cfg); err != nil {
		t.Fatal(err)
	}
	if got := vips(net); !slices.Equal(got, []netip.Addr{added.Addr()}) {
		t.Errorf("VIPs after removing the first: %v", got)
	}
	if n := len(rec.Of(event.KindTransition)); n != 2 {
		t.Errorf("%d transitions, want only startup and takeover: %v", n, rec.Of(event.KindTransition))
	}
	removed := rec.Of(event.KindVIPRemoved)
	if len(removed) != 1 || removed[0].Addr != inlineVIP.Addr() {
		t.Errorf("VIP removed events %v, want the one dropped from the config", removed)
	}

	bad := cfg
	bad.FSM.VRID++
	if err := update(bad); err == nil {
		t.Error("a VRID change was applied in place")
	}
	bad = cfg
	bad.FSM.Priority = 0
	if err := update(bad); err == nil {
		t.Error("priority 0 was accepted")
	}
	if s := f.inst.Snapshot(); s.BasePriority != 180 {
		t.Errorf("a rejected update changed the priority to %d", s.BasePriority)
	}
}

func vips(n *netiftest.Network) []netip.Addr {
	var out []netip.Addr
	for _, a := range n.Addresses() {
		out = append(out, a.Prefix.Addr())
	}
	return out
}

// TestUpdateStopped: Update on a stopped instance returns ErrStopped, and
// SetPriority never blocks, even with nobody reading.
func TestUpdateStopped(t *testing.T) {
	f := startFake(t, 100, 20*time.Millisecond, nil, nil)
	inst, err := New(*f.inst.ms[0].cfg, Deps{Conn: &netiftest.Network{}, Addrs: &netiftest.Network{}})
	if err != nil {
		t.Fatal(err)
	}
	for p := range 1000 {
		inst.SetPriority(0, p%250+1, 0)
		inst.SetFault(0, p%2 == 0, 0)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_ = inst.Run(ctx)
	if err := inst.Update(context.Background(), []*Config{f.inst.ms[0].cfg}); !errors.Is(err, ErrStopped) {
		t.Errorf("Update after Run returned: %v, want ErrStopped", err)
	}
}

// TestUpdateWithdrawn: an update its caller gave up on before the
// instance's goroutine took it returns the context's error and is never
// applied, also once the goroutine runs.
func TestUpdateWithdrawn(t *testing.T) {
	f := startFake(t, 100, 20*time.Millisecond, nil, nil)
	inst, err := New(*f.inst.ms[0].cfg, Deps{Conn: &netiftest.Network{}, Addrs: &netiftest.Network{}})
	if err != nil {
		t.Fatal(err)
	}
	cfg := *inst.ms[0].cfg
	cfg.FSM.Priority = 150
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if err := inst.Update(ctx, []*Config{&cfg}); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Update with nobody running the instance returned %v, want the deadline", err)
	}
	runCtx, stop := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = inst.Run(runCtx) }()
	defer func() { stop(); <-done }()
	// A priority change after it: once that is applied, so would the
	// withdrawn update have been.
	inst.SetPriority(0, 120, 0)
	waitFor(t, 2*time.Second, "priority 120 not applied", func() bool { return inst.Snapshot().Priority == 120 })
	if s := inst.Snapshot(); s.BasePriority != 100 {
		t.Errorf("base priority %d: the withdrawn update was applied", s.BasePriority)
	}
}
