package agent_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/keepwatch/keepwatch/engine/agent"
	"github.com/keepwatch/keepwatch/engine/agent/agenttest"
	"github.com/keepwatch/keepwatch/engine/config"
	"github.com/keepwatch/keepwatch/engine/event"
	"github.com/keepwatch/keepwatch/engine/event/eventtest"
	"github.com/keepwatch/keepwatch/engine/netif"
	"github.com/keepwatch/keepwatch/engine/netif/netiftest"
	"github.com/keepwatch/keepwatch/engine/vrrp"
	"github.com/keepwatch/keepwatch/metrics"
)

// These tests run the whole agent (config file, reload by difference,
// instances, trackers, sockets) over agenttest's fake platform: no root,
// milliseconds each. The same behaviours over real sockets between network
// namespaces are in reload_linux_test.go.

var (
	self4 = netip.MustParseAddr("192.0.2.2")
	peer4 = netip.MustParseAddr("192.0.2.1")
	ll6   = netip.MustParseAddr("fe80::2")
)

// inst is one vrrp_instance of a test config.
type inst struct {
	name     string
	ifname   string
	vrid     int
	prio     int
	interval string // advert_int
	vips     []string
	extra    string // more lines inside the block
	version  int    // 3 when 0
	state    string // BACKUP when empty
}

func (in inst) String() string {
	if in.ifname == "" {
		in.ifname = "eth0"
	}
	if in.interval == "" {
		in.interval = "0.02"
	}
	if in.version == 0 {
		in.version = 3
	}
	if in.state == "" {
		in.state = "BACKUP"
	}
	var b strings.Builder
	fmt.Fprintf(&b, "vrrp_instance %s {\n  state %s\n  interface %s\n  virtual_router_id %d\n  priority %d\n  advert_int %s\n  version %d\n",
		in.name, in.state, in.ifname, in.vrid, in.prio, in.interval, in.version)
	b.WriteString(in.extra)
	b.WriteString("  virtual_ipaddress {\n")
	for _, v := range in.vips {
		fmt.Fprintf(&b, "    %s\n", v)
	}
	b.WriteString("  }\n}\n")
	return b.String()
}

func conf(parts ...fmt.Stringer) string {
	var b strings.Builder
	b.WriteString("global_defs {\n  router_id test\n}\n")
	for _, p := range parts {
		b.WriteString(p.String())
	}
	return b.String()
}

type raw string

func (r raw) String() string { return string(r) }

type node struct {
	t    *testing.T
	path string
	a    *agent.Agent
	plat *agenttest.Platform
	rec  *eventtest.Recorder
	done chan error
	stop context.CancelFunc
}

// start runs an agent on cfg over a fake platform with eth0 and eth1.
func start(t *testing.T, cfg string, setup ...func(*agenttest.Platform)) *node {
	t.Helper()
	n := &node{t: t, path: filepath.Join(t.TempDir(), "keepalived.conf"), plat: agenttest.New(), rec: &eventtest.Recorder{}, done: make(chan error, 1)}
	n.plat.AddLink("eth0", self4, ll6)
	n.plat.AddLink("eth1", netip.MustParseAddr("198.51.100.2"), netip.MustParseAddr("fe80::1:2"))
	for _, f := range setup {
		f(n.plat)
	}
	n.write(cfg)
	n.a = agent.New(agent.Options{Path: n.path, Sink: n.rec, Platform: n.plat, RetryInterval: time.Hour})
	ctx, cancel := context.WithCancel(context.Background())
	n.stop = cancel
	go func() { n.done <- n.a.Run(ctx) }()
	t.Cleanup(func() { n.shutdown() })
	n.waitFor(2*time.Second, "agent ready", func() bool {
		select {
		case err := <-n.done:
			t.Fatalf("agent stopped: %v", err)
		default:
		}
		return n.a.Ready()
	})
	return n
}

func (n *node) write(cfg string) {
	n.t.Helper()
	if err := os.WriteFile(n.path, []byte(cfg), 0o644); err != nil {
		n.t.Fatal(err)
	}
}

func (n *node) shutdown() {
	if n.stop == nil {
		return
	}
	n.stop()
	n.stop = nil
	select {
	case err := <-n.done:
		if err != nil {
			n.t.Errorf("Run: %v", err)
		}
	case <-time.After(5 * time.Second):
		n.t.Error("agent did not stop within 5 s")
	}
}

func (n *node) waitFor(within time.Duration, what string, cond func() bool) {
	n.t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			n.t.Fatalf("after %v: %s", within, what)
		}
		time.Sleep(time.Millisecond)
	}
}

func (n *node) status(name string) agent.InstanceStatus {
	for _, s := range n.a.Status() {
		if s.Name == name {
			return s
		}
	}
	n.t.Fatalf("no instance %s in %+v", name, n.a.Status())
	return agent.InstanceStatus{}
}

func (n *node) waitState(name string, st vrrp.State) {
	n.t.Helper()
	n.waitFor(2*time.Second, name+" "+st.String(), func() bool {
		for _, s := range n.a.Status() {
			if s.Name == name && s.State == st {
				return true
			}
		}
		return false
	})
}

