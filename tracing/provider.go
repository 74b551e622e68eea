package tracing

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"strings"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	sdkresource "go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
)

// InstrumentationName names the tracer, after this package's import path.
const InstrumentationName = "github.com/keepwatch/keepwatch/tracing"

// Protocols for Config.Protocol, as OTEL_EXPORTER_OTLP_PROTOCOL spells them.
const (
	ProtocolHTTP = "http/protobuf"
	ProtocolGRPC = "grpc"
)

// DefaultServiceName is service.name when neither Config nor
// OTEL_SERVICE_NAME sets one.
const DefaultServiceName = "keepwatch"

// RouterIDKey is the resource attribute carrying keepalived's router_id
// (global_defs), which names the node in a cluster.
const RouterIDKey = attribute.Key("router_id")

// ErrProtocol reports an OTLP protocol this package does not speak.
var ErrProtocol = errors.New("unsupported OTLP protocol")

// Config selects the span exporter. Fields left empty fall back to the
// standard OpenTelemetry environment variables, which the OTLP exporters
// also read for what Config does not cover (headers, TLS certificates,
// timeout, compression): OTEL_EXPORTER_OTLP_[TRACES_]ENDPOINT,
// OTEL_EXPORTER_OTLP_[TRACES_]PROTOCOL, OTEL_EXPORTER_OTLP_[TRACES_]HEADERS,
// OTEL_SERVICE_NAME, OTEL_RESOURCE_ATTRIBUTES, OTEL_SDK_DISABLED.
type Config struct {
	// Endpoint is the OTLP receiver's URL: "http://collector:4318" for
	// http/protobuf (the /v1/traces path is added), "http://collector:4317"
	// for grpc; https turns TLS on. Empty: the environment; if that sets no
	// endpoint either, export is off and spans cost nothing.
	Endpoint string
	// Protocol is ProtocolHTTP (the default) or ProtocolGRPC.
	Protocol string
	// Headers are sent with every export (e.g. an API key).
	Headers map[string]string

	// ServiceName overrides OTEL_SERVICE_NAME and the default "keepwatch".
	ServiceName    string
	ServiceVersion string
	// RouterID is keepalived's router_id; empty leaves it out.
	RouterID string

	// Exporter, if set, is used instead of an OTLP exporter (tests, or a
	// stdout exporter built by the caller); export is then always on.
	Exporter sdktrace.SpanExporter
	// ExportBatch is the most spans sent in one export (default
	// DefaultExportBatch); ExportInterval how long an ended span may wait
	// for a batch to fill (default DefaultExportInterval).
	ExportBatch    int
	ExportInterval time.Duration
}

// Provider is the TracerProvider of the agent. Nothing here sets the global
// provider: main hands the Provider (or its Tracer) to whoever traces.
type Provider struct {
	sdk   *sdktrace.TracerProvider // nil when export is off
	tp    trace.TracerProvider
	batch *batcher
}

// NewProvider builds a Provider from cfg and the environment. With no
// endpoint configured anywhere (or OTEL_SDK_DISABLED=true, or
// OTEL_TRACES_EXPORTER=none) it returns a disabled Provider whose tracer is
// a no-op, and no error.
func NewProvider(ctx context.Context, cfg Config) (*Provider, error) {
	exp := cfg.Exporter
	if exp == nil {
		if !exportConfigured(cfg) {
			return &Provider{tp: noop.NewTracerProvider()}, nil
		}
		var err error
		if exp, err = newOTLPExporter(ctx, cfg); err != nil {
			return nil, err
		}
	}
	res, err := newResource(ctx, cfg)
	if err != nil {
		return nil, err
	}
	batch := newBatcher(exp, cfg.ExportBatch, cfg.ExportInterval)
	sdk := sdktrace.NewTracerProvider(
		sdktrace.WithSpanProcessor(batch),
		sdktrace.WithResource(res),
		// Which events become spans is the Sink's decision (adverts are
		// sampled there); everything it starts is recorded and exported.
		sdktrace.WithSampler(sdktrace.ParentBased(sdktrace.AlwaysSample())),
		sdktrace.WithIDGenerator(IDGenerator()),
	)
	return &Provider{sdk: sdk, tp: sdk, batch: batch}, nil
}

func exportConfigured(cfg Config) bool {
	if strings.EqualFold(os.Getenv("OTEL_SDK_DISABLED"), "true") ||
		strings.EqualFold(os.Getenv("OTEL_TRACES_EXPORTER"), "none") {
		return false
	}
	return cfg.Endpoint != "" || os.Getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") != "" ||
		os.Getenv("OTEL_EXPORTER_OTLP_ENDPOINT") != ""
}

