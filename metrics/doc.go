// Package metrics turns engine events and scrape-time snapshots into Prometheus metrics, as listed in README.md.
package metrics
