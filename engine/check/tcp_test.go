package check

import (
	"errors"
	"net"
	"syscall"
	"testing"
	"time"

	"github.com/keepwatch/keepwatch/engine/config"
)

func TestTCP(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	accepted := make(chan struct{}, 4)
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			c.Close()
			accepted <- struct{}{}
		}
	}()
	l6, err := net.Listen("tcp", "[::1]:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l6.Close()

	t.Run("up", func(t *testing.T) {
		probe(t, ProbeTCP, tcpTarget(config.TCPCheck, addrOf(l.Addr()), time.Second), true, "")
		select {
		case <-accepted:
		case <-time.After(time.Second):
			t.Fatal("the server never saw the connection")
		}
	})
	t.Run("reset", func(t *testing.T) {
		// The check closes with a reset, not a FIN (resetOnClose): the
		// server still accepts the connection, and its first read fails
		// with ECONNRESET rather than returning EOF.
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		got := make(chan error, 1)
		go func() {
			c, err := l.Accept()
			if err != nil {
				got <- err
				return
			}
			defer c.Close()
			c.SetReadDeadline(time.Now().Add(5 * time.Second))
			_, err = c.Read(make([]byte, 1))
			got <- err
		}()
		probe(t, ProbeTCP, tcpTarget(config.TCPCheck, addrOf(l.Addr()), time.Second), true, "")
		if err := <-got; !errors.Is(err, syscall.ECONNRESET) {
			t.Fatalf("server read after the check: %v, want ECONNRESET", err)
		}
	})
	t.Run("wait", func(t *testing.T) {
		// A connect still in progress when connect(2) returns is finished
		// through the shared epoll instance (connPoll): the server's accept
		// queue is full, so the first SYN is dropped; once the server
		// accepts, the SYN retransmitted a second later gets through.
		fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM, 0)
		if err != nil {
			t.Fatal(err)
		}
		defer syscall.Close(fd)
		if err := syscall.Bind(fd, &syscall.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
			t.Fatal(err)
		}
		if err := syscall.Listen(fd, 0); err != nil {
			t.Fatal(err)
		}
		sa, _ := syscall.Getsockname(fd)
		addr := addrOf(&net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: sa.(*syscall.SockaddrInet4).Port})
		filler, err := net.Dial("tcp", addr.String()) // takes the one place in the queue
		if err != nil {
			t.Fatal(err)
		}
		defer filler.Close()
		go func() {
			time.Sleep(300 * time.Millisecond)
			if nfd, _, err := syscall.Accept(fd); err == nil {
				syscall.Close(nfd)
			}
		}()
		start := time.Now()
		probe(t, ProbeTCP, tcpTarget(config.TCPCheck, addr, 5*time.Second), true, "")
		if d := time.Since(start); d < 250*time.Millisecond {
			t.Errorf("connected after %v, before the server had room: the wait was not exercised", d)
		} else if d > 3*time.Second {
			t.Errorf("connected after %v: the connect's completion did not wake the check", d)
		}
	})
	t.Run("up/ipv6", func(t *testing.T) {
		probe(t, ProbeTCP, tcpTarget(config.TCPCheck, addrOf(l6.Addr()), time.Second), true, "")
	})
	t.Run("bindto", func(t *testing.T) {
		tg := tcpTarget(config.TCPCheck, addrOf(l.Addr()), time.Second)
		tg.Bind = addrOf(&net.TCPAddr{IP: net.IPv4(127, 0, 0, 2)})
		probe(t, ProbeTCP, tg, true, "")
	})
	t.Run("down", func(t *testing.T) {
		probe(t, ProbeTCP, tcpTarget(config.TCPCheck, closedPort(t, "tcp"), time.Second), false, "refused")
	})
	t.Run("slow", func(t *testing.T) {
		start := time.Now()
		probe(t, ProbeTCP, tcpTarget(config.TCPCheck, fullListener(t), 300*time.Millisecond), false, "timeout")
		if d := time.Since(start); d < 250*time.Millisecond {
			t.Errorf("timed out after %v, before connect_timeout", d)
		}
	})
}
