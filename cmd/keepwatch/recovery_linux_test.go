package main

import (
	"encoding/json"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/keepwatch/keepwatch/engine/agent"
	"github.com/keepwatch/keepwatch/engine/config/configtest"
	"github.com/keepwatch/keepwatch/engine/netif/nskit/nskittest"
)

// TestStockConfigRuns (network tier): keepwatch run starts the stock
// config in a namespace, the instance comes up BACKUP and, hearing no
// master, becomes MASTER holding the VIP; the status API and the metrics
// show the three diagnostics with what was done about each.
func TestStockConfigRuns(t *testing.T) {
	l := nskittest.New(t, "stock", 1)
	n := l.Node(1)
	bin := buildKeepwatch(t)
	conf := filepath.Join(t.TempDir(), "keepalived.conf")
	if err := os.WriteFile(conf, []byte(strings.ReplaceAll(configtest.StockKeepalivedConf, "IFNAME", n.Link)), 0o644); err != nil {
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

// buildKeepwatch is the package's one test build of this command (the
// drop-in's, dropinBinary), by its own name.
func buildKeepwatch(t *testing.T) string {
	t.Helper()
	return filepath.Join(filepath.Dir(dropinBinary(t)), "keepwatch")
}

// TestReloadGuardNetwork (network tier): a running agent keeps its VIP
// when a reload's typo would drop it, whatever errors the running config
// already had; a deliberate removal reloads.
func TestReloadGuardNetwork(t *testing.T) {
	l := nskittest.New(t, "guard", 1)
	n := l.Node(1)
	bin := buildKeepwatch(t)
	const base = `vrrp_instance VI_1 {
  interface LINK
  virtual_router_id 31
  priority 200
  advert_int abc
  virtual_ipaddress {
    192.0.2.101
    VIP2
  }
}
`
	conf := filepath.Join(t.TempDir(), "keepalived.conf")
	write := func(vip2 string) {
		t.Helper()
		text := strings.ReplaceAll(strings.ReplaceAll(base, "LINK", n.Link), "VIP2", vip2)
		if err := os.WriteFile(conf, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("192.0.2.102")
	const listen = "127.0.0.1:19759"
	p, out := nskittest.Start(t, n, "keepwatch", n.Command(bin, "run", "-f", conf, "--web.listen-address", listen))
	client := n.HTTPClient(2*time.Second, nil)
	metric := func(name string) string {
		resp, err := client.Get("http://" + listen + "/metrics")
		if err != nil {
			return ""
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		for _, l := range strings.Split(string(body), "\n") {
			if strings.HasPrefix(l, name+" ") {
				return strings.TrimPrefix(l, name+" ")
			}
		}
		return ""
	}
	held := func() map[string]bool {
		addrs, err := n.Handle().AddrList(nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		m := map[string]bool{}
		for _, a := range addrs {
			m[a.IP.String()] = true
		}
		return m
	}
	waitFor := func(what string, ok func() bool) {
		t.Helper()
		deadline := time.Now().Add(15 * time.Second)
		for !ok() {
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for %s\n%s", what, out.String())
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	waitFor("both VIPs", func() bool { h := held(); return h["192.0.2.101"] && h["192.0.2.102"] })
	loads := func() string { return metric(`keepwatch_config_loads_total{result="failure"}`) }
	failedBefore := loads()

	write("192.0.2.302") // a typo: the address is skipped, the VIP would go
	if err := p.Cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	waitFor("the reload to be rejected", func() bool {
		return metric("keepwatch_config_last_reload_successful") == "0" && loads() != failedBefore
	})
	time.Sleep(500 * time.Millisecond)
	if h := held(); !h["192.0.2.101"] || !h["192.0.2.102"] {
		t.Errorf("after a rejected reload the VIPs held are %v, want both kept", h)
	}

	write("") // removed on purpose; advert_int abc was there before
	if err := p.Cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	waitFor("the reload to succeed", func() bool { return metric("keepwatch_config_last_reload_successful") == "1" })
	waitFor("192.0.2.102 to go", func() bool { h := held(); return h["192.0.2.101"] && !h["192.0.2.102"] })
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
