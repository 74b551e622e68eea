package lab_test

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"

	"github.com/keepwatch/keepwatch/deploy/lab"
	"github.com/keepwatch/keepwatch/engine/config"
	"github.com/keepwatch/keepwatch/engine/config/kaconf"
	"github.com/keepwatch/keepwatch/engine/track"
)

// The track_process lab: keepalived's process monitor reads the kernel's
// proc connector (a NETLINK_CONNECTOR socket joined to CN_IDX_PROC;
// keepalived 2.2.7 keepalived/trackers/track_process.c), which the kernel
// serves only to sockets of the initial network namespace: in a test
// namespace keepalived logs errno 111 and never tracks. So keepalived runs here in the initial
// namespace, on one end of a veth pair whose other end is in the lab
// node's namespace, where keepwatch runs. keepalived's config names only
// that veth; its VRRP, VIPs and ARP stay on it. Removing the node's
// namespace (Close, or nskit.Sweep after a crash) removes both ends.
var (
	tpKAAddr  = "198.51.100.1/24"
	tpKWAddr  = "198.51.100.2/24"
	tpVIP1    = "198.51.100.101"
	tpVIP2    = "198.51.100.102"
	tpVIPMask = "/24"
)

// trackProcConf is one side's config: two IPv4 instances in a sync group
// on the veth LINK at PRIO. The tracking side (TRACKERS non-empty) follows,
// for the whole group, "busy" (two sleeps needed, quorum 2, weight 0:
// FAULT below it) and "busyw" (weight -10, -60 as the group refers to it),
// and VI_1 alone follows "memw"
// (weight -60, matched on the full command line), which keepalived keeps
// or drops by sync_group_tracking_weight (SGWEIGHT).
const trackProcConf = `global_defs {
  router_id ROUTER
}
TRACKERS
vrrp_sync_group TP {
  group {
    VI_1
    VI_2
  }
GROUPTRACK}

vrrp_instance VI_1 {
  state BACKUP
  interface LINK
  virtual_router_id 61
  priority PRIO
  advert_int 0.2
  version 3
MEMBERTRACK  virtual_ipaddress {
    VIP1
  }
}

vrrp_instance VI_2 {
  state BACKUP
  interface LINK
  virtual_router_id 62
  priority PRIO
  advert_int 0.2
  version 3
  virtual_ipaddress {
    VIP2
  }
}
`

const trackProcTrackers = `
vrrp_track_process busy {
  process sleep ARG_BUSY
  quorum 2
DELAY}

vrrp_track_process busyw {
  process sleep ARG_WEIGHT
  weight -10
}

vrrp_track_process memw {
  process sleep ARG_MEMBER
  full_command
  weight -60
}
`

// tpSide is one daemon of the pair.
type tpSide struct {
	impl lab.Impl
	// keepwatch
	node *lab.Node
	// keepalived
	link   netlink.Link
	initH  *netlink.Handle
	log    *lockedBuffer
	logOff int
}

