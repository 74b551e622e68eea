// Package event defines the typed events every part of the engine reports: the observability contract.
package event
