package obs

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/keepwatch/keepwatch/deploy/lab"
	"github.com/keepwatch/keepwatch/engine/netif/nskit"
	"github.com/keepwatch/keepwatch/engine/netif/nskit/nskittest"
)

// The mixin under test (alerts/ at the module's root).
var (
	rulesPath        = filepath.Join("..", "..", "alerts", "keepwatch.rules.yml")
	alertmanagerPath = filepath.Join("..", "..", "alerts", "alertmanager.yml")
)

// pageBudget bounds the time from stopping the master to the page reaching
// the webhook (DESIGN.md §8 tier 4). Expected: a scrape and an evaluation
// (1 s each) and the page route's group_wait (5 s).
const pageBudget = 60 * time.Second

// webhookMsg is the part of Alertmanager's webhook payload (version 4) the
// test reads.
type webhookMsg struct {
	Receiver    string            `json:"receiver"`
	Status      string            `json:"status"`
	GroupLabels map[string]string `json:"groupLabels"`
	Alerts      []struct {
		Status      string            `json:"status"`
		Labels      map[string]string `json:"labels"`
		Annotations map[string]string `json:"annotations"`
	} `json:"alerts"`
}

// webhook is the receiver both of alertmanager.yml's webhooks point at:
// an HTTP server in the monitoring node's namespace.
type webhook struct {
	mu   sync.Mutex
	msgs []received
	got  chan struct{} // signalled (non-blocking) on each message
}

type received struct {
	path string
	at   time.Time
	msg  webhookMsg
}

func (w *webhook) ServeHTTP(rw http.ResponseWriter, r *http.Request) {
	b, err := io.ReadAll(r.Body)
	var m webhookMsg
	if err == nil {
		err = json.Unmarshal(b, &m)
	}
	if err != nil {
		http.Error(rw, err.Error(), http.StatusBadRequest)
		return
	}
	w.mu.Lock()
	w.msgs = append(w.msgs, received{path: r.URL.Path, at: time.Now(), msg: m})
	w.mu.Unlock()
	select {
	case w.got <- struct{}{}:
	default:
	}
}

func (w *webhook) all() []received {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]received(nil), w.msgs...)
}

