package check

import (
	"bytes"
	"context"
	"crypto/tls"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/keepwatch/keepwatch/engine/config"
)

// requireTool fails in CI, and skips in -short runs elsewhere, when a tool
// the test compares against is missing.
func requireTool(t *testing.T, path string) {
	t.Helper()
	if _, err := os.Stat(path); err == nil {
		return
	}
	if os.Getenv("CI") == "true" || !testing.Short() {
		t.Fatalf("%s is missing (Debian package keepalived)", path)
	}
	t.Skipf("%s is missing", path)
}

// recordingServer answers every connection on network/addr with resp
// (over TLS when cert is set) and sends the request bytes it read on reqs.
func recordingServer(t *testing.T, network, addr, resp string, cert *tls.Certificate) (net.Addr, chan []byte) {
	t.Helper()
	l, err := net.Listen(network, addr)
	if err != nil {
		t.Fatal(err)
	}
	if cert != nil {
		l = tls.NewListener(l, &tls.Config{Certificates: []tls.Certificate{*cert}})
	}
	t.Cleanup(func() { l.Close() })
	reqs := make(chan []byte, 8)
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				c.SetDeadline(time.Now().Add(5 * time.Second))
				var req []byte
				buf := make([]byte, 1024)
				for !bytes.Contains(req, []byte("\r\n\r\n")) {
					n, err := c.Read(buf)
					req = append(req, buf[:n]...)
					if err != nil {
						break
					}
				}
				reqs <- req
				c.Write([]byte(resp))
			}()
		}
	}()
	return l.Addr(), reqs
}

// TestGenhashInterop runs keepalived's own genhash (keepalived 2.2.7,
// `keepalived -T`) and keepwatch against the same server: both must send
// the same request bytes and compute the same digest, including over
// TLS, over IPv6, with a chunked body (hashed raw) and with a
// Content-Length shorter than what the server sends.
func TestGenhashInterop(t *testing.T) {
	const genhash = "/usr/bin/genhash"
	requireTool(t, genhash)
	cert := selfSigned(t)
	for _, tc := range []struct {
		name, network, addr, proto, vhost, resp string
		tls                                     bool
	}{
		{"1.0", "tcp", "127.0.0.1:0", "1.0", "", "HTTP/1.0 200 OK\r\nServer: t\r\n\r\nhello world\n", false},
		{"1.0C vhost", "tcp", "127.0.0.1:0", "1.0C", "www.example", "HTTP/1.0 200 OK\r\n\r\nhello", false},
		{"1.1 chunked", "tcp", "127.0.0.1:0", "1.1", "www.example", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nbody\r\n0\r\n\r\n", false},
		{"content-length", "tcp", "127.0.0.1:0", "1.0", "", "HTTP/1.0 200 OK\r\nContent-Length: 3\r\n\r\nabcdef", false},
		{"ipv6", "tcp6", "[::1]:0", "1.0", "", "HTTP/1.0 200 OK\r\n\r\nsix", false},
		{"ssl", "tcp", "127.0.0.1:0", "1.0", "", "HTTP/1.0 200 OK\r\n\r\nsecret page", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var cp *tls.Certificate
			if tc.tls {
				cp = &cert
			}
			addr, reqs := recordingServer(t, tc.network, tc.addr, tc.resp, cp)
			ap := addrOf(addr)
			args := []string{"-s", ap.Addr().String(), "-p", strconv.Itoa(int(ap.Port())), "-u", "/index.html", "-t", "3"}
			if tc.tls {
				args = append(args, "-S")
			}
			if tc.vhost != "" {
				args = append(args, "-V", tc.vhost)
			}
			args = append(args, "-P", strings.ToLower(tc.proto))
			out, err := exec.Command(genhash, args...).CombinedOutput()
			if err != nil {
				t.Fatalf("genhash %v: %v\n%s", args, err, out)
			}
			theirs := strings.TrimSpace(string(out))
			theirReq := <-reqs

			typ := config.HTTPGet
			if tc.tls {
				typ = config.SSLGet
			}
			u := config.URL{Path: "/index.html"}
			tg := &Target{Type: typ, Addr: ap, Timeout: 3 * time.Second, Virtualhost: tc.vhost,
				HTTP: &config.HTTPCheck{Protocol: tc.proto, URLs: []config.URL{u}}}
			_, ours, err := Genhash(context.Background(), tg, &u)
			if err != nil {
				t.Fatal(err)
			}
			ourReq := <-reqs
			if !bytes.Equal(ourReq, theirReq) {
				t.Errorf("request differs:\nkeepalived %q\nkeepwatch  %q", theirReq, ourReq)
			}
			if ours != theirs {
				t.Errorf("digest: keepalived %q, keepwatch %q", theirs, ours)
			}
		})
	}
}
