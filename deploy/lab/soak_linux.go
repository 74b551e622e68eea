package lab

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/keepwatch/keepwatch/engine/netif/nskit"
)

// SoakTrackInterface is the interface every soak node's instances
// track (Params.TrackInterface); the track-delete fault removes it.
const SoakTrackInterface = "kwtrack"

// SoakExtra are the addresses the soak's VIP-list edits add to and remove
// from the instances (documentation ranges, beside VIP4 and VIP6).
var SoakExtra = []netip.Prefix{
	netip.MustParsePrefix("192.0.2.101/24"), netip.MustParsePrefix("192.0.2.102/24"), netip.MustParsePrefix("192.0.2.103/24"),
	netip.MustParsePrefix("2001:db8::101/64"), netip.MustParsePrefix("2001:db8::102/64"), netip.MustParsePrefix("2001:db8::103/64"),
}

// SoakPriorities is the range the soak's reload storms draw priorities from.
var SoakPriorities = [2]int{50, 200}

// SoakOptions configure Soak.
type SoakOptions struct {
	Duration time.Duration
	Seed     uint64
	// Slack is added to one Master_Down_Interval wherever the invariants
	// allow that long after a fault: the sampler's period and a loaded
	// machine's scheduling delay. 0 means 150 ms.
	Slack time.Duration
	// Out receives the faults as they are injected and the summary.
	Out io.Writer
	// LeakWatch is the (1-based) node never SIGKILLed, so one agent lives
	// the whole run and its goroutines, fds and RSS can be compared
	// between the first and last thirds. 0 means node 1.
	LeakWatch int
}

// SoakFault is one injected fault.
type SoakFault struct {
	Kind       string
	Nodes      []int
	Start, End time.Duration // since the soak started
	Detail     string
}

func (f SoakFault) String() string {
	return fmt.Sprintf("%8s-%-8s %-10s %-8s %s", fmtDur(f.Start), fmtDur(f.End), f.Kind, nodesString(f.Nodes), f.Detail)
}

// SoakViolation is an invariant broken, with the timeline around it.
type SoakViolation struct {
	Check    string
	VIP      netip.Addr
	From, To time.Duration
	Detail   string
	Timeline string
}

func (v SoakViolation) String() string {
	s := fmt.Sprintf("%s: %s from %s to %s (%s)", v.Check, v.VIP, fmtDur(v.From), fmtDur(v.To), (v.To - v.From).Round(time.Millisecond))
	if v.VIP == (netip.Addr{}) {
		s = v.Check
	}
	if v.Detail != "" {
		s += ": " + v.Detail
	}
	return s
}

// SoakReport is what Soak found.
type SoakReport struct {
	Faults     []SoakFault
	Checks     []string // one line per check: what was checked, how often
	Violations []SoakViolation
	Summary    string
}

// OK is true when no invariant was broken.
func (r *SoakReport) OK() bool { return len(r.Violations) == 0 }

// soak is one run's state.
type soak struct {
	c     *Cluster
	o     SoakOptions
	rng   *rand.Rand
	rngMu sync.Mutex
	t0    time.Time
	mdi   time.Duration
	grace time.Duration
	dir   string

	mu       sync.Mutex
	faults   []SoakFault
	busy     map[int]bool // nodes in a fault
	stopped  map[int]bool // SIGSTOPped: not scraped
	epochs   []epoch      // the configured VIP set over time
	lifes    []*lifetime  // every daemon process
	counterV []SoakViolation

	cfgMu sync.Mutex // config renders and reloads
	extra []netip.Prefix

	samples []holderSample
	// cutAdverts counts, per process and VRID, the adverts an agent counted
	// while its link was cut: the kernel discards them (carrier off: the
	// device's qdisc is noop and the send still succeeds), so they are sent
	// as far as the agent can know and never reach the wire.
	cutAdverts map[int]map[int]float64
}

type epoch struct {
	at   time.Duration
	vips []netip.Addr
}

