package metrics

import (
	"math"
	"slices"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/keepwatch/keepwatch/engine/event"
	"github.com/keepwatch/keepwatch/engine/vrrp"
)

// The per-instance VRRP families are kept as plain atomics in each
// instance (vrrp.go) and written at scrape time by vrrpCollector, as const
// metrics. A client_golang child per series cost about 40 KiB per instance
// (71 children, each with its own label pairs, hot/cold histogram halves
// and created timestamp): most of a 250-instance agent's heap, against
// keepalived's ~2 KiB per instance (deploy/bench.d/FOOTPRINT.md). The
// series, their names, labels and values are unchanged.

// atomicCounter is a counter of whole events.
type atomicCounter struct{ n atomic.Uint64 }

func (c *atomicCounter) inc()         { c.n.Add(1) }
func (c *atomicCounter) get() float64 { return float64(c.n.Load()) }

// histSlots is the most buckets an atomicHistogram has, +Inf included
// (gapBuckets).
const histSlots = 18

// histBounds are a histogram's upper bounds, in seconds as exposed and in
// nanoseconds as observed.
type histBounds struct {
	s  []float64
	ns []int64
}

func newHistBounds(s []float64) *histBounds {
	if len(s) >= histSlots {
		panic("metrics: more histogram buckets than histSlots")
	}
	b := &histBounds{s: s, ns: make([]int64, len(s))}
	for i, v := range s {
		b.ns[i] = int64(math.Round(v * 1e9))
	}
	return b
}

// The per-instance histograms' bounds.
var gapBounds, latenessBounds = newHistBounds(gapBuckets), newHistBounds(latenessBuckets)

// atomicHistogram is a classic histogram of durations with fixed upper
// bounds, kept inline in its instance so an observation writes the line
// of its sum and low buckets and nothing else (instance).
type atomicHistogram struct {
	sum    atomic.Int64             // nanoseconds: one add, where a float sum took a compare-and-swap loop
	counts [histSlots]atomic.Uint64 // per bucket, not cumulative; counts[len(bounds.s)] is +Inf
	bounds *histBounds              // read at scrape; observe is given them
}

// observe records a duration of ns nanoseconds, without allocating. b is
// h.bounds, passed by the caller so the observation does not read the
// line h.bounds is on. Buckets are upper-inclusive (le), as in
// client_golang; they are searched from the lowest, where lateness (under
// a millisecond) and gaps at fast intervals fall.
func (h *atomicHistogram) observe(ns int64, b *histBounds) {
	i := 0
	for i < len(b.ns) && ns > b.ns[i] {
		i++
	}
	h.counts[i].Add(1)
	h.sum.Add(ns)
}

// sumSeconds is the sum of the observations, in seconds.
func (h *atomicHistogram) sumSeconds() float64 { return float64(h.sum.Load()) / 1e9 }

// write fills h into d. The count is the sum of the buckets read, so the
// +Inf bucket always equals it even while observations race the scrape.
func (h *atomicHistogram) write(d *dto.Metric) {
	bounds := h.bounds.s
	buckets := make([]dto.Bucket, len(bounds))
	counts := make([]uint64, len(bounds))
	ptrs := make([]*dto.Bucket, len(bounds))
	var n uint64
	for i := range bounds {
		n += h.counts[i].Load()
		counts[i] = n
		buckets[i].CumulativeCount = &counts[i]
		buckets[i].UpperBound = &bounds[i]
		ptrs[i] = &buckets[i]
	}
	n += h.counts[len(bounds)].Load()
	sum := h.sumSeconds()
	d.Histogram = &dto.Histogram{SampleCount: &n, SampleSum: &sum, Bucket: ptrs}
}

// newExemplar is the exemplar of one counter increment, made once at the
// transition and shared, read-only, by every later scrape.
func newExemplar(traceID string, at time.Time) *dto.Exemplar {
	return &dto.Exemplar{
		Label:     []*dto.LabelPair{{Name: proto.String("trace_id"), Value: proto.String(traceID)}},
		Value:     proto.Float64(1),
		Timestamp: timestamppb.New(at),
	}
}

