package lb

import (
	"fmt"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keepwatch/keepwatch/engine/config"
	"github.com/keepwatch/keepwatch/engine/event"
	"github.com/keepwatch/keepwatch/engine/ipvs"
	"github.com/keepwatch/keepwatch/engine/ipvs/ipvstest"
	"github.com/keepwatch/keepwatch/engine/vrrp"
)

type fakeDaemons struct {
	mu    sync.Mutex
	calls []string
}

func (f *fakeDaemons) StartDaemon(d ipvs.SyncDaemon) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, fmt.Sprintf("start %s %s id %d port %d group %v", d.State, d.Interface, d.SyncID, d.Port, d.Group))
	return nil
}

func (f *fakeDaemons) StopDaemon(s ipvs.SyncState) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, "stop "+s.String())
	return nil
}

func (f *fakeDaemons) log() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return strings.Join(f.calls, "; ")
}

func TestSyncDaemonConfigure(t *testing.T) {
	k := &fakeDaemons{}
	opens := 0
	s := NewSyncDaemon(nil)
	s.Open = func() (ipvs.DaemonControl, func(), error) { opens++; return k, func() {}, nil }
	wait := func(want string) {
		t.Helper()
		for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
			if k.log() == want {
				return
			}
		}
		t.Fatalf("calls:\n%s\nwant:\n%s", k.log(), want)
	}
	cfg := func(d *config.LVSSyncDaemon) *config.Config {
		return &config.Config{Global: config.Global{LVSSyncDaemon: d},
			Instances: []config.Instance{{Name: "VI_1", VRID: 51}, {Name: "VI_2", VRID: 52}}}
	}
	// The instance is master before the config names it: the daemon
	// starts as master at once, with the VRID as its sync id.
	s.Emit(event.Event{Kind: event.KindTransition, Instance: "VI_1", From: vrrp.StateBackup, To: vrrp.StateMaster})
	s.Configure(cfg(&config.LVSSyncDaemon{Interface: "eth1", Instance: "VI_1"}))
	want := "stop backup; start master eth1 id 51 port 0 group invalid IP"
	wait(want)
	s.Configure(cfg(&config.LVSSyncDaemon{Interface: "eth1", Instance: "VI_1"})) // unchanged: untouched
	s.Emit(event.Event{Kind: event.KindTransition, Instance: "VI_1", From: vrrp.StateMaster, To: vrrp.StateBackup})
	want += "; stop master; start backup eth1 id 51 port 0 group invalid IP"
	wait(want)
	// A changed config restarts it in the current state.
	s.Configure(cfg(&config.LVSSyncDaemon{Interface: "eth1", Instance: "VI_1", ID: 9, Port: 8850, Group: "239.0.0.81"}))
	want += "; stop backup; stop master; start backup eth1 id 9 port 8850 group 239.0.0.81"
	wait(want)
	// An unknown instance stops it.
	s.Configure(cfg(&config.LVSSyncDaemon{Interface: "eth1", Instance: "VI_9"}))
	want += "; stop backup"
	wait(want)
	s.Configure(cfg(nil))
	s.Stop()
	if opens != 2 {
		t.Errorf("opened IPVS %d times, want 2", opens)
	}
	wait(want)
}

// timeoutKernel is the fake kernel with SetTimeouts, recording each call.
type timeoutKernel struct {
	*ipvstest.Kernel
	mu  sync.Mutex
	set []ipvs.Timeouts
}

func (k *timeoutKernel) SetTimeouts(t ipvs.Timeouts) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.set = append(k.set, t)
	return nil
}

func (k *timeoutKernel) calls() []ipvs.Timeouts {
	k.mu.Lock()
	defer k.mu.Unlock()
	return append([]ipvs.Timeouts(nil), k.set...)
}

// TestBalancerTimeouts: lvs_timeouts is applied at start and again on
// reload (keepalived's start_check), and nothing is sent without it.
func TestBalancerTimeouts(t *testing.T) {
	a := listen(t, "127.0.0.1:0")
	base := fmt.Sprintf(poolConf, a.port(), "9", "10", 1)
	with := strings.Replace(base, "router_id lbtest\n", "router_id lbtest\nlvs_timeouts tcp 7200 udp 45\n", 1)
	if with == base {
		t.Fatal("poolConf has no router_id line to add lvs_timeouts after")
	}
	k := &timeoutKernel{Kernel: ipvstest.New()}
	b := New(Options{Kernel: k})
	runBalancer(t, b, loadText(t, with))
	eventually(t, 5*time.Second, "started", func() bool { return len(k.calls()) == 1 })
	want := ipvs.Timeouts{TCP: 7200 * time.Second, UDP: 45 * time.Second}
	if got := k.calls(); got[0] != want {
		t.Errorf("timeouts set %+v, want %+v", got[0], want)
	}
	if err := b.Update(loadText(t, with)); err != nil {
		t.Fatal(err)
	}
	if err := b.Update(loadText(t, base)); err != nil {
		t.Fatal(err)
	}
	if got := k.calls(); len(got) != 2 || got[1] != want {
		t.Errorf("timeouts set %+v, want them once more on the reload that keeps lvs_timeouts and not on the one without", got)
	}
}

const haSuspendConf = `
global_defs {
  router_id lbtest
}
virtual_server 192.0.2.10 80 {
  delay_loop 0.1
  lb_algo rr
  protocol TCP
  ha_suspend
  real_server 127.0.0.1 %[1]s {
    TCP_CHECK {
      connect_timeout 1
      retry 0
      warmup 0
    }
  }
}
`

// TestHASuspend: a virtual server with ha_suspend is not probed while its
// address is not on this host, and is once it is.
func TestHASuspend(t *testing.T) {
	a := listen(t, "127.0.0.1:0")
	var (
		mu     sync.Mutex
		local  []netip.Addr
		probes int
	)
	sink := event.SinkFunc(func(e event.Event) {
		if e.Kind == event.KindProbe {
			mu.Lock()
			probes++
			mu.Unlock()
		}
	})
	count := func() int { mu.Lock(); defer mu.Unlock(); return probes }
	b := New(Options{Kernel: ipvstest.New(), Sink: sink, AddrPoll: 20 * time.Millisecond,
		LocalAddrs: func() ([]netip.Addr, error) {
			mu.Lock()
			defer mu.Unlock()
			return append([]netip.Addr(nil), local...), nil
		}})
	runBalancer(t, b, loadText(t, fmt.Sprintf(haSuspendConf, a.port())))
	<-b.Started()
	time.Sleep(500 * time.Millisecond) // five delay_loops
	if n := count(); n != 0 {
		t.Fatalf("%d probes while 192.0.2.10 is not local", n)
	}
	mu.Lock()
	local = []netip.Addr{netip.MustParseAddr("192.0.2.10")}
	mu.Unlock()
	eventually(t, 10*time.Second, "probes once the address is local", func() bool { return count() >= 2 })
	mu.Lock()
	local = nil
	mu.Unlock()
	time.Sleep(300 * time.Millisecond) // the watch and a probe in flight settle
	n := count()
	time.Sleep(500 * time.Millisecond)
	if m := count(); m != n {
		t.Errorf("%d probes after the address left", m-n)
	}
}
