package receive_test

import (
	"bytes"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/keepwatch/keepwatch/engine/netif/nskit"
	"github.com/keepwatch/keepwatch/engine/netif/nskit/nskittest"
	"github.com/keepwatch/keepwatch/engine/vrrp"
	"github.com/keepwatch/keepwatch/engine/vrrp/receive"
	"github.com/keepwatch/keepwatch/engine/vrrp/vrrptest"
)

// interopCase is one keepalived instance configuration, exercised both ways.
type interopCase struct {
	name     string
	version  vrrp.Version
	ipv6     bool
	unicast  bool
	pass     string // v2 auth_pass; keepalived truncates it to 8 bytes
	interval time.Duration
	vrid     uint8
}

// TestKeepalivedInterop runs the Debian keepalived 2.2.7 on node 1 of a
// namespace lab, as BACKUP at priority 100, and this codec on node 2:
//
//  1. adverts we encode (priority 200, IP header ours for IPv4, checksum
//     ours for both families) hold keepalived in BACKUP for well over its
//     Master_Down_Interval, so it accepted every one;
//  2. once we stop, keepalived takes over; each advert it sends, captured
//     on node 2, passes Validate with the instance's settings and decodes
//     to what keepalived.conf says, through to its priority-0 resignation;
//  3. the same adverts with one checksum bit flipped do not move keepalived
//     out of MASTER (it drops them, so the check in 1 was a real one).
func TestKeepalivedInterop(t *testing.T) {
	nskittest.Require(t, "keepalived", "tcpdump")
	for _, tc := range []interopCase{
		{name: "v2pass", version: vrrp.Version2, pass: "secret123", interval: time.Second, vrid: 21},
		{name: "v3mcast", version: vrrp.Version3, interval: 100 * time.Millisecond, vrid: 22},
		{name: "v3ucast", version: vrrp.Version3, unicast: true, interval: 100 * time.Millisecond, vrid: 23},
		{name: "v3ipv6", version: vrrp.Version3, ipv6: true, interval: 100 * time.Millisecond, vrid: 24},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			interop(t, tc)
		})
	}
}

