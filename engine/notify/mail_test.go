package notify

import (
	"bufio"
	"bytes"
	"io"
	"net"
	"net/mail"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-smtp"
	"github.com/google/go-cmp/cmp"

	"github.com/keepwatch/keepwatch/engine/config"
	"github.com/keepwatch/keepwatch/engine/event"
	"github.com/keepwatch/keepwatch/engine/event/eventtest"
	"github.com/keepwatch/keepwatch/engine/notify/smtptest"
	"github.com/keepwatch/keepwatch/engine/vrrp"
)

// mailServer is the real SMTP server the mail tests send to.
type mailServer = smtptest.Server

// startMailServer starts a real SMTP server (emersion/go-smtp) on loopback
// and returns its port.
func startMailServer(t *testing.T, b *mailServer) int {
	t.Helper()
	return b.Start(t).Port
}

func ptr[T any](v T) *T { return &v }

func alertConfig(port int) *config.Config {
	c := lvsConfig(nil, nil, nil, nil)
	c.Global.RouterID = "lb1"
	c.Global.NotificationEmail = []string{"ops@example.com", "noc@example.org"}
	c.Global.NotificationEmailFrom = "keepwatch@example.net"
	c.Global.SMTPServer, c.Global.SMTPPort = "127.0.0.1", port
	c.Global.SMTPHeloName = "lb1.example.net"
	c.Global.SMTPConnectTimeout = 2 * time.Second
	c.Global.SMTPAlert = ptr(true)
	c.Instances = []config.Instance{{Name: "VI_1"}}
	c.SyncGroups = []config.SyncGroup{{Name: "G1", Members: []string{"VI_1"}}}
	return c
}

