package ipvs

// These run inside the VM (KEEPWATCH_VM=tier), against the kernel's real IPVS.

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/keepwatch/keepwatch/engine/event"
	"github.com/keepwatch/keepwatch/engine/event/eventtest"
	"github.com/keepwatch/keepwatch/engine/vrrp"
)

var (
	vip4 = netip.MustParseAddr("192.0.2.10")
	vip6 = netip.MustParseAddr("2001:db8:0:1::10")
	rs4a = netip.MustParseAddr("198.51.100.1")
	rs4b = netip.MustParseAddr("198.51.100.2")
	rs6  = netip.MustParseAddr("2001:db8:0:2::1")
)

// vmTable is one service per scheduler the guest kernel has, cycling
// through protocols and forwarding methods, plus fwmark, IPv6, persistence,
// ops, scheduler flags and thresholds.
func vmTable() []Service {
	protos := []Protocol{TCP, UDP, SCTP}
	fwds := []Forward{NAT, DR, Tunnel}
	var out []Service
	for i, sched := range Schedulers {
		if sched == TwoRandomChoices {
			continue
		}
		s := Service{Key: AddrKey(vip4, uint16(1000+i), protos[i%3]), Scheduler: sched}
		for j, rs := range []netip.Addr{netip.AddrFrom4([4]byte{198, 51, 100, byte(10 + i)}), netip.AddrFrom4([4]byte{198, 51, 100, byte(100 + i)})} {
			s.Destinations = append(s.Destinations, Destination{Addr: rs, Port: uint16(8000 + i), Weight: 1 + j, Forward: fwds[(i+j)%3]})
		}
		out = append(out, s)
	}
	out[0].Timeout = 300 * time.Second // rr, persistent per /24
	out[0].Granularity = 24
	out[1].Protocol = UDP // wrr, one-packet scheduling
	out[1].Flags = FlagOnePacket
	out[7].Flags = FlagSHPort | FlagSHFallback // sh
	out[1].Destinations[0].UpperThreshold, out[1].Destinations[0].LowerThreshold = 100, 10
	out = append(out,
		Service{Key: MarkKey(42, vrrp.IPv4), Scheduler: WeightedLeastConnection, Timeout: 60 * time.Second,
			Destinations: []Destination{{Addr: rs4b, Weight: 3, Forward: DR}}},
		Service{Key: MarkKey(43, vrrp.IPv6), Scheduler: RoundRobin,
			Destinations: []Destination{{Addr: rs6, Weight: 1, Forward: DR}}},
		Service{Key: AddrKey(vip6, 443, TCP), Scheduler: MaglevHashing, Flags: FlagMHPort, Timeout: 30 * time.Second, Granularity: 64,
			Destinations: []Destination{{Addr: rs6, Port: 8443, Weight: 2, Forward: NAT}, {Addr: netip.MustParseAddr("2001:db8:0:2::9"), Port: 8443, Weight: 1, Forward: Tunnel}}},
	)
	return out
}

func destinationCount(ss []Service) int {
	n := 0
	for _, s := range ss {
		n += len(s.Destinations)
	}
	return n
}

// assertKernel fails unless the kernel's table (ours) equals want, read two
// ways: through our own Read, and through ipvsadm-save, an independent reader.
func assertKernel(t *testing.T, k Kernel, want []Service) {
	t.Helper()
	got, err := Read(k, nil)
	if err != nil {
		t.Fatal(err)
	}
	if ops := Diff(want, got); len(ops) != 0 {
		t.Errorf("kernel differs from desired; repair would be %v", opStrings(ops))
	}
	out, err := exec.Command("ipvsadm", "-S", "-n").CombinedOutput()
	if err != nil {
		t.Fatalf("ipvsadm -S: %v: %s", err, out)
	}
	var svcs, dests int
	for _, l := range strings.Split(string(out), "\n") {
		switch {
		case strings.HasPrefix(l, "-A "):
			svcs++
		case strings.HasPrefix(l, "-a "):
			dests++
		}
	}
	if svcs != len(want) || dests != destinationCount(want) {
		t.Errorf("ipvsadm -S lists %d services and %d destinations, want %d and %d:\n%s", svcs, dests, len(want), destinationCount(want), out)
	}
}