func protocol(cfg Config) string {
	for _, p := range []string{cfg.Protocol, os.Getenv("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL"), os.Getenv("OTEL_EXPORTER_OTLP_PROTOCOL")} {
		if p != "" {
			return p
		}
	}
	return ProtocolHTTP
}

func newOTLPExporter(ctx context.Context, cfg Config) (sdktrace.SpanExporter, error) {
	switch p := protocol(cfg); p {
	case ProtocolHTTP:
		var opts []otlptracehttp.Option
		if cfg.Endpoint != "" {
			opts = append(opts, otlptracehttp.WithEndpointURL(httpTracesURL(cfg.Endpoint)))
		}
		if len(cfg.Headers) > 0 {
			opts = append(opts, otlptracehttp.WithHeaders(cfg.Headers))
		}
		exp, err := otlptracehttp.New(ctx, opts...)
		if err != nil {
			return nil, fmt.Errorf("otlp http exporter: %w", err)
		}
		return exp, nil
	case ProtocolGRPC:
		var opts []otlptracegrpc.Option
		if cfg.Endpoint != "" {
			opts = append(opts, otlptracegrpc.WithEndpointURL(cfg.Endpoint))
		}
		if len(cfg.Headers) > 0 {
			opts = append(opts, otlptracegrpc.WithHeaders(cfg.Headers))
		}
		exp, err := otlptracegrpc.New(ctx, opts...)
		if err != nil {
			return nil, fmt.Errorf("otlp grpc exporter: %w", err)
		}
		return exp, nil
	default:
		return nil, fmt.Errorf("%w %q (want %q or %q)", ErrProtocol, p, ProtocolHTTP, ProtocolGRPC)
	}
}

// httpTracesURL adds the signal path /v1/traces to an endpoint given
// without a path, as OTEL_EXPORTER_OTLP_ENDPOINT is treated: the exporter
// itself would post to "/".
func httpTracesURL(endpoint string) string {
	u, err := url.Parse(endpoint)
	if err != nil || (u.Path != "" && u.Path != "/") {
		return endpoint
	}
	u.Path = "/v1/traces"
	return u.String()
}

// newResource describes this agent. Later sources win: the default
// service.name, then OTEL_SERVICE_NAME / OTEL_RESOURCE_ATTRIBUTES and the
// host, then what Config sets explicitly.
func newResource(ctx context.Context, cfg Config) (*sdkresource.Resource, error) {
	explicit := []attribute.KeyValue{}
	if cfg.ServiceName != "" {
		explicit = append(explicit, semconv.ServiceName(cfg.ServiceName))
	}
	if cfg.ServiceVersion != "" {
		explicit = append(explicit, semconv.ServiceVersion(cfg.ServiceVersion))
	}
	if cfg.RouterID != "" {
		explicit = append(explicit, RouterIDKey.String(cfg.RouterID))
	}
	res, err := sdkresource.New(ctx,
		sdkresource.WithAttributes(semconv.ServiceName(DefaultServiceName)),
		sdkresource.WithFromEnv(),
		sdkresource.WithHost(),
		sdkresource.WithTelemetrySDK(),
		sdkresource.WithAttributes(explicit...),
	)
	if err != nil && res == nil {
		return nil, fmt.Errorf("tracing resource: %w", err)
	}
	// A partial resource (say, a malformed OTEL_RESOURCE_ATTRIBUTES entry)
	// is still worth exporting with.
	return res, nil
}

// Dropped returns the number of ended spans dropped because the exporter
// was too far behind.
func (p *Provider) Dropped() uint64 {
	if p.batch == nil {
		return 0
	}
	return p.batch.Dropped()
}

// Enabled reports whether spans are exported.
func (p *Provider) Enabled() bool { return p.sdk != nil }

// TracerProvider returns the underlying provider, for code that starts its
// own spans.
func (p *Provider) TracerProvider() trace.TracerProvider { return p.tp }

// Tracer returns the agent's tracer.
func (p *Provider) Tracer() trace.Tracer { return p.tp.Tracer(InstrumentationName) }

// ForceFlush exports every finished span now.
func (p *Provider) ForceFlush(ctx context.Context) error {
	if p.sdk == nil {
		return nil
	}
	return p.sdk.ForceFlush(ctx)
}

// Shutdown flushes and stops the exporter. Call it once, at exit.
func (p *Provider) Shutdown(ctx context.Context) error {
	if p.sdk == nil {
		return nil
	}
	return p.sdk.Shutdown(ctx)
}
