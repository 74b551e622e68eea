package metrics

import (
	"math"
	"net/netip"
	"slices"
	"strconv"
	"sync/atomic"
	"time"

	dto "github.com/prometheus/client_model/go"

	"github.com/keepwatch/keepwatch/engine/event"
	"github.com/keepwatch/keepwatch/engine/vrrp"
)

// dropIndex maps each known drop reason to its slot in instance.dropped.
var dropIndex = func() map[event.Reason]int {
	m := make(map[event.Reason]int, len(event.DropReasons))
	for i, r := range event.DropReasons {
		m[r] = i
	}
	return m
}()

type transitionKey struct {
	from, to vrrp.State
	reason   event.Reason
}

// instance holds one VRRP instance's per-instance series as atomics, which
// vrrpCollector writes at scrape time, so an event costs a map lookup and
// atomic adds; the few series with open-ended label values (transitions,
// VIPs, the info series) stay client_golang children.
//
// What an advert writes comes first, one cache line for a sent advert and
// one for a received one, with their histograms' low buckets. At 250
// instances × 0.05 s an instance is touched once every 50 ms, its lines
// are out of cache each time, and each line an advert wrote was a miss
// its locked add waited for: the series were spread over five lines and
// two other objects, ~0.25-0.3 µs per advert in perf profiles of real
// agents, most of the metrics sink's cost (issue 12). The lines are
// counted from 8 bytes before the struct: instance's size class is a
// multiple of 64, so its slots are 64-byte aligned, and the allocator puts
// an 8-byte type header at the start of an object over 512 bytes with
// pointers (Go 1.22's malloc headers). TestInstanceHotLines holds it.
type instance struct {
	// Sent advert (struct offsets 0-55): sent, lateness's sum and its
	// buckets up to 10 ms.
	sent     atomicCounter
	lateness atomicHistogram
	// Counters written only at priority 0: the rest of the line before
	// the received advert's.
	prioZeroSent, prioZeroReceived atomicCounter

	// Received advert (184-247): received, the last advert's time, the
	// state and interval it checks, and gap's sum and buckets up to 75 ms
	// (a gap at 0.05 s adverts falls in le 0.05 or le 0.075).
	received atomicCounter
	lastRecv atomic.Int64  // unix ns of the last advert heard in BACKUP, 0 if none since the last transition
	cur      atomic.Uint32 // vrrp.State
	// Master_Adver_Interval in force, µs (advertInterval): 32 bits hold
	// VRRPv2's 255 s, and leave the line room for the gap's 75 ms bucket.
	intervalUs atomic.Int32
	gap        atomicHistogram

	// decl is what identifies the instance and its segment, as last
	// declared (the gauges' initial values and the VIPs are not kept).
	decl declared

	// The identity label pairs in name order, made once (vrrpcollect.go);
	// the state and drop reason series add a shared pair when written
	// (series.extra).
	pairs []*dto.LabelPair

	shown                                    atomic.Uint32 // vrrp.State the state series show
	priority, masterPriority, lastTransition value
	garps, nas, masterTransitions            atomicCounter
	masterExemplar                           atomic.Pointer[dto.Exemplar]
	dropped                                  atomic.Pointer[dropCounts] // nil until the first drop
	otherDrops                               cowList[event.Reason, *atomicCounter]
	transitions                              cowList[transitionKey, *transitionSeries]
	vips                                     cowList[netip.Addr, *vipSeries]
	info                                     atomic.Pointer[dto.LabelPair] // instance_info's segment pair

	// decl is guarded by Metrics.declMu; what Emit needs of it is copied
	// into atomics, as Declare runs concurrently with events.
	version     atomic.Int32
	ownInterval atomic.Int64 // configured advert_int, ns

	effPrio atomic.Int64
}

// declared is what an instance keeps of its declaration: its identity,
// and its segment to tell a reload's change.
type declared struct {
	name, iface, segment string
	vrid                 uint8
	family               vrrp.Family
}

func declaredOf(d Instance) declared {
	if d.Family == 0 {
		d.Family = vrrp.IPv4
	}
	return declared{name: d.Name, iface: d.Interface, segment: d.Segment, vrid: d.VRID, family: d.Family}
}

// sharedPairs hands out one label pair per name and value to the instances
// one Declare makes: the instances on an interface share their interface,
// family and segment pairs (80 bytes each, issue 12). It lives for one
// Declare, so it holds nothing the running config does not; nil makes a
// pair per call.
type sharedPairs map[[2]string]*dto.LabelPair

func (sp sharedPairs) pair(name, value string) *dto.LabelPair {
	if sp == nil {
		return pair(name, value)
	}
	k := [2]string{name, value}
	p := sp[k]
	if p == nil {
		p = pair(name, value)
		sp[k] = p
	}
	return p
}

// dropCounts are an instance's adverts_dropped_total counters, by index
// into event.DropReasons. An instance makes them at its first dropped
// advert: most never drop one, and the 14 counters were 112 bytes of every
// instance (issue 12). Until then its series are written as 0, as before.
type dropCounts [len(event.DropReasons)]atomicCounter