func ipvsadm(t *testing.T, args ...string) string {
	t.Helper()
	out, err := exec.Command("ipvsadm", args...).CombinedOutput()
	if err != nil {
		t.Fatalf("ipvsadm %v: %v: %s", args, err, out)
	}
	return string(out)
}

func kernelTier(t *testing.T) {
	rec := &eventtest.Recorder{}
	h, err := Open(rec)
	if err != nil {
		t.Fatalf("Open in a kernel with IPVS: %v", err)
	}
	defer h.Close()
	r := NewReconciler(h, rec)
	if err := r.Flush(); err != nil { // lvs_flush at start
		t.Fatal(err)
	}

	table := vmTable()
	t.Run("every scheduler, protocol and method", func(t *testing.T) {
		rep, err := r.Set(table)
		if err != nil {
			t.Fatal(err)
		}
		if rep.Added != len(table)+destinationCount(table) {
			t.Errorf("added %d, want %d", rep.Added, len(table)+destinationCount(table))
		}
		assertKernel(t, h, table)
		save := ipvsadm(t, "-S", "-n")
		for _, want := range []string{
			"-A -t 192.0.2.10:1000 -s rr -p 300 -M 255.255.255.0",
			"-A -u 192.0.2.10:1001 -s wrr -o",
			"-A --sctp-service 192.0.2.10:1002 -s lc",
			"-A -f 42 -s wlc -p 60",
			"-A -f 43 -6 -s rr",
			"-a -f 43 -6 -r [2001:db8:0:2::1]:0 -g -w 1",
			"-A -t [2001:db8:0:1::10]:443 -s mh -p 30 -M 64 -b mh-port",
			"-a -t [2001:db8:0:1::10]:443 -r [2001:db8:0:2::9]:8443 -i -w 1",
			"-a -t [2001:db8:0:1::10]:443 -r [2001:db8:0:2::1]:8443 -m -w 2",
			"-A -u 192.0.2.10:1007 -s sh -b sh-fallback,sh-port",
			"-a --sctp-service 192.0.2.10:1002 -r 198.51.100.12:8002 -i -w 1",
		} {
			if !strings.Contains(save, want) {
				t.Errorf("ipvsadm -S lacks %q:\n%s", want, save)
			}
		}
		thr := ipvsadm(t, "-Ln", "--thresholds", "-u", "192.0.2.10:1001")
		if !regexp.MustCompile(`198\.51\.100\.11:8001\s+100\s+10`).MatchString(thr) {
			t.Errorf("thresholds 100/10 not in ipvsadm -Ln --thresholds:\n%s", thr)
		}
		if !t.Failed() {
			t.Logf("table of %d services and %d destinations matches ipvsadm -S", len(table), destinationCount(table))
		}
	})

	t.Run("own dump reads what moby/ipvs reads", func(t *testing.T) {
		ours, err := Read(h, nil) // the 64-bit dump
		if err != nil {
			t.Fatal(err)
		}
		theirs, err := Read(h.Handle, nil) // moby/ipvs
		if err != nil {
			t.Fatal(err)
		}
		if ops := Diff(ours, theirs); len(ops) != 0 || len(ours) != len(table) {
			t.Errorf("the two readers differ: %v (%d services)", opStrings(ops), len(ours))
		}
	})

	t.Run("one weight changed is one op", func(t *testing.T) {
		table[3].Destinations[1].Weight = 9
		rep, err := r.Set(table)
		if err != nil {
			t.Fatal(err)
		}
		if len(rep.Ops) != 1 || rep.Ops[0].Kind != UpdateDestination || rep.Ops[0].Dest.Weight != 9 {
			t.Errorf("ops %v, want one update-destination to weight 9", opStrings(rep.Ops))
		}
		assertKernel(t, h, table)
	})

	t.Run("ipvsadm -C behind our back is repaired", func(t *testing.T) {
		ipvsadm(t, "-C")
		rep, err := r.Resync()
		if err != nil {
			t.Fatal(err)
		}
		if rep.Added != len(table)+destinationCount(table) || rep.Changed+rep.Removed != 0 {
			t.Errorf("repair %+v, want everything re-added", rep)
		}
		assertKernel(t, h, table)
	})

	t.Run("edits behind our back are repaired", func(t *testing.T) {
		ipvsadm(t, "-e", "-t", "192.0.2.10:1003", "-r", "198.51.100.13:8003", "-w", "50", "-m")
		ipvsadm(t, "-E", "-t", "192.0.2.10:1003", "-s", "rr")
		ipvsadm(t, "-d", "-t", "192.0.2.10:1000", "-r", "198.51.100.10:8000")
		ipvsadm(t, "-a", "-t", "192.0.2.10:1000", "-r", "198.51.100.77:8000", "-m")
		rep, err := r.Resync()
		if err != nil {
			t.Fatal(err)
		}
		if rep.Added != 1 || rep.Changed != 2 || rep.Removed != 1 {
			t.Errorf("repair %+v (%v), want 1 added, 2 changed, 1 removed", rep, opStrings(rep.Ops))
		}
		assertKernel(t, h, table)
		// Someone else's service is not ours to remove.
		ipvsadm(t, "-A", "-t", "203.0.113.1:22", "-s", "rr")
		if rep, _ := r.Resync(); len(rep.Ops) != 0 {
			t.Errorf("a foreign service made the reconciler act: %v", opStrings(rep.Ops))
		}
	})

	t.Run("weights follow checks", func(t *testing.T) { checksTier(t, r, h) })
	t.Run("counters after traffic", func(t *testing.T) { countersTier(t, r, h) })

	t.Run("one failed op in a batch fails alone", func(t *testing.T) {
		ghost := Service{Key: AddrKey(vip4, 9999, TCP), Scheduler: RoundRobin}
		fresh := Service{Key: AddrKey(vip4, 9998, TCP), Scheduler: RoundRobin}
		ops := []Op{
			{Kind: AddService, Service: fresh},
			{Kind: AddDestination, Service: ghost, Dest: Destination{Addr: rs4a, Port: 1, Weight: 1}}, // no such service
			{Kind: AddDestination, Service: fresh, Dest: Destination{Addr: rs4a, Port: 2, Weight: 1}},
			{Kind: AddService, Service: table[0]},                                          // exists: becomes an update
			{Kind: DelDestination, Service: fresh, Dest: Destination{Addr: rs4b, Port: 3}}, // absent: fine
		}
		done, err := Apply(h, ops)
		if done != 4 || err == nil || !strings.Contains(err.Error(), "192.0.2.10:9999/tcp") {
			t.Errorf("Apply = %d, %v; want 4 done and one error naming 192.0.2.10:9999/tcp", done, err)
		}
		got, _ := Read(h, func(k Key) bool { return k == fresh.Key })
		i := slices.IndexFunc(got, func(s Service) bool { return s.Key == fresh.Key })
		if i < 0 || len(got[i].Destinations) != 1 {
			t.Errorf("ops after the failed one were not applied: %+v", got)
		}
		if _, err := Apply(h, []Op{{Kind: DelService, Service: fresh}}); err != nil {
			t.Error(err)
		}
	})

	t.Run("stop removes ours only", func(t *testing.T) {
		if _, err := r.Stop(); err != nil {
			t.Fatal(err)
		}
		got, err := Read(h, nil)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 1 || got[0].Key != AddrKey(netip.MustParseAddr("203.0.113.1"), 22, TCP) {
			t.Errorf("after Stop the kernel holds %v, want only the foreign service", got)
		}
		if err := r.Flush(); err != nil { // lvs_flush_on_stop
			t.Fatal(err)
		}
		if got, _ := Read(h, nil); len(got) != 0 {
			t.Errorf("after Flush the kernel holds %v", got)
		}
	})

	t.Run("keepalived sample configs", func(t *testing.T) {
		paths, _ := filepath.Glob(vmSampleDir + "/keepalived.conf.*")
		if len(paths) == 0 {
			t.Fatal("no sample configs in the image")
		}
		for _, p := range paths {
			table := sampleTable(t, loadConf(t, p))
			sr := NewReconciler(h, rec)
			if _, err := sr.Set(table); err != nil {
				t.Errorf("%s: %v", filepath.Base(p), err)
				continue
			}
			assertKernel(t, h, table)
			if _, err := sr.Stop(); err != nil {
				t.Errorf("%s: stop: %v", filepath.Base(p), err)
			}
			t.Logf("%s: %d services, %d destinations programmed and removed", filepath.Base(p), len(table), destinationCount(table))
		}
	})

	t.Run("lvs_timeouts", func(t *testing.T) { timeoutsTier(t, h) })
	t.Run("lvs_sync_daemon", func(t *testing.T) { syncDaemonTier(t, h) })
	t.Run("tunnel types and hashed", func(t *testing.T) { tunnelTier(t, h, rec) })

	evs := rec.Of(event.KindIPVSReconcile)
	if len(evs) < 6 {
		t.Errorf("%d reconcile events, want one per Set/Resync/Stop", len(evs))
	}
	for _, e := range evs {
		if e.Err != nil {
			t.Errorf("reconcile event with error: %v", e.Err)
		}
	}
	if n := len(rec.Of(event.KindIPVSUnavailable)); n != 0 {
		t.Errorf("%d unavailable events in a kernel with IPVS", n)
	}
}

