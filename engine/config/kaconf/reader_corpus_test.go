package kaconf

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/keepwatch/keepwatch/engine/config"
)

// corpusPath returns the external corpus of real-world keepalived.conf files
// named by KEEPWATCH_CORPUS (.ci/run sets it when a corpus sits beside the
// clone). The corpus is not part of the repository, so it is optional.
func corpusPath() (string, bool) {
	c := os.Getenv("KEEPWATCH_CORPUS")
	if c == "" {
		return "", false
	}
	return c, true
}

// corpusDir returns the corpus directory, or ends the test as not run when
// KEEPWATCH_CORPUS is unset. A set variable naming a missing directory fails.
func corpusDir(t testing.TB) string {
	t.Helper()
	c, ok := corpusPath()
	if !ok {
		t.Skip("corpus not configured (KEEPWATCH_CORPUS unset): not run")
	}
	if _, err := os.Stat(filepath.Join(c, "MANIFEST.tsv")); err != nil {
		t.Fatalf("KEEPWATCH_CORPUS=%s: %v", c, err)
	}
	return c
}

func corpusFiles(t testing.TB, folders ...string) []string {
	t.Helper()
	c := corpusDir(t)
	var files []string
	for _, f := range folders {
		m, err := filepath.Glob(filepath.Join(c, f, "*"))
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, m...)
	}
	if len(files) == 0 {
		t.Fatalf("no corpus files in %s", c)
	}
	return files
}

// TestCorpus reads every real-world config keepalived 2.2.7 accepted or
// rejected: the reader must never fail fatally on them, every line must have
// a sane position, and the files keepalived found clean must not get a
// reader-level error (their errors are the keyword parser's business).
func TestCorpus(t *testing.T) {
	for _, f := range corpusFiles(t, "valid", "rejected") {
		t.Run(filepath.Base(filepath.Dir(f))+"/"+filepath.Base(f), func(t *testing.T) {
			lines, ds := Read(f, ReadOptions{ConfigID: "kw1", RandomSeed: 1})
			for _, d := range ds {
				if d.Severity == config.Fatal {
					t.Errorf("fatal: %v", d)
				}
				if strings.Contains(f, "/valid/") && d.Severity >= config.Error && !strings.Contains(d.Message, "include") && !strings.Contains(d.Message, "Config files") {
					t.Errorf("reader error on a config keepalived accepts: %v", d)
				}
			}
			if len(lines) == 0 {
				t.Errorf("no lines read")
			}
			checkPositions(t, lines)
		})
	}
}

func checkPositions(t testing.TB, lines []Line) {
	t.Helper()
	for _, l := range lines {
		if l.Pos.File == "" || l.Pos.Line < 1 || l.Pos.Col < 1 || len(l.Words) == 0 {
			t.Fatalf("bad line %+v", l)
		}
		for _, w := range l.Words {
			if w.Col < 1 {
				t.Fatalf("bad word %+v in %+v", w, l)
			}
		}
		if b := l.Keyword(); (b == "{" || b == "}") && len(l.Words) != 1 {
			t.Fatalf("brace not alone: %+v", l)
		}
	}
}

// FuzzRead feeds arbitrary bytes as a main file that may include a second
// in-memory file: no panic, bounded output, sane positions.
func FuzzRead(f *testing.F) {
	seeds, _ := filepath.Glob("testdata/reader/*.conf")
	oracle, _ := filepath.Glob("testdata/oracle/*.conf")
	seeds = append(seeds, oracle...)
	seeds = append(seeds, corpusFiles(f, "valid", "rejected", "templated")...)
	for _, s := range seeds {
		b, err := os.ReadFile(s)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b, []byte("included 1\n"))
	}
	f.Add([]byte("include b.conf\n~SEQ(i,3) $X\n$X=\\\n a$i {\\\n}\n"), []byte("include a.conf\n@kw1 $Y=1\n"))
	f.Fuzz(func(t *testing.T, a, b []byte) {
		fsys := fstest.MapFS{"a.conf": {Data: a}, "b.conf": {Data: b}, "d/c.conf": {Data: b}}
		opts := ReadOptions{ConfigID: "kw1", RandomSeed: 1, MaxLines: 2000, LookupEnv: func(string) (string, bool) { return "", false }}
		lines, _ := ReadFS(fsys, "a.conf", opts)
		if len(lines) > opts.MaxLines {
			t.Fatalf("%d lines over the limit", len(lines))
		}
		checkPositions(t, lines)
		for _, l := range lines {
			if _, err := l.QuotedWords(); err != nil {
				continue
			}
		}
	})
}

// genConfig writes n VRRP instances over ifaces interfaces, the way large
// keepalived configs are written: a multi-line definition expanded by ~SEQ.
func genConfig(n, ifaces int) []byte {
	var b strings.Builder
	b.WriteString("global_defs {\n  router_id bench\n}\n")
	b.WriteString("$INST= \\\nvrrp_instance VI_${IF}_${ID} { \\\n")
	b.WriteString("    state BACKUP \\\n    interface eth${IF} \\\n    virtual_router_id ${ID} \\\n")
	b.WriteString("    priority 100 \\\n    advert_int 1 \\\n    authentication { \\\n        auth_type PASS \\\n        auth_pass secret \\\n    } \\\n")
	b.WriteString("    virtual_ipaddress { \\\n        198.51.100.${ID}/24 dev eth${IF} \\\n    } \\\n")
	b.WriteString("    notify_master \"/etc/keepalived/notify.sh master ${IF} ${ID}\" \\\n}\n\n")
	per := n / ifaces
	fmt.Fprintf(&b, "~SEQ(IF, 0, %d) ~SEQ(ID, 1, %d) $INST\n", ifaces-1, per)
	return []byte(b.String())
}

// BenchmarkRead10k reads 10,000 instances across 40 interfaces generated
// with ~SEQ (about 170,000 lines).
func BenchmarkRead10k(b *testing.B) {
	fsys := fstest.MapFS{"k.conf": {Data: genConfig(10000, 40)}}
	opts := ReadOptions{ConfigID: "kw1", RandomSeed: 1}
	var lines []Line
	b.ReportAllocs()
	for b.Loop() {
		var ds config.Diagnostics
		lines, ds = ReadFS(fsys, "k.conf", opts)
		if len(ds) > 0 {
			b.Fatal(ds)
		}
	}
	if len(lines) < 10000*15 {
		b.Fatalf("only %d lines", len(lines))
	}
	b.ReportMetric(float64(len(lines)), "lines/op")

	// What the result holds on to, after garbage collection.
	lines = nil
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	lines, _ = ReadFS(fsys, "k.conf", opts)
	runtime.GC()
	runtime.ReadMemStats(&after)
	b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/1e6, "MB-retained")
	b.ReportMetric(float64(after.TotalAlloc-before.TotalAlloc)/1e6, "MB-allocated")
	runtime.KeepAlive(lines)
}
