package fsm

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/keepwatch/keepwatch/engine/event"
	"github.com/keepwatch/keepwatch/engine/vrrp"
)

// sim is an in-memory network of routers on a virtual clock: every advert a
// router sends reaches every other router's instance of the same index after
// delay, unless a router is cut off or drop says so. It writes what happens to
// a log that scenario tests compare line by line, so each test reads as a
// script of inputs and expected outputs.
type sim struct {
	t        *testing.T
	now      time.Duration
	routers  []*router
	delay    time.Duration
	drop     func(from, to *router) bool
	inflight []delivery
	show     map[string]bool
	log      []string
}

// router is one host: a single instance, or the members of a sync group.
type router struct {
	name    string
	ms      []*Machine
	group   *Group
	cut     bool   // link down: sends and receives nothing
	vips    []bool // per member: holds the VIPs
	actions []Action
}

type delivery struct {
	at     time.Duration
	to     *router
	member int
	adv    Advert
}

// newSim starts a log showing the given categories: transition, advert
// (every advert), resign (priority-0 adverts), vips, garp, peer, notify, lower.
func newSim(t *testing.T, show string) *sim {
	s := &sim{t: t, delay: time.Millisecond, show: map[string]bool{}}
	for _, c := range strings.Fields(show) {
		s.show[c] = true
	}
	return s
}

// addr is 192.0.2.n (RFC 5737 documentation range).
func addr(n byte) netip.Addr { return netip.AddrFrom4([4]byte{192, 0, 2, n}) }

// conf is a version-v instance at priority prio, advert_int interval, from 192.0.2.n.
func conf(n byte, prio, v int, interval time.Duration) Config {
	c := DefaultConfig()
	c.Name, c.VRID, c.Interface = "VI_1", 51, "eth0"
	c.Addr, c.Priority, c.Version, c.AdvertInterval = addr(n), prio, v, interval
	return c
}

// add adds a router with one instance per config; more than one makes a sync group.
func (s *sim) add(name string, cfgs ...Config) *router {
	s.t.Helper()
	r := &router{name: name, vips: make([]bool, len(cfgs))}
	for _, c := range cfgs {
		m, err := New(c)
		if err != nil {
			s.t.Fatal(err)
		}
		r.ms = append(r.ms, m)
	}
	if len(cfgs) > 1 {
		r.group = NewGroup(r.ms...)
	}
	s.routers = append(s.routers, r)
	return r
}

func (r *router) label(i int) string {
	if r.group == nil {
		return r.name
	}
	return fmt.Sprintf("%s/%d", r.name, i)
}

// step gives in to member i of r (every member's timers fire in any case).
func (s *sim) step(r *router, i int, in Input) {
	if r.group != nil {
		for _, a := range r.group.Step(s.now, i, in) {
			s.apply(r, a.Member, a.Action)
		}
		return
	}
	for _, a := range r.ms[0].Step(s.now, in) {
		s.apply(r, 0, a)
	}
}

func (s *sim) input(r *router, in Input) {
	for i := range r.ms {
		s.step(r, i, in)
	}
}

func (s *sim) start(rs ...*router) {
	for _, r := range rs {
		s.input(r, Input{Kind: InputStart})
	}
}

func (s *sim) priority(r *router, p int) { s.input(r, Input{Kind: InputPriority, Priority: p}) }
func (s *sim) shutdown(r *router)        { s.input(r, Input{Kind: InputShutdown}) }

func (s *sim) logf(cat, who, format string, a ...any) {
	if s.show[cat] {
		s.log = append(s.log, fmt.Sprintf("%v %s: %s", s.now, who, fmt.Sprintf(format, a...)))
	}
}

func (s *sim) apply(r *router, i int, a Action) {
	r.actions = append(r.actions, a)
	who := r.label(i)
	switch a.Kind {
	case ActionSendAdvert:
		if a.Priority == 0 {
			s.logf("resign", who, "advert 0")
		}
		s.logf("advert", who, "advert %d", a.Priority)
		if r.cut {
			return
		}
		cfg := r.ms[i].Config()
		for _, o := range s.routers {
			if o == r || o.cut || i >= len(o.ms) || (s.drop != nil && s.drop(r, o)) {
				continue
			}
			d := delivery{at: s.now + s.delay, to: o, member: i,
				adv: Advert{Src: cfg.Addr, Priority: a.Priority, Interval: cfg.AdvertInterval}}
			// Keep deliveries in arrival order.
			k := len(s.inflight)
			for k > 0 && s.inflight[k-1].at > d.at {
				k--
			}
			s.inflight = slices.Insert(s.inflight, k, d)
		}
	case ActionAddVIPs:
		r.vips[i] = true
		s.logf("vips", who, "add vips")
	case ActionRemoveVIPs:
		r.vips[i] = false
		s.logf("vips", who, "remove vips")
	case ActionSendGratuitous:
		s.logf("garp", who, "garp %d", a.Count)
	case ActionNotify:
		s.logf("notify", who, "notify %v %d", a.State, a.Priority)
	case ActionNotifyLowerPrio:
		s.logf("lower", who, "heard lower priority %d", a.Priority)
	case ActionEvent:
		switch e := a.Event; e.Kind {
		case event.KindTransition:
			s.logf("transition", who, "%v -> %v (%s)", e.From, e.To, e.Reason)
		case event.KindPeerMaster:
			s.logf("peer", who, "master %v priority %d", e.Addr, e.Priority)
		}
	}
}

// next is the earliest pending timer or delivery.
func (s *sim) next() (time.Duration, bool) {
	var at time.Duration
	ok := false
	if len(s.inflight) > 0 {
		at, ok = s.inflight[0].at, true
	}
	for _, r := range s.routers {
		var d time.Duration
		var dok bool
		if r.group != nil {
			d, dok = r.group.NextDeadline()
		} else {
			d, dok = r.ms[0].NextDeadline()
		}
		if dok && (!ok || d < at) {
			at, ok = d, true
		}
	}
	return at, ok
}

// run advances the clock to until, firing timers (first) and delivering
// adverts at each instant in order.
func (s *sim) run(until time.Duration) {
	for {
		at, ok := s.next()
		if !ok || at > until {
			break
		}
		if at < s.now {
			s.t.Fatalf("deadline %v is before now %v", at, s.now)
		}
		s.now = at
		for _, r := range s.routers {
			if at, ok := s.deadline(r); ok && at <= s.now {
				s.step(r, -1, Input{})
			}
		}
		for len(s.inflight) > 0 && s.inflight[0].at <= s.now {
			d := s.inflight[0]
			s.inflight = s.inflight[1:]
			if !d.to.cut {
				s.step(d.to, d.member, Input{Kind: InputAdvert, Advert: d.adv})
			}
		}
	}
	s.now = until
}

func (s *sim) deadline(r *router) (time.Duration, bool) {
	if r.group != nil {
		return r.group.NextDeadline()
	}
	return r.ms[0].NextDeadline()
}

// expect compares the log since the last expect with want.
func (s *sim) expect(want ...string) {
	s.t.Helper()
	if diff := cmp.Diff(want, s.log); diff != "" {
		s.t.Errorf("at %v, log mismatch (-want +got):\n%s", s.now, diff)
	}
	s.log = nil
}

// state asserts each router's state (first member).
func (s *sim) state(want ...vrrp.State) {
	s.t.Helper()
	for i, r := range s.routers {
		if got := r.ms[0].State(); got != want[i] {
			s.t.Errorf("at %v, %s is %v, want %v", s.now, r.name, got, want[i])
		}
	}
}