func interop(t *testing.T, tc interopCase) {
	lab := nskittest.New(t, "vi"+tc.name, 2, "keepalived", "tcpdump")
	ka, us := lab.Node(1), lab.Node(2)
	dir := t.TempDir()

	vip := netip.MustParseAddr("192.0.2.200")
	vipLine := "192.0.2.200/24"
	kaSrc, usSrc, dst := ka.IPv4.Addr(), us.IPv4.Addr(), vrrp.GroupIPv4
	if tc.ipv6 {
		vip, vipLine = netip.MustParseAddr("2001:db8::200"), "2001:db8::200/64"
		kaSrc, usSrc, dst = ka.LinkLocal, us.LinkLocal, vrrp.GroupIPv6
	}
	if tc.unicast {
		dst = ka.IPv4.Addr()
	}

	// keepalived's side.
	var conf strings.Builder
	fmt.Fprintf(&conf, "global_defs {\n  router_id kw%s\n}\nvrrp_instance VI_1 {\n", tc.name)
	fmt.Fprintf(&conf, "  state BACKUP\n  interface %s\n  virtual_router_id %d\n  priority 100\n", ka.Link, tc.vrid)
	fmt.Fprintf(&conf, "  advert_int %g\n  version %d\n", tc.interval.Seconds(), tc.version)
	if tc.unicast {
		fmt.Fprintf(&conf, "  unicast_src_ip %s\n  unicast_peer {\n    %s\n  }\n", kaSrc, usSrc)
	}
	if tc.pass != "" {
		fmt.Fprintf(&conf, "  authentication {\n    auth_type PASS\n    auth_pass %s\n  }\n", tc.pass)
	}
	fmt.Fprintf(&conf, "  virtual_ipaddress {\n    %s\n  }\n}\n", vipLine)
	cfg := filepath.Join(dir, "keepalived.conf")
	if err := os.WriteFile(cfg, []byte(conf.String()), 0o644); err != nil {
		t.Fatal(err)
	}

	// Our side: the instance as the receive checks see it, and the adverts.
	in := receive.Instance{
		Family: vrrp.IPv4, Version: tc.version, VRID: tc.vrid, Interval: tc.interval,
		VIPs: []netip.Addr{vip},
	}
	if tc.ipv6 {
		in.Family = vrrp.IPv6
	}
	if tc.pass != "" {
		in.AuthType, in.AuthData = vrrp.AuthPass, vrrp.PassAuthData(tc.pass)
	}
	if tc.unicast {
		in.Peers, in.CheckUnicastSrc = []receive.Peer{{Addr: kaSrc}}, true
	}
	spec := vrrptest.Spec{
		Version: tc.version, VRID: tc.vrid, Priority: 200, Interval: tc.interval,
		AuthPass: tc.pass, VIPs: []netip.Addr{vip}, Src: usSrc, Dst: dst, ID: 1,
	}
	if tc.unicast {
		spec.Dst = kaSrc
	}
	good := spec.Packet(t)
	bad := bytes.Clone(good)
	if tc.ipv6 {
		bad[7] ^= 0x01
	} else {
		bad[vrrp.IPv4HeaderLen+7] ^= 0x01
	}
	tx := newSender(t, us, tc.ipv6, spec.Dst)

	capture, err := us.Capture(filepath.Join(dir, "ka.pcap"), "ip proto 112 or ip6 proto 112")
	if err != nil {
		t.Fatal(err)
	}
	log := &nskittest.Buffer{}
	cmd := ka.Command("keepalived", "-f", cfg, "-P", "-n", "-l", "-D", "-G",
		"-p", filepath.Join(dir, "ka.pid"), "-r", filepath.Join(dir, "vrrp.pid"), "-c", filepath.Join(dir, "chk.pid"))
	cmd.Stdout, cmd.Stderr = log, log
	proc, err := ka.Start(cmd)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("keepalived.conf:\n%s\nkeepalived log:\n%s", conf.String(), log.String())
		}
	})

	// 1. Our adverts hold keepalived in BACKUP.
	// Master_Down_Interval is 3 × interval + skew (< 1 interval); a phase
	// lasts comfortably longer.
	downInterval := 4 * tc.interval
	phase := downInterval + 2*tc.interval
	tx.sendFor(t, good, tc.interval, phase)
	if hasAddr(t, ka, vip) {
		// On a loaded machine keepalived may have timed out once before our
		// first adverts reached it; if it accepts ours it yields again.
		tx.sendFor(t, good, tc.interval, phase)
		if hasAddr(t, ka, vip) {
			t.Fatalf("keepalived took the VIP while we advertised priority 200: it dropped our adverts")
		}
	}

	// 2. Silence: keepalived takes over; its adverts pass our checks.
	waitAddr(t, ka, vip, true, phase+2*time.Second)
	logGood := strings.ToLower(log.String())
	for _, bad := range []string{"checksum", "invalid", "wrong", "mismatch", "too short", "too long"} {
		if strings.Contains(logGood, bad) {
			t.Errorf("keepalived logged %q about our adverts", bad)
		}
	}

	// 3. Corrupted adverts do not move it.
	tx.sendFor(t, bad, tc.interval, phase)
	if !hasAddr(t, ka, vip) {
		t.Errorf("keepalived left MASTER on adverts with a bad checksum")
	}
	// IPv4: keepalived checks and says so; IPv6: the kernel drops them
	// (IPV6_CHECKSUM) before keepalived sees them.
	if want := fmt.Sprintf("Invalid VRRPv%d checksum", tc.version); !tc.ipv6 && !strings.Contains(log.String(), want) {
		t.Errorf("keepalived did not log %q for the corrupted adverts", want)
	}

	if err := proc.Stop(); err != nil {
		t.Fatal(err)
	}
	if err := capture.Stop(); err != nil {
		t.Fatal(err)
	}

	var adv vrrp.Advertisement
	var fromKA []vrrptest.Frame
	for _, fr := range vrrptest.ReadFile(t, capture.Path) {
		ip := frameIP(&fr)
		if ip.Src == kaSrc {
			fromKA = append(fromKA, fr)
		}
	}
	if len(fromKA) < 3 {
		t.Fatalf("captured %d adverts from keepalived, want its takeover, some adverts and its resignation", len(fromKA))
	}
	for i, fr := range fromKA {
		ip := frameIP(&fr)
		r := receive.Validate(fr.Msg, ip, &in, &adv)
		last := i == len(fromKA)-1
		if r != (receive.Result{PriorityZero: last}) {
			t.Errorf("keepalived advert %d (%x): %+v", i, fr.Msg, r)
			continue
		}
		wantPrio := uint8(100)
		if last {
			wantPrio = 0
		}
		if adv.Priority != wantPrio || adv.Interval() != tc.interval || adv.VRID != tc.vrid {
			t.Errorf("keepalived advert %d: priority %d interval %v vrid %d", i, adv.Priority, adv.Interval(), adv.VRID)
		}
		// What keepalived sent, we would have sent byte for byte.
		mine := vrrptest.Spec{Version: tc.version, VRID: tc.vrid, Priority: wantPrio, Interval: tc.interval,
			AuthPass: tc.pass, VIPs: []netip.Addr{vip}, Src: kaSrc, Dst: ip.Dst}
		if got := mine.Message(t); !bytes.Equal(got, fr.Msg) {
			t.Errorf("keepalived advert %d:\n sent %x\n ours %x", i, fr.Msg, got)
		}
	}
}

