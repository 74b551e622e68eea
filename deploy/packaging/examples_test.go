package packaging

import (
	"bytes"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/keepwatch/keepwatch/engine/config"
	"github.com/keepwatch/keepwatch/engine/config/configtest"
	"github.com/keepwatch/keepwatch/engine/config/loader"
)

var update = flag.Bool("update", false, "rewrite generated files (examples/lvs-nat.yaml, kubernetes/prometheusrule.yaml)")

// exampleIDs are the config ids each example is read with: two-node.conf
// is one file for both hosts through @lb1 / @lb2 lines.
var exampleIDs = map[string][]string{
	"two-node.conf": {"lb1", "lb2"},
}

func examples(t *testing.T) []string {
	t.Helper()
	var files []string
	for _, pat := range []string{"*.conf", "*.yaml"} {
		m, err := filepath.Glob(filepath.Join(deployDir(t), "examples", pat))
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, m...)
	}
	if len(files) < 6 {
		t.Fatalf("found %d example configs, want at least 6: %v", len(files), files)
	}
	return files
}

func load(t *testing.T, path, id string) *config.Config {
	t.Helper()
	c, ds := loader.Load(path, loader.Options{ConfigID: id})
	if c == nil || len(ds) > 0 {
		t.Fatalf("%s (id %q): %v", path, id, ds)
	}
	return c
}

// TestExamplesLoad reads every example as `keepwatch run` would: no
// error and no warning (interfaces are not checked against this host).
func TestExamplesLoad(t *testing.T) {
	for _, path := range examples(t) {
		ids := exampleIDs[filepath.Base(path)]
		if ids == nil {
			ids = []string{"example"}
		}
		for _, id := range ids {
			t.Run(filepath.Base(path)+"/"+id, func(t *testing.T) {
				c := load(t, path, id)
				if len(c.Instances) == 0 {
					t.Error("no vrrp_instance")
				}
			})
		}
	}
}

// TestExampleTwoNode checks that the one file makes lb1 the preferred
// master and that a failing script moves the VIP: |weight| must exceed the
// priority gap (RFC 9568 §6.4.2: a preempting backup ignores adverts of
// lower priority, so its Master_Down_Timer fires).
func TestExampleTwoNode(t *testing.T) {
	path := filepath.Join(deployDir(t), "examples", "two-node.conf")
	a, b := load(t, path, "lb1"), load(t, path, "lb2")
	ia, ib := a.Instances[0], b.Instances[0]
	if ia.Priority <= ib.Priority {
		t.Fatalf("lb1 priority %d, lb2 %d: lb1 should be preferred", ia.Priority, ib.Priority)
	}
	if len(a.Scripts) != 1 || len(ia.TrackScripts) != 1 {
		t.Fatalf("want one tracked vrrp_script, got %d scripts, %d tracked", len(a.Scripts), len(ia.TrackScripts))
	}
	if w := a.Scripts[0].Weight; ia.Priority+w >= ib.Priority {
		t.Errorf("lb1 at %d%+d does not fall below lb2's %d: the VIP would not move", ia.Priority, w, ib.Priority)
	}
}

// TestExampleYAML keeps lvs-nat.yaml the same model as lvs-nat.conf, and
// equal (below its header comment) to `keepwatch convert lvs-nat.conf`.
func TestExampleYAML(t *testing.T) {
	dir := filepath.Join(deployDir(t), "examples")
	conf := load(t, filepath.Join(dir, "lvs-nat.conf"), "")
	yamlPath := filepath.Join(dir, "lvs-nat.yaml")

	var buf bytes.Buffer
	if err := config.WriteYAML(&buf, conf); err != nil {
		t.Fatal(err)
	}
	header, body := splitHeader(readFile(t, yamlPath))
	if *update {
		if err := os.WriteFile(yamlPath, append(header, buf.Bytes()...), 0o644); err != nil {
			t.Fatal(err)
		}
		body = buf.Bytes()
	}
	if diff := cmp.Diff(buf.String(), string(body)); diff != "" {
		t.Errorf("lvs-nat.yaml differs from the converted lvs-nat.conf (go test -update rewrites it) (-want +got):\n%s", diff)
	}
	if len(header) == 0 {
		t.Error("lvs-nat.yaml has no header comment saying where it comes from")
	}
	yml := load(t, yamlPath, "")
	if diff := cmp.Diff(conf, yml, configtest.ModelOptions); diff != "" {
		t.Errorf("lvs-nat.yaml model differs from lvs-nat.conf (-conf +yaml):\n%s", diff)
	}
}

// splitHeader splits the leading comment lines from the rest.
func splitHeader(b []byte) (header, body []byte) {
	i := 0
	for i < len(b) && b[i] == '#' {
		j := bytes.IndexByte(b[i:], '\n')
		if j < 0 {
			return b, nil
		}
		i += j + 1
	}
	return b[:i], b[i:]
}

// TestExamplesKeepalived has the real keepalived (-t, its config test)
// accept every example, with the interfaces they name present: a network
// namespace of our own with eth0 and eth1.
func TestExamplesKeepalived(t *testing.T) {
	needRoot(t)
	ka := need(t, "keepalived")
	ip := need(t, "ip")
	ns := fmt.Sprintf("kwpk%06x", rand.Uint32()&0xffffff)
	if out, err := exec.Command(ip, "netns", "add", ns).CombinedOutput(); err != nil {
		t.Fatalf("ip netns add %s: %v\n%s", ns, err, out)
	}
	t.Cleanup(func() { _ = exec.Command(ip, "netns", "del", ns).Run() })
	// A veth pair inside the namespace (this kernel may have no dummy driver).
	if out, err := exec.Command(ip, "-n", ns, "link", "add", "eth0", "type", "veth", "peer", "name", "eth1").CombinedOutput(); err != nil {
		t.Fatalf("add eth0/eth1: %v\n%s", err, out)
	}
	for _, ifname := range []string{"eth0", "eth1"} {
		if out, err := exec.Command(ip, "-n", ns, "link", "set", ifname, "up").CombinedOutput(); err != nil {
			t.Fatalf("up %s: %v\n%s", ifname, err, out)
		}
	}
	for _, path := range examples(t) {
		if !strings.HasSuffix(path, ".conf") {
			continue
		}
		ids := exampleIDs[filepath.Base(path)]
		if ids == nil {
			ids = []string{"example"}
		}
		for _, id := range ids {
			t.Run(filepath.Base(path)+"/"+id, func(t *testing.T) {
				cmd := exec.Command(ip, "netns", "exec", ns, ka, "-t", "-l", "-i", id, "-f", path)
				// keepalived signals its process group in some config-test
				// paths; keep it away from the test's.
				cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
				out, err := cmd.CombinedOutput()
				if err != nil || len(bytes.TrimSpace(out)) > 0 {
					t.Errorf("keepalived -t -i %s -f %s: %v\n%s", id, path, err, out)
				}
			})
		}
	}
}
