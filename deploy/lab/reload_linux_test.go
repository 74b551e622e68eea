package lab_test

import (
	"io"
	"net/http"
	"net/netip"
	"os"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/keepwatch/keepwatch/deploy/lab"
)

// TestReloadInPlace applies each kind of in-place reload (issue 9 §1) to
// the master of a two-node cluster by SIGHUP, while a watcher samples who
// holds the VIP every 2 ms: it must never be absent from the master nor
// present on the backup. Then an identity change (use_vmac) restarts the
// instance, which resigns with priority 0 first: the backup takes over at
// once and the master preempts back.
func TestReloadInPlace(t *testing.T) {
	t.Parallel()
	c := newCluster(t, "reloadip", lab.Options{Nodes: 2, Params: lab.Params{Family: 4}})
	n1, n2 := c.Node(1), c.Node(2)
	waitHolders(t, c, []int{1}, 10*time.Second, vip4)
	base, err := os.ReadFile(n1.Config)
	if err != nil {
		t.Fatal(err)
	}
	link := regexp.MustCompile(`interface (\S+)`).FindSubmatch(base)
	if link == nil {
		t.Fatalf("no interface in node 1's config:\n%s", base)
	}
	ifname := string(link[1])
	extra := netip.MustParseAddr("192.0.2.101")
	insert := func(cfg, lines string) string {
		return strings.Replace(cfg, "  virtual_ipaddress {", lines+"  virtual_ipaddress {", 1)
	}
	cur := string(base)
	steps := []struct {
		name string
		edit func(string) string
		// after checks the master once the reload is in.
		after func(t *testing.T)
	}{
		{"priority 150 to 120", func(s string) string { return strings.Replace(s, "priority 150", "priority 120", 1) },
			func(t *testing.T) {
				if s := instance(t, n1, "VI_4"); s.BasePriority != 120 || s.State != "master" {
					t.Errorf("node 1: %+v, want master at 120", s)
				}
			}},
		{"advert interval", func(s string) string {
			return regexp.MustCompile(`advert_int \S+`).ReplaceAllString(s, "advert_int 0.2")
		}, nil},
		{"VIP added", func(s string) string {
			return strings.Replace(s, "  virtual_ipaddress {\n", "  virtual_ipaddress {\n    192.0.2.101/24\n", 1)
		}, func(t *testing.T) {
			waitAddr(t, n1, extra, true)
			if held, _ := n2.Holds(extra); held {
				t.Error("node 2 holds the added VIP")
			}
		}},
		{"VIP removed", func(s string) string { return strings.Replace(s, "    192.0.2.101/24\n", "", 1) },
			func(t *testing.T) { waitAddr(t, n1, extra, false) }},
		{"virtual route", func(s string) string {
			return insert(s, "  virtual_routes {\n    blackhole 203.0.113.0/24\n  }\n")
		}, nil},
		{"tracked interface with weight", func(s string) string {
			return insert(s, "  track_interface {\n    "+ifname+" weight -10\n  }\n")
		}, nil},
		{"notify script", func(s string) string { return insert(s, "  notify_master \"/bin/true\"\n") }, nil},
		{"preempt_delay and garp", func(s string) string { return insert(s, "  preempt_delay 1\n  garp_master_repeat 2\n") }, nil},
	}
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			last := metric(t, n1, "keepwatch_config_last_reload_success_timestamp_seconds")
			w := c.Watch(2*time.Millisecond, nil)
			cur = st.edit(cur)
			if err := n1.WriteConfig([]byte(cur)); err != nil {
				t.Fatal(err)
			}
			if err := n1.Signal(syscall.SIGHUP); err != nil {
				t.Fatal(err)
			}
			deadline := time.Now().Add(5 * time.Second)
			for metric(t, n1, "keepwatch_config_last_reload_success_timestamp_seconds") == last {
				if time.Now().After(deadline) {
					t.Fatalf("the reload did not succeed within 5 s:\n%s", n1.Log())
				}
				time.Sleep(10 * time.Millisecond)
			}
			time.Sleep(500 * time.Millisecond) // several Master_Down_Intervals
			tl := w.Stop()
			for _, r := range tl.Records {
				if !slices.Equal(r.Holders[0], []int{1}) {
					t.Errorf("at %s %s was held by %v, want node 1 only:\n%s", r.At, vip4, r.Holders[0], tl.Format())
					break
				}
			}
			if s := instance(t, n1, "VI_4"); s.State != "master" || !s.VIPHeld {
				t.Errorf("node 1 after the reload: %+v", s)
			}
			if st.after != nil {
				st.after(t)
			}
		})
	}

	t.Run("identity change hands over with priority 0", func(t *testing.T) {
		zero := metric(t, n2, "keepwatch_vrrp_priority_zero_received_total", "vrrp_instance", "VI_4")
		w := c.Watch(2*time.Millisecond, nil)
		cur = insert(cur, "  use_vmac\n")
		if err := n1.WriteConfig([]byte(cur)); err != nil {
			t.Fatal(err)
		}
		if err := n1.Signal(syscall.SIGHUP); err != nil {
			t.Fatal(err)
		}
		waitHolders(t, c, []int{2}, 3*time.Second, vip4)
		waitHolders(t, c, []int{1}, 5*time.Second, vip4) // preempts back
		tl := w.Stop()
		if got := metric(t, n2, "keepwatch_vrrp_priority_zero_received_total", "vrrp_instance", "VI_4"); got <= zero {
			t.Errorf("node 2 received no priority-0 advert (%v, was %v):\n%s", got, zero, tl.Format())
		}
		for _, o := range tl.Overlaps() {
			if o.Duration() > 300*time.Millisecond {
				t.Errorf("both nodes held the VIP for %s:\n%s", o, tl.Format())
			}
		}
	})
}

