package lb

// These run inside the VM (KEEPWATCH_VM=lb), against the kernel's real IPVS.

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/keepwatch/keepwatch/engine/check"
	"github.com/keepwatch/keepwatch/engine/config"
	"github.com/keepwatch/keepwatch/engine/config/kaconf"
	"github.com/keepwatch/keepwatch/engine/event"
	"github.com/keepwatch/keepwatch/engine/event/eventtest"
	"github.com/keepwatch/keepwatch/engine/ipvs"
)

// vmSorry is the sorry server the tier gives the quorum sample.
var vmSorry = netip.MustParseAddr("198.51.100.59")

// adaptVM moves a sample's addresses into the guest's documentation ranges
// (virtual addresses to 192.0.2.10.., real and sorry servers to
// 198.51.100.10.., each distinct address to its own, group ranges kept as
// long) and shortens its checker timings, so a real server's death is seen
// within a second. Checker kinds, ports, weights and pool settings are the
// sample's. HTTP digests are dropped (the test servers' bodies differ) and
// MISC_CHECK runs a test of a flag file the test creates and removes.
func adaptVM(c *config.Config) {
	vips, rips := map[netip.Addr]netip.Addr{}, map[netip.Addr]netip.Addr{}
	nextV, nextR := netip.MustParseAddr("192.0.2.10"), netip.MustParseAddr("198.51.100.10")
	take := func(m map[netip.Addr]netip.Addr, next *netip.Addr, a netip.Addr, span int) netip.Addr {
		if !a.IsValid() {
			return a
		}
		if b, ok := m[a]; ok {
			return b
		}
		b := *next
		for range span + 1 {
			*next = next.Next()
		}
		m[a] = b
		return b
	}
	for gi := range c.VSGroups {
		for ei := range c.VSGroups[gi].Entries {
			e := &c.VSGroups[gi].Entries[ei]
			if !e.First.IsValid() {
				continue
			}
			span := 0
			if e.Last.IsValid() {
				span = int(e.Last.As4()[3]) - int(e.First.As4()[3])
			}
			e.First = take(vips, &nextV, e.First, span)
			e.Last = e.First
			for range span {
				e.Last = e.Last.Next()
			}
		}
	}
	zero, none := 0, time.Duration(0)
	for i := range c.VirtualServers {
		vs := &c.VirtualServers[i]
		vs.Addr = take(vips, &nextV, vs.Addr, 0)
		if vs.SorryServer != nil {
			vs.SorryServer.Addr = take(rips, &nextR, vs.SorryServer.Addr, 0)
		}
		vs.CheckDefaults = config.CheckDefaults{DelayLoop: 250 * time.Millisecond, ConnectTimeout: time.Second,
			Retry: &zero, DelayBeforeRetry: 100 * time.Millisecond, Warmup: &none}
		for j := range vs.RealServers {
			rs := &vs.RealServers[j]
			rs.Addr = take(rips, &nextR, rs.Addr, 0)
			rs.CheckDefaults = config.CheckDefaults{}
			for k := range rs.Checkers {
				ck := &rs.Checkers[k]
				ck.CheckDefaults = config.CheckDefaults{}
				if ck.HTTP != nil {
					for u := range ck.HTTP.URLs {
						ck.HTTP.URLs[u].Digest = ""
					}
				}
				if ck.Misc != nil {
					f := miscFlag(netip.AddrPortFrom(rs.Addr, uint16(rs.Port)))
					ck.Misc.Path = config.Script{Command: "/bin/busybox test -e " + f, Args: []string{"/bin/busybox", "test", "-e", f}}
					ck.Misc.Timeout = 2 * time.Second
				}
			}
		}
	}
}

func miscFlag(ap netip.AddrPort) string {
	return "/tmp/misc-up-" + strings.NewReplacer(":", "-", ".", "-").Replace(ap.String())
}

// endpoint is what one checker of a real server talks to: a TCP, HTTP or
// HTTPS server on the real server's address, or MISC_CHECK's flag file.
type endpoint struct {
	t    *testing.T
	kind config.CheckerType
	addr string
	mu   sync.Mutex
	ln   net.Listener
}

var (
	certOnce sync.Once
	cert     tls.Certificate
)

func selfSigned(t *testing.T) tls.Certificate {
	certOnce.Do(func() {
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
		if err != nil {
			t.Fatal(err)
		}
		cert = tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
	})
	return cert
}

