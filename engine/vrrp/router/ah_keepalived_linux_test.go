package router

import (
	"context"
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/keepwatch/keepwatch/engine/event"
	"github.com/keepwatch/keepwatch/engine/netif"
	"github.com/keepwatch/keepwatch/engine/netif/nskit"
	"github.com/keepwatch/keepwatch/engine/netif/nskit/nskittest"
	"github.com/keepwatch/keepwatch/engine/vrrp"
	"github.com/keepwatch/keepwatch/engine/vrrp/receive"
)

// bothConns is what engine/agent gives an AH instance: it sends on the AH
// socket and registers its VRID there and on the plain VRRP socket.
type bothConns struct {
	*netif.Conn
	plain *netif.Conn
}

func (c bothConns) Handle(vrid uint8, h netif.Handler) {
	c.Conn.Handle(vrid, h)
	c.plain.Handle(vrid, h)
}

// startKeepalivedAH runs keepalived 2.2.7 on n as VRID 42, VRRPv2,
// advert_int 1, VIP 192.0.2.100, with auth (empty: none).
func startKeepalivedAH(t *testing.T, n *nskit.Node, dir, name, state string, prio int, auth string) *kaRun {
	t.Helper()
	conf := fmt.Sprintf(`global_defs {
  router_id kw%s
  vrrp_version 2
}
vrrp_instance VI_1 {
  state %s
  interface %s
  virtual_router_id 42
  priority %d
  advert_int 1
%s  virtual_ipaddress {
    %s
  }
}
`, name, state, n.Link, prio, auth, vip4)
	return startKeepalived(t, n, dir, name, conf)
}

func ahAuth(pass string) string {
	return fmt.Sprintf("  authentication {\n    auth_type AH\n    auth_pass %s\n  }\n", pass)
}

// startAHNode runs a keepwatch VRRPv2 instance with auth_type AH (VRID 42,
// advert_int 1, the VIP keepalived has) on n, over an AH socket and a plain
// one, as the agent does.
func startAHNode(t *testing.T, n *nskit.Node, prio int, pass string, peers ...netip.Addr) *node {
	t.Helper()
	var ahConn *netif.Conn
	if err := n.Do(func() error {
		var err error
		ahConn, err = netif.ListenIPv4(n.Link, netif.Config{AH: true})
		return err
	}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = ahConn.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); ahConn.Close(); <-done })
	nd := startNodeWith(t, n, prio, time.Second, func(c *Config) {
		c.FSM.Version = 2
		c.Receive.Version = vrrp.Version2
		c.AuthType, c.AuthData = vrrp.AuthAH, vrrp.PassAuthData(pass)
		c.Receive.AuthType, c.Receive.AuthData = c.AuthType, c.AuthData
		if len(peers) > 0 {
			c.Dsts = peers
			for _, p := range peers {
				c.Receive.Peers = append(c.Receive.Peers, receive.Peer{Addr: p})
			}
		}
	}, func(d *Deps) {
		d.Conn = bothConns{Conn: ahConn, plain: d.Conn.(*netif.Conn)}
	})
	return nd
}

// stays fails the test if nd leaves state s, or keepalived logs a
// transition to master, during d.
func stays(t *testing.T, nd *node, s vrrp.State, ka *kaRun, d time.Duration) {
	t.Helper()
	for end := time.Now().Add(d); time.Now().Before(end); time.Sleep(20 * time.Millisecond) {
		if got := nd.inst.Snapshot().State; got != s {
			t.Fatalf("keepwatch left %v for %v", s, got)
		}
		if ka != nil && strings.Contains(ka.log.String(), "Entering MASTER STATE") {
			t.Fatalf("keepalived became master: it dropped our adverts")
		}
	}
}

func drops(nd *node, r event.Reason) int {
	n := 0
	for _, e := range nd.rec.Of(event.KindAdvertDropped) {
		if e.Reason == r {
			n++
		}
	}
	return n
}

