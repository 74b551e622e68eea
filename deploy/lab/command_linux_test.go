package lab_test

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/keepwatch/keepwatch/engine/netif/nskit/nskittest"
)

// `keepwatch lab --script` end to end, as a user runs it: the timeline is
// printed, the exit status says whether there was a split brain, and every
// namespace is gone afterwards, also when it is interrupted by Ctrl-C.
func TestLabCommand(t *testing.T) {
	t.Parallel()
	nskittest.Require(t, "nft", "tcpdump")
	bin := keepwatchBinary(t)

	t.Run("script", func(t *testing.T) {
		t.Parallel()
		cmd := exec.Command(bin, "lab", "--script", "1s cut 1; 2s restore 1; 3s stop 2", "--duration", "4s", "--proxy-port", "0")
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		err := cmd.Run()
		t.Logf("output:\n%s", out.String())
		if err != nil {
			t.Fatalf("keepwatch lab: %v", err)
		}
		for _, want := range []string{"cut 1", "restore 1", "stop 2", "192.0.2.100=n2", "192.0.2.100=n1", "OK: never more than one VIP holder"} {
			if !strings.Contains(out.String(), want) {
				t.Errorf("output lacks %q", want)
			}
		}
		checkGone(t, cmd.Process.Pid)
	})

	t.Run("interrupted", func(t *testing.T) {
		t.Parallel()
		cmd := exec.Command(bin, "lab", "--script", "1s cut 1", "--duration", "60s", "--proxy-port", "0")
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		time.Sleep(2 * time.Second)
		if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			_ = cmd.Process.Kill()
			t.Fatalf("keepwatch lab still running 20 s after SIGINT:\n%s", out.String())
		}
		checkGone(t, cmd.Process.Pid)
	})
}

// checkGone fails if namespaces of the lab process pid are left.
func checkGone(t *testing.T, pid int) {
	t.Helper()
	entries, err := os.ReadDir("/var/run/netns")
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	tag := fmt.Sprintf("-p%d-", pid)
	for _, e := range entries {
		if strings.Contains(e.Name(), tag) {
			t.Errorf("namespace %s left behind by keepwatch lab (pid %d)", e.Name(), pid)
		}
	}
}

// freePort returns a loopback port nothing listens on now.
func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

var pageLine = regexp.MustCompile(`ALERT firing KeepwatchVIPMoved .*instance=127\.0\.0\.1:(\d+) .*\(page, ([0-9.]+m?s) after cut 1\)`)

// `keepwatch lab --observe --script`: the real Prometheus and Alertmanager
// run with the bundled rules, scraping every node each second, and the
// timeline shows KeepwatchVIPMoved paging for the new master after the
// cut, with its latency; nothing is left behind.
func TestLabObserve(t *testing.T) {
	t.Parallel()
	nskittest.Require(t, "nft", "prometheus", "prometheus-alertmanager")
	bin := keepwatchBinary(t)
	proxy := freePort(t)
	cmd := exec.Command(bin, "lab", "--observe", "--script", "3s cut 1", "--duration", "20s",
		"--proxy-port", fmt.Sprint(proxy),
		"--observe.prometheus", fmt.Sprintf("127.0.0.1:%d", freePort(t)),
		"--observe.alertmanager", fmt.Sprintf("127.0.0.1:%d", freePort(t)))
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	t.Logf("output:\n%s", out.String())
	if err != nil {
		t.Fatalf("keepwatch lab --observe: %v", err)
	}
	for _, want := range []string{"prometheus: http://127.0.0.1:", "alertmanager: http://127.0.0.1:", "cut 1"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q", want)
		}
	}
	m := pageLine.FindStringSubmatch(out.String())
	if m == nil {
		t.Fatal("no KeepwatchVIPMoved page in the timeline")
	}
	if m[1] != fmt.Sprint(proxy+1) {
		t.Errorf("paged for the node behind port %s, want node 2 (%d)", m[1], proxy+1)
	}
	lat, err := time.ParseDuration(m[2])
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("KeepwatchVIPMoved paged %v after the cut (1 s scrapes and evaluations, through the rules)", lat)
	if lat > 30*time.Second {
		t.Errorf("page %v after the cut, want within 30 s", lat)
	}
	checkGone(t, cmd.Process.Pid)
}