// vips is what the fake platform holds, sorted.
func (n *node) vips() []string {
	var out []string
	for _, a := range n.plat.Net.Addresses() {
		out = append(out, a.Prefix.String())
	}
	slices.Sort(out)
	return out
}

func (n *node) transitions(name string) []string {
	var out []string
	for _, e := range n.rec.Of(event.KindTransition) {
		if e.Instance == name {
			out = append(out, fmt.Sprintf("%v->%v %s", e.From, e.To, e.Reason))
		}
	}
	return out
}

func (n *node) reload(cfg string) error {
	n.t.Helper()
	n.write(cfg)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return n.a.ReloadContext(ctx)
}

// peer sends adverts for vrid at prio from peer4 until the test ends.
func (n *node) peer(vrid, prio int, interval time.Duration, vips ...string) {
	n.t.Helper()
	a := vrrp.Advertisement{Version: vrrp.Version3, Type: vrrp.TypeAdvertisement, VRID: uint8(vrid), Priority: uint8(prio), Family: vrrp.IPv4}
	for _, v := range vips {
		a.Addresses = append(a.Addresses, netip.MustParsePrefix(v).Addr())
	}
	if err := a.SetInterval(interval); err != nil {
		n.t.Fatal(err)
	}
	msg, err := a.AppendWithChecksum(nil, peer4, netif.GroupIPv4, vrrp.ChecksumPseudoHeader)
	if err != nil {
		n.t.Fatal(err)
	}
	ih := vrrp.NewIPv4Header(peer4, netif.GroupIPv4, 1, 255, len(msg))
	h, err := ih.AppendBinary(nil)
	if err != nil {
		n.t.Fatal(err)
	}
	pkt := &netif.Packet{Src: peer4, Dst: netif.GroupIPv4, TTL: 255, IPHeader: h, VRRP: msg}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	n.t.Cleanup(func() { cancel(); <-done })
	go func() {
		defer close(done)
		tk := time.NewTicker(interval)
		defer tk.Stop()
		for {
			if s := n.plat.Socket("eth0", false); s != nil {
				s.Deliver(pkt)
			}
			select {
			case <-ctx.Done():
				return
			case <-tk.C:
			}
		}
	}()
}

var vi1 = inst{name: "VI_1", vrid: 51, prio: 200, vips: []string{"192.0.2.100/24"}}

// master starts VI_1 alone and waits until it is master with its VIP.
func master(t *testing.T, in inst, more ...fmt.Stringer) *node {
	n := start(t, conf(append([]fmt.Stringer{in}, more...)...))
	n.waitState(in.name, vrrp.StateMaster)
	return n
}

// assertStayed checks that VI_1 made no transition after becoming master
// and never removed a VIP it kept.
func (n *node) assertStayed(name string, kept ...string) {
	n.t.Helper()
	want := []string{"init->backup startup", "backup->master master_down"}
	if got := n.transitions(name); !slices.Equal(got, want) {
		n.t.Errorf("transitions of %s: %v, want %v (no state change on reload)", name, got, want)
	}
	for _, k := range kept {
		if rm := n.plat.Grep("remove " + k); len(rm) > 0 {
			n.t.Errorf("kept VIP %s was removed: %v", k, rm)
		}
	}
	if s := n.status(name); s.State != vrrp.StateMaster || !s.VIPsHeld {
		n.t.Errorf("%s: %v holding %v, want MASTER holding its VIPs", name, s.State, s.VIPsHeld)
	}
}

