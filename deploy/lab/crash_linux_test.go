package lab_test

import (
	"testing"
	"time"

	"github.com/keepwatch/keepwatch/deploy/lab"
)

// vmacTemplate is the lab's single IPv4 instance with use_vmac: the VIP
// lives on the macvlan vrrp.51, not on the node's link (reference §2.8).
const vmacTemplate = `global_defs {
  router_id lab{{.Index}}
}
{{- range .Instances}}

vrrp_instance {{.Name}} {
  state BACKUP
  interface {{$.Link}}
  use_vmac
  virtual_router_id {{.VRID}}
  priority {{$.Priority}}
  advert_int {{secs $.P.Interval}}
  version {{$.P.Version}}
  virtual_ipaddress {
    {{.VIP}}
  }
}
{{- end}}
`

// TestKillRestart: a master killed with SIGKILL cannot resign, so its VIP
// stays on its link (or on its VMAC) while the backup takes over: two
// holders until it comes back. It comes back below the new master's
// priority, so only the removal of what the killed run left at start
// (netif.RemoveLeftovers, before any instance runs) can leave the VIP on
// exactly one node; with use_vmac the leftover VMAC goes too and is made
// afresh.
func TestKillRestart(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, tmpl string
	}{
		{"kill", ""},
		{"killvmac", vmacTemplate},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := newCluster(t, tc.name, lab.Options{Nodes: 2, Params: lab.Params{Family: 4}, TemplateText: tc.tmpl})
			n1 := c.Node(1)
			waitHolders(t, c, []int{1}, 10*time.Second, vip4)
			if tc.tmpl != "" {
				if _, err := n1.Handle().LinkByName("vrrp.51"); err != nil {
					t.Fatalf("use_vmac: no vrrp.51 on node 1: %v", err)
				}
			}
			if err := n1.Kill(); err != nil {
				t.Fatal(err)
			}
			// The crash's own split brain: the killed master's VIP stays.
			waitHolders(t, c, []int{1, 2}, 5*time.Second, vip4)
			n1.Priority = 50
			if err := n1.Render(n1.Params); err != nil {
				t.Fatal(err)
			}
			if err := n1.Start(t.Context()); err != nil {
				t.Fatal(err)
			}
			waitHolders(t, c, []int{2}, 5*time.Second, vip4)
			waitState(t, n1, "VI_4", "backup", 2*time.Second)
			// And it stays so.
			w := c.Watch(10*time.Millisecond, nil)
			time.Sleep(time.Second)
			tl := w.Stop()
			if got, err := c.Holders(vip4); err != nil || len(got) != 1 || got[0] != 2 {
				t.Errorf("VIP held by %v (%v), want node 2 only\n%s", got, err, tl.Format())
			}
			if tl.Moves(0) > 0 {
				t.Errorf("VIP moved after the restart:\n%s", tl.Format())
			}
			if tc.tmpl != "" {
				if _, err := n1.Handle().LinkByName("vrrp.51"); err != nil {
					t.Errorf("use_vmac: no vrrp.51 on node 1 after the restart: %v", err)
				}
			}
		})
	}
}
