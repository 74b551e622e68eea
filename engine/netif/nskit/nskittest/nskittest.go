package nskittest

import (
	"os"
	"os/exec"
	"testing"

	"github.com/keepwatch/keepwatch/engine/netif/nskit"
)

// Require stops the test when it cannot run: it needs root and the given
// tools (such as "ip", "tcpdump", "nft", "keepalived"). Under CI=true, or
// without -short, that is a failure; only `go test -short` outside CI skips.
func Require(t testing.TB, tools ...string) {
	t.Helper()
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