// drops returns the instance's drop counters, made if need be.
func (in *instance) drops() *dropCounts {
	d := in.dropped.Load()
	if d == nil {
		// Whichever drop swaps first makes them.
		in.dropped.CompareAndSwap(nil, new(dropCounts))
		d = in.dropped.Load()
	}
	return d
}

func (m *Metrics) newInstance(d Instance, sp sharedPairs) *instance {
	if d.Family == 0 {
		d.Family = vrrp.IPv4
	}
	in := &instance{
		// Sorted by label name, as the registry wants them.
		pairs: []*dto.LabelPair{sp.pair(lFamily, d.Family.String()), sp.pair(lInterface, valid(d.Interface)),
			sp.pair(lVRID, strconv.Itoa(int(d.VRID))), pair(lInstance, valid(d.Name))},
	}
	in.gap.bounds, in.lateness.bounds = gapBounds, latenessBounds
	in.setSegment(sp, d.Segment)
	vl := make([]cowEntry[netip.Addr, *vipSeries], 0, len(d.VIPs))
	for _, a := range d.VIPs {
		if !slices.ContainsFunc(vl, func(e cowEntry[netip.Addr, *vipSeries]) bool { return e.k == a }) {
			vl = append(vl, cowEntry[netip.Addr, *vipSeries]{a, in.newVIP(sp, a)})
		}
	}
	in.vips.replace(vl)
	in.reset(d)
	return in
}

// setInterval sets the Master_Adver_Interval in force.
func (in *instance) setInterval(d time.Duration) {
	in.intervalUs.Store(int32(min(max(d/time.Microsecond, 0), math.MaxInt32)))
}

// advertInterval is the Master_Adver_Interval in force.
func (in *instance) advertInterval() time.Duration {
	return time.Duration(in.intervalUs.Load()) * time.Microsecond
}

// reset sets the gauges to what the declaration says, as at startup.
func (in *instance) reset(d Instance) {
	in.setDecl(d)
	in.shown.Store(uint32(vrrp.StateInit))
	in.cur.Store(uint32(vrrp.StateInit))
	in.priority.Set(float64(d.Priority))
	in.effPrio.Store(int64(d.Priority))
	in.setInterval(d.Interval)
	in.lastRecv.Store(0)
}

func (in *instance) setDecl(d Instance) {
	in.decl = declaredOf(d)
	in.version.Store(int32(d.Version))
	in.ownInterval.Store(int64(d.Interval))
}

// redeclare applies a reload's declaration to an instance whose identity is
// unchanged: counters and the current state are kept, as keepalived keeps
// them across SIGHUP (reference §3.4), and new VIPs get series.
func (in *instance) redeclare(m *Metrics, d Instance, sp sharedPairs) {
	if d.Segment != in.decl.segment {
		// The interface's address changed since the last declaration:
		// one info series at a time, or joins on it would match twice.
		in.setSegment(sp, d.Segment)
	}
	in.setDecl(d)
	in.priority.Set(float64(d.Priority))
	if in.cur.Load() != uint32(vrrp.StateBackup) {
		in.setInterval(d.Interval)
	}
	keep := make(map[netip.Addr]bool, len(d.VIPs))
	for _, a := range d.VIPs {
		keep[a] = true
		in.vips.loadOrCreate(a, func() *vipSeries { return in.newVIP(sp, a) })
	}
	in.vips.keep(func(a netip.Addr) bool { return keep[a] })
}

func (in *instance) vipFor(_ *Metrics, a netip.Addr) *vipSeries {
	return in.vips.loadOrCreate(a, func() *vipSeries { return in.newVIP(nil, a) })
}

func (in *instance) newVIP(sp sharedPairs, a netip.Addr) *vipSeries {
	return &vipSeries{address: sp.pair(lAddress, a.String())}
}

func (in *instance) setSegment(sp sharedPairs, segment string) {
	in.info.Store(sp.pair(lSegment, valid(segment)))
}

// masterDownInterval computes Master_Down_Interval = 3 × Master_Adver_Interval
// + Skew_Time. RFC 9568 §6.1 scales the skew by the interval:
// ((256 − Priority) × Master_Adver_Interval) / 256; RFC 3768 §6.1 uses
// (256 − Priority) / 256 seconds whatever the interval.
func masterDownInterval(version, priority int, interval time.Duration) time.Duration {
	if priority < 0 {
		priority = 0
	}
	if priority > 255 {
		priority = 255
	}
	var skew time.Duration
	if version == 2 {
		skew = time.Duration(256-priority) * time.Second / 256
	} else {
		skew = time.Duration(256-priority) * interval / 256
	}
	return 3*interval + skew
}

// vridIndex finds a declared instance from its event's VRID and family,
// without hashing its name: at every advert (5,000 a second at 250
// instances × 0.05 s) the lookup by name in a map of 250 was most of
// Emit's cost in a running agent, where the map is rarely in cache (issue
// 12). The name is still compared, so an instance that shares its VRID
// and family with another (on another interface) is found by name.
type vridIndex [2][256]vridEntry

type vridEntry struct {
	name string
	in   *instance
}

