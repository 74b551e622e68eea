package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/keepwatch/keepwatch/engine/netif/nskit"
	"github.com/keepwatch/keepwatch/engine/netif/nskit/nskittest"
)

var (
	dropinOnce sync.Once
	dropinDir  string
	dropinErr  error
)

// dropinBinary builds keepwatch once and links it as "keepalived", the way
// the drop-in is installed; it returns the link.
func dropinBinary(t *testing.T) string {
	t.Helper()
	dropinOnce.Do(func() {
		dropinDir, dropinErr = os.MkdirTemp("", "kwdropin-bin-")
		if dropinErr != nil {
			return
		}
		bin := filepath.Join(dropinDir, "keepwatch")
		cmd := exec.Command("go", "build", "-o", bin, ".")
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			dropinErr = fmt.Errorf("building keepwatch: %v\n%s", err, out)
			return
		}
		dropinErr = os.Symlink("keepwatch", filepath.Join(dropinDir, "keepalived"))
	})
	if dropinErr != nil {
		t.Fatal(dropinErr)
	}
	return filepath.Join(dropinDir, "keepalived")
}

func TestMain(m *testing.M) {
	code := m.Run()
	// The binary the network tests built (dropinBinary).
	if dropinDir != "" {
		os.RemoveAll(dropinDir)
	}
	os.Exit(code)
}

const dropinConf = `global_defs {
    router_id dropin
}
vrrp_instance VI_1 {
    state MASTER
    interface %s
    virtual_router_id 61
    priority 150
    advert_int 1
    authentication {
        auth_type PASS
        auth_pass secret12
    }
    virtual_ipaddress {
%s
    }
}
`

// addrs returns the IPv4 addresses on the node's link.
func addrs(t *testing.T, n *nskit.Node) string {
	t.Helper()
	out, err := exec.Command("ip", "-n", n.NS, "-4", "-o", "addr", "show", "dev", n.Link).CombinedOutput()
	if err != nil {
		t.Fatalf("ip addr: %v\n%s", err, out)
	}
	return string(out)
}

