package obs

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/keepwatch/keepwatch/engine/netif/nskit"
	"github.com/keepwatch/keepwatch/engine/netif/nskit/nskittest"
)

// The secrets of TestPasswordMismatch's config: none may appear in a log,
// the status API or /metrics.
const (
	authPass = "kwpass01" // VRRPv2 PASS: 8 characters at most
	sslPass  = "kwsslpw9-secret"
)

func v2conf(n *nskit.Node, prio int, pass string) string {
	return fmt.Sprintf(`global_defs {
  router_id obs%[1]d
  notification_email {
    ops@example.com
  }
  notification_email_from keepwatch@example.com
  smtp_server 192.0.2.250 25
}

SSL {
  password %[4]s
}

vrrp_instance VI_2 {
  state BACKUP
  interface %[2]s
  virtual_router_id 52
  priority %[3]d
  advert_int 1
  version 2
  authentication {
    auth_type PASS
    auth_pass %[5]s
  }
  virtual_ipaddress {
    198.51.100.100/24
  }
}
`, n.Index, n.Link, prio, sslPass, pass)
}

// TestPasswordMismatch: two VRRPv2 routers with different auth_pass each
// drop the other's adverts (reason auth) and both become MASTER, as
// keepalived does; the passwords never show in logs, status or metrics.
func TestPasswordMismatch(t *testing.T) {
	t.Parallel()
	lab := nskittest.New(t, "obspw", 2)
	dir := t.TempDir()
	na, nb := lab.Node(1), lab.Node(2)
	a := startAgent(t, na, dir, v2conf(na, 150, authPass), agentOpts{})
	b := startAgent(t, nb, dir, v2conf(nb, 100, "otherpw2"), agentOpts{})
	a.waitReady(10 * time.Second)
	b.waitReady(10 * time.Second)
	a.waitState("VI_2", "master", 8*time.Second)
	b.waitState("VI_2", "master", 8*time.Second)
	time.Sleep(2100 * time.Millisecond) // two more adverts each way

	for _, ag := range []*agent{a, b} {
		id := []string{"vrrp_instance", "VI_2", "vrid", "52", "interface", ag.node.Link, "family", "ipv4"}
		m := ag.scrape()
		if v := m.must(t, "keepwatch_vrrp_adverts_dropped_total", append(id, "reason", "auth")...); v < 2 {
			t.Errorf("node %d dropped %v adverts for auth, want >= 2", ag.node.Index, v)
		}
		expect(t, m, "keepwatch_vrrp_adverts_received_total", 0, id...)
		compare(t, m, "keepwatch_vrrp_state", stateSet(fmt.Sprintf(`family="ipv4",interface=%q,vrid="52",vrrp_instance="VI_2"`, ag.node.Link), "master"))
		for _, r := range []string{"auth_type", "ttl", "version", "checksum"} {
			expect(t, m, "keepwatch_vrrp_adverts_dropped_total", 0, append(id, "reason", r)...)
		}
	}

	// Secrets: not in /api/v1/status, /metrics, or the log (at debug
	// level, through a SIGHUP reload and the shutdown).
	_, status, err := a.get("/api/v1/status")
	if err != nil {
		t.Fatal(err)
	}
	_, metrics, err := a.get("/metrics")
	if err != nil {
		t.Fatal(err)
	}
	if err := a.proc.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond)
	if err := a.proc.Stop(); err != nil {
		t.Fatal(err)
	}
	log := a.log.String()
	if !strings.Contains(log, `"msg":"config loaded"`) || !strings.Contains(status, `"iname": "VI_2"`) {
		t.Fatalf("log or status incomplete:\n%s\n%s", log, status)
	}
	for what, text := range map[string]string{"log": log, "/api/v1/status": status, "/metrics": metrics} {
		for _, secret := range []string{authPass, sslPass} {
			if strings.Contains(text, secret) {
				t.Errorf("%s contains the secret %q", what, secret)
			}
		}
	}
}

