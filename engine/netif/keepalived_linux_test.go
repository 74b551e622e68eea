package netif_test

import (
	"bytes"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/keepwatch/keepwatch/engine/netif"
	"github.com/keepwatch/keepwatch/engine/netif/nskit/nskittest"
)

// TestReceiveFromKeepalived runs the real keepalived (Debian 2.2.7) as
// master of an IPv4 and an IPv6 VRRPv3 instance in one namespace and
// receives its adverts with netif's sockets in the other: the receive path
// against the real peer, down to the priority-0 advert it sends on SIGTERM.
func TestReceiveFromKeepalived(t *testing.T) {
	t.Parallel()
	l := nskittest.New(t, "ka", 2, "keepalived")
	a, b := l.Node(1), l.Node(2)

	dir := t.TempDir()
	cfg := fmt.Sprintf(`global_defs {
	router_id kw_netif_test
	vrrp_version 3
	vrrp_garp_master_delay 0
}
vrrp_instance VI4 {
	state MASTER
	interface %[1]s
	virtual_router_id 42
	priority 150
	advert_int 0.1
	virtual_ipaddress {
		192.0.2.100/32
	}
}
vrrp_instance VI6 {
	state MASTER
	interface %[1]s
	virtual_router_id 43
	priority 150
	advert_int 0.1
	virtual_ipaddress {
		2001:db8::100/128
	}
}
`, a.Link)
	path := filepath.Join(dir, "keepalived.conf")
	if err := os.WriteFile(path, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}

	c4 := listen(t, b, false, netif.Config{})
	c6 := listen(t, b, true, netif.Config{})
	v4, v6 := newCollector(), newCollector()
	c4.Handle(42, v4)
	c6.Handle(43, v6)

	log := &bytes.Buffer{}
	cmd := a.Command("keepalived", "-n", "-l", "-D", "-P", "-f", path,
		"-p", filepath.Join(dir, "keepalived.pid"), "-r", filepath.Join(dir, "vrrp.pid"))
	cmd.Stdout, cmd.Stderr = log, log
	ka, err := a.Start(cmd)
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if t.Failed() {
			t.Logf("keepalived output:\n%s", log)
		}
	}()

	// Adverts as master: VRRPv3, priority 150, interval 10 cs, TTL/hop
	// limit 255, TOS/traffic class 0xc0 (reference §2.1, §2.2).
	g4 := v4.next(t)
	wantSrc4 := a.IPv4.Addr()
	if g4.Src != wantSrc4 || g4.Dst != netif.GroupIPv4 || g4.TTL != 255 || g4.TOS != 0xc0 {
		t.Errorf("IPv4 advert metadata %+v", g4)
	}
	want4 := []byte{0x31, 42, 150, 1, 0x00, 10}
	if len(g4.VRRP) != 12 || !bytes.Equal(g4.VRRP[:6], want4) || !bytes.Equal(g4.VRRP[8:], []byte{192, 0, 2, 100}) {
		t.Errorf("IPv4 advert % x, want % x .. .. c0 00 02 64", g4.VRRP, want4)
	}
	// keepalived's v3 IPv4 checksum covers the pseudo-header (reference §2.2).
	if got := checksum(append(append(wantSrc4.AsSlice(), netif.GroupIPv4.AsSlice()...), 0, netif.ProtocolVRRP, 0, byte(len(g4.VRRP))), g4.VRRP); got != 0 {
		t.Errorf("IPv4 advert checksum does not verify over the pseudo-header (residue %#04x)", got)
	}

	g6 := v6.next(t)
	if g6.Src != a.LinkLocal || g6.Dst != netif.GroupIPv6 || g6.TTL != 255 || g6.TOS != 0xc0 {
		t.Errorf("IPv6 advert metadata %+v (link-local %s)", g6, a.LinkLocal)
	}
	want6 := append([]byte{0x31, 43, 150, 1, 0x00, 10, 0, 0}, netip.MustParseAddr("2001:db8::100").AsSlice()...)
	if len(g6.VRRP) != len(want6) || !bytes.Equal(g6.VRRP[:6], want6[:6]) || !bytes.Equal(g6.VRRP[8:], want6[8:]) {
		t.Errorf("IPv6 advert % x, want % x", g6.VRRP, want6)
	}
	pseudo6 := append(append(a.LinkLocal.AsSlice(), netif.GroupIPv6.AsSlice()...), 0, 0, 0, byte(len(g6.VRRP)), 0, 0, 0, netif.ProtocolVRRP)
	if got := checksum(pseudo6, g6.VRRP); got != 0 {
		t.Errorf("IPv6 advert checksum does not verify (residue %#04x)", got)
	}

	// SIGTERM: keepalived resigns with a priority-0 advert on each instance.
	child := readPid(t, filepath.Join(dir, "vrrp.pid"))
	if err := ka.Stop(); err != nil {
		t.Fatal(err)
	}
	waitGone(t, child)
	for _, c := range []*collector{v4, v6} {
		deadline := time.After(3 * time.Second)
		for resigned := false; !resigned; {
			select {
			case g := <-c.ch:
				resigned = g.VRRP[2] == 0
			case <-deadline:
				t.Fatal("no priority-0 advert after SIGTERM")
			}
		}
	}
	if s := c4.Stats(); s.Received < 2 || s.Short != 0 {
		t.Errorf("IPv4 socket stats %+v", s)
	}
}

