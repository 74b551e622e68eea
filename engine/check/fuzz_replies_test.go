package check

import (
	"bytes"
	"context"
	"encoding/binary"
	"io"
	"net"
	"net/netip"
	"slices"
	"testing"

	"golang.org/x/net/icmp"
	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"
)

// replay is a server that sends script, then closes; what the client
// writes is discarded. It counts what the client read.
type replay struct {
	r    *bytes.Reader
	read int
}

func (p *replay) Read(b []byte) (int, error) {
	n, err := p.r.Read(b)
	p.read += n
	return n, err
}

func (p *replay) Write(b []byte) (int, error) { return len(b), nil }

// checkResult fails t unless r is a well-formed Result: an error class from
// Reasons and an error exactly when it failed.
func checkResult(t *testing.T, r Result) {
	t.Helper()
	if r.OK != (r.Err == nil) || r.OK != (r.Reason == "") {
		t.Fatalf("result ok %v reason %q err %v", r.OK, r.Reason, r.Err)
	}
	if !r.OK && !slices.Contains(Reasons[:], r.Reason) {
		t.Fatalf("reason %q not in Reasons", r.Reason)
	}
}

// FuzzSMTPReplies feeds SMTP_CHECK arbitrary server bytes: no panic, never
// more than maxSMTPReplies read, and up only after a 220 greeting and a
// 250 reply.
func FuzzSMTPReplies(f *testing.F) {
	f.Add([]byte("220 mx.example ESMTP\r\n250 hello\r\n221 bye\r\n"))
	f.Add([]byte("220-mx.example ESMTP\r\n220 ready\r\n250-hello\r\n250 ok\r\n"))
	f.Add([]byte("554 5.3.2 not accepting\r\n"))
	f.Add([]byte("220 ready\r\n501 bad helo\r\n"))
	f.Add([]byte("220 ready\n250 ok\n"))
	f.Add([]byte("220-" + string(bytes.Repeat([]byte("x"), 600)) + "\r\n220 ok\r\n250 ok\r\n"))
	f.Add([]byte("220"))
	f.Add([]byte(""))
	f.Fuzz(func(t *testing.T, script []byte) {
		p := &replay{r: bytes.NewReader(script)}
		r := smtpDialogue(context.Background(), p, "lb1.example")
		checkResult(t, r)
		if p.read > maxSMTPReplies {
			t.Fatalf("read %d bytes, bound %d", p.read, maxSMTPReplies)
		}
		if r.OK && (!bytes.HasPrefix(script, []byte("220")) || !bytes.Contains(script, []byte("\n250"))) {
			t.Fatalf("up on %q", script)
		}
	})
}

// FuzzDNSReply feeds DNS_CHECK's reply judgement arbitrary datagrams: no
// panic, and only a response (QR) with our ID decides, up exactly when its
// RCODE is NOERROR.
func FuzzDNSReply(f *testing.F) {
	f.Add([]byte{0x12, 0x34, 0x81, 0x80, 0, 1, 0, 0, 0, 0, 0, 0}, uint16(0x1234))
	f.Add([]byte{0x12, 0x34, 0x81, 0x83, 0, 1, 0, 0, 0, 0, 0, 0, 0}, uint16(0x1234))
	f.Add([]byte{0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0}, uint16(0x1234))
	f.Add([]byte{0x12, 0x34, 0x81}, uint16(0x1234))
	f.Add([]byte{0xff, 0xff, 0x81, 0x8f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xc0, 0x0c}, uint16(0xffff))
	f.Fuzz(func(t *testing.T, b []byte, id uint16) {
		r, done := dnsReply(b, id)
		want := len(b) >= 12 && binary.BigEndian.Uint16(b) == id && b[2]&0x80 != 0
		if done != want {
			t.Fatalf("done %v for %x (id %#x)", done, b, id)
		}
		if !done {
			return
		}
		checkResult(t, r)
		if r.OK != (b[3]&0x0f == 0) {
			t.Fatalf("ok %v with RCODE %d", r.OK, b[3]&0x0f)
		}
		if !r.OK && r.Reason != ReasonRcode {
			t.Fatalf("reason %q", r.Reason)
		}
	})
}

// FuzzICMPReply feeds PING_CHECK's reply judgement arbitrary ICMP and
// ICMPv6 messages, from the target or from elsewhere, on raw and datagram
// sockets: no panic, and up only for an echo reply carrying our sequence
// and token.
func FuzzICMPReply(f *testing.F) {
	token := []byte("0123456789abcdef")
	echoReply := func(typ icmp.Type, id, seq int, data []byte) []byte {
		b, err := (&icmp.Message{Type: typ, Body: &icmp.Echo{ID: id, Seq: seq, Data: data}}).Marshal(nil)
		if err != nil {
			f.Fatal(err)
		}
		return b
	}
	f.Add(echoReply(ipv4.ICMPTypeEchoReply, 7, 9, token), false, true, true)
	f.Add(echoReply(ipv6.ICMPTypeEchoReply, 7, 9, token), true, false, true)
	f.Add(echoReply(ipv4.ICMPTypeEcho, 7, 9, token), false, true, true)
	f.Add(echoReply(ipv4.ICMPTypeEchoReply, 7, 10, token), false, true, false)
	// A destination unreachable quoting our echo request.
	req := echoReply(ipv4.ICMPTypeEcho, 7, 9, token)
	quoted := append([]byte{0x45, 0, 0, 44, 0, 0, 0, 0, 64, 1, 0, 0, 192, 0, 2, 1, 192, 0, 2, 2}, req[:8]...)
	un, _ := (&icmp.Message{Type: ipv4.ICMPTypeDestinationUnreachable, Code: 1, Body: &icmp.DstUnreach{Data: quoted}}).Marshal(nil)
	f.Add(un, false, true, true)
	f.Add([]byte{3, 1, 0, 0, 0, 0, 0, 0, 0x4f}, false, true, true)
	f.Add([]byte{1, 4, 0, 0, 0, 0, 0, 0, 0x60}, true, true, true)
	dst4, dst6 := netip.MustParseAddr("192.0.2.2"), netip.MustParseAddr("2001:db8::2")
	f.Fuzz(func(t *testing.T, b []byte, v6, raw, fromTarget bool) {
		e := echo{v6: v6, raw: raw, id: 7, seq: 9, token: token, dst: dst4}
		if v6 {
			e.dst = dst6
		}
		from := net.Addr(&net.UDPAddr{IP: net.IPv4(198, 51, 100, 1)})
		if fromTarget {
			from = &net.UDPAddr{IP: e.dst.AsSlice()}
		}
		r, done := e.reply(b, from)
		if !done {
			return
		}
		checkResult(t, r)
		if !r.OK {
			if !raw || r.Reason != ReasonUnreachable {
				t.Fatalf("down (%q) on a datagram socket or not unreachable: %x", r.Reason, b)
			}
			return
		}
		if !fromTarget || len(b) < 8+len(token) || !bytes.Equal(b[8:], token) || int(b[6])<<8|int(b[7]) != 9 {
			t.Fatalf("up on %x from the target %v", b, fromTarget)
		}
	})
}

var _ io.ReadWriter = (*replay)(nil)