func waitMails(t *testing.T, rec *eventtest.Recorder, n int) []event.Event {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		got := rec.Of(event.KindMailSent)
		if len(got) >= n {
			return got
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d mails reported, want %d", len(got), n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

var messageIDRe = regexp.MustCompile(`^<\d+\.[0-9a-f]{16}\.\d+@lb1\.example\.net>$`)

// TestMail sends the four kinds of alert to a real SMTP server and checks
// envelope, HELO, headers (the subjects exactly as keepalived's) and body.
func TestMail(t *testing.T) {
	srv := &mailServer{}
	port := startMailServer(t, srv)
	n, rec, _ := start(t, alertConfig(port), Options{})

	n.Emit(transition("VI_1", vrrp.StateMaster, 100))
	n.Emit(transition("VI_1", vrrp.StateMaster, 100)) // same state again: keepalived mails once
	n.GroupChanged(GroupTransition{Group: "G1", To: vrrp.StateBackup})
	n.Emit(event.Event{Kind: event.KindRealServer, Name: "TCP_CHECK", Service: "192.0.2.1:80/tcp", Target: "198.51.100.1:8080", OK: false})
	n.Emit(event.Event{Kind: event.KindQuorum, Service: "192.0.2.1:80/tcp", OK: false, Value: 1})
	sent := waitMails(t, rec, 4)
	time.Sleep(100 * time.Millisecond)

	type mailOut struct{ Subject, Body string }
	want := []mailOut{
		{"[lb1] VRRP Instance VI_1 - Entering MASTER state", "=> VRRP Instance is now owning VRRP VIPs <=\r\n\r\n"},
		{"[lb1] VRRP Group G1 - Entering BACKUP state", "=> All VRRP group instances are now in BACKUP state <=\r\n\r\n"},
		{"[lb1] Realserver [198.51.100.1]:tcp:8080 of virtual server [192.0.2.1]:tcp:80 - DOWN", "=> TCP CHECK failed on service <=\r\n\r\n"},
		{"[lb1] Virtualserver [192.0.2.1]:tcp:80 - DOWN", "=> Lost quorum 2+0=2 <= 1 <=\r\n\r\n"},
	}
	got := srv.Mails()
	var out []mailOut
	for _, m := range got {
		if m.Helo != "lb1.example.net" || m.From != "keepwatch@example.net" ||
			!cmp.Equal(m.To, []string{"ops@example.com", "noc@example.org"}) {
			t.Errorf("envelope: HELO %q MAIL FROM %q RCPT TO %q", m.Helo, m.From, m.To)
		}
		msg, err := mail.ReadMessage(bytes.NewReader(m.Data))
		if err != nil {
			t.Fatal(err)
		}
		h := msg.Header
		if h.Get("From") != "keepwatch@example.net" || h.Get("To") != "ops@example.com, noc@example.org" ||
			h.Get("X-Mailer") != "Keepalived" {
			t.Errorf("headers %v", h)
		}
		if d, err := mail.ParseDate(h.Get("Date")); err != nil || time.Since(d) > time.Minute {
			t.Errorf("Date %q: %v", h.Get("Date"), err)
		}
		if !messageIDRe.MatchString(h.Get("Message-ID")) {
			t.Errorf("Message-ID %q", h.Get("Message-ID"))
		}
		body, _ := io.ReadAll(msg.Body)
		out = append(out, mailOut{h.Get("Subject"), string(body)})
	}
	if d := cmp.Diff(want, out); d != "" {
		t.Errorf("mails (-want +got):\n%s", d)
	}
	for i, e := range sent {
		if !e.OK || e.Err != nil || e.Name != want[i].Subject || e.Value != 1 {
			t.Errorf("mail event %+v", e)
		}
	}
}

// TestMailWire checks the bytes on the wire against keepalived's dialogue
// (core/smtp.c): HELO, not EHLO; one RCPT per address; the header block;
// body, blank line, dot.
func TestMailWire(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	wire := make(chan string, 1)
	go func() {
		c, err := l.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		var buf bytes.Buffer
		r := bufio.NewReader(io.TeeReader(c, &buf))
		reply := func(s string) { io.WriteString(c, s+"\r\n") }
		reply("220 mx.example")
		inData := false
		for {
			line, err := r.ReadString('\n')
			if err != nil {
				break
			}
			switch {
			case inData && line == ".\r\n":
				inData = false
				reply("250 queued")
			case inData:
			case line == "DATA\r\n":
				inData = true
				reply("354 go ahead")
			case line == "QUIT\r\n":
				reply("221 bye")
				wire <- buf.String()
				return
			default:
				reply("250 ok")
			}
		}
		wire <- buf.String()
	}()
	c := alertConfig(l.Addr().(*net.TCPAddr).Port)
	n, rec, _ := start(t, c, Options{Now: func() time.Time { return time.Date(2026, 3, 1, 6, 5, 4, 0, time.UTC) }})
	n.Emit(transition("VI_1", vrrp.StateBackup, 100))
	waitMails(t, rec, 1)
	var got string
	select {
	case got = <-wire:
	case <-time.After(5 * time.Second):
		t.Fatal("no dialogue")
	}
	got = regexp.MustCompile(`Message-ID: <[^>]*>`).ReplaceAllString(got, "Message-ID: <ID>")
	want := "HELO lb1.example.net\r\n" +
		"MAIL FROM:<keepwatch@example.net>\r\n" +
		"RCPT TO:<ops@example.com>\r\n" +
		"RCPT TO:<noc@example.org>\r\n" +
		"DATA\r\n" +
		"Date: Sun, 01 Mar 2026 06:05:04 +0000\r\n" +
		"From: keepwatch@example.net\r\n" +
		"Subject: [lb1] VRRP Instance VI_1 - Entering BACKUP state\r\n" +
		"X-Mailer: Keepalived\r\n" +
		"To: ops@example.com, noc@example.org\r\n" +
		"Message-ID: <ID>\r\n" +
		"\r\n" +
		"=> VRRP Instance is no longer owning VRRP VIPs <=\r\n" +
		"\r\n" +
		".\r\n" +
		"QUIT\r\n"
	if d := cmp.Diff(strings.Split(want, "\n"), strings.Split(got, "\n")); d != "" {
		t.Errorf("wire (-want +got):\n%s", d)
	}
}

// TestMailRefused: a server that refuses the sender, and one that is not
// there at all. Each mail is tried twice, then reported failed with its
// error class; scripts and Emit carry on meanwhile.
func TestMailRefused(t *testing.T) {
	srv := &mailServer{Refuse: &smtp.SMTPError{Code: 550, Message: "relay denied"}}
	port := startMailServer(t, srv)
	dir := t.TempDir()
	fast := recorder(t, dir, "fast.sh")
	c := alertConfig(port)
	c.Global.ScriptUser = me(t)
	c.Instances[0].Notify.Backup = cmd(fast)
	n, rec, _ := start(t, c, Options{MailRetryDelay: 10 * time.Millisecond})
	n.Emit(transition("VI_1", vrrp.StateMaster, 100))
	e := waitMails(t, rec, 1)[0]
	if e.OK || e.Reason != mailRejected || e.Value != 2 || e.Err == nil || !strings.Contains(e.Err.Error(), "550") {
		t.Errorf("refused mail: %+v", e)
	}
	if sessions := srv.Sessions(); sessions != 2 {
		t.Errorf("%d SMTP sessions, want 2 (one retry)", sessions)
	}
	n.Emit(transition("VI_1", vrrp.StateBackup, 100))
	if r := waitRuns(t, rec, 1); !r[0].OK {
		t.Errorf("script after failed mail: %+v", r[0])
	}

	// Nothing listening.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := l.Addr().(*net.TCPAddr).Port
	l.Close()
	c2 := alertConfig(closed)
	n2, rec2, _ := start(t, c2, Options{MailRetryDelay: 10 * time.Millisecond})
	n2.Emit(transition("VI_1", vrrp.StateMaster, 100))
	if e := waitMails(t, rec2, 1)[0]; e.OK || e.Reason != mailConnect || e.Value != 2 {
		t.Errorf("mail to a closed port: %+v", e)
	}
}

// TestMailServerHangs: a server that accepts and never answers holds the
// mail until smtp_connect_timeout, but not the scripts.
func TestMailServerHangs(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		var held []net.Conn
		defer func() {
			for _, c := range held {
				c.Close()
			}
		}()
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			held = append(held, c)
		}
	}()
	dir := t.TempDir()
	fast := recorder(t, dir, "fast.sh")
	c := alertConfig(l.Addr().(*net.TCPAddr).Port)
	c.Global.ScriptUser = me(t)
	c.Global.SMTPConnectTimeout = 1500 * time.Millisecond
	c.Instances[0].Notify.Master = cmd(fast)
	n, rec, _ := start(t, c, Options{MailRetryDelay: 10 * time.Millisecond})
	t0 := time.Now()
	n.Emit(transition("VI_1", vrrp.StateMaster, 100))
	waitRuns(t, rec, 1)
	if d := time.Since(t0); d > time.Second { // the mail holds for 1.5 s at least
		t.Errorf("script waited %v for the mail", d)
	}
	if e := waitMails(t, rec, 1)[0]; e.OK || e.Reason != mailTimeout {
		t.Errorf("mail to a silent server: %+v", e)
	}
}