// TestKeepalivedAH interoperates with the Debian keepalived 2.2.7 over
// auth_type AH, in both roles, then with a wrong password and with AH on
// one side only:
//
//  1. keepalived MASTER (priority 200), keepwatch BACKUP (100): keepwatch
//     accepts every AH advert and stays BACKUP, dropping none;
//  2. keepalived stops and starts again as BACKUP (50): keepwatch is master,
//     its adverts continue keepalived's sequence count, and the new
//     keepalived accepts them: it stays BACKUP and logs no AH error;
//  3. keepalived again with another auth_pass: it refuses our ICV (and says
//     so) and takes over; its advert is keepwatch's auth_failure;
//  4. keepalived without authentication: its plain adverts reach the AH
//     instance's plain socket and are keepwatch's authtype_mismatch.
func TestKeepalivedAH(t *testing.T) {
	nskittest.Require(t, "keepalived")
	lab := nskittest.New(t, "kah", 2, "keepalived")
	kaNode, us := lab.Node(1), lab.Node(2)
	dir := t.TempDir()
	const pass = "s3cret"

	// 1. keepalived master, keepwatch backup.
	ka := startKeepalivedAH(t, kaNode, dir, "master", "MASTER", 200, ahAuth(pass))
	nd := startAHNode(t, us, 100, pass)
	t.Cleanup(func() {
		if t.Failed() {
			reasons := map[event.Reason]int{}
			for _, e := range nd.rec.Of(event.KindAdvertDropped) {
				reasons[e.Reason]++
			}
			t.Logf("keepwatch: %d adverts accepted, dropped %v, state %v", len(nd.rec.Of(event.KindAdvertReceived)), reasons, nd.inst.Snapshot().State)
		}
	})
	waitFor(t, 15*time.Second, "keepalived master", func() bool { return strings.Contains(ka.log.String(), "Entering MASTER STATE") })
	nd.waitState(t, vrrp.StateBackup, 10*time.Second)
	before := len(nd.rec.Of(event.KindAdvertReceived))
	stays(t, nd, vrrp.StateBackup, nil, 6*time.Second)
	if got := len(nd.rec.Of(event.KindAdvertReceived)) - before; got < 4 {
		t.Errorf("keepwatch accepted %d AH adverts in 6s from keepalived's master, want at least 4", got)
	}
	if n := len(nd.rec.Of(event.KindAdvertDropped)); n != 0 {
		t.Errorf("keepwatch dropped %d of keepalived's AH adverts: %+v", n, nd.rec.Of(event.KindAdvertDropped))
	}
	seqAfter1 := nd.inst.ms[0].ahSeqLocked()

	// 2. keepwatch master, keepalived backup.
	if err := ka.proc.Stop(); err != nil {
		t.Fatal(err)
	}
	nd.waitState(t, vrrp.StateMaster, 5*time.Second)
	if seq := nd.inst.ms[0].ahSeqLocked(); seq <= seqAfter1 {
		t.Errorf("keepwatch's sequence counter %d did not continue above keepalived's %d", seq, seqAfter1)
	}
	ka = startKeepalivedAH(t, kaNode, dir, "backup", "BACKUP", 50, ahAuth(pass))
	waitFor(t, 10*time.Second, "keepalived backup", func() bool { return strings.Contains(ka.log.String(), "Entering BACKUP STATE") })
	stays(t, nd, vrrp.StateMaster, ka, 7*time.Second)
	if l := ka.log.String(); strings.Contains(l, "IPSEC") || strings.Contains(l, "AH header") || strings.Contains(l, "auth type") {
		t.Errorf("keepalived logged an authentication error about our adverts")
	}

	// 3. A wrong password: each side drops the other's adverts.
	if err := ka.proc.Stop(); err != nil {
		t.Fatal(err)
	}
	ka = startKeepalivedAH(t, kaNode, dir, "wrongpass", "BACKUP", 50, ahAuth("s3cres"))
	// keepalived takes over after its Master_Down_Interval and sends one
	// advert; after that each of our adverts, refused or not, pushes its
	// advert timer back (keepalived 2.2.7, seen with tcpdump), so one is
	// what there is to count.
	waitFor(t, 15*time.Second, "keepwatch auth_failure", func() bool { return drops(nd, event.DropAuth) >= 1 })
	if !strings.Contains(ka.log.String(), "IPSEC-AH : invalid IPSEC HMAC-MD5 value") {
		t.Errorf("keepalived did not log our adverts' ICV as invalid")
	}
	if got := nd.inst.Snapshot().State; got != vrrp.StateMaster {
		t.Errorf("keepwatch is %v after adverts with a wrong password, want MASTER", got)
	}

	// 4. AH on our side only.
	if err := ka.proc.Stop(); err != nil {
		t.Fatal(err)
	}
	ka = startKeepalivedAH(t, kaNode, dir, "noauth", "BACKUP", 50, "")
	waitFor(t, 15*time.Second, "keepwatch authtype_mismatch", func() bool { return drops(nd, event.DropAuthType) >= 2 })
	_ = ka

	// engine/dump tells invalid_authtype (Value above 2) from
	// authtype_mismatch by the auth type the drop carried: none here.
	for _, e := range nd.rec.Of(event.KindAdvertDropped) {
		if e.Reason == event.DropAuthType && e.Value > int64(vrrp.AuthAH) {
			t.Errorf("a plain advert counted as invalid_authtype: %+v", e)
		}
	}
}

