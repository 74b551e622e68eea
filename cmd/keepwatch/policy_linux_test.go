package main

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/keepwatch/keepwatch/engine/netif"
	"github.com/keepwatch/keepwatch/engine/netif/nskit"
	"github.com/keepwatch/keepwatch/engine/netif/nskit/nskittest"
)

// policyRules are static_rules lines, one selector or action each, as
// keepalived 2.2.7's `ip rule` syntax has them (vrrp_iprule.c).
var policyRules = []string{
	"from 192.0.2.10 table 100 priority 100",
	"to 198.51.100.0/24 table main priority 101",
	"from all fwmark 0x10/0xff lookup 101 preference 102",
	"iif DEV table 102 priority 103",
	"oif DEV table 103 priority 104",
	"from 203.0.113.0/24 tos 0x10 table 104 priority 105",
	"uidrange 1000-2000 table 105 priority 106",
	"ipproto tcp dport 80-90 table 106 priority 107",
	"ipproto udp sport 53-53 table 107 priority 108",
	"from 192.0.2.20 blackhole priority 109",
	"from 192.0.2.21 unreachable priority 110",
	"from 192.0.2.22 prohibit priority 111",
	"from 192.0.2.23 goto 200 priority 112",
	"table 108 suppress_prefixlength 0 priority 113",
	"table 109 suppress_ifgroup 5 priority 114",
	"from 192.0.2.24 realms 3/4 table 110 priority 115",
	"not from 192.0.2.25 table 111 priority 116",
	"from 192.0.2.26 table 112 priority 117 protocol 4 no_track",
	"from 192.0.2.27 to 198.51.100.7 table 113 preference 200",
	"from 192.0.2.28 type prohibit order 118",
	"from 192.0.2.29 dev DEV dsfield 10 lookup 114 priority 119",
	"to 2001:db8:5::/48 table 100 priority 210",
	"fwmark 7 priority 211 table 101 inet6",
	"from 2001:db8::26 table 1000 priority 212",
	// l3mdev (the VRF device's table) and tunnel-id (FRA_TUN_ID), which
	// netif sends itself. The reload keeps the even rows and changes the
	// tunnel ids kept (5 to 8, 6 to 9), removes the odd ones.
	"from 192.0.2.30 tunnel-id 5 table 115 priority 133",
	"l3mdev priority 130",
	"from 192.0.2.31 iif DEV l3mdev priority 131",
	"tunnel-id 4294967295 table 116 priority 134",
	"from 2001:db8::30 tunnel-id 6 table 115 priority 214",
	"to 2001:db8:9::/48 l3mdev priority 213",
	"l3mdev priority 215 inet6",
	// keepalived 2.2.7 takes no mask ("invalid number '7/0xff'") and
	// skips the rule, as keepwatch does.
	"tunnel-id 7/0xff table 116 priority 135",
	"not fwmark 9 l3mdev realms 3 priority 132",
	"l3mdev suppress_prefixlength 0 priority 136",
	// No action: keepalived 2.2.7 skips the rule ("No action specified
	// for rule - ignoring") where `ip rule add` would look up main.
	"from 192.0.2.32 priority 137",
}

// policyRoutes are static_routes lines with the options keepwatch installs.
var policyRoutes = []string{
	"198.51.100.0/24 dev DEV table 100",
	"203.0.113.0/24 via 192.0.2.254 dev DEV table 101 metric 5",
	"default via 192.0.2.254 dev DEV table 102",
	"blackhole 198.51.100.128/25 table 103",
	"unreachable 203.0.113.128/25 table 103",
	"prohibit 203.0.113.64/26 table 103",
	"throw 203.0.113.32/27 table 103",
	"198.51.100.16/28 dev DEV table 104 scope host protocol static",
	"198.51.100.32/28 via 192.0.2.254 dev DEV table 105 mtu 1400 advmss 1360 hoplimit 10 initcwnd 10 initrwnd 20 window 1000",
	"198.51.100.48/28 via 192.0.2.254 dev DEV table 105 mtu lock 1300 rto_min 200ms quickack 1 congctl cubic features ecn",
	"198.51.100.64/28 via 192.0.2.254 dev DEV table 106 realms 5 reordering 4 cwnd 8 ssthresh 9",
	"198.51.100.80/28 via 203.0.113.1 dev DEV onlink table 106",
	"198.51.100.96/28 dev DEV src 192.0.2.50 metric 7",
	"2001:db8:1::/48 via 2001:db8::fe dev DEV table 100 metric 10",
	"2001:db8:2::/48 dev DEV table 1000",
	"198.51.100.112/28 dev DEV table 107 no_track",
	"198.51.100.128/28 dev DEV table 107 protocol static no_track",
}