// keepalivedTracks runs keepalived in the initial namespace with one
// vrrp_track_process per block (weight -10) and one BACKUP instance
// tracking each (VRIDs from vrid, VIPs 198.51.100.vip+i), and returns its
// log once it has scanned /proc, with keepwatch's parse of the same file.
// Instance i's "Changing effective priority" line says keepalived found
// its processes missing.
func keepalivedTracks(t *testing.T, dir, routerID, link string, blocks []string, vrid, vip int) (string, *config.Config) {
	t.Helper()
	var conf strings.Builder
	fmt.Fprintf(&conf, "global_defs {\n  router_id %s\n}\n", routerID)
	for i, b := range blocks {
		fmt.Fprintf(&conf, "vrrp_track_process p%d {\n  %s\n  weight -10\n}\n", i, b)
	}
	for i := range blocks {
		fmt.Fprintf(&conf, "vrrp_instance VI_%d {\n  state BACKUP\n  interface %s\n  virtual_router_id %d\n  priority 150\n  advert_int 1\n"+
			"  track_process {\n    p%d\n  }\n  virtual_ipaddress {\n    198.51.100.%d/24\n  }\n}\n", i, link, vrid+i, i, vip+i)
	}
	path := filepath.Join(dir, "keepalived.conf")
	if err := os.WriteFile(path, []byte(conf.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	log := &lockedBuffer{}
	startKeepalivedInit(t, dir, path, log)
	// keepalived scans /proc at start and logs each lowered priority
	// before "Startup complete"; a moment more for a loaded machine.
	time.Sleep(2 * time.Second)
	cfg, ds := kaconf.Load(path, kaconf.LoadOptions{})
	if cfg == nil || len(cfg.TrackProcesses) != len(blocks) {
		t.Fatalf("keepwatch's parser: %v", ds)
	}
	return log.String(), cfg
}

// noDeathSig: the tracked processes are started without Pdeathsig. The
// kernel sends that signal when the THREAD that forked the child exits,
// not the process, and Go ends an OS thread whenever a goroutine that
// locked it to enter a namespace returns (nskit, tpVeth): a tracked
// process started from such a thread died mid-test, a real loss to both
// trackers (TestSyncGroupTrackProcess failed once in CI with the group in
// FAULT for 10 s). t.Cleanup kills each process; their lifetimes are
// bounded for a test binary that dies before it.
//
// privateCopy copies the program prog to dir under a unique name
// (kwtpNNNNNN, within comm's 15 characters), so the processes a test runs
// from it are the only ones on the machine that match.
func privateCopy(t *testing.T, dir, prog string) (name, bin string) {
	t.Helper()
	n, err := rand.Int(rand.Reader, big.NewInt(900000))
	if err != nil {
		t.Fatal(err)
	}
	name = fmt.Sprintf("kwtp%06d", n.Int64()+100000)
	path, err := exec.LookPath(prog)
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	bin = filepath.Join(dir, name)
	if err := os.WriteFile(bin, b, 0o755); err != nil {
		t.Fatal(err)
	}
	return name, bin
}

var kaEntering = regexp.MustCompile(`\((VI_\d)\) Entering (\w+) STATE`)

func (s *tpSide) holds(t *testing.T, vip string) bool {
	t.Helper()
	ip := net.ParseIP(vip)
	if s.impl == lab.Keepwatch {
		addrs, err := s.node.Handle().AddrList(nil, netlink.FAMILY_V4)
		if err != nil {
			t.Fatal(err)
		}
		for _, a := range addrs {
			if a.IP.Equal(ip) {
				return true
			}
		}
		return false
	}
	addrs, err := s.initH.AddrList(s.link, netlink.FAMILY_V4)
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range addrs {
		if a.IP.Equal(ip) {
			return true
		}
	}
	return false
}

// state is the instance's state ("master", "backup", "fault") and
// effective priority; keepalived's priority is read from its log (0 when
// it logged no change).
func (s *tpSide) state(t *testing.T, inst string) (string, int) {
	t.Helper()
	if s.impl == lab.Keepwatch {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		b, err := s.node.Fetch(ctx, "/api/v1/status")
		if err != nil {
			t.Fatal(err)
		}
		var doc struct {
			Instances []struct {
				Name     string `json:"iname"`
				State    string `json:"state"`
				Priority int    `json:"effective_priority"`
			} `json:"vrrp_instances"`
		}
		if err := json.Unmarshal(b, &doc); err != nil {
			t.Fatal(err)
		}
		for _, in := range doc.Instances {
			if in.Name == inst {
				return in.State, in.Priority
			}
		}
		t.Fatalf("keepwatch has no instance %s", inst)
	}
	text := s.log.String()
	st := "init"
	for _, m := range kaEntering.FindAllStringSubmatch(text, -1) {
		if m[1] == inst {
			st = strings.ToLower(m[2])
		}
	}
	prio := 0
	re := regexp.MustCompile(`\(` + inst + `\) Changing effective priority from \d+ to (\d+)`)
	for _, m := range re.FindAllStringSubmatch(text[min(s.logOff, len(text)):], -1) {
		fmt.Sscan(m[1], &prio)
	}
	return st, prio
}

// TestSyncGroupTrackProcess: a vrrp_sync_group's track_process run by
// keepalived 2.2.7 (in the initial namespace, where its proc connector
// works) against keepwatch, and the mirror, with and without
// sync_group_tracking_weight, and with a delay: the group's quorum lost
// faults both members of the tracking node and the peer takes both VIPs
// (after terminate_delay, but a restarted process counts at once); the
// group's weighted process lowers both and the peer preempts; a member's
// own weighted process (full_command) lowers that member to 90 with or
// without sync_group_tracking_weight (2.2.7 keeps a member's track_process
// weight) but moves nothing, since the peer's other member still hears
// the higher priority (vrrp_sync.c vrrp_sync_can_goto_master).
func TestSyncGroupTrackProcess(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		kaTracks, weighted, delay bool
	}{
		{true, false, false}, {true, true, true}, {false, false, false}, {false, true, true},
	} {
		name := fmt.Sprintf("katracks=%v/sync_group_tracking_weight=%v/delay=%v", c.kaTracks, c.weighted, c.delay)
		// In sequence: keepalived in the initial namespace is one more
		// process on a loaded machine, and the subtests share nothing
		// but the documentation range on their own veth.
		t.Run(name, func(t *testing.T) { syncGroupTrackProcess(t, c.kaTracks, c.weighted, c.delay) })
	}
}

func syncGroupTrackProcess(t *testing.T, kaTracks, weighted, delay bool) {
	c := newCluster(t, "tp", lab.Options{Nodes: 1, TemplateText: "# replaced below\n", Stopped: []int{1}})
	node := c.Node(1)
	dir := t.TempDir()

	// Unique arguments: other tests' sleeps never match.
	n, err := rand.Int(rand.Reader, big.NewInt(900000))
	if err != nil {
		t.Fatal(err)
	}
	uniq := fmt.Sprintf("%06d", n.Int64()+100000)
	// Bounded (15 min) so a test binary that dies before its cleanup
	// leaves nothing for long; see noDeathSig.
	args := map[string]string{"ARG_BUSY": "900." + uniq, "ARG_WEIGHT": "901." + uniq, "ARG_MEMBER": "902." + uniq}

	kaLink, initH := tpVeth(t, c, node)
	kwLink := "kw" + c.Lab.ID + "kb"

	render := func(impl lab.Impl) string {
		tracks := (impl == lab.Keepalived) == kaTracks
		text := trackProcConf
		link, prio := kwLink, "100"
		if impl == lab.Keepalived {
			link = kaLink.Attrs().Name
		}
		if tracks {
			prio = "150"
			tr := trackProcTrackers
			d := ""
			if delay {
				d = "  delay 4\n"
			}
			tr = strings.Replace(tr, "DELAY", d, 1)
			for k, v := range args {
				tr = strings.ReplaceAll(tr, k, v)
			}
			text = strings.Replace(text, "TRACKERS", tr, 1)
			// The group's own weight for busyw overrides the tracker's -10.
			g := "  track_process {\n    busy\n    busyw weight -60\n  }\n"
			if weighted {
				g += "  sync_group_tracking_weight\n"
			}
			text = strings.Replace(text, "GROUPTRACK", g, 1)
			text = strings.Replace(text, "MEMBERTRACK", "  track_process {\n    memw\n  }\n", 1)
		} else {
			for _, k := range []string{"TRACKERS", "GROUPTRACK", "MEMBERTRACK"} {
				text = strings.Replace(text, k, "", 1)
			}
		}
		r := strings.NewReplacer("ROUTER", "tp"+impl.String(), "LINK", link, "PRIO", prio,
			"VIP1", tpVIP1+tpVIPMask, "VIP2", tpVIP2+tpVIPMask)
		return r.Replace(text)
	}

	// The tracked processes, started before either daemon so the tracker
	// starts up: two "busy" (quorum 2), one "busyw", one "memw".
	procs := map[string][]*exec.Cmd{}
	start := func(key string) {
		t.Helper()
		cmd := exec.Command("sleep", args[key]) // no Pdeathsig: see noDeathSig
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		procs[key] = append(procs[key], cmd)
		t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	}
	kill := func(key string) {
		t.Helper()
		l := procs[key]
		cmd := l[len(l)-1]
		procs[key] = l[:len(l)-1]
		if err := cmd.Process.Kill(); err != nil {
			t.Fatal(err)
		}
		_ = cmd.Wait()
	}
	start("ARG_BUSY")
	start("ARG_BUSY")
	start("ARG_WEIGHT")
	start("ARG_MEMBER")

	ka := &tpSide{impl: lab.Keepalived, link: kaLink, initH: initH, log: &lockedBuffer{}}
	kw := &tpSide{impl: lab.Keepwatch, node: node}
	kaConf := filepath.Join(dir, "keepalived.conf")
	if err := os.WriteFile(kaConf, []byte(render(lab.Keepalived)), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := node.WriteConfig([]byte(render(lab.Keepwatch))); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			b, _ := os.ReadFile(kaConf)
			t.Logf("keepalived config:\n%s\nlog:\n%s", b, lastLines(ka.log.String(), 150))
		}
	})
	startKeepalivedInit(t, dir, kaConf, ka.log)
	if err := node.Start(t.Context()); err != nil {
		t.Fatal(err)
	}

	tracker, peer := kw, ka
	if kaTracks {
		tracker, peer = ka, kw
	}
	const settle = 10 * time.Second
	waitVIPs := func(holder *tpSide, timeout time.Duration) time.Duration {
		t.Helper()
		other := ka
		if holder == ka {
			other = kw
		}
		begin := time.Now()
		deadline := begin.Add(timeout)
		for {
			ok := true
			for _, v := range []string{tpVIP1, tpVIP2} {
				ok = ok && holder.holds(t, v) && !other.holds(t, v)
			}
			if ok {
				return time.Since(begin)
			}
			if time.Now().After(deadline) {
				t.Fatalf("VIPs not (only) on %s after %s: keepalived %v/%v, keepwatch %v/%v", holder.impl, timeout,
					ka.holds(t, tpVIP1), ka.holds(t, tpVIP2), kw.holds(t, tpVIP1), kw.holds(t, tpVIP2))
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	waitStates := func(s *tpSide, want string) {
		t.Helper()
		deadline := time.Now().Add(settle)
		for {
			s1, _ := s.state(t, "VI_1")
			s2, _ := s.state(t, "VI_2")
			if s1 == want && s2 == want {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: VI_1 %s, VI_2 %s after %s, want both %s", s.impl, s1, s2, settle, want)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	back := func(what string) time.Duration {
		t.Helper()
		took := waitVIPs(tracker, settle)
		waitStates(tracker, "master")
		waitStates(peer, "backup")
		t.Logf("%s: %s (tracking) holds both VIPs again after %v", what, tracker.impl, took.Round(time.Millisecond))
		return took
	}

	waitVIPs(tracker, 30*time.Second)
	waitStates(tracker, "master")
	waitStates(peer, "backup")

	// The group's quorum lost: both members FAULT, the peer takes both.
	// With delay 4 (terminate_delay), neither keepalived nor keepwatch
	// moves for 4 s.
	var held time.Duration
	if delay {
		held = 4 * time.Second
	}
	killed := time.Now()
	kill("ARG_BUSY")
	if delay {
		time.Sleep(held - time.Second)
		for _, v := range []string{tpVIP1, tpVIP2} {
			if !tracker.holds(t, v) {
				t.Errorf("%s dropped %s %v after the quorum was lost, before its delay of 4 s", tracker.impl, v, time.Since(killed).Round(time.Millisecond))
			}
		}
	}
	waitVIPs(peer, settle+held)
	waitStates(tracker, "fault")
	waitStates(peer, "master")
	t.Logf("quorum lost: %s both FAULT, %s holds both VIPs %v after", tracker.impl, peer.impl, time.Since(killed).Round(time.Millisecond))
	// Restarted: an exec'd process restores the quorum at once, delay or
	// not; keepalived's fork_delay applies only to a tracked process's
	// fork (track_process.c; track.Process ForkDelay).
	start("ARG_BUSY")
	if took := back("quorum back"); delay && took >= held {
		t.Errorf("%s took the VIPs back %v after the quorum returned: held back by a delay keepalived does not apply to an exec'd process", tracker.impl, took.Round(time.Millisecond))
	}

	// The group's weighted process: 150 - 60 = 90 on both members; the
	// peer (100) preempts both.
	killed = time.Now()
	kill("ARG_WEIGHT")
	waitVIPs(peer, settle)
	waitStates(peer, "master")
	waitStates(tracker, "backup")
	for _, in := range []string{"VI_1", "VI_2"} {
		if _, p := tracker.state(t, in); p != 90 {
			t.Errorf("%s %s at priority %d with the group's weighted process gone, want 90", tracker.impl, in, p)
		}
	}
	t.Logf("group's weighted process gone: %s holds both VIPs %v after", peer.impl, time.Since(killed).Round(time.Millisecond))
	start("ARG_WEIGHT")
	back("group's weighted process back")

	// VI_1's own weighted process (memw). Whatever VI_1's priority, the
	// peer's VI_2 still hears 150, so its group cannot go MASTER
	// (vrrp_sync.c vrrp_sync_can_goto_master) and nothing moves; only the
	// priority tells whether the weight applies.
	ka.logOff = len(ka.log.String())
	kill("ARG_MEMBER")
	want := 90
	deadline := time.Now().Add(settle)
	got := 0
	for time.Now().Before(deadline) {
		_, got = tracker.state(t, "VI_1")
		if got == want {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if got != want {
		t.Errorf("%s VI_1 at priority %d with its own weighted process gone (sync_group_tracking_weight=%v), want %d", tracker.impl, got, weighted, want)
	}
	time.Sleep(2 * time.Second)
	waitVIPs(tracker, settle)
	waitStates(tracker, "master")
	waitStates(peer, "backup")
}

// tpVeth makes the veth pair: kw<ID>ka in the initial namespace with
// tpKAAddr, kw<ID>kb in the node's namespace with tpKWAddr. It returns
// the initial namespace's end and a netlink handle there.
func tpVeth(t *testing.T, c *lab.Cluster, node *lab.Node) (netlink.Link, *netlink.Handle) {
	t.Helper()
	initNS, err := netns.GetFromPid(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { initNS.Close() })
	h, err := netlink.NewHandleAt(initNS)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(h.Close)
	a, b := "kw"+c.Lab.ID+"ka", "kw"+c.Lab.ID+"kb"
	veth := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: a}, PeerName: b, PeerNamespace: netlink.NsFd(int(node.NsHandle()))}
	if err := h.LinkAdd(veth); err != nil {
		t.Fatal(err)
	}
	// Deleting one end deletes the pair; the node's namespace going
	// removes it too.
	t.Cleanup(func() {
		if l, err := h.LinkByName(a); err == nil {
			if err := h.LinkDel(l); err != nil {
				t.Errorf("removing %s: %v", a, err)
			}
		}
	})
	la, err := h.LinkByName(a)
	if err != nil {
		t.Fatal(err)
	}
	lb, err := node.Handle().LinkByName(b)
	if err != nil {
		t.Fatal(err)
	}
	addr := func(h *netlink.Handle, l netlink.Link, s string) {
		t.Helper()
		ad, err := netlink.ParseAddr(s)
		if err == nil {
			err = h.AddrAdd(l, ad)
		}
		if err == nil {
			err = h.LinkSetUp(l)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	addr(h, la, tpKAAddr)
	addr(node.Handle(), lb, tpKWAddr)
	return la, h
}

// startKeepalivedInit runs keepalived's VRRP side in the initial network
// namespace with every runtime file in dir, and stops exactly that process
// (by pid) when the test ends.
func startKeepalivedInit(t *testing.T, dir, conf string, log *lockedBuffer) {
	t.Helper()
	b, err := os.ReadFile(conf)
	if err != nil {
		t.Fatal(err)
	}
	tracking := strings.Contains(string(b), "vrrp_track_process")
	pidf := func(name string) string { return filepath.Join(dir, name) }
	// nice execs keepalived, so the pid is keepalived's; the same nice as
	// the lab's daemons so neither misses adverts on a loaded machine.
	cmd := exec.Command("nice", "-n", fmt.Sprint(lab.DefaultNice), "keepalived", "-P", "-n", "-l", "-D", "-G",
		"-f", conf, "-p", pidf("keepalived.pid"), "-r", pidf("vrrp.pid"), "-c", pidf("checkers.pid"))
	cmd.Stdout, cmd.Stderr = log, log
	cmd.Dir = dir
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
	started := make(chan error, 1)
	done := make(chan struct{})
	go func() {
		// A thread kept for keepalived's life (Pdeathsig follows the
		// forking thread), set to the test process's own namespace: the
		// initial one, whatever namespace switching left on this thread.
		runtime.LockOSThread()
		initNS, err := netns.GetFromPid(os.Getpid())
		if err == nil {
			err = netns.Set(initNS)
			initNS.Close()
		}
		if err == nil {
			err = cmd.Start()
		}
		started <- err
		if err == nil {
			_ = cmd.Wait()
		}
		close(done)
	}()
	if err := <-started; err != nil {
		t.Fatal(err)
	}
	pid := cmd.Process.Pid
	t.Cleanup(func() {
		_ = syscall.Kill(pid, syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = syscall.Kill(pid, syscall.SIGKILL)
			<-done
		}
	})
	deadline := time.Now().Add(20 * time.Second)
	for {
		s := log.String()
		// With a vrrp_track_process, the proc connector must answer:
		// without it (a namespace other than the initial one, a
		// container) keepalived tracks no process.
		if strings.Contains(s, "Startup complete") && (!tracking || strings.Contains(s, "proc_events has confirmed it is configured")) {
			return
		}
		select {
		case <-done:
			t.Fatalf("keepalived exited at start:\n%s", s)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("keepalived not up, or its proc connector silent (not the initial network namespace?), after 20 s:\n%s", s)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestTrackProcessMatching: which processes a vrrp_track_process counts,
// keepalived 2.2.7 (its instance's priority at start-up says whether it
// found one) against keepwatch's track.Process, for every way of naming a
// process: comm or argv[0], with or without parameters, param_match,
// full_command. The processes run a private copy of sleep with a unique
// name, so nothing else on the machine matches.
func TestTrackProcessMatching(t *testing.T) {
	t.Parallel()
	c := newCluster(t, "tpm", lab.Options{Nodes: 1, TemplateText: "# unused\n", Stopped: []int{1}})
	dir := t.TempDir()
	link, _ := tpVeth(t, c, c.Node(1))
	name, bin := privateCopy(t, dir, "sleep")
	// A name over comm's 15 characters: comm holds its first 15.
	longName := name + "longname"
	long := filepath.Join(dir, longName)
	if err := os.Symlink(bin, long); err != nil {
		t.Fatal(err)
	}
	for _, argv := range [][]string{
		{name, "86402"}, {name, "86403", "7"}, {bin, "86404"}, {long, "86405"}, {longName, "86406"},
	} {
		path := bin
		if strings.Contains(argv[0], "longname") {
			path = long
		}
		cmd := &exec.Cmd{Path: path, Args: argv} // no Pdeathsig: see noDeathSig
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	}
	cases := []struct {
		process string // the process line, NAME/BIN/LONG replaced
		opt     string // full_command, param_match …
		want    bool   // keepalived 2.2.7 finds a process
	}{
		{"NAME", "", true},             // comm
		{"BIN", "", false},             // comm is not a path
		{"LONGNAME", "", false},        // comm is cut at 15 characters
		{name + "longn", "", true},     // … so its first 15 match
		{"NAME", "full_command", true}, // argv[0], any parameters
		{"BIN", "full_command", true},
		{"NAME", "param_match partial", true}, // no parameters: comm, as without
		{"NAME 86402", "full_command", true},
		{`"NAME 86402"`, "full_command", false}, // one quoted word is the name alone
		{`"NAME 86403 7"`, "full_command", false},
		{"NAME 86403 7", "full_command", true},
		{"NAME 8640", "param_match initial", true}, // the last may be longer, more may follow
		{"NAME 86403 7", "param_match initial", true},
		{"NAME 86403", "param_match partial", true}, // the first parameters exactly
		{"NAME 8640", "param_match partial", false},
		{"NAME 7", "param_match partial", false},
		{"NAME 86403 7", "param_match partial", true},
		{"NAME 86403", "", false}, // exact: no more parameters
		{"NAME 86403 7", "", true},
		{"NAME 86404", "", false}, // with parameters the name is argv[0] …
		{"BIN 86404", "", true},   // … as started
		{"NAME 86404", "full_command", false},
		{"BIN 86404", "full_command", true},
		{"LONGNAME 86405", "", false},
		{"LONGNAME 86406", "", true},
	}
	r := strings.NewReplacer("LONGNAME", longName, "NAME", name, "BIN", bin)
	blocks := make([]string, len(cases))
	for i, tc := range cases {
		blocks[i] = "process " + r.Replace(tc.process) + "\n  " + tc.opt
	}
	text, cfg := keepalivedTracks(t, dir, "tpmatch", link.Attrs().Name, blocks, 100, 150)
	for i, tc := range cases {
		ka := !strings.Contains(text, fmt.Sprintf("(VI_%d) Changing effective priority", i))
		tp := cfg.TrackProcesses[i]
		p := &track.Process{Process: tp.Process, Args: tp.Args, ParamMatch: tp.ParamMatch, FullCommand: tp.FullCommand}
		kw := p.Count() > 0
		line := fmt.Sprintf("process %s %s", tc.process, tc.opt)
		if ka != tc.want {
			t.Errorf("%s: keepalived found a process: %v, want %v", line, ka, tc.want)
		}
		if kw != ka {
			t.Errorf("%s: keepwatch found %d processes, keepalived found any: %v", line, p.Count(), ka)
		}
	}
	if t.Failed() {
		b, _ := os.ReadFile(filepath.Join(dir, "keepalived.conf"))
		t.Logf("keepalived config:\n%s\nlog:\n%s", b, text)
	}
}

// TestTrackProcessForkDelay: fork_delay holds back a gain that a tracked
// process's fork brings (a shell forking a subshell, which keeps its
// name), in keepalived 2.2.7 as in keepwatch; losing it again is
// immediate (no terminate_delay).
func TestTrackProcessForkDelay(t *testing.T) {
	t.Parallel()
	c := newCluster(t, "tpf", lab.Options{Nodes: 1, TemplateText: "# unused\n", Stopped: []int{1}})
	dir := t.TempDir()
	link, _ := tpVeth(t, c, c.Node(1))
	name, bin := privateCopy(t, dir, "sh")
	// The shell reads a line, then forks a subshell (same name, no exec)
	// that waits for the next line (on fd 3: an asynchronous list's
	// stdin is /dev/null).
	cmd := exec.Command(bin, "-c", "exec 3<&0; read x; (read y <&3) & wait") // no Pdeathsig: see noDeathSig
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })

	const forkDelay = 3 * time.Second
	conf := fmt.Sprintf(`global_defs {
  router_id tpfork
}
vrrp_track_process fk {
  process %s
  quorum 2
  fork_delay %d
  weight -10
}
vrrp_instance VI_1 {
  state BACKUP
  interface %s
  virtual_router_id 70
  priority 150
  advert_int 1
  track_process {
    fk
  }
  virtual_ipaddress {
    198.51.100.200/24
  }
}
`, name, int(forkDelay/time.Second), link.Attrs().Name)
	path := filepath.Join(dir, "keepalived.conf")
	if err := os.WriteFile(path, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, ds := kaconf.Load(path, kaconf.LoadOptions{})
	if cfg == nil || len(cfg.TrackProcesses) != 1 {
		t.Fatalf("keepwatch's parser: %v", ds)
	}
	tp := cfg.TrackProcesses[0]
	if tp.ForkDelay != forkDelay {
		t.Fatalf("fork_delay parsed as %v", tp.ForkDelay)
	}
	log := &lockedBuffer{}
	startKeepalivedInit(t, dir, path, log)
	if !strings.Contains(log.String(), "(VI_1) Changing effective priority from 150 to 140") {
		t.Fatalf("keepalived did not start below quorum (one process):\n%s", log.String())
	}

	// keepwatch's tracker, polling often so its own interval does not
	// blur the delay.
	kwUp := make(chan bool, 10)
	p := &track.Process{Process: tp.Process, Args: tp.Args, ParamMatch: tp.ParamMatch, FullCommand: tp.FullCommand,
		Quorum: tp.Quorum, QuorumMax: tp.QuorumMax, TerminateDelay: cmp.Or(tp.TerminateDelay, tp.Delay), ForkDelay: cmp.Or(tp.ForkDelay, tp.Delay),
		Interval: 50 * time.Millisecond, OnChange: func(s track.State) { kwUp <- s.Up }}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { p.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	if up := <-kwUp; up {
		t.Fatal("keepwatch: quorum 2 with one process")
	}

	// Waits for both to report the change (keepalived: kaLine logged from
	// now on) and returns each one's time from now.
	measure := func(kaLine string, want bool) (ka, kw time.Duration) {
		t.Helper()
		from := len(log.String())
		start := time.Now()
		deadline := start.Add(15 * time.Second)
		for ka == 0 || kw == 0 {
			if ka == 0 && strings.Contains(log.String()[from:], kaLine) {
				ka = time.Since(start)
			}
			select {
			case up := <-kwUp:
				if up != want {
					t.Fatalf("keepwatch reported up=%v, want %v", up, want)
				}
				kw = time.Since(start)
			case <-time.After(20 * time.Millisecond):
			}
			if time.Now().After(deadline) {
				t.Fatalf("after 15 s: keepalived %v, keepwatch %v (0: not yet):\n%s", ka, kw, log.String())
			}
		}
		return ka, kw
	}
	if _, err := io.WriteString(stdin, "fork\n"); err != nil {
		t.Fatal(err)
	}
	ka, kw := measure("(VI_1) Changing effective priority from 140 to 150", true)
	t.Logf("forked: quorum gained after %v (keepalived), %v (keepwatch); fork_delay %v", ka.Round(time.Millisecond), kw.Round(time.Millisecond), forkDelay)
	// A little under the delay: the write and the fork are not the
	// same instant, and timers may round.
	for impl, d := range map[string]time.Duration{"keepalived": ka, "keepwatch": kw} {
		if d < forkDelay-500*time.Millisecond {
			t.Errorf("%s gained the quorum %v after the fork, before fork_delay %v", impl, d.Round(time.Millisecond), forkDelay)
		}
	}
	if _, err := io.WriteString(stdin, "exit\n"); err != nil {
		t.Fatal(err)
	}
	ka, kw = measure("(VI_1) Changing effective priority from 150 to 140", false)
	t.Logf("subshell ended: quorum lost after %v (keepalived), %v (keepwatch)", ka.Round(time.Millisecond), kw.Round(time.Millisecond))
	for impl, d := range map[string]time.Duration{"keepalived": ka, "keepwatch": kw} {
		if d >= forkDelay {
			t.Errorf("%s lost the quorum %v after the subshell ended: held back without a terminate_delay", impl, d.Round(time.Millisecond))
		}
	}
}

// TestTrackProcessQuorum: quorum and quorum_max with three matching
// processes, keepalived 2.2.7 (its instance's priority at start-up)
// against keepwatch's tracker (its first report). A quorum_max under the
// quorum is ignored by both.
func TestTrackProcessQuorum(t *testing.T) {
	t.Parallel()
	c := newCluster(t, "tpq", lab.Options{Nodes: 1, TemplateText: "# unused\n", Stopped: []int{1}})
	dir := t.TempDir()
	link, _ := tpVeth(t, c, c.Node(1))
	name, bin := privateCopy(t, dir, "sleep")
	for range 3 {
		cmd := exec.Command(bin, "1000") // no Pdeathsig: see noDeathSig
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	}
	cases := []struct {
		opts string
		want bool // keepalived 2.2.7's status with 3 processes
	}{
		{"quorum 3", true},
		{"quorum 4", false},
		{"quorum 1\n  quorum_max 1", false},
		{"quorum_max 2", false},
		{"quorum 2\n  quorum_max 3", true},
		{"quorum 3\n  quorum_max 2", true}, // "quorum_max is less than quorum - ignoring"
		{"quorum 4\n  quorum_max 2", false},
	}
	blocks := make([]string, len(cases))
	for i, tc := range cases {
		blocks[i] = "process " + name + "\n  " + tc.opts
	}
	text, cfg := keepalivedTracks(t, dir, "tpquorum", link.Attrs().Name, blocks, 130, 180)
	for i, tc := range cases {
		ka := !strings.Contains(text, fmt.Sprintf("(VI_%d) Changing effective priority", i))
		tp := cfg.TrackProcesses[i]
		kw := false
		p := &track.Process{Process: tp.Process, Quorum: tp.Quorum, QuorumMax: tp.QuorumMax, OnChange: func(s track.State) { kw = s.Up }}
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		p.Run(ctx) // reports the first state, then sees ctx done
		opts := strings.ReplaceAll(tc.opts, "\n  ", "; ")
		if ka != tc.want {
			t.Errorf("%s with 3 processes: keepalived up=%v, want %v", opts, ka, tc.want)
		}
		if kw != ka {
			t.Errorf("%s with 3 processes: keepwatch up=%v, keepalived up=%v", opts, kw, ka)
		}
	}
	if t.Failed() {
		b, _ := os.ReadFile(filepath.Join(dir, "keepalived.conf"))
		t.Logf("keepalived config:\n%s\nlog:\n%s", b, text)
	}
}