func (e *endpoint) start() {
	e.t.Helper()
	if e.kind == config.MiscCheck {
		if err := os.WriteFile(e.addr, nil, 0o644); err != nil {
			e.t.Fatal(err)
		}
		return
	}
	var ln net.Listener
	var err error
	for range 50 {
		if ln, err = net.Listen("tcp", e.addr); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		e.t.Fatal(err)
	}
	e.mu.Lock()
	e.ln = ln
	e.mu.Unlock()
	switch e.kind {
	case config.HTTPGet, config.SSLGet:
		if e.kind == config.SSLGet {
			ln = tls.NewListener(ln, &tls.Config{Certificates: []tls.Certificate{selfSigned(e.t)}})
		}
		srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "ok\n") }),
			ReadHeaderTimeout: 5 * time.Second}
		srv.SetKeepAlivesEnabled(false)
		go func() { _ = srv.Serve(ln) }()
	default:
		go func() {
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				go func() { _, _ = io.Copy(c, c); c.Close() }()
			}
		}()
	}
}

func (e *endpoint) stop() {
	if e.kind == config.MiscCheck {
		_ = os.Remove(e.addr)
		return
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.ln != nil {
		e.ln.Close()
		e.ln = nil
	}
}

// endpoints starts what every checker of cfg talks to, by real server.
func endpoints(t *testing.T, cfg *config.Config) map[netip.AddrPort][]*endpoint {
	out := map[netip.AddrPort][]*endpoint{}
	seen := map[string]*endpoint{}
	for i := range cfg.VirtualServers {
		vs := &cfg.VirtualServers[i]
		for j := range vs.RealServers {
			rs := &vs.RealServers[j]
			key := netip.AddrPortFrom(rs.Addr, destPort(rs.Port, vs.Port))
			for _, ck := range rs.Checkers {
				addr := ck.ConnectIP
				if !addr.IsValid() {
					addr = rs.Addr
				}
				port := ck.ConnectPort
				if port == 0 {
					port = int(destPort(rs.Port, vs.Port))
				}
				where := netip.AddrPortFrom(addr, uint16(port)).String()
				if ck.Type == config.MiscCheck {
					where = miscFlag(netip.AddrPortFrom(rs.Addr, uint16(rs.Port)))
				}
				e := seen[where]
				if e == nil {
					e = &endpoint{t: t, kind: ck.Type, addr: where}
					e.start()
					t.Cleanup(e.stop)
					seen[where] = e
				}
				out[key] = append(out[key], e)
			}
		}
	}
	return out
}

func destPort(rs, vs int) uint16 {
	if rs == 0 {
		return uint16(vs)
	}
	return uint16(rs)
}

// kernelTable reads the kernel's table with ipvsadm, an independent
// reader: service ("-t 192.0.2.10:80", "-f 1") → destination → weight.
func kernelTable(t *testing.T) map[string]map[string]int {
	out, err := exec.Command("ipvsadm", "-S", "-n").CombinedOutput()
	if err != nil {
		t.Fatalf("ipvsadm -S: %v: %s", err, out)
	}
	tab := map[string]map[string]int{}
	for _, l := range strings.Split(string(out), "\n") {
		f := strings.Fields(l)
		switch {
		case len(f) >= 3 && f[0] == "-A":
			tab[f[1]+" "+f[2]] = map[string]int{}
		case len(f) >= 5 && f[0] == "-a":
			w := 0
			for i := range f {
				if f[i] == "-w" && i+1 < len(f) {
					fmt.Sscan(f[i+1], &w)
				}
			}
			svc := tab[f[1]+" "+f[2]]
			if svc == nil {
				svc = map[string]int{}
				tab[f[1]+" "+f[2]] = svc
			}
			svc[f[4]] = w
		}
	}
	return tab
}

func svcID(k ipvs.Key) string {
	if k.FWMark != 0 {
		return fmt.Sprintf("-f %d", k.FWMark)
	}
	flag := map[ipvs.Protocol]string{ipvs.TCP: "-t", ipvs.UDP: "-u", ipvs.SCTP: "--sctp-service"}[k.Protocol]
	return flag + " " + netip.AddrPortFrom(k.Addr, k.Port).String()
}

// expected is the table cfg should give with the real servers in down
// dead, the quorum taken as it stands without hysteresis (the steps that
// test hysteresis say what they expect themselves).
func expected(t *testing.T, cfg *config.Config, down map[netip.AddrPort]bool) map[string]map[string]int {
	vss, err := ipvs.FromConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	tab := map[string]map[string]int{}
	for _, v := range vss {
		dests := map[string]int{}
		live := 0
		for _, rs := range v.Servers {
			if !down[rs.AddrPort()] {
				live += rs.Weight
			}
		}
		q := max(v.Pool.Quorum, 1)
		if v.Pool.Sorry != nil && live < q {
			dests[v.Pool.Sorry.AddrPort().String()] = v.Pool.Sorry.Weight
		} else {
			for _, rs := range v.Servers {
				switch {
				case !down[rs.AddrPort()]:
					dests[rs.AddrPort().String()] = rs.Weight
				case rs.Inhibit:
					dests[rs.AddrPort().String()] = 0
				}
			}
		}
		for _, s := range v.Services {
			tab[svcID(s.Key)] = dests
		}
	}
	return tab
}

func waitTable(t *testing.T, what string, want map[string]map[string]int) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		got := kernelTable(t)
		if cmp.Equal(got, want) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: kernel table (-want +got):\n%s", what, cmp.Diff(want, got))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func kernelTier(t *testing.T) {
	for _, name := range vmSamples {
		t.Run(name, func(t *testing.T) {
			start := time.Now()
			c, ds := kaconf.Load(filepath.Join(vmSampleDir, name), kaconf.LoadOptions{})
			if c == nil || ds.HasErrors() {
				t.Fatalf("%s: %v", name, ds)
			}
			adaptVM(c)
			if name == "keepalived.conf.quorum" {
				c.VirtualServers[0].SorryServer = &config.RealServer{Addr: vmSorry, Port: 80, Weight: 1}
			}
			sample(t, name, c)
			t.Logf("%s: %v", name, time.Since(start).Round(time.Millisecond))
		})
	}
	t.Run("ha_suspend follows the VIP", haSuspendVM)
}

