package lb

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/keepwatch/keepwatch/engine/event"
	"github.com/keepwatch/keepwatch/engine/event/eventtest"
	"github.com/keepwatch/keepwatch/engine/ipvs"
)

// On a kernel without IPVS (this host's), the balancer logs one clear
// error, reports KindIPVSUnavailable, and the checkers still run and report.
func TestBalancerWithoutIPVS(t *testing.T) {
	if os.Getenv("KEEPWATCH_VM") != "" {
		return // the VM has IPVS; the kernel tier covers it
	}
	if hasIPVS() {
		if os.Getenv("CI") != "" {
			t.Fatal("this host's kernel has IPVS, so the no-IPVS path cannot be tested here")
		}
		t.Skip("kernel has IPVS")
	}
	a, c := listen(t, "127.0.0.1:0"), listen(t, "127.0.0.1:0")
	cfg := loadText(t, fmt.Sprintf(poolConf, a.port(), "9", c.port(), 1))
	rec := &eventtest.Recorder{}
	var logs syncBuffer
	b := New(Options{Sink: rec, Log: slog.New(slog.NewTextHandler(&logs, nil))})
	runBalancer(t, b, cfg)

	if _, ok := rec.Wait(5*time.Second, func(e event.Event) bool { return e.Kind == event.KindIPVSUnavailable }); !ok {
		t.Fatal("no KindIPVSUnavailable event")
	}
	// Checkers run: the dead real server goes down, and quorum (2) is lost.
	if _, ok := rec.Wait(5*time.Second, func(e event.Event) bool {
		return e.Kind == event.KindRealServer && e.Target == "127.0.0.1:9" && !e.OK && e.Name == "TCP_CHECK"
	}); !ok {
		t.Error("the dead real server was not reported down")
	}
	if _, ok := rec.Wait(5*time.Second, func(e event.Event) bool {
		return e.Kind == event.KindQuorum && e.Service == "192.0.2.10:80/tcp" && !e.OK
	}); !ok {
		t.Error("no quorum down without IPVS")
	}
	time.Sleep(300 * time.Millisecond) // several probe rounds
	if n := len(rec.Of(event.KindProbe)); n < 6 {
		t.Errorf("%d probes, want probes to go on", n)
	}
	if n := len(rec.Of(event.KindIPVSUnavailable)); n != 1 {
		t.Errorf("%d KindIPVSUnavailable events, want 1", n)
	}
	if got := strings.Count(logs.String(), "IPVS unavailable"); got != 1 {
		t.Errorf("logged %d times, want once:\n%s", got, logs.String())
	}
	if !strings.Contains(logs.String(), "IPVS is not available in this kernel") {
		t.Errorf("log does not say why:\n%s", logs.String())
	}
	if len(rec.Of(event.KindIPVSReconcile)) != 0 {
		t.Error("reconcile events without a kernel")
	}
	st := b.Status()
	if len(st) != 2 || st[0].InKernel || st[0].QuorumUp || st[0].RealServers[1].Up {
		t.Errorf("status without IPVS: %+v", st)
	}
	if _, err := b.Counters(); !errors.Is(err, ipvs.ErrUnavailable) {
		t.Errorf("Counters: %v, want ErrUnavailable", err)
	}
	// A reload still works.
	if err := b.Update(loadText(t, fmt.Sprintf(poolConf, a.port(), "9", c.port(), 2))); err != nil {
		t.Fatal(err)
	}
	if _, ok := rec.Wait(5*time.Second, func(e event.Event) bool {
		return e.Kind == event.KindRealServer && e.Reason == event.ReasonReload && e.Value == 2
	}); !ok {
		t.Error("no reload announcement with the new weight")
	}
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// hasIPVS reports whether the kernel has IPVS loaded, built in, or as a
// module the generic netlink lookup would load on demand.
func hasIPVS() bool {
	if _, err := os.Stat("/proc/net/ip_vs"); err == nil {
		return true
	}
	var u unix.Utsname
	if unix.Uname(&u) != nil {
		return false
	}
	_, err := os.Stat("/lib/modules/" + unix.ByteSliceToString(u.Release[:]) + "/kernel/net/netfilter/ipvs")
	return err == nil
}
