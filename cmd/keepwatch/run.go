package main

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/exporter-toolkit/web"
	"github.com/spf13/cobra"

	"github.com/keepwatch/keepwatch/engine/agent"
	"github.com/keepwatch/keepwatch/engine/event"
	"github.com/keepwatch/keepwatch/engine/ipvs"
	"github.com/keepwatch/keepwatch/engine/lb"
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
	// noMetrics leaves the metrics sink out of the event path (/metrics
	// still serves Go and process metrics): the "everything off" leg of the
	// observability benchmark (deploy/obs).
	noMetrics bool
	push      pushFlags
}

func runCommand() *cobra.Command {
	var f runFlags
	cmd := &cobra.Command{
		Use:   "run -f FILE",
		Short: "run the agent in the foreground (SIGHUP reloads, SIGTERM stops: masters resign and remove their VIPs)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
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
	fl.BoolVar(&f.noMetrics, "metrics.disabled", false, "keep the metrics sink out of the event path (benchmarks)")
	_ = fl.MarkHidden("metrics.disabled")
	f.push.register(cmd)
	return cmd
}

// runAgentCommand runs the agent for the keepalived-compatible entry point.
func runAgentCommand(cmd *cobra.Command, file, configID string) error {
	return runAgent(cmd.Context(), runFlags{file: file, configID: configID, listen: DefaultListen, logFormat: "console", logLevel: "info"})
}

func runAgent(ctx context.Context, f runFlags) error {
	if ctx == nil {
		ctx = context.Background()
	}
	log, flush, err := newLogger(f.logFormat, f.logLevel)
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
	lbOpts := lb.Options{Sink: sink, Log: log}
	if !f.noMetrics {
		lbOpts.Lateness = m.ObserveProbeLateness // keepwatch_check_probe_lateness_seconds
	}
	bal = lb.New(lbOpts)
	a := agent.New(agent.Options{Path: f.file, ConfigID: f.configID, Log: log, Sink: sink, OnConfig: onConfig, OnGroup: nw.group, Balancer: bal})

	mux := http.NewServeMux()
	// m.Handler: the registry through expfmt, the per-real-server families
	// written directly (100,000 series at 10,000 real servers).
	mux.Handle("/metrics", m.Handler(reg))
	mux.HandleFunc("/-/healthy", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("healthy\n")) })
	mux.Handle("/-/ready", a.ReadyHandler())
	mux.Handle("/api/v1/status", a.StatusHandler())
	landing, err := web.NewLandingPage(web.LandingConfig{
		Name: "keepwatch", Description: "keepalived-compatible VRRP and IPVS agent", Version: version,
		Links: []web.LandingLinks{{Address: "/metrics", Text: "Metrics"}, {Address: "/api/v1/status", Text: "Status"}},
	})
	if err != nil {
		return err
	}
	mux.Handle("/", landing)
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
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

	ctx, stop := signal.NotifyContext(ctx, syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	go func() {
		for {
			select {
			case <-ctx.Done():
				return
			case <-hup:
				_ = a.Reload()
			}
		}
	}()
	go notifyWhenReady(ctx, a.Ready)
	log.Info("starting", "config", f.file, "version", version, "listen", f.listen)
	if err := a.Run(ctx); err != nil {
		log.Error("agent stopped", "err", err)
		return exitError{1}
	}
	log.Info("stopped")
	return nil
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
