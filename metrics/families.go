package metrics

import "github.com/prometheus/client_golang/prometheus"

const namespace = "keepwatch"

// Label names. The VRRP instance is vrrp_instance, never instance or job:
// Prometheus owns those (DESIGN.md §6).
const (
	lInstance      = "vrrp_instance"
	lVRID          = "vrid"
	lInterface     = "interface"
	lFamily        = "family"
	lState         = "state"
	lFrom          = "from"
	lTo            = "to"
	lReason        = "reason"
	lAddress       = "address"
	lScript        = "script"
	lFile          = "file"
	lResult        = "result"
	lChecker       = "checker"
	lVirtualServer = "virtual_server"
	lRealServer    = "real_server"
	lOp            = "op"
	lSink          = "sink"
	lSegment       = "segment"
)

// Result label values.
const (
	resultSuccess = "success"
	resultFailure = "failure"
)

// identity is the label set that names a VRRP instance on every per-instance family.
var identity = []string{lInstance, lVRID, lInterface, lFamily}

func with(base []string, extra ...string) []string {
	return append(append([]string(nil), base...), extra...)
}

// gapBuckets cover advert intervals from 50 ms (the fast VRRPv3 end) to a few
// seconds: a gap near 3 intervals is a backup about to take over.
var gapBuckets = []float64{.01, .025, .05, .075, .1, .15, .2, .3, .5, .75, 1, 1.5, 2, 3, 4, 5, 10}

// latenessBuckets cover a timer's usual millisecond of lateness up to a
// stop as long as keepalived's default master down interval (about 3 s).
var latenessBuckets = []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5}

// durationBuckets cover probe, script and reconcile durations.
var durationBuckets = []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10}

// families holds every event-driven metric family.
type families struct {
	// VRRP, per instance: most families are written by vrrp (vrrpcollect.go).
	vrrp          *vrrpCollector
	globalDropped *prometheus.CounterVec
	probeLateness prometheus.Histogram

	// Tracking.
	scriptUp       *prometheus.GaugeVec
	scriptRuns     *prometheus.CounterVec
	scriptDuration *prometheus.HistogramVec
	interfaceUp    *prometheus.GaugeVec
	fileValue      *prometheus.GaugeVec

	// Checks and IPVS.
	probes            *prometheus.CounterVec
	probeDuration     *prometheus.HistogramVec
	probeErrors       *prometheus.CounterVec
	quorumUp          *prometheus.GaugeVec
	reconciles        *prometheus.CounterVec
	reconcileDuration prometheus.Histogram
	reconcileChanges  *prometheus.CounterVec
	ipvsAvailable     prometheus.Gauge

	// Agent.
	buildInfo         *prometheus.GaugeVec
	reloadSuccessful  prometheus.Gauge
	reloadSuccessTime prometheus.Gauge
	configLoads       *prometheus.CounterVec
	configDiags       *prometheus.GaugeVec
	notifyRuns        *prometheus.CounterVec
	mails             *prometheus.CounterVec
	scriptSecurity    *prometheus.CounterVec
}

