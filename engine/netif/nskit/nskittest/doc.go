// Package nskittest wires nskit labs into Go tests: root checks that never skip in CI, cleanup through t.Cleanup, and processes whose output is kept for a failing test.
package nskittest
