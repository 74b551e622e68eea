package lb

import (
	"context"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/keepwatch/keepwatch/engine/config"
	"github.com/keepwatch/keepwatch/engine/config/kaconf"
	"github.com/keepwatch/keepwatch/engine/ipvs"
)

// loadText parses a keepalived.conf given as text.
func loadText(t testing.TB, text string) *config.Config {
	t.Helper()
	p := filepath.Join(t.TempDir(), "keepalived.conf")
	if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	c, ds := kaconf.Load(p, kaconf.LoadOptions{})
	if c == nil || ds.HasErrors() {
		t.Fatalf("config: %v", ds)
	}
	return c
}

// listener is a TCP server that accepts and closes connections, and can be
// stopped and restarted on the same address.
type listener struct {
	t    testing.TB
	addr string
	mu   sync.Mutex
	ln   net.Listener
}

func listen(t testing.TB, addr string) *listener {
	t.Helper()
	l := &listener{t: t, addr: addr}
	l.start()
	l.addr = l.ln.Addr().String()
	t.Cleanup(l.stop)
	return l
}

func (l *listener) start() {
	l.t.Helper()
	var err error
	var ln net.Listener
	for range 50 { // the port may linger briefly after a stop
		if ln, err = net.Listen("tcp", l.addr); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		l.t.Fatal(err)
	}
	l.mu.Lock()
	l.ln = ln
	l.mu.Unlock()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
}

func (l *listener) stop() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.ln != nil {
		l.ln.Close()
		l.ln = nil
	}
}

func (l *listener) port() string {
	_, p, _ := net.SplitHostPort(l.addr)
	return p
}

// eventually polls cond until it holds or d passes.
func eventually(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// table reads a kernel's table as "service": {"dest": weight}.
func table(t testing.TB, k ipvs.Kernel) map[string]map[string]int {
	t.Helper()
	svcs, err := ipvs.Read(k, nil)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]map[string]int{}
	for _, s := range svcs {
		m := map[string]int{}
		for _, d := range s.Destinations {
			m[d.AddrPort().String()] = d.Weight
		}
		out[s.Key.String()] = m
	}
	return out
}

// runBalancer runs b on cfg until the test ends and returns a stop function
// that cancels it and waits for Run to return.
func runBalancer(t testing.TB, b *Balancer, cfg *config.Config) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- b.Run(ctx, cfg) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("Run: %v", err)
				}
			case <-time.After(10 * time.Second):
				t.Error("Run did not return within 10 s of cancel")
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

func mustAddr(s string) netip.Addr { return netip.MustParseAddr(s) }
