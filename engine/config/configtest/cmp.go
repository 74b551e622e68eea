// Package configtest has helpers for tests that compare configuration models.
package configtest

import (
	"net/netip"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/keepwatch/keepwatch/engine/config"
)

// ModelOptions compare two config models by value: positions, the source
// path, the derived Script.Args and the load diagnostics are ignored; nil and
// empty slices are equal.
var ModelOptions = cmp.Options{
	cmpopts.EquateComparable(netip.Addr{}, netip.Prefix{}),
	cmpopts.IgnoreTypes(config.Pos{}),
	cmpopts.IgnoreFields(config.Config{}, "Source", "Diagnostics"),
	cmpopts.EquateEmpty(),
}
