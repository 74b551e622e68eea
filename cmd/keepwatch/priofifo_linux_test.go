package main

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/keepwatch/keepwatch/engine/netif/nskit/nskittest"
)

const prioConf = `global_defs {
    router_id prio
    vrrp_notify_fifo %[2]s/vrrp.fifo
}
track_file tf {
    file %[2]s/tf.val
    weight 1
}
vrrp_instance VI_1 {
    state BACKUP
    interface %[1]s
    virtual_router_id 65
    priority 100
    advert_int 1
    notify_priority_changes
    track_file {
        tf
    }
    virtual_ipaddress {
        192.0.2.65/24
    }
}
`

// TestNotifyPriorityChangesNetwork (network tier): a real agent with
// notify_priority_changes and a track_file moving its priority writes to
// vrrp_notify_fifo the lines keepalived 2.2.7 wrote for the same config and
// the same file writes in a namespace: BACKUP 100, BACKUP_PRIORITY 105,
// MASTER 105, MASTER_PRIORITY 97, STOP 97.
func TestNotifyPriorityChangesNetwork(t *testing.T) {
	l := nskittest.New(t, "prio", 1)
	n := l.Node(1)
	dir := t.TempDir()
	val := filepath.Join(dir, "tf.val")
	set := func(v string) {
		if err := os.WriteFile(val, []byte(v+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	set("0")
	conf := filepath.Join(dir, "keepalived.conf")
	if err := os.WriteFile(conf, []byte(fmt.Sprintf(prioConf, n.Link, dir)), 0o644); err != nil {
		t.Fatal(err)
	}
	p, out := nskittest.Start(t, n, "keepwatch", n.Command(buildKeepwatch(t), "run", "-f", conf, "--web.listen-address", "127.0.0.1:19765"))
	fifo := filepath.Join(dir, "vrrp.fifo")
	waitFor(t, "the FIFO", 10*time.Second, func() bool { _, err := os.Stat(fifo); return err == nil })
	f, err := os.Open(fifo)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	lines := make(chan string, 16)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			lines <- sc.Text()
		}
	}()
	var got []string
	next := func(want string) {
		t.Helper()
		select {
		case l, ok := <-lines:
			if ok {
				got = append(got, l)
			}
			if l != want {
				t.Fatalf("FIFO line %q, want %q (lines so far %q)\n%s", l, want, got, out.String())
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("no FIFO line after %q, want %q\n%s", got, want, out.String())
		}
	}
	next(`INSTANCE "VI_1" BACKUP 100`)
	set("5")
	next(`INSTANCE "VI_1" BACKUP_PRIORITY 105`)
	next(`INSTANCE "VI_1" MASTER 105`)
	set("-3")
	next(`INSTANCE "VI_1" MASTER_PRIORITY 97`)
	if err := p.Stop(); err != nil {
		t.Fatal(err)
	}
	next(`INSTANCE "VI_1" STOP 97`)
	want := []string{`INSTANCE "VI_1" BACKUP 100`, `INSTANCE "VI_1" BACKUP_PRIORITY 105`, `INSTANCE "VI_1" MASTER 105`,
		`INSTANCE "VI_1" MASTER_PRIORITY 97`, `INSTANCE "VI_1" STOP 97`}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("FIFO lines (-want +got):\n%s", d)
	}
}
