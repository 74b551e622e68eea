package obs

import (
	"fmt"
	"syscall"
	"testing"
	"time"

	"github.com/keepwatch/keepwatch/engine/netif/nskit"
	"github.com/keepwatch/keepwatch/engine/netif/nskit/nskittest"
)

// starveConf is a VRRPv3 instance at advert_int 1 s: a backup at priority
// 100 waits 3 + 156/256 s (RFC 9568 §6.1) before taking over.
func starveConf(n *nskit.Node, prio int) string {
	return fmt.Sprintf(`vrrp_instance VI_1 {
  state BACKUP
  interface %s
  virtual_router_id 51
  priority %d
  advert_int 1
  version 3
  virtual_ipaddress {
    192.0.2.100/24
  }
}
`, n.Link, prio)
}

// lateness returns the count of the advert lateness histogram and how many
// of its observations were later than 0.25 s.
func lateness(t *testing.T, a *agent) (count, over uint64) {
	t.Helper()
	mf, ok := a.scrape()["keepwatch_vrrp_advert_lateness_seconds"]
	if !ok || len(mf.GetMetric()) != 1 {
		t.Fatalf("node %d: no single keepwatch_vrrp_advert_lateness_seconds series", a.node.Index)
	}
	h := mf.GetMetric()[0].GetHistogram()
	var under uint64
	for _, b := range h.GetBucket() {
		if b.GetUpperBound() == 0.25 {
			under = b.GetCumulativeCount()
		}
	}
	return h.GetSampleCount(), h.GetSampleCount() - under
}

// TestAgentStarved stops the master agent (SIGSTOP) for 1.5 s, less than
// its backup's Master_Down_Interval (3.6 s): the backup does not take
// over, and the master's own advert lateness histogram records an advert
// sent at least 0.5 s late, the signal KeepwatchAgentStarved alerts on
// (its promtool cases are in alerts/tests/vrrp.yml).
func TestAgentStarved(t *testing.T) {
	lab := nskittest.New(t, "starve", 2)
	dir := t.TempDir()
	a := startAgent(t, lab.Node(1), dir, starveConf(lab.Node(1), 150), agentOpts{})
	a.waitReady(15 * time.Second)
	a.waitState("VI_1", "master", 10*time.Second)
	b := startAgent(t, lab.Node(2), dir, starveConf(lab.Node(2), 100), agentOpts{})
	b.waitReady(15 * time.Second)
	b.waitState("VI_1", "backup", 5*time.Second)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("master log:\n%s\nbackup log:\n%s", a.log.String(), b.log.String())
		}
	})
	time.Sleep(2500 * time.Millisecond) // a few adverts on schedule
	count0, over0 := lateness(t, a)
	if count0 < 2 || over0 != 0 {
		t.Fatalf("before the stop: %d adverts, %d of them over 0.25 s late; want some, none late", count0, over0)
	}
	moves0 := b.scrape().must(t, "keepwatch_vrrp_master_transitions_total", "vrrp_instance", "VI_1")

	if err := a.proc.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	time.Sleep(1500 * time.Millisecond)
	if err := a.proc.Signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	time.Sleep(1500 * time.Millisecond)

	count1, over1 := lateness(t, a)
	if over1 < 1 {
		t.Errorf("after a 1.5 s stop: %d of %d adverts over 0.25 s late, want at least 1", over1, count1)
	}
	f := a.scrape()
	var sum float64
	for _, m := range f["keepwatch_vrrp_advert_lateness_seconds"].GetMetric() {
		sum = m.GetHistogram().GetSampleSum()
	}
	t.Logf("advert lateness after the stop: %d adverts, %d over 0.25 s, sum %.3fs", count1, over1, sum)
	if sum < 0.5 {
		t.Errorf("lateness sum %.3f s, want at least 0.5 s (the stop outlasted the next advert's schedule by that)", sum)
	}
	if got := b.scrape().must(t, "keepwatch_vrrp_master_transitions_total", "vrrp_instance", "VI_1"); got != moves0 {
		t.Errorf("the backup took over (%v → %v master transitions) during a stop shorter than its master down interval", moves0, got)
	}
	b.waitState("VI_1", "backup", time.Second)
}
