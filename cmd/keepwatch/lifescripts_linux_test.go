package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gopacket/gopacket/pcapgo"

	"github.com/keepwatch/keepwatch/engine/netif/nskit"
	"github.com/keepwatch/keepwatch/engine/netif/nskit/nskittest"
)

const lifeConf = `global_defs {
    router_id life
    startup_script "%s/start.sh a1"
    shutdown_script "%s/stop.sh b1"
%s}
vrrp_instance VI_1 {
    state MASTER
    interface %s
    virtual_router_id 62
    priority 150
    advert_int 1
    notify_stop "%s/nstop.sh n1"
    virtual_ipaddress {
        192.0.2.62/24
    }
}
`

// lifeScript is a shell script that appends to DIR/log: its name, its
// argument, the time (date +%s.%N) and the node's IPv4 addresses; then
// body.
func lifeScript(t *testing.T, dir, name, link, body string) {
	t.Helper()
	text := fmt.Sprintf("#!/bin/sh\necho \"%s $1 $(date +%%s.%%N) keepwatch_env=$(env | grep -c '^KEEPWATCH_')\" >> %s/log\n"+
		"ip -4 -o addr show dev %s >> %s/log\n%s\n", name, dir, link, dir, body)
	if err := os.WriteFile(filepath.Join(dir, name+".sh"), []byte(text), 0o755); err != nil {
		t.Fatal(err)
	}
}

// lifeLog is what the scripts wrote: per script line ("start", "startend",
// "stop") the time it was written and the addresses listed after it.
type lifeEntry struct {
	arg, env string
	at       time.Time
	addrs    string
}

func readLifeLog(t *testing.T, dir string) map[string][]lifeEntry {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "log"))
	if err != nil {
		t.Fatalf("the scripts' log: %v", err)
	}
	out := map[string][]lifeEntry{}
	var last string
	for _, l := range strings.Split(string(b), "\n") {
		f := strings.Fields(l)
		if len(f) == 4 && strings.HasPrefix(f[3], "keepwatch_env=") {
			sec, err := strconv.ParseFloat(f[2], 64)
			if err != nil {
				t.Fatalf("log line %q: %v", l, err)
			}
			last = f[0]
			out[last] = append(out[last], lifeEntry{arg: f[1], env: f[3], at: time.Unix(0, int64(sec*1e9))})
			continue
		}
		if last != "" && l != "" {
			e := &out[last][len(out[last])-1]
			e.addrs += l + "\n"
		}
	}
	return out
}

// advert is one VRRP packet from the capture: when, and its priority.
type advert struct {
	at       time.Time
	priority byte
}

func readAdverts(t *testing.T, path string) []advert {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r, err := pcapgo.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	var out []advert
	for {
		data, ci, err := r.ReadPacketData()
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		// Ethernet, then IPv4 (IHL words), then VRRP: priority is byte 2
		// (RFC 3768 §5.1).
		if len(data) < 14+20 {
			continue
		}
		ip := data[14:]
		ihl := int(ip[0]&0x0f) * 4
		if len(ip) < ihl+3 {
			continue
		}
		out = append(out, advert{at: ci.Timestamp, priority: ip[ihl+2]})
	}
}

// startLife writes the config and starts keepwatch run on it in n, with a
// KEEPWATCH_ variable in its environment (which no script may see).
func startLife(t *testing.T, n *nskit.Node, dir, extra string) (*nskit.Proc, *nskittest.Buffer) {
	t.Helper()
	lifeScript(t, dir, "nstop", n.Link, "")
	conf := filepath.Join(dir, "keepalived.conf")
	if err := os.WriteFile(conf, []byte(fmt.Sprintf(lifeConf, dir, dir, extra, n.Link, dir)), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := n.Command(buildKeepwatch(t), "run", "-f", conf, "--web.listen-address", "127.0.0.1:19762")
	cmd.Env = append(os.Environ(), "KEEPWATCH_LIFE_SECRET=s3cret")
	return nskittest.Start(t, n, "keepwatch", cmd)
}

func stopLife(t *testing.T, p *nskit.Proc, within time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	if err := p.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-p.Done():
	case <-time.After(within):
		t.Fatalf("keepwatch still running %v after SIGTERM", within)
	}
	return time.Since(start)
}