// probe is a minimal TCP check: connect within 2 s.
func probe(ap netip.AddrPort) bool {
	c, err := net.DialTimeout("tcp", ap.String(), 2*time.Second) // a closed port is refused at once; 2 s is for a loaded TCG guest
	if err != nil {
		return false
	}
	c.Close()
	return true
}

func serve(t *testing.T, ap netip.AddrPort) net.Listener {
	t.Helper()
	l, err := net.Listen("tcp", ap.String())
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() { _, _ = io.Copy(c, c); c.Close() }()
		}
	}()
	return l
}

// web80 is the service the check and traffic tests use: 192.0.2.10:80 → two
// local real servers, NAT.
func web80(servers []RealServer, p Pool, prev QuorumState) (Service, Result) {
	res := Evaluate(p, servers, prev)
	return Service{Key: AddrKey(vip4, 80, TCP), Scheduler: RoundRobin, Destinations: res.Destinations}, res
}

func checksTier(t *testing.T, r *Reconciler, k Kernel) {
	a := netip.AddrPortFrom(rs4a, 8080)
	b := netip.AddrPortFrom(rs4b, 8080)
	la := serve(t, a)
	lb := serve(t, b)
	defer lb.Close()
	sorry := Destination{Addr: netip.MustParseAddr("198.51.100.250"), Port: 8080, Weight: 1}
	pool := Pool{Quorum: 2, Sorry: &sorry}
	servers := []RealServer{
		{Destination: Destination{Addr: rs4a, Port: 8080, Weight: 1}, Inhibit: true},
		{Destination: Destination{Addr: rs4b, Port: 8080, Weight: 1}},
	}
	q := QuorumUnknown
	round := func() Service {
		for i := range servers {
			servers[i].Checked, servers[i].Up = true, probe(servers[i].AddrPort())
		}
		svc, res := web80(servers, pool, q)
		q = res.Quorum
		if _, err := r.Update(svc); err != nil {
			t.Fatal(err)
		}
		return svc
	}
	weights := func() string {
		got, err := Read(k, func(k Key) bool { return k.Port == 80 })
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range got {
			if s.Port == 80 && s.Protocol == TCP {
				var parts []string
				for _, d := range s.Destinations {
					parts = append(parts, fmt.Sprintf("%s=%d", d.AddrPort(), d.Weight))
				}
				return strings.Join(sortStrings(parts), " ")
			}
		}
		return "no service"
	}
	steps := []struct {
		do   func()
		want string
	}{
		{func() {}, "198.51.100.1:8080=1 198.51.100.2:8080=1"},
		// a fails: inhibit_on_failure keeps it at weight 0; the quorum (2)
		// is lost, so the sorry server replaces the live b.
		{func() { la.Close() }, "198.51.100.1:8080=0 198.51.100.250:8080=1"},
		// a back: quorum regained, sorry server out, weights restored.
		{func() { la = serve(t, a) }, "198.51.100.1:8080=1 198.51.100.2:8080=1"},
	}
	for i, st := range steps {
		st.do()
		round()
		if got := weights(); got != st.want {
			t.Errorf("step %d: kernel has %q, want %q", i, got, st.want)
		}
	}
	la.Close()
}

