package metrics

import (
	"fmt"
	"runtime/debug"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/keepwatch/keepwatch/engine/event"
)

// TraceIDSource gives the trace id under which an event is (or will be)
// traced, so a transition's counter increment carries it as an exemplar.
// tracing.Sink implements it. TraceID must be safe for concurrent use and
// return the same id whether it is called before or after the tracing sink
// sees the event.
type TraceIDSource interface {
	TraceID(e event.Event) (traceID string, ok bool)
}

// Options configure a Metrics.
type Options struct {
	// Version and Revision label keepwatch_build_info.
	Version, Revision string
	// Traces, if set, supplies exemplar trace ids for transitions.
	Traces TraceIDSource
	// IPVS, if set, is read at each scrape for the kernel's IPVS counters.
	IPVS IPVSSource
	// Queues are the bounded queues of slow sinks (tracing, notify, mail),
	// read at each scrape for their length and drops.
	Queues []Queue
	// Now is the clock for events with a zero Time; nil means time.Now.
	Now func() time.Time
}

// Metrics is an event.Sink that keeps Prometheus metrics. Counters, gauges
// and histograms are updated synchronously inside Emit, without allocating
// once a label value has been seen (declared values never allocate), so it
// can sit on the VRRP hot path (DESIGN.md §3).
type Metrics struct {
	f      *families
	traces TraceIDSource
	now    func() time.Time
	bulk   *bulk // per-real-server and IPVS families, outside the registry

	instances cowMap[string, *instance]
	byVRID    atomic.Pointer[vridIndex] // the declared instances, for Emit
	scripts   cowMap[string, *script]
	probes    cowMap[probeKey, *probe]
	servers   cowMap[serverKey, *realServer]
	quorum    cowMap[string, prometheus.Gauge]
	ifaces    cowMap[string, prometheus.Gauge]
	files     cowMap[string, prometheus.Gauge]
	notify    cowMap[string, *resultPair]
	globalDrp cowMap[globalDropKey, prometheus.Counter]

	reconcileOK, reconcileFail prometheus.Counter
	changes                    [3]prometheus.Counter // added, changed, removed
	configLoads                resultPair
	mailOK, mailFail           prometheus.Counter
	insecure                   [3]prometheus.Counter // track, notify, check

	declMu sync.Mutex // serialises Declare
	// gatherMu serialises Handler's and Gatherer's gathers of the
	// registry, for the VRRP collector's ticket (vrrpstream.go).
	gatherMu sync.Mutex
}

var _ event.Sink = (*Metrics)(nil)

// reasonInsecure is the Reason of a script run, notify run or MISC_CHECK
// probe that enable_script_security refused (engine/script ReasonInsecure;
// metrics does not import the engine's runners).
const reasonInsecure event.Reason = "insecure"

// New builds the metrics and registers them with reg. It registers nothing
// globally: the caller owns the registry.
func New(reg prometheus.Registerer, opts Options) (*Metrics, error) {
	m := &Metrics{f: newFamilies(), traces: opts.Traces, now: opts.Now}
	m.f.vrrp.m = m
	if m.now == nil {
		m.now = time.Now
	}
	for _, c := range m.f.collectors() {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("register metrics: %w", err)
		}
	}
	// The per-real-server and IPVS families are not in reg: Handler and
	// Gatherer add them (bulk.go).
	m.bulk = &bulk{m: m, src: opts.IPVS}
	if len(opts.Queues) > 0 {
		if err := reg.Register(&queueCollector{queues: opts.Queues}); err != nil {
			return nil, fmt.Errorf("register queue collector: %w", err)
		}
	}

	f := m.f
	goVersion := "unknown"
	if bi, ok := debug.ReadBuildInfo(); ok {
		goVersion = bi.GoVersion
	}
	f.buildInfo.WithLabelValues(valid(orUnknown(opts.Version)), valid(orUnknown(opts.Revision)), goVersion).Set(1)
	m.reconcileOK = f.reconciles.WithLabelValues(resultSuccess)
	m.reconcileFail = f.reconciles.WithLabelValues(resultFailure)
	for i, op := range [...]string{"added", "changed", "removed"} {
		m.changes[i] = f.reconcileChanges.WithLabelValues(op)
	}
	m.configLoads.ok = f.configLoads.WithLabelValues(resultSuccess)
	m.configLoads.fail = f.configLoads.WithLabelValues(resultFailure)
	// Both severities exist from the start, so an alert on errors > 0 sees 0.
	f.configDiags.WithLabelValues("error").Set(0)
	f.configDiags.WithLabelValues("warning").Set(0)
	m.mailOK = f.mails.WithLabelValues(resultSuccess)
	m.mailFail = f.mails.WithLabelValues(resultFailure)
	for i, k := range [...]string{"track", "notify", "check"} {
		m.insecure[i] = f.scriptSecurity.WithLabelValues(k)
	}
	return m, nil
}