// haSuspendVM: a virtual server with ha_suspend whose address is not on
// this host runs no probes; once the address is added (as VRRP does on
// becoming master) its checkers start and its real servers enter the
// kernel's table; once it is removed they stop again (keepalived
// ha_suspend, check_daemon.c / ipwrapper.c). Real addresses of the guest,
// read through netlink, not a fake list.
func haSuspendVM(t *testing.T) {
	c, ds := kaconf.Load(filepath.Join(vmSampleDir, "keepalived.conf.sample"), kaconf.LoadOptions{})
	if c == nil || ds.HasErrors() {
		t.Fatalf("sample: %v", ds)
	}
	adaptVM(c)
	c.VirtualServers = c.VirtualServers[:1]
	vs := &c.VirtualServers[0]
	vs.Addr = netip.MustParseAddr("192.0.2.200") // not on kw0 (vmNet holds .1 and .10-.60)
	vs.HASuspend = true
	svc := check.ServiceName(vs)
	endpoints(t, c)
	var mu sync.Mutex
	probes := 0
	sink := event.SinkFunc(func(e event.Event) {
		if e.Kind == event.KindProbe && e.Service == svc {
			mu.Lock()
			probes++
			mu.Unlock()
		}
	})
	count := func() int { mu.Lock(); defer mu.Unlock(); return probes }
	b := New(Options{Sink: sink, ResyncInterval: 300 * time.Millisecond, AddrPoll: 50 * time.Millisecond})
	stop := runBalancer(t, b, c)
	defer stop()
	<-b.Started()
	time.Sleep(time.Second) // four delay_loops
	if n := count(); n != 0 {
		t.Fatalf("%d probes of %s while its address is not on this host", n, svc)
	}
	ipAddr := func(op string) {
		if out, err := exec.Command("ip", "addr", op, "192.0.2.200/32", "dev", "kw0").CombinedOutput(); err != nil {
			t.Fatalf("ip addr %s: %v: %s", op, err, out)
		}
	}
	ipAddr("add")
	deadline := time.Now().Add(10 * time.Second)
	for count() < 2 {
		if time.Now().After(deadline) {
			t.Fatalf("%d probes of %s 10 s after its address was added", count(), svc)
		}
		time.Sleep(20 * time.Millisecond)
	}
	waitTable(t, "with the address local", expected(t, c, nil))
	ipAddr("del")
	time.Sleep(500 * time.Millisecond) // the poll notices, a probe in flight ends
	before := count()
	time.Sleep(time.Second)
	if n := count(); n != before {
		t.Errorf("%d probes of %s in the second after its address was removed, want none", n-before, svc)
	}
}