// TestTLSBasicAuth: --web.config.file with a certificate made here and a
// bcrypt basic-auth user: the right password gets /metrics over TLS, a
// wrong or missing one 401, plain HTTP nothing.
func TestTLSBasicAuth(t *testing.T) {
	t.Parallel()
	lab := nskittest.New(t, "obstls", 1)
	dir := t.TempDir()
	n := lab.Node(1)
	pool := writeCert(t, dir, n.IPv4.Addr().AsSlice())
	hash, err := bcrypt.GenerateFromPassword([]byte("right-pw"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	webCfg := filepath.Join(dir, "web.yml")
	if err := os.WriteFile(webCfg, fmt.Appendf(nil, "tls_server_config:\n  cert_file: %s\n  key_file: %s\nbasic_auth_users:\n  prom: %s\n",
		filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem"), hash), 0o600); err != nil {
		t.Fatal(err)
	}
	// A virtual server too, so /metrics has per-real-server series (the
	// families metrics.Handler writes itself) for Prometheus to parse.
	conf := v3conf(n, 100, "") + `
virtual_server 192.0.2.50 80 {
  delay_loop 5
  lb_algo rr
  lb_kind NAT
  protocol TCP
  real_server 198.51.100.10 8080 {
    weight 3
  }
  real_server 198.51.100.11 8080 {
    weight 1
  }
}
`
	a := startAgent(t, n, dir, conf, agentOpts{webConfig: webCfg})
	a.scheme = "https"
	a.client = nodeClient(n, &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12})
	basic := func(user, pw string) string {
		return "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+pw))
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		code, _, err := a.get("/-/ready", "Authorization", basic("prom", "right-pw"))
		if err == nil && code == http.StatusOK {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("not ready over TLS: %d %v", code, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	for _, tc := range []struct {
		name, auth string
		want       int
	}{
		{"right password", basic("prom", "right-pw"), http.StatusOK},
		{"wrong password", basic("prom", "wrong-pw"), http.StatusUnauthorized},
		{"unknown user", basic("root", "right-pw"), http.StatusUnauthorized},
		{"no credentials", "", http.StatusUnauthorized},
	} {
		var hdr []string
		if tc.auth != "" {
			hdr = []string{"Authorization", tc.auth}
		}
		code, body, err := a.get("/metrics", hdr...)
		if err != nil || code != tc.want {
			t.Errorf("%s: %d %v, want %d", tc.name, code, err, tc.want)
		}
		if tc.want == http.StatusOK && !strings.Contains(body, "keepwatch_build_info") {
			t.Errorf("%s: body has no keepwatch_build_info", tc.name)
		} else if tc.want != http.StatusOK && strings.Contains(body, "keepwatch_") {
			t.Errorf("%s: refused, but the body has metrics", tc.name)
		}
	}
	// OpenMetrics when asked (for exemplars), with credentials.
	req, _ := http.NewRequest(http.MethodGet, "https://"+a.addr+"/metrics", nil)
	req.Header.Set("Authorization", basic("prom", "right-pw"))
	req.Header.Set("Accept", "application/openmetrics-text;version=1.0.0")
	resp, err := a.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/openmetrics-text") {
		t.Errorf("Content-Type %q, want OpenMetrics", ct)
	}
	// Plain HTTP to the TLS port gets no metrics.
	plain := &agent{t: t, node: n, scheme: "http", addr: a.addr, client: nodeClient(n, nil)}
	code, body, err := plain.get("/metrics", "Authorization", basic("prom", "right-pw"))
	if err == nil && (code == http.StatusOK || strings.Contains(body, "keepwatch_")) {
		t.Errorf("plain HTTP: %d, body %.80q", code, body)
	}
	// And a client that does not trust the certificate is refused.
	untrusted := &agent{t: t, node: n, scheme: "https", addr: a.addr, client: nodeClient(n, &tls.Config{MinVersion: tls.VersionTLS12})}
	if _, _, err := untrusted.get("/metrics"); err == nil {
		t.Error("a client without the CA completed a TLS handshake")
	}

	t.Run("prometheus", func(t *testing.T) { scrapeWithPrometheus(t, n, dir, a.addr) })
}

// scrapeWithPrometheus runs the Debian prometheus in the node's namespace,
// scraping the agent over TLS with basic auth (OpenMetrics and gzip, as it
// negotiates them), and queries what it stored.
func scrapeWithPrometheus(t *testing.T, n *nskit.Node, dir, target string) {
	nskittest.Require(t, "prometheus")
	cfg := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(cfg, fmt.Appendf(nil, `global:
  scrape_interval: 1s
scrape_configs:
  - job_name: keepwatch
    scheme: https
    tls_config:
      ca_file: %s
    basic_auth:
      username: prom
      password: right-pw
    static_configs:
      - targets: ['%s']
`, filepath.Join(dir, "cert.pem"), target), 0o600); err != nil {
		t.Fatal(err)
	}
	const promAddr = "127.0.0.1:9090"
	cmd := n.Command("prometheus", "--config.file="+cfg, "--storage.tsdb.path="+filepath.Join(dir, "tsdb"),
		"--web.listen-address="+promAddr)
	nskittest.Start(t, n, "prometheus", cmd)
	prom := &agent{t: t, node: n, scheme: "http", addr: promAddr, client: nodeClient(n, nil)}
	query := func(q string) (float64, bool) {
		code, body, err := prom.get("/api/v1/query?query=" + url.QueryEscape(q))
		if err != nil || code != http.StatusOK {
			return 0, false
		}
		var r struct {
			Data struct {
				Result []struct {
					Value [2]any `json:"value"`
				} `json:"result"`
			} `json:"data"`
		}
		if json.Unmarshal([]byte(body), &r) != nil || len(r.Data.Result) != 1 {
			return 0, false
		}
		s, _ := r.Data.Result[0].Value[1].(string)
		v, err := strconv.ParseFloat(s, 64)
		return v, err == nil
	}
	for q, want := range map[string]float64{
		`up{job="keepwatch"}`: 1,
		`keepwatch_vrrp_state{vrrp_instance="VI_1",state="master"}`:                                     1,
		`keepwatch_real_server_weight{real_server="198.51.100.10:8080"}`:                                3,
		`keepwatch_real_server_up{real_server="198.51.100.11:8080",virtual_server="192.0.2.50:80/tcp"}`: 1,
		`keepwatch_build_info`: 1,
	} {
		deadline := time.Now().Add(20 * time.Second)
		for {
			v, ok := query(q)
			if ok && v == want {
				break
			}
			if time.Now().After(deadline) {
				t.Errorf("prometheus: %s = %v (%v), want %v", q, v, ok, want)
				break
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
}

// writeCert makes a self-signed ECDSA certificate for ip (cert.pem,
// key.pem in dir) and returns a pool trusting it.
func writeCert(t *testing.T, dir string, ip []byte) *x509.CertPool {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "keepwatch obs test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true, IsCA: true, IPAddresses: []net.IP{ip},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "cert.pem"), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "key.pem"), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), 0o600); err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return pool
}
