package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/exporter-toolkit/web"
	"github.com/spf13/cobra"

	"github.com/keepwatch/keepwatch/engine/agent"
	"github.com/keepwatch/keepwatch/engine/event"
	"github.com/keepwatch/keepwatch/engine/httpguard"
	"github.com/keepwatch/keepwatch/engine/ipvs"
	"github.com/keepwatch/keepwatch/engine/lb"
	"github.com/keepwatch/keepwatch/engine/netif"
	"github.com/keepwatch/keepwatch/metrics"
	"github.com/keepwatch/keepwatch/tracing"
	"github.com/keepwatch/keepwatch/tracing/logsink"
)

// DefaultListen is keepwatch's HTTP port: neither keepalived exporter's
// (9165, 9650).
const DefaultListen = ":9759"

type runFlags struct {
	file, configID             string
	listen, webConfig          string
	logFormat, logLevel        string
	otlpEndpoint, otlpProtocol string
	advertSpans                float64
	// strict refuses a config with any error (KEEPWATCH_AGENT_STRICT too).
	strict bool
	// noMetrics leaves the metrics sink out of the event path (/metrics
	// still serves Go and process metrics): the "everything off" leg of the
	// observability benchmark (deploy/obs).
	noMetrics bool
	// pprof serves net/http/pprof under /debug/pprof/ (heap profiles for
	// the footprint benchmark, deploy/bench.d/memory.sh); off by default,
	// as it exposes the process's internals to whoever reaches the port.
	pprof bool
	// mem: GOGC and the soft memory limit (memory.go).
	mem memorySettings
	// Set by the keepalived drop-in (keepalived.go): log is its logger (-l,
	// -S, -g; nil: built from logFormat and logLevel), trim keeps one side of
	// each loaded config (-P, -C).
	log  *slog.Logger
	trim func(*configT)
	// started, if set, is called once the agent exists (-d dumps it).
	started func(context.Context, *agent.Agent)
	push    pushFlags
}

func runCommand() *cobra.Command {
	var f runFlags
	cmd := &cobra.Command{
		Use:   "run -f FILE",
		Short: "run the agent in the foreground (SIGHUP reloads, SIGTERM stops: masters resign and remove their VIPs)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			// The config's agent: section and KEEPWATCH_AGENT_* apply
			// where no flag was given.
			if err := applyAgentSettings(&f, cmd.Flags().Changed); err != nil {
				return err
			}
			f.mem.changed = cmd.Flags().Changed
			return runAgent(cmd.Context(), f)
		},
	}
	fl := cmd.Flags()
	fl.StringVarP(&f.file, "file", "f", "/etc/keepalived/keepalived.conf", "config file (keepalived.conf, or .yaml/.toml/.json)")
	fl.StringVarP(&f.configID, "config-id", "i", "", "config id for @id conditional lines")
	fl.StringVar(&f.listen, "web.listen-address", DefaultListen, "address for /metrics, /api/v1/status and health endpoints")
	fl.StringVar(&f.webConfig, "web.config.file", "", "exporter-toolkit web config (TLS, basic auth)")
	fl.StringVar(&f.logFormat, "log.format", "console", "log format: console or json")
	fl.StringVar(&f.logLevel, "log.level", "info", "log level: debug, info, warn, error")
	fl.StringVar(&f.otlpEndpoint, "otlp.endpoint", "", "OTLP endpoint for spans (default: OTEL_EXPORTER_OTLP_ENDPOINT; none: tracing off)")
	fl.StringVar(&f.otlpProtocol, "otlp.protocol", "", "OTLP protocol: http/protobuf (default) or grpc")
	fl.Float64Var(&f.advertSpans, "trace.advert-ratio", 0, "fraction of VRRP adverts traced as spans (0 to 1)")
	fl.BoolVar(&f.strict, "strict", envBool("KEEPWATCH_AGENT_STRICT"), "refuse a config with any error-level diagnostic (default: run what keepalived runs, bad lines ignored)")
	fl.BoolVar(&f.noMetrics, "metrics.disabled", false, "keep the metrics sink out of the event path (benchmarks)")
	_ = fl.MarkHidden("metrics.disabled")
	f.push.register(cmd)
	fl.BoolVar(&f.pprof, "debug.pprof", envBool("KEEPWATCH_DEBUG_PPROF"), "serve /debug/pprof/ (heap and goroutine profiles)")
	_ = fl.MarkHidden("debug.pprof")
	fl.IntVar(&f.mem.gcPercent, "memory.gc-percent", DefaultGCPercent, "GC target: heap growth over the live heap before a collection, in percent (default unless GOGC is set, 400 while advert spans are exported; -1: off)")
	fl.StringVar(&f.mem.limit, "memory.limit", "", "soft memory limit for the Go runtime, e.g. 64MiB (default: GOMEMLIMIT, else none)")
	return cmd
}

