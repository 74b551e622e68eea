package kaconf

import (
	"bufio"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/keepwatch/keepwatch/engine/config"
)

// The corpus (KEEPWATCH_CORPUS, kept outside the repository) holds real
// keepalived.conf files sorted by what keepalived 2.2.7's -t said of them.
// These tests hold keepwatch to the same verdicts.

// inCI reports whether the test runs in CI, where nothing may skip.
func inCI() bool { return os.Getenv("CI") == "true" }

// manifestEntry is one row of MANIFEST.tsv.
type manifestEntry struct {
	File           string // relative to the corpus directory
	Folder         string
	FirstErrorLine string
	FirstRealError string
}

func readManifest(t testing.TB, dir string) []manifestEntry {
	t.Helper()
	f, err := os.Open(filepath.Join(dir, "MANIFEST.tsv"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	var cols map[string]int
	var out []manifestEntry
	for sc.Scan() {
		rec := strings.Split(sc.Text(), "\t")
		if cols == nil {
			cols = map[string]int{}
			for i, c := range rec {
				cols[c] = i
			}
			for _, need := range []string{"file", "folder", "first_error_line", "first_real_error"} {
				if _, ok := cols[need]; !ok {
					t.Fatalf("MANIFEST.tsv has no column %q", need)
				}
			}
			continue
		}
		get := func(c string) string {
			if i := cols[c]; i < len(rec) {
				return rec[i]
			}
			return ""
		}
		out = append(out, manifestEntry{File: get("file"), Folder: get("folder"),
			FirstErrorLine: get("first_error_line"), FirstRealError: get("first_real_error")})
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// lineRE matches keepalived's position prefix: "(FILE: Line N)" or "(Line N)".
var lineRE = regexp.MustCompile(`^\((?:.*: )?Line (\d+)\) (.*)$`)

// keepalivedLine finds the line keepalived names for its first real error:
// from the manifest when first_error_line is that error, otherwise by
// running keepalived -t on the file (the message alone carries no line).
// It returns 0 when keepalived names no line (e.g. missing braces).
func keepalivedLine(t *testing.T, path string, e manifestEntry) int {
	if m := lineRE.FindStringSubmatch(e.FirstErrorLine); m != nil && strings.TrimSpace(m[2]) == strings.TrimSpace(e.FirstRealError) {
		n, _ := strconv.Atoi(m[1])
		return n
	}
	bin, err := exec.LookPath("keepalived")
	if err != nil {
		if inCI() {
			t.Fatalf("keepalived not installed: %v", err)
		}
		t.Skipf("keepalived not installed: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	out, _ := exec.CommandContext(ctx, bin, "-t", "-l", "-f", path).CombinedOutput()
	for _, l := range strings.Split(string(out), "\n") {
		if m := lineRE.FindStringSubmatch(l); m != nil && strings.TrimSpace(m[2]) == strings.TrimSpace(e.FirstRealError) {
			n, _ := strconv.Atoi(m[1])
			return n
		}
	}
	return 0
}

// syntaxWarning reports whether keepalived's message is one keepwatch
// reports as a warning (keepalived.conf(5): unknown keywords only warn).
func syntaxWarning(msg string) bool {
	return strings.HasPrefix(msg, "Unknown keyword") || strings.HasPrefix(msg, "Unexpected '")
}

// TestLoadCorpus loads every corpus file: keepalived's valid/ files must
// give warnings at most, and each rejected/ file must be flagged on the line
// of keepalived's first real error (reference §1.1).
func TestLoadCorpus(t *testing.T) {
	dir := corpusDir(t)
	entries := readManifest(t, dir)
	var valid, validPass, rejected, rejectedPass int
	for _, e := range entries {
		path := filepath.Join(dir, e.File)
		switch e.Folder {
		case "valid":
			valid++
			_, ds := Load(path, LoadOptions{})
			var bad config.Diagnostics
			for _, d := range ds {
				if d.Severity >= config.Error {
					bad = append(bad, d)
				}
			}
			if len(bad) > 0 {
				t.Errorf("%s: keepalived accepts it, keepwatch reports:\n%s", e.File, bad)
				continue
			}
			validPass++
		case "rejected":
			rejected++
			line := keepalivedLine(t, path, e)
			_, ds := Load(path, LoadOptions{})
			want := config.Warning
			if !syntaxWarning(e.FirstRealError) {
				want = config.Error
			}
			ok := false
			for _, d := range ds {
				if d.Severity >= want && (line == 0 || d.Pos.Line == line && filepath.Base(d.Pos.File) == filepath.Base(path)) {
					ok = true
					break
				}
			}
			if !ok {
				t.Errorf("%s: keepalived reports %q on line %d; keepwatch reports:\n%s", e.File, e.FirstRealError, line, ds)
				continue
			}
			rejectedPass++
		}
	}
	t.Logf("corpus: valid %d/%d load without errors; rejected %d/%d flagged on keepalived's line",
		validPass, valid, rejectedPass, rejected)
	if valid == 0 || rejected == 0 {
		t.Fatalf("corpus has no valid (%d) or rejected (%d) files", valid, rejected)
	}
}

// samplesDir is where Debian's keepalived package puts its sample configs.
const samplesDir = "/usr/share/doc/keepalived/samples"

// samplesRejected are the Debian samples keepalived 2.2.7 itself reports
// errors for (keepalived -t), with the line: keepwatch must agree.
var samplesRejected = map[string][]int{
	// vrrp_script check_VI_0 has a script only under @high/@low.
	"keepalived.conf.conditional_conf": {13},
	// "to 192.168.100./24": VRRP parsed invalid IP.
	"keepalived.conf.vrrp.rules": {11, 26},
}

func TestDebianSamples(t *testing.T) {
	files, _ := filepath.Glob(filepath.Join(samplesDir, "keepalived.conf*"))
	if len(files) == 0 {
		if inCI() || !testing.Short() {
			t.Fatalf("no samples in %s: install the Debian keepalived package", samplesDir)
		}
		t.Skipf("no samples in %s", samplesDir)
	}
	for _, f := range files {
		base := filepath.Base(f)
		t.Run(base, func(t *testing.T) {
			c, ds := Load(f, LoadOptions{Read: ReadOptions{ConfigID: "sample"}})
			if c == nil {
				t.Fatalf("not loaded:\n%s", ds)
			}
			var errLines []int
			for _, d := range ds {
				if d.Severity >= config.Error {
					errLines = append(errLines, d.Pos.Line)
				}
			}
			want := samplesRejected[base]
			if !equalInts(errLines, want) {
				t.Errorf("error lines %v, keepalived 2.2.7 reports errors on %v:\n%s", errLines, want, ds)
			}
		})
	}
}

func equalInts(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
