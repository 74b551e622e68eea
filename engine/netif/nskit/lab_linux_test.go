package nskit_test

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/keepwatch/keepwatch/engine/netif/nskit"
	"github.com/keepwatch/keepwatch/engine/netif/nskit/nskittest"
)

// udpDelivered sends count datagrams from a to b's IPv4 address and returns
// how many arrived within wait.
func udpDelivered(t *testing.T, a, b *nskit.Node, count int, wait time.Duration) int {
	t.Helper()
	var rx, tx *net.UDPConn
	if err := b.Do(func() (err error) {
		rx, err = net.ListenUDP("udp4", &net.UDPAddr{IP: b.IPv4.Addr().AsSlice()})
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer rx.Close()
	if err := a.Do(func() (err error) {
		tx, err = net.DialUDP("udp4", nil, rx.LocalAddr().(*net.UDPAddr))
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer tx.Close()
	for i := 0; i < count; i++ {
		_, _ = tx.Write([]byte("kw"))
	}
	got := 0
	buf := make([]byte, 64)
	_ = rx.SetReadDeadline(time.Now().Add(wait))
	for got < count {
		if _, _, err := rx.ReadFrom(buf); err != nil {
			break
		}
		got++
	}
	return got
}

func TestLab(t *testing.T) {
	t.Parallel()
	l := nskittest.New(t, "kit", 2, "tcpdump", "nft")
	a, b := l.Node(1), l.Node(2)

	if a.IPv4 != netip.MustParsePrefix("192.0.2.1/24") || b.IPv6 != netip.MustParsePrefix("2001:db8::2/64") {
		t.Fatalf("addresses: %s %s", a.IPv4, b.IPv6)
	}
	if !a.LinkLocal.IsLinkLocalUnicast() || len(a.MAC) != 6 {
		t.Fatalf("link-local %s, MAC %s", a.LinkLocal, a.MAC)
	}
	for _, n := range l.Nodes {
		if len(n.Link) > 15 || len(n.Port) > 15 || len(l.Bridge) > 15 {
			t.Fatalf("interface name too long: %q %q %q", n.Link, n.Port, l.Bridge)
		}
	}

	t.Run("traffic", func(t *testing.T) {
		if got := udpDelivered(t, a, b, 10, time.Second); got != 10 {
			t.Fatalf("delivered %d of 10", got)
		}
	})

	t.Run("capture", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "udp.pcap")
		c, err := b.Capture(path, "udp")
		if err != nil {
			t.Fatal(err)
		}
		udpDelivered(t, a, b, 3, time.Second)
		if err := c.Stop(); err != nil {
			t.Fatal(err)
		}
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		// A pcap header is 24 bytes, each record 16 plus the frame (at
		// least 44 bytes for an Ethernet+IPv4+UDP datagram).
		if fi.Size() < 24+3*(16+44) {
			t.Fatalf("pcap %d bytes, want 3 datagrams; tcpdump said: %s", fi.Size(), c.Log())
		}
	})

	t.Run("loss", func(t *testing.T) {
		if err := b.Loss(100); err != nil {
			t.Fatal(err)
		}
		if got := udpDelivered(t, a, b, 10, 300*time.Millisecond); got != 0 {
			t.Fatalf("100%% loss: delivered %d of 10", got)
		}
		if err := b.Loss(50); err != nil {
			t.Fatal(err)
		}
		// 400 datagrams at 50% loss on each of b's paths in: the chance of
		// falling outside 100..300 is negligible.
		if got := udpDelivered(t, a, b, 400, 500*time.Millisecond); got < 100 || got > 300 {
			t.Fatalf("50%% loss: delivered %d of 400", got)
		}
		if err := b.Loss(0); err != nil {
			t.Fatal(err)
		}
		if got := udpDelivered(t, a, b, 10, time.Second); got != 10 {
			t.Fatalf("loss removed: delivered %d of 10", got)
		}
	})

	t.Run("cut", func(t *testing.T) {
		operUp := func() bool {
			link, err := a.Handle().LinkByName(a.Link)
			if err != nil {
				t.Fatal(err)
			}
			return link.Attrs().OperState == netlink.OperUp
		}
		if !operUp() {
			t.Fatal("link not up before cut")
		}
		if err := a.Cut(); err != nil {
			t.Fatal(err)
		}
		if operUp() {
			t.Fatal("link still up after cut")
		}
		if got := udpDelivered(t, a, b, 3, 200*time.Millisecond); got != 0 {
			t.Fatalf("cut link delivered %d", got)
		}
		if err := a.Restore(); err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(2 * time.Second)
		for !operUp() {
			if time.Now().After(deadline) {
				t.Fatal("link not up after restore")
			}
			time.Sleep(10 * time.Millisecond)
		}
		if got := udpDelivered(t, a, b, 3, time.Second); got != 3 {
			t.Fatalf("restored link delivered %d of 3", got)
		}
	})

	for _, viaIP := range []bool{true, false} {
		t.Run(fmt.Sprintf("process via ip %t", viaIP), func(t *testing.T) {
			cmd := a.Command("sleep", "60")
			if !viaIP {
				cmd = exec.Command("sleep", "60")
			}
			p, err := a.Start(cmd)
			if err != nil {
				t.Fatal(err)
			}
			// The process runs in a's namespace: its /proc/PID/ns/net is a's
			// (once `ip netns exec` has switched and exec'd sleep).
			var nst unix.Stat_t
			if err := unix.Stat("/var/run/netns/"+a.NS, &nst); err != nil {
				t.Fatal(err)
			}
			deadline := time.Now().Add(3 * time.Second)
			for {
				var st unix.Stat_t
				err := unix.Stat("/proc/"+strconv.Itoa(p.Pid)+"/ns/net", &st)
				comm, _ := os.ReadFile("/proc/" + strconv.Itoa(p.Pid) + "/comm")
				if err == nil && st.Ino == nst.Ino && strings.TrimSpace(string(comm)) == "sleep" {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("process %d (%s) in namespace inode %d, want %d (%v)", p.Pid, comm, st.Ino, nst.Ino, err)
				}
				time.Sleep(10 * time.Millisecond)
			}
			if err := p.Stop(); err != nil {
				t.Fatal(err)
			}
			if err := unix.Kill(p.Pid, 0); !errors.Is(err, unix.ESRCH) {
				t.Fatalf("pid %d still there after Stop: %v", p.Pid, err)
			}
		})
	}
}

// TestCloseRemovesEverything asserts that Close leaves no namespace, no
// process and no interface behind.
func TestCloseRemovesEverything(t *testing.T) {
	t.Parallel()
	nskittest.Require(t)
	l, err := nskit.New(nskit.Options{Name: "close", Nodes: 3})
	if err != nil {
		t.Fatal(err)
	}
	p, err := l.Node(2).Start(l.Node(2).Command("sleep", "60"))
	if err != nil {
		t.Fatal(err)
	}
	names := []string{l.Switch}
	var inodes []uint64
	for _, n := range append([]*nskit.Node{}, l.Nodes...) {
		names = append(names, n.NS)
	}
	for _, name := range names {
		var st unix.Stat_t
		if err := unix.Stat("/var/run/netns/"+name, &st); err != nil {
			t.Fatalf("namespace %s missing while the lab runs: %v", name, err)
		}
		inodes = append(inodes, st.Ino)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	for _, name := range names {
		if _, err := os.Stat("/var/run/netns/" + name); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("namespace %s still bound after Close: %v", name, err)
		}
	}
	if err := unix.Kill(p.Pid, 0); !errors.Is(err, unix.ESRCH) {
		t.Errorf("pid %d still there after Close: %v", p.Pid, err)
	}
	// No process of ours still holds one of the namespaces open, so the
	// kernel destroys them (with their veths and the bridge).
	fds, _ := os.ReadDir("/proc/self/fd")
	for _, fd := range fds {
		target, err := os.Readlink("/proc/self/fd/" + fd.Name())
		if err != nil {
			continue
		}
		for _, ino := range inodes {
			if target == fmt.Sprintf("net:[%d]", ino) {
				t.Errorf("fd %s still holds a lab namespace (%s)", fd.Name(), target)
			}
		}
	}
	// And nothing leaked into the host namespace.
	for _, n := range l.Nodes {
		for _, ifname := range []string{n.Link, n.Port} {
			if _, err := netlink.LinkByName(ifname); err == nil {
				t.Errorf("interface %s exists in the host namespace", ifname)
			}
		}
	}
}

func TestSweep(t *testing.T) {
	t.Parallel()
	nskittest.Require(t)
	// A lab whose creator is alive (this process) is not swept.
	l := nskittest.New(t, "sweep", 1)
	removed, err := nskit.Sweep()
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range removed {
		if strings.Contains(r, l.ID) {
			t.Fatalf("swept a live lab: %s", r)
		}
	}
	if _, err := os.Stat("/var/run/netns/" + l.Node(1).NS); err != nil {
		t.Fatalf("live lab's namespace gone: %v", err)
	}
}