// Label pairs shared by every instance's series: a state and a drop reason
// are the same pair whatever the instance (dto label pairs are only read
// once made); series.extra carries them.
var (
	statePairs = func() []*dto.LabelPair {
		out := make([]*dto.LabelPair, len(vrrp.States))
		for i, st := range vrrp.States {
			out[i] = pair(lState, st.String())
		}
		return out
	}()
	dropPairs = func() []*dto.LabelPair {
		out := make([]*dto.LabelPair, len(event.DropReasons))
		for i, r := range event.DropReasons {
			out[i] = pair(lReason, string(r))
		}
		return out
	}()
)

// Pairs shared by every instance's transition series: from and to are
// states, and the reason one of the engine's transition reasons, so a
// series keeps the identity pairs and three shared ones (~290 bytes an
// instance per transition series otherwise, issue 12). A reason not listed
// gets a pair of its own.
var (
	fromPairs, toPairs = func() (from, to []*dto.LabelPair) {
		for _, st := range vrrp.States {
			from = append(from, pair(lFrom, st.String()))
			to = append(to, pair(lTo, st.String()))
		}
		return from, to
	}()
	transitionReasonPairs = func() map[event.Reason]*dto.LabelPair {
		out := map[event.Reason]*dto.LabelPair{}
		for _, r := range event.TransitionReasons {
			out[r] = pair(lReason, string(r))
		}
		return out
	}()
)

// statePair is the shared pair of st under one of fromPairs and toPairs
// (vrrp.States is in value order).
func statePair(shared []*dto.LabelPair, name string, st vrrp.State) *dto.LabelPair {
	if int(st) < len(shared) {
		return shared[st]
	}
	return pair(name, st.String())
}

// transitionPairs are the identity pairs with a transition's from, to and
// reason, in name order.
func transitionPairs(id []*dto.LabelPair, from, to vrrp.State, reason event.Reason) []*dto.LabelPair {
	r := transitionReasonPairs[reason] // read only once made
	if r == nil {
		r = pair(lReason, valid(string(reason)))
	}
	return withPair(id, statePair(fromPairs, lFrom, from), statePair(toPairs, lTo, to), r)
}

// pairNames holds one string per label name, which every pair of that name
// points at: proto.String would allocate one per pair (16 bytes each, six
// or more per instance). Read only once made.
var pairNames = func() map[string]*string {
	out := map[string]*string{}
	for _, n := range []string{lInstance, lVRID, lInterface, lFamily, lState, lFrom, lTo, lReason, lAddress, lSegment} {
		out[n] = proto.String(n)
	}
	return out
}()

// pair makes a label pair; nothing writes to one once made, so pairs and
// their name strings are shared.
func pair(name, value string) *dto.LabelPair {
	n := pairNames[name]
	if n == nil {
		n = proto.String(name)
	}
	return &dto.LabelPair{Name: n, Value: proto.String(value)}
}

// withPair returns the identity pairs (sorted by name: family, interface,
// vrid, vrrp_instance) with ps inserted in name order, in one allocation.
func withPair(id []*dto.LabelPair, ps ...*dto.LabelPair) []*dto.LabelPair {
	out := make([]*dto.LabelPair, len(id), len(id)+len(ps))
	copy(out, id)
	for _, p := range ps {
		i := 0
		for i < len(out) && out[i].GetName() < p.GetName() {
			i++
		}
		out = slices.Insert(out, i, p) // within capacity: no allocation
	}
	return out
}