// lifetime is one process of a node, from its start to its end.
type lifetime struct {
	node       int
	pid        int
	start, end time.Duration // end 0 while running
	res        []resSample
	// counters: the last value of each counter series, for monotonicity.
	counters map[string]float64
	scrapes  int
	series   int
}

type resSample struct {
	at              time.Duration
	goroutines, fds float64
	rss             float64 // bytes
}

type holderSample struct {
	at      time.Duration
	holders map[netip.Addr][]int
}

func (s *soak) now() time.Duration { return time.Since(s.t0) }

func (s *soak) randn(n int) int {
	s.rngMu.Lock()
	defer s.rngMu.Unlock()
	return s.rng.IntN(n)
}

func (s *soak) randDur(lo, hi time.Duration) time.Duration {
	return lo + time.Duration(s.randn(int(hi-lo)/int(time.Millisecond)+1))*time.Millisecond
}

func (s *soak) printf(format string, a ...any) {
	if s.o.Out != nil {
		fmt.Fprintf(s.o.Out, format, a...)
	}
}

// Soak runs the chaos soak (issue 9 §5) on c, whose nodes must all have
// been created stopped (Options.Stopped) with Params.TrackInterface set to
// SoakTrackInterface: it creates the tracked interfaces, starts a capture
// and the daemon on every node, injects random faults for o.Duration, and
// checks the invariants over the whole run. The report's Summary is what
// it printed last.
func (c *Cluster) Soak(ctx context.Context, o SoakOptions) (*SoakReport, error) {
	if o.Slack == 0 {
		o.Slack = 150 * time.Millisecond
	}
	if o.LeakWatch == 0 {
		o.LeakWatch = 1
	}
	p := c.Nodes[0].Params
	if p.TrackInterface != SoakTrackInterface {
		return nil, fmt.Errorf("lab: soak: nodes must track %s (Params.TrackInterface)", SoakTrackInterface)
	}
	// RFC 9568 §6.1: Master_Down_Interval = 3 × Advertisement_Interval +
	// Skew_Time, Skew_Time = ((256 − priority) × Advertisement_Interval) / 256;
	// the lowest priority the soak gives any node waits longest.
	iv := p.Interval
	mdi := 3*iv + time.Duration(256-SoakPriorities[0])*iv/256
	s := &soak{c: c, o: o, rng: rand.New(rand.NewPCG(o.Seed, 9568)), mdi: mdi, grace: mdi + o.Slack,
		busy: map[int]bool{}, stopped: map[int]bool{}, cutAdverts: map[int]map[int]float64{}, dir: filepath.Join(c.Dir, "soak"), extra: slices.Clone(p.Extra)}
	if err := os.MkdirAll(s.dir, 0o755); err != nil {
		return nil, err
	}
	impls := make([]string, len(c.Nodes))
	for i, n := range c.Nodes {
		impls[i] = n.Impl.String()
	}
	s.printf("soak: %s, seed %d, nodes %s, VRRPv%d advert_int %s, Master_Down_Interval %s (priority %d), grace %s\n",
		o.Duration, o.Seed, strings.Join(impls, ","), p.Version, iv, mdi, SoakPriorities[0], s.grace)

	for _, n := range c.Nodes {
		if err := setTrackLink(n, true); err != nil {
			return nil, err
		}
	}
	var caps []*soakCapture
	defer func() {
		for _, cp := range caps {
			_ = cp.cap.Stop()
		}
	}()
	for _, n := range c.Nodes {
		path := filepath.Join(s.dir, fmt.Sprintf("n%d.pcap", n.Index))
		cp, err := n.Capture(path, "ip proto 112 or ip6 proto 112")
		if err != nil {
			return nil, err
		}
		caps = append(caps, &soakCapture{node: n, cap: cp, path: path})
	}
	s.t0 = time.Now()
	s.epochs = []epoch{{0, s.vipSet(s.extra)}}

	// The holders sampler runs from the start: the start-up is the first
	// fault window (everyone BACKUP, then one election).
	sctx, stopSampler := context.WithCancel(ctx)
	samplerDone := make(chan struct{})
	go func() { defer close(samplerDone); s.sampleHolders(sctx) }()
	defer func() { stopSampler(); <-samplerDone }()

	startFault := s.begin("start", allNodes(c), "")
	for _, n := range c.Nodes {
		if err := s.start(ctx, n); err != nil {
			return nil, err
		}
	}
	s.end(startFault, "")

	scrapeDone := make(chan struct{})
	go func() { defer close(scrapeDone); s.scrape(sctx) }()

	// Faults, until the duration is up.
	deadline := time.Now().Add(o.Duration)
	var wg sync.WaitGroup
	var faultErr error
	var errMu sync.Mutex
	for time.Now().Before(deadline) && ctx.Err() == nil {
		select {
		case <-ctx.Done():
		case <-time.After(s.randDur(600*time.Millisecond, 2400*time.Millisecond)):
		}
		if time.Until(deadline) < 3*time.Second {
			break
		}
		kind, nodes := s.pick()
		if kind == "" {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := s.inject(ctx, kind, nodes); err != nil {
				errMu.Lock()
				faultErr = errors.Join(faultErr, fmt.Errorf("%s %s: %w", kind, nodesString(nodes), err))
				errMu.Unlock()
				s.printf("%8s  %s %s: %v\n", fmtDur(s.now()), kind, nodesString(nodes), err)
			}
		}()
	}
	wg.Wait()
	if faultErr != nil {
		return nil, faultErr
	}
	// Settle: every node running, nothing faulted, one election's time.
	time.Sleep(3 * s.grace)
	rep := &SoakReport{}
	// One holder per configured VIP at the end.
	final := s.now()
	wantVIPs := s.epochs[len(s.epochs)-1].vips
	waitEnd := time.Now().Add(5 * time.Second)
	var finalHolders map[netip.Addr][]int
	for {
		finalHolders = s.readHolders()
		ok := true
		for _, v := range wantVIPs {
			ok = ok && len(finalHolders[v]) == 1
		}
		if ok || time.Now().After(waitEnd) {
			if !ok {
				rep.Violations = append(rep.Violations, SoakViolation{Check: "final: one holder per VIP", Detail: fmt.Sprintf("5 s after the settle time: %v", finalHolders)})
			}
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	stopSampler()
	<-samplerDone
	<-scrapeDone
	end := s.now()

	// Adverts sent by each keepwatch process against the wire.
	s.compareAdverts(ctx, caps, rep)
	s.mu.Lock()
	for _, l := range s.lifes {
		if l.end == 0 {
			l.end = end
		}
	}
	s.mu.Unlock()
	s.checkHolders(rep, final)
	s.checkCounters(rep)
	s.checkResources(rep, end)
	rep.Faults = s.faults
	rep.Summary = s.summary(rep, end)
	s.printf("%s", rep.Summary)
	return rep, nil
}

type soakCapture struct {
	node *Node
	cap  *nskit.Capture
	path string
}

func allNodes(c *Cluster) []int {
	var out []int
	for _, n := range c.Nodes {
		out = append(out, n.Index)
	}
	return out
}

// vipSet is every VIP the config holds with extra.
func (s *soak) vipSet(extra []netip.Prefix) []netip.Addr {
	out := []netip.Addr{VIP4.Addr(), VIP6.Addr()}
	for _, x := range extra {
		out = append(out, x.Addr())
	}
	return out
}

// universe is every address the soak may configure.
func (s *soak) universe() []netip.Addr { return s.vipSet(SoakExtra) }

func (s *soak) begin(kind string, nodes []int, detail string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, n := range nodes {
		s.busy[n] = true
	}
	s.faults = append(s.faults, SoakFault{Kind: kind, Nodes: nodes, Start: s.now(), End: -1, Detail: detail})
	return len(s.faults) - 1
}

func (s *soak) end(i int, detail string) {
	s.mu.Lock()
	f := &s.faults[i]
	f.End = s.now()
	if detail != "" {
		f.Detail = strings.TrimSpace(f.Detail + " " + detail)
	}
	for _, n := range f.Nodes {
		delete(s.busy, n)
	}
	line := f.String()
	s.mu.Unlock()
	s.printf("%s\n", line)
}

// The fault kinds, each with the nodes it may hit.
const (
	faultFlap     = "link-flap"
	faultLoss     = "loss30"
	faultKill     = "kill"
	faultStop     = "stop-cont"
	faultHUP      = "hup-storm"
	faultVIPs     = "vip-edit"
	faultTrackDel = "track-del"
)

var faultKinds = []string{faultFlap, faultLoss, faultKill, faultStop, faultHUP, faultVIPs, faultTrackDel}

// pick chooses a fault and its nodes among those not in a fault already:
// at most two faults at once, so the invariants are also checked strictly
// between them; a VIP-list edit reloads every node and so runs alone.
func (s *soak) pick() (string, []int) {
	kind := faultKinds[s.randn(len(faultKinds))]
	r := s.randn(1 << 20)
	s.mu.Lock()
	defer s.mu.Unlock()
	active := 0
	for _, f := range s.faults {
		if f.End < 0 {
			active++
		}
	}
	if kind == faultVIPs {
		if active > 0 {
			return "", nil
		}
		for _, n := range s.c.Nodes {
			s.busy[n.Index] = true
		}
		return kind, allNodes(s.c)
	}
	// One fault at a time mostly, sometimes two: overlapping faults are the
	// chaos, the strict time between faults is where the invariants bite.
	if active >= 2 || (active == 1 && r%5 != 0) {
		return "", nil
	}
	var free []int
	for _, n := range s.c.Nodes {
		if s.busy[n.Index] {
			continue
		}
		if kind == faultKill && n.Index == s.o.LeakWatch {
			continue
		}
		// keepalived 2.2.7 without dynamic_interfaces does not follow a
		// deleted and recreated interface: keepwatch's fault only.
		if kind == faultTrackDel && n.Impl == Keepalived {
			continue
		}
		free = append(free, n.Index)
	}
	if len(free) == 0 {
		return "", nil
	}
	n := free[r%len(free)]
	s.busy[n] = true
	return kind, []int{n}
}

func (s *soak) inject(ctx context.Context, kind string, nodes []int) error {
	n := s.c.Node(nodes[0])
	switch kind {
	case faultFlap:
		d := s.randDur(200*time.Millisecond, 2*time.Second)
		i := s.begin(kind, nodes, fmt.Sprintf("link down %s", d))
		before := s.advertCounters(ctx, n)
		err := n.Cut()
		time.Sleep(d)
		err = errors.Join(err, n.Restore())
		s.end(i, "")
		s.addCutAdverts(n, before, s.advertCounters(ctx, n))
		return err
	case faultLoss:
		d := s.randDur(time.Second, 3*time.Second)
		i := s.begin(kind, nodes, fmt.Sprintf("30%% loss both ways for %s", d))
		err := n.Loss(30)
		time.Sleep(d)
		err = errors.Join(err, n.Loss(0))
		s.end(i, "")
		return err
	case faultKill:
		d := s.randDur(0, time.Second)
		i := s.begin(kind, nodes, fmt.Sprintf("SIGKILL, restart after %s", d))
		for _, pid := range n.Pids() { // keepalived: the parent first, so it restarts no child
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
		_ = n.Stop()
		s.ended(n)
		time.Sleep(d)
		err := s.start(ctx, n)
		s.end(i, "")
		return err
	case faultStop:
		d := s.randDur(300*time.Millisecond, 2*time.Second)
		i := s.begin(kind, nodes, fmt.Sprintf("SIGSTOP for %s", d))
		s.mu.Lock()
		s.stopped[n.Index] = true
		s.mu.Unlock()
		pids := n.Pids()
		for _, pid := range pids {
			_ = syscall.Kill(pid, syscall.SIGSTOP)
		}
		time.Sleep(d)
		for _, pid := range pids {
			_ = syscall.Kill(pid, syscall.SIGCONT)
		}
		s.mu.Lock()
		delete(s.stopped, n.Index)
		s.mu.Unlock()
		s.end(i, "")
		return nil
	case faultHUP:
		k := 2 + s.randn(5)
		i := s.begin(kind, nodes, "")
		var prios []string
		var err error
		s.cfgMu.Lock()
		for range k {
			n.Priority = SoakPriorities[0] + s.randn(SoakPriorities[1]-SoakPriorities[0]+1)
			prios = append(prios, strconv.Itoa(n.Priority))
			err = errors.Join(err, s.reload(n))
			time.Sleep(s.randDur(0, 150*time.Millisecond))
		}
		s.cfgMu.Unlock()
		s.end(i, fmt.Sprintf("%d SIGHUPs, priority %s", k, strings.Join(prios, "→")))
		return err
	case faultVIPs:
		var extra []netip.Prefix
		for _, x := range SoakExtra {
			if s.randn(2) == 0 {
				extra = append(extra, x)
			}
		}
		i := s.begin(kind, nodes, "")
		var err error
		s.cfgMu.Lock()
		s.extra = extra
		for _, n := range s.c.Nodes {
			p := n.Params
			p.Extra = extra
			if rerr := n.Render(p); rerr != nil {
				err = errors.Join(err, rerr)
			}
		}
		// A storm: every node reloads one to three times, in turn.
		for range 1 + s.randn(3) {
			for _, n := range s.c.Nodes {
				if n.Running() {
					_ = n.Signal(syscall.SIGHUP)
				}
				time.Sleep(s.randDur(0, 50*time.Millisecond))
			}
		}
		s.cfgMu.Unlock()
		var names []string
		for _, x := range extra {
			names = append(names, x.Addr().String())
		}
		s.end(i, "extra VIPs now ["+strings.Join(names, " ")+"]")
		s.mu.Lock()
		s.epochs = append(s.epochs, epoch{at: s.faults[i].End, vips: s.vipSet(extra)})
		s.mu.Unlock()
		return err
	case faultTrackDel:
		d := s.randDur(300*time.Millisecond, 2*time.Second)
		i := s.begin(kind, nodes, fmt.Sprintf("%s deleted for %s", SoakTrackInterface, d))
		err := setTrackLink(n, false)
		time.Sleep(d)
		err = errors.Join(err, setTrackLink(n, true))
		s.end(i, "")
		return err
	}
	return fmt.Errorf("unknown fault %q", kind)
}

// reload renders n's config for its current priority and sends SIGHUP.
func (s *soak) reload(n *Node) error {
	p := n.Params
	p.Extra = s.extra
	if err := n.Render(p); err != nil {
		return err
	}
	if !n.Running() {
		return nil
	}
	return n.Signal(syscall.SIGHUP)
}

// start starts n's daemon and records its lifetime.
func (s *soak) start(ctx context.Context, n *Node) error {
	at := s.now()
	if err := n.Start(ctx); err != nil {
		return err
	}
	s.mu.Lock()
	s.lifes = append(s.lifes, &lifetime{node: n.Index, pid: n.Pid(), start: at, counters: map[string]float64{}})
	s.mu.Unlock()
	return nil
}

// ended closes n's current lifetime.
func (s *soak) ended(n *Node) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, l := range s.lifes {
		if l.node == n.Index && l.end == 0 {
			l.end = s.now()
		}
	}
}

// setTrackLink creates (up) or deletes the tracked interface in n.
func setTrackLink(n *Node, present bool) error {
	h, err := netlink.NewHandleAt(n.NsHandle())
	if err != nil {
		return err
	}
	defer h.Close()
	if !present {
		l, err := h.LinkByName(SoakTrackInterface)
		if err != nil {
			return fmt.Errorf("lab: node %d: %s: %w", n.Index, SoakTrackInterface, err)
		}
		return h.LinkDel(l)
	}
	// A veth pair inside the node (this kernel may lack the dummy driver):
	// both ends up, so the tracked end is up and running; deleting it
	// deletes its peer too.
	peer := SoakTrackInterface + "p"
	v := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: SoakTrackInterface}, PeerName: peer}
	if err := h.LinkAdd(v); err != nil && !errors.Is(err, unix.EEXIST) {
		return fmt.Errorf("lab: node %d: adding %s: %w", n.Index, SoakTrackInterface, err)
	}
	for _, name := range []string{peer, SoakTrackInterface} {
		l, err := h.LinkByName(name)
		if err != nil {
			return err
		}
		if err := h.LinkSetUp(l); err != nil {
			return err
		}
	}
	return nil
}

