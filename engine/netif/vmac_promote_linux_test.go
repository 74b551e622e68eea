package netif_test

import (
	"os"
	"strings"
	"testing"

	"github.com/keepwatch/keepwatch/engine/netif/nskit/nskittest"
)

// TestPromoteSecondaries: with promote_secondaries set, removing the
// interface's primary address keeps a VIP of the same subnet (the kernel
// promotes it); without it the kernel deletes the VIP with the primary,
// which is what the keyword is for. Reset writes 0 back, and one already 1
// is left alone. keepalived 2.2.7 with promote_secondaries, tried in a
// namespace: the sysctl is 1 while it runs and 0 after it stops.
func TestPromoteSecondaries(t *testing.T) {
	t.Parallel()
	l := nskittest.New(t, "promsec", 1)
	n := l.Node(1)
	s := openSystem(t, n)
	sysctl := func() string {
		var v string
		if err := n.Do(func() error {
			b, err := os.ReadFile("/proc/sys/net/ipv4/conf/" + n.Link + "/promote_secondaries")
			v = strings.TrimSpace(string(b))
			return err
		}); err != nil {
			t.Fatal(err)
		}
		return v
	}
	// keepsVIP adds a VIP beside the primary, removes the primary and says
	// whether the VIP survived; it puts the primary back.
	keepsVIP := func() bool {
		ipOut(t, n, "addr", "add", "192.0.2.200/24", "dev", n.Link)
		ipOut(t, n, "addr", "del", n.IPv4.String(), "dev", n.Link)
		kept := line(ipOut(t, n, "-4", "-o", "addr", "show", "dev", n.Link), "192.0.2.200/24") != ""
		ipOut(t, n, "addr", "flush", "dev", n.Link, "scope", "global", "to", "192.0.2.0/24")
		ipOut(t, n, "addr", "add", n.IPv4.String(), "dev", n.Link)
		return kept
	}

	if sysctl() != "0" {
		t.Fatalf("promote_secondaries %s before, want the kernel's 0", sysctl())
	}
	if keepsVIP() {
		t.Fatal("without promote_secondaries the VIP survived its primary: the test proves nothing")
	}
	set, err := s.PromoteSecondaries(n.Link)
	if err != nil || !set || sysctl() != "1" {
		t.Fatalf("PromoteSecondaries: set %v err %v, sysctl %s", set, err, sysctl())
	}
	if !keepsVIP() {
		t.Error("with promote_secondaries the VIP went with the primary address")
	}
	if set, err := s.PromoteSecondaries(n.Link); err != nil || set {
		t.Errorf("second PromoteSecondaries: set %v err %v, want false (already 1)", set, err)
	}
	if err := s.ResetPromoteSecondaries(n.Link); err != nil || sysctl() != "0" {
		t.Errorf("ResetPromoteSecondaries: err %v, sysctl %s", err, sysctl())
	}
	if err := s.ResetPromoteSecondaries("nosuchif0"); err != nil {
		t.Errorf("reset on a missing interface: %v", err)
	}
}