// ahSeqLocked reads the member's AH sequence counter under the lock.
func (me *member) ahSeqLocked() uint32 {
	me.inst.mu.Lock()
	defer me.inst.mu.Unlock()
	return me.ahSeq
}

// TestKeepalivedAHUnicast: the same over unicast peers, where keepalived
// also zeroes the TTL in the ICV (a routed advert loses TTL on the way):
// keepwatch accepts keepalived's master adverts and stays BACKUP, then as
// master holds a restarted keepalived in BACKUP with no AH error.
func TestKeepalivedAHUnicast(t *testing.T) {
	nskittest.Require(t, "keepalived")
	lab := nskittest.New(t, "kahu", 2, "keepalived")
	kaNode, us := lab.Node(1), lab.Node(2)
	dir := t.TempDir()
	const pass = "s3cret"
	unicast := fmt.Sprintf("  unicast_src_ip %s\n  unicast_peer {\n    %s\n  }\n", kaNode.IPv4.Addr(), us.IPv4.Addr())

	ka := startKeepalivedAH(t, kaNode, dir, "umaster", "MASTER", 200, ahAuth(pass)+unicast)
	nd := startAHNode(t, us, 100, pass, kaNode.IPv4.Addr())
	waitFor(t, 15*time.Second, "keepalived master", func() bool { return strings.Contains(ka.log.String(), "Entering MASTER STATE") })
	nd.waitState(t, vrrp.StateBackup, 10*time.Second)
	before := len(nd.rec.Of(event.KindAdvertReceived))
	stays(t, nd, vrrp.StateBackup, nil, 5*time.Second)
	if got := len(nd.rec.Of(event.KindAdvertReceived)) - before; got < 3 {
		t.Errorf("keepwatch accepted %d unicast AH adverts in 5s, want at least 3", got)
	}
	if n := len(nd.rec.Of(event.KindAdvertDropped)); n != 0 {
		t.Errorf("keepwatch dropped %d of keepalived's unicast AH adverts", n)
	}

	if err := ka.proc.Stop(); err != nil {
		t.Fatal(err)
	}
	nd.waitState(t, vrrp.StateMaster, 5*time.Second)
	ka = startKeepalivedAH(t, kaNode, dir, "ubackup", "BACKUP", 50, ahAuth(pass)+unicast)
	waitFor(t, 10*time.Second, "keepalived backup", func() bool { return strings.Contains(ka.log.String(), "Entering BACKUP STATE") })
	stays(t, nd, vrrp.StateMaster, ka, 6*time.Second)
	if strings.Contains(ka.log.String(), "IPSEC") {
		t.Errorf("keepalived logged an AH error about our unicast adverts")
	}
}
