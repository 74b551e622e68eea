package lab_test

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/keepwatch/keepwatch/deploy/lab"
)

// hostileStatus is the part of /api/v1/status the hostile-input tests read.
type hostileStatus struct {
	Instances []struct {
		Name     string `json:"iname"`
		State    string `json:"state"`
		Trackers []struct {
			Name     string `json:"name"`
			Fault    bool   `json:"fault"`
			Disabled bool   `json:"disabled"`
			Error    string `json:"error"`
		} `json:"trackers"`
	} `json:"vrrp_instances"`
	VirtualServers []struct {
		RealServers []struct {
			Address  string `json:"address"`
			Up       bool   `json:"up"`
			Checkers []struct {
				Type   string `json:"type"`
				HasRun bool   `json:"has_run"`
				Up     bool   `json:"up"`
				Reason string `json:"last_error"`
			} `json:"checkers"`
		} `json:"real_servers"`
	} `json:"virtual_servers"`
	ScriptSecurity []struct {
		At       string `json:"at"`
		Kind     string `json:"kind"`
		Path     string `json:"path"`
		Disabled bool   `json:"disabled"`
	} `json:"script_security"`
}

// statusPoller asks a node's /api/v1/status every 50 ms, each answer due
// within 2 s, and remembers the last answer and every miss.
type statusPoller struct {
	mu     sync.Mutex
	last   hostileStatus
	misses []string
	polls  atomic.Int64
	paused atomic.Bool // the node is stopped on purpose
	stop   chan struct{}
	done   chan struct{}
}

func pollStatus(n *lab.Node) *statusPoller {
	p := &statusPoller{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(p.done)
		for {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			b, err := n.Fetch(ctx, "/api/v1/status")
			cancel()
			p.polls.Add(1)
			p.mu.Lock()
			var doc hostileStatus
			if err == nil {
				err = json.Unmarshal(b, &doc)
			}
			if err != nil && !p.paused.Load() {
				p.misses = append(p.misses, time.Now().Format("15:04:05.000")+" "+err.Error())
			} else if err == nil {
				p.last = doc
			}
			p.mu.Unlock()
			select {
			case <-p.stop:
				return
			case <-time.After(50 * time.Millisecond):
			}
		}
	}()
	return p
}

func (p *statusPoller) close(t *testing.T) {
	t.Helper()
	close(p.stop)
	<-p.done
	p.report(t)
}

// report fails t if status missed an answer so far.
func (p *statusPoller) report(t *testing.T) {
	t.Helper()
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.misses) > 0 {
		t.Errorf("status did not answer %d of %d times: %q", len(p.misses), p.polls.Load(), p.misses)
	}
	p.misses = nil
}