func runAgent(ctx context.Context, f runFlags) error {
	if ctx == nil {
		ctx = context.Background()
	}
	// Before the config and the instances take their memory.
	if err := f.mem.apply(); err != nil {
		return err
	}
	// Signals are caught before anything else happens, so one that arrives
	// during start-up is handled by the loop below (queued or acted on)
	// instead of taking Go's default action (SIGHUP, SIGTERM: exit at once).
	sigs := make(chan os.Signal, 32)
	signal.Notify(sigs, handledSignals...)
	// Never undone. signal.Stop would restore the default actions, and a
	// HUP between the agent's end and the process's exit would kill it
	// (exit status 129 after a clean shutdown). signal.Ignore has the same
	// hole, briefly: the runtime clears its "handling" flag before the
	// rt_sigaction that installs SIG_IGN, and a signal in between is
	// forwarded to the original disposition, the default, which kills
	// (runtime sigignore/sigfwdgo; seen once in TestSignalsAnyMoment under
	// load). Left registered, a late signal lands in sigs, which nobody
	// reads any more (full: dropped), and the process exits as it meant to.
	log, flush, err := newLogger(f.logFormat, f.logLevel)
	if f.log != nil {
		log, flush, err = f.log, func() {}, nil
	}
	if err != nil {
		return err
	}
	defer flush()

	// Tracing: OTLP when OTEL_EXPORTER_OTLP_ENDPOINT (or --otlp.endpoint)
	// says where; otherwise a no-op that costs nothing.
	tp, err := tracing.NewProvider(ctx, tracing.Config{Endpoint: f.otlpEndpoint, Protocol: f.otlpProtocol, ServiceVersion: version})
	if err != nil {
		return err
	}
	defer func() {
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = tp.Shutdown(sctx)
	}()
	// Advert spans are garbage by the batch: trade heap for GC (memory.go).
	f.mem.spans(tp.Enabled(), f.advertSpans)
	ts := tracing.NewSink(tp, tracing.SinkOptions{AdvertSampleRatio: f.advertSpans})
	tctx, tcancel := context.WithCancel(context.Background())
	tsDone, lsDone := make(chan struct{}), make(chan struct{})
	go func() { defer close(tsDone); _ = ts.Run(tctx) }()

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	// Logs: transitions, priority and VIP changes, reloads, failures, with
	// the trace and span ids the tracing sink gives the same events.
	ls := logsink.New(log, logsink.Options{Spans: ts})
	go func() { defer close(lsDone); _ = ls.Run(tctx) }()
	// On the way out, the sinks write what is still queued (the shutdown
	// transitions) before the provider flushes and the log syncs.
	defer func() { tcancel(); <-tsDone; <-lsDone }()
	nw := &notifyWiring{log: log}
	// The balancer is made below, once the sink exists; metrics reads its
	// IPVS counters at each scrape (the HTTP server starts after both).
	var bal *lb.Balancer
	ps, err := newPush(f.push, f.listen, log)
	if err != nil {
		return err
	}
	queues := []metrics.Queue{ts, ls, nw}
	if ps != nil {
		queues = append(queues, ps)
		go func() { _ = ps.Run(tctx) }()
	}
	m, err := metrics.New(reg, metrics.Options{Version: version, Traces: ts, Queues: queues,
		IPVS: metrics.IPVSFunc(func() ([]metrics.IPVSService, error) { return ipvsStats(bal) })})
	if err != nil {
		return err
	}
	// startup_script runs on the first config, before the agent starts an
	// instance; shutdown_script once the agent has stopped them and the
	// notifier has drained (notify_stop ran), after nw.stop below
	// (lifescripts.go). Its run still reaches the sinks, stopped later.
	life := &lifeScripts{log: log}
	defer life.stopped()
	// Notify scripts, FIFOs and mail, behind their own queue; stopped after
	// the agent (deferred first), so STOP notifications still go out.
	nw.start(m)
	defer nw.stop()
	// Metrics first: counters are updated before anything slow sees the event.
	sink := event.Multi{m, ts, ls, nw.n}
	onConfig := func(c *configT) {
		m.Declare(declaration(c))
		nw.config(c)
	}
	if f.noMetrics {
		sink, onConfig = event.Multi{ts, ls, nw.n}, nw.config
	}
	if ps != nil {
		sink = append(sink, ps)
		declared := onConfig
		onConfig = func(c *configT) { declared(c); ps.SetSegments(segmentsOf(declaration(c))) }
	}
	life.sink = sink
	onConfig = life.wrap(onConfig)
	lbOpts := lb.Options{Sink: sink, Log: log}
	if !f.noMetrics {
		lbOpts.Lateness = m.ObserveProbeLateness // keepwatch_check_probe_lateness_seconds
	}
	bal = lb.New(lbOpts)
	// The host's network; the agent closes it when it stops.
	host, err := netif.OpenHost()
	if err != nil {
		return fmt.Errorf("netlink: %w", err)
	}
	host.OnLinkError = func(err error) { log.Warn("link watch: subscribing again", "err", err) }
	a := agent.New(agent.Options{Path: f.file, ConfigID: f.configID, Log: log, Sink: sink, OnConfig: onConfig, OnGroup: nw.group, Balancer: bal, Platform: host, Trim: f.trim, Strict: f.strict})

	mux := http.NewServeMux()
	// m.Handler: the registry through expfmt, the per-instance VRRP and
	// per-real-server families written directly (100,000 series at 10,000
	// real servers), in 32 KiB chunks. /api/v1/status builds its whole
	// answer in memory; both are bounded in concurrency, so slow or many
	// clients bound the memory too (httpguard documents the limits).
	mux.Handle("/metrics", httpguard.Limit(m.Handler(reg), httpguard.MetricsConcurrency, httpguard.QueueWait))
	mux.HandleFunc("/-/healthy", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("healthy\n")) })
	mux.Handle("/-/ready", a.ReadyHandler())
	mux.Handle("/api/v1/status", httpguard.Limit(a.StatusHandler(), httpguard.StatusConcurrency, httpguard.QueueWait))
	landing, err := web.NewLandingPage(web.LandingConfig{
		Name: "keepwatch", Description: "keepalived-compatible VRRP and IPVS agent", Version: version,
		Links: []web.LandingLinks{{Address: "/metrics", Text: "Metrics"}, {Address: "/api/v1/status", Text: "Status"}},
	})
	if err != nil {
		return err
	}
	mux.Handle("/", landing)
	if f.pprof {
		mountPprof(mux)
	}
	// Read-header, read, write and idle timeouts and size limits.
	srv := httpguard.Server(mux)
	listen := []string{f.listen}
	systemd := false
	webCfg := f.webConfig
	go func() {
		err := web.ListenAndServe(srv, &web.FlagConfig{WebListenAddresses: &listen, WebSystemdSocket: &systemd, WebConfigFile: &webCfg}, log)
		if err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("http server", "err", err)
		}
	}()
	defer srv.Close()

	ctx, stop := context.WithCancel(ctx)
	defer stop()
	agentDone := make(chan struct{})
	loopDone := make(chan struct{})
	go func() {
		defer close(loopDone)
		signalLoop(ctx, sigs, a, log, stop, agentDone)
	}()
	// The loop may still be in a reload or a dump when Run returns: wait for
	// it, so nothing touches the agent after runAgent returns.
	defer func() { close(agentDone); <-loopDone }()
	if f.started != nil {
		f.started(ctx, a)
	}
	go notifyWhenReady(ctx, a.Ready)
	go releaseAfterStart(ctx, a.StartupSettled, log)
	log.Info("starting", "config", f.file, "version", version, "listen", f.listen)
	if ctx.Err() != nil {
		// TERM during the set-up above: nothing has started, nothing to undo.
		log.Info("stopped before start")
		return nil
	}
	if err := a.Run(ctx); err != nil {
		log.Error("agent stopped", "err", err)
		return exitError{1}
	}
	log.Info("stopped")
	return nil
}

