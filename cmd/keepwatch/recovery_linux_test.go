package main

import (
	"encoding/json"
	"io"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/keepwatch/keepwatch/engine/agent"
	"github.com/keepwatch/keepwatch/engine/netif/nskit/nskittest"
)

// stockKeepalivedConf is the keepalived.conf that tutorials and
// distributions ship (issue 8), with the interface and the VIP renamed for
// the test's namespace. keepalived 2.2.7 runs it, logging three config
// errors (vrrp_garp_interval 0, vrrp_gna_interval 0, authentication under
// vrrp_strict); keepwatch refused it until it recovered from errors the
// way keepalived does.
const stockKeepalivedConf = `global_defs {
   notification_email {
    root@mylinuxops.com
   }
   notification_email_from root@mylinuxops.com
   smtp_server 127.0.0.1
   smtp_connect_timeout 30
   router_id n1.mylinuxops.com
   vrrp_skip_check_adv_addr
   vrrp_strict
   vrrp_iptables
   vrrp_mcast_group4 224.0.0.18
   vrrp_garp_interval 0
   vrrp_gna_interval 0
}
vrrp_instance VI_1 {
    state BACKUP
    nopreempt
    interface LINK
    virtual_router_id 27
    priority 80
    advert_int 2
    authentication {
        auth_type PASS
        auth_pass 1111
    }
    virtual_ipaddress {
        192.0.2.100 dev LINK label LINK:0
    }
}
`

// TestStockConfigRuns (network tier): keepwatch run starts the stock
// config in a namespace, the instance comes up BACKUP and, hearing no
// master, becomes MASTER holding the VIP; the status API and the metrics
// show the three diagnostics with what was done about each.
func TestStockConfigRuns(t *testing.T) {
	l := nskittest.New(t, "stock", 1)
	n := l.Node(1)
	bin := filepath.Join(t.TempDir(), "keepwatch")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	conf := filepath.Join(t.TempDir(), "keepalived.conf")
	if err := os.WriteFile(conf, []byte(strings.ReplaceAll(stockKeepalivedConf, "LINK", n.Link)), 0o644); err != nil {
		t.Fatal(err)
	}
	const listen = "127.0.0.1:19759"
	_, out := nskittest.Start(t, n, "keepwatch", n.Command(bin, "run", "-f", conf, "--web.listen-address", listen))
	client := n.HTTPClient(2*time.Second, nil)
	var seen []string
	var doc agent.StatusDoc
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := client.Get("http://" + listen + "/api/v1/status")
		if err == nil {
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			doc = agent.StatusDoc{}
			if json.Unmarshal(body, &doc) == nil && len(doc.Instances) == 1 {
				s := doc.Instances[0].State
				if len(seen) == 0 || seen[len(seen)-1] != s {
					seen = append(seen, s)
				}
				if s == "master" {
					break
				}
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	if len(seen) < 2 || seen[len(seen)-2] != "backup" || seen[len(seen)-1] != "master" {
		t.Fatalf("states seen %v, want backup then master\n%s", seen, out.String())
	}
	addrs, err := n.Handle().AddrList(nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	held := false
	for _, a := range addrs {
		ip, _ := netip.AddrFromSlice(a.IP)
		held = held || (ip.Unmap() == netip.MustParseAddr("192.0.2.100") && a.Label == n.Link+":0")
	}
	if !held {
		t.Errorf("VIP 192.0.2.100 with label %s:0 not on the link: %v", n.Link, addrs)
	}
	var errs []string
	for _, d := range doc.Diagnostics {
		if d.Severity == "error" {
			errs = append(errs, d.Keyword+": "+d.Done)
		}
	}
	want := []string{"vrrp_garp_interval: ignored, default 0 s kept", "vrrp_gna_interval: ignored, default 0 s kept", "vrrp_strict: ignored"}
	if strings.Join(errs, "|") != strings.Join(want, "|") {
		t.Errorf("status diagnostics (errors) %q, want %q", errs, want)
	}
	resp, err := client.Get("http://" + listen + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(body), `keepwatch_config_diagnostics{severity="error"} 3`) {
		t.Errorf("metrics lack keepwatch_config_diagnostics{severity=\"error\"} 3:\n%s", grepLines(string(body), "keepwatch_config_diagnostics"))
	}
}

func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
