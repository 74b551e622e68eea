package main

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func write(t *testing.T, name, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestCheckAsNewUser: what a keepalived user sees from `keepwatch check -f`
// on the usual mistakes — exit codes as keepalived -t, file:line:col lines.
func TestCheckAsNewUser(t *testing.T) {
	for _, tc := range []struct {
		name, body string
		code       int
		want       string
	}{
		{"clean.conf", "vrrp_instance VI_1 {\n  interface lo\n  virtual_router_id 51\n  priority 100\n  advert_int 1\n  virtual_ipaddress {\n    192.0.2.10/24\n  }\n}\n", 0, ""},
		{"typo.conf", "vrrp_instance VI_1 {\n  interface lo\n  virtual_router_id 51\n  priorty 100\n  virtual_ipaddress {\n    192.0.2.10/24\n  }\n}\n", 5, ":4:3: warning:"},
		{"range.conf", "vrrp_instance VI_1 {\n  interface lo\n  virtual_router_id 51\n  priority 300\n  virtual_ipaddress {\n    192.0.2.10/24\n  }\n}\n", 5, ":4:"},
		{"brace.conf", "vrrp_instance VI_1 {\n  interface lo\n  virtual_router_id 51\n  virtual_ipaddress {\n    192.0.2.10/24\n}\n", 5, "missing"},
		{"include.conf", "include /nonexistent/keepwatch-test/*.conf\nincluder /nonexistent/keepwatch-test/x.conf\n", 5, "x.conf"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := write(t, tc.name, tc.body)
			var out bytes.Buffer
			code := check(&out, p, "")
			if code != tc.code {
				t.Errorf("exit %d, want %d; output:\n%s", code, tc.code, out.String())
			}
			if tc.want != "" && !strings.Contains(out.String(), tc.want) {
				t.Errorf("output does not contain %q:\n%s", tc.want, out.String())
			}
			for _, line := range strings.Split(strings.TrimSpace(out.String()), "\n") {
				if line != "" && !strings.HasPrefix(line, p+":") && !strings.HasPrefix(line, "/nonexistent") {
					t.Errorf("line does not start with the file name: %q", line)
				}
			}
		})
	}
}

// TestCheckSaysWhatRunDoes: each line of `check` ends with what `run` does
// about it, keepalived's recovery; the exit code stays keepalived -t's.
func TestCheckSaysWhatRunDoes(t *testing.T) {
	p := write(t, "k.conf", "global_defs {\n  vrrp_garp_interval 0\n}\nvrrp_instance VI_1 {\n  interface lo\n  virtual_router_id 51\n  advert_int abc\n  virtual_ipaddress {\n    192.0.2.10/24\n    192.0.2.300\n  }\n}\n")
	var out bytes.Buffer
	if code := check(&out, p, ""); code != 5 {
		t.Errorf("exit %d, want 5 (keepalived -t)", code)
	}
	for _, want := range []string{
		p + ":2:22: error: vrrp_garp_interval: number '0' outside range [0.000001, 4294.967295] [ignored, default 0 s kept]\n",
		p + ":7:14: error: advert_int: invalid number 'abc' [ignored, default 1 s kept]\n",
		p + ":10:5: error: virtual_ipaddress: invalid IP '192.0.2.300' - skipping [skipped]\n",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
	// convert writes what run would run: the bad address left out.
	root := rootCommand()
	var yml, errs bytes.Buffer
	root.SetOut(&yml)
	root.SetErr(&errs)
	root.SetArgs([]string{"convert", p})
	if err := root.Execute(); err != nil {
		t.Fatalf("convert refused a config keepalived runs: %v\n%s", err, errs.String())
	}
	if strings.Contains(yml.String(), "192.0.2.300") || !strings.Contains(yml.String(), "192.0.2.10/24") {
		t.Errorf("converted:\n%s", yml.String())
	}
	root = rootCommand()
	root.SetOut(&yml)
	root.SetErr(&errs)
	root.SetArgs([]string{"convert", "--strict", p})
	if err := root.Execute(); err == nil {
		t.Error("convert --strict accepted a config with errors")
	}
}

// TestConvertRoundTrip runs the convert command both ways.
func TestConvertRoundTrip(t *testing.T) {
	src := write(t, "k.conf", "global_defs {\n  router_id lb1\n}\nvrrp_instance VI_1 {\n  state MASTER\n  interface lo\n  virtual_router_id 51\n  priority 150\n  advert_int 1\n  authentication {\n    auth_type PASS\n    auth_pass s3cret\n  }\n  virtual_ipaddress {\n    192.0.2.10/24 dev lo label lo:1\n  }\n}\n")
	run := func(args ...string) string {
		root := rootCommand()
		var out bytes.Buffer
		root.SetOut(&out)
		root.SetErr(&out)
		root.SetArgs(args)
		if err := root.Execute(); err != nil {
			t.Fatalf("%v: %v\n%s", args, err, out.String())
		}
		return out.String()
	}
	yml := run("convert", src)
	for _, want := range []string{"router_id: lb1", "virtual_router_id: 51", "label: lo:1", "auth_pass: s3cret"} {
		if !strings.Contains(yml, want) {
			t.Errorf("YAML lacks %q:\n%s", want, yml)
		}
	}
	ypath := write(t, "k.yaml", yml)
	back := run("convert", "--to", "keepalived", ypath)
	if !strings.Contains(back, "virtual_router_id 51") || !strings.Contains(back, "auth_pass s3cret") {
		t.Errorf("keepalived.conf from YAML:\n%s", back)
	}
	if again := run("convert", write(t, "back.conf", back)); again != yml {
		t.Errorf("conf → YAML → conf → YAML differs:\nfirst:\n%s\nsecond:\n%s", yml, again)
	}
}

func TestStatusTable(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/api/v1/status" {
			http.NotFound(w, r)
			return
		}
		w.Write([]byte(`{"router_id":"lb1","config":"/etc/keepalived/keepalived.conf","ready":true,"vrrp_instances":[
		 {"iname":"VI_1","vrid":51,"ifp_ifname":"eth0","family":"ipv4","state":"backup","base_priority":100,
		  "effective_priority":80,"master_saddr":"192.0.2.1","master_priority":150,"vips":["192.0.2.10/24"],
		  "vips_held":false,"last_transition_reason":"startup","adver_int":1,"master_down_interval":3.6,
		  "trackers":[{"kind":"script","name":"chk","weight":-20,"known":true,"up":false,"priority_delta":-20}]}],
		 "diagnostics":[{"position":"/etc/keepalived/keepalived.conf:13:23","severity":"error","keyword":"vrrp_garp_interval",
		  "message":"vrrp_garp_interval: number '0' outside range [0.000001, 4294.967295]","action":"kept_default","action_text":"ignored, default 0 s kept"}]}`))
	}))
	defer srv.Close()
	var out bytes.Buffer
	if err := status(&out, srv.URL, false); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"VI_1", "BACKUP", "80 (100)", "192.0.2.1 (150)", "script chk (weight -20): down → -20",
		"config diagnostics (1):\n  /etc/keepalived/keepalived.conf:13:23: error: vrrp_garp_interval: number '0' outside range [0.000001, 4294.967295] [ignored, default 0 s kept]\n"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("status output lacks %q:\n%s", want, out.String())
		}
	}
	if err := status(&out, "127.0.0.1:1", false); err == nil {
		t.Error("no error for an agent that is not there")
	}
}
