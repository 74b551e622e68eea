// Package alerts holds keepwatch's alerting mixin (Prometheus rules, their promtool tests, Alertmanager routing) and the tests that check it.
package alerts