// TestReloadInPlace: each change that is not one of identity is applied to
// the running master without a state change (issue 9 §1).
func TestReloadInPlace(t *testing.T) {
	t.Parallel()
	unicast := func(peers ...string) inst {
		in := vi1
		in.extra = "  unicast_peer {\n    " + strings.Join(peers, "\n    ") + "\n  }\n"
		return in
	}
	cases := []struct {
		name   string
		before *inst
		after  inst
		more   []fmt.Stringer
		check  func(t *testing.T, n *node)
	}{
		{name: "priority 200 to 180", after: func() inst { in := vi1; in.prio = 180; return in }(),
			check: func(t *testing.T, n *node) {
				if s := n.status("VI_1"); s.BasePriority != 180 || s.Priority != 180 {
					t.Errorf("priority base %d effective %d, want 180", s.BasePriority, s.Priority)
				}
				n.waitFor(time.Second, "an advert at 180", func() bool {
					return len(n.plat.Grep("advert eth0 vrid 51 prio 180")) > 0
				})
			}},
		{name: "advert interval", after: func() inst { in := vi1; in.interval = "0.05"; return in }(),
			check: func(t *testing.T, n *node) {
				if s := n.status("VI_1"); s.AdvertInterval != 50*time.Millisecond {
					t.Errorf("advert interval %v, want 50ms", s.AdvertInterval)
				}
			}},
		{name: "VIP added", after: func() inst { in := vi1; in.vips = []string{"192.0.2.100/24", "192.0.2.101/24"}; return in }(),
			check: func(t *testing.T, n *node) {
				if got := n.vips(); !slices.Equal(got, []string{"192.0.2.100/24", "192.0.2.101/24"}) {
					t.Errorf("VIPs %v", got)
				}
				if got := n.plat.Grep("announce eth0 192.0.2.101"); len(got) == 0 {
					t.Error("the added VIP was not announced")
				}
			}},
		{name: "VIP removed", after: func() inst { in := vi1; in.vips = []string{"192.0.2.101/24"}; return in }(),
			check: func(t *testing.T, n *node) {
				if got := n.vips(); !slices.Equal(got, []string{"192.0.2.101/24"}) {
					t.Errorf("VIPs %v, want only the new one", got)
				}
			}},
		{name: "virtual route and rule", after: func() inst {
			in := vi1
			in.extra = "  virtual_routes {\n    203.0.113.0/24 via 192.0.2.1\n  }\n  virtual_rules {\n    from 192.0.2.100 table 100\n  }\n"
			return in
		}(),
			check: func(t *testing.T, n *node) {
				if len(n.plat.Net.Routes()) != 1 || len(n.plat.Net.Rules()) != 1 {
					t.Errorf("routes %v rules %v, want one each", n.plat.Net.Routes(), n.plat.Net.Rules())
				}
			}},
		{name: "authentication ignored by v3", after: func() inst {
			in := vi1
			in.extra = "  authentication {\n    auth_type PASS\n    auth_pass secret\n  }\n"
			return in
		}()},
		{name: "unicast peer list", before: func() *inst { in := unicast("192.0.2.1"); return &in }(), after: unicast("192.0.2.1", "192.0.2.3"),
			check: func(t *testing.T, n *node) {
				n.waitFor(time.Second, "an advert to the added peer", func() bool {
					for _, p := range n.plat.Socket("eth0", false).Sent() {
						if netip.AddrFrom4([4]byte(p.Packet[16:20])) == netip.MustParseAddr("192.0.2.3") {
							return true
						}
					}
					return false
				})
			}},
		{name: "tracker and weight", after: func() inst {
			in := vi1
			in.extra = "  track_interface {\n    eth1 weight -30\n  }\n"
			return in
		}(),
			check: func(t *testing.T, n *node) {
				if s := n.status("VI_1"); len(s.Trackers) != 2 {
					t.Errorf("trackers %+v, want eth0 and eth1", s.Trackers)
				}
				n.plat.SetLink("eth1", false)
				n.waitFor(time.Second, "priority 170 after eth1 went down", func() bool { return n.status("VI_1").Priority == 170 })
			}},
		{name: "notify script", after: func() inst {
			in := vi1
			in.extra = "  notify_master \"/bin/true\"\n"
			return in
		}()},
		{name: "preempt_delay and garp", after: func() inst {
			in := vi1
			in.extra = "  preempt_delay 2\n  garp_master_repeat 2\n"
			return in
		}()},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			before := vi1
			if tc.before != nil {
				before = *tc.before
			}
			n := master(t, before)
			n.peer(51, 100, 20*time.Millisecond, "192.0.2.100/24")
			time.Sleep(50 * time.Millisecond) // the master hears its backup
			if err := n.reload(conf(append([]fmt.Stringer{tc.after}, tc.more...)...)); err != nil {
				t.Fatalf("reload: %v", err)
			}
			time.Sleep(100 * time.Millisecond) // five advert intervals after
			keep := []string{}
			if slices.Contains(tc.after.vips, "192.0.2.100/24") {
				keep = append(keep, "192.0.2.100/24")
			}
			n.assertStayed("VI_1", keep...)
			if c := n.plat.Grep("listen"); len(c) != 1 {
				t.Errorf("sockets opened %v, want the one at start", c)
			}
			if p0 := n.plat.Grep("advert eth0 vrid 51 prio 0"); len(p0) > 0 {
				t.Errorf("the master resigned: %v", p0)
			}
			if tc.check != nil {
				tc.check(t, n)
			}
			if ok := n.rec.Of(event.KindConfigLoaded); len(ok) != 2 {
				t.Errorf("%d config loaded events, want start and reload", len(ok))
			}
		})
	}
}

// TestReloadLoweredPriorityLoses: lowered below its backup's priority, the
// master keeps its VIP until the backup preempts (RFC 9568 §6.4.2): a
// handover caused by the config, through the protocol, not a resignation.
func TestReloadLoweredPriorityLoses(t *testing.T) {
	t.Parallel()
	n := master(t, vi1)
	n.peer(51, 190, 20*time.Millisecond, "192.0.2.100/24")
	time.Sleep(40 * time.Millisecond)
	in := vi1
	in.prio = 180
	if err := n.reload(conf(in)); err != nil {
		t.Fatal(err)
	}
	n.waitState("VI_1", vrrp.StateBackup)
	// The move to BACKUP is the protocol's (the peer's 190 wins), not a
	// restart. On a loaded machine the fake peer's next advert may come
	// late enough for a takeover after it, so look for the move, not at
	// the last transition.
	if got := n.transitions("VI_1"); !slices.Contains(got, "master->backup priority") {
		t.Errorf("transitions %v, want one to BACKUP for priority", got)
	}
	if p0 := n.plat.Grep("advert eth0 vrid 51 prio 0"); len(p0) > 0 {
		t.Errorf("it resigned with priority 0 (a restart): %v", p0)
	}
}