// readPid reads a pid file keepalived wrote.
func readPid(t *testing.T, path string) int {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 1 {
		t.Fatalf("pid file %s: %q", path, b)
	}
	return pid
}

// waitGone waits for keepalived's child process (which the parent stops on
// SIGTERM) to exit; if it does not, it is killed, by pid, and the test fails.
func waitGone(t *testing.T, pid int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		if err := unix.Kill(pid, 0); errors.Is(err, unix.ESRCH) {
			return
		}
		if time.Now().After(deadline) {
			_ = unix.Kill(pid, unix.SIGKILL)
			t.Fatalf("keepalived child %d still running after its parent stopped", pid)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestKeepalivedHearsUs is the send path against the real peer: adverts
// sent through netif's sockets at a higher priority keep keepalived (as
// BACKUP) from taking over; once they stop, it becomes MASTER and adds its
// VIPs. Both families.
func TestKeepalivedHearsUs(t *testing.T) {
	t.Parallel()
	l := nskittest.New(t, "kahear", 2, "keepalived")
	a, b := l.Node(1), l.Node(2)
	vip4 := netip.MustParseAddr("192.0.2.100")
	vip6 := netip.MustParseAddr("2001:db8::100")

	dir := t.TempDir()
	cfg := fmt.Sprintf(`global_defs {
	router_id kw_netif_hear
	vrrp_version 3
}
vrrp_instance VI4 {
	state BACKUP
	interface %[1]s
	virtual_router_id 42
	priority 100
	advert_int 0.1
	virtual_ipaddress {
		%[2]s/32
	}
}
vrrp_instance VI6 {
	state BACKUP
	interface %[1]s
	virtual_router_id 43
	priority 100
	advert_int 0.1
	virtual_ipaddress {
		%[3]s/128
	}
}
`, a.Link, vip4, vip6)
	path := filepath.Join(dir, "keepalived.conf")
	if err := os.WriteFile(path, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	c4 := listen(t, b, false, netif.Config{})
	c6 := listen(t, b, true, netif.Config{})
	src4 := b.IPv4.Addr()
	pkt4 := ip4(src4, netif.GroupIPv4, 1, vrrp3(42, 200, src4, netif.GroupIPv4, vip4))
	msg6 := vrrp3(43, 200, b.LinkLocal, netif.GroupIPv6, vip6)
	msg6[6], msg6[7] = 0, 0 // the kernel fills it in

	stop := make(chan struct{})
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		tick := time.NewTicker(50 * time.Millisecond)
		defer tick.Stop()
		for {
			if err := c4.WriteIPv4(pkt4); err != nil {
				t.Error(err)
				return
			}
			if err := c6.WriteIPv6(msg6, netip.Addr{}, netif.GroupIPv6, 0); err != nil {
				t.Error(err)
				return
			}
			select {
			case <-stop:
				return
			case <-tick.C:
			}
		}
	}()

	log := &bytes.Buffer{}
	cmd := a.Command("keepalived", "-n", "-l", "-D", "-P", "-f", path,
		"-p", filepath.Join(dir, "keepalived.pid"), "-r", filepath.Join(dir, "vrrp.pid"))
	cmd.Stdout, cmd.Stderr = log, log
	ka, err := a.Start(cmd)
	if err != nil {
		close(stop)
		t.Fatal(err)
	}
	defer func() {
		if t.Failed() {
			t.Logf("keepalived output:\n%s", log)
		}
	}()
	s := openSystem(t, a)
	has := func(vip netip.Addr) bool {
		bits := 32
		if vip.Is6() {
			bits = 128
		}
		ok, err := s.HasAddress(netif.Address{Prefix: netip.PrefixFrom(vip, bits), Dev: a.Link})
		if err != nil {
			t.Fatal(err)
		}
		return ok
	}
	// Master_Down_Interval is about 0.3 s here: 1.5 s of silence from
	// keepalived's side means it hears us.
	time.Sleep(1500 * time.Millisecond)
	if has(vip4) || has(vip6) {
		close(stop)
		t.Fatalf("keepalived took over while we advertised priority 200")
	}
	close(stop)
	<-stopped
	deadline := time.Now().Add(5 * time.Second)
	for !has(vip4) || !has(vip6) {
		if time.Now().After(deadline) {
			t.Fatalf("keepalived did not become master after our adverts stopped (v4 %t, v6 %t)", has(vip4), has(vip6))
		}
		time.Sleep(20 * time.Millisecond)
	}
	child := readPid(t, filepath.Join(dir, "vrrp.pid"))
	if err := ka.Stop(); err != nil {
		t.Fatal(err)
	}
	waitGone(t, child)
}
