package loader

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/keepwatch/keepwatch/engine/config/configtest"
)

// TestSameModelEitherForm: a config written by hand in keepalived.conf and in
// YAML, each leaving keepalived's defaults out, loads to one model.
func TestSameModelEitherForm(t *testing.T) {
	dir := t.TempDir()
	conf := `global_defs {
  router_id lb1
  notification_email {
    ops@example.com
  }
  smtp_server 127.0.0.1
}
vrrp_script chk {
  script "/bin/true"
}
track_file tf {
  file "/run/keepwatch-tf"
}
vrrp_instance VI_1 {
  interface lo
  virtual_router_id 51
  virtual_ipaddress {
    192.0.2.10/24
  }
  track_script {
    chk
  }
}
virtual_server 192.0.2.10 80 {
  protocol TCP
  real_server 198.51.100.1 80 {
    HTTP_GET {
      url {
        path /
      }
    }
  }
}
`
	yml := `global_defs:
  router_id: lb1
  notification_email: [ops@example.com]
  smtp_server: 127.0.0.1
vrrp_scripts:
  - name: chk
    command: /bin/true
track_files:
  - name: tf
    file: /run/keepwatch-tf
vrrp_instances:
  - name: VI_1
    interface: lo
    virtual_router_id: 51
    virtual_ipaddress: [{address: 192.0.2.10/24}]
    track_script: [{name: chk}]
virtual_servers:
  - address: 192.0.2.10
    port: 80
    protocol: TCP
    real_servers:
      - address: 198.51.100.1
        port: 80
        checkers:
          - type: HTTP_GET
            http:
              url: [{path: /}]
`
	cp, yp := filepath.Join(dir, "k.conf"), filepath.Join(dir, "k.yaml")
	if err := os.WriteFile(cp, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(yp, []byte(yml), 0o644); err != nil {
		t.Fatal(err)
	}
	a, ds := Load(cp, Options{})
	if ds.HasErrors() {
		t.Fatalf("conf: %s", ds)
	}
	b, ds := Load(yp, Options{})
	if ds.HasErrors() {
		t.Fatalf("yaml: %s", ds)
	}
	if d := cmp.Diff(a, b, configtest.ModelOptions); d != "" {
		t.Errorf("keepalived.conf and YAML models differ (-conf +yaml):\n%s", d)
	}
}