// TestReloadIdentityRestarts: a changed VRID, interface or use_vmac
// restarts the instance, which resigns with priority 0 first; another
// instance is untouched.
func TestReloadIdentityRestarts(t *testing.T) {
	t.Parallel()
	vi2 := inst{name: "VI_2", vrid: 52, prio: 200, vips: []string{"192.0.2.200/24"}}
	cases := []struct {
		name  string
		after inst
		sock  string // the socket the restarted instance listens on
	}{
		{"VRID", func() inst { in := vi1; in.vrid = 61; return in }(), "listen eth0 4"},
		{"interface", func() inst { in := vi1; in.ifname = "eth1"; return in }(), "listen eth1 4"},
		{"use_vmac", func() inst { in := vi1; in.extra = "  use_vmac\n"; return in }(), "listen vrrp.51 4"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			n := master(t, vi1, vi2)
			n.waitState("VI_2", vrrp.StateMaster)
			if err := n.reload(conf(tc.after, vi2)); err != nil {
				t.Fatalf("reload: %v", err)
			}
			n.waitFor(2*time.Second, "VI_1 master again", func() bool {
				return len(n.transitions("VI_1")) >= 5 && n.status("VI_1").State == vrrp.StateMaster
			})
			log := n.plat.Log()
			p0 := slices.Index(log, "advert eth0 vrid 51 prio 0")
			rm := slices.Index(log, "remove 192.0.2.100/24 eth0")
			// The restarted instance's socket; an eth0 one is shared with
			// VI_2 and reused, so there look for its first advert instead.
			open := slices.Index(log, tc.sock)
			if tc.sock == "listen eth0 4" {
				open = slices.IndexFunc(log, func(l string) bool {
					return strings.HasPrefix(l, fmt.Sprintf("advert eth0 vrid %d ", tc.after.vrid))
				})
			}
			if p0 < 0 || rm < p0 || open < rm {
				t.Errorf("want priority-0 advert (%d), then VIP removed (%d), then the new instance (%d):\n%s", p0, rm, open, strings.Join(log, "\n"))
			}
			if got := n.transitions("VI_1"); !slices.Contains(got, "master->stop shutdown") {
				t.Errorf("VI_1 transitions %v, want a shutdown", got)
			}
			n.assertStayed("VI_2", "192.0.2.200/24")
		})
	}
}

// TestReloadSyncGroup: a change of a sync group's membership restarts that
// group only; a priority change inside a group is applied in place.
func TestReloadSyncGroup(t *testing.T) {
	t.Parallel()
	a := inst{name: "A", vrid: 1, prio: 200, vips: []string{"192.0.2.11/24"}}
	b := inst{name: "B", vrid: 2, prio: 200, vips: []string{"192.0.2.12/24"}}
	c := inst{name: "C", vrid: 3, prio: 200, vips: []string{"192.0.2.13/24"}}
	lone := inst{name: "L", vrid: 4, prio: 200, vips: []string{"192.0.2.14/24"}}
	group := func(members ...string) raw {
		return raw("vrrp_sync_group G {\n  group {\n    " + strings.Join(members, "\n    ") + "\n  }\n}\n")
	}
	n := start(t, conf(group("A", "B"), a, b, c, lone))
	for _, name := range []string{"A", "B", "C", "L"} {
		n.waitState(name, vrrp.StateMaster)
	}
	if s := n.status("A"); s.SyncGroup != "G" {
		t.Errorf("A's sync group %q", s.SyncGroup)
	}
	a2 := a
	a2.prio = 150
	if err := n.reload(conf(group("A", "B"), a2, b, c, lone)); err != nil {
		t.Fatal(err)
	}
	time.Sleep(60 * time.Millisecond)
	for _, name := range []string{"A", "B", "C", "L"} {
		if got := n.transitions(name); len(got) != 2 {
			t.Errorf("%s: transitions %v after a priority change in the group, want none", name, got)
		}
	}
	if s := n.status("A"); s.BasePriority != 150 {
		t.Errorf("A's priority %d, want 150", s.BasePriority)
	}

	if err := n.reload(conf(group("A", "B", "C"), a2, b, c, lone)); err != nil {
		t.Fatal(err)
	}
	n.waitFor(2*time.Second, "the group master again", func() bool {
		return len(n.transitions("C")) >= 5 && n.status("C").State == vrrp.StateMaster
	})
	for _, name := range []string{"A", "B", "C"} {
		if got := n.transitions(name); !slices.Contains(got, "master->stop shutdown") {
			t.Errorf("%s: %v, want it restarted with the group", name, got)
		}
	}
	n.assertStayed("L", "192.0.2.14/24")
	if s := n.status("C"); s.SyncGroup != "G" {
		t.Errorf("C's sync group %q after joining", s.SyncGroup)
	}
}

