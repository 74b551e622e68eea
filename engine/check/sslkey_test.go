package check

import (
	"crypto/tls"
	"io"
	"log"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/keepwatch/keepwatch/engine/config"
)

// openssl runs the openssl command: the keys SSL { password } protects are
// the ones OpenSSL writes, so the test makes them with it.
func openssl(t *testing.T, dir string, args ...string) {
	t.Helper()
	bin, err := exec.LookPath("openssl")
	if err != nil {
		t.Fatalf("openssl is needed to make encrypted keys: %v", err)
	}
	cmd := exec.Command(bin, args...)
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("openssl %v: %v\n%s", args, err, out)
	}
}

// TestSSLPassword: the global SSL block's key, encrypted in each form
// OpenSSL writes, is decrypted with its password and presented by SSL_GET
// to a server that requires a client certificate.
func TestSSLPassword(t *testing.T) {
	dir := t.TempDir()
	// OpenSSL 3's default: PKCS#8, PBES2 with PBKDF2-HMAC-SHA256 and AES-256-CBC.
	openssl(t, dir, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-keyout", "pkcs8.pem",
		"-out", "cert.pem", "-days", "1", "-subj", "/CN=keepwatch-test", "-passout", "pass:s3cret word")
	// The traditional PEM encryption (Proc-Type: 4,ENCRYPTED).
	openssl(t, dir, "ec", "-in", "pkcs8.pem", "-passin", "pass:s3cret word", "-aes128", "-passout", "pass:s3cret word", "-out", "legacy.pem")
	// PKCS#8 with PBKDF2-HMAC-SHA1 and 3DES, as older OpenSSL wrote it.
	openssl(t, dir, "pkcs8", "-topk8", "-in", "pkcs8.pem", "-passin", "pass:s3cret word", "-v2", "des3", "-v2prf", "hmacWithSHA1",
		"-passout", "pass:s3cret word", "-out", "des3.pem")
	for name, want := range map[string]string{"pkcs8.pem": "ENCRYPTED PRIVATE KEY", "legacy.pem": "Proc-Type: 4,ENCRYPTED", "des3.pem": "ENCRYPTED PRIVATE KEY"} {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil || !strings.Contains(string(b), want) {
			t.Fatalf("%s is not encrypted as expected (%v):\n%s", name, err, b)
		}
	}

	server := selfSigned(t)
	l, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{server}, ClientAuth: tls.RequireAnyClientCert})
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, body) }),
		ErrorLog: log.New(io.Discard, "", 0)}
	go srv.Serve(l)
	defer srv.Close()
	ap := addrOf(l.Addr())

	conf := func(key, password string) *config.Config {
		return &config.Config{
			SSL: &config.SSL{Certificate: filepath.Join(dir, "cert.pem"), Key: filepath.Join(dir, key), Password: config.Secret(password)},
			VirtualServers: []config.VirtualServer{{Addr: ap.Addr(), Port: int(ap.Port()), Protocol: "TCP",
				RealServers: []config.RealServer{{Addr: ap.Addr(), Port: int(ap.Port()), Checkers: []config.Checker{
					{Type: config.SSLGet, HTTP: &config.HTTPCheck{URLs: []config.URL{{Path: "/health"}}}}}}}}},
		}
	}
	for _, key := range []string{"pkcs8.pem", "legacy.pem", "des3.pem"} {
		rss, err := FromConfig(conf(key, "s3cret word"))
		if err != nil {
			t.Errorf("%s: %v", key, err)
			continue
		}
		tg := rss[0].Checkers[0].Target
		if tg.ClientCert == nil {
			t.Fatalf("%s: no client certificate on the SSL_GET target", key)
		}
		tg.Timeout = 5 * time.Second
		probe(t, ProbeHTTP, &tg, true, "")

		_, err = FromConfig(conf(key, "wrong"))
		if err == nil || !strings.Contains(err.Error(), key) {
			t.Errorf("%s with a wrong password: error %v, want one naming the key file", key, err)
		}
	}
	// Without the password the encrypted key cannot be read.
	if _, err := FromConfig(conf("pkcs8.pem", "")); err == nil {
		t.Error("an encrypted key loaded without a password")
	}
}
