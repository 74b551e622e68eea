package metrics

import (
	"net/netip"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

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

// instance holds the pre-resolved children of one VRRP instance, so an
// event costs a map lookup and atomic adds, and the little state needed to
// derive gauges (the master down interval) and the advert gap histogram.
type instance struct {
	decl   Instance
	labels []string // identity label values

	state                                   [len(vrrp.States)]prometheus.Gauge
	priority, effPriority, masterPriority   prometheus.Gauge
	lastTransition, masterDown, advInterval prometheus.Gauge
	sent, received, prioZeroSent            prometheus.Counter
	prioZeroReceived, garps, nas            prometheus.Counter
	masterTransitions                       prometheus.Counter
	dropped                                 [len(event.DropReasons)]prometheus.Counter
	gap                                     prometheus.Observer
	lateness                                prometheus.Observer
	otherDrops                              cowMap[event.Reason, prometheus.Counter]
	transitions                             cowMap[transitionKey, prometheus.Counter]
	vips                                    cowMap[netip.Addr, prometheus.Gauge]

	// decl is guarded by Metrics.declMu; what Emit needs of it is copied
	// into atomics, as Declare runs concurrently with events.
	version     atomic.Int32
	ownInterval atomic.Int64 // configured advert_int, ns

	cur      atomic.Uint32 // vrrp.State
	effPrio  atomic.Int64
	interval atomic.Int64 // Master_Adver_Interval in force, ns
	lastRecv atomic.Int64 // unix ns of the last advert heard in BACKUP, 0 if none since the last transition
}

func (m *Metrics) newInstance(d Instance) *instance {
	if d.Family == 0 {
		d.Family = vrrp.IPv4
	}
	lv := []string{valid(d.Name), strconv.Itoa(int(d.VRID)), valid(d.Interface), d.Family.String()}
	f := m.f
	in := &instance{
		decl:              d,
		labels:            lv,
		priority:          f.priority.WithLabelValues(lv...),
		effPriority:       f.effPriority.WithLabelValues(lv...),
		masterPriority:    f.masterPriority.WithLabelValues(lv...),
		lastTransition:    f.lastTransition.WithLabelValues(lv...),
		masterDown:        f.masterDown.WithLabelValues(lv...),
		advInterval:       f.advertInterval.WithLabelValues(lv...),
		sent:              f.sent.WithLabelValues(lv...),
		received:          f.received.WithLabelValues(lv...),
		prioZeroSent:      f.prioZeroSent.WithLabelValues(lv...),
		prioZeroReceived:  f.prioZeroReceived.WithLabelValues(lv...),
		garps:             f.garps.WithLabelValues(lv...),
		nas:               f.nas.WithLabelValues(lv...),
		masterTransitions: f.masterTransitions.WithLabelValues(lv...),
		gap:               f.gap.WithLabelValues(lv...),
		lateness:          f.advertLateness.WithLabelValues(lv...),
	}
	for i, s := range vrrp.States {
		in.state[i] = f.state.WithLabelValues(append(lv[:4:4], s.String())...)
	}
	for i, r := range event.DropReasons {
		if r == event.DropVRIDUnknown {
			// No instance can own an advert for an unknown VRID: those
			// are counted in keepwatch_vrrp_global_adverts_dropped_total.
			continue
		}
		in.dropped[i] = f.dropped.WithLabelValues(append(lv[:4:4], string(r))...)
	}
	f.instanceInfo.WithLabelValues(append(lv[:4:4], valid(d.Segment))...).Set(1)
	in.vips.update(func(vm map[netip.Addr]prometheus.Gauge) {
		for _, a := range d.VIPs {
			g := f.vipPresent.WithLabelValues(append(lv[:4:4], a.String())...)
			vm[a] = g
		}
	})
	in.reset(d)
	return in
}

// reset sets the gauges to what the declaration says, as at startup.
func (in *instance) reset(d Instance) {
	in.setDecl(d)
	in.state[vrrp.StateInit].Set(1)
	for _, s := range vrrp.States[1:] {
		in.state[s].Set(0)
	}
	in.cur.Store(uint32(vrrp.StateInit))
	in.priority.Set(float64(d.Priority))
	in.effPriority.Set(float64(d.Priority))
	in.effPrio.Store(int64(d.Priority))
	in.interval.Store(int64(d.Interval))
	in.lastRecv.Store(0)
	in.updateTiming()
}

func (in *instance) setDecl(d Instance) {
	in.decl = d
	in.version.Store(int32(d.Version))
	in.ownInterval.Store(int64(d.Interval))
}

// redeclare applies a reload's declaration to an instance whose identity is
// unchanged: counters and the current state are kept, as keepalived keeps
// them across SIGHUP (reference §3.4), and new VIPs get series.
func (in *instance) redeclare(m *Metrics, d Instance) {
	if d.Segment != in.decl.Segment {
		// The interface's address changed since the last declaration:
		// one info series at a time, or joins on it would match twice.
		m.f.instanceInfo.DeleteLabelValues(append(in.labels[:4:4], valid(in.decl.Segment))...)
		m.f.instanceInfo.WithLabelValues(append(in.labels[:4:4], valid(d.Segment))...).Set(1)
	}
	in.setDecl(d)
	in.priority.Set(float64(d.Priority))
	if in.cur.Load() != uint32(vrrp.StateBackup) {
		in.interval.Store(int64(d.Interval))
	}
	in.updateTiming()
	keep := make(map[netip.Addr]bool, len(d.VIPs))
	for _, a := range d.VIPs {
		keep[a] = true
		in.vipFor(m, a)
	}
	in.vips.update(func(vm map[netip.Addr]prometheus.Gauge) {
		for a := range vm {
			if !keep[a] {
				delete(vm, a)
				m.f.vipPresent.DeleteLabelValues(append(in.labels[:4:4], a.String())...)
			}
		}
	})
}

func (in *instance) vipFor(m *Metrics, a netip.Addr) prometheus.Gauge {
	return in.vips.loadOrCreate(a, func() prometheus.Gauge {
		return m.f.vipPresent.WithLabelValues(append(in.labels[:4:4], a.String())...)
	})
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

func (in *instance) updateTiming() {
	iv := time.Duration(in.interval.Load())
	in.advInterval.Set(iv.Seconds())
	if iv <= 0 {
		in.masterDown.Set(0)
		return
	}
	in.masterDown.Set(masterDownInterval(int(in.version.Load()), int(in.effPrio.Load()), iv).Seconds())
}

func (m *Metrics) instanceFor(e *event.Event) *instance {
	if in, ok := m.instances.load(e.Instance); ok {
		return in
	}
	// An instance that was never declared: make its series from what the
	// event says, once, rather than lose its events.
	return m.instances.loadOrCreate(e.Instance, func() *instance {
		return m.newInstance(Instance{Name: e.Instance, VRID: e.VRID, Interface: e.Interface, Family: e.Family})
	})
}

func (in *instance) emit(m *Metrics, e *event.Event) {
	switch e.Kind {
	case event.KindAdvertSent:
		in.sent.Inc()
		in.lateness.Observe(e.Duration.Seconds())
		if e.Priority == 0 {
			in.prioZeroSent.Inc()
		}
	case event.KindAdvertReceived:
		in.received.Inc()
		if e.Priority == 0 {
			in.prioZeroReceived.Inc()
		}
		if vrrp.State(in.cur.Load()) != vrrp.StateBackup {
			return
		}
		now := m.timeOf(e).UnixNano()
		if prev := in.lastRecv.Swap(now); prev != 0 && now > prev {
			in.gap.Observe(float64(now-prev) / 1e9)
		}
		// A VRRPv3 backup adopts the master's interval (RFC 9568 §6.4.2);
		// v2 drops adverts whose interval differs, so this is a no-op there.
		if e.Interval > 0 && int64(e.Interval) != in.interval.Load() {
			in.interval.Store(int64(e.Interval))
			in.updateTiming()
		}
	case event.KindAdvertDropped:
		if i, ok := dropIndex[e.Reason]; ok && in.dropped[i] != nil {
			in.dropped[i].Inc()
			return
		}
		r := e.Reason
		if r == "" {
			r = "unknown"
		}
		in.otherDrops.loadOrCreate(r, func() prometheus.Counter {
			return m.f.dropped.WithLabelValues(append(in.labels[:4:4], valid(string(r)))...)
		}).Inc()
	case event.KindTransition:
		in.transition(m, e)
	case event.KindPriorityChanged:
		in.priority.Set(float64(e.BasePriority))
		in.effPriority.Set(float64(e.Priority))
		in.effPrio.Store(int64(e.Priority))
		in.updateTiming()
	case event.KindPeerMaster:
		in.masterPriority.Set(float64(e.Priority))
	case event.KindVIPAdded:
		in.vipFor(m, e.Addr).Set(1)
	case event.KindVIPRemoved:
		in.vipFor(m, e.Addr).Set(0)
	case event.KindGratuitousSent:
		// The address decides ARP versus NA: an event's Family may be the
		// instance's rather than the announcement's.
		v6 := e.Family == vrrp.IPv6
		if e.Addr.IsValid() {
			v6 = e.Addr.Is6() && !e.Addr.Is4In6()
		}
		if v6 {
			in.nas.Inc()
		} else {
			in.garps.Inc()
		}
	}
}

func (in *instance) transition(m *Metrics, e *event.Event) {
	if int(e.To) < len(in.state) {
		for i, g := range in.state {
			g.Set(b2f(i == int(e.To)))
		}
	}
	in.cur.Store(uint32(e.To))
	t := m.timeOf(e)
	in.lastTransition.Set(seconds(t))
	// The gap histogram measures gaps between adverts heard in one BACKUP
	// period; the silence across a transition is not a gap.
	in.lastRecv.Store(0)
	if e.To != vrrp.StateBackup {
		// Leaving BACKUP: our own interval is in force again.
		in.interval.Store(in.ownInterval.Load())
		in.updateTiming()
	}

	k := transitionKey{e.From, e.To, e.Reason}
	c := in.transitions.loadOrCreate(k, func() prometheus.Counter {
		return m.f.transitions.WithLabelValues(append(in.labels[:4:4], e.From.String(), e.To.String(), valid(string(e.Reason)))...)
	})
	traceID, ok := "", false
	if m.traces != nil {
		traceID, ok = m.traces.TraceID(*e)
	}
	add(c, traceID, ok)
	if e.To == vrrp.StateMaster {
		add(in.masterTransitions, traceID, ok)
	}
}

// add increments c, with the trace id as an exemplar when there is one
// (exposed with OpenMetrics, DESIGN.md §6).
func add(c prometheus.Counter, traceID string, ok bool) {
	if ea, isEA := c.(prometheus.ExemplarAdder); ok && isEA {
		ea.AddWithExemplar(1, prometheus.Labels{"trace_id": traceID})
		return
	}
	c.Inc()
}

// deleteSeries removes every series of the instance, when a reload drops
// it or changes its identity.
func (in *instance) deleteSeries(m *Metrics) {
	match := prometheus.Labels{lInstance: in.labels[0], lVRID: in.labels[1], lInterface: in.labels[2], lFamily: in.labels[3]}
	f := m.f
	for _, v := range []interface {
		DeletePartialMatch(prometheus.Labels) int
	}{f.state, f.priority, f.effPriority, f.masterPriority, f.transitions, f.masterTransitions,
		f.lastTransition, f.sent, f.received, f.dropped, f.prioZeroSent, f.prioZeroReceived,
		f.masterDown, f.advertInterval, f.gap, f.vipPresent, f.garps, f.nas, f.instanceInfo, f.advertLateness} {
		v.DeletePartialMatch(match)
	}
}
