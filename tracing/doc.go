// Package tracing builds the OpenTelemetry TracerProvider and turns engine events into spans.
package tracing