const policyConf = `global_defs {
	router_id policy
	vrrp_garp_master_delay 0
}
static_ipaddress {
	192.0.2.50/32 dev DEV
	2001:db8::50/128 dev DEV
}
static_routes {
%s
}
static_rules {
%s
}
vrrp_instance VI_1 {
	state MASTER
	interface DEV
	virtual_router_id 71
	priority 150
	advert_int 0.2
	virtual_ipaddress {
		192.0.2.100/24
	}
	virtual_routes {
		203.0.113.200/32 dev DEV table 120 protocol boot
		198.51.100.200/32 via 192.0.2.254 table main
	}
	virtual_rules {
		from 192.0.2.100 table 120 priority 300
		fwmark 5 table 121 priority 301 no_track
		to 198.51.100.9 iif DEV oif DEV blackhole priority 302
		from 192.0.2.100 tunnel-id 11 table 122 priority 303
		iif DEV l3mdev priority 304
	}
}
`

// policyState is the node's rules, routes and static addresses, one
// sorted line each, without what the kernel made itself.
func policyState(t *testing.T, n *nskit.Node) []string {
	t.Helper()
	var out []string
	for _, args := range [][]string{
		{"-4", "rule", "show"}, {"-6", "rule", "show"},
		{"-4", "route", "show", "table", "all"}, {"-6", "route", "show", "table", "all"},
		{"-o", "addr", "show", "dev", n.Link},
	} {
		b, err := exec.Command("ip", append([]string{"-n", n.NS, "-d"}, args...)...).CombinedOutput()
		if err != nil {
			t.Fatalf("ip %v: %v\n%s", args, err, b)
		}
		for _, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
			switch {
			case l == "", strings.Contains(l, "proto kernel"), strings.Contains(l, "table local"),
				strings.Contains(l, "fe80:"), strings.HasPrefix(l, "multicast"), strings.Contains(l, "lookup local"),
				strings.Contains(l, "valid_lft") && !strings.Contains(l, ".50/") && !strings.Contains(l, "::50/"):
				continue
			}
			l = strings.Join(strings.Fields(l), " ")
			out = append(out, strings.Join(args, " ")+": "+l)
		}
	}
	out = append(out, ruleDump(t, n)...)
	sort.Strings(out)
	return out
}

// ruleDump is the node's rules as the kernel's dump has them (netif's
// RTM_GETRULE parser), every attribute, including those `ip rule` leaves
// out (suppressors beside l3mdev, the fwmark mask, the action of a
// lookup): what it does not print must be the same too.
func ruleDump(t *testing.T, n *nskit.Node) []string {
	t.Helper()
	s, err := netif.OpenAt(n.NsHandle())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	opt := func(p *int) string {
		if p == nil {
			return "-"
		}
		return fmt.Sprint(*p)
	}
	var out []string
	for _, fam := range []int{unix.AF_INET, unix.AF_INET6} {
		rules, err := s.ListRules(fam)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range rules {
			if r.Protocol == unix.RTPROT_KERNEL {
				continue
			}
			out = append(out, fmt.Sprintf("dump: %s v6=%v not=%v tos=%d mark=%#x/%#x realms=%#x proto=%d tun=%d l3mdev=%v sup=%s/%s ipproto=%d sport=%v dport=%v uid=%v",
				r, r.IPv6, r.Invert, r.Tos, r.FwMark, r.FwMask, r.Realms, r.Protocol, r.TunID, r.L3mdev,
				opt(r.SupPrefix), opt(r.SupIfgroup), r.IPProto, r.Sport, r.Dport, r.UIDRange))
		}
	}
	return out
}

// waitPolicy waits until the rule of preference prio is in n and returns
// the state a second later.
func waitPolicy(t *testing.T, n *nskit.Node, what string, prio int) []string {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		s := policyState(t, n)
		if strings.Contains(strings.Join(s, "\n"), fmt.Sprintf(" %d:", prio)) {
			time.Sleep(time.Second) // let the rest settle
			return policyState(t, n)
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: rule %d never appeared:\n%s", what, prio, strings.Join(s, "\n"))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// runPolicy runs bin (keepalived, or keepwatch under that name) with conf
// in n until the master's virtual rule is in, then has it reload reconf
// (written over conf), and returns the state at each step and after the
// process stopped.
func runPolicy(t *testing.T, n *nskit.Node, bin, conf string, reconf []byte) (running, reloaded, stopped []string) {
	t.Helper()
	dir := t.TempDir()
	log := &bytes.Buffer{}
	cmd := n.Command(bin, "-n", "-l", "-D", "-f", conf, "-p", filepath.Join(dir, "k.pid"),
		"-r", filepath.Join(dir, "v.pid"), "-c", filepath.Join(dir, "c.pid"))
	cmd.Env = append(os.Environ(), "KEEPWATCH_AGENT_LISTEN_ADDRESS=127.0.0.1:0")
	cmd.Stdout, cmd.Stderr = log, log
	p, err := n.Start(cmd)
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if t.Failed() {
			t.Logf("%s output:\n%s", bin, log)
		}
	}()
	running = waitPolicy(t, n, bin, 302)
	old, err := os.ReadFile(conf)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(conf, reconf, 0o644); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = os.WriteFile(conf, old, 0o644) }()
	if err := p.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	reloaded = waitPolicy(t, n, bin+" after SIGHUP", 150)
	if err := p.Stop(); err != nil {
		t.Fatal(err)
	}
	return running, reloaded, policyState(t, n)
}

