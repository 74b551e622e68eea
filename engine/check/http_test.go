package check

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/md5"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"io"
	"log"
	"math/big"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keepwatch/keepwatch/engine/config"
)

const body = "<html>keepwatch health</html>\n"

// seen is what the test server saw of the last request.
type seen struct {
	mu                         sync.Mutex
	proto, ua, host, conn, sni string
	path                       string
}

func (s *seen) get() seen {
	s.mu.Lock()
	defer s.mu.Unlock()
	return seen{proto: s.proto, ua: s.ua, host: s.host, conn: s.conn, sni: s.sni, path: s.path}
}

// webServer starts a real net/http server (with TLS when tlsOn, on a
// certificate made here) on addr.
func webServer(t *testing.T, network, addr string, tlsOn bool) (*seen, net.Addr) {
	t.Helper()
	sn := &seen{}
	mux := http.NewServeMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		sn.mu.Lock()
		sn.proto, sn.ua, sn.host, sn.conn, sn.path = r.Proto, r.UserAgent(), r.Host, r.Header.Get("Connection"), r.URL.Path
		sn.mu.Unlock()
		switch r.URL.Path {
		case "/health":
			io.WriteString(w, body)
		case "/error":
			w.WriteHeader(503)
			io.WriteString(w, "down\n")
		case "/slow":
			time.Sleep(2 * time.Second)
			io.WriteString(w, body)
		default:
			http.NotFound(w, r)
		}
	})
	l, err := net.Listen(network, addr)
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: mux, ErrorLog: log.New(io.Discard, "", 0)}
	if tlsOn {
		cert := selfSigned(t)
		srv.TLSConfig = &tls.Config{GetCertificate: func(h *tls.ClientHelloInfo) (*tls.Certificate, error) {
			sn.mu.Lock()
			sn.sni = h.ServerName
			sn.mu.Unlock()
			return &cert, nil
		}}
		go srv.ServeTLS(l, "", "")
	} else {
		go srv.Serve(l)
	}
	t.Cleanup(func() { srv.Close() })
	return sn, l.Addr()
}

func selfSigned(t *testing.T) tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "rs.example"},
		DNSNames: []string{"rs.example"}, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

func md5hex(s string) string {
	h := md5.Sum([]byte(s))
	return hex.EncodeToString(h[:])
}

func httpTarget(typ config.CheckerType, a net.Addr, h config.HTTPCheck) *Target {
	return &Target{Type: typ, Addr: addrOf(a), Timeout: time.Second, HTTP: &h}
}

