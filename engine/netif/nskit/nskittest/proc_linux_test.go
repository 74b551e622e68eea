package nskittest_test

import (
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keepwatch/keepwatch/engine/netif/nskit"
	"github.com/keepwatch/keepwatch/engine/netif/nskit/nskittest"
)

// TestBufferConcurrent: writers on several goroutines lose nothing (run
// with -race to see the lock matter).
func TestBufferConcurrent(t *testing.T) {
	var b nskittest.Buffer
	var wg sync.WaitGroup
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := 0; j < 100; j++ {
				_, _ = b.Write([]byte("x"))
				_ = b.String()
			}
		}()
	}
	wg.Wait()
	if got := len(b.String()); got != 800 {
		t.Errorf("%d bytes, want 800", got)
	}
}

// TestStart runs a process in a lab node: its output is collected, it runs
// in the node's namespace, and it is stopped when the test ends.
func TestStart(t *testing.T) {
	l := nskittest.New(t, "start", 1)
	n := l.Node(1)
	var proc *nskit.Proc
	t.Run("run", func(t *testing.T) {
		p, out := nskittest.Start(t, n, "sh", n.Command("sh", "-c", "ip -o link show; echo done; exec sleep 60"))
		proc = p
		deadline := time.Now().Add(5 * time.Second)
		for !strings.Contains(out.String(), "done") {
			if time.Now().After(deadline) {
				t.Fatalf("no output within 5s: %q", out.String())
			}
			time.Sleep(10 * time.Millisecond)
		}
		if !strings.Contains(out.String(), n.Link) {
			t.Errorf("output %q does not list the node's link %s: not in its namespace", out.String(), n.Link)
		}
	})
	select {
	case <-proc.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("process still running after its test ended")
	}
}