// TestLifeScriptsNetwork (network tier): keepwatch run in a namespace runs
// startup_script once, to its end, before the first advert and before the
// VIP is added, and shutdown_script once, after the priority-0 advert,
// after the VIP is removed and after notify_stop has run, each with its argument and without keepwatch's
// KEEPWATCH_* variables in its environment — the order keepalived 2.2.7
// follows (its log: "Running startup script", "Starting VRRP child
// process", ..., "(VI_1) removing VIPs.", "Stopped", "Running shutdown
// script").
func TestLifeScriptsNetwork(t *testing.T) {
	l := nskittest.New(t, "life", 1, "tcpdump")
	n := l.Node(1)
	dir := t.TempDir()
	// The startup script takes longer than the instance takes to become
	// master (master_down, ~3.6 s at advert_int 1), so an instance started
	// alongside it (not after it) would be seen advertising meanwhile.
	lifeScript(t, dir, "start", n.Link, "sleep 4.5\necho \"startend $1 $(date +%s.%N) keepwatch_env=-\" >> "+dir+"/log")
	lifeScript(t, dir, "stop", n.Link, "")
	capture, err := n.Capture(filepath.Join(dir, "vrrp.pcap"), "ip proto 112")
	if err != nil {
		t.Fatal(err)
	}
	p, out := startLife(t, n, dir, "")
	waitFor(t, "the VIP", 15*time.Second, func() bool { return strings.Contains(addrs(t, n), "192.0.2.62/24") })
	time.Sleep(1500 * time.Millisecond) // a few adverts as master
	stopLife(t, p, 10*time.Second)
	if err := capture.Stop(); err != nil {
		t.Fatal(err)
	}
	logs := readLifeLog(t, dir)
	ads := readAdverts(t, capture.Path)
	if len(logs["start"]) != 1 || len(logs["startend"]) != 1 || len(logs["stop"]) != 1 || len(logs["nstop"]) != 1 {
		t.Fatalf("script runs %v, want start, startend, nstop and stop once each\n%s", logs, out.String())
	}
	if len(ads) < 2 {
		t.Fatalf("%d adverts captured, want at least 2\n%s", len(ads), out.String())
	}
	start, startEnd, stop := logs["start"][0], logs["startend"][0], logs["stop"][0]
	if start.arg != "a1" || stop.arg != "b1" {
		t.Errorf("arguments %q and %q, want a1 and b1", start.arg, stop.arg)
	}
	if start.env != "keepwatch_env=0" || stop.env != "keepwatch_env=0" {
		t.Errorf("the scripts saw KEEPWATCH_* variables: %s, %s", start.env, stop.env)
	}
	if strings.Contains(start.addrs, "192.0.2.62") || strings.Contains(stop.addrs, "192.0.2.62") {
		t.Errorf("VIP present while a script ran:\nstart:\n%sstop:\n%s", start.addrs, stop.addrs)
	}
	if first := ads[0].at; !first.After(startEnd.at) {
		t.Errorf("first advert at %s, before the startup script ended at %s", first.Format(time.StampMicro), startEnd.at.Format(time.StampMicro))
	}
	last := ads[len(ads)-1]
	if last.priority != 0 {
		t.Errorf("last advert has priority %d, want the shutdown's 0", last.priority)
	}
	if nstop := logs["nstop"][0]; !stop.at.After(nstop.at) {
		t.Errorf("shutdown script ran at %s, before notify_stop at %s", stop.at.Format(time.StampMicro), nstop.at.Format(time.StampMicro))
	}
	if !stop.at.After(last.at) {
		t.Errorf("shutdown script ran at %s, before the last advert at %s", stop.at.Format(time.StampMicro), last.at.Format(time.StampMicro))
	}
	t.Logf("startup script %s..%s, first advert %s; last advert (priority %d) %s, shutdown script %s",
		start.at.Format(time.StampMicro), startEnd.at.Format(time.StampMicro), ads[0].at.Format(time.StampMicro),
		last.priority, last.at.Format(time.StampMicro), stop.at.Format(time.StampMicro))
}

