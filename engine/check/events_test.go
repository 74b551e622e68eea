package check

import (
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/keepwatch/keepwatch/engine/config"
	"github.com/keepwatch/keepwatch/engine/event"
)

// TestSchedulerEveryChecker runs every checker type through the scheduler
// against real local servers, one real server that answers and one that
// does not, and asserts the event stream: probe events named by checker
// type with the error class, and the failing real server going down.
func TestSchedulerEveryChecker(t *testing.T) {
	_, web := webServer(t, "tcp", "127.0.0.1:0", false)
	_, tlsWeb := webServer(t, "tcp", "127.0.0.1:0", true)
	_, mx := smtpServer(t)
	ns, _ := dnsServer(t)
	echo := udpEcho(t)
	dir := t.TempDir()
	exit := script(t, dir, "exit.sh", `exit "$1"`)
	zero, one := filepath.Join(dir, "zero"), filepath.Join(dir, "one")
	os.WriteFile(zero, []byte("0\n"), 0o644)
	os.WriteFile(one, []byte("1\n"), 0o644)
	closedTCP, closedUDP := closedPort(t, "tcp"), closedPort(t, "udp")
	health := config.HTTPCheck{URLs: []config.URL{{Path: "/health", Digest: md5hex(body)}}}

	type pair struct {
		typ      config.CheckerType
		up, down Target
		reason   event.Reason
	}
	pairs := []pair{
		{config.TCPCheck, Target{Addr: addrOf(web)}, Target{Addr: closedTCP}, ReasonRefused},
		{config.HTTPGet, Target{Addr: addrOf(web), HTTP: &health},
			Target{Addr: addrOf(web), HTTP: &config.HTTPCheck{URLs: []config.URL{{Path: "/error"}}}}, ReasonStatus},
		{config.SSLGet, Target{Addr: addrOf(tlsWeb), HTTP: &health}, Target{Addr: addrOf(web), HTTP: &health}, ReasonTLS},
		{config.SMTPCheck, Target{Addr: addrOf(mx)}, Target{Addr: closedTCP}, ReasonRefused},
		{config.DNSCheck, Target{Addr: addrOf(ns), DNS: &config.DNSSpec{}},
			Target{Addr: addrOf(ns), DNS: &config.DNSSpec{Type: "A", Name: "bad.example"}}, ReasonRcode},
		{config.UDPCheck, Target{Addr: addrOf(echo), UDP: &config.UDPSpec{Payload: []byte("hi"), RequireReply: true}},
			Target{Addr: closedUDP, UDP: &config.UDPSpec{Payload: []byte("hi")}}, ReasonRefused},
		{config.PingCheck, Target{Addr: netip.MustParseAddrPort("127.0.0.1:0")},
			Target{Addr: netip.MustParseAddrPort("[::1]:0"), BindIf: "kwnone0"}, ReasonConnect},
		{config.MiscCheck, *miscTarget(exit, []string{"0"}, false, time.Second), *miscTarget(exit, []string{"1"}, false, time.Second), ReasonExit},
		{config.FileCheck, Target{TrackFile: zero, File: &config.FileSpec{}}, Target{TrackFile: one, File: &config.FileSpec{}}, ReasonFile},
	}
	var servers []RealServer
	for _, p := range pairs {
		for i, tg := range []Target{p.up, p.down} {
			tg.Type = p.typ
			if tg.Timeout == 0 {
				tg.Timeout = time.Second
			}
			servers = append(servers, RealServer{Service: string(p.typ), Target: fmt.Sprintf("rs%d", i), Weight: 1,
				Checkers: []Checker{{Target: tg, DelayLoop: 50 * time.Millisecond, DelayBeforeRetry: 10 * time.Millisecond, Retry: 1}}})
		}
	}
	_, rec := start(t, servers, Options{})
	for _, p := range pairs {
		t.Run(string(p.typ), func(t *testing.T) {
			svc := string(p.typ)
			if _, ok := rec.Wait(3*time.Second, func(e event.Event) bool {
				return e.Kind == event.KindRealServer && e.Service == svc && e.Target == "rs1" && !e.OK
			}); !ok {
				t.Fatal("the failing real server never went down")
			}
			if p.typ != config.FileCheck { // a file is read once before the first announcement
				if _, ok := rec.Wait(3*time.Second, func(e event.Event) bool {
					return e.Kind == event.KindProbe && e.Service == svc && e.Target == "rs1" && !e.OK &&
						e.Name == svc && e.Reason == p.reason && e.Duration > 0
				}); !ok {
					t.Errorf("no failed %s probe event with reason %q", svc, p.reason)
				}
			}
			if _, ok := rec.Wait(3*time.Second, func(e event.Event) bool {
				return e.Kind == event.KindProbe && e.Service == svc && e.Target == "rs0" && e.OK && e.Name == svc
			}); !ok {
				t.Error("no successful probe event for the healthy real server")
			}
			for _, e := range rec.Of(event.KindRealServer) {
				if e.Service == svc && e.Target == "rs0" && !e.OK {
					t.Errorf("the healthy real server went down: %+v", e)
				}
			}
		})
	}
}
