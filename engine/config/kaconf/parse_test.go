package kaconf

import (
	"bytes"
	"context"
	"encoding/json"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/keepwatch/keepwatch/engine/config"
)

// testOpts makes loads reproducible: a fixed config-id and random seed.
var testOpts = LoadOptions{Read: ReadOptions{ConfigID: "kwtest", RandomSeed: 1}}

func parseFiles(t testing.TB) []string {
	t.Helper()
	files, err := filepath.Glob("testdata/parse/*.conf")
	if err != nil || len(files) == 0 {
		t.Fatalf("no testdata/parse/*.conf: %v", err)
	}
	return files
}

// TestParseGolden loads each testdata/parse/*.conf and compares the model
// (as JSON) and the diagnostics (exact text) with the .json and .diag files
// beside it. Run with -update to rewrite them.
func TestParseGolden(t *testing.T) {
	for _, f := range parseFiles(t) {
		name := strings.TrimSuffix(filepath.Base(f), ".conf")
		t.Run(name, func(t *testing.T) {
			c, ds := Load(f, testOpts)
			if c == nil {
				t.Fatalf("not loaded:\n%s", ds)
			}
			model, err := json.MarshalIndent(c, "", "  ")
			if err != nil {
				t.Fatal(err)
			}
			model = append(model, '\n')
			golden(t, strings.TrimSuffix(f, ".conf")+".json", model)
			golden(t, strings.TrimSuffix(f, ".conf")+".diag", []byte(ds.String()))
		})
	}
}

func golden(t *testing.T, path string, got []byte) {
	t.Helper()
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create)", err)
	}
	if d := cmp.Diff(string(want), string(got)); d != "" {
		t.Errorf("%s mismatch (-want +got):\n%s", path, d)
	}
}

// TestPrintGolden prints the model of each testdata/parse file and
// compares the text with testdata/print (run with -update to rewrite).
func TestPrintGolden(t *testing.T) {
	for _, f := range parseFiles(t) {
		t.Run(filepath.Base(f), func(t *testing.T) {
			c, ds := Load(f, testOpts)
			if c == nil {
				t.Fatalf("not loaded:\n%s", ds)
			}
			var buf bytes.Buffer
			if err := Print(&buf, c); err != nil {
				t.Fatal(err)
			}
			golden(t, filepath.Join("testdata", "print", filepath.Base(f)), buf.Bytes())
		})
	}
}

// modelOpts compares models ignoring positions and the source file name.
var modelOpts = cmp.Options{
	cmpopts.IgnoreTypes(config.Pos{}),
	cmpopts.IgnoreFields(config.Config{}, "Source"),
	cmpopts.EquateEmpty(),
	cmp.Comparer(func(a, b netip.Addr) bool { return a == b }),
	cmp.Comparer(func(a, b netip.Prefix) bool { return a == b }),
}

// roundTrip prints c and loads the text back; the models must be equal and
// the printed text must not bring new errors.
func roundTrip(t *testing.T, c *config.Config) {
	t.Helper()
	var buf bytes.Buffer
	if err := Print(&buf, c); err != nil {
		t.Fatal(err)
	}
	c2, ds := LoadFS(fstest.MapFS{"printed.conf": {Data: buf.Bytes()}}, "printed.conf", testOpts)
	if c2 == nil {
		t.Fatalf("printed config not loaded:\n%s\n%s", ds, buf.String())
	}
	if ds.HasErrors() {
		t.Errorf("printed config has errors:\n%s\n%s", ds, buf.String())
	}
	if d := cmp.Diff(c, c2, modelOpts); d != "" {
		t.Errorf("round trip changed the model (-loaded +reloaded):\n%s\nprinted:\n%s", d, buf.String())
	}
}

// TestRoundTrip: Load → Print → Load gives the same model for every test
// file, every corpus valid/ file and every Debian sample.
func TestRoundTrip(t *testing.T) {
	files := parseFiles(t)
	files = append(files, corpusFiles(t, "valid")...)
	samples, _ := filepath.Glob(filepath.Join(samplesDir, "keepalived.conf*"))
	files = append(files, samples...)
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			c, ds := Load(f, testOpts)
			if c == nil {
				t.Fatalf("not loaded:\n%s", ds)
			}
			roundTrip(t, c)
		})
	}
}

// envMessage matches what keepalived -t reports about this host rather
// than about the config (corpus README: the "env" class), and what it
// reports after parsing without a line.
var envMessage = regexp.MustCompile(`doesn't exist|SECURITY VIOLATION|not found|cannot use a loopback|` +
	`Invalid smtp server .*[a-z]|No VIP specified|script_security|Unable to|unknown user|` +
	`Non-existent interface|keepalived_script`)