// series is one per-instance series as the registry gathers it: a
// prometheus.Metric that writes the instance's cached label pairs and a
// value, so a scrape costs no label validation or pair building per series
// (const metrics did, and tripled the allocations of a scrape).
type series struct {
	desc   *prometheus.Desc
	labels []*dto.LabelPair
	// extra, if set, is one more pair (a state, a drop reason, a VIP's
	// address, the segment) that goes into labels in name order when the
	// series is written: so an instance keeps no copy of its identity
	// pairs per state, drop reason, VIP and segment (21 slices, ~1.5 KiB
	// an instance).
	extra *dto.LabelPair
	kind  uint8 // seriesGauge, seriesCounter, seriesHistogram
	v     float64
	ex    *dto.Exemplar
	hist  *atomicHistogram
}

// pairs returns the series' label pairs in name order: labels, or, with
// extra, labels and extra merged into *buf's storage, which it keeps for
// the next call (never into labels, which the instance owns).
func (s *series) pairs(buf *[]*dto.LabelPair) []*dto.LabelPair {
	if s.extra == nil {
		return s.labels
	}
	dst := (*buf)[:0]
	i := 0
	for ; i < len(s.labels) && s.labels[i].GetName() < s.extra.GetName(); i++ {
		dst = append(dst, s.labels[i])
	}
	dst = append(dst, s.extra)
	dst = append(dst, s.labels[i:]...)
	*buf = dst
	return dst
}

const (
	seriesGauge = iota
	seriesCounter
	seriesHistogram
)

// Desc implements prometheus.Metric.
func (s *series) Desc() *prometheus.Desc { return s.desc }

// Write implements prometheus.Metric.
func (s *series) Write(d *dto.Metric) error {
	// The registry keeps d until it has encoded the whole family: a
	// merged slice of its own (only the protobuf format comes this way).
	var own []*dto.LabelPair
	d.Label = s.pairs(&own)
	switch s.kind {
	case seriesGauge:
		d.Gauge = &dto.Gauge{Value: &s.v}
	case seriesCounter:
		d.Counter = &dto.Counter{Value: &s.v, Exemplar: s.ex}
	case seriesHistogram:
		s.hist.write(d)
	}
	return nil
}

// The per-instance families, by index into vrrpFams and
// vrrpCollector.descs.
const (
	famState = iota
	famPriority
	famEffPriority
	famMasterPriority
	famMasterTransitions
	famLastTransition
	famSent
	famReceived
	famDropped
	famPrioZeroSent
	famPrioZeroReceived
	famMasterDown
	famAdvertInterval
	famGap
	famGARPs
	famNAs
	famTransitions
	famVIPPresent
	famInstanceInfo
	famAdvertLateness
	nVRRPFams
)

// vrrpFam is one per-instance family: its name (without the
// keepwatch_vrrp_ prefix), help, kind and labels beyond the identity.
type vrrpFam struct {
	name, help string
	kind       uint8 // seriesGauge, seriesCounter, seriesHistogram
	extra      []string
}