// sampleHolders records who holds each address of the universe every
// 10 ms, from one netlink dump per node, until ctx ends. It runs on a
// locked thread at a raised scheduling priority (nice -10): the
// daemons run at DefaultNice, and a sampler starved on a loaded machine
// would see changes late and report overlaps that did not happen.
func (s *soak) sampleHolders(ctx context.Context) {
	runtime.LockOSThread()
	_ = unix.Setpriority(unix.PRIO_PROCESS, 0, -10) // this thread only
	handles := make([]*netlink.Handle, len(s.c.Nodes))
	for i, n := range s.c.Nodes {
		h, err := netlink.NewHandleAt(n.NsHandle())
		if err != nil {
			continue
		}
		handles[i] = h
		defer h.Close()
	}
	t := time.NewTicker(10 * time.Millisecond)
	defer t.Stop()
	var last map[netip.Addr][]int
	for {
		at := s.now()
		h := s.holdersWith(handles)
		if last == nil || !sameHolders(h, last) {
			s.mu.Lock()
			s.samples = append(s.samples, holderSample{at: at, holders: h})
			s.mu.Unlock()
			last = h
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (s *soak) readHolders() map[netip.Addr][]int {
	handles := make([]*netlink.Handle, len(s.c.Nodes))
	for i, n := range s.c.Nodes {
		if h, err := netlink.NewHandleAt(n.NsHandle()); err == nil {
			handles[i] = h
			defer h.Close()
		}
	}
	return s.holdersWith(handles)
}

func (s *soak) holdersWith(handles []*netlink.Handle) map[netip.Addr][]int {
	uni := s.universe()
	out := make(map[netip.Addr][]int, len(uni))
	for i, h := range handles {
		if h == nil {
			continue
		}
		addrs, err := h.AddrList(nil, netlink.FAMILY_ALL)
		if err != nil {
			continue
		}
		for _, a := range addrs {
			ip, ok := netip.AddrFromSlice(a.IP)
			if !ok {
				continue
			}
			ip = ip.Unmap()
			if slices.Contains(uni, ip) && !slices.Contains(out[ip], i+1) {
				out[ip] = append(out[ip], i+1)
			}
		}
	}
	for _, v := range out {
		slices.Sort(v)
	}
	return out
}

func sameHolders(a, b map[netip.Addr][]int) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if !slices.Equal(v, b[k]) {
			return false
		}
	}
	return true
}

// pidCounters are one process's adverts_sent_total per VRID.
type pidCounters struct {
	pid int
	c   map[int]float64
}

// advertCounters reads n's adverts_sent_total per VRID (keepwatch only).
func (s *soak) advertCounters(ctx context.Context, n *Node) *pidCounters {
	if n.Impl != Keepwatch {
		return nil
	}
	pid := n.Pid()
	fctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	b, err := n.Fetch(fctx, "/metrics")
	if err != nil || n.Pid() != pid {
		return nil
	}
	out := &pidCounters{pid: pid, c: map[int]float64{}}
	for _, in := range n.instances() {
		out.c[in.VRID], _ = SumMetric(string(b), "keepwatch_vrrp_adverts_sent_total", "vrid", strconv.Itoa(in.VRID))
	}
	return out
}

func (s *soak) addCutAdverts(n *Node, before, after *pidCounters) {
	if before == nil || after == nil || before.pid != after.pid {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	m := s.cutAdverts[after.pid]
	if m == nil {
		m = map[int]float64{}
		s.cutAdverts[after.pid] = m
	}
	for vrid, v := range after.c {
		m[vrid] += v - before.c[vrid]
	}
}