// sender writes raw VRRP packets from a node: IPv4 with IP_HDRINCL (our
// header), IPv6 through a raw socket whose checksum we compute ourselves.
type sender struct {
	fd int
	to unix.Sockaddr
}

func newSender(t *testing.T, n *nskit.Node, ipv6 bool, dst netip.Addr) *sender {
	t.Helper()
	s := &sender{fd: -1}
	err := n.Do(func() error {
		ifi, err := net.InterfaceByName(n.Link)
		if err != nil {
			return err
		}
		if ipv6 {
			fd, err := unix.Socket(unix.AF_INET6, unix.SOCK_RAW|unix.SOCK_CLOEXEC, vrrp.ProtocolVRRP)
			if err != nil {
				return err
			}
			s.fd = fd
			for _, o := range [][2]int{
				{unix.IPV6_MULTICAST_HOPS, vrrp.TTL}, {unix.IPV6_UNICAST_HOPS, vrrp.TTL},
				{unix.IPV6_TCLASS, vrrp.TOS}, {unix.IPV6_MULTICAST_IF, ifi.Index},
			} {
				if err := unix.SetsockoptInt(fd, unix.IPPROTO_IPV6, o[0], o[1]); err != nil {
					return err
				}
			}
			if err := unix.Bind(fd, &unix.SockaddrInet6{Addr: n.LinkLocal.As16(), ZoneId: uint32(ifi.Index)}); err != nil {
				return err
			}
			s.to = &unix.SockaddrInet6{Addr: dst.As16(), ZoneId: uint32(ifi.Index)}
			return nil
		}
		fd, err := unix.Socket(unix.AF_INET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.IPPROTO_RAW)
		if err != nil {
			return err
		}
		s.fd = fd
		if err := unix.SetsockoptString(fd, unix.SOL_SOCKET, unix.SO_BINDTODEVICE, n.Link); err != nil {
			return err
		}
		if err := unix.SetsockoptIPMreqn(fd, unix.IPPROTO_IP, unix.IP_MULTICAST_IF,
			&unix.IPMreqn{Ifindex: int32(ifi.Index)}); err != nil {
			return err
		}
		s.to = &unix.SockaddrInet4{Addr: dst.As4()}
		return nil
	})
	if s.fd >= 0 {
		t.Cleanup(func() { unix.Close(s.fd) })
	}
	if err != nil {
		t.Fatalf("raw socket in %s: %v", n.NS, err)
	}
	return s
}

// sendFor sends b every interval for d.
func (s *sender) sendFor(t *testing.T, b []byte, interval, d time.Duration) {
	t.Helper()
	for end := time.Now().Add(d); time.Now().Before(end); time.Sleep(interval) {
		if err := unix.Sendto(s.fd, b, 0, s.to); err != nil {
			t.Fatalf("sendto: %v", err)
		}
	}
}

func hasAddr(t *testing.T, n *nskit.Node, a netip.Addr) bool {
	t.Helper()
	link, err := n.Handle().LinkByName(n.Link)
	if err != nil {
		t.Fatal(err)
	}
	addrs, err := n.Handle().AddrList(link, unix.AF_UNSPEC)
	if err != nil {
		t.Fatal(err)
	}
	for _, x := range addrs {
		if y, ok := netip.AddrFromSlice(x.IP); ok && y.Unmap() == a {
			return true
		}
	}
	return false
}

func waitAddr(t *testing.T, n *nskit.Node, a netip.Addr, want bool, within time.Duration) {
	t.Helper()
	for end := time.Now().Add(within); time.Now().Before(end); time.Sleep(20 * time.Millisecond) {
		if hasAddr(t, n, a) == want {
			return
		}
	}
	t.Fatalf("%v on %s: present=%v not reached within %v", a, n.NS, want, within)
}
