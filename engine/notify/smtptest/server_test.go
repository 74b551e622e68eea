package smtptest_test

import (
	"net/smtp"
	"strings"
	"testing"

	gosmtp "github.com/emersion/go-smtp"

	"github.com/keepwatch/keepwatch/engine/notify/smtptest"
)

// send mails through the standard library's SMTP client.
func send(t *testing.T, addr, from string, to []string, body string) error {
	t.Helper()
	c, err := smtp.Dial(addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Hello("client.example"); err != nil {
		return err
	}
	if err := c.Mail(from); err != nil {
		return err
	}
	for _, r := range to {
		if err := c.Rcpt(r); err != nil {
			return err
		}
	}
	w, err := c.Data()
	if err != nil {
		return err
	}
	if _, err := w.Write([]byte(body)); err != nil {
		return err
	}
	if err := w.Close(); err != nil {
		return err
	}
	return c.Quit()
}

func TestKeepsMail(t *testing.T) {
	srv := &smtptest.Server{}
	addr := srv.Start(t).String()
	if err := send(t, addr, "a@example.net", []string{"b@example.com", "c@example.org"}, "Subject: hi\r\n\r\nbody\r\n"); err != nil {
		t.Fatal(err)
	}
	if err := send(t, addr, "d@example.net", []string{"e@example.com"}, "Subject: two\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	got := srv.Mails()
	if len(got) != 2 {
		t.Fatalf("%d mails, want 2", len(got))
	}
	m := got[0]
	if m.Helo != "client.example" || m.From != "a@example.net" || strings.Join(m.To, ",") != "b@example.com,c@example.org" ||
		!strings.Contains(string(m.Data), "Subject: hi") {
		t.Errorf("first mail = %+v", m)
	}
	if got[1].From != "d@example.net" || len(got[1].To) != 1 {
		t.Errorf("second mail = %+v (state leaked from the first?)", got[1])
	}
	if srv.Sessions() != 2 || srv.Helo() != "client.example" {
		t.Errorf("sessions %d helo %q, want 2 client.example", srv.Sessions(), srv.Helo())
	}
}

func TestRefuse(t *testing.T) {
	srv := &smtptest.Server{Refuse: &gosmtp.SMTPError{Code: 550, Message: "relay denied"}}
	addr := srv.Start(t).String()
	err := send(t, addr, "a@example.net", []string{"b@example.com"}, "x")
	if err == nil || !strings.Contains(err.Error(), "550") {
		t.Errorf("send to a refusing server: %v, want a 550", err)
	}
	if n := len(srv.Mails()); n != 0 {
		t.Errorf("%d mails kept from a refused sender", n)
	}
}