// handledSignals are the signals the agent answers as keepalived does
// (keepalived(8)): HUP reloads; TERM and INT stop; dumpSignals (dump.go:
// USR1, USR2, SIGRTMIN+2 JSON) ask for keepalived's dumps.
var handledSignals = append([]os.Signal{syscall.SIGHUP, syscall.SIGTERM, syscall.SIGINT}, dumpSignals...)

// signalLoop handles every signal, one at a time, until done is closed
// (the agent's Run has returned). It is the only caller of a.Reload, so a
// reload never overlaps another, and stop (which ends Run, whose shutdown
// removes every VIP) is only called between reloads: a reload can never
// start an instance after shutdown has stopped them all.
//
//   - A HUP before the agent is ready (its first config applied) is queued
//     and performed once it is; a burst of HUPs is one reload of the newest
//     file; a HUP after TERM or INT is ignored with a log line.
//   - TERM or INT stops the agent; another one while it stops is logged.
//   - dumpSignals are handed to dumpOnSignal at any moment.
func signalLoop(ctx context.Context, sigs <-chan os.Signal, a *agent.Agent, log *slog.Logger, stop context.CancelFunc, done <-chan struct{}) {
	var (
		stopping, pending, started bool
		poll                       *time.Ticker
	)
	defer func() {
		if poll != nil {
			poll.Stop()
		}
	}()
	for {
		// Ready is latched: the agent may later report itself not ready
		// (shutting down), but a reload is only unsafe before the first
		// config is in place.
		started = started || a.Ready()
		stopping = stopping || ctx.Err() != nil
		if pending && !stopping && started && len(sigs) == 0 {
			// Signals already queued are handled first: a TERM behind a
			// HUP wins, and a burst of HUPs collapses into this one reload.
			pending = false
			_ = a.Reload()
			continue
		}
		var tick <-chan time.Time
		if pending && !started {
			if poll == nil {
				poll = time.NewTicker(20 * time.Millisecond)
			}
			tick = poll.C
		}
		select {
		case <-done:
			if pending {
				log.Warn("reload not performed: the agent stopped", "signal", syscall.SIGHUP.String())
			}
			return
		case <-tick:
		case sig := <-sigs:
			switch sig {
			case syscall.SIGTERM, syscall.SIGINT:
				if stopping {
					log.Info("already stopping", "signal", sig.String())
					continue
				}
				stopping = true
				if pending {
					pending = false
					log.Info("queued reload dropped: stopping", "signal", sig.String())
				}
				log.Info("stopping", "signal", sig.String())
				stop()
			case syscall.SIGHUP:
				switch {
				case stopping:
					log.Info("reload ignored: stopping", "signal", sig.String())
				case !started && !a.Ready():
					if !pending {
						log.Info("reload queued until start-up completes", "signal", sig.String())
					}
					pending = true
				default:
					pending = true
				}
			default:
				dumpOnSignal(sig, a, log)
			}
		}
	}
}