// waitFor waits until the last status satisfies ok.
func (p *statusPoller) waitFor(t *testing.T, what string, timeout time.Duration, ok func(hostileStatus) bool) hostileStatus {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		p.mu.Lock()
		doc := p.last
		p.mu.Unlock()
		if ok(doc) {
			return doc
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s; last status %+v", what, timeout, doc)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func faultTracker(doc hostileStatus) (state string, fault bool, errText string) {
	for _, in := range doc.Instances {
		if in.Name != "VI_4" {
			continue
		}
		for _, tr := range in.Trackers {
			if tr.Name == "lab_fault" {
				return in.State, tr.Fault, tr.Error
			}
		}
		return in.State, false, ""
	}
	return "", false, ""
}

// replace puts what make creates at path atomically (rename), as a
// process feeding a track_file would.
func replace(t *testing.T, path string, make func(tmp string) error) {
	t.Helper()
	tmp := path + ".tmp"
	os.Remove(tmp)
	if err := make(tmp); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// TestTrackFileHostile runs a real agent whose track_file (weight 0,
// init_file 0 overwrite) another process replaces with a FIFO, a 1 GB
// sparse file and, across a restart, a symbolic link, while
// /api/v1/status is asked every 50 ms and must always answer: the FIFO is
// an error state that faults the instance (the peer takes the VIP) and
// clears when a file is back; the sparse file is read for its first bytes;
// init_file is not written through the link.
func TestTrackFileHostile(t *testing.T) {
	t.Parallel()
	c := newCluster(t, "hostile", lab.Options{Nodes: 2, Params: lab.Params{Family: 4, FaultFile: true}})
	n1 := c.Node(1)
	fault := filepath.Join(n1.Dir, "fault")
	waitHolders(t, c, []int{1}, 10*time.Second, vip4)
	p := pollStatus(n1)
	defer p.close(t)

	replace(t, fault, func(tmp string) error { return syscall.Mkfifo(tmp, 0o644) })
	doc := p.waitFor(t, "FIFO faults VI_4", 5*time.Second, func(d hostileStatus) bool {
		st, f, e := faultTracker(d)
		return st == "fault" && f && strings.Contains(e, "not a regular file")
	})
	t.Logf("with a FIFO: %+v", doc.Instances)
	waitHolders(t, c, []int{2}, 3*time.Second, vip4)

	replace(t, fault, func(tmp string) error { return os.WriteFile(tmp, []byte("0\n"), 0o644) })
	p.waitFor(t, "a file again clears the fault", 5*time.Second, func(d hostileStatus) bool {
		st, f, e := faultTracker(d)
		return st != "fault" && !f && e == ""
	})
	waitHolders(t, c, []int{1}, 5*time.Second, vip4)

	for _, v := range []string{"1", "0"} {
		replace(t, fault, func(tmp string) error {
			f, err := os.Create(tmp)
			if err != nil {
				return err
			}
			defer f.Close()
			if _, err := f.WriteString(v + "\n"); err != nil {
				return err
			}
			return f.Truncate(1 << 30)
		})
		p.waitFor(t, "1 GB sparse file holding "+v, 5*time.Second, func(d hostileStatus) bool {
			st, f, _ := faultTracker(d)
			return (st == "fault") == (v == "1") && f == (v == "1")
		})
	}
	waitHolders(t, c, []int{1}, 5*time.Second, vip4)

	// init_file 0 overwrite must not write through a link planted in its
	// place while the agent is down.
	p.report(t)
	p.paused.Store(true)
	if err := n1.Stop(); err != nil {
		t.Fatal(err)
	}
	victim := filepath.Join(n1.Dir, "victim")
	if err := os.WriteFile(victim, []byte("0 precious\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	os.Remove(fault)
	if err := os.Symlink(victim, fault); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := n1.Start(ctx); err != nil {
		t.Fatal(err)
	}
	p.paused.Store(false)
	waitHolders(t, c, []int{1}, 10*time.Second, vip4)
	if b, _ := os.ReadFile(victim); string(b) != "0 precious\n" {
		t.Errorf("init_file wrote through the symbolic link: victim = %q", b)
	}
	if !strings.Contains(n1.Log(), "init_file not written") {
		t.Error("the refused init_file is not logged")
	}

	// enable_script_security: VI_4 now tracks a script in a directory
	// anyone can write. It is disabled (not run, no FAULT although its
	// weight is 0), shown in status with its file:line, and counted.
	unsafeDir := filepath.Join(n1.Dir, "unsafe")
	os.Mkdir(unsafeDir, 0o777)
	os.Chmod(unsafeDir, 0o777)
	ran := filepath.Join(unsafeDir, "ran")
	chk := filepath.Join(unsafeDir, "chk.sh")
	os.WriteFile(chk, []byte("#!/bin/sh\ntouch "+ran+"\n"), 0o755)
	conf, err := os.ReadFile(n1.Config)
	if err != nil {
		t.Fatal(err)
	}
	text := strings.Replace(string(conf), "global_defs {\n", "global_defs {\n  script_user root\n  enable_script_security\n", 1)
	text = strings.Replace(text, "vrrp_instance VI_4 {\n", "vrrp_instance VI_4 {\n  track_script {\n    unsafe_chk\n  }\n", 1)
	text += "\nvrrp_script unsafe_chk {\n  script \"" + chk + "\"\n  interval 1\n}\n"
	if err := n1.WriteConfig([]byte(text)); err != nil {
		t.Fatal(err)
	}
	if err := n1.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	doc = p.waitFor(t, "the unsafe script listed in status", 10*time.Second, func(d hostileStatus) bool {
		return len(d.ScriptSecurity) > 0
	})
	f := doc.ScriptSecurity[0]
	if !f.Disabled || f.Kind != "vrrp_script" || f.Path != chk || !strings.HasPrefix(f.At, n1.Config+":") {
		t.Errorf("script_security = %+v, want %s disabled at %s:LINE", doc.ScriptSecurity, chk, n1.Config)
	}
	p.waitFor(t, "the unsafe tracker disabled, VI_4 not faulted", 10*time.Second, func(d hostileStatus) bool {
		for _, in := range d.Instances {
			for _, tr := range in.Trackers {
				if in.Name == "VI_4" && tr.Name == "unsafe_chk" {
					return tr.Disabled && strings.Contains(tr.Error, "unsafe permissions") && in.State == "master"
				}
			}
		}
		return false
	})
	if v := metric(t, n1, "keepwatch_script_security_violations_total", "kind", "track"); v < 1 {
		t.Errorf("keepwatch_script_security_violations_total{kind=track} = %v, want >= 1", v)
	}
	if _, err := os.Stat(ran); err == nil {
		t.Error("the unsafe script ran")
	}

	// FILE_CHECK on a file another process feeds: a FIFO fails the checker
	// (the agent's lock is never held on it: status keeps answering), a
	// 1 GB sparse file holding 0 is read for its first bytes.
	vsFile := filepath.Join(n1.Dir, "vsfile")
	replace(t, vsFile, func(tmp string) error { return syscall.Mkfifo(tmp, 0o644) })
	text += "\ntrack_file vs_file {\n  file \"" + vsFile + "\"\n}\n" +
		"virtual_server 192.0.2.200 80 {\n  delay_loop 1\n  lb_algo rr\n  lb_kind NAT\n  protocol TCP\n" +
		"  real_server 192.0.2.201 80 {\n    FILE_CHECK {\n      track_file vs_file\n    }\n  }\n}\n"
	if err := n1.WriteConfig([]byte(text)); err != nil {
		t.Fatal(err)
	}
	if err := n1.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	fileCheck := func(d hostileStatus) (found, hasRun, up bool, reason string) {
		for _, vs := range d.VirtualServers {
			for _, rs := range vs.RealServers {
				for _, ck := range rs.Checkers {
					if ck.Type == "FILE_CHECK" {
						return true, ck.HasRun, ck.Up, ck.Reason
					}
				}
			}
		}
		return false, false, false, ""
	}
	p.waitFor(t, "FILE_CHECK on a FIFO down", 10*time.Second, func(d hostileStatus) bool {
		found, hasRun, up, reason := fileCheck(d)
		return found && hasRun && !up && reason == "file"
	})
	replace(t, vsFile, func(tmp string) error {
		f, err := os.Create(tmp)
		if err != nil {
			return err
		}
		defer f.Close()
		if _, err := f.WriteString("0\n"); err != nil {
			return err
		}
		return f.Truncate(1 << 30)
	})
	p.waitFor(t, "FILE_CHECK on a 1 GB sparse file holding 0 up", 10*time.Second, func(d hostileStatus) bool {
		found, _, up, _ := fileCheck(d)
		return found && up
	})
}