func waitAddr(t *testing.T, n *lab.Node, a netip.Addr, present bool) {
	t.Helper()
	deadline := time.Now().Add(3 * time.Second)
	for {
		held, err := n.Holds(a)
		if err != nil {
			t.Fatal(err)
		}
		if held == present {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("node %d: %s held %v after 3 s, want %v", n.Index, a, held, present)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestReloadUnicastPeers: adding a unicast peer to the master's list (and
// removing it again) is applied in place: the VIP never leaves it.
func TestReloadUnicastPeers(t *testing.T) {
	t.Parallel()
	c := newCluster(t, "reloaduc", lab.Options{Nodes: 2, Params: lab.Params{Family: 4, Unicast: true}})
	n1 := c.Node(1)
	waitHolders(t, c, []int{1}, 10*time.Second, vip4)
	base, err := os.ReadFile(n1.Config)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(base), "  unicast_peer {\n") {
		t.Fatalf("no unicast_peer block in node 1's config:\n%s", base)
	}
	added := strings.Replace(string(base), "  unicast_peer {\n", "  unicast_peer {\n    192.0.2.250\n", 1)
	for _, cfg := range []string{added, string(base)} {
		last := metric(t, n1, "keepwatch_config_last_reload_success_timestamp_seconds")
		w := c.Watch(2*time.Millisecond, nil)
		if err := n1.WriteConfig([]byte(cfg)); err != nil {
			t.Fatal(err)
		}
		if err := n1.Signal(syscall.SIGHUP); err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(5 * time.Second)
		for metric(t, n1, "keepwatch_config_last_reload_success_timestamp_seconds") == last {
			if time.Now().After(deadline) {
				t.Fatalf("the reload did not succeed within 5 s:\n%s", n1.Log())
			}
			time.Sleep(10 * time.Millisecond)
		}
		time.Sleep(500 * time.Millisecond)
		tl := w.Stop()
		for _, r := range tl.Records {
			if !slices.Equal(r.Holders[0], []int{1}) {
				t.Fatalf("at %s %s was held by %v, want node 1 only:\n%s", r.At, vip4, r.Holders[0], tl.Format())
			}
		}
	}
	if got := metric(t, n1, "keepwatch_vrrp_transitions_total", "vrrp_instance", "VI_4", "to", "master"); got != 1 {
		t.Errorf("node 1 became master %v times, want once", got)
	}
}

// TestReloadFailedInstance: a reload adding an instance on a missing
// interface is reported failed (keepwatch_config_last_reload_successful 0,
// keepwatch_vrrp_state fault), the instance is FAULT with its reason in
// /api/v1/status, /-/ready answers 503 naming it, and the running master
// keeps its VIP. A reload without it makes the node ready again.
func TestReloadFailedInstance(t *testing.T) {
	t.Parallel()
	c := newCluster(t, "reloadft", lab.Options{Nodes: 2, Params: lab.Params{Family: 4}})
	n1 := c.Node(1)
	waitHolders(t, c, []int{1}, 10*time.Second, vip4)
	base, err := os.ReadFile(n1.Config)
	if err != nil {
		t.Fatal(err)
	}
	broken := string(base) + "\nvrrp_instance VI_9 {\n  interface kwnosuch0\n  virtual_router_id 99\n  priority 100\n  advert_int 0.1\n" +
		"  virtual_ipaddress {\n    203.0.113.99/24\n  }\n}\n"
	w := c.Watch(2*time.Millisecond, nil)
	if err := n1.WriteConfig([]byte(broken)); err != nil {
		t.Fatal(err)
	}
	if err := n1.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for metric(t, n1, "keepwatch_config_last_reload_successful") != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("keepwatch_config_last_reload_successful still 1:\n%s", n1.Log())
		}
		time.Sleep(10 * time.Millisecond)
	}
	if v := metric(t, n1, "keepwatch_vrrp_state", "vrrp_instance", "VI_9", "state", "fault"); v != 1 {
		t.Errorf(`keepwatch_vrrp_state{vrrp_instance="VI_9",state="fault"} = %v, want 1`, v)
	}
	ctx := t.Context()
	st, err := n1.Fetch(ctx, "/api/v1/status")
	if err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(`"iname": "VI_9"[^}]*"state": "fault"[^}]*"fault_reason": [^\n]*kwnosuch0`).Match(st) {
		t.Errorf("status does not show VI_9 in FAULT naming its interface:\n%s", st)
	}
	ready := func() (int, string) {
		resp, err := n1.HTTPClient().Get(n1.URL("/-/ready"))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b := new(strings.Builder)
		_, _ = io.Copy(b, resp.Body)
		return resp.StatusCode, b.String()
	}
	if code, body := ready(); code != http.StatusServiceUnavailable || !strings.Contains(body, "vrrp_instance VI_9") {
		t.Errorf("/-/ready: %d %q, want 503 naming VI_9", code, body)
	}
	if s := instance(t, n1, "VI_4"); s.State != "master" || !s.VIPHeld {
		t.Errorf("node 1 VI_4: %+v, want master with its VIP", s)
	}

	if err := n1.WriteConfig(base); err != nil {
		t.Fatal(err)
	}
	if err := n1.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	for metric(t, n1, "keepwatch_config_last_reload_successful") != 1 {
		if time.Now().After(deadline.Add(5 * time.Second)) {
			t.Fatal("keepwatch_config_last_reload_successful not 1 after the good reload")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if code, body := ready(); code != http.StatusOK {
		t.Errorf("/-/ready after the good reload: %d %q", code, body)
	}
	tl := w.Stop()
	for _, r := range tl.Records {
		if !slices.Equal(r.Holders[0], []int{1}) {
			t.Fatalf("at %s %s was held by %v, want node 1 only:\n%s", r.At, vip4, r.Holders[0], tl.Format())
		}
	}
}

// syncGroupTemplate: a sync group G (GA, GB) beside a lone VI_4 that holds
// the lab's IPv4 VIP.
const syncGroupTemplate = `global_defs {
  router_id lab{{.Index}}
}

vrrp_sync_group G {
  group {
    GA
    GB
  }
}
vrrp_instance GA {
  state BACKUP
  interface {{.Link}}
  virtual_router_id 61
  priority {{.Priority}}
  advert_int 0.1
  version 3
  virtual_ipaddress {
    198.51.100.61/24
  }
}

vrrp_instance GB {
  state BACKUP
  interface {{.Link}}
  virtual_router_id 62
  priority {{.Priority}}
  advert_int 0.1
  version 3
  virtual_ipaddress {
    198.51.100.62/24
  }
}

vrrp_instance VI_4 {
  state BACKUP
  interface {{.Link}}
  virtual_router_id 51
  priority {{.Priority}}
  advert_int 0.1
  version 3
  virtual_ipaddress {
    192.0.2.100/24
  }
}
`

// TestReloadSyncGroupChange: a change of a sync group's membership
// restarts that group only (its members resign with priority 0), while the
// lone instance beside it keeps its VIP throughout.
func TestReloadSyncGroupChange(t *testing.T) {
	t.Parallel()
	c := newCluster(t, "reloadsg", lab.Options{Nodes: 2, Params: lab.Params{Family: 4}, TemplateText: syncGroupTemplate})
	n1, n2 := c.Node(1), c.Node(2)
	waitHolders(t, c, []int{1}, 10*time.Second, vip4)
	ga := netip.MustParseAddr("198.51.100.61")
	waitAddr(t, n1, ga, true)
	base, err := os.ReadFile(n1.Config)
	if err != nil {
		t.Fatal(err)
	}
	zero := metric(t, n2, "keepwatch_vrrp_priority_zero_received_total", "vrrp_instance", "GA")
	w := c.Watch(2*time.Millisecond, nil)
	if err := n1.WriteConfig([]byte(strings.Replace(string(base), "    GA\n    GB\n", "    GA\n", 1))); err != nil {
		t.Fatal(err)
	}
	if err := n1.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for metric(t, n2, "keepwatch_vrrp_priority_zero_received_total", "vrrp_instance", "GA") <= zero {
		if time.Now().After(deadline) {
			t.Fatalf("node 2 heard no priority-0 advert from the restarted group:\n%s", n1.Log())
		}
		time.Sleep(10 * time.Millisecond)
	}
	waitAddr(t, n1, ga, true) // the group preempts back
	time.Sleep(300 * time.Millisecond)
	tl := w.Stop()
	for _, r := range tl.Records {
		if !slices.Equal(r.Holders[0], []int{1}) {
			t.Fatalf("at %s %s (the lone instance's) was held by %v, want node 1 only:\n%s", r.At, vip4, r.Holders[0], tl.Format())
		}
	}
	if got := metric(t, n1, "keepwatch_vrrp_transitions_total", "vrrp_instance", "VI_4", "to", "master"); got != 1 {
		t.Errorf("node 1 VI_4 became master %v times, want once", got)
	}
}