func countersTier(t *testing.T, r *Reconciler, h *Handle) {
	l := serve(t, netip.AddrPortFrom(rs4a, 8080))
	defer l.Close()
	svc := Service{Key: AddrKey(vip4, 80, TCP), Scheduler: RoundRobin,
		Destinations: []Destination{{Addr: rs4a, Port: 8080, Weight: 1, Forward: NAT}}}
	if _, err := r.Update(svc); err != nil {
		t.Fatal(err)
	}
	const conns = 5
	msg := []byte("keepwatch counters probe\n")
	for i := 0; i < conns; i++ {
		c, err := net.DialTimeout("tcp", netip.AddrPortFrom(vip4, 80).String(), 2*time.Second)
		if err != nil {
			t.Fatalf("connection %d through IPVS: %v", i, err)
		}
		_ = c.SetDeadline(time.Now().Add(2 * time.Second))
		if _, err := c.Write(msg); err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, len(msg))
		if _, err := io.ReadFull(c, buf); err != nil {
			t.Fatalf("echo through IPVS: %v", err)
		}
		c.Close()
	}
	// The kernel counts per CPU and folds the counts into what it reports
	// from its rate estimator, every 2 s (ip_vs_est.c), so counters lag
	// traffic by up to 2 s: poll until the fold has happened.
	var got []Service
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(250 * time.Millisecond) {
		var err error
		if got, err = r.Counters(); err != nil {
			t.Fatal(err)
		}
		if i := slices.IndexFunc(got, func(s Service) bool { return s.Key == svc.Key }); i >= 0 && got[i].Stats.Connections >= conns || time.Now().After(deadline) {
			break
		}
	}
	t.Logf("ipvsadm:\n%s", ipvsadm(t, "-Ln", "--stats", "--exact", "-t", "192.0.2.10:80"))
	for _, s := range got {
		if s.Key != svc.Key {
			continue
		}
		t.Logf("service %s: %+v", s.Key, s.Stats)
		if s.Stats.Connections < conns || s.Stats.PacketsIn < 3*conns || s.Stats.BytesIn < uint64(conns*len(msg)) {
			t.Errorf("service counters %+v after %d echoed connections", s.Stats, conns)
		}
		if len(s.Destinations) != 1 {
			t.Fatalf("destinations %v", s.Destinations)
		}
		// The 64-bit dump and moby/ipvs's 32-bit one agree while small.
		if mob, err := Read(h.Handle, func(k Key) bool { return k == svc.Key }); err == nil {
			for _, m := range mob {
				if m.Key == svc.Key && (m.Stats.Connections != s.Stats.Connections || m.Stats.BytesIn != s.Stats.BytesIn) {
					t.Errorf("moby/ipvs reads %+v, the 64-bit dump %+v", m.Stats, s.Stats)
				}
			}
		}
		d := s.Destinations[0].Stats
		t.Logf("destination %s: %+v", s.Destinations[0].AddrPort(), d)
		if d.Connections < conns || d.BytesIn < uint64(conns*len(msg)) {
			t.Errorf("destination counters %+v after %d echoed connections", d, conns)
		}
		return
	}
	t.Errorf("service %s not among the counters read back", svc.Key)
}

