package dashboards

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/keepwatch/keepwatch/engine/netif/nskit"
	"github.com/keepwatch/keepwatch/engine/netif/nskit/nskittest"
)

// labConf is a node's keepalived.conf: an IPv4 and an IPv6 VRRPv3
// instance on the same VRID, the IPv4 one tracking a script (weight -60), a
// script that faults it (weight 0), its interface (+10) and a file, with a
// notify script; on node 2 only, a second VRID (node 1 drops its adverts as
// vrid_unknown); and a virtual server whose real servers are on node 2, one
// listening (8080) and one not (8081).
func labConf(n *nskit.Node, dir string, prio int) string {
	only2 := ""
	if n.Index == 2 {
		only2 = fmt.Sprintf(`
vrrp_instance VI_2 {
  interface %s
  virtual_router_id 52
  priority 100
  advert_int 0.1
  version 3
  virtual_ipaddress {
    192.0.2.102/24
  }
}
`, n.Link)
	}
	return fmt.Sprintf(`global_defs {
  router_id dash%[1]d
  script_user root
  enable_script_security
}

vrrp_script chk {
  script "%[2]s/chk%[1]d.sh"
  interval 1
  weight -60
  fall 1
  rise 1
}

vrrp_script flt {
  script "%[2]s/flt%[1]d.sh"
  interval 1
  fall 1
  rise 1
}

track_file tf {
  file "%[2]s/tf%[1]d"
  weight 1
}

vrrp_instance VI_1 {
  state BACKUP
  interface %[3]s
  virtual_router_id 51
  priority %[4]d
  advert_int 0.1
  version 3
  virtual_ipaddress {
    192.0.2.100/24
  }
  track_script {
    chk
    flt
  }
  track_interface {
    %[3]s weight 10
  }
  track_file {
    tf
  }
  notify "%[2]s/notify.sh"
}

vrrp_instance VI_6 {
  state BACKUP
  interface %[3]s
  virtual_router_id 51
  priority %[4]d
  advert_int 0.1
  version 3
  virtual_ipaddress {
    2001:db8::100/64
  }
}
%[5]s
virtual_server 192.0.2.200 80 {
  delay_loop 1
  lb_algo rr
  lb_kind NAT
  protocol TCP
  quorum 1
  real_server 192.0.2.2 8080 {
    weight 1
    TCP_CHECK {
      connect_timeout 1
    }
  }
  real_server 192.0.2.2 8081 {
    weight 2
    TCP_CHECK {
      connect_timeout 1
    }
  }
}
`, n.Index, dir, n.Link, prio, only2)
}

// promAPI queries a Prometheus server.
type promAPI struct {
	t      *testing.T
	client *http.Client
	base   string
}

type promResult struct {
	Status    string `json:"status"`
	ErrorType string `json:"errorType"`
	Error     string `json:"error"`
	Data      struct {
		Result []struct {
			Metric map[string]string `json:"metric"`
			Values [][2]any          `json:"values"`
			Value  [2]any            `json:"value"`
		} `json:"result"`
	} `json:"data"`
}

// get runs an API call and decodes the answer; a PromQL error is returned
// in the result, not as err.
func (p promAPI) get(path string, q url.Values) (promResult, error) {
	var r promResult
	resp, err := p.client.Get(p.base + path + "?" + q.Encode())
	if err != nil {
		return r, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return r, err
	}
	if err := json.Unmarshal(b, &r); err != nil {
		return r, fmt.Errorf("%s: %d %s", path, resp.StatusCode, b)
	}
	return r, nil
}

// series returns how many series expr has with at least one sample
// between from and to.
func (p promAPI) series(expr string, from, to time.Time) (int, error) {
	r, err := p.get("/api/v1/query_range", url.Values{
		"query": {expr},
		"start": {strconv.FormatInt(from.Unix(), 10)},
		"end":   {strconv.FormatInt(to.Unix()+1, 10)},
		"step":  {"1"},
	})
	if err != nil {
		return 0, err
	}
	if r.Status != "success" {
		return 0, fmt.Errorf("%s: %s", r.ErrorType, r.Error)
	}
	n := 0
	for _, s := range r.Data.Result {
		if len(s.Values) > 0 {
			n++
		}
	}
	return n, nil
}

