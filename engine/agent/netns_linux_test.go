package agent_test

import (
	"context"
	"errors"
	"fmt"
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
	host, err := netif.OpenHost()
	if err != nil {
		t.Fatal(err)
	}
	a := agent.New(agent.Options{Path: kwConf, Platform: host, RetryInterval: time.Second})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil && !errors.Is(err, context.Canceled) {
				t.Errorf("agent: %v", err)
			}
		case <-time.After(30 * time.Second):
			t.Error("agent did not stop")
		}
	})

	// The election, against keepalived: keepwatch's priority 200 preempts.
	waitAddr(t, x, vip, true, 30*time.Second, "keepwatch master in namespace X")
	waitAddr(t, peer, vip, false, 30*time.Second, "keepalived yielded to keepwatch's adverts")
	if st := a.Status(); len(st) != 1 || !strings.EqualFold(st[0].State.String(), "MASTER") {
		t.Errorf("status %+v, want one MASTER instance", st)
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
	err = a.Reload()
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

func writeFile(t *testing.T, path, body string) {
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