func TestHTTP(t *testing.T) {
	sn, addr := webServer(t, "tcp", "127.0.0.1:0", false)
	_, addr6 := webServer(t, "tcp", "[::1]:0", false)
	good := config.URL{Path: "/health", Digest: md5hex(body)}

	t.Run("up", func(t *testing.T) {
		probe(t, ProbeHTTP, httpTarget(config.HTTPGet, addr, config.HTTPCheck{URLs: []config.URL{good}}), true, "")
		got := sn.get()
		// keepalived's request: HTTP/1.0, its User-Agent, Host = addr:port.
		if got.proto != "HTTP/1.0" || got.ua != "KeepAliveClient" || got.host != addr.String() || got.conn != "" {
			t.Errorf("server saw proto %q ua %q host %q connection %q", got.proto, got.ua, got.host, got.conn)
		}
	})
	t.Run("up/http1.1+virtualhost", func(t *testing.T) {
		tg := httpTarget(config.HTTPGet, addr, config.HTTPCheck{URLs: []config.URL{good}, Protocol: "1.1"})
		tg.Virtualhost = "www.example"
		probe(t, ProbeHTTP, tg, true, "")
		got := sn.get()
		if got.proto != "HTTP/1.1" || got.host != "www.example" || got.conn != "close" {
			t.Errorf("server saw proto %q host %q connection %q", got.proto, got.host, got.conn)
		}
	})
	t.Run("up/ipv6", func(t *testing.T) {
		probe(t, ProbeHTTP, httpTarget(config.HTTPGet, addr6, config.HTTPCheck{URLs: []config.URL{good}}), true, "")
	})
	t.Run("status range", func(t *testing.T) {
		u := config.URL{Path: "/error", StatusCodes: []config.StatusRange{{From: 200, To: 200}, {From: 500, To: 599}}}
		probe(t, ProbeHTTP, httpTarget(config.HTTPGet, addr, config.HTTPCheck{URLs: []config.URL{u}}), true, "")
	})
	t.Run("down/status", func(t *testing.T) {
		urls := []config.URL{good, {Path: "/error"}}
		probe(t, ProbeHTTP, httpTarget(config.HTTPGet, addr, config.HTTPCheck{URLs: urls}), false, "status")
		if p := sn.get().path; p != "/error" {
			t.Errorf("last path %q, want both urls fetched in order", p)
		}
	})
	t.Run("down/digest", func(t *testing.T) {
		u := config.URL{Path: "/health", Digest: md5hex("something else")}
		probe(t, ProbeHTTP, httpTarget(config.HTTPGet, addr, config.HTTPCheck{URLs: []config.URL{u}}), false, "digest")
	})
	t.Run("regex", func(t *testing.T) {
		for _, tc := range []struct {
			u  config.URL
			ok bool
		}{
			{config.URL{Path: "/health", Regex: "keepwatch health"}, true},
			{config.URL{Path: "/health", Regex: "KEEPWATCH", RegexOptions: []string{"caseless"}}, true},
			{config.URL{Path: "/health", Regex: "KEEPWATCH"}, false},
			{config.URL{Path: "/health", Regex: "error", RegexNoMatch: true}, true},
			{config.URL{Path: "/health", Regex: "health", RegexNoMatch: true}, false},
			{config.URL{Path: "/health", Regex: "health", RegexMaxOffset: 5}, false},
			{config.URL{Path: "/health", Regex: "health", RegexMinOffset: 6, RegexMaxOffset: 20}, true},
		} {
			reason := ""
			if !tc.ok {
				reason = "regex"
			}
			probe(t, ProbeHTTP, httpTarget(config.HTTPGet, addr, config.HTTPCheck{URLs: []config.URL{tc.u}}), tc.ok, reason)
		}
	})
	t.Run("down/refused", func(t *testing.T) {
		tg := &Target{Type: config.HTTPGet, Addr: closedPort(t, "tcp"), Timeout: time.Second,
			HTTP: &config.HTTPCheck{URLs: []config.URL{good}}}
		probe(t, ProbeHTTP, tg, false, "refused")
	})
	t.Run("slow", func(t *testing.T) {
		tg := httpTarget(config.HTTPGet, addr, config.HTTPCheck{URLs: []config.URL{{Path: "/slow"}}})
		tg.Timeout = 300 * time.Millisecond
		probe(t, ProbeHTTP, tg, false, "timeout")
	})
	t.Run("genhash", func(t *testing.T) {
		tg := httpTarget(config.HTTPGet, addr, config.HTTPCheck{URLs: []config.URL{good}})
		status, digest, err := Genhash(context.Background(), tg, &good)
		if err != nil || status != 200 || digest != md5hex(body) {
			t.Errorf("Genhash = %d %q %v, want 200 %q", status, digest, err, md5hex(body))
		}
	})
}

func TestSSL(t *testing.T) {
	sn, addr := webServer(t, "tcp", "127.0.0.1:0", true)
	_, plain := webServer(t, "tcp", "127.0.0.1:0", false)
	good := config.URL{Path: "/health", Digest: md5hex(body)}

	t.Run("up/no sni", func(t *testing.T) {
		tg := httpTarget(config.SSLGet, addr, config.HTTPCheck{URLs: []config.URL{good}})
		tg.Virtualhost = "rs.example"
		probe(t, ProbeHTTP, tg, true, "")
		if got := sn.get(); got.sni != "" || got.host != "rs.example" {
			t.Errorf("server saw sni %q host %q, want no SNI without enable_sni", got.sni, got.host)
		}
	})
	t.Run("up/enable_sni", func(t *testing.T) {
		tg := httpTarget(config.SSLGet, addr, config.HTTPCheck{URLs: []config.URL{good}, EnableSNI: true, Virtualhost: "rs.example"})
		probe(t, ProbeHTTP, tg, true, "")
		if got := sn.get(); got.sni != "rs.example" {
			t.Errorf("server saw sni %q, want the virtualhost", got.sni)
		}
	})
	t.Run("up/sni_name", func(t *testing.T) {
		tg := httpTarget(config.SSLGet, addr, config.HTTPCheck{URLs: []config.URL{good}, EnableSNI: true, SNIName: "other.example"})
		probe(t, ProbeHTTP, tg, true, "")
		if got := sn.get(); got.sni != "other.example" {
			t.Errorf("server saw sni %q, want sni_name", got.sni)
		}
	})
	t.Run("down/status", func(t *testing.T) {
		probe(t, ProbeHTTP, httpTarget(config.SSLGet, addr, config.HTTPCheck{URLs: []config.URL{{Path: "/error"}}}), false, "status")
	})
	t.Run("down/not tls", func(t *testing.T) {
		probe(t, ProbeHTTP, httpTarget(config.SSLGet, plain, config.HTTPCheck{URLs: []config.URL{good}}), false, "tls")
	})
	t.Run("client certificate", func(t *testing.T) {
		cert := selfSigned(t)
		l, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{cert}, ClientAuth: tls.RequireAnyClientCert})
		if err != nil {
			t.Fatal(err)
		}
		srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, body) }),
			ErrorLog: log.New(io.Discard, "", 0)}
		go srv.Serve(l)
		defer srv.Close()
		tg := httpTarget(config.SSLGet, l.Addr(), config.HTTPCheck{URLs: []config.URL{good}})
		probe(t, ProbeHTTP, tg, false, "tls")
		tg.ClientCert = &cert
		probe(t, ProbeHTTP, tg, true, "")
	})
	t.Run("slow", func(t *testing.T) {
		tg := httpTarget(config.SSLGet, addr, config.HTTPCheck{URLs: []config.URL{{Path: "/slow"}}})
		tg.Timeout = 300 * time.Millisecond
		probe(t, ProbeHTTP, tg, false, "timeout")
	})
}