// TestFailedStart: with dynamic_interfaces, an instance whose interface is
// missing is in FAULT with its reason (status, a transition event, /-/ready
// 503), the others run; it starts once the interface appears.
func TestFailedStart(t *testing.T) {
	t.Parallel()
	bad := inst{name: "VI_9", ifname: "eth9", vrid: 59, prio: 100, vips: []string{"192.0.2.9/24"}}
	n := start(t, strings.Replace(conf(vi1, bad), "router_id test\n", "router_id test\n  dynamic_interfaces\n", 1))
	n.waitState("VI_1", vrrp.StateMaster)
	s := n.status("VI_9")
	if s.State != vrrp.StateFault || !strings.Contains(s.FaultReason, "eth9") {
		t.Errorf("VI_9: %v %q, want FAULT naming eth9", s.State, s.FaultReason)
	}
	if got := n.transitions("VI_9"); !slices.Equal(got, []string{"init->fault fault"}) {
		t.Errorf("VI_9 transitions %v, want init->fault", got)
	}
	if rj := n.rec.Of(event.KindReloadRejected); len(rj) != 1 || !errors.Is(rj[0].Err, agent.ErrPartial) || !strings.Contains(rj[0].Err.Error(), "VI_9") {
		t.Errorf("start reported %v, want one failure naming VI_9", rj)
	}
	code, body := get(t, n.a.ReadyHandler())
	if code != http.StatusServiceUnavailable || !strings.Contains(body, "vrrp_instance VI_9") {
		t.Errorf("/-/ready: %d %q, want 503 naming VI_9", code, body)
	}
	_, st := get(t, n.a.StatusHandler())
	if !strings.Contains(st, `"fault_reason"`) || !strings.Contains(st, `"state": "fault"`) {
		t.Errorf("status document lacks the failed instance:\n%s", st)
	}

	n.plat.AddLink("eth9", netip.MustParseAddr("203.0.113.9"), netip.Addr{})
	n.waitState("VI_9", vrrp.StateBackup)
	if code, body := get(t, n.a.ReadyHandler()); code != http.StatusOK {
		t.Errorf("/-/ready after the interface appeared: %d %q", code, body)
	}
	n.assertStayed("VI_1", "192.0.2.100/24")
}

// TestMissingInterfaceStops: without dynamic_interfaces, an instance on
// an interface that does not exist stops the start, naming it, as it stops
// keepalived 2.2.7's VRRP process ("Non-existent interface specified in
// configuration"); TestDynamicInterfacesAgainstKeepalived checks the
// real one.
func TestMissingInterfaceStops(t *testing.T) {
	t.Parallel()
	bad := inst{name: "VI_9", ifname: "eth9", vrid: 59, prio: 100, vips: []string{"192.0.2.9/24"}}
	path := filepath.Join(t.TempDir(), "keepalived.conf")
	if err := os.WriteFile(path, []byte(conf(vi1, bad)), 0o644); err != nil {
		t.Fatal(err)
	}
	plat := agenttest.New()
	plat.AddLink("eth0", self4, ll6)
	a := agent.New(agent.Options{Path: path, Platform: plat, RetryInterval: time.Hour})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err := a.Run(ctx)
	if !errors.Is(err, config.ErrRefused) || !strings.Contains(fmt.Sprint(err), "interface eth9 for vrrp_instance VI_9 doesn't exist") {
		t.Fatalf("Run = %v, want refused naming eth9 and VI_9", err)
	}
}

// TestReloadPartial: a reload that cannot start one instance applies the
// rest and is reported failed.
func TestReloadPartial(t *testing.T) {
	t.Parallel()
	n := master(t, vi1)
	bad := inst{name: "VI_9", ifname: "eth9", vrid: 59, prio: 100, vips: []string{"192.0.2.9/24"}}
	in := vi1
	in.vips = []string{"192.0.2.100/24", "192.0.2.101/24"}
	err := n.reload(conf(in, bad))
	if !errors.Is(err, agent.ErrPartial) || !strings.Contains(err.Error(), "VI_9") {
		t.Fatalf("reload: %v, want ErrPartial naming VI_9", err)
	}
	if rj := n.rec.Of(event.KindReloadRejected); len(rj) != 1 {
		t.Errorf("%d reload failed events, want 1", len(rj))
	}
	if got := n.vips(); !slices.Equal(got, []string{"192.0.2.100/24", "192.0.2.101/24"}) {
		t.Errorf("VIPs %v: the rest of the reload was not applied", got)
	}
	if s := n.status("VI_9"); s.State != vrrp.StateFault {
		t.Errorf("VI_9 %v, want FAULT", s.State)
	}
	n.assertStayed("VI_1", "192.0.2.100/24")
}