func sortStrings(s []string) []string {
	for i := 1; i < len(s); i++ {
		for j := i; j > 0 && s[j] < s[j-1]; j-- {
			s[j], s[j-1] = s[j-1], s[j]
		}
	}
	return s
}

// timeoutsTier sets lvs_timeouts and reads them back two ways: our
// IPVS_CMD_GET_CONFIG and ipvsadm -L --timeout.
func timeoutsTier(t *testing.T, h *Handle) {
	before, err := h.Timeouts()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("kernel defaults: %+v", before)
	want := Timeouts{TCP: 7200 * time.Second, TCPFin: 90 * time.Second, UDP: 45 * time.Second}
	if err := h.SetTimeouts(want); err != nil {
		t.Fatal(err)
	}
	if got, err := h.Timeouts(); err != nil || got != want {
		t.Errorf("timeouts read back %+v, %v; want %+v", got, err, want)
	}
	if out := ipvsadm(t, "-L", "--timeout"); !strings.Contains(out, "Timeout (tcp tcpfin udp): 7200 90 45") {
		t.Errorf("ipvsadm -L --timeout:\n%s", out)
	}
	// A zero leaves its value alone, as keepalived's lvs_timeouts with
	// only some of the three does.
	if err := h.SetTimeouts(Timeouts{UDP: 30 * time.Second}); err != nil {
		t.Fatal(err)
	}
	if out := ipvsadm(t, "-L", "--timeout"); !strings.Contains(out, "Timeout (tcp tcpfin udp): 7200 90 30") {
		t.Errorf("after setting udp only, ipvsadm -L --timeout:\n%s", out)
	}
	if err := h.SetTimeouts(before); err != nil {
		t.Fatal(err)
	}
}

