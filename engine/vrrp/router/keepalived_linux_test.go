package router

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/keepwatch/keepwatch/engine/netif/nskit"
	"github.com/keepwatch/keepwatch/engine/netif/nskit/nskittest"
)

// kaRun is one keepalived process on a lab node.
type kaRun struct {
	proc *nskit.Proc
	log  *nskittest.Buffer
}

// startKeepalived runs the Debian keepalived on n with configuration conf,
// written to dir/name.conf: in the foreground (-n), VRRP only (-P), logging
// to the console (-l -D) into the returned log, with its pid files in dir.
// It is stopped when the test ends, and its configuration and log are
// printed if the test failed.
func startKeepalived(t *testing.T, n *nskit.Node, dir, name, conf string) *kaRun {
	t.Helper()
	path := filepath.Join(dir, name+".conf")
	if err := os.WriteFile(path, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	k := &kaRun{log: &nskittest.Buffer{}}
	cmd := n.Command("keepalived", "-f", path, "-P", "-n", "-l", "-D",
		"-p", filepath.Join(dir, name+".pid"), "-r", filepath.Join(dir, name+"-vrrp.pid"))
	cmd.Stdout, cmd.Stderr = k.log, k.log
	var err error
	if k.proc, err = n.Start(cmd); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = k.proc.Stop()
		if t.Failed() {
			t.Logf("keepalived %s:\n%s\nlog:\n%s", name, conf, k.log.String())
		}
	})
	return k
}
