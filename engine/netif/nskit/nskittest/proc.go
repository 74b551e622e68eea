package nskittest

import (
	"bytes"
	"os/exec"
	"sync"
	"testing"

	"github.com/keepwatch/keepwatch/engine/netif/nskit"
)

// Buffer collects a process's output: an io.Writer safe for the
// goroutines exec starts to copy stdout and stderr while the test reads it.
type Buffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *Buffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

// String returns everything written so far.
func (l *Buffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// Start starts cmd (made with n.Command) in n's namespace with its stdout
// and stderr collected in the returned Buffer. When the test ends the
// process is stopped (by its pid) and, if the test failed, its output is
// logged under name.
func Start(t testing.TB, n *nskit.Node, name string, cmd *exec.Cmd) (*nskit.Proc, *Buffer) {
	t.Helper()
	out := &Buffer{}
	cmd.Stdout, cmd.Stderr = out, out
	p, err := n.Start(cmd)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = p.Stop()
		if t.Failed() {
			t.Logf("%s on node %d:\n%s", name, n.Index, out.String())
		}
	})
	return p, out
}
