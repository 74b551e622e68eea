package loader

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/keepwatch/keepwatch/engine/netif/nskit/nskittest"
)

// TestCheckInterfacesInNetNamespace: `keepwatch check` looks interfaces up
// in the config's net_namespace, where the agent will use them, not in the
// namespace it runs in.
func TestCheckInterfacesInNetNamespace(t *testing.T) {
	l := nskittest.New(t, "ldns", 1)
	x := l.Node(1)
	inst := fmt.Sprintf("vrrp_instance VI_1 {\n  interface %s\n  virtual_router_id 51\n  priority 100\n  virtual_ipaddress {\n    192.0.2.10/24\n  }\n}\n", x.Link)
	for _, tt := range []struct {
		ns      string
		missing bool
	}{
		{x.NS, false},
		{"", true},
	} {
		body := inst
		if tt.ns != "" {
			body = "net_namespace " + tt.ns + "\n" + inst
		}
		p := filepath.Join(t.TempDir(), "keepalived.conf")
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		_, ds := Load(p, Options{CheckInterfaces: true})
		got := strings.Contains(ds.String(), "interface "+x.Link+" for vrrp_instance VI_1 doesn't exist")
		if got != tt.missing {
			t.Errorf("net_namespace %q: missing-interface warning %v, want %v:\n%s", tt.ns, got, tt.missing, ds)
		}
	}
}
