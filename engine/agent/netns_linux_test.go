package agent_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vishvananda/netlink"

	"github.com/keepwatch/keepwatch/engine/agent"
	"github.com/keepwatch/keepwatch/engine/config"
	"github.com/keepwatch/keepwatch/engine/netif"
	"github.com/keepwatch/keepwatch/engine/netif/nskit"
	"github.com/keepwatch/keepwatch/engine/netif/nskit/nskittest"
)

// TestNetNamespaceAgainstKeepalived: keepwatch, started in the test's own
// namespace with `net_namespace X`, runs its VRRP inside X: the real
// keepalived (2.2.7) in a peer namespace, joined to X by the lab's bridge,
// starts as MASTER with the lower priority and yields to keepwatch's
// adverts; the VIP moves from the peer's interface to X's and never shows
// on any interface of the test's namespace. A reload that changes
// net_namespace is refused and the old config keeps running, as keepalived
// does (reference §4.1).
func TestNetNamespaceAgainstKeepalived(t *testing.T) {
	l := nskittest.New(t, "netns", 2, "keepalived")
	x, peer := l.Node(1), l.Node(2)
	vip := netip.MustParsePrefix("192.0.2.200/32")
	dir := t.TempDir()

	kaConf := filepath.Join(dir, "keepalived.conf")
	writeFile(t, kaConf, fmt.Sprintf(`global_defs {
	router_id kw_netns_peer
	vrrp_garp_master_delay 0
}
vrrp_instance VI_1 {
	state MASTER
	interface %s
	virtual_router_id 61
	priority 100
	advert_int 1
	virtual_ipaddress {
		%s
	}
}
`, peer.Link, vip))
	nskittest.Start(t, peer, "keepalived", peer.Command("keepalived", "-n", "-l", "-D", "-P", "-f", kaConf,
		"-p", filepath.Join(dir, "ka.pid"), "-r", filepath.Join(dir, "vrrp.pid")))
	// keepalived is master first: its VIP is on the peer's link.
	waitAddr(t, peer, vip, true, 20*time.Second, "keepalived master before keepwatch starts")

	kwConf := filepath.Join(dir, "keepwatch.conf")
	body := func(ns string) string {
		return fmt.Sprintf(`net_namespace %s
global_defs {
	router_id kw_netns
	vrrp_garp_master_delay 0
}
vrrp_instance VI_1 {
	state BACKUP
	interface %s
	virtual_router_id 61
	priority 200
	advert_int 1
	virtual_ipaddress {
		%s
	}
}
`, ns, x.Link, vip)
	}
	writeFile(t, kwConf, body(x.NS))
	a, _ := startAgent(t, kwConf)

	// The election, against keepalived: keepwatch's priority 200 preempts.
	waitAddr(t, x, vip, true, 30*time.Second, "keepwatch master in namespace X")
	waitAddr(t, peer, vip, false, 30*time.Second, "keepalived yielded to keepwatch's adverts")
	if st := a.Status(); len(st) != 1 || !strings.EqualFold(st[0].State.String(), "MASTER") {
		t.Errorf("status %+v, want one MASTER instance", st)
	}
	// The takeover is done: once it has been quiet for a second, the
	// start-up memory release may run (cmd/keepwatch releaseAfterStart
	// waits for this).
	for deadline := time.Now().Add(5 * time.Second); !a.StartupSettled(); time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Error("StartupSettled still false 5 s after the only instance became MASTER")
			break
		}
	}
	// Nothing of it in the test's own namespace.
	if addrs, err := netlink.AddrList(nil, netlink.FAMILY_V4); err == nil {
		for _, ad := range addrs {
			if p, ok := netip.AddrFromSlice(ad.IP); ok && p.Unmap() == vip.Addr() {
				t.Errorf("VIP %s on %v in the test's namespace", vip, ad.LinkIndex)
			}
		}
	}
	if _, err := netlink.LinkByName(x.Link); err == nil {
		t.Errorf("interface %s found in the test's namespace: the lab is not what the test assumes", x.Link)
	}

	// net_namespace cannot change on reload: refused, the old one runs.
	writeFile(t, kwConf, body(peer.NS))
	err := a.Reload()
	if !errors.Is(err, config.ErrRefused) || !strings.Contains(fmt.Sprint(err), "net_namespace") {
		t.Errorf("reload moving net_namespace: %v, want refused naming net_namespace", err)
	}
	if got := a.Config().Global.NetNamespace; got != x.NS {
		t.Errorf("running net_namespace %q after refused reload, want %q", got, x.NS)
	}
	time.Sleep(time.Second)
	waitAddr(t, x, vip, true, 5*time.Second, "keepwatch still master in X after the refused reload")
	waitAddr(t, peer, vip, false, 5*time.Second, "keepalived still backup")
}

// startAgent runs an agent on the config at path, on the host's platform,
// until the test ends: the cleanup cancels it, waits up to 30 s for Run to
// return and fails the test if it does not, or if Run failed with an error
// the test did not take from the returned channel itself (a test that
// expects the agent to refuse its config receives the error there).
func startAgent(t testing.TB, path string) (*agent.Agent, <-chan error) {
	t.Helper()
	host, err := netif.OpenHost()
	if err != nil {
		t.Fatal(err)
	}
	a := agent.New(agent.Options{Path: path, Platform: host, RetryInterval: time.Second})
	ctx, cancel := context.WithCancel(context.Background())
	done, stopped := make(chan error, 1), make(chan struct{})
	go func() {
		done <- a.Run(ctx) // buffered: never blocks
		close(stopped)
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case <-stopped:
		case <-time.After(30 * time.Second):
			t.Error("agent did not stop")
			return
		}
		select {
		case err := <-done:
			if err != nil && !errors.Is(err, context.Canceled) {
				t.Errorf("agent: %v", err)
			}
		default: // the test took Run's error and judged it
		}
	})
	return a, done
}

