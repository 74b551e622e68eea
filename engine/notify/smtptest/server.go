package smtptest

import (
	"errors"
	"io"
	"log"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-smtp"
)

// Mail is one message as the server received it.
type Mail struct {
	Helo, From string
	To         []string
	Data       []byte
}

// Server is a go-smtp backend that keeps what it receives. Its zero value
// accepts everything; set Refuse before serving to refuse every sender.
type Server struct {
	// Refuse, if set, is the reply to every MAIL FROM.
	Refuse *smtp.SMTPError

	mu       sync.Mutex
	mails    []Mail
	sessions int
	helo     string
}

// NewSession is called by go-smtp once the client has said HELO or EHLO.
func (s *Server) NewSession(c *smtp.Conn) (smtp.Session, error) {
	s.mu.Lock()
	s.sessions++
	s.helo = c.Hostname()
	s.mu.Unlock()
	return &session{s: s, m: Mail{Helo: c.Hostname()}}, nil
}

// Mails returns a copy of the mails received so far, in order.
func (s *Server) Mails() []Mail {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Mail(nil), s.mails...)
}

// Sessions is how many SMTP sessions (HELO/EHLO) the server has seen.
func (s *Server) Sessions() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.sessions
}

// Helo is the HELO/EHLO name of the latest session.
func (s *Server) Helo() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.helo
}

type session struct {
	s *Server
	m Mail
}

func (se *session) Mail(from string, _ *smtp.MailOptions) error {
	if se.s.Refuse != nil {
		return se.s.Refuse
	}
	se.m.From = from
	return nil
}

func (se *session) Rcpt(to string, _ *smtp.RcptOptions) error {
	se.m.To = append(se.m.To, to)
	return nil
}

func (se *session) Data(r io.Reader) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	se.m.Data = b
	se.s.mu.Lock()
	se.s.mails = append(se.s.mails, se.m)
	se.s.mu.Unlock()
	return nil
}

// Reset starts a new mail in the same session (RSET, or after DATA).
func (se *session) Reset()        { se.m = Mail{Helo: se.m.Helo} }
func (se *session) Logout() error { return nil }

// Serve serves SMTP on l, as mx.example, until the test ends. Per-connection
// errors are not logged: clients such as keepalived reset the connection
// after QUIT.
func (s *Server) Serve(t testing.TB, l net.Listener) {
	t.Helper()
	srv := smtp.NewServer(s)
	srv.Domain = "mx.example"
	srv.ReadTimeout, srv.WriteTimeout = 5*time.Second, 5*time.Second
	srv.ErrorLog = log.New(io.Discard, "", 0)
	go func() {
		if err := srv.Serve(l); err != nil && !errors.Is(err, smtp.ErrServerClosed) {
			t.Log(err)
		}
	}()
	t.Cleanup(func() { srv.Close() })
}

// Start serves SMTP on a new loopback listener until the test ends and
// returns its address.
func (s *Server) Start(t testing.TB) *net.TCPAddr {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s.Serve(t, l)
	return l.Addr().(*net.TCPAddr)
}
