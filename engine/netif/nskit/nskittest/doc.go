// Package nskittest wires nskit labs into Go tests: root checks that never skip in CI, and cleanup through t.Cleanup.
package nskittest
