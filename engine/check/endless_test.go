package check

import (
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"os/exec"
	"runtime"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/icmp"
	"golang.org/x/net/ipv4"

	"github.com/keepwatch/keepwatch/engine/config"
)

// maxProbeHeap bounds how far the heap may grow over a probe against an
// endless reply. A reader without a bound keeps hundreds of MB after a
// second of loopback traffic; the probes hold a few buffers of at most
// 64 KiB (and make some garbage per packet, which the collector takes).
const maxProbeHeap = 16 << 20

// endless runs p against a server that never stops sending (and never
// closes): the probe must end within its timeout with the verdict
// keepalived gives, the heap growing by at most maxProbeHeap meanwhile
// (sampled every 5 ms).
func endless(t *testing.T, p Prober, tg *Target, wantOK bool, wantReason string) {
	t.Helper()
	if err := tg.Compile(); err != nil {
		t.Fatal(err)
	}
	runtime.GC()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	peak := make(chan uint64)
	stop := make(chan struct{})
	go func() {
		var ms runtime.MemStats
		var top uint64
		for {
			runtime.ReadMemStats(&ms)
			top = max(top, ms.HeapAlloc)
			select {
			case <-stop:
				peak <- top
				return
			case <-time.After(5 * time.Millisecond):
			}
		}
	}()
	start := time.Now()
	r := p(context.Background(), tg)
	took := time.Since(start)
	close(stop)
	grew := int64(<-peak) - int64(before.HeapAlloc)
	runtime.ReadMemStats(&after)
	t.Logf("%s: ok %v reason %q after %v; heap grew at most %d KiB, %d KiB allocated in all (err %v)",
		tg.Type, r.OK, r.Reason, took.Round(time.Millisecond), grew>>10, (after.TotalAlloc-before.TotalAlloc)>>10, r.Err)
	if r.OK != wantOK || string(r.Reason) != wantReason {
		t.Errorf("ok %v reason %q (err %v), want ok %v reason %q", r.OK, r.Reason, r.Err, wantOK, wantReason)
	}
	if took > tg.Timeout+time.Second {
		t.Errorf("probe took %v, timeout %v", took, tg.Timeout)
	}
	if grew > maxProbeHeap {
		t.Errorf("the heap grew by %d MiB over a probe against an endless reply", grew>>20)
	}
}

// flood writes head, then chunk for ever, to each connection, reading
// whatever the client sends meanwhile; it never closes first.
func flood(head, chunk []byte) func(net.Conn) {
	return func(c net.Conn) {
		go func() {
			buf := make([]byte, 4096)
			for {
				if _, err := c.Read(buf); err != nil {
					return
				}
			}
		}()
		if _, err := c.Write(head); err != nil {
			return
		}
		for {
			if _, err := c.Write(chunk); err != nil {
				return
			}
		}
	}
}

