package netif_test

import (
	"bytes"
	"context"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/keepwatch/keepwatch/engine/netif"
	"github.com/keepwatch/keepwatch/engine/netif/nskit/nskittest"
)

func TestVMAC(t *testing.T) {
	t.Parallel()
	l := nskittest.New(t, "vmac", 1)
	n := l.Node(1)
	s := openSystem(t, n)

	for _, tt := range []struct {
		v    netif.VMAC
		name string
		mac  string
	}{
		{netif.VMAC{Parent: n.Link, VRID: 42}, "vrrp.42", "00:00:5e:00:01:2a"},
		{netif.VMAC{Parent: n.Link, VRID: 42, IPv6: true}, "vrrp6.42", "00:00:5e:00:02:2a"},
		{netif.VMAC{Name: "vip7", Parent: n.Link, VRID: 7}, "vip7", "00:00:5e:00:01:07"},
		// use_vmac with an explicit MAC: keepalived 2.2.7 creates the
		// macvlan with it (tried: `use_vmac vrrp.56 02:11:22:33:44:55`).
		{netif.VMAC{Name: "vmx9", Parent: n.Link, VRID: 9, Addr: net.HardwareAddr{0x02, 0x11, 0x22, 0x33, 0x44, 0x55}}, "vmx9", "02:11:22:33:44:55"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if tt.v.LinkName() != tt.name || tt.v.MAC().String() != tt.mac {
				t.Fatalf("name %q MAC %s, want %q %s", tt.v.LinkName(), tt.v.MAC(), tt.name, tt.mac)
			}
			for range 2 { // idempotent
				if err := s.AddVMAC(tt.v); err != nil {
					t.Fatal(err)
				}
			}
			out := strings.Join(ipOut(t, n, "-d", "link", "show", "dev", tt.name), " ")
			for _, w := range []string{tt.name + "@" + n.Link, "link/ether " + tt.mac, "macvlan mode private", ",UP,"} {
				if !strings.Contains(out, w) {
					t.Errorf("ip -d link lacks %q:\n%s", w, out)
				}
			}
			if !tt.v.IPv6 {
				if lines := ipOut(t, n, "-6", "-o", "addr", "show", "dev", tt.name); line(lines, "inet6") != "" {
					t.Errorf("IPv4 VMAC has IPv6 addresses:\n%s", strings.Join(lines, "\n"))
				}
			}
			if tt.v.IPv6 {
				// It carries the parent's link-local, not an EUI-64 one from
				// the shared virtual MAC.
				lines := ipOut(t, n, "-6", "-o", "addr", "show", "dev", tt.name)
				if line(lines, "inet6 "+n.LinkLocal.String()+"/64") == "" || line(lines, "fe80::200:5eff") != "" {
					t.Errorf("IPv6 VMAC addresses:\n%s\nwant only %s", strings.Join(lines, "\n"), n.LinkLocal)
				}
			}
			if err := n.Do(func() error {
				for k, want := range map[string]string{"arp_ignore": "1", "accept_local": "1", "rp_filter": "0"} {
					b, err := os.ReadFile("/proc/sys/net/ipv4/conf/" + tt.name + "/" + k)
					if err != nil {
						return err
					}
					if got := strings.TrimSpace(string(b)); got != want {
						t.Errorf("%s %s = %s, want %s", tt.name, k, got, want)
					}
				}
				return nil
			}); err != nil {
				t.Fatal(err)
			}
			// Gratuitous ARPs from a VMAC carry the virtual MAC.
			var g *netif.Gratuitous
			if err := n.Do(func() (err error) { g, err = netif.NewGratuitous(tt.name); return err }); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(g.MAC(), tt.v.MAC()) {
				t.Errorf("announcer MAC %s, want %s", g.MAC(), tt.v.MAC())
			}
			g.Close()
			for range 2 {
				if err := s.RemoveVMAC(tt.v); err != nil {
					t.Fatal(err)
				}
			}
			if _, err := n.Handle().LinkByName(tt.name); err == nil {
				t.Errorf("%s still exists after remove", tt.name)
			}
		})
	}
	t.Run("errors", func(t *testing.T) {
		if err := s.AddVMAC(netif.VMAC{Parent: "kwnosuchif0", VRID: 1}); err == nil {
			t.Error("VMAC on a missing parent created")
		}
		// A non-macvlan interface of that name is neither reused nor removed.
		if err := s.AddVMAC(netif.VMAC{Name: "lo", Parent: n.Link, VRID: 1}); err == nil {
			t.Error("AddVMAC reused lo")
		}
		if err := s.RemoveVMAC(netif.VMAC{Name: "lo", Parent: n.Link, VRID: 1}); err == nil {
			t.Error("RemoveVMAC removed lo")
		}
	})
}

func TestWatchLinks(t *testing.T) {
	t.Parallel()
	l := nskittest.New(t, "watch", 2)
	a := l.Node(1)
	s := openSystem(t, a)
	events := make(chan netif.LinkEvent, 64)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.WatchLinks(ctx, func(e netif.LinkEvent) { events <- e }) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != context.Canceled {
			t.Errorf("WatchLinks: %v", err)
		}
	})
	// next waits for the next event about the node's link.
	next := func() netif.LinkEvent {
		t.Helper()
		for {
			select {
			case e := <-events:
				if e.Name == a.Link {
					return e
				}
			case <-time.After(3 * time.Second):
				t.Fatal("no link event within 3s")
			}
		}
	}
	if e := next(); !e.Up {
		t.Fatalf("initial state %+v, want up", e)
	}
	if err := a.Cut(); err != nil {
		t.Fatal(err)
	}
	if e := next(); e.Up || e.Deleted {
		t.Fatalf("after cut %+v, want down", e)
	}
	if err := a.Restore(); err != nil {
		t.Fatal(err)
	}
	if e := next(); !e.Up {
		t.Fatalf("after restore %+v, want up", e)
	}
	// Administratively down counts as down too.
	link, err := a.Handle().LinkByName(a.Link)
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Handle().LinkSetDown(link); err != nil {
		t.Fatal(err)
	}
	if e := next(); e.Up {
		t.Fatalf("after link set down %+v, want down", e)
	}
	if err := a.Handle().LinkDel(link); err != nil {
		t.Fatal(err)
	}
	if e := next(); !e.Deleted {
		t.Fatalf("after delete %+v, want deleted", e)
	}
}