var vrrpFams = [nVRRPFams]vrrpFam{
	famState:             {"state", "Current VRRP state of the instance: 1 for the state it is in, 0 for the others.", seriesGauge, []string{lState}},
	famPriority:          {"priority", "Configured (base) VRRP priority of the instance.", seriesGauge, nil},
	famEffPriority:       {"effective_priority", "Effective VRRP priority: base priority adjusted by tracked scripts, interfaces and files.", seriesGauge, nil},
	famMasterPriority:    {"master_priority", "Priority carried by the adverts of the master this instance last heard.", seriesGauge, nil},
	famMasterTransitions: {"master_transitions_total", "Transitions to MASTER (RFC 8347 master-transitions).", seriesCounter, nil},
	famLastTransition:    {"last_transition_timestamp_seconds", "Unix time of the last state transition of the instance.", seriesGauge, nil},
	famSent:              {"adverts_sent_total", "VRRP advertisements sent (RFC 8347 advertisement-sent), once per advert whatever the number of unicast peers.", seriesCounter, nil},
	famReceived:          {"adverts_received_total", "VRRP advertisements received and accepted (RFC 8347 advertisement-rcvd).", seriesCounter, nil},
	famDropped:           {"adverts_dropped_total", "VRRP advertisements that failed a receive check, by reason; address_list adverts are counted here but still accepted.", seriesCounter, []string{lReason}},
	famPrioZeroSent:      {"priority_zero_sent_total", "Adverts with priority 0 sent: the master resigning (RFC 8347 priority-zero-pkts-sent).", seriesCounter, nil},
	famPrioZeroReceived:  {"priority_zero_received_total", "Adverts with priority 0 received: the peer master resigning (RFC 8347 priority-zero-pkts-rcvd).", seriesCounter, nil},
	famMasterDown:        {"master_down_interval_seconds", "Master_Down_Interval in force: how long a backup waits without adverts before taking over (RFC 9568 section 6.1).", seriesGauge, nil},
	famAdvertInterval:    {"advert_interval_seconds", "Advertisement interval in force: the configured one, or as a VRRPv3 backup the master's.", seriesGauge, nil},
	famGap:               {"advert_gap_seconds", "Time between consecutive adverts heard while BACKUP; gaps near the master down interval are near misses.", seriesHistogram, nil},
	famGARPs:             {"gratuitous_arps_sent_total", "Gratuitous ARPs sent for the instance's IPv4 virtual addresses.", seriesCounter, nil},
	famNAs:               {"neighbor_adverts_sent_total", "Unsolicited neighbor advertisements sent for the instance's IPv6 virtual addresses.", seriesCounter, nil},
	famTransitions:       {"transitions_total", "VRRP state transitions, by previous state, new state and reason.", seriesCounter, []string{lFrom, lTo, lReason}},
	famVIPPresent:        {"vip_present", "1 if the virtual address is configured on this host by the instance, else 0.", seriesGauge, []string{lAddress}},
	famInstanceInfo:      {"instance_info", "Always 1; segment names the network of the instance's virtual router, the same on every peer (the primary address's prefix, or unicast: and a digest of the peer set), as a VRID is unique only within one segment.", seriesGauge, []string{lSegment}},
	famAdvertLateness:    {"advert_lateness_seconds", "How late each advert was sent against its schedule (Adver_Timer, RFC 9568 section 6.4.3): the agent's own starvation (CPU, GC, a stopped process), which its backups see as a gap.", seriesHistogram, nil},
}

// vrrpCollector writes the per-instance families of every instance: to the
// registry as series (Collect), or straight to a scrape's response
// (vrrpstream.go).
type vrrpCollector struct {
	m     *Metrics
	descs [nVRRPFams]*prometheus.Desc
	names [nVRRPFams]string // full names

	// skip is a one-shot ticket Handler sets around its Gather of the
	// registry, so that Collect leaves the per-instance series to the
	// streaming writer (vrrpstream.go).
	skip atomic.Bool
}

// transitionSeries is one (from, to, reason) of an instance's transitions.
type transitionSeries struct {
	n      atomicCounter
	ex     atomic.Pointer[dto.Exemplar]
	labels []*dto.LabelPair
}

// vipSeries is one virtual address's vip_present. Its series is the
// instance's identity pairs with address as series.extra, not a slice of
// its own (48 bytes a VIP, issue 12).
type vipSeries struct {
	v       value
	address *dto.LabelPair
}

func newVRRPCollector() *vrrpCollector {
	c := &vrrpCollector{}
	for i, f := range vrrpFams {
		c.names[i] = prometheus.BuildFQName(namespace, "vrrp", f.name)
		c.descs[i] = prometheus.NewDesc(c.names[i], f.help, with(identity, f.extra...), nil)
	}
	return c
}

