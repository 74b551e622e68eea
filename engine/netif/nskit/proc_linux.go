package nskit

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"
)

// StopTimeout is how long Stop waits after SIGTERM before it sends SIGKILL.
var StopTimeout = 5 * time.Second

// Proc is a process started inside a node's namespace.
type Proc struct {
	Cmd *exec.Cmd
	Pid int

	done chan struct{}
	err  error // Wait's result, valid once done is closed
	once sync.Once
}

// Command returns a command that runs name inside the node's namespace
// through `ip netns exec`, which also gives it the namespace's own /sys (as
// keepalived expects) and replaces itself by name, so the pid Start records
// is name's own. Without iproute2 it returns a plain command, which Start
// runs in the namespace all the same.
func (n *Node) Command(name string, args ...string) *exec.Cmd {
	if _, err := exec.LookPath("ip"); err != nil {
		return exec.Command(name, args...)
	}
	return exec.Command("ip", append([]string{"netns", "exec", n.NS, name}, args...)...)
}

// Start starts cmd and registers it with the lab, so Close stops it if the
// caller does not. cmd is started from a thread inside the node's
// namespace, so it runs there even when it does not come from Command
// (a child inherits its parent thread's network namespace).
func (n *Node) Start(cmd *exec.Cmd) (*Proc, error) {
	return n.lab.start(n, cmd)
}

func (l *Lab) start(n *Node, cmd *exec.Cmd) (*Proc, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return nil, errors.New("nskit: lab closed")
	}
	if err := n.Do(cmd.Start); err != nil {
		return nil, fmt.Errorf("nskit: start %s: %w", cmd.Path, err)
	}
	p := &Proc{Cmd: cmd, Pid: cmd.Process.Pid, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	l.procs = append(l.procs, p)
	return p, nil
}

// Done is closed when the process has exited.
func (p *Proc) Done() <-chan struct{} { return p.done }

// Signal sends sig to the process, by pid.
func (p *Proc) Signal(sig os.Signal) error {
	select {
	case <-p.done:
		return os.ErrProcessDone
	default:
	}
	return p.Cmd.Process.Signal(sig)
}

// Stop sends SIGTERM, waits up to StopTimeout, then sends SIGKILL, and
// returns once the process has exited. Its exit status is not an error:
// a process ended by a signal is what Stop asks for.
func (p *Proc) Stop() error {
	p.once.Do(func() {
		if err := p.Signal(syscall.SIGTERM); err != nil && !errors.Is(err, os.ErrProcessDone) {
			_ = p.Cmd.Process.Kill()
		}
		select {
		case <-p.done:
			return
		case <-time.After(StopTimeout):
		}
		_ = p.Cmd.Process.Kill()
		<-p.done
	})
	<-p.done
	return nil
}

// Capture is a tcpdump writing a pcap file inside a node's namespace.
type Capture struct {
	Path string
	proc *Proc
	errb *syncBuffer
}

// Capture starts tcpdump on the node's link, writing every packet matching
// the pcap filter (empty: all) to path as it arrives, and returns once
// tcpdump is listening, so nothing sent after Capture returns is missed.
func (n *Node) Capture(path, filter string) (*Capture, error) {
	// --immediate-mode hands each packet to tcpdump at once (libpcap
	// otherwise holds them for up to a ring block's timeout).
	args := []string{"-i", n.Link, "-n", "-U", "--immediate-mode", "-Z", "root", "-w", path}
	if filter != "" {
		args = append(args, filter)
	}
	cmd := n.Command("tcpdump", args...)
	pr, pw := io.Pipe()
	errb := &syncBuffer{}
	cmd.Stderr = pw
	p, err := n.Start(cmd)
	if err != nil {
		return nil, err
	}
	ready := make(chan bool, 1)
	go func() {
		sc := bufio.NewScanner(pr)
		sent := false
		for sc.Scan() {
			errb.WriteLine(sc.Text())
			if !sent && strings.Contains(sc.Text(), "listening on") {
				ready <- true
				sent = true
			}
		}
		if !sent {
			ready <- false
		}
	}()
	go func() {
		<-p.done
		pw.Close()
	}()
	select {
	case ok := <-ready:
		if !ok {
			return nil, fmt.Errorf("nskit: tcpdump in %s exited: %s", n.NS, errb.String())
		}
	case <-time.After(10 * time.Second):
		_ = p.Stop()
		return nil, fmt.Errorf("nskit: tcpdump in %s not listening after 10s: %s", n.NS, errb.String())
	}
	return &Capture{Path: path, proc: p, errb: errb}, nil
}

// Stop ends tcpdump (SIGTERM, so it flushes the file) and waits for it. It
// first gives tcpdump a moment to write what the kernel has handed it.
func (c *Capture) Stop() error {
	time.Sleep(50 * time.Millisecond)
	return c.proc.Stop()
}

// Log is what tcpdump wrote to stderr, such as its packet counts.
func (c *Capture) Log() string { return c.errb.String() }

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) WriteLine(line string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.b.WriteString(line)
	s.b.WriteByte('\n')
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// lossTable is the nftables table Loss installs in a node's namespace.
const lossTable = "kwloss"

// Loss makes the node drop percent of the IP packets it receives and of
// those it sends, at random, with nftables `numgen random` rules (this
// kernel has no netem). 0 removes the rules. ARP is not affected.
func (n *Node) Loss(percent int) error {
	if percent < 0 || percent > 100 {
		return fmt.Errorf("nskit: loss %d%%: want 0 to 100", percent)
	}
	// Adding then deleting the table makes the script work whether or not
	// the table exists already.
	script := fmt.Sprintf("add table inet %[1]s\ndelete table inet %[1]s\n", lossTable)
	match := fmt.Sprintf("numgen random mod 100 < %d ", percent)
	if percent == 100 {
		match = ""
	}
	if percent > 0 {
		script += fmt.Sprintf(`table inet %[1]s {
	chain in { type filter hook input priority -300; policy accept; %[2]sdrop; }
	chain out { type filter hook output priority -300; policy accept; %[2]sdrop; }
}
`, lossTable, match)
	}
	cmd := n.Command("nft", "-f", "-")
	cmd.Stdin = strings.NewReader(script)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("nskit: nft in %s: %w: %s", n.NS, err, out)
	}
	return nil
}
