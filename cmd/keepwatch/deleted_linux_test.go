package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/keepwatch/keepwatch/engine/netif/nskit/nskittest"
)

const deletedConf = `global_defs {
    router_id deleted
}
vrrp_instance VI_2 {
    state MASTER
    interface %[1]s
    virtual_router_id 64
    priority 150
    advert_int 1
    notify %[2]s/gen.sh
    virtual_ipaddress {
        192.0.2.64/24
    }
}
`

const deletedVI1 = `vrrp_instance VI_1 {
    state MASTER
    interface %[1]s
    virtual_router_id 63
    priority 150
    advert_int 1
    notify %[2]s/gen.sh
    notify_stop %[2]s/stop.sh
    notify_deleted "%[2]s/del.sh d1"
    virtual_ipaddress {
        192.0.2.63/24
    }
}
`

// TestNotifyDeletedNetwork (network tier): a real agent whose reload
// removes an instance with notify_deleted runs its notify_deleted script
// and gives `notify` DELETED, not notify_stop, as keepalived 2.2.7 does
// after a HUP; the instance the reload keeps is untouched.
func TestNotifyDeletedNetwork(t *testing.T) {
	l := nskittest.New(t, "deleted", 1)
	n := l.Node(1)
	dir := t.TempDir()
	for _, s := range []string{"gen", "stop", "del"} {
		body := fmt.Sprintf("#!/bin/sh\necho \"%s $*\" >> %s/log\n", s, dir)
		if err := os.WriteFile(filepath.Join(dir, s+".sh"), []byte(body), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	conf := filepath.Join(dir, "keepalived.conf")
	write := func(text string) {
		if err := os.WriteFile(conf, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write(fmt.Sprintf(deletedConf+deletedVI1, n.Link, dir))
	p, out := nskittest.Start(t, n, "keepwatch", n.Command(buildKeepwatch(t), "run", "-f", conf, "--web.listen-address", "127.0.0.1:19764"))
	logHas := func(s string) bool {
		b, _ := os.ReadFile(filepath.Join(dir, "log"))
		return strings.Contains(string(b), s)
	}
	waitFor(t, "both instances master", 20*time.Second, func() bool {
		return logHas("gen INSTANCE VI_1 MASTER") && logHas("gen INSTANCE VI_2 MASTER")
	})
	write(fmt.Sprintf(deletedConf, n.Link, dir))
	if err := p.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "VI_1's VIP removed", 10*time.Second, func() bool { return !strings.Contains(addrs(t, n), "192.0.2.63/") })
	waitFor(t, "the deletion announced", 10*time.Second, func() bool { return logHas("gen INSTANCE VI_1 DELETED") && logHas("del d1") })
	b, _ := os.ReadFile(filepath.Join(dir, "log"))
	if strings.Contains(string(b), "stop") || strings.Contains(string(b), "VI_1 STOP") || strings.Contains(string(b), "VI_2 STOP") {
		t.Errorf("a STOP was announced on reload:\n%s", b)
	}
	if !strings.Contains(addrs(t, n), "192.0.2.64/") {
		t.Errorf("VI_2's VIP gone after a reload that kept it:\n%s", addrs(t, n))
	}
	if err := p.Stop(); err != nil {
		t.Fatal(err)
	}
	b, _ = os.ReadFile(filepath.Join(dir, "log"))
	if !strings.HasSuffix(string(b), "gen INSTANCE VI_2 STOP 150\n") {
		t.Errorf("VI_2 did not stop as usual at shutdown:\n%s\n%s", b, out.String())
	}
}
