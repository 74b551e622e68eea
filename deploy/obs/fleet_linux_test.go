package obs

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vishvananda/netlink"

	"github.com/keepwatch/keepwatch/deploy/lab"
	"github.com/keepwatch/keepwatch/engine/netif/nskit"
	"github.com/keepwatch/keepwatch/engine/netif/nskit/nskittest"
)

// segmentLink joins nodes a and b by a veth pair named eth0 on both sides,
// with a.Index and b.Index as host parts of prefix: a segment of its own,
// apart from the lab's bridge (which stays the management network
// Prometheus scrapes over).
func segmentLink(t *testing.T, a, b *nskit.Node, prefix netip.Prefix) {
	t.Helper()
	veth := &netlink.Veth{
		LinkAttrs:     netlink.LinkAttrs{Name: "eth0"},
		PeerName:      "eth0",
		PeerNamespace: netlink.NsFd(int(b.NsHandle())),
	}
	if err := a.Handle().LinkAdd(veth); err != nil {
		t.Fatalf("veth eth0 between nodes %d and %d: %v", a.Index, b.Index, err)
	}
	for i, n := range []*nskit.Node{a, b} {
		link, err := n.Handle().LinkByName("eth0")
		if err != nil {
			t.Fatal(err)
		}
		host := prefix.Addr().As4()
		host[3] = byte(i + 1)
		addr := &netlink.Addr{IPNet: &net.IPNet{IP: net.IP(host[:]), Mask: net.CIDRMask(prefix.Bits(), 32)}}
		if err := n.Handle().AddrAdd(link, addr); err != nil {
			t.Fatal(err)
		}
		if err := n.Handle().LinkSetUp(link); err != nil {
			t.Fatal(err)
		}
	}
}

// eth0conf is keepalived's sample default, VRID 51 on eth0, at 0.2 s.
func eth0conf(n *nskit.Node, prio int, vip netip.Addr) string {
	return fmt.Sprintf(`global_defs {
  router_id fleet%d
}

vrrp_instance VI_1 {
  state BACKUP
  interface eth0
  virtual_router_id 51
  priority %d
  advert_int 0.2
  version 3
  virtual_ipaddress {
    %s/24
  }
}
`, n.Index, prio, vip)
}

// alertSeries is one series of Prometheus's ALERTS.
type alertSeries map[string]string

// alertsNow returns the series of the instant query q (ALERTS{...}).
func alertsNow(t *testing.T, prom *agent, q string) []alertSeries {
	t.Helper()
	code, body, err := prom.get("/api/v1/query?query=" + url.QueryEscape(q))
	if err != nil || code != http.StatusOK {
		t.Fatalf("query %s: %d %v %s", q, code, err, body)
	}
	var r struct {
		Data struct {
			Result []struct {
				Metric alertSeries `json:"metric"`
			} `json:"result"`
		} `json:"data"`
	}
	if err := json.Unmarshal([]byte(body), &r); err != nil {
		t.Fatalf("query %s: %v", q, err)
	}
	var out []alertSeries
	for _, s := range r.Data.Result {
		out = append(out, s.Metric)
	}
	return out
}

