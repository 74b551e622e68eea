package check

import (
	"errors"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/keepwatch/keepwatch/engine/config"
)

// backend is a go-smtp backend that records the HELO it was given.
type backend struct {
	mu   sync.Mutex
	helo string
}

func (b *backend) NewSession(c *smtp.Conn) (smtp.Session, error) {
	b.mu.Lock()
	b.helo = c.Hostname()
	b.mu.Unlock()
	return session{}, nil
}

type session struct{}

func (session) Mail(string, *smtp.MailOptions) error { return nil }
func (session) Rcpt(string, *smtp.RcptOptions) error { return nil }
func (session) Data(r io.Reader) error               { _, err := io.Copy(io.Discard, r); return err }
func (session) Reset()                               {}
func (session) Logout() error                        { return nil }

// smtpServer starts a real SMTP server (emersion/go-smtp) on loopback.
func smtpServer(t *testing.T) (*backend, net.Addr) {
	t.Helper()
	be := &backend{}
	s := smtp.NewServer(be)
	s.Domain = "mx.example"
	s.ReadTimeout, s.WriteTimeout = 5*time.Second, 5*time.Second
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		if err := s.Serve(l); err != nil && !errors.Is(err, smtp.ErrServerClosed) {
			t.Log(err)
		}
	}()
	t.Cleanup(func() { s.Close() })
	return be, l.Addr()
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
		be.mu.Lock()
		defer be.mu.Unlock()
		if be.helo != "lb1.example" {
			t.Errorf("server saw HELO %q", be.helo)
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