// TestReloadBadConfig: a config with errors changes nothing.
func TestReloadBadConfig(t *testing.T) {
	t.Parallel()
	n := master(t, vi1)
	err := n.reload("vrrp_instance VI_1 {\n  virtual_router_id 300\n")
	if !errors.Is(err, agent.ErrConfig) {
		t.Fatalf("reload: %v, want ErrConfig", err)
	}
	if rj := n.rec.Of(event.KindReloadRejected); len(rj) != 1 {
		t.Errorf("%d reload rejected events, want 1", len(rj))
	}
	n.assertStayed("VI_1", "192.0.2.100/24")
	if got := n.vips(); !slices.Equal(got, []string{"192.0.2.100/24"}) {
		t.Errorf("VIPs %v", got)
	}
}

// TestShutdownOrder: masters resign (priority 0) and remove their VIPs,
// then the sockets close, then the platform.
func TestShutdownOrder(t *testing.T) {
	t.Parallel()
	vi6 := inst{name: "VI_6", vrid: 56, prio: 200, vips: []string{"2001:db8::100/64"}}
	n := master(t, vi1, vi6)
	n.waitState("VI_6", vrrp.StateMaster)
	n.shutdown()
	log := n.plat.Log()
	idx := func(s string) int { return slices.Index(log, s) }
	p4, p6 := idx("advert eth0 vrid 51 prio 0"), idx("advert eth0 vrid 56 prio 0")
	r4, r6 := idx("remove 192.0.2.100/24 eth0"), idx("remove 2001:db8::100/64 eth0")
	c4, c6, pc := idx("close eth0 4"), idx("close eth0 6"), idx("platform close")
	for _, step := range []struct {
		what         string
		before, then int
	}{
		{"VI_1 resigns before removing its VIP", p4, r4},
		{"VI_6 resigns before removing its VIP", p6, r6},
		{"VIPs removed before the IPv4 socket closes", max(r4, r6), c4},
		{"VIPs removed before the IPv6 socket closes", max(r4, r6), c6},
		{"sockets close before the platform", max(c4, c6), pc},
	} {
		if step.before < 0 || step.then < 0 || step.before > step.then {
			t.Errorf("%s: %d then %d in\n%s", step.what, step.before, step.then, strings.Join(log, "\n"))
		}
	}
	if len(n.vips()) != 0 {
		t.Errorf("VIPs left after shutdown: %v", n.vips())
	}
}

func get(t *testing.T, h http.Handler) (int, string) {
	t.Helper()
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest("GET", "/", nil))
	b, _ := io.ReadAll(w.Result().Body)
	return w.Code, string(b)
}

// TestNoAddressLeavesFault: an instance whose interface has no IPv4 address
// is in FAULT, with keepwatch_vrrp_state{state="fault"} 1; when the address
// appears and the link reports up, it starts and leaves FAULT.
func TestNoAddressLeavesFault(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewRegistry()
	m, err := metrics.New(reg, metrics.Options{Version: "test"})
	if err != nil {
		t.Fatal(err)
	}
	in := inst{name: "VI_2", ifname: "eth2", vrid: 52, prio: 100, vips: []string{"203.0.113.100/24"}}
	n := start(t, conf(in), func(p *agenttest.Platform) { p.AddLink("eth2", netip.Addr{}, netip.Addr{}) })
	for _, e := range n.rec.Events() {
		m.Emit(e)
	}
	if s := n.status("VI_2"); s.State != vrrp.StateFault || !strings.Contains(s.FaultReason, "no address") {
		t.Errorf("VI_2: %v %q, want FAULT for the missing address", s.State, s.FaultReason)
	}
	state := func(st string) float64 {
		mfs, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		for _, mf := range mfs {
			if mf.GetName() != "keepwatch_vrrp_state" {
				continue
			}
			for _, mm := range mf.GetMetric() {
				labels := map[string]string{}
				for _, l := range mm.GetLabel() {
					labels[l.GetName()] = l.GetValue()
				}
				if labels["vrrp_instance"] == "VI_2" && labels["state"] == st {
					return mm.GetGauge().GetValue()
				}
			}
		}
		return -1
	}
	if got := state("fault"); got != 1 {
		t.Errorf(`keepwatch_vrrp_state{vrrp_instance="VI_2",state="fault"} = %v, want 1`, got)
	}
	n.plat.SetAddress("eth2", netip.MustParseAddr("203.0.113.2"))
	n.plat.SetLink("eth2", true)
	n.waitState("VI_2", vrrp.StateMaster)
	if got := n.a.Failed(); len(got) != 0 {
		t.Errorf("still failed: %v", got)
	}
}

