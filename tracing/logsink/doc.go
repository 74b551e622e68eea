// Package logsink writes the engine's events as structured slog records, carrying the trace and span ids of the events that became spans.
package logsink
