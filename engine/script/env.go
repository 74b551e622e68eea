package script

import "strings"

// Environ returns env as a script gets it. keepalived passes its own
// environment unchanged (lib/notify.c: execve(..., environ)) and scripts
// rely on it (PATH, locale, variables set in the service unit), so
// keepwatch does the same, less what is keepwatch's own and not the
// script's business: every KEEPWATCH_* setting and the OTLP exporter
// headers (OTEL_EXPORTER_OTLP_HEADERS and OTEL_EXPORTER_OTLP_*_HEADERS),
// which carry the telemetry backend's credentials.
func Environ(env []string) []string {
	out := make([]string, 0, len(env))
	for _, kv := range env {
		name, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(name, "KEEPWATCH_") ||
			(strings.HasPrefix(name, "OTEL_EXPORTER_OTLP_") && strings.HasSuffix(name, "HEADERS")) {
			continue
		}
		out = append(out, kv)
	}
	return out
}