// Describe implements prometheus.Collector.
func (c *vrrpCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range c.descs {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (c *vrrpCollector) Collect(ch chan<- prometheus.Metric) {
	if c.m == nil || c.skip.CompareAndSwap(true, false) {
		return
	}
	for _, in := range c.m.instances.snapshot() {
		// One allocation for the instance's series; the registry holds
		// them only until it has written them.
		all := make([]series, 0, seriesPerInstance+8)
		for f := range nVRRPFams {
			all = in.appendSeries(c, all, f)
		}
		for i := range all {
			ch <- &all[i]
		}
	}
}

// seriesPerInstance is how many series collect sends for an instance
// without other drop reasons.
const seriesPerInstance = 18 + len(vrrp.States) + len(event.DropReasons)

// appendSeries appends the instance's series of family f to dst.
func (in *instance) appendSeries(c *vrrpCollector, dst []series, f int) []series {
	id, d := in.pairs, c.descs[f]
	switch vrrpFams[f].kind {
	case seriesGauge, seriesCounter:
		kind := vrrpFams[f].kind
		one := func(v float64) []series { return append(dst, series{desc: d, labels: id, kind: kind, v: v}) }
		switch f {
		case famState:
			shown := in.shown.Load()
			for i, s := range vrrp.States {
				dst = append(dst, series{desc: d, labels: id, extra: statePairs[i], v: b2f(uint32(s) == shown)})
			}
			return dst
		case famPriority:
			return one(in.priority.Get())
		case famEffPriority:
			return one(float64(in.effPrio.Load()))
		case famMasterPriority:
			return one(in.masterPriority.Get())
		case famLastTransition:
			return one(in.lastTransition.Get())
		case famAdvertInterval:
			return one(in.advertInterval().Seconds())
		case famMasterDown:
			iv := in.advertInterval()
			down := 0.0
			if iv > 0 {
				down = masterDownInterval(int(in.version.Load()), int(in.effPrio.Load()), iv).Seconds()
			}
			return one(down)
		case famSent:
			return one(in.sent.get())
		case famReceived:
			return one(in.received.get())
		case famPrioZeroSent:
			return one(in.prioZeroSent.get())
		case famPrioZeroReceived:
			return one(in.prioZeroReceived.get())
		case famGARPs:
			return one(in.garps.get())
		case famNAs:
			return one(in.nas.get())
		case famMasterTransitions:
			return append(dst, series{desc: d, labels: id, kind: seriesCounter, v: in.masterTransitions.get(), ex: in.masterExemplar.Load()})
		case famDropped:
			drops := in.dropped.Load()
			for i, r := range event.DropReasons {
				if r == event.DropVRIDUnknown {
					// No instance can own an advert for an unknown VRID:
					// those are counted in
					// keepwatch_vrrp_global_adverts_dropped_total.
					continue
				}
				var v float64
				if drops != nil {
					v = drops[i].get()
				}
				dst = append(dst, series{desc: d, labels: id, extra: dropPairs[i], kind: seriesCounter, v: v})
			}
			for _, e := range in.otherDrops.snapshot() {
				dst = append(dst, series{desc: d, labels: withPair(id, pair(lReason, valid(string(e.k)))), kind: seriesCounter, v: e.v.get()})
			}
			return dst
		case famTransitions:
			for _, e := range in.transitions.snapshot() {
				t := e.v
				dst = append(dst, series{desc: d, labels: t.labels, kind: seriesCounter, v: t.n.get(), ex: t.ex.Load()})
			}
			return dst
		case famVIPPresent:
			for _, e := range in.vips.snapshot() {
				dst = append(dst, series{desc: d, labels: id, extra: e.v.address, v: e.v.v.Get()})
			}
			return dst
		case famInstanceInfo:
			if seg := in.info.Load(); seg != nil {
				dst = append(dst, series{desc: d, labels: id, extra: seg, v: 1})
			}
			return dst
		}
	case seriesHistogram:
		h := &in.gap
		if f == famAdvertLateness {
			h = &in.lateness
		}
		return append(dst, series{desc: d, labels: id, kind: seriesHistogram, hist: h})
	}
	return dst
}