// TestRequest pins the request bytes to keepalived's (check_http.c).
func TestRequest(t *testing.T) {
	for _, tc := range []struct {
		name string
		t    Target
		u    config.URL
		want string
	}{
		{"1.0 addr", Target{Addr: addrOf(&net.TCPAddr{IP: net.IPv4(192, 0, 2, 1), Port: 80}), HTTP: &config.HTTPCheck{}},
			config.URL{Path: "/"}, "GET / HTTP/1.0\r\nUser-Agent: KeepAliveClient\r\nHost: 192.0.2.1:80\r\n\r\n"},
		{"1.0C ipv6", Target{Addr: addrOf(&net.TCPAddr{IP: net.ParseIP("2001:db8::1"), Port: 8080}), HTTP: &config.HTTPCheck{Protocol: "1.0C"}},
			config.URL{Path: "/x?y"}, "GET /x?y HTTP/1.0\r\nUser-Agent: KeepAliveClient\r\nConnection: close\r\nHost: [2001:db8::1]:8080\r\n\r\n"},
		{"1.1 url vhost", Target{Addr: addrOf(&net.TCPAddr{IP: net.IPv4(192, 0, 2, 1), Port: 80}), Virtualhost: "rs", HTTP: &config.HTTPCheck{Protocol: "1.1", Virtualhost: "chk"}},
			config.URL{Path: "/", Virtualhost: "url.example"}, "GET / HTTP/1.1\r\nUser-Agent: KeepAliveClient\r\nConnection: close\r\nHost: url.example\r\n\r\n"},
	} {
		if got := string(Request(&tc.t, &tc.u)); got != tc.want {
			t.Errorf("%s: Request = %q, want %q", tc.name, got, tc.want)
		}
	}
}

var responses = []struct {
	name   string
	in     string
	status int
	sum    string // md5 of the body keepalived hashes
	err    bool
}{
	{"content-length", "HTTP/1.0 200 OK\r\nContent-Length: 5\r\n\r\nhelloEXTRA", 200, md5hex("hello"), false},
	{"to eof", "HTTP/1.1 404 Not Found\r\nServer: x\r\n\r\nbody", 404, md5hex("body"), false},
	{"chunked raw", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nbody\r\n0\r\n\r\n", 200, md5hex("4\r\nbody\r\n0\r\n\r\n"), false},
	{"bare lf", "HTTP/1.0 204 No\n\n", 204, md5hex(""), false},
	{"empty", "", 0, "", true},
	{"garbage", "SSH-2.0-OpenSSH\r\n\r\n", 0, "", true},
	{"short status", "HTTP/1.0 2\r\n\r\n", 0, "", true},
}

func TestReadResponse(t *testing.T) {
	for _, tc := range responses {
		status, sum, _, err := readResponse(strings.NewReader(tc.in), true, false)
		if (err != nil) != tc.err || status != tc.status || (!tc.err && hex.EncodeToString(sum) != tc.sum) {
			t.Errorf("%s: readResponse = %d %x %v, want %d %s err %v", tc.name, status, sum, err, tc.status, tc.sum, tc.err)
		}
	}
}

func FuzzReadResponse(f *testing.F) {
	for _, tc := range responses {
		f.Add([]byte(tc.in))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		status, _, _, err := readResponse(bytes.NewReader(in), true, true)
		if err == nil && (status < 100 || status > 999) {
			t.Fatalf("status %d accepted", status)
		}
	})
}