// waitFor polls an instant query until it has a series.
func (p promAPI) waitFor(expr string, timeout time.Duration) {
	p.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		r, err := p.get("/api/v1/query", url.Values{"query": {expr}})
		if err == nil && r.Status == "success" && len(r.Data.Result) > 0 {
			return
		}
		if time.Now().After(deadline) {
			p.t.Fatalf("after %v, still no result for %s (%v %s)", timeout, expr, err, r.Error)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// start runs a command in n's namespace until the test ends.
func start(t *testing.T, n *nskit.Node, name string, args ...string) *nskit.Proc {
	t.Helper()
	cmd := n.Command(name, args...)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH")}
	p, _ := nskittest.Start(t, n, filepath.Base(name), cmd)
	return p
}

// mayBeEmpty lists the targets that select a problem the healthy lab does
// not have (split brain, no master, FAULT, drops, lost events, mail): their
// selectors must still return data, the whole expression need not.
var mayBeEmpty = map[string]string{
	`fleet.json panel "Split-brain VIPs" target A`:             "no split brain",
	`fleet.json panel "VRIDs with no master" target A`:         "a master throughout",
	`instance.json panel "Adverts dropped by reason" target A`: "no bad adverts",
	`instance.json panel "Events lost by slow sinks" target A`: "no sink overflows",
	`instance.json panel "Notify scripts and mail" target B`:   "no smtp configured",
	// Node 1 hears VRID 52, which only node 2 runs, but the agent does not
	// turn netif's vrid_unknown count into events yet.
	`instance.json panel "Packets dropped before any instance" target A`: "vrid_unknown not emitted by the agent",
}

// needIPVS lists the targets that are empty unless the kernel has IPVS:
// without it the agent never reconciles.
var needIPVS = map[string]bool{
	`loadbalancer.json panel "IPVS reconciles" target A`: true,
	`loadbalancer.json panel "IPVS reconciles" target B`: true,
}

// onFirstOccurrence are families whose series appear with their first
// event (their labels are not known before): a selector on them may be
// empty when the event did not happen.
var onFirstOccurrence = map[string]bool{
	"keepwatch_sink_events_dropped_total":         true,
	"keepwatch_vrrp_global_adverts_dropped_total": true,
}

// kernelFamilies are read from the kernel's IPVS table at scrape time: a
// host kernel without IPVS (this one; the kernel tier runs under qemu) has
// none of them.
func kernelFamily(name string) bool {
	return strings.HasPrefix(name, "keepwatch_ipvs_virtual_server_") || strings.HasPrefix(name, "keepwatch_ipvs_real_server_")
}

func hostHasIPVS() bool {
	_, err := os.Stat("/proc/net/ip_vs")
	return err == nil
}

// TestQueriesAgainstPrometheus runs two keepwatch agents in a lab, scraped
// by a real Prometheus in node 1's namespace, through election, a tracked
// script failing (takeover), its recovery (preemption), a rejected and an
// accepted reload, and a master stopping (priority 0) and coming back. Then
// every dashboard expression must evaluate; every metric selector in it
// must return series; and every expression must return data, except the
// problem panels in mayBeEmpty.
func TestQueriesAgainstPrometheus(t *testing.T) {
	if testing.Short() && os.Getenv("CI") == "" {
		t.Skip("a minute of real agents and Prometheus")
	}
	lab := nskittest.New(t, "dash", 2, "prometheus")
	dir := t.TempDir()
	bin := filepath.Join(dir, "keepwatch")
	build := exec.Command("go", "build", "-o", bin, "github.com/keepwatch/keepwatch/cmd/keepwatch")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("building keepwatch: %v\n%s", err, out)
	}
	na, nb := lab.Node(1), lab.Node(2)
	write := func(name, text string, mode os.FileMode) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(text), mode); err != nil {
			t.Fatal(err)
		}
		return p
	}
	fail := filepath.Join(dir, "fail1")
	write("chk1.sh", "#!/bin/sh\ntest ! -e "+fail+"\n", 0o700)
	write("chk2.sh", "#!/bin/sh\nexit 0\n", 0o700)
	faultFile := filepath.Join(dir, "fault1")
	write("flt1.sh", "#!/bin/sh\ntest ! -e "+faultFile+"\n", 0o700)
	write("flt2.sh", "#!/bin/sh\nexit 0\n", 0o700)
	write("notify.sh", "#!/bin/sh\nexit 0\n", 0o700)
	write("tf1", "0\n", 0o600)
	write("tf2", "0\n", 0o600)
	confA := write("node1.conf", labConf(na, dir, 150), 0o600)
	confB := write("node2.conf", labConf(nb, dir, 100), 0o600)

	// The real server that passes: a listener on node 2.
	var ln net.Listener
	if err := nb.Do(func() error {
		var err error
		ln, err = net.Listen("tcp", "192.0.2.2:8080")
		return err
	}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()

	agent := func(n *nskit.Node, conf string) *nskit.Proc {
		return start(t, n, bin, "run", "-f", conf, "--log.format", "json",
			"--web.listen-address", net.JoinHostPort(n.IPv4.Addr().String(), "9759"))
	}
	a := agent(na, confA)
	agent(nb, confB)

	promConf := write("prometheus.yml", `global:
  scrape_interval: 1s
  scrape_timeout: 900ms
scrape_configs:
  - job_name: keepwatch
    static_configs:
      - targets: ['192.0.2.1:9759', '192.0.2.2:9759']
`, 0o600)
	start(t, na, "prometheus", "--config.file="+promConf, "--storage.tsdb.path="+filepath.Join(dir, "tsdb"),
		"--web.listen-address=192.0.2.1:9090", "--log.level=warn")
	prom := promAPI{t: t, client: na.HTTPClient(10*time.Second, nil), base: "http://192.0.2.1:9090"}
	begin := time.Now()

	master := func(host string) string {
		return fmt.Sprintf(`keepwatch_vrrp_state{state="master", vrrp_instance="VI_1", instance=%q} == 1`, host)
	}
	const hostA, hostB = "192.0.2.1:9759", "192.0.2.2:9759"
	prom.waitFor(`count(up{job="keepwatch"} == 1) == 2`, 30*time.Second)
	prom.waitFor(master(hostA), 30*time.Second)
	// Node 2's own VRID, whose adverts node 1 hears and has no instance for.
	prom.waitFor(`keepwatch_vrrp_state{state="master", vrrp_instance="VI_2", instance="`+hostB+`"} == 1`, 30*time.Second)
	prom.waitFor(`keepwatch_vrrp_state{state="master", vrrp_instance="VI_6"} == 1`, 30*time.Second)
	time.Sleep(5 * time.Second)

	// The script fails: A drops to 100 < B's 110, B takes over.
	write("fail1", "", 0o600)
	prom.waitFor(master(hostB), 20*time.Second)
	time.Sleep(4 * time.Second)
	// It recovers: A (160) preempts back.
	if err := os.Remove(fail); err != nil {
		t.Fatal(err)
	}
	prom.waitFor(master(hostA), 20*time.Second)

	// A rejected reload (the old config keeps running), then a good one.
	write("node1.conf", "vrrp_instance {\n", 0o600)
	if err := a.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	prom.waitFor(`keepwatch_config_last_reload_successful{instance="`+hostA+`"} == 0`, 20*time.Second)
	write("node1.conf", labConf(na, dir, 150), 0o600)
	if err := a.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	prom.waitFor(`keepwatch_config_last_reload_successful{instance="`+hostA+`"} == 1`, 20*time.Second)

	// A's weight-0 script fails: FAULT, and a priority-0 advert as it
	// resigns; then it recovers and preempts.
	write("fault1", "", 0o600)
	prom.waitFor(`keepwatch_vrrp_state{state="fault", vrrp_instance="VI_1", instance="`+hostA+`"} == 1`, 20*time.Second)
	prom.waitFor(master(hostB), 20*time.Second)
	time.Sleep(3 * time.Second)
	if err := os.Remove(faultFile); err != nil {
		t.Fatal(err)
	}
	prom.waitFor(master(hostA), 20*time.Second)

	// A stops (a priority-0 advert), B takes over; A comes back and preempts.
	if err := a.Stop(); err != nil {
		t.Logf("stopping node 1's agent: %v", err)
	}
	prom.waitFor(master(hostB), 20*time.Second)
	agent(na, confA)
	prom.waitFor(master(hostA), 30*time.Second)
	time.Sleep(6 * time.Second)
	end := time.Now()

	ipvs := hostHasIPVS()
	rangeSecs := strconv.Itoa(int(end.Sub(begin).Seconds())+1) + "s"
	eval := func(e string) string {
		e = strings.ReplaceAll(e, "$__rate_interval", "5s")
		e = strings.ReplaceAll(e, "$__range", rangeSecs)
		return concrete(e)
	}
	checked := 0
	for _, d := range All() {
		raw, err := d.Render()
		if err != nil {
			t.Fatal(err)
		}
		targets, variables := exprs(t, raw)
		for where, v := range variables {
			targets[where] = labelValues.FindStringSubmatch(v)[1]
		}
		for _, where := range sortedKeys(targets) {
			key := d.File + " " + where
			e := targets[where]
			refs, err := scanPromQL(e)
			if err != nil {
				t.Fatalf("%s: %v", key, err)
			}
			kernel := needIPVS[key] && !ipvs
			for _, s := range refs.selectors {
				if onFirstOccurrence[s.name] {
					continue
				}
				if kernelFamily(s.name) && !ipvs {
					kernel = true
					continue
				}
				n, err := prom.series(eval(s.text), begin, end)
				if err != nil || n == 0 {
					t.Errorf("%s: selector %s: %d series, %v", key, s.text, n, err)
				}
			}
			n, err := prom.series(eval(e), begin, end)
			checked++
			switch {
			case err != nil:
				t.Errorf("%s: %v\n%s", key, err, e)
			case n == 0 && !kernel && mayBeEmpty[key] == "":
				t.Errorf("%s: no data\n%s", key, eval(e))
			case n > 0 && kernel:
				t.Errorf("%s: data from kernel IPVS families on a kernel without IPVS?", key)
			}
		}
	}
	t.Logf("%d expressions evaluated over %v of scrapes (kernel IPVS: %v)", checked, end.Sub(begin).Round(time.Second), ipvs)
}
