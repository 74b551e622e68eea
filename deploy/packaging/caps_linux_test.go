package packaging

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestCapabilitiesSuffice runs the agent as the DaemonSet and the
// Containerfile run it, root with only CAP_NET_ADMIN and CAP_NET_RAW
// (setpriv bounds the rest away), in a namespace of our own: it must become
// master and add its VIP, which needs the raw VRRP socket and netlink.
func TestCapabilitiesSuffice(t *testing.T) {
	needRoot(t)
	ip := need(t, "ip")
	setpriv := need(t, "setpriv")
	bin := keepwatchBinary(t)
	ns := fmt.Sprintf("kwpc%06x", rand.Uint32()&0xffffff)
	if out, err := exec.Command(ip, "netns", "add", ns).CombinedOutput(); err != nil {
		t.Fatalf("ip netns add %s: %v\n%s", ns, err, out)
	}
	t.Cleanup(func() { _ = exec.Command(ip, "netns", "del", ns).Run() })
	for _, args := range [][]string{
		{"-n", ns, "link", "add", "eth0", "type", "veth", "peer", "name", "eth1"},
		{"-n", ns, "addr", "add", "192.0.2.1/24", "dev", "eth0"},
		{"-n", ns, "link", "set", "eth0", "up"},
		{"-n", ns, "link", "set", "eth1", "up"},
		{"-n", ns, "link", "set", "lo", "up"},
	} {
		if out, err := exec.Command(ip, args...).CombinedOutput(); err != nil {
			t.Fatalf("ip %v: %v\n%s", args, err, out)
		}
	}
	conf := filepath.Join(t.TempDir(), "keepalived.conf")
	if err := os.WriteFile(conf, []byte(`global_defs {
    vrrp_version 3
}
vrrp_instance VI_caps {
    state BACKUP
    interface eth0
    virtual_router_id 91
    priority 200
    advert_int 0.1
    virtual_ipaddress {
        192.0.2.10/24 dev eth0
    }
}
`), 0o644); err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	cmd := exec.Command(ip, "netns", "exec", ns, setpriv, "--bounding-set=-all,+net_admin,+net_raw",
		bin, "run", "-f", conf, "--web.listen-address=127.0.0.1:9759")
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(os.Interrupt)
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
	})
	deadline := time.Now().Add(10 * time.Second)
	for {
		out, _ := exec.Command(ip, "-n", ns, "-4", "addr", "show", "dev", "eth0").CombinedOutput()
		if strings.Contains(string(out), "192.0.2.10/24") {
			return
		}
		select {
		case err := <-done:
			t.Fatalf("agent exited: %v\n%s", err, logs.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("no VIP on eth0 after 10 s with only NET_ADMIN and NET_RAW:\n%s\nagent log:\n%s", out, logs.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}