// TestFleetIdentity: two independent two-node clusters on two segments,
// both VRID 51 on eth0 (keepalived's sample default), scraped by one real
// Prometheus running alerts/keepwatch.rules.yml with a real Alertmanager
// on alerts/alertmanager.yml. Healthy, neither multiple-master nor
// no-master is even pending (grouped by VRID and interface, as the rules
// once did, the two masters would be a split brain). Then adverts dropped
// with nftables on one cluster's backup make a real split brain there:
// KeepwatchMultipleMasters fires for that cluster's segment only, and
// pages grouped by it.
func TestFleetIdentity(t *testing.T) {
	nskittest.Require(t, "prometheus", "prometheus-alertmanager", "nft")
	lab := nskittest.New(t, "fleet", 5, "prometheus")
	dir := t.TempDir()
	segA, segB := netip.MustParsePrefix("198.51.100.0/24"), netip.MustParsePrefix("203.0.113.0/24")
	vipA, vipB := netip.MustParseAddr("198.51.100.100"), netip.MustParseAddr("203.0.113.100")
	segmentLink(t, lab.Node(1), lab.Node(2), segA)
	segmentLink(t, lab.Node(3), lab.Node(4), segB)

	var agents []*agent
	for i, c := range []struct {
		prio int
		vip  netip.Addr
	}{{150, vipA}, {100, vipA}, {150, vipB}, {100, vipB}} {
		n := lab.Node(i + 1)
		a := startAgent(t, n, dir, eth0conf(n, c.prio, c.vip), agentOpts{})
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
	agents[2].waitState("VI_1", "master", 10*time.Second)
	agents[1].waitState("VI_1", "backup", 5*time.Second)
	agents[3].waitState("VI_1", "backup", 5*time.Second)

	// Each agent names its router's segment, from its own eth0 address.
	for i, a := range agents {
		seg := segA
		if i >= 2 {
			seg = segB
		}
		f := a.scrape()
		if v := f.must(t, "keepwatch_vrrp_instance_info", "vrrp_instance", "VI_1", "vrid", "51", "interface", "eth0", "segment", seg.String()); v != 1 {
			t.Errorf("node %d: instance_info = %v, want 1", a.node.Index, v)
		}
	}

	mon := lab.Node(5)
	var targets []string
	for _, a := range agents {
		targets = append(targets, a.addr)
	}
	prom, hook, _ := startStack(t, mon, dir, "127.0.0.1:9093", targets)

	// Healthy: every target up and scraped a few times, one master per
	// segment, and nothing about multiple or no masters, not even pending.
	waitQuery(t, prom, `count(up{job="keepwatch"} == 1) == 4`, 30*time.Second)
	waitQuery(t, prom, `count(count_over_time(keepwatch_vrrp_instance_info[1m]) >= 5) == 4`, 30*time.Second)
	for _, seg := range []netip.Prefix{segA, segB} {
		waitQuery(t, prom, `segment:keepwatch_vrrp_masters:sum{vrid="51",family="ipv4",segment="`+seg.String()+`"} == 1`, 10*time.Second)
	}
	// Watched from here on: before every target's first scrape, a segment
	// whose master was not yet scraped looks masterless to Prometheus.
	const watch = 8 * time.Second
	time.Sleep(watch)
	if got := alertsNow(t, prom, fmt.Sprintf(`count_over_time(ALERTS{alertname=~"KeepwatchMultipleMasters|KeepwatchNoMaster|KeepwatchVIPSplitBrain"}[%ds])`, int(watch.Seconds()))); len(got) != 0 {
		t.Fatalf("healthy clusters raised %v", got)
	}

	// A real split brain in cluster B: its backup stops hearing adverts
	// on eth0 and takes over while the master keeps the VIP.
	script := `table inet kwfleet {
	chain in { type filter hook input priority -300; policy accept; iifname "eth0" meta l4proto 112 drop; }
}
`
	cmd := lab.Node(4).Command("nft", "-f", "-")
	cmd.Stdin = strings.NewReader(script)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("nft in node 4: %v: %s", err, out)
	}
	split := time.Now()
	agents[3].waitState("VI_1", "master", 5*time.Second)
	agents[2].waitState("VI_1", "master", time.Second)

	// for: 30s, then the alert is firing, for segment B only.
	deadline := time.Now().Add(60 * time.Second)
	var firing []alertSeries
	for {
		firing = alertsNow(t, prom, `ALERTS{alertname="KeepwatchMultipleMasters",alertstate="firing"}`)
		if len(firing) > 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(500 * time.Millisecond)
	}
	if len(firing) != 1 || firing[0]["segment"] != segB.String() || firing[0]["vrid"] != "51" || firing[0]["family"] != "ipv4" {
		t.Fatalf("KeepwatchMultipleMasters firing %v, want one series for segment %s", firing, segB)
	}
	t.Logf("KeepwatchMultipleMasters firing %v after the adverts were dropped", time.Since(split).Round(time.Second))
	// (A warning such as KeepwatchAdvertsLate may come and go on a loaded
	// machine; the fleet-level alerts may not.)
	if got := alertsNow(t, prom, `ALERTS{segment="`+segA.String()+`",alertname=~"KeepwatchMultipleMasters|KeepwatchNoMaster|KeepwatchVIPSplitBrain"}`); len(got) != 0 {
		t.Errorf("cluster A, healthy, has alerts: %v", got)
	}
	split4 := alertsNow(t, prom, `ALERTS{alertname="KeepwatchVIPSplitBrain"}`)
	for _, s := range split4 {
		if s["segment"] != segB.String() || s["address"] != vipB.String() {
			t.Errorf("VIP split brain %v, want only %s in %s", s, vipB, segB)
		}
	}

	// The page: grouped by alert name and the virtual router, naming it.
	pageDeadline := time.NewTimer(30 * time.Second)
	defer pageDeadline.Stop()
	for {
		if r, ok := findAlert(hook.all(), "KeepwatchMultipleMasters"); ok {
			want := map[string]string{"alertname": "KeepwatchMultipleMasters", "segment": segB.String(), "vrid": "51", "family": "ipv4"}
			if fmt.Sprint(r.msg.GroupLabels) != fmt.Sprint(want) || r.msg.Receiver != "page" {
				t.Errorf("page to %s grouped by %v, want page grouped by %v", r.msg.Receiver, r.msg.GroupLabels, want)
			}
			for _, a := range r.msg.Alerts {
				if d := a.Annotations["description"]; !strings.Contains(d, "segment "+segB.String()) {
					t.Errorf("description %q does not name the segment", d)
				}
			}
			break
		}
		select {
		case <-hook.got:
		case <-pageDeadline.C:
			t.Fatalf("no KeepwatchMultipleMasters page; notifications: %+v", hook.all())
		}
	}
	for _, r := range hook.all() {
		if r.msg.GroupLabels["segment"] == segA.String() {
			t.Errorf("notified for healthy segment %s: %+v", segA, r.msg)
		}
	}
}