// TestStuckInstanceNeverBlocksAgent: while an instance is stuck in netlink
// (adding its VIP on takeover), tracker reports, status and another
// instance's reload still go through: nothing the agent does under its lock
// waits for an instance.
func TestStuckInstanceNeverBlocksAgent(t *testing.T) {
	t.Parallel()
	vi2 := inst{name: "VI_2", ifname: "eth1", vrid: 52, prio: 200, vips: []string{"198.51.100.100/24"}}
	n := start(t, conf(vi1, vi2), func(p *agenttest.Platform) { p.Hold() })
	defer n.plat.Release()
	time.Sleep(150 * time.Millisecond) // both past their down timers, stuck adding VIPs
	quick := func(what string, f func()) {
		t.Helper()
		done := make(chan struct{})
		go func() { defer close(done); f() }()
		select {
		case <-done:
		case <-time.After(time.Second):
			t.Fatalf("%s blocked behind a stuck instance", what)
		}
	}
	quick("a link report", func() { n.plat.SetLink("eth1", false) })
	quick("status", func() { n.a.Status() })
	quick("a reload of a stuck instance's tracker", func() {
		in := vi1
		in.extra = "  track_interface {\n    eth1 weight -30\n  }\n"
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		defer cancel()
		n.write(conf(in, vi2))
		_ = n.a.ReloadContext(ctx) // may time out waiting for VI_1: that is the point
	})
	quick("a reload of a stuck instance's priority", func() {
		in := vi1
		in.prio = 150
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		defer cancel()
		n.write(conf(in, vi2))
		if err := n.a.ReloadContext(ctx); !errors.Is(err, agent.ErrPartial) || !strings.Contains(err.Error(), "VI_1") {
			t.Errorf("reload while VI_1 is stuck: %v, want ErrPartial naming VI_1", err)
		}
	})
	n.plat.Release()
	n.waitState("VI_2", vrrp.StateFault)
	n.waitState("VI_1", vrrp.StateMaster)
}

// TestReloadAuthV2: a VRRPv2 master's adverts carry the authentication a
// reload adds (auth PASS, RFC 3768 §5.3.6), with no state change.
func TestReloadAuthV2(t *testing.T) {
	t.Parallel()
	owner := inst{name: "VI_2", vrid: 52, prio: 255, state: "MASTER", version: 2, interval: "1", vips: []string{"192.0.2.52/24"}}
	n := master(t, owner)
	auth := func() (vrrp.AuthType, string) {
		var a vrrp.Advertisement
		a.Family = vrrp.IPv4
		sent := n.plat.Socket("eth0", false).Sent()
		if len(sent) == 0 {
			return 0, ""
		}
		if err := a.UnmarshalBinary(sent[len(sent)-1].Packet[20:]); err != nil {
			t.Fatal(err)
		}
		return a.AuthType, strings.TrimRight(string(a.AuthData[:]), "\x00")
	}
	in := owner
	in.extra = "  authentication {\n    auth_type PASS\n    auth_pass s3cret\n  }\n"
	if err := n.reload(conf(in)); err != nil {
		t.Fatal(err)
	}
	n.plat.Socket("eth0", false).Sent() // forget the adverts before the reload
	n.waitFor(3*time.Second, "an advert with auth PASS s3cret", func() bool {
		typ, pass := auth()
		return typ == vrrp.AuthPass && pass == "s3cret"
	})
	want := []string{"init->backup startup", "backup->master owner"}
	if got := n.transitions("VI_2"); !slices.Equal(got, want) {
		t.Errorf("transitions %v, want %v", got, want)
	}
}

// TestLinkWatchResubscribes: when the link subscription fails, the agent
// subscribes again, and the dump that follows brings the state it missed.
func TestLinkWatchResubscribes(t *testing.T) {
	t.Parallel()
	in := vi1
	in.extra = "  track_interface {\n    eth1 weight -30\n  }\n"
	n := master(t, in)
	n.plat.FailWatch(errors.New("netlink: no buffer space available"))
	// Missed while unsubscribed: only the new subscription's dump reports it.
	n.plat.SetLink("eth1", false)
	n.waitFor(3*time.Second, "priority 170 after the missed eth1 down", func() bool { return n.status("VI_1").Priority == 170 })
	if got := n.plat.Grep("watch ended"); len(got) != 1 {
		t.Errorf("subscriptions ended: %v, want the failed one", got)
	}
}