// TestSMTPAlertPrecedence checks keepalived's smtp_alert resolution: the
// object's own, else smtp_alert_vrrp / smtp_alert_checker, else
// smtp_alert, else off (on for real servers), and no_email_faults.
func TestSMTPAlertPrecedence(t *testing.T) {
	for i, tc := range []struct {
		own, specific, global *bool
		def, want             bool
	}{
		{nil, nil, nil, false, false},
		{nil, nil, nil, true, true},
		{nil, nil, ptr(true), false, true},
		{nil, ptr(false), ptr(true), false, false},
		{ptr(true), ptr(false), ptr(false), false, true},
		{ptr(false), nil, nil, true, false},
	} {
		if got := smtpAlert(tc.own, tc.specific, tc.global, tc.def); got != tc.want {
			t.Errorf("case %d: got %v", i, got)
		}
	}
	c := alertConfig(25)
	c.Global.SMTPAlert = nil
	c.Global.SMTPAlertChecker = ptr(false)
	c.Instances[0].Notify.SMTPAlert = ptr(true)
	p := compile(c)
	svc := p.services["192.0.2.1:80/tcp"]
	if !p.instances["VI_1"].mail || p.groups["G1"].mail || svc.mail || svc.servers["198.51.100.1:8080"].mail {
		t.Errorf("resolved: instance %v group %v vs %v rs %v", p.instances["VI_1"].mail, p.groups["G1"].mail,
			svc.mail, svc.servers["198.51.100.1:8080"].mail)
	}
	c.Global.SMTPAlertChecker = nil
	if !compile(c).services["192.0.2.1:80/tcp"].servers["198.51.100.2:80"].mail {
		t.Error("real server smtp_alert should default on")
	}
	c.Global.SMTPServer = ""
	if compile(c).mail != nil {
		t.Error("mail configured without smtp_server")
	}
}