func sample(t *testing.T, name string, cfg *config.Config) {
	eps := endpoints(t, cfg)
	rec := &eventtest.Recorder{}
	b := New(Options{Sink: rec, ResyncInterval: 300 * time.Millisecond})
	stop := runBalancer(t, b, cfg)
	all := expected(t, cfg, nil)
	waitTable(t, "every real server up", all)

	first := cfg.VirtualServers[0].RealServers[0]
	firstAP := netip.AddrPortFrom(first.Addr, destPort(first.Port, cfg.VirtualServers[0].Port))
	t.Run("a dead real server leaves the table", func(t *testing.T) {
		for _, e := range eps[firstAP] {
			e.stop()
		}
		waitTable(t, "after "+firstAP.String()+" died", expected(t, cfg, map[netip.AddrPort]bool{firstAP: true}))
		for _, e := range eps[firstAP] {
			e.start()
		}
		waitTable(t, "after "+firstAP.String()+" came back", all)
	})
	t.Run("ipvsadm -C is repaired", func(t *testing.T) {
		if out, err := exec.Command("ipvsadm", "-C").CombinedOutput(); err != nil {
			t.Fatalf("ipvsadm -C: %v: %s", err, out)
		}
		waitTable(t, "after ipvsadm -C", all)
	})
	switch name {
	case "keepalived.conf.sample":
		t.Run("counters after traffic", func(t *testing.T) { countersVM(t, b, cfg) })
	case "keepalived.conf.quorum":
		t.Run("quorum lost: sorry server; hysteresis", func(t *testing.T) { quorumVM(t, cfg, eps, rec) })
	}
	stop()
	if got := kernelTable(t); len(got) != 0 {
		t.Errorf("table after stop: %v", got)
	}
	if n := len(rec.Of(event.KindIPVSUnavailable)); n != 0 {
		t.Errorf("%d unavailable events in a kernel with IPVS", n)
	}
	recs := rec.Of(event.KindIPVSReconcile)
	if len(recs) < 3 {
		t.Errorf("%d reconcile events, want at least start, repair and stop", len(recs))
	}
	for _, e := range recs {
		if e.Err != nil {
			t.Errorf("reconcile failed: %v", e.Err)
		}
	}
}

// countersVM sends HTTP requests through the virtual server and reads the
// kernel's counters back through the balancer.
func countersVM(t *testing.T, b *Balancer, cfg *config.Config) {
	vs := &cfg.VirtualServers[0]
	url := "http://" + netip.AddrPortFrom(vs.Addr, uint16(vs.Port)).String() + "/"
	const n = 5
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	for range n {
		resp, err := client.Get(url)
		if err != nil {
			t.Fatalf("through IPVS: %v", err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if string(body) != "ok\n" {
			t.Fatalf("through IPVS: body %q", body)
		}
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		svcs, err := b.Counters()
		if err != nil {
			t.Fatal(err)
		}
		if len(svcs) == 1 && svcs[0].Stats.Connections >= n && len(svcs[0].Destinations) == 1 &&
			svcs[0].Destinations[0].Stats.Connections >= n && svcs[0].Stats.BytesIn > 0 && svcs[0].Stats.PacketsOut > 0 {
			t.Logf("counters: %+v; destination %+v", svcs[0].Stats, svcs[0].Destinations[0].Stats)
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("counters after %d connections: %+v", n, svcs)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// quorumVM: the sample's pool is 10 servers of weight 1, quorum 7,
// hysteresis 2. With 4 left the quorum is lost and the sorry server
// serves; with 8 back it stays lost (up needs 9); with 10 it is back.
func quorumVM(t *testing.T, cfg *config.Config, eps map[netip.AddrPort][]*endpoint, rec *eventtest.Recorder) {
	vs := &cfg.VirtualServers[0]
	var aps []netip.AddrPort
	for _, rs := range vs.RealServers {
		aps = append(aps, netip.AddrPortFrom(rs.Addr, destPort(rs.Port, vs.Port)))
	}
	set := func(up bool, which []netip.AddrPort) {
		for _, ap := range which {
			for _, e := range eps[ap] {
				if up {
					e.start()
				} else {
					e.stop()
				}
			}
		}
	}
	svc := svcID(ipvs.AddrKey(vs.Addr, uint16(vs.Port), ipvs.TCP))
	sorryOnly := map[string]map[string]int{svc: {netip.AddrPortFrom(vmSorry, 80).String(): 1}}
	set(false, aps[:6])
	waitTable(t, "quorum lost with 4 of 10", sorryOnly)
	if _, ok := rec.Wait(5*time.Second, func(e event.Event) bool {
		return e.Kind == event.KindQuorum && !e.OK && e.Reason == "" && e.Value == 4
	}); !ok {
		t.Errorf("no quorum-down event with live weight 4: %+v", rec.Of(event.KindQuorum))
	}
	set(true, aps[:4])
	time.Sleep(1500 * time.Millisecond) // several probe rounds with 8 live
	if got := kernelTable(t); !cmp.Equal(got, sorryOnly) {
		t.Errorf("with 8 of 10 (below quorum+hysteresis 9) the sorry server should still serve; table %v", got)
	}
	set(true, aps[4:6])
	waitTable(t, "quorum back with 10 of 10", expected(t, cfg, nil))
	if _, ok := rec.Wait(5*time.Second, func(e event.Event) bool {
		return e.Kind == event.KindQuorum && e.OK && e.Reason == "" && e.Value >= 9
	}); !ok {
		t.Errorf("no quorum-up event: %+v", rec.Of(event.KindQuorum))
	}
}
