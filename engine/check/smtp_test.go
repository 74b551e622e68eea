package check

import (
	"io"
	"net"
	"testing"
	"time"

	"github.com/keepwatch/keepwatch/engine/config"
	"github.com/keepwatch/keepwatch/engine/notify/smtptest"
)

// smtpServer starts a real SMTP server (emersion/go-smtp) on loopback.
func smtpServer(t *testing.T) (*smtptest.Server, net.Addr) {
	t.Helper()
	srv := &smtptest.Server{}
	return srv, srv.Start(t)
}

// rawServer accepts connections on loopback and hands each to serve.
func rawServer(t *testing.T, serve func(net.Conn)) net.Addr {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() { defer c.Close(); serve(c) }()
		}
	}()
	return l.Addr()
}

func TestSMTP(t *testing.T) {
	be, addr := smtpServer(t)
	t.Run("up", func(t *testing.T) {
		tg := &Target{Type: config.SMTPCheck, Addr: addrOf(addr), Timeout: time.Second, HeloName: "lb1.example"}
		probe(t, ProbeSMTP, tg, true, "")
		if helo := be.Helo(); helo != "lb1.example" {
			t.Errorf("server saw HELO %q", helo)
		}
	})
	t.Run("down/refused", func(t *testing.T) {
		probe(t, ProbeSMTP, &Target{Type: config.SMTPCheck, Addr: closedPort(t, "tcp"), Timeout: time.Second}, false, "refused")
	})
	t.Run("down/554 greeting", func(t *testing.T) {
		a := rawServer(t, func(c net.Conn) { io.WriteString(c, "554 5.3.2 not accepting\r\n"); time.Sleep(time.Second) })
		probe(t, ProbeSMTP, &Target{Type: config.SMTPCheck, Addr: addrOf(a), Timeout: time.Second}, false, "protocol")
	})
	t.Run("down/helo rejected", func(t *testing.T) {
		a := rawServer(t, func(c net.Conn) {
			io.WriteString(c, "220-mx.example ESMTP\r\n220 ready\r\n")
			buf := make([]byte, 512)
			c.Read(buf)
			io.WriteString(c, "501 bad helo\r\n")
			time.Sleep(time.Second)
		})
		probe(t, ProbeSMTP, &Target{Type: config.SMTPCheck, Addr: addrOf(a), Timeout: time.Second}, false, "protocol")
	})
	t.Run("slow", func(t *testing.T) {
		a := rawServer(t, func(c net.Conn) { time.Sleep(2 * time.Second) })
		probe(t, ProbeSMTP, &Target{Type: config.SMTPCheck, Addr: addrOf(a), Timeout: 300 * time.Millisecond}, false, "timeout")
	})
}
