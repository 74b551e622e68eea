package check

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"os/exec"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/vishvananda/netns"

	"github.com/keepwatch/keepwatch/engine/config"
)

func pingTarget(addr string, timeout time.Duration) *Target {
	return &Target{Type: config.PingCheck, Addr: netip.AddrPortFrom(netip.MustParseAddr(addr), 0), Timeout: timeout}
}

func TestPingLoopback(t *testing.T) {
	probe(t, ProbePing, pingTarget("127.0.0.1", time.Second), true, "")
	probe(t, ProbePing, pingTarget("::1", time.Second), true, "")
}

// run runs an ip(8) command and fails the test on error.
func run(t *testing.T, args ...string) {
	t.Helper()
	if out, err := exec.Command(args[0], args[1:]...).CombinedOutput(); err != nil {
		t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// inNetns runs f on a thread switched into the named namespace; sockets f
// opens belong to it.
func inNetns(t *testing.T, name string, f func()) {
	t.Helper()
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	orig, err := netns.Get()
	if err != nil {
		t.Fatal(err)
	}
	defer orig.Close()
	ns, err := netns.GetFromName(name)
	if err != nil {
		t.Fatal(err)
	}
	defer ns.Close()
	if err := netns.Set(ns); err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := netns.Set(orig); err != nil {
			panic(fmt.Sprintf("cannot return to the original netns: %v", err))
		}
	}()
	f()
}

// TestPingNetns pings inside a network namespace made for the test (raw
// ICMP sockets: a new namespace's ping_group_range admits nobody): a local
// address answers, a silent neighbour on a veth link times out, and an
// unreachable route fails at once.
func TestPingNetns(t *testing.T) {
	requireRoot(t)
	name := fmt.Sprintf("kwping%06x", rand.Uint32()&0xffffff)
	run(t, "ip", "netns", "add", name)
	t.Cleanup(func() { exec.Command("ip", "netns", "del", name).Run() })
	ip := func(args ...string) { run(t, append([]string{"ip", "-n", name}, args...)...) }
	ip("link", "set", "lo", "up")
	// Both ends of a veth pair in the namespace: 192.0.2.2 and 2001:db8::2
	// are on the link but nobody holds them, so neighbour discovery fails
	// silently.
	ip("link", "add", "kwa0", "type", "veth", "peer", "name", "kwb0")
	ip("addr", "add", "192.0.2.1/24", "dev", "kwa0")
	ip("-6", "addr", "add", "2001:db8::1/64", "dev", "kwa0", "nodad")
	ip("link", "set", "kwa0", "up")
	ip("link", "set", "kwb0", "up")
	ip("route", "add", "unreachable", "198.51.100.0/24")
	ip("-6", "route", "add", "unreachable", "2001:db8:1::/64")

	for _, tc := range []struct {
		name, addr string
		ok         bool
		reason     string
		mod        func(*Target)
	}{
		{"up/ipv4", "192.0.2.1", true, "", nil},
		{"up/ipv6", "2001:db8::1", true, "", nil},
		{"up/bindto and fwmark", "192.0.2.1", true, "", func(t *Target) {
			t.Bind, t.FWMark = netip.MustParseAddrPort("192.0.2.1:0"), 7
		}},
		{"down/bind_if missing", "192.0.2.1", false, "connect", func(t *Target) { t.BindIf = "kwnone0" }},
		{"slow/ipv4 no answer", "192.0.2.2", false, "timeout", nil},
		{"slow/ipv6 no answer", "2001:db8::2", false, "timeout", nil},
		{"down/ipv4 unreachable", "198.51.100.1", false, "unreachable", nil},
		{"down/ipv6 unreachable", "2001:db8:1::1", false, "unreachable", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tg := pingTarget(tc.addr, 300*time.Millisecond)
			if tc.mod != nil {
				tc.mod(tg)
			}
			inNetns(t, name, func() { probe(t, ProbePing, tg, tc.ok, tc.reason) })
		})
	}
}
