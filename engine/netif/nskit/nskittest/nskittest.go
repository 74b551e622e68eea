package nskittest

import (
	"os"
	"os/exec"
	"testing"

	"github.com/keepwatch/keepwatch/engine/netif/nskit"
)

// UnitTierEnv names the variable `make test` sets for its first pass, the
// unit tier under the race detector: namespace tests skip there and run in
// the next pass, without -race, so their timing is what it always was.
const UnitTierEnv = "KEEPWATCH_UNIT_TIER"

// Require stops the test when it cannot run: it needs root and the given
// tools (such as "ip", "tcpdump", "nft", "keepalived"). Under CI=true, or
// without -short, that is a failure; only `go test -short` outside CI skips.
// In the unit-tier pass (UnitTierEnv=1 with -short) it skips whatever the
// machine, since the same test runs in the pass after it.
func Require(t testing.TB, tools ...string) {
	t.Helper()
	if testing.Short() && os.Getenv(UnitTierEnv) == "1" {
		t.Skip("network tier: runs in the pass after the unit tier (" + UnitTierEnv + "=1)")
	}
	why := ""
	if os.Geteuid() != 0 {
		why = "needs root"
	}
	for _, tool := range append([]string{"ip"}, tools...) {
		if why != "" {
			break
		}
		if _, err := exec.LookPath(tool); err != nil {
			why = "needs " + tool + " in PATH"
		}
	}
	if why == "" {
		return
	}
	if os.Getenv("CI") == "" && testing.Short() {
		t.Skip(why)
	}
	t.Fatal(why)
}

// New builds a lab of n nodes for the test (after Require) and removes it,
// with every process started in it, when the test ends.
func New(t testing.TB, name string, n int, tools ...string) *nskit.Lab {
	t.Helper()
	Require(t, tools...)
	l, err := nskit.New(nskit.Options{Name: name, Nodes: n})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := l.Close(); err != nil {
			t.Errorf("closing lab %s: %v", l.ID, err)
		}
	})
	return l
}