// syncDaemonTier starts the kernel's sync daemon the way lvs_sync_daemon
// does, follows an instance through BACKUP → MASTER → BACKUP, and checks
// each step with ipvsadm -L --daemon.
func syncDaemonTier(t *testing.T, h *Handle) {
	daemons := func() string {
		return strings.TrimSpace(ipvsadm(t, "-L", "--daemon"))
	}
	d := SyncDaemon{State: SyncBackup, Interface: "kw0", SyncID: 42, MaxLen: 1400, Port: 8850, TTL: 3, Group: netip.MustParseAddr("239.0.0.81")}
	if err := h.StartDaemon(d); err != nil {
		t.Fatal(err)
	}
	out := daemons()
	t.Logf("ipvsadm -L --daemon: %s", out)
	for _, want := range []string{"backup sync daemon (mcast=kw0, syncid=42", "maxlen=1400", "group=239.0.0.81", "port=8850", "ttl=3"} {
		if !strings.Contains(out, want) || strings.Count(out, "\n") != 0 {
			t.Errorf("ipvsadm -L --daemon after starting a backup daemon lacks %q (or lists more):\n%s", want, out)
		}
	}
	got, err := h.Daemons()
	if err != nil || len(got) != 1 || got[0].State != SyncBackup || got[0].Interface != "kw0" || got[0].SyncID != 42 {
		t.Errorf("Daemons() = %+v, %v; want the backup daemon on kw0 with id 42", got, err)
	}
	if err := h.StopDaemon(SyncBackup); err != nil {
		t.Fatal(err)
	}
	if err := h.StopDaemon(SyncBackup); err != nil {
		t.Errorf("stopping a stopped daemon: %v", err)
	}
	if out := daemons(); out != "" {
		t.Errorf("daemons left after stop:\n%s", out)
	}

	f := NewSyncFollower(h, "VI_1", SyncDaemon{Interface: "kw0", SyncID: 7})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- f.Run(ctx) }()
	step := func(from, to vrrp.State, want string) {
		t.Helper()
		f.Emit(event.Event{Kind: event.KindTransition, Instance: "VI_1", From: from, To: to})
		var out string
		for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
			if out = daemons(); strings.HasPrefix(out, want) && !strings.Contains(out, "\n") {
				return
			}
		}
		t.Errorf("after %v → %v, ipvsadm -L --daemon:\n%s\nwant:\n%s", from, to, out, want)
	}
	f.Emit(event.Event{Kind: event.KindTransition, Instance: "VI_2", From: vrrp.StateInit, To: vrrp.StateMaster}) // another instance: ignored
	step(vrrp.StateInit, vrrp.StateBackup, "backup sync daemon (mcast=kw0, syncid=7")
	step(vrrp.StateBackup, vrrp.StateMaster, "master sync daemon (mcast=kw0, syncid=7")
	t.Logf("as master: %s", daemons())
	step(vrrp.StateMaster, vrrp.StateFault, "backup sync daemon (mcast=kw0, syncid=7")
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Run: %v", err)
	}
	if out := daemons(); out != "" {
		t.Errorf("daemons left after the follower stopped:\n%s", out)
	}
}