// familyIndex is f's row in a vridIndex; -1 for none.
func familyIndex(f vrrp.Family) int {
	switch f {
	case vrrp.IPv4:
		return 0
	case vrrp.IPv6:
		return 1
	}
	return -1
}

// indexInstances builds the vridIndex of instances (Declare's, under
// declMu). The first instance with a VRID and family holds its entry;
// the others are found by name.
func indexInstances(instances map[string]*instance) *vridIndex {
	x := new(vridIndex)
	for name, in := range instances {
		f := familyIndex(in.decl.family)
		if f < 0 {
			continue
		}
		if en := &x[f][in.decl.vrid]; en.in == nil {
			*en = vridEntry{name: name, in: in}
		}
	}
	return x
}

func (m *Metrics) instanceFor(e *event.Event) *instance {
	if x := m.byVRID.Load(); x != nil {
		if f := familyIndex(e.Family); f >= 0 {
			if en := &x[f][e.VRID]; en.in != nil && en.name == e.Instance {
				return en.in
			}
		}
	}
	if in, ok := m.instances.load(e.Instance); ok {
		return in
	}
	// An instance that was never declared: make its series from what the
	// event says, once, rather than lose its events.
	return m.instances.loadOrCreate(e.Instance, func() *instance {
		return m.newInstance(Instance{Name: e.Instance, VRID: e.VRID, Interface: e.Interface, Family: e.Family}, nil)
	})
}

func (in *instance) emit(m *Metrics, e *event.Event) {
	switch e.Kind {
	case event.KindAdvertSent:
		in.sent.inc()
		in.lateness.observe(int64(e.Duration), latenessBounds)
		if e.Priority == 0 {
			in.prioZeroSent.inc()
		}
	case event.KindAdvertReceived:
		in.received.inc()
		if e.Priority == 0 {
			in.prioZeroReceived.inc()
		}
		if vrrp.State(in.cur.Load()) != vrrp.StateBackup {
			return
		}
		now := m.timeOf(e).UnixNano()
		if prev := in.lastRecv.Swap(now); prev != 0 && now > prev {
			in.gap.observe(now-prev, gapBounds)
		}
		// A VRRPv3 backup adopts the master's interval (RFC 9568 §6.4.2);
		// v2 drops adverts whose interval differs, so this is a no-op there.
		// The interval and master down gauges are derived from it at scrape.
		if e.Interval > 0 && e.Interval != in.advertInterval() {
			in.setInterval(e.Interval)
		}
	case event.KindAdvertDropped:
		if i, ok := dropIndex[e.Reason]; ok && event.DropReasons[i] != event.DropVRIDUnknown {
			in.drops()[i].inc()
			return
		}
		r := e.Reason
		if r == "" {
			r = "unknown"
		}
		in.otherDrops.loadOrCreate(r, func() *atomicCounter { return new(atomicCounter) }).inc()
	case event.KindTransition:
		in.transition(m, e)
	case event.KindPriorityChanged:
		in.priority.Set(float64(e.BasePriority))
		in.effPrio.Store(int64(e.Priority))
	case event.KindPeerMaster:
		in.masterPriority.Set(float64(e.Priority))
	case event.KindVIPAdded:
		in.vipFor(m, e.Addr).v.Set(1)
	case event.KindVIPRemoved:
		in.vipFor(m, e.Addr).v.Set(0)
	case event.KindGratuitousSent:
		// The address decides ARP versus NA: an event's Family may be the
		// instance's rather than the announcement's.
		v6 := e.Family == vrrp.IPv6
		if e.Addr.IsValid() {
			v6 = e.Addr.Is6() && !e.Addr.Is4In6()
		}
		if v6 {
			in.nas.inc()
		} else {
			in.garps.inc()
		}
	}
}

func (in *instance) transition(m *Metrics, e *event.Event) {
	if int(e.To) < len(vrrp.States) {
		in.shown.Store(uint32(e.To))
	}
	in.cur.Store(uint32(e.To))
	t := m.timeOf(e)
	in.lastTransition.Set(seconds(t))
	// The gap histogram measures gaps between adverts heard in one BACKUP
	// period; the silence across a transition is not a gap.
	in.lastRecv.Store(0)
	if e.To != vrrp.StateBackup {
		// Leaving BACKUP: our own interval is in force again.
		in.setInterval(time.Duration(in.ownInterval.Load()))
	}

	k := transitionKey{e.From, e.To, e.Reason}
	c := in.transitions.loadOrCreate(k, func() *transitionSeries {
		return &transitionSeries{labels: transitionPairs(in.pairs, e.From, e.To, e.Reason)}
	})
	traceID, ok := "", false
	if m.traces != nil {
		traceID, ok = m.traces.TraceID(*e)
	}
	// Exemplars (exposed with OpenMetrics, DESIGN.md §6) are stored before
	// the count, so a scrape that sees an increment sees its trace id or a
	// later one.
	var ex *dto.Exemplar
	if ok {
		ex = newExemplar(traceID, time.Now())
		c.ex.Store(ex)
	}
	c.n.inc()
	if e.To == vrrp.StateMaster {
		if ex != nil {
			in.masterExemplar.Store(ex)
		}
		in.masterTransitions.inc()
	}
}