// TestPaging is the paging path end to end: two agents in a lab.Cluster, a
// real Prometheus scraping them every second and evaluating
// alerts/keepwatch.rules.yml every second, and a real Alertmanager running
// alerts/alertmanager.yml (its webhooks pointed at a server in the test),
// all three in the cluster's third node. Stopping the master moves the VIP
// and KeepwatchVIPMoved must page, through the "page" receiver, within
// pageBudget, with the new master's identity labels.
func TestPaging(t *testing.T) {
	nskittest.Require(t, "prometheus", "prometheus-alertmanager")
	ctx := context.Background()
	c, err := lab.New(ctx, lab.Options{
		Name:    "page",
		Nodes:   3,
		Binary:  agentBin,
		Params:  lab.Params{Family: 4},
		Stopped: []int{3}, // the monitoring node: no agent
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			for _, n := range c.Nodes[:2] {
				t.Logf("node %d log:\n%s", n.Index, n.Log())
			}
		}
		if err := c.Close(); err != nil {
			t.Errorf("closing the lab: %v", err)
		}
	})
	vip := lab.VIP4.Addr()
	if err := c.WaitHolders(ctx, vip, []int{1}, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	mon := c.Node(3)
	dir := t.TempDir()

	// The webhook receiver, listening inside the monitoring namespace.
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

	// alertmanager.yml as shipped, but for its webhook URLs.
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
	const amAddr, promAddr = "127.0.0.1:9093", "127.0.0.1:9090"
	// The lab names each node's interface differently: the cross-host
	// rules need no relabelling, they group by the segment the agents
	// export (keepwatch_vrrp_instance_info).
	promConf := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(promConf, lab.PrometheusConfig(rules, amAddr, []string{hostPort(c.Node(1).Node), hostPort(c.Node(2).Node)}), 0o600); err != nil {
		t.Fatal(err)
	}

	startDaemon(t, mon.Node, "alertmanager", "prometheus-alertmanager", "--config.file="+amPath,
		"--storage.path="+filepath.Join(dir, "am"), "--web.listen-address="+amAddr,
		"--cluster.listen-address=") // no gossip: one Alertmanager
	startDaemon(t, mon.Node, "prometheus", "prometheus", "--config.file="+promConf,
		"--storage.tsdb.path="+filepath.Join(dir, "tsdb"), "--web.listen-address="+promAddr)
	prom := &agent{t: t, node: mon.Node, scheme: "http", addr: promAddr, client: nodeClient(mon.Node, nil)}
	am := &agent{t: t, node: mon.Node, scheme: "http", addr: amAddr, client: nodeClient(mon.Node, nil)}
	waitHTTP(t, am, "/-/ready", 30*time.Second)
	waitHTTP(t, prom, "/-/ready", 30*time.Second)

	// Before the failover: Prometheus has the backup's counter at 0 from
	// a few scrapes (increase needs a sample from before the move), both
	// targets up, the rules loaded, and nothing has paged.
	new2 := hostPort(c.Node(2).Node)
	waitQuery(t, prom, `count_over_time(keepwatch_vrrp_master_transitions_total{instance="`+new2+`"}[1m]) >= 3`, 30*time.Second)
	waitQuery(t, prom, `count(up{job="keepwatch"} == 1) == 2`, 10*time.Second)
	waitQuery(t, prom, `segment:keepwatch_vrrp_masters:sum{vrid="51",family="ipv4",segment="192.0.2.0/24"} == 1`, 10*time.Second)
	// No critical alert, pending or firing, in a healthy cluster: a rule
	// that paged here would page every night.
	if v := query(t, prom, `ALERTS{severity="critical"}`); v != 0 {
		t.Fatalf("%d critical alerts pending or firing before the failover", v)
	}
	if msgs := hook.all(); len(msgs) != 0 {
		t.Fatalf("notified before the failover: %+v", msgs)
	}

	// Stop the master: it resigns (priority 0), node 2 takes the VIP.
	stopped := time.Now()
	if err := c.Node(1).Stop(); err != nil {
		t.Fatal(err)
	}
	if err := c.WaitHolders(ctx, vip, []int{2}, 5*time.Second); err != nil {
		t.Fatal(err)
	}

	// The page.
	deadline := time.NewTimer(pageBudget)
	defer deadline.Stop()
	for {
		if r, ok := findPage(hook.all()); ok {
			t.Logf("KeepwatchVIPMoved paged %v after the master stopped", r.at.Sub(stopped).Round(time.Millisecond))
			checkPage(t, r, c.Node(2), new2)
			break
		}
		select {
		case <-hook.got:
		case <-deadline.C:
			t.Fatalf("no KeepwatchVIPMoved page within %v; notifications: %+v", pageBudget, hook.all())
		}
	}
	// A clean failover pages once, for the new master: the stopped
	// master's counter did not move, and no other critical rule (no
	// master, split brain) fired.
	for _, r := range hook.all() {
		for _, a := range r.msg.Alerts {
			if a.Labels["severity"] == "critical" && (a.Labels["alertname"] != "KeepwatchVIPMoved" || a.Labels["instance"] != new2) {
				t.Errorf("paged %s for %s, want only KeepwatchVIPMoved for %s", a.Labels["alertname"], a.Labels["instance"], new2)
			}
		}
	}
}

// findPage returns the first notification to the page receiver carrying a
// firing KeepwatchVIPMoved.
func findPage(msgs []received) (received, bool) {
	for _, r := range msgs {
		for _, a := range r.msg.Alerts {
			if a.Labels["alertname"] == "KeepwatchVIPMoved" && a.Status == "firing" {
				return r, true
			}
		}
	}
	return received{}, false
}