func TestNoEmailFaults(t *testing.T) {
	srv := &mailServer{}
	c := alertConfig(startMailServer(t, srv))
	c.Global.NoEmailFaults = true
	n, rec, _ := start(t, c, Options{})
	n.Emit(transition("VI_1", vrrp.StateFault, 0))
	n.Emit(transition("VI_1", vrrp.StateBackup, 100))
	waitMails(t, rec, 1)
	time.Sleep(100 * time.Millisecond)
	got := srv.Mails()
	if len(got) != 1 || !strings.Contains(string(got[0].Data), "Entering BACKUP state") {
		t.Errorf("mails %d; want only the BACKUP one", len(got))
	}
}

// TestCheckerMail: a checker that flips while its real server stays as it
// was is mailed (subject with the server's state, body with the checker's),
// unless no_checker_emails, as keepalived's check epilogs do.
func TestCheckerMail(t *testing.T) {
	for _, off := range []bool{false, true} {
		srv := &mailServer{}
		port := startMailServer(t, srv)
		c := alertConfig(port)
		c.Global.NoCheckerEmails = off
		n, rec, _ := start(t, c, Options{})
		n.Emit(event.Event{Kind: event.KindChecker, Name: "HTTP_GET", Service: "192.0.2.1:80/tcp", Target: "198.51.100.1:8080", OK: false, Value: 0})
		// A marker mail after it: once it is in, the checker's would be too.
		n.Emit(event.Event{Kind: event.KindQuorum, Service: "192.0.2.1:80/tcp", OK: false, Value: 1})
		want := 2
		if off {
			want = 1
		}
		waitMails(t, rec, want)
		time.Sleep(100 * time.Millisecond)
		var subjects []string
		for _, m := range srv.Mails() {
			msg, err := mail.ReadMessage(bytes.NewReader(m.Data))
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(msg.Body)
			subjects = append(subjects, msg.Header.Get("Subject")+" | "+strings.TrimSpace(string(body)))
		}
		exp := []string{"[lb1] Virtualserver [192.0.2.1]:tcp:80 - DOWN | => Lost quorum 2+0=2 <= 1 <="}
		if !off {
			exp = append([]string{"[lb1] Realserver [198.51.100.1]:tcp:8080 of virtual server [192.0.2.1]:tcp:80 - DOWN | => CHECK failed on service <="}, exp...)
		}
		if d := cmp.Diff(exp, subjects); d != "" {
			t.Errorf("no_checker_emails %v: mails (-want +got):\n%s", off, d)
		}
	}
}