// findAlert returns the first notification carrying a firing alert name.
func findAlert(msgs []received, name string) (received, bool) {
	for _, r := range msgs {
		for _, a := range r.msg.Alerts {
			if a.Labels["alertname"] == name && a.Status == "firing" {
				return r, true
			}
		}
	}
	return received{}, false
}

// startStack runs a real Alertmanager (alerts/alertmanager.yml, webhooks
// pointed at a receiver in the test) listening on amAddr and a real
// Prometheus (1 s scrapes and evaluations of alerts/keepwatch.rules.yml
// over targets) in node mon; it returns the Alertmanager process too.
func startStack(t *testing.T, mon *nskit.Node, dir, amAddr string, targets []string) (*agent, *webhook, *nskit.Proc) {
	t.Helper()
	var ln net.Listener
	if err := mon.Do(func() error {
		var err error
		ln, err = net.Listen("tcp", "127.0.0.1:0")
		return err
	}); err != nil {
		t.Fatal(err)
	}
	hook := &webhook{got: make(chan struct{}, 1)}
	srv := &http.Server{Handler: hook, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })

	amConf, err := os.ReadFile(alertmanagerPath)
	if err != nil {
		t.Fatal(err)
	}
	const shippedURL = "http://127.0.0.1:9095/"
	if !strings.Contains(string(amConf), shippedURL) {
		t.Fatalf("%s: no webhook URL %s to replace", alertmanagerPath, shippedURL)
	}
	amConf = []byte(strings.ReplaceAll(string(amConf), shippedURL, "http://"+ln.Addr().String()+"/"))
	amPath := filepath.Join(dir, "alertmanager.yml")
	if err := os.WriteFile(amPath, amConf, 0o600); err != nil {
		t.Fatal(err)
	}
	rules, err := filepath.Abs(rulesPath)
	if err != nil {
		t.Fatal(err)
	}
	const promAddr = "127.0.0.1:9090"
	promConf := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(promConf, lab.PrometheusConfig(rules, amAddr, targets), 0o600); err != nil {
		t.Fatal(err)
	}
	amProc := startDaemon(t, mon, "alertmanager", "prometheus-alertmanager", "--config.file="+amPath,
		"--storage.path="+filepath.Join(dir, "am"), "--web.listen-address="+amAddr,
		"--cluster.listen-address=")
	startDaemon(t, mon, "prometheus", "prometheus", "--config.file="+promConf,
		"--storage.tsdb.path="+filepath.Join(dir, "tsdb"), "--web.listen-address="+promAddr)
	prom := &agent{t: t, node: mon, scheme: "http", addr: promAddr, client: nodeClient(mon, nil)}
	am := &agent{t: t, node: mon, scheme: "http", addr: amAddr, client: nodeClient(mon, nil)}
	waitHTTP(t, am, "/-/ready", 30*time.Second)
	waitHTTP(t, prom, "/-/ready", 30*time.Second)
	return prom, hook, amProc
}
