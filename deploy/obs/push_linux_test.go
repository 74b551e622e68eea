package obs

import (
	"encoding/json"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"testing"
	"time"

	"github.com/keepwatch/keepwatch/engine/netif/nskit"
	"github.com/keepwatch/keepwatch/engine/netif/nskit/nskittest"
)

// pushConf is a VRRPv3 instance at 0.1 s on the lab's link.
func pushConf(n *nskit.Node, prio int) string {
	return fmt.Sprintf(`vrrp_instance VI_1 {
  state BACKUP
  interface %s
  virtual_router_id 51
  priority %d
  advert_int 0.1
  version 3
  virtual_ipaddress {
    192.0.2.100/24
  }
}
`, n.Link, prio)
}

// firstPage returns when the first firing KeepwatchVIPMoved for instance
// reached the page receiver.
func firstPage(msgs []received, instance string) (time.Time, bool) {
	for _, r := range msgs {
		for _, a := range r.msg.Alerts {
			if r.path == "/page" && a.Status == "firing" && a.Labels["alertname"] == "KeepwatchVIPMoved" && a.Labels["instance"] == instance {
				return r.at, true
			}
		}
	}
	return time.Time{}, false
}

// TestPushPaging: agents started with --alertmanager.url push
// KeepwatchVIPMoved to a real Alertmanager (alerts/alertmanager.yml) at
// the transition, beside a real Prometheus running the rules. A link cut
// on the master pages within a second; the rule-made alert, when it fires
// seconds later, is the same alert to Alertmanager (one, not two); with
// Alertmanager stopped, a takeover happens on time and the agent counts
// the alert it could not deliver.
func TestPushPaging(t *testing.T) {
	nskittest.Require(t, "prometheus", "prometheus-alertmanager")
	lab := nskittest.New(t, "push", 3, "prometheus")
	dir := t.TempDir()
	mon := lab.Node(3)
	amAddr := net.JoinHostPort(mon.IPv4.Addr().String(), "9093")
	var agents []*agent
	for i, prio := range []int{150, 100} {
		n := lab.Node(i + 1)
		a := startAgent(t, n, dir, pushConf(n, prio), agentOpts{extra: []string{
			"--alertmanager.url", "http://" + amAddr,
			"--alertmanager.label", "instance=" + hostPort(n),
		}})
		agents = append(agents, a)
	}
	t.Cleanup(func() {
		if t.Failed() {
			for _, a := range agents {
				t.Logf("node %d log:\n%s", a.node.Index, a.log.String())
			}
		}
	})
	for _, a := range agents {
		a.waitReady(15 * time.Second)
	}
	agents[0].waitState("VI_1", "master", 10*time.Second)
	agents[1].waitState("VI_1", "backup", 5*time.Second)

	// Alertmanager is not up yet: node 1's startup takeover is pushed,
	// retried, then dropped and counted, without delaying anything. (Had it
	// been delivered, node 2's move below would join its notification
	// group, sent at the next group_interval: one page per router a minute.)
	waitDropped(t, agents[0], 1, 20*time.Second)

	prom, hook, amProc := startStack(t, mon, dir, amAddr, []string{agents[0].addr, agents[1].addr})
	am := &agent{t: t, node: mon, scheme: "http", addr: amAddr, client: nodeClient(mon, nil)}
	new2 := hostPort(lab.Node(2))
	waitQuery(t, prom, `count_over_time(keepwatch_vrrp_master_transitions_total{instance="`+new2+`"}[1m]) >= 3`, 30*time.Second)
	// Startup transitions were pushed too (node 1 became master): start
	// from a clean slate of notifications.
	time.Sleep(time.Second)
	before := len(hook.all())

	// Cut the master's link: node 2 takes over and pushes the page.
	cut := time.Now()
	if err := lab.Node(1).Cut(); err != nil {
		t.Fatal(err)
	}
	agents[1].waitState("VI_1", "master", 5*time.Second)
	deadline := time.Now().Add(10 * time.Second)
	var paged time.Time
	for {
		if at, ok := firstPage(hook.all()[before:], new2); ok {
			paged = at
			break
		}
		if time.Now().After(deadline) {
			_, amNow, _ := am.get("/api/v2/alerts")
			t.Fatalf("no pushed KeepwatchVIPMoved page for %s within 10 s of the cut: %+v\nAlertmanager holds: %s", new2, hook.all()[before:], amNow)
		}
		time.Sleep(5 * time.Millisecond)
	}
	latency := paged.Sub(cut)
	t.Logf("KeepwatchVIPMoved paged %v after the link cut (pushed by the agent)", latency.Round(time.Millisecond))
	if latency > time.Second {
		t.Errorf("page %v after the cut, want within 1 s", latency)
	}

	// The rule fires too, with the same labels: Alertmanager holds one
	// alert for node 2's move, not two.
	waitQuery(t, prom, `ALERTS{alertname="KeepwatchVIPMoved",alertstate="firing",instance="`+new2+`"}`, 30*time.Second)
	time.Sleep(3 * time.Second) // Prometheus sends to Alertmanager on its evaluation
	code, body, err := am.get("/api/v2/alerts?filter=" + url.QueryEscape(`alertname="KeepwatchVIPMoved"`) + "&filter=" + url.QueryEscape(`instance="`+new2+`"`))
	if err != nil || code != 200 {
		t.Fatalf("alertmanager alerts: %d %v", code, err)
	}
	var amAlerts []struct {
		Labels map[string]string `json:"labels"`
	}
	if err := json.Unmarshal([]byte(body), &amAlerts); err != nil {
		t.Fatal(err)
	}
	if len(amAlerts) != 1 {
		t.Errorf("Alertmanager holds %d KeepwatchVIPMoved alerts for %s, want 1 (pushed and rule-made deduplicated): %s", len(amAlerts), new2, body)
	}
	pages := 0
	for _, r := range hook.all()[before:] {
		if _, ok := firstPage([]received{r}, new2); ok {
			pages++
		}
	}
	if pages != 1 {
		t.Errorf("%d page notifications for node 2's move, want 1", pages)
	}

	// Alertmanager down: restoring node 1's link, it preempts on time, and
	// counts the alert it cannot deliver (after its retries).
	if err := amProc.Stop(); err != nil {
		t.Logf("stopping alertmanager: %v", err)
	}
	restored := time.Now()
	if err := lab.Node(1).Restore(); err != nil {
		t.Fatal(err)
	}
	agents[0].waitState("VI_1", "master", 3*time.Second)
	t.Logf("node 1 master again %v after its link came back, with Alertmanager down", time.Since(restored).Round(time.Millisecond))
	waitDropped(t, agents[0], 2, 20*time.Second)
	if held := agents[0].scrape().must(t, "keepwatch_vrrp_vip_present", "address", netip.MustParseAddr("192.0.2.100").String()); held != 1 {
		t.Errorf("node 1 VIP present = %v, want 1", held)
	}
}

// waitDropped waits until the agent has counted at least n alerts it could
// not push (keepwatch_sink_events_dropped_total{sink="alertmanager"}).
func waitDropped(t *testing.T, a *agent, n float64, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		v, ok := a.scrape().value("keepwatch_sink_events_dropped_total", "sink", "alertmanager")
		if ok && v >= n {
			t.Logf("node %d dropped %v alert(s) it could not push", a.node.Index, v)
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("node %d: keepwatch_sink_events_dropped_total{sink=\"alertmanager\"} = %v (present %v), want >= %v", a.node.Index, v, ok, n)
		}
		time.Sleep(250 * time.Millisecond)
	}
}
