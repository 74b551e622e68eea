package main

import (
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/keepwatch/keepwatch/engine/netif/nskit"
	"github.com/keepwatch/keepwatch/engine/netif/nskit/nskittest"
)

// otlpReceiver counts OTLP/HTTP trace exports received inside the node's
// namespace, and returns its address.
func otlpReceiver(t *testing.T, n *nskit.Node) (string, *atomic.Int32) {
	t.Helper()
	var ln net.Listener
	if err := n.Do(func() (err error) { ln, err = net.Listen("tcp", "127.0.0.1:0"); return err }); err != nil {
		t.Fatal(err)
	}
	var got atomic.Int32
	srv := &http.Server{ReadHeaderTimeout: 5 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost && r.URL.Path == "/v1/traces" {
			got.Add(1)
		}
		w.Header().Set("Content-Type", "application/x-protobuf")
	})}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	return ln.Addr().String(), &got
}

// The settings only the YAML agent: section or KEEPWATCH_AGENT_* can give
// (listen address, web config, OTLP endpoint) apply: in `keepwatch run` from
// a YAML file, and in the keepalived drop-in from the environment. Each
// agent serves HTTP on the address given, asks for the web config's basic
// auth, and exports spans to the OTLP receiver given.
func TestAgentSettingsApply(t *testing.T) {
	keepalived := dropinBinary(t)
	keepwatch := filepath.Join(filepath.Dir(keepalived), "keepwatch")
	lab := nskittest.New(t, "agentset", 1)
	n := lab.Node(1)
	dir := t.TempDir()
	hash, err := bcrypt.GenerateFromPassword([]byte("s3cret"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	web := filepath.Join(dir, "web.yml")
	if err := os.WriteFile(web, []byte("basic_auth_users:\n  admin: "+string(hash)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	otlp, exports := otlpReceiver(t, n)
	client := n.HTTPClient(5*time.Second, nil)

	for _, tc := range []struct {
		name, listen string
		cmd          func() *procSpec
	}{
		{"run-yaml", "127.0.0.1:19761", func() *procSpec {
			conf := filepath.Join(dir, "k.yaml")
			body := fmt.Sprintf("agent:\n  listen_address: 127.0.0.1:19761\n  web_config_file: %s\n  otlp_endpoint: http://%s\n"+
				"vrrp_instances:\n  - name: VI_1\n    interface: %s\n    virtual_router_id: 41\n    priority: 100\n    advert_int: 1s\n"+
				"    virtual_ipaddress:\n      - address: 192.0.2.141/24\n", web, otlp, n.Link)
			if err := os.WriteFile(conf, []byte(body), 0o644); err != nil {
				t.Fatal(err)
			}
			return &procSpec{args: []string{keepwatch, "run", "-f", conf}}
		}},
		{"dropin-env", "127.0.0.1:19762", func() *procSpec {
			conf := filepath.Join(dir, "keepalived.conf")
			body := fmt.Sprintf("vrrp_instance VI_1 {\n  interface %s\n  virtual_router_id 42\n  priority 100\n  advert_int 1\n"+
				"  virtual_ipaddress {\n    192.0.2.142/24\n  }\n}\n", n.Link)
			if err := os.WriteFile(conf, []byte(body), 0o644); err != nil {
				t.Fatal(err)
			}
			return &procSpec{args: []string{keepalived, "-n", "-l", "-G", "-f", conf, "-p", filepath.Join(dir, "k.pid"),
				"-r", filepath.Join(dir, "v.pid"), "-c", filepath.Join(dir, "c.pid")},
				env: []string{"KEEPWATCH_AGENT_LISTEN_ADDRESS=127.0.0.1:19762", "KEEPWATCH_AGENT_WEB_CONFIG_FILE=" + web,
					"KEEPWATCH_AGENT_OTLP_ENDPOINT=http://" + otlp}}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := exports.Load()
			c := tc.cmd()
			cmd := n.Command(c.args[0], c.args[1:]...)
			cmd.Env = append(os.Environ(), c.env...)
			var out nskittest.Buffer
			cmd.Stdout, cmd.Stderr = &out, &out
			p, err := n.Start(cmd)
			if err != nil {
				t.Fatal(err)
			}
			defer func() {
				_ = p.Stop()
				if t.Failed() {
					t.Logf("output:\n%s", out.String())
				}
			}()
			url := "http://" + tc.listen + "/-/healthy"
			var code int
			waitFor(t, "HTTP on "+tc.listen, 20*time.Second, func() bool {
				resp, err := client.Get(url)
				if err != nil {
					return false
				}
				resp.Body.Close()
				code = resp.StatusCode
				return true
			})
			if code != http.StatusUnauthorized {
				t.Errorf("GET %s without credentials: %d, want 401 (the web config's basic auth)", url, code)
			}
			req, _ := http.NewRequest(http.MethodGet, url, nil)
			req.SetBasicAuth("admin", "s3cret")
			resp, err := client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				t.Errorf("GET %s with credentials: %d", url, resp.StatusCode)
			}
			// The instance's startup transition is a span; the batch
			// processor exports it within its timeout.
			waitFor(t, "an OTLP export", 30*time.Second, func() bool { return exports.Load() > before })
			if !strings.Contains(out.String(), tc.listen) {
				t.Errorf("the log does not name the listen address %s", tc.listen)
			}
		})
	}
}

type procSpec struct {
	args []string
	env  []string
}
