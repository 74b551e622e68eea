package ipvs

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/keepwatch/keepwatch/engine/event"
	"github.com/keepwatch/keepwatch/engine/vrrp"
)

// fakeDaemons records start and stop calls as the kernel would see them.
type fakeDaemons struct {
	mu      sync.Mutex
	calls   []string
	running map[SyncState]bool
}

func (f *fakeDaemons) StartDaemon(d SyncDaemon) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, fmt.Sprintf("start %s %s id %d", d.State, d.Interface, d.SyncID))
	if f.running[d.State] {
		return unix.EEXIST
	}
	f.running[d.State] = true
	return nil
}

func (f *fakeDaemons) StopDaemon(s SyncState) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, "stop "+s.String())
	delete(f.running, s)
	return nil
}

func (f *fakeDaemons) log() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return strings.Join(f.calls, "; ")
}

func TestSyncFollower(t *testing.T) {
	k := &fakeDaemons{running: map[SyncState]bool{SyncMaster: true}} // left by a killed run
	f := NewSyncFollower(k, "VI_1", SyncDaemon{Interface: "eth1", SyncID: 5})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- f.Run(ctx) }()
	wait := func(want string) {
		t.Helper()
		for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
			if k.log() == want {
				return
			}
		}
		t.Fatalf("calls:\n%s\nwant:\n%s", k.log(), want)
	}
	tr := func(inst string, from, to vrrp.State) {
		f.Emit(event.Event{Kind: event.KindTransition, Instance: inst, From: from, To: to})
	}
	tr("VI_2", vrrp.StateInit, vrrp.StateMaster) // not ours
	f.Emit(event.Event{Kind: event.KindAdvertDropped, Instance: "VI_1"})
	tr("VI_1", vrrp.StateInit, vrrp.StateBackup)
	want := "stop master; start backup eth1 id 5"
	wait(want)
	tr("VI_1", vrrp.StateBackup, vrrp.StateFault) // not from master: nothing
	tr("VI_1", vrrp.StateFault, vrrp.StateBackup)
	tr("VI_1", vrrp.StateBackup, vrrp.StateMaster)
	want += "; stop backup; start master eth1 id 5"
	wait(want)
	tr("VI_1", vrrp.StateMaster, vrrp.StateFault) // leaving master: backup
	want += "; stop master; start backup eth1 id 5"
	wait(want)
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	want += "; stop backup"
	wait(want)

	// A daemon of the wanted role already there (EEXIST) is restarted
	// with this config.
	k = &fakeDaemons{running: map[SyncState]bool{SyncBackup: true}}
	f = NewSyncFollower(k, "VI_1", SyncDaemon{Interface: "eth1", SyncID: 5})
	ctx, cancel = context.WithCancel(context.Background())
	go func() { done <- f.Run(ctx) }()
	tr("VI_1", vrrp.StateInit, vrrp.StateBackup)
	wait("stop master; start backup eth1 id 5; stop backup; start backup eth1 id 5")
	cancel()
	<-done
}

func TestTunnelFromConfig(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		kind string
		want []Destination // of the two real servers
		err  string
	}{
		{kind: "TUN", want: []Destination{{Forward: Tunnel}, {Forward: NAT}}},
		{kind: "TUN type gue port 6080 remcsum", want: []Destination{{Forward: Tunnel, TunnelType: TunnelGUE, TunnelPort: 6080, TunnelFlags: TunnelRemoteChecksum}, {Forward: NAT}}},
		{kind: "TUN type gre csum", want: []Destination{{Forward: Tunnel, TunnelType: TunnelGRE, TunnelFlags: TunnelChecksum}, {Forward: NAT}}},
		{kind: "TUN type ipip", want: []Destination{{Forward: Tunnel}, {Forward: NAT}}},
		{kind: "TUN type gue", err: "tunnel type gue needs a port"},
		{kind: "TUN type gre port 5", err: "tunnel port is for type gue only"},
		{kind: "TUN type gre remcsum", err: "remcsum is for tunnel type gue only"},
		{kind: "TUN csum", err: "not ipip"},
	} {
		conf := filepath.Join(dir, "keepalived.conf")
		if err := os.WriteFile(conf, []byte(`
virtual_server 192.0.2.1 80 {
  protocol TCP
  lb_kind `+tc.kind+`
  hashed
  real_server 198.51.100.1 80 {
  }
  real_server 198.51.100.2 80 {
    lvs_method NAT
  }
}
`), 0o644); err != nil {
			t.Fatal(err)
		}
		vss, err := FromConfig(loadConf(t, conf))
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) || !strings.Contains(err.Error(), "keepalived.conf:2") {
				t.Errorf("lb_kind %s: error %v, want one naming keepalived.conf:2 and %q", tc.kind, err, tc.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("lb_kind %s: %v", tc.kind, err)
			continue
		}
		if !vss[0].Services[0].Hashed {
			t.Errorf("lb_kind %s: hashed not carried", tc.kind)
		}
		for i, rs := range vss[0].Servers {
			d := rs.Destination
			d.Addr, d.Port, d.Weight = netip.Addr{}, 0, 0
			if d != tc.want[i] {
				t.Errorf("lb_kind %s: real server %d is %+v, want %+v", tc.kind, i, d, tc.want[i])
			}
		}
	}
}