func waitFor(t *testing.T, what string, timeout time.Duration, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func readPid(t *testing.T, path string) int {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("pid file: %v", err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatalf("pid file %s holds %q", path, b)
	}
	return pid
}

func alive(pid int) bool { return syscall.Kill(pid, 0) == nil }

// The drop-in started the way the upstream forking keepalived.service
// starts keepalived (no -n, a pid file; Type=forking, PIDFile=): the command
// returns 0 with the daemon up and its pid files written, `kill -HUP $(cat
// pidfile)` reloads (a VIP added to the file appears), `kill $(cat
// pidfile)` stops it, its VIPs are removed and its pid files are gone.
func TestDropinForkingUnit(t *testing.T) {
	bin := dropinBinary(t)
	lab := nskittest.New(t, "dropin", 1)
	n := lab.Node(1)
	dir := t.TempDir()
	conf := filepath.Join(dir, "keepalived.conf")
	write := func(vips ...string) {
		if err := os.WriteFile(conf, []byte(fmt.Sprintf(dropinConf, n.Link, strings.Join(vips, "\n"))), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("        192.0.2.200/24")
	pidFile, vrrpPid, checkPid := filepath.Join(dir, "keepalived.pid"), filepath.Join(dir, "vrrp.pid"), filepath.Join(dir, "checkers.pid")
	logFile := filepath.Join(dir, "keepalived.log")
	// `ip netns exec` stands in for the host; the arguments are the unit's
	// (ExecStart=/usr/sbin/keepalived $KEEPALIVED_OPTIONS with -D, and -p).
	cmd := n.Command(bin, "-D", "-d", "-f", conf, "-p", pidFile, "-r", vrrpPid, "-c", checkPid, "-g"+logFile, "-G")
	cmd.Env = append(os.Environ(), "KEEPWATCH_AGENT_LISTEN_ADDRESS=127.0.0.1:0")
	start := time.Now()
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("keepalived (drop-in) start: %v\n%s", err, out)
	}
	t.Logf("parent returned after %v", time.Since(start).Round(time.Millisecond))
	pid := readPid(t, pidFile)
	t.Cleanup(func() {
		if alive(pid) {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
		if t.Failed() {
			b, _ := os.ReadFile(logFile)
			t.Logf("drop-in log:\n%s", b)
		}
	})
	if pid == cmd.Process.Pid || !alive(pid) {
		t.Fatalf("pid file holds %d: want the live daemon, not the parent %d", pid, cmd.Process.Pid)
	}
	for _, p := range []string{vrrpPid, checkPid} {
		if got := readPid(t, p); got != pid {
			t.Errorf("%s holds %d, want %d", p, got, pid)
		}
	}
	// The daemon is detached: its own session, not the parent's.
	if sid, err := syscall.Getpgid(pid); err != nil || sid != pid {
		t.Errorf("daemon process group %d (%v), want its own (%d)", sid, err, pid)
	}
	waitFor(t, "the VIP", 15*time.Second, func() bool { return strings.Contains(addrs(t, n), "192.0.2.200/24") })

	write("        192.0.2.200/24", "        203.0.113.9/32")
	if err := syscall.Kill(readPid(t, pidFile), syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the VIP added by the reload", 15*time.Second, func() bool { return strings.Contains(addrs(t, n), "203.0.113.9/32") })
	if !alive(pid) {
		t.Fatal("the daemon died on SIGHUP")
	}

	if err := syscall.Kill(readPid(t, pidFile), syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the daemon to exit", 15*time.Second, func() bool { return !alive(pid) })
	if a := addrs(t, n); strings.Contains(a, "192.0.2.200") || strings.Contains(a, "203.0.113.9") {
		t.Errorf("VIPs left after stop:\n%s", a)
	}
	for _, p := range []string{pidFile, vrrpPid, checkPid} {
		if _, err := os.Stat(p); !os.IsNotExist(err) {
			t.Errorf("pid file %s left after stop (%v)", p, err)
		}
	}
	log, _ := os.ReadFile(logFile)
	for _, want := range []string{"reloaded", "(VI_1) Entering MASTER STATE"} {
		if !strings.Contains(string(log), want) {
			t.Errorf("-g log file lacks %q:\n%s", want, log)
		}
	}
	if !strings.Contains(string(log), "------< VRRP Topology >------") {
		t.Errorf("-d: no data dump in the log:\n%s", log)
	}
	// The log has keepalived's layout, without levels: "interface changed"
	// is a debug record.
	if !strings.Contains(string(log), "interface changed") {
		t.Errorf("-D: no debug records in the log:\n%s", log)
	}
}

// Without -n, a daemon that cannot come up (here: its -g log file cannot
// be opened) makes the start fail with its status, as a forking unit needs
// to see; with a live pid file the start is refused ("daemon is already
// running").
func TestDropinStartFailures(t *testing.T) {
	bin := dropinBinary(t)
	dir := t.TempDir()
	conf := filepath.Join(dir, "keepalived.conf")
	if err := os.WriteFile(conf, []byte("global_defs {\n  router_id x\n}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	pidFile := filepath.Join(dir, "keepalived.pid")
	args := []string{"-f", conf, "-p", pidFile, "-r", filepath.Join(dir, "v.pid"), "-c", filepath.Join(dir, "c.pid"), "-G", "-l"}
	out, err := exec.Command(bin, append(args, "-g"+filepath.Join(dir, "no", "such", "dir", "log"))...).CombinedOutput()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 1 || !strings.Contains(string(out), "daemon exited before it was up (status 1)") {
		t.Errorf("a daemon that cannot start: %v, want exit 1 and the reason\n%s", err, out)
	}
	if _, err := os.Stat(pidFile); !os.IsNotExist(err) {
		t.Errorf("pid file left by a daemon that never came up (%v)", err)
	}

	// A pid file naming a live process: this test's own.
	if err := os.WriteFile(pidFile, []byte(strconv.Itoa(os.Getpid())+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err = exec.Command(bin, append(args, "-n")...).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "already running") {
		t.Errorf("start over a live pid file: %v, want \"already running\"\n%s", err, out)
	}
}

// -s NAME runs the drop-in in the named network namespace though started
// outside it; -C runs the checkers' side only (the VRRP instance is not
// started), -P the VRRP side.
func TestDropinNamespaceAndSides(t *testing.T) {
	bin := dropinBinary(t)
	lab := nskittest.New(t, "dropins", 1)
	n := lab.Node(1)
	dir := t.TempDir()
	conf := filepath.Join(dir, "keepalived.conf")
	if err := os.WriteFile(conf, []byte(fmt.Sprintf(dropinConf, n.Link, "        192.0.2.151/24")), 0o644); err != nil {
		t.Fatal(err)
	}
	client := n.HTTPClient(5*time.Second, nil)
	for _, tc := range []struct {
		side     string
		vip      bool
		instance bool
	}{{"-C", false, false}, {"-P", true, true}} {
		t.Run(tc.side, func(t *testing.T) {
			// Started in the host's namespace, with -s naming the node's.
			cmd := exec.Command(bin, "-n", "-l", "-G", "-s", n.NS, tc.side, "-f", conf, "-p", filepath.Join(dir, "k.pid"),
				"-r", filepath.Join(dir, "v.pid"), "-c", filepath.Join(dir, "c.pid"))
			cmd.Env = append(os.Environ(), "KEEPWATCH_AGENT_LISTEN_ADDRESS=127.0.0.1:19763")
			var out nskittest.Buffer
			cmd.Stdout, cmd.Stderr = &out, &out
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			done := make(chan struct{})
			go func() { _ = cmd.Wait(); close(done) }()
			defer func() {
				_ = cmd.Process.Signal(syscall.SIGTERM)
				select {
				case <-done:
				case <-time.After(10 * time.Second):
					_ = cmd.Process.Kill()
					<-done
				}
				if t.Failed() {
					t.Logf("output:\n%s", out.String())
				}
			}()
			var body string
			waitFor(t, "the agent ready in the node's namespace", 20*time.Second, func() bool {
				resp, err := client.Get("http://127.0.0.1:19763/api/v1/status")
				if err != nil {
					return false
				}
				defer resp.Body.Close()
				var b strings.Builder
				_, _ = io.Copy(&b, resp.Body)
				body = b.String()
				return strings.Contains(body, `"ready": true`)
			})
			if got := strings.Contains(body, `"iname": "VI_1"`); got != tc.instance {
				t.Errorf("%s: instance VI_1 running = %v, want %v:\n%s", tc.side, got, tc.instance, body)
			}
			if tc.vip {
				waitFor(t, "the VIP in the node's namespace", 15*time.Second, func() bool { return strings.Contains(addrs(t, n), "192.0.2.151/24") })
			} else {
				time.Sleep(4 * time.Second) // longer than the master down interval
				if strings.Contains(addrs(t, n), "192.0.2.151") {
					t.Errorf("%s: the VRRP instance ran and added its VIP", tc.side)
				}
			}
		})
	}
}