// keepalivedLines runs keepalived -t on path and returns the lines of the
// top file it reports problems on (from any of its processes), and the line
// where it stopped parsing ("is missing a parameter" is fatal in 2.2.7).
func keepalivedLines(t *testing.T, path string) (map[int][]string, int) {
	t.Helper()
	bin, err := exec.LookPath("keepalived")
	if err != nil {
		if inCI() || !testing.Short() {
			t.Fatalf("keepalived not installed (it is the oracle): %v", err)
		}
		t.Skipf("keepalived not installed: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	out, _ := exec.CommandContext(ctx, bin, "-t", "-l", "-f", path).CombinedOutput()
	lines := map[int][]string{}
	stop := 1 << 30
	for _, l := range strings.Split(string(out), "\n") {
		m := lineRE.FindStringSubmatch(l)
		if m == nil || envMessage.MatchString(m[2]) {
			continue
		}
		n, _ := strconv.Atoi(m[1])
		lines[n] = append(lines[n], m[2])
		if strings.Contains(m[2], "is missing a parameter") {
			stop = min(stop, n)
		}
	}
	return lines, stop
}

// TestParseOracle compares each testdata/parse file with keepalived 2.2.7: every
// line keepalived complains about has a keepwatch diagnostic, and every
// keepwatch error is on a line keepalived complains about. Warnings that
// only keepwatch gives ("accepted but ignored") are allowed.
func TestParseOracle(t *testing.T) {
	for _, f := range parseFiles(t) {
		t.Run(filepath.Base(f), func(t *testing.T) {
			want, stop := keepalivedLines(t, f)
			_, ds := Load(f, testOpts)
			got := map[int]config.Severity{}
			for _, d := range ds {
				if d.Severity > got[d.Pos.Line] {
					got[d.Pos.Line] = d.Severity
				}
			}
			for line, msgs := range want {
				if got[line] == 0 {
					t.Errorf("line %d: keepalived reports %q; keepwatch reports nothing", line, msgs)
				}
			}
			for _, d := range ds {
				if d.Pos.Line > stop {
					continue
				}
				if d.Severity >= config.Error && want[d.Pos.Line] == nil {
					t.Errorf("keepwatch reports %s; keepalived finds nothing on that line", d)
				}
			}
		})
	}
}

// TestPrintKeepalived checks Print's output on keepalived 2.2.7 itself: the
// printed testdata must draw nothing from keepalived -t but warnings
// carried over from the source (deprecations, routes it cannot track).
func TestPrintKeepalived(t *testing.T) {
	benign := regexp.MustCompile(`(?i)^warning|deprecated|not supported`)
	for _, f := range parseFiles(t) {
		t.Run(filepath.Base(f), func(t *testing.T) {
			c, ds := Load(f, testOpts)
			if c == nil {
				t.Fatalf("not loaded:\n%s", ds)
			}
			var buf bytes.Buffer
			if err := Print(&buf, c); err != nil {
				t.Fatal(err)
			}
			path := filepath.Join(t.TempDir(), "printed.conf")
			if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
				t.Fatal(err)
			}
			lines, _ := keepalivedLines(t, path)
			for n, msgs := range lines {
				for _, m := range msgs {
					if !benign.MatchString(m) {
						t.Errorf("printed line %d: keepalived reports %q\n%s", n, m, buf.String())
					}
				}
			}
		})
	}
}

// FuzzLoad loads arbitrary bytes as keepalived.conf (with every test,
// corpus and sample file as a seed): it must never panic, and whatever
// loads must print once keepalived's recovery is applied.
func FuzzLoad(f *testing.F) {
	seeds, _ := filepath.Glob("testdata/parse/*.conf")
	if c, ok := corpusPath(); ok {
		for _, dir := range []string{"valid", "rejected", "templated"} {
			m, _ := filepath.Glob(filepath.Join(c, dir, "*"))
			seeds = append(seeds, m...)
		}
	}
	samples, _ := filepath.Glob(filepath.Join(samplesDir, "keepalived.conf*"))
	seeds = append(seeds, samples...)
	for _, s := range seeds {
		if b, err := os.ReadFile(s); err == nil {
			f.Add(b)
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		fsys := fstest.MapFS{"keepalived.conf": {Data: data}}
		c, ds := LoadFS(fsys, "keepalived.conf", LoadOptions{Read: ReadOptions{ConfigID: "kw", RandomSeed: 1, MaxLines: 1 << 14}})
		if c == nil {
			return
		}
		// keepalived's recovery, the run policy and the reload guard
		// (against the config itself) must take anything without panicking.
		ds = append(ds, config.Validate(c, config.ValidateOptions{Apply: true})...)
		c.Diagnostics = ds
		_ = config.Admit(c, ds, c, false)
		var buf bytes.Buffer
		if err := Print(&buf, c); err != nil {
			t.Fatal(err)
		}
		LoadFS(fstest.MapFS{"p.conf": {Data: buf.Bytes()}}, "p.conf", LoadOptions{Read: ReadOptions{ConfigID: "kw", RandomSeed: 1, MaxLines: 1 << 14}})
	})
}

// TestLoadTrimmed: the config the agent keeps for its life holds no spare
// capacity in its instances or their address lists (parse's trimmed).
func TestLoadTrimmed(t *testing.T) {
	c, ds := probe(`vrrp_instance VI_1 {
	interface eth0
	virtual_router_id 1
	virtual_ipaddress {
		192.0.2.1/24
		192.0.2.2/24
		192.0.2.3/24
	}
	virtual_ipaddress_excluded {
		192.0.2.4/24
		192.0.2.5/24
		192.0.2.6/24
	}
}
vrrp_instance VI_2 {
	interface eth0
	virtual_router_id 2
	virtual_ipaddress {
		192.0.2.7/24
	}
}
vrrp_instance VI_3 {
	interface eth0
	virtual_router_id 3
	virtual_ipaddress {
		192.0.2.8/24
	}
}
`)
	if c == nil || ds.HasErrors() {
		t.Fatalf("load failed:\n%s", ds)
	}
	if len(c.Instances) != 3 || cap(c.Instances) != 3 {
		t.Errorf("instances: len %d cap %d, want 3 and 3", len(c.Instances), cap(c.Instances))
	}
	if in := c.Instances[0]; len(in.VIPs) != 3 || cap(in.VIPs) != 3 || len(in.ExcludedVIPs) != 3 || cap(in.ExcludedVIPs) != 3 {
		t.Errorf("VI_1 VIPs len %d cap %d, excluded len %d cap %d, want 3 each", len(in.VIPs), cap(in.VIPs), len(in.ExcludedVIPs), cap(in.ExcludedVIPs))
	}
}