// TestEndlessReplies (issue 10 §4): every reply a checker reads is bounded.
// Each checker meets a server whose reply never ends.
func TestEndlessReplies(t *testing.T) {
	const timeout = time.Second
	bigLine := bytes.Repeat([]byte("x"), 32<<10)
	headerLines := bytes.Repeat([]byte("X-Pad: yyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyy\r\n"), 1000)
	body := bytes.Repeat([]byte("z"), 32<<10)
	okHeader := []byte("HTTP/1.1 200 OK\r\n\r\n")

	t.Run("TCP_CHECK/connect is all it reads", func(t *testing.T) {
		a := rawServer(t, flood(nil, bigLine))
		endless(t, ProbeTCP, tcpTarget(config.TCPCheck, addrOf(a), timeout), true, "")
	})
	t.Run("HTTP_GET/endless header lines", func(t *testing.T) {
		a := rawServer(t, flood([]byte("HTTP/1.1 200 OK\r\n"), headerLines))
		endless(t, ProbeHTTP, httpTarget(config.HTTPGet, a, config.HTTPCheck{URLs: []config.URL{{Path: "/"}}}), false, "protocol")
	})
	t.Run("HTTP_GET/endless status line", func(t *testing.T) {
		a := rawServer(t, flood([]byte("HTTP/1.1 200 "), bigLine))
		endless(t, ProbeHTTP, httpTarget(config.HTTPGet, a, config.HTTPCheck{URLs: []config.URL{{Path: "/"}}}), false, "protocol")
	})
	// keepalived reads the body to its end (check_http.c http_read_thread)
	// and fails the check when the read times out.
	t.Run("HTTP_GET/endless body", func(t *testing.T) {
		a := rawServer(t, flood(okHeader, body))
		endless(t, ProbeHTTP, httpTarget(config.HTTPGet, a, config.HTTPCheck{URLs: []config.URL{{Path: "/"}}}), false, "timeout")
	})
	t.Run("HTTP_GET/endless body with digest and regex", func(t *testing.T) {
		a := rawServer(t, flood(okHeader, body))
		u := config.URL{Path: "/", Digest: md5hex("z"), Regex: "z+q"}
		endless(t, ProbeHTTP, httpTarget(config.HTTPGet, a, config.HTTPCheck{URLs: []config.URL{u}}), false, "timeout")
	})
	// With a Content-Length the body ends there, whatever follows: up.
	t.Run("HTTP_GET/content-length then more", func(t *testing.T) {
		a := rawServer(t, flood([]byte("HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nz"), body))
		u := config.URL{Path: "/", Digest: md5hex("z")}
		endless(t, ProbeHTTP, httpTarget(config.HTTPGet, a, config.HTTPCheck{URLs: []config.URL{u}}), true, "")
	})
	t.Run("SSL_GET/endless body", func(t *testing.T) {
		cert := selfSigned(t)
		l, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{cert}})
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
				go func() { defer c.Close(); flood(okHeader, body)(c) }()
			}
		}()
		endless(t, ProbeHTTP, httpTarget(config.SSLGet, l.Addr(), config.HTTPCheck{URLs: []config.URL{{Path: "/"}}}), false, "timeout")
	})
	t.Run("SMTP_CHECK/endless greeting", func(t *testing.T) {
		a := rawServer(t, flood(nil, bytes.Repeat([]byte("220-still greeting\r\n"), 100)))
		endless(t, ProbeSMTP, &Target{Type: config.SMTPCheck, Addr: addrOf(a), Timeout: timeout}, false, "protocol")
	})
	t.Run("SMTP_CHECK/endless line", func(t *testing.T) {
		a := rawServer(t, flood([]byte("220 "), bigLine))
		endless(t, ProbeSMTP, &Target{Type: config.SMTPCheck, Addr: addrOf(a), Timeout: timeout}, false, "protocol")
	})
	t.Run("SMTP_CHECK/endless HELO reply", func(t *testing.T) {
		a := rawServer(t, flood([]byte("220 ready\r\n"), bytes.Repeat([]byte("250-still\r\n"), 100)))
		endless(t, ProbeSMTP, &Target{Type: config.SMTPCheck, Addr: addrOf(a), Timeout: timeout}, false, "protocol")
	})
	t.Run("DNS_CHECK/endless wrong replies", func(t *testing.T) {
		// Datagrams without end, none the answer (the ID differs), some
		// as large as UDP allows.
		var small, large []byte
		a := udpFlood(t, func(q []byte, i int) []byte {
			if small == nil {
				large = make([]byte, 65000)
				copy(large, q)
				large[0] ^= 0xff
				large[2] |= 0x80
				small = large[:12]
			}
			if i%2 == 1 {
				return large
			}
			return small
		})
		endless(t, ProbeDNS, &Target{Type: config.DNSCheck, Addr: a, Timeout: timeout}, false, "timeout")
	})
	t.Run("UDP_CHECK/endless large replies", func(t *testing.T) {
		reply := bytes.Repeat([]byte{0xab}, 60000)
		a := udpFlood(t, func(_ []byte, _ int) []byte { return reply })
		tg := &Target{Type: config.UDPCheck, Addr: a, Timeout: timeout, UDP: &config.UDPSpec{Payload: []byte("hi"), RequireReply: true, ReplyPattern: "ab"}}
		// Longer than max_reply_length (255 by default): down, as
		// keepalived's check_udp_reply.
		endless(t, ProbeUDP, tg, false, "mismatch")
		// Without a pattern any reply is up: the first datagram decides.
		tg.UDP.ReplyPattern = ""
		endless(t, ProbeUDP, tg, true, "")
	})
	t.Run("MISC_CHECK/endless output", func(t *testing.T) {
		yes, err := exec.LookPath("yes")
		if err != nil {
			t.Fatal(err)
		}
		// The output goes nowhere (engine/script): the script runs until
		// misc_timeout, and is killed.
		endless(t, ProbeMisc, miscTarget(yes, nil, false, timeout), false, "timeout")
	})
}

// udpFlood starts a UDP server on loopback that answers the first datagram
// from a client with reply(query, i) for i = 0, 1, ... until the test ends.
func udpFlood(t *testing.T, reply func(q []byte, i int) []byte) netip.AddrPort {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	go func() {
		buf := make([]byte, 65536)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			q := bytes.Clone(buf[:n])
			go func() {
				for i := 0; ; i++ {
					if _, err := pc.WriteTo(reply(q, i), from); err != nil {
						return
					}
				}
			}()
		}
	}()
	return addrOf(pc.LocalAddr())
}

// TestEndlessPing: PING_CHECK against a target that does not answer while
// ICMP without end arrives from it: echo replies with the wrong sequence
// or token, some as large as ICMP allows. In a network namespace made for
// the test (raw ICMP sockets, as a new namespace's ping_group_range admits
// nobody; its kernel told not to answer echoes).
func TestEndlessPing(t *testing.T) {
	requireRoot(t)
	name := fmt.Sprintf("kwpflood%06x", rand.Uint32()&0xffffff)
	run(t, "ip", "netns", "add", name)
	t.Cleanup(func() { exec.Command("ip", "netns", "del", name).Run() })
	run(t, "ip", "-n", name, "link", "set", "lo", "up")
	run(t, "ip", "netns", "exec", name, "sysctl", "-q", "-w", "net.ipv4.icmp_echo_ignore_all=1")

	var c net.PacketConn
	inNetns(t, name, func() {
		var err error
		if c, err = net.ListenPacket("ip4:icmp", "127.0.0.1"); err != nil {
			t.Fatal(err)
		}
	})
	t.Cleanup(func() { c.Close() })
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		to := &net.IPAddr{IP: net.IPv4(127, 0, 0, 1)}
		var msgs [2][]byte
		for k, data := range [][]byte{[]byte(strings.Repeat("w", 16)), bytes.Repeat([]byte("w"), 60000)} {
			msgs[k], _ = (&icmp.Message{Type: ipv4.ICMPTypeEchoReply, Body: &icmp.Echo{ID: 1, Seq: 0xffff, Data: data}}).Marshal(nil)
		}
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			if _, err := c.WriteTo(msgs[i%2], to); err != nil {
				time.Sleep(time.Millisecond)
			}
		}
	}()
	defer func() { close(stop); <-done }()
	tg := pingTarget("127.0.0.1", time.Second)
	inNetns(t, name, func() { endless(t, ProbePing, tg, false, "timeout") })
}