// TestAuthAH: an auth_type AH instance opens the AH socket beside the
// plain one, sends its adverts behind an AH header whose ICV its password
// keys, and listens on both sockets, so a plain advert for its VRID is
// authtype_mismatch rather than unheard. As in keepalived 2.2.7, state
// MASTER is cleared for AH but for the address owner, which takes over at
// once.
func TestAuthAH(t *testing.T) {
	t.Parallel()
	in := inst{name: "VI_2", vrid: 52, prio: 255, state: "MASTER", version: 2, interval: "1", vips: []string{"192.0.2.52/24"},
		extra: "  authentication {\n    auth_type AH\n    auth_pass s3cret\n  }\n"}
	n := master(t, in)
	if got, want := n.transitions("VI_2"), []string{"init->backup startup", "backup->master owner"}; !slices.Equal(got, want) {
		t.Errorf("transitions %v, want %v", got, want)
	}
	ah, plain := n.plat.AHSocket("eth0"), n.plat.Socket("eth0", false)
	if ah == nil || plain == nil {
		t.Fatalf("sockets: AH %v, plain %v; want both", ah != nil, plain != nil)
	}
	var sent []netiftest.Sent
	n.waitFor(3*time.Second, "an AH advert", func() bool { sent = ah.Sent(); return len(sent) > 0 })
	pkt := sent[len(sent)-1].Packet
	if len(pkt) < 20+vrrp.AHLen || pkt[9] != vrrp.ProtocolAH {
		t.Fatalf("advert %x is not behind an AH header", pkt)
	}
	if !vrrp.VerifyAH(vrrp.PassAuthData("s3cret"), pkt[:20], pkt[20:20+vrrp.AHLen], pkt[20+vrrp.AHLen:], false) {
		t.Errorf("advert %x: ICV does not verify with auth_pass s3cret", pkt)
	}
	var a vrrp.Advertisement
	if err := a.Decode(pkt[20+vrrp.AHLen:], vrrp.IPv4); err != nil || a.AuthType != vrrp.AuthAH || a.AuthData != [8]byte{} {
		t.Errorf("message: %+v (%v), want auth type AH and a zero auth field", a, err)
	}
	if len(plain.Sent()) != 0 {
		t.Errorf("%d adverts went out on the plain socket", len(plain.Sent()))
	}

	// A plain advert for VRID 52: the instance hears it and counts it.
	msg, err := (&vrrp.Advertisement{Version: vrrp.Version2, Type: vrrp.TypeAdvertisement, VRID: 52, Priority: 100,
		AdvertInt: 1, Family: vrrp.IPv4, Addresses: []netip.Addr{netip.MustParseAddr("192.0.2.52")}}).
		AppendWithChecksum(nil, netip.MustParseAddr("192.0.2.9"), vrrp.GroupIPv4, vrrp.ChecksumAsV2)
	if err != nil {
		t.Fatal(err)
	}
	hdr := vrrp.NewIPv4Header(netip.MustParseAddr("192.0.2.9"), vrrp.GroupIPv4, 1, 255, len(msg))
	h, _ := hdr.AppendBinary(nil)
	plain.Deliver(&netif.Packet{Src: netip.MustParseAddr("192.0.2.9"), Dst: vrrp.GroupIPv4, TTL: 255, IPHeader: h, VRRP: msg})
	n.waitFor(3*time.Second, "an authtype_mismatch drop", func() bool {
		for _, e := range n.rec.Of(event.KindAdvertDropped) {
			if e.Instance == "VI_2" && e.Reason == event.DropAuthType && e.Value == int64(vrrp.AuthNone) {
				return true
			}
		}
		return false
	})
}

// TestLogUnknownVRIDs: an advert for a VRID no instance runs is counted
// always (vrid_unknown) and logged, in keepalived's words, only with
// log_unknown_vrids.
func TestLogUnknownVRIDs(t *testing.T) {
	t.Parallel()
	for _, on := range []bool{false, true} {
		var logs bytes.Buffer
		var mu sync.Mutex
		cfg := conf(inst{name: "VI_1", vrid: 51, prio: 100, vips: []string{"192.0.2.51/24"}})
		if on {
			cfg = strings.Replace(cfg, "router_id test\n", "router_id test\n  log_unknown_vrids\n", 1)
		}
		n := &node{t: t, path: filepath.Join(t.TempDir(), "keepalived.conf"), plat: agenttest.New(), rec: &eventtest.Recorder{}, done: make(chan error, 1)}
		n.plat.AddLink("eth0", self4, ll6)
		n.write(cfg)
		n.a = agent.New(agent.Options{Path: n.path, Sink: n.rec, Platform: n.plat, RetryInterval: time.Hour,
			Log: slog.New(slog.NewTextHandler(lockedWriter{&mu, &logs}, nil))})
		ctx, cancel := context.WithCancel(context.Background())
		n.stop = cancel
		go func() { n.done <- n.a.Run(ctx) }()
		n.waitFor(2*time.Second, "agent ready", n.a.Ready)
		msg, err := (&vrrp.Advertisement{Version: vrrp.Version3, Type: vrrp.TypeAdvertisement, VRID: 99, Priority: 100,
			AdvertInt: 100, Family: vrrp.IPv4, Addresses: []netip.Addr{netip.MustParseAddr("192.0.2.99")}}).
			AppendWithChecksum(nil, netip.MustParseAddr("192.0.2.9"), vrrp.GroupIPv4, vrrp.ChecksumPseudoHeader)
		if err != nil {
			t.Fatal(err)
		}
		hdr := vrrp.NewIPv4Header(netip.MustParseAddr("192.0.2.9"), vrrp.GroupIPv4, 1, 255, len(msg))
		h, _ := hdr.AppendBinary(nil)
		n.plat.Socket("eth0", false).Deliver(&netif.Packet{Src: netip.MustParseAddr("192.0.2.9"), Dst: vrrp.GroupIPv4, TTL: 255, IPHeader: h, VRRP: msg})
		n.waitFor(3*time.Second, "a vrid_unknown drop", func() bool {
			for _, e := range n.rec.Of(event.KindAdvertDropped) {
				if e.Reason == event.DropVRIDUnknown && e.VRID == 99 {
					return true
				}
			}
			return false
		})
		n.shutdown()
		mu.Lock()
		logged := strings.Contains(logs.String(), "Unknown VRID(99) received on interface(eth0). ignoring...")
		mu.Unlock()
		if logged != on {
			t.Errorf("log_unknown_vrids %v: logged %v", on, logged)
		}
	}
}

type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (l lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}
