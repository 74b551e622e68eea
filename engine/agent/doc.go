// Package agent composes keepwatch: it builds instances, trackers and sinks from a config, runs them, and reloads by difference.
package agent
