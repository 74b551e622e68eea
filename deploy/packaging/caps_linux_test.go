package packaging

import (
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestCapabilitiesSuffice runs the agent as root bounded to the
// capabilities each deployment grants (setpriv drops the rest), in a
// namespace of its own: the DaemonSet's NET_ADMIN and NET_RAW, and the
// systemd unit's CapabilityBoundingSet, where a notify script must also run
// as script_user (setuid/setgid). The agent must become master and add its
// VIP, which takes the raw VRRP socket and netlink.
func TestCapabilitiesSuffice(t *testing.T) {
	needRoot(t)
	ip := need(t, "ip")
	setpriv := need(t, "setpriv")
	bin := keepwatchBinary(t)

	var ds daemonSet
	decodeAs(t, "daemonset.yaml", &ds)
	var dsCaps []string
	for _, c := range ds.Spec.Template.Spec.Containers[0].SecurityContext.Capabilities.Add {
		dsCaps = append(dsCaps, "+"+strings.ToLower(c))
	}
	unit := unitKeys(t, readFile(t, filepath.Join(deployDir(t), "systemd", "keepwatch.service")))
	var unitCaps []string
	for _, c := range strings.Fields(one(t, unit, "Service.CapabilityBoundingSet")) {
		unitCaps = append(unitCaps, "+"+strings.ToLower(strings.TrimPrefix(c, "CAP_")))
	}
	nobody, err := user.Lookup("nobody")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name       string
		caps       []string
		scriptUser string // "": no notify script
	}{
		{"daemonset", dsCaps, ""},
		{"systemd", unitCaps, "nobody"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			bound := "--bounding-set=-all," + strings.Join(tc.caps, ",")
			dir := t.TempDir()
			global, notify := "", ""
			var uidFile string
			if tc.scriptUser != "" {
				// Script security: the script and the directories above it
				// writable by root only; its output goes to a directory the
				// script user may write.
				for d := dir; d != os.TempDir() && d != "/"; d = filepath.Dir(d) {
					if err := os.Chmod(d, 0o755); err != nil {
						t.Fatal(err)
					}
				}
				out := filepath.Join(dir, "out")
				if err := os.Mkdir(out, 0o777); err != nil {
					t.Fatal(err)
				}
				if err := os.Chmod(out, 0o777); err != nil {
					t.Fatal(err)
				}
				uidFile = filepath.Join(out, "uid")
				script := filepath.Join(dir, "notify.sh")
				if err := os.WriteFile(script, []byte("#!/bin/sh\nid -u > "+uidFile+"\n"), 0o755); err != nil {
					t.Fatal(err)
				}
				global = "    script_user " + tc.scriptUser + "\n    enable_script_security\n"
				notify = "    notify_master " + script + "\n"
			}
			conf := filepath.Join(dir, "keepalived.conf")
			if err := os.WriteFile(conf, []byte("global_defs {\n    vrrp_version 3\n"+global+"}\n"+
				"vrrp_instance VI_caps {\n    state BACKUP\n    interface eth0\n    virtual_router_id 91\n"+
				"    priority 200\n    advert_int 0.1\n"+notify+
				"    virtual_ipaddress {\n        192.0.2.10/24 dev eth0\n    }\n}\n"), 0o644); err != nil {
				t.Fatal(err)
			}
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
			logs, err := os.Create(filepath.Join(dir, "agent.log"))
			if err != nil {
				t.Fatal(err)
			}
			defer logs.Close()
			cmd := exec.Command(ip, "netns", "exec", ns, setpriv, bound,
				bin, "run", "-f", conf, "--web.listen-address=127.0.0.1:9759")
			cmd.Stdout, cmd.Stderr = logs, logs
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
			logText := func() string { b, _ := os.ReadFile(logs.Name()); return string(b) }
			deadline := time.Now().Add(10 * time.Second)
			for {
				out, _ := exec.Command(ip, "-n", ns, "-4", "addr", "show", "dev", "eth0").CombinedOutput()
				uid, _ := os.ReadFile(uidFile)
				vip := strings.Contains(string(out), "192.0.2.10/24")
				ran := uidFile == "" || len(uid) > 0 && uid[len(uid)-1] == '\n'
				if vip && ran {
					if got := strings.TrimSpace(string(uid)); uidFile != "" && got != nobody.Uid {
						t.Errorf("notify script ran as uid %s, want %s (%s)", got, nobody.Uid, tc.scriptUser)
					}
					return
				}
				select {
				case err := <-done:
					t.Fatalf("agent exited (%s): %v\n%s", bound, err, logText())
				default:
				}
				if time.Now().After(deadline) {
					t.Fatalf("%s: after 10 s, VIP on eth0 %v, notify script ran %v:\n%s\nagent log:\n%s", bound, vip, ran, out, logText())
				}
				time.Sleep(50 * time.Millisecond)
			}
		})
	}
}