// tunnelTier programs TUN destinations of every tunnel type and a hashed
// service, and reads them back through our dump and ipvsadm -S.
func tunnelTier(t *testing.T, h *Handle, rec *eventtest.Recorder) {
	r := NewReconciler(h, rec)
	svc := Service{Key: AddrKey(vip4, 7000, TCP), Scheduler: RoundRobin, Hashed: true, Destinations: []Destination{
		{Addr: netip.MustParseAddr("198.51.100.31"), Port: 7000, Weight: 1, Forward: Tunnel},
		{Addr: netip.MustParseAddr("198.51.100.32"), Port: 7000, Weight: 1, Forward: Tunnel, TunnelType: TunnelGUE, TunnelPort: 6080},
		{Addr: netip.MustParseAddr("198.51.100.33"), Port: 7000, Weight: 1, Forward: Tunnel, TunnelType: TunnelGUE, TunnelPort: 6081, TunnelFlags: TunnelRemoteChecksum},
		{Addr: netip.MustParseAddr("198.51.100.34"), Port: 7000, Weight: 1, Forward: Tunnel, TunnelType: TunnelGRE, TunnelFlags: TunnelChecksum},
	}}
	if _, err := r.Set([]Service{svc}); err != nil {
		t.Fatal(err)
	}
	got, err := Read(h, nil)
	if err != nil {
		t.Fatal(err)
	}
	if ops := Diff([]Service{svc}, got); len(ops) != 0 {
		t.Errorf("kernel differs from desired; repair would be %v", opStrings(ops))
	}
	save := ipvsadm(t, "-S", "-n")
	for _, want := range []string{
		"-A -t 192.0.2.10:7000 -s rr",
		"-a -t 192.0.2.10:7000 -r 198.51.100.31:7000 -i -w 1",
		"-a -t 192.0.2.10:7000 -r 198.51.100.32:7000 -i -w 1 --tun-type gue --tun-port 6080 --tun-nocsum",
		"-a -t 192.0.2.10:7000 -r 198.51.100.33:7000 -i -w 1 --tun-type gue --tun-port 6081 --tun-remcsum",
		"-a -t 192.0.2.10:7000 -r 198.51.100.34:7000 -i -w 1 --tun-type gre --tun-csum",
	} {
		if !strings.Contains(save, want) {
			t.Errorf("ipvsadm -S lacks %q:\n%s", want, save)
		}
	}
	// A changed tunnel port is an update of that destination only, and
	// the update keeps the type (moby/ipvs would have dropped it).
	svc.Destinations[1].TunnelPort = 6090
	rep, err := r.Set([]Service{svc})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Ops) != 1 || rep.Ops[0].Kind != UpdateDestination {
		t.Errorf("ops %v, want one update-destination", opStrings(rep.Ops))
	}
	if save := ipvsadm(t, "-S", "-n"); !strings.Contains(save, "-r 198.51.100.32:7000 -i -w 1 --tun-type gue --tun-port 6090") {
		t.Errorf("tunnel port not updated:\n%s", save)
	}
	if rep, err := r.Resync(); err != nil || len(rep.Ops) != 0 {
		t.Errorf("resync after the update: %v, %v; want nothing to repair", opStrings(rep.Ops), err)
	}
	if _, err := r.Stop(); err != nil {
		t.Fatal(err)
	}
}

func loadedModules(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile("/proc/modules")
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func hasModule(mods, name string) bool {
	for _, l := range strings.Split(mods, "\n") {
		if f := strings.Fields(l); len(f) > 0 && f[0] == name {
			return true
		}
	}
	return false
}

// modprobeTier runs in a guest where no IPVS module is loaded.
func modprobeTier(t *testing.T) {
	if mods := loadedModules(t); hasModule(mods, "ip_vs") {
		t.Fatalf("ip_vs is loaded before Open:\n%s", mods)
	}
	rec := &eventtest.Recorder{}
	h, err := Open(rec)
	if err != nil {
		out, _ := exec.Command("/bin/busybox", "sh", "-c", "uname -r; cat /proc/sys/kernel/modprobe; ls -l /sbin/modprobe; ls -R /lib/modules | head -30; /sbin/modprobe -v ip_vs; echo exit $?; dmesg | tail -20").CombinedOutput()
		t.Fatalf("Open did not load ip_vs: %v\n%s", err, out)
	}
	defer h.Close()
	if !hasModule(loadedModules(t), "ip_vs") {
		t.Fatal("Open succeeded but ip_vs is not in /proc/modules")
	}
	r := NewReconciler(h, rec)
	svcs := []Service{
		{Key: AddrKey(vip4, 80, TCP), Scheduler: WeightedLeastConnection, Destinations: []Destination{{Addr: rs4a, Port: 80, Weight: 1}}},
		{Key: AddrKey(vip4, 81, TCP), Scheduler: MaglevHashing},
	}
	if _, err := r.Set(svcs); err != nil {
		t.Fatal(err)
	}
	mods := loadedModules(t)
	for _, m := range []string{"ip_vs_wlc", "ip_vs_mh"} {
		if !hasModule(mods, m) {
			t.Errorf("%s not loaded after a service named its scheduler:\n%s", m, mods)
		}
	}
	assertKernel(t, h, svcs)
	if _, err := r.Stop(); err != nil {
		t.Fatal(err)
	}
}
