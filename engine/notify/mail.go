package notify

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/textproto"
	"os"
	"strings"
	"time"
)

// message is one alert mail.
type message struct {
	mc            *mailConfig // the settings when it was queued
	subject, body string
	cause         uint64
}

// Mail error classes, the Reason of a failed KindMailSent (low cardinality).
const (
	mailConnect  = "connect"  // dial failed or timed out
	mailTimeout  = "timeout"  // the server stopped answering mid-dialogue
	mailRejected = "rejected" // the server answered with an unexpected code
	mailIO       = "io"       // the connection broke
)

// mailError carries the class of a failed send.
type mailError struct {
	class string
	err   error
}

func (e *mailError) Error() string { return e.class + ": " + e.err.Error() }
func (e *mailError) Unwrap() error { return e.err }

func classOf(err error) string {
	var me *mailError
	if errors.As(err, &me) {
		return me.class
	}
	return mailIO
}

// send delivers m over one SMTP dialogue, as keepalived's core/smtp.c
// does: HELO (not EHLO: keepalived speaks RFC 821), MAIL FROM, one RCPT TO
// per notification_email address, DATA, the headers and body, QUIT. Every
// step is bounded by smtp_connect_timeout, as keepalived bounds each read
// and write with it.
func send(ctx context.Context, mc *mailConfig, m message, now time.Time) error {
	d := net.Dialer{Timeout: mc.timeout}
	conn, err := d.DialContext(ctx, "tcp", mc.server)
	if err != nil {
		return &mailError{mailConnect, err}
	}
	defer conn.Close()
	return converse(ctx, conn, mc, m, now)
}

// converse is the SMTP dialogue on an open connection. The server's
// replies are untrusted bytes: textproto bounds nothing by itself, but
// every step has a deadline.
func converse(ctx context.Context, conn net.Conn, mc *mailConfig, m message, now time.Time) error {
	// A cancelled ctx (shutdown) ends the dialogue at once.
	stop := context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	tp := textproto.NewConn(conn)
	step := func(want int, format string, args ...any) error {
		if err := conn.SetDeadline(time.Now().Add(mc.timeout)); err != nil {
			return &mailError{mailIO, err}
		}
		if format != "" {
			if err := tp.PrintfLine(format, args...); err != nil {
				return ioError(err)
			}
		}
		code, msg, err := tp.ReadResponse(want)
		if err != nil {
			var pe *textproto.Error
			if errors.As(err, &pe) {
				return &mailError{mailRejected, fmt.Errorf("%d %s (expected %d)", code, msg, want)}
			}
			return ioError(err)
		}
		return nil
	}
	if err := step(220, ""); err != nil {
		return err
	}
	if err := step(250, "HELO %s", oneLine(mc.helo)); err != nil {
		return err
	}
	if err := step(250, "MAIL FROM:<%s>", oneLine(mc.from)); err != nil {
		return err
	}
	for _, to := range mc.to {
		if err := step(250, "RCPT TO:<%s>", oneLine(to)); err != nil {
			return err
		}
	}
	if err := step(354, "DATA"); err != nil {
		return err
	}
	if err := conn.SetDeadline(time.Now().Add(mc.timeout)); err != nil {
		return &mailError{mailIO, err}
	}
	w := tp.DotWriter()
	if _, err := w.Write(compose(mc, m, now)); err != nil {
		return ioError(err)
	}
	if err := w.Close(); err != nil {
		return ioError(err)
	}
	if err := step(250, ""); err != nil {
		return err
	}
	// keepalived ignores QUIT's answer; so do we, once the mail is accepted.
	_ = step(221, "QUIT")
	return nil
}

func ioError(err error) error {
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return &mailError{mailTimeout, err}
	}
	return &mailError{mailIO, err}
}

// compose builds the message as keepalived's SMTP_HEADERS_CMD and
// SMTP_BODY_CMD do: Date, From, Subject, X-Mailer, To (all recipients,
// comma separated), a blank line, the body line. keepalived sends no
// Message-ID; we add one (RFC 5322 §3.6.4 says a message SHOULD have
// one, and some relays reject mail without it). The DotWriter adds the
// final "\r\n.\r\n" and dot-stuffs.
func compose(mc *mailConfig, m message, now time.Time) []byte {
	var b strings.Builder
	b.WriteString("Date: " + mailDate(now) + "\r\n")
	b.WriteString("From: " + oneLine(mc.from) + "\r\n")
	b.WriteString("Subject: " + oneLine(m.subject) + "\r\n")
	b.WriteString("X-Mailer: Keepalived\r\n")
	b.WriteString("To: " + oneLine(strings.Join(mc.to, ", ")) + "\r\n")
	b.WriteString("Message-ID: " + messageID(mc.helo, now) + "\r\n")
	b.WriteString("\r\n")
	b.WriteString(m.body + "\r\n")
	b.WriteString("\r\n")
	return []byte(b.String())
}

// messageID is `<time.random.pid@host>`, unique without any state.
func messageID(host string, now time.Time) string {
	var r [8]byte
	_, _ = rand.Read(r[:])
	return fmt.Sprintf("<%d.%s.%d@%s>", now.UnixNano(), hex.EncodeToString(r[:]), os.Getpid(), host)
}

// oneLine keeps a header value on its line: a name from the config with a
// line break in it must not add headers.
func oneLine(s string) string {
	if !strings.ContainsAny(s, "\r\n") {
		return s
	}
	return strings.NewReplacer("\r", " ", "\n", " ").Replace(s)
}