// TestLifeScriptsTimeout (network tier): a startup script that hangs is
// killed at startup_script_timeout, with the process it started in the
// background, and the agent starts all the same; a shutdown script that
// hangs is killed at shutdown_script_timeout and the agent exits 0. A
// script that fails is logged and the agent goes on (keepalived 2.2.7:
// "startup script timed out", "startup script script failed, status 1",
// then "Starting VRRP child process").
func TestLifeScriptsTimeout(t *testing.T) {
	l := nskittest.New(t, "lifeto", 1)
	n := l.Node(1)
	dir := t.TempDir()
	lifeScript(t, dir, "start", n.Link, "sleep 60 &\necho $! > "+dir+"/bgpid\nsleep 60")
	lifeScript(t, dir, "stop", n.Link, "sleep 60")
	began := time.Now()
	p, out := startLife(t, n, dir, "    startup_script_timeout 1\n    shutdown_script_timeout 2\n")
	waitFor(t, "the VIP", 15*time.Second, func() bool { return strings.Contains(addrs(t, n), "192.0.2.62/24") })
	if took := time.Since(began); took < time.Second {
		t.Errorf("VIP after %v: the agent did not wait for the startup script's 1 s timeout", took)
	}
	b, err := os.ReadFile(filepath.Join(dir, "bgpid"))
	if err != nil {
		t.Fatal(err)
	}
	bg, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the startup script's background sleep to be killed", 5*time.Second, func() bool { return !alive(bg) || zombie(bg) })
	took := stopLife(t, p, 15*time.Second)
	if took < 2*time.Second {
		t.Errorf("stopped %v after SIGTERM: the shutdown script (sleep 60, timeout 2 s) cannot have run", took)
	}
	if p.Cmd.ProcessState == nil || p.Cmd.ProcessState.ExitCode() != 0 {
		t.Errorf("keepwatch exit %v, want 0", p.Cmd.ProcessState)
	}
	logs := out.String()
	for _, want := range []string{"startup_script timed out", "shutdown_script timed out"} {
		if !strings.Contains(logs, want) {
			t.Errorf("log lacks %q:\n%s", want, logs)
		}
	}
	t.Logf("stopped %v after SIGTERM with a hanging shutdown script (timeout 2 s)", took)

	// A startup script that fails: logged, and the agent starts.
	lifeScript(t, dir, "start", n.Link, "exit 3")
	lifeScript(t, dir, "stop", n.Link, "exit 4")
	p, out = startLife(t, n, dir, "")
	waitFor(t, "the VIP", 15*time.Second, func() bool { return strings.Contains(addrs(t, n), "192.0.2.62/24") })
	stopLife(t, p, 15*time.Second)
	if p.Cmd.ProcessState == nil || p.Cmd.ProcessState.ExitCode() != 0 {
		t.Errorf("keepwatch exit %v, want 0", p.Cmd.ProcessState)
	}
	for _, want := range []string{"startup_script failed", `"exit_code": 3`, "shutdown_script failed", `"exit_code": 4`} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("log lacks %q:\n%s", want, out.String())
		}
	}
}

// zombie reports a process that has exited but is not yet reaped (its
// parent, the killed script, is gone, so init reaps it soon).
func zombie(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return true
	}
	_, rest, ok := strings.Cut(string(b), ") ")
	return ok && strings.HasPrefix(rest, "Z")
}