func newFamilies() *families {
	g := func(sub, name, help string, labels ...string) *prometheus.GaugeVec {
		return prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: namespace, Subsystem: sub, Name: name, Help: help}, labels)
	}
	c := func(sub, name, help string, labels ...string) *prometheus.CounterVec {
		return prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: namespace, Subsystem: sub, Name: name, Help: help}, labels)
	}
	h := func(sub, name, help string, buckets []float64, labels ...string) *prometheus.HistogramVec {
		return prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: namespace, Subsystem: sub, Name: name, Help: help, Buckets: buckets}, labels)
	}
	return &families{
		vrrp:          newVRRPCollector(),
		globalDropped: c("vrrp", "global_adverts_dropped_total", "VRRP packets dropped before they could be matched to an instance (unknown VRID, bad checksum or version), by interface and reason.", lInterface, lFamily, lReason),
		probeLateness: prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: namespace, Subsystem: "check", Name: "probe_lateness_seconds", Help: "How late each health check probe started against its schedule, a wait for a probe slot included.", Buckets: latenessBuckets}),

		scriptUp:       g("track", "script_up", "1 if the last run of the tracked script succeeded, else 0.", lScript),
		scriptRuns:     c("track", "script_runs_total", "Runs of a tracked script, by result.", lScript, lResult),
		scriptDuration: h("track", "script_duration_seconds", "Duration of tracked script runs.", durationBuckets, lScript),
		interfaceUp:    g("track", "interface_up", "1 if a tracked interface is up, else 0.", lInterface),
		fileValue:      g("track", "file_value", "Last value read from a tracked file.", lFile),

		probes:            c("check", "probes_total", "Health check probes of real servers, by virtual server, checker type and result.", lVirtualServer, lChecker, lResult),
		probeDuration:     h("check", "probe_duration_seconds", "Duration of health check probes.", durationBuckets, lVirtualServer, lChecker),
		probeErrors:       c("check", "probe_errors_total", "Failed health check probes by error class.", lVirtualServer, lChecker, lReason),
		quorumUp:          g("", "virtual_server_quorum_up", "1 if the virtual server has its quorum of healthy real servers, else 0.", lVirtualServer),
		reconciles:        c("ipvs", "reconciles_total", "Reconciliations of the desired IPVS table with the kernel, by result.", lResult),
		reconcileDuration: prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: namespace, Subsystem: "ipvs", Name: "reconcile_duration_seconds", Help: "Duration of IPVS reconciliations.", Buckets: durationBuckets}),
		reconcileChanges:  c("ipvs", "reconcile_changes_total", "Virtual and real servers added, changed or removed in the kernel by reconciliations.", lOp),
		ipvsAvailable:     prometheus.NewGauge(prometheus.GaugeOpts{Namespace: namespace, Subsystem: "ipvs", Name: "available", Help: "1 if the kernel's IPVS could be programmed at the last attempt, else 0."}),

		buildInfo:         g("", "build_info", "Always 1; labels carry the version of the running keepwatch.", "version", "revision", "goversion"),
		reloadSuccessful:  prometheus.NewGauge(prometheus.GaugeOpts{Namespace: namespace, Subsystem: "config", Name: "last_reload_successful", Help: "1 if the last configuration load or reload succeeded, else 0."}),
		reloadSuccessTime: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: namespace, Subsystem: "config", Name: "last_reload_success_timestamp_seconds", Help: "Unix time of the last successful configuration load."}),
		configLoads:       c("config", "loads_total", "Configuration loads and reloads, by result; a failed reload leaves the old configuration running.", lResult),
		configDiags:       g("config", "diagnostics", "Diagnostics of the running configuration, by severity (error or warning); each was recovered from as keepalived does.", "severity"),
		notifyRuns:        c("notify", "script_runs_total", "Notify script runs, by script and result.", lScript, lResult),
		mails:             c("notify", "mails_total", "SMTP alerts, by result.", lResult),
		scriptSecurity:    c("script", "security_violations_total", "Script runs refused because enable_script_security found the script writable by a non-root user, by kind (track, notify, check).", "kind"),
	}
}

// collectors lists every family for registration.
func (f *families) collectors() []prometheus.Collector {
	return []prometheus.Collector{
		f.vrrp, f.globalDropped, f.probeLateness,
		f.scriptUp, f.scriptRuns, f.scriptDuration, f.interfaceUp, f.fileValue,
		f.probes, f.probeDuration, f.probeErrors, f.quorumUp,
		f.reconciles, f.reconcileDuration, f.reconcileChanges, f.ipvsAvailable,
		f.buildInfo, f.reloadSuccessful, f.reloadSuccessTime, f.configLoads, f.configDiags, f.notifyRuns, f.mails,
		f.scriptSecurity,
	}
}