func writeFile(t testing.TB, path, body string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
}

// waitAddr waits until the node's link holds vip (want) or does not.
func waitAddr(t *testing.T, n *nskit.Node, vip netip.Prefix, want bool, timeout time.Duration, what string) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		has := false
		link, err := n.Handle().LinkByName(n.Link)
		if err != nil {
			t.Fatal(err)
		}
		addrs, err := n.Handle().AddrList(link, netlink.FAMILY_V4)
		if err != nil {
			t.Fatal(err)
		}
		for _, ad := range addrs {
			if p, ok := netip.AddrFromSlice(ad.IP); ok && p.Unmap() == vip.Addr() {
				has = true
			}
		}
		if has == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: VIP %s on %s of node %d is %v after %v", what, vip, n.Link, n.Index, has, timeout)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestDynamicInterfacesAgainstKeepalived: an instance on an interface that
// does not exist yet. Without dynamic_interfaces the real keepalived's VRRP
// process exits ("Non-existent interface specified in configuration") and
// keepwatch refuses to start; with it both start, keepwatch's instance in
// FAULT, and both take their VIPs once the interface appears. Both run in
// one namespace, keepwatch through net_namespace.
func TestDynamicInterfacesAgainstKeepalived(t *testing.T) {
	l := nskittest.New(t, "dynif", 1, "keepalived")
	x := l.Node(1)
	const ifname = "kwdyn0"
	dir := t.TempDir()
	conf := func(dynamic bool, vrid int, vip string) string {
		g := ""
		if dynamic {
			g = "\tdynamic_interfaces\n"
		}
		return fmt.Sprintf(`net_namespace %s
global_defs {
	router_id kw_dynif
	vrrp_garp_master_delay 0
%s}
vrrp_instance VI_1 {
	state BACKUP
	interface %s
	virtual_router_id %d
	priority 100
	advert_int 1
	virtual_ipaddress {
		%s
	}
}
`, x.NS, g, ifname, vrid, vip)
	}
	kaVIP, kwVIP := netip.MustParsePrefix("192.0.2.77/32"), netip.MustParsePrefix("192.0.2.78/32")
	startKA := func(name, body string) (*nskit.Proc, *nskittest.Buffer) {
		// keepalived is started inside the namespace: its net_namespace
		// line is dropped (it would look the name up in its own mount
		// namespace, which is the same, but need not).
		path := filepath.Join(dir, name)
		writeFile(t, path, body[strings.Index(body, "\n")+1:])
		return nskittest.Start(t, x, name, x.Command("keepalived", "-n", "-l", "-D", "-P", "-f", path,
			"-p", filepath.Join(dir, name+".pid"), "-r", filepath.Join(dir, name+".vrrp.pid")))
	}
	runKW := func(name, body string) (*agent.Agent, <-chan error) {
		path := filepath.Join(dir, name)
		writeFile(t, path, body)
		return startAgent(t, path)
	}

	// Without dynamic_interfaces: both stop.
	p, out := startKA("static.conf", conf(false, 9, kaVIP.String()))
	select {
	case <-p.Done():
	case <-time.After(30 * time.Second):
		t.Fatal("keepalived without dynamic_interfaces did not stop on a missing interface")
	}
	if !strings.Contains(out.String(), "Non-existent interface specified in configuration") {
		t.Errorf("keepalived stopped for another reason:\n%s", out)
	}
	_, done := runKW("static-kw.conf", conf(false, 10, kwVIP.String()))
	select {
	case err := <-done:
		if !errors.Is(err, config.ErrRefused) || !strings.Contains(err.Error(), ifname) {
			t.Errorf("keepwatch without dynamic_interfaces: %v, want refused naming %s", err, ifname)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("keepwatch without dynamic_interfaces started on a missing interface")
	}

	// With it: both wait, keepwatch in FAULT, then both run.
	startKA("dynamic.conf", conf(true, 9, kaVIP.String()))
	a, _ := runKW("dynamic-kw.conf", conf(true, 10, kwVIP.String()))
	deadline := time.Now().Add(30 * time.Second)
	for {
		st := a.Status()
		if len(st) == 1 && strings.EqualFold(st[0].State.String(), "FAULT") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("keepwatch instance on a missing interface: %+v, want FAULT", st)
		}
		time.Sleep(50 * time.Millisecond)
	}
	time.Sleep(2 * time.Second) // keepalived is up and waiting too
	veth := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: ifname}, PeerName: "kwdyn1"}
	if err := x.Handle().LinkAdd(veth); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"kwdyn1", ifname} {
		link, err := x.Handle().LinkByName(name)
		if err != nil {
			t.Fatal(err)
		}
		if name == ifname {
			if err := x.Handle().AddrAdd(link, &netlink.Addr{IPNet: &net.IPNet{IP: net.IPv4(192, 0, 2, 5), Mask: net.CIDRMask(24, 32)}}); err != nil {
				t.Fatal(err)
			}
		}
		if err := x.Handle().LinkSetUp(link); err != nil {
			t.Fatal(err)
		}
	}
	dyn := *x
	dyn.Link = ifname
	waitAddr(t, &dyn, kaVIP, true, 30*time.Second, "keepalived master once the interface appeared")
	waitAddr(t, &dyn, kwVIP, true, 30*time.Second, "keepwatch master once the interface appeared")
}
