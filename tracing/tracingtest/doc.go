// Package tracingtest provides an in-test OTLP trace receiver (HTTP and gRPC) that decodes what real exporters send.
package tracingtest