// envBool reads a boolean environment variable; unset or unparsable is false.
func envBool(name string) bool {
	b, _ := strconv.ParseBool(os.Getenv(name))
	return b
}

// ipvsStats is the balancer's kernel counters in metrics' terms. Without
// virtual servers there is nothing to read, which is not a failed scrape.
func ipvsStats(b *lb.Balancer) ([]metrics.IPVSService, error) {
	svcs, err := b.Counters()
	if errors.Is(err, lb.ErrNotRunning) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	stats := func(c ipvs.Counters) metrics.IPVSStats {
		return metrics.IPVSStats{Connections: c.Connections, PacketsIn: c.PacketsIn, PacketsOut: c.PacketsOut,
			BytesIn: c.BytesIn, BytesOut: c.BytesOut}
	}
	out := make([]metrics.IPVSService, 0, len(svcs))
	for _, s := range svcs {
		ms := metrics.IPVSService{Name: s.Key.String(), Stats: stats(s.Stats), Destinations: make([]metrics.IPVSDestination, 0, len(s.Destinations))}
		for _, d := range s.Destinations {
			ms.Destinations = append(ms.Destinations, metrics.IPVSDestination{Name: d.AddrPort().String(), Stats: stats(d.Stats),
				Weight: d.Weight, ActiveConns: uint64(max(d.Stats.ActiveConnections, 0)), InactiveConns: uint64(max(d.Stats.InactiveConnections, 0))})
		}
		out = append(out, ms)
	}
	return out, nil
}

// newLogger builds slog over zap: only main knows the handler is zap.
func newLogger(format, level string) (*slog.Logger, func(), error) {
	return zapLogger(format, level)
}