// checkPage asserts the route (receiver page, grouped by alert name and
// virtual router) and the
// alert's labels and annotations.
func checkPage(t *testing.T, r received, n *lab.Node, inst string) {
	t.Helper()
	if r.path != "/page" || r.msg.Receiver != "page" {
		t.Errorf("VIPMoved went to %s (receiver %q), want /page (page)", r.path, r.msg.Receiver)
	}
	wantGroup := map[string]string{"alertname": "KeepwatchVIPMoved", "segment": "192.0.2.0/24", "vrid": "51", "family": "ipv4"}
	if fmt.Sprint(r.msg.GroupLabels) != fmt.Sprint(wantGroup) {
		t.Errorf("group labels %v, want %v", r.msg.GroupLabels, wantGroup)
	}
	for _, a := range r.msg.Alerts {
		if a.Labels["alertname"] != "KeepwatchVIPMoved" {
			continue
		}
		want := map[string]string{
			"alertname": "KeepwatchVIPMoved", "severity": "critical", "job": "keepwatch", "instance": inst,
			"vrrp_instance": "VI_4", "vrid": "51", "family": "ipv4", "interface": n.Link, "segment": "192.0.2.0/24",
		}
		if fmt.Sprint(a.Labels) != fmt.Sprint(want) {
			t.Errorf("labels %v, want %v", a.Labels, want)
		}
		wantDesc := "VI_4 (VRID 51 ipv4 on " + n.Link + ") became MASTER on " + inst + " 1 time(s) in the last 5m (segment 192.0.2.0/24)."
		if a.Annotations["description"] != wantDesc {
			t.Errorf("description %q, want %q", a.Annotations["description"], wantDesc)
		}
		if !strings.HasSuffix(a.Annotations["runbook_url"], "/alerts/runbook.md#keepwatchvipmoved") {
			t.Errorf("runbook_url %q", a.Annotations["runbook_url"])
		}
	}
}

// hostPort is where a lab node's agent listens, as Prometheus reaches it
// over the bridge (and so the instance label).
func hostPort(n *nskit.Node) string {
	return net.JoinHostPort(n.IPv4.Addr().String(), fmt.Sprint(lab.HTTPPort))
}

// startDaemon runs a tool in the node's namespace until the test ends
// (stopped by pid in Cleanup, and by the kernel if the test binary dies).
func startDaemon(t *testing.T, n *nskit.Node, name, bin string, args ...string) *nskit.Proc {
	t.Helper()
	cmd := n.Command(bin, args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
	p, _ := nskittest.Start(t, n, name, cmd)
	return p
}

// waitHTTP waits for path to answer 200.
func waitHTTP(t *testing.T, a *agent, path string, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		code, _, err := a.get(path)
		if err == nil && code == http.StatusOK {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s%s: %d %v after %v", a.addr, path, code, err, timeout)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// query returns the number of series an instant query returns (-1 if the
// query failed).
func query(t *testing.T, prom *agent, q string) int {
	t.Helper()
	code, body, err := prom.get("/api/v1/query?query=" + url.QueryEscape(q))
	if err != nil || code != http.StatusOK {
		t.Logf("query %s: %d %v %s", q, code, err, body)
		return -1
	}
	var r struct {
		Data struct {
			Result []json.RawMessage `json:"result"`
		} `json:"data"`
	}
	if err := json.Unmarshal([]byte(body), &r); err != nil {
		return -1
	}
	return len(r.Data.Result)
}

// waitQuery waits until q returns at least one series.
func waitQuery(t *testing.T, prom *agent, q string, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for query(t, prom, q) <= 0 {
		if time.Now().After(deadline) {
			t.Fatalf("prometheus: %s returned nothing after %v", q, timeout)
		}
		time.Sleep(250 * time.Millisecond)
	}
}