// TestPolicyRoutingLikeKeepalived runs one config with static_ipaddress,
// static_routes, static_rules, virtual_routes and virtual_rules (every
// selector and action, route metrics and flags) under the real keepalived
// 2.2.7 and then under keepwatch in the same namespace, and requires the
// kernel's rules, routes and addresses to be the same, while running and
// after each stopped.
func TestPolicyRoutingLikeKeepalived(t *testing.T) {
	bin := dropinBinary(t)
	lab := nskittest.New(t, "policy", 1, "keepalived")
	n := lab.Node(1)
	dev := func(s string) string { return strings.ReplaceAll(s, "DEV", n.Link) }
	ind := func(lines []string) string { return "\t" + strings.Join(lines, "\n\t") }
	conf := filepath.Join(t.TempDir(), "keepalived.conf")
	if err := os.WriteFile(conf, []byte(dev(fmt.Sprintf(policyConf, ind(policyRoutes), ind(policyRules)))), 0o644); err != nil {
		t.Fatal(err)
	}
	// The reload drops every other static rule and route and the IPv6
	// static address, and adds a rule.
	var rules, routes []string
	for i := range policyRules {
		if i%2 == 0 {
			r := strings.Replace(policyRules[i], "tunnel-id 5 ", "tunnel-id 8 ", 1)
			rules = append(rules, strings.Replace(r, "tunnel-id 6 ", "tunnel-id 9 ", 1))
		}
	}
	for i := range policyRoutes {
		if i%2 == 1 {
			routes = append(routes, policyRoutes[i])
		}
	}
	rules = append(rules, "from 192.0.2.150 table 150 priority 150")
	reconf := strings.Replace(dev(fmt.Sprintf(policyConf, ind(routes), ind(rules))), "\t2001:db8::50/128 dev "+n.Link+"\n", "", 1)
	before := policyState(t, n)
	kaRun, kaReload, kaStop := runPolicy(t, n, "keepalived", conf, []byte(reconf))
	kwRun, kwReload, kwStop := runPolicy(t, n, bin, conf, []byte(reconf))

	// Every line asked for is there under keepalived: the comparison is
	// not between two empty tables.
	if len(kaRun) < len(before)+len(policyRules)+len(policyRoutes) {
		t.Errorf("keepalived installed too little (%d lines):\n%s", len(kaRun), strings.Join(kaRun, "\n"))
	}
	diff := func(what string, ka, kw []string) {
		t.Helper()
		in := func(l []string) map[string]bool {
			m := map[string]bool{}
			for _, s := range l {
				m[s] = true
			}
			return m
		}
		a, b := in(ka), in(kw)
		var only []string
		for _, s := range ka {
			if !b[s] {
				only = append(only, "keepalived only: "+s)
			}
		}
		for _, s := range kw {
			if !a[s] {
				only = append(only, "keepwatch only:  "+s)
			}
		}
		if len(only) > 0 {
			t.Errorf("%s: the kernel's state differs:\n%s", what, strings.Join(only, "\n"))
		}
	}
	t.Logf("%d lines before, %d with keepalived running, %d after its reload, %d after it stopped", len(before), len(kaRun), len(kaReload), len(kaStop))
	diff("running", kaRun, kwRun)
	diff("after reload", kaReload, kwReload)
	diff("after stop", kaStop, kwStop)
	// The l3mdev and tunnel-id rows are in (keepalived installs them),
	// and the reload changed the tunnel ids rather than kept the old.
	has := func(state []string, s string) bool { return strings.Contains(strings.Join(state, "\n"), s) }
	for _, w := range []string{"130: from all lookup [l3mdev-table] proto keepalived", "tun_id 5 lookup 115",
		"214: from 2001:db8::30 tun_id 6 lookup 115", "tun_id 4294967295", "215: from all lookup [l3mdev-table]"} {
		if !has(kaRun, w) {
			t.Errorf("keepalived running: no %q", w)
		}
	}
	for w, want := range map[string]bool{"tun_id 8 lookup 115": true, "tun_id 9 lookup 115": true, "tun_id 5 ": false,
		"tun_id 6 ": false, "130: from all lookup [l3mdev-table]": false, "131: from 192.0.2.31 iif": true} {
		if has(kaReload, w) != want {
			t.Errorf("keepalived after reload: %q there: %v, want %v", w, !want, want)
		}
	}
	if len(kaReload) >= len(kaRun) {
		t.Errorf("the reload removed nothing under keepalived: %d lines, %d before", len(kaReload), len(kaRun))
	}
}