func orUnknown(s string) string {
	if s == "" {
		return "unknown"
	}
	return s
}

// ObserveProbeLateness records how late a health check probe started
// against its schedule (check.Options.Lateness); allocation-free, for the
// probe path.
func (m *Metrics) ObserveProbeLateness(d time.Duration) {
	m.f.probeLateness.Observe(d.Seconds())
}

// Emit updates the metrics for one event. It never blocks on I/O.
func (m *Metrics) Emit(e event.Event) {
	switch e.Kind {
	case event.KindTransition, event.KindAdvertSent, event.KindAdvertReceived,
		event.KindPriorityChanged, event.KindVIPAdded, event.KindVIPRemoved,
		event.KindGratuitousSent, event.KindPeerMaster:
		if e.Instance == "" {
			return
		}
		m.instanceFor(&e).emit(m, &e)
	case event.KindAdvertDropped:
		// An advert for a VRID nobody here runs is normal on a shared LAN
		// (other clusters): it says nothing about an instance, so it is
		// counted per interface, like RFC 8347's global vrid-errors.
		if e.Instance == "" || e.Reason == event.DropVRIDUnknown {
			m.globalDropped(&e).Inc()
			return
		}
		m.instanceFor(&e).emit(m, &e)
	case event.KindScriptRun:
		if e.Reason == reasonInsecure {
			m.insecure[0].Inc()
		}
		s := m.scriptFor(e.Name)
		s.up.Set(b2f(e.OK))
		s.runs.inc(e.OK)
		s.duration.Observe(e.Duration.Seconds())
	case event.KindInterfaceChanged:
		if e.Reason == event.ReasonDeleted {
			m.interfaceGone(e.Interface)
			return
		}
		m.ifaces.loadOrCreate(e.Interface, func() prometheus.Gauge {
			return m.f.interfaceUp.WithLabelValues(valid(e.Interface))
		}).Set(b2f(e.OK))
	case event.KindFileValue:
		m.files.loadOrCreate(e.Name, func() prometheus.Gauge {
			return m.f.fileValue.WithLabelValues(valid(e.Name))
		}).Set(float64(e.Value))
	case event.KindProbe:
		if e.Reason == reasonInsecure {
			m.insecure[2].Inc()
		}
		p := m.probeFor(e.Service, e.Name)
		p.results.inc(e.OK)
		p.duration.Observe(e.Duration.Seconds())
		if !e.OK {
			p.errorFor(m, e.Service, e.Name, e.Reason).Inc()
		}
	case event.KindRealServer:
		rs := m.serverFor(e.Service, e.Target)
		rs.up.Set(b2f(e.OK))
		rs.weight.Set(float64(e.Value))
	case event.KindQuorum:
		m.quorumFor(e.Service).Set(b2f(e.OK))
	case event.KindIPVSReconcile:
		m.f.reconcileDuration.Observe(e.Duration.Seconds())
		if e.Err != nil {
			m.reconcileFail.Inc()
		} else {
			m.reconcileOK.Inc()
			m.f.ipvsAvailable.Set(1)
		}
		m.changes[0].Add(float64(e.Added))
		m.changes[1].Add(float64(e.Changed))
		m.changes[2].Add(float64(e.Removed))
	case event.KindIPVSUnavailable:
		m.f.ipvsAvailable.Set(0)
	case event.KindConfigLoaded:
		m.configLoads.inc(true)
		m.f.reloadSuccessful.Set(1)
		m.f.reloadSuccessTime.Set(seconds(m.timeOf(&e)))
	case event.KindReloadRejected:
		m.configLoads.inc(false)
		m.f.reloadSuccessful.Set(0)
	case event.KindNotifyRun:
		if e.Reason == reasonInsecure {
			m.insecure[1].Inc()
		}
		m.notify.loadOrCreate(e.Name, func() *resultPair {
			return newResultPair(m.f.notifyRuns, e.Name)
		}).inc(e.OK)
	case event.KindMailSent:
		if e.OK {
			m.mailOK.Inc()
		} else {
			m.mailFail.Inc()
		}
	}
}

