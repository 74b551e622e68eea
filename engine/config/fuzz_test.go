package config

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"gopkg.in/yaml.v3"
)

// structuredExts are the forms LoadStructured reads, chosen by extension.
var structuredExts = []string{".yaml", ".json", ".toml"}

// FuzzStructured feeds LoadStructured arbitrary YAML, JSON and TOML files
// (an operator's typo, a file another tool half wrote): it never panics; a
// config it cannot return comes with an error; every diagnostic names the
// file; and a config it accepts without errors writes out as YAML that
// loads again without errors (what `keepwatch convert` relies on).
func FuzzStructured(f *testing.F) {
	basic, err := os.ReadFile("testdata/basic.yaml")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(basic, uint8(0))
	var doc any
	if err := yaml.Unmarshal(basic, &doc); err != nil {
		f.Fatal(err)
	}
	if js, err := json.Marshal(doc); err == nil {
		f.Add(js, uint8(1))
	}
	f.Add([]byte("global_defs:\n  router_id: [1, 2]\n"), uint8(0))
	f.Add([]byte("vrrp_instances:\n  - name: VI_1\n    advert_int: -1\n    priority: 1e9\n"), uint8(0))
	f.Add([]byte("vrrp_instances: &a [*a]\n"), uint8(0))
	f.Add([]byte(`{"virtual_servers": [{"address": "192.0.2.1", "port": 99999, "delay_loop": "1h"}]}`), uint8(1))
	f.Add([]byte("[global_defs]\nrouter_id = \"lb1\"\n\n[[vrrp_instances]]\nname = \"VI_1\"\ninterface = \"eth0\"\nvirtual_router_id = 51\npriority = 100\nvirtual_ipaddress = [{address = \"192.0.2.100/24\"}]\n"), uint8(2))
	f.Add([]byte("[agent]\nlisten_address = 1\n"), uint8(2))
	// One directory for the whole run: a fuzz worker runs its inputs one
	// at a time, and a directory per input costs more than the load.
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, b []byte, form uint8) {
		path := filepath.Join(dir, "keepwatch"+structuredExts[int(form)%len(structuredExts)])
		if err := os.WriteFile(path, b, 0o600); err != nil {
			t.Fatal(err)
		}
		c, ds := LoadStructured(path, ValidateOptions{})
		if c == nil && !ds.HasErrors() {
			t.Fatalf("no config and no error:\n%s", ds)
		}
		for _, d := range ds {
			if d.Pos.File == "" {
				t.Fatalf("diagnostic without a file: %v", d)
			}
		}
		if c == nil || ds.HasErrors() {
			return
		}
		var out bytes.Buffer
		if err := WriteYAML(&out, c); err != nil {
			t.Fatalf("accepted, but WriteYAML: %v", err)
		}
		again := filepath.Join(dir, "again.yaml")
		if err := os.WriteFile(again, out.Bytes(), 0o600); err != nil {
			t.Fatal(err)
		}
		if c2, ds2 := LoadStructured(again, ValidateOptions{}); c2 == nil || ds2.HasErrors() {
			t.Fatalf("accepted, but its YAML form is not:\n%s\n%s", out.Bytes(), ds2)
		}
	})
}