func (m *Metrics) timeOf(e *event.Event) time.Time {
	if e.Time.IsZero() {
		return m.now()
	}
	return e.Time
}

func seconds(t time.Time) float64 { return float64(t.UnixNano()) / 1e9 }

// valid makes s a legal label value: client_golang panics on invalid
// UTF-8, and names reach here from config files and the kernel.
func valid(s string) string {
	if utf8.ValidString(s) {
		return s
	}
	return strings.ToValidUTF8(s, "\uFFFD")
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// resultPair is a counter family's success and failure children.
type resultPair struct{ ok, fail prometheus.Counter }

func newResultPair(v *prometheus.CounterVec, lvs ...string) *resultPair {
	for i := range lvs {
		lvs[i] = valid(lvs[i])
	}
	return &resultPair{
		ok:   v.WithLabelValues(append(lvs, resultSuccess)...),
		fail: v.WithLabelValues(append(lvs, resultFailure)...),
	}
}

func (r *resultPair) inc(ok bool) {
	if ok {
		r.ok.Inc()
	} else {
		r.fail.Inc()
	}
}

type script struct {
	up       prometheus.Gauge
	runs     *resultPair
	duration prometheus.Observer
}

func (m *Metrics) scriptFor(name string) *script {
	return m.scripts.loadOrCreate(name, func() *script { return m.newScript(Script{Name: name}) })
}

func (m *Metrics) newScript(s Script) *script {
	sc := &script{
		up:       m.f.scriptUp.WithLabelValues(valid(s.Name)),
		runs:     newResultPair(m.f.scriptRuns, s.Name),
		duration: m.f.scriptDuration.WithLabelValues(valid(s.Name)),
	}
	sc.up.Set(b2f(!s.InitFail))
	return sc
}

type probeKey struct{ service, checker string }

type probe struct {
	results  *resultPair
	duration prometheus.Observer
	errors   cowMap[event.Reason, prometheus.Counter]
}

func (m *Metrics) probeFor(service, checker string) *probe {
	return m.probes.loadOrCreate(probeKey{service, checker}, func() *probe {
		return &probe{
			results:  newResultPair(m.f.probes, service, checker),
			duration: m.f.probeDuration.WithLabelValues(valid(service), valid(checker)),
		}
	})
}

func (p *probe) errorFor(m *Metrics, service, checker string, r event.Reason) prometheus.Counter {
	if r == "" {
		r = "unknown"
	}
	return p.errors.loadOrCreate(r, func() prometheus.Counter {
		return m.f.probeErrors.WithLabelValues(valid(service), valid(checker), valid(string(r)))
	})
}

type serverKey struct{ service, server string }

type realServer struct{ up, weight value }

func (m *Metrics) serverFor(service, server string) *realServer {
	return m.servers.loadOrCreate(serverKey{service, server}, func() *realServer { return m.newServer(service, server) })
}

// newServer returns a real server's up and weight, which the bulk writer
// exports (bulk.go), not the registry.
func (m *Metrics) newServer(service, server string) *realServer { return &realServer{} }

func (m *Metrics) quorumFor(service string) prometheus.Gauge {
	return m.quorum.loadOrCreate(service, func() prometheus.Gauge {
		return m.f.quorumUp.WithLabelValues(valid(service))
	})
}

// interfaceGone drops a deleted interface's series, so interfaces that come
// and go (VMACs, veths, renamed links) do not pile up series for ever. One
// that comes back starts its series again (a counter reset to Prometheus).
func (m *Metrics) interfaceGone(name string) {
	m.ifaces.update(func(g map[string]prometheus.Gauge) { delete(g, name) })
	m.f.interfaceUp.DeleteLabelValues(valid(name))
	m.globalDrp.update(func(c map[globalDropKey]prometheus.Counter) {
		for k := range c {
			if k.iface == name {
				delete(c, k)
			}
		}
	})
	m.f.globalDropped.DeletePartialMatch(prometheus.Labels{lInterface: valid(name)})
}

type globalDropKey struct {
	iface  string
	family uint8
	reason event.Reason
}

func (m *Metrics) globalDropped(e *event.Event) prometheus.Counter {
	k := globalDropKey{e.Interface, uint8(e.Family), e.Reason}
	return m.globalDrp.loadOrCreate(k, func() prometheus.Counter {
		return m.f.globalDropped.WithLabelValues(valid(e.Interface), e.Family.String(), valid(string(e.Reason)))
	})
}
