package kaconf

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/google/go-cmp/cmp"

	"github.com/keepwatch/keepwatch/engine/config"
)

var update = flag.Bool("update", false, "rewrite testdata/reader/*.golden")

// testOptions make reads deterministic.
var testOptions = ReadOptions{
	ConfigID:   "kw1",
	RandomSeed: 1,
	LookupEnv: func(k string) (string, bool) {
		if k == "KW_TEST" {
			return "from-env", true
		}
		return "", false
	},
}

// formatWord quotes a word when its text would not read back as one word.
func formatWord(w Word) string {
	if w.Text == "" || strings.ContainsAny(w.Text, " \t\"\\") || strconv.Quote(w.Text) != `"`+w.Text+`"` {
		return strconv.Quote(w.Text)
	}
	return w.Text
}

// format renders lines as `file:line:col word word …`, then the diagnostics
// and log notes.
func format(lines []Line, ds config.Diagnostics, logs []config.Diagnostic) string {
	var b strings.Builder
	for _, l := range lines {
		fmt.Fprintf(&b, "%s:%d:%d", l.Pos.File, l.Pos.Line, l.Pos.Col)
		for _, w := range l.Words {
			b.WriteByte(' ')
			b.WriteString(formatWord(w))
		}
		b.WriteByte('\n')
	}
	if len(ds) > 0 {
		b.WriteString("--- diagnostics\n")
		b.WriteString(ds.String())
	}
	if len(logs) > 0 {
		b.WriteString("--- log\n")
		for _, d := range logs {
			b.WriteString(d.String())
			b.WriteByte('\n')
		}
	}
	return b.String()
}

func readFS(t testing.TB, fsys fstest.MapFS, name string) ([]Line, config.Diagnostics, []config.Diagnostic) {
	t.Helper()
	var logs []config.Diagnostic
	opts := testOptions
	opts.Log = func(d config.Diagnostic) { logs = append(logs, d) }
	lines, ds := ReadFS(fsys, name, opts)
	return lines, ds, logs
}

// TestGolden reads every testdata/reader/*.conf (include targets are *.inc)
// and compares the lines and diagnostics with the .golden file beside it.
func TestGolden(t *testing.T) {
	files, err := filepath.Glob("testdata/reader/*.conf")
	if err != nil || len(files) == 0 {
		t.Fatalf("no golden inputs: %v", err)
	}
	for _, f := range files {
		name := filepath.Base(f)
		t.Run(strings.TrimSuffix(name, ".conf"), func(t *testing.T) {
			var logs []config.Diagnostic
			opts := testOptions
			opts.Log = func(d config.Diagnostic) { logs = append(logs, d) }
			lines, ds := ReadFS(os.DirFS("testdata/reader"), name, opts)
			got := format(lines, ds, logs)
			golden := strings.TrimSuffix(f, ".conf") + ".golden"
			if *update {
				if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run with -update to create)", err)
			}
			if diff := cmp.Diff(string(want), got); diff != "" {
				t.Errorf("%s (-want +got):\n%s", name, diff)
			}
		})
	}
}

// TestRead checks the lexical rules one by one on in-memory files.
func TestRead(t *testing.T) {
	tests := []struct {
		name  string
		files fstest.MapFS
		want  string
	}{
		{
			name:  "one-line block",
			files: fstest.MapFS{"k.conf": {Data: []byte("virtual_ipaddress { 192.0.2.1/24 }\n")}},
			want:  "k.conf:1:1 virtual_ipaddress\nk.conf:1:19 {\nk.conf:1:21 192.0.2.1/24\nk.conf:1:34 }\n",
		},
		{
			name:  "comments and quotes",
			files: fstest.MapFS{"k.conf": {Data: []byte("a \"b # c\" d # e\nf 'g # h'\n x\\#y ! z\n")}},
			want:  "k.conf:1:1 a \"b # c\" d\nk.conf:2:1 f 'g\nk.conf:3:2 x#y\n",
		},
		{
			name:  "crlf tabs no final newline",
			files: fstest.MapFS{"k.conf": {Data: []byte("\ta\t b \r\n\r\nc")}},
			want:  "k.conf:1:2 a b\nk.conf:3:1 c\n",
		},
		{
			name:  "definitions",
			files: fstest.MapFS{"k.conf": {Data: []byte("$B=10.2.${S}\n$S=0\n${B}.1\n$S=7\n$B x\n${UNDEF}\n")}},
			want:  "k.conf:3:1 10.2.0.1\nk.conf:5:1 10.2.7 x\nk.conf:6:1 $\nk.conf:6:2 {\nk.conf:6:3 UNDEF\nk.conf:6:8 }\n",
		},
		{
			name:  "conditionals",
			files: fstest.MapFS{"k.conf": {Data: []byte("@kw1 a\n@kw2 b\n@^kw1 c\n@^kw2 d\n@kw1\n$C=@kw1\n$C e\n")}},
			want:  "k.conf:1:6 a\nk.conf:4:7 d\nk.conf:7:4 e\n",
		},
		{
			name:  "seq and lst",
			files: fstest.MapFS{"k.conf": {Data: []byte("~SEQ(i,2) ~LST(v,a,b) x$i$v ${i}${v}\n~SEQx(h, 9, 3, 15) ${h}\n~LST({p,q},{1,2},{3,4}) $p$q\n")}},
			want:  "k.conf:1:23 x$ia 1a\nk.conf:1:23 x$ib 1b\nk.conf:1:23 x$ia 2a\nk.conf:1:23 x$ib 2b\nk.conf:2:20 9\nk.conf:2:20 c\nk.conf:2:20 f\nk.conf:3:25 $p2\nk.conf:3:25 $p4\n",
		},
		{
			name:  "multi-line definition",
			files: fstest.MapFS{"k.conf": {Data: []byte("$M= \\\n  a ${N} \\\n  # skipped\n  b\n$N=1\n$M\n$N=2\nx $M\n")}},
			want:  "k.conf:6:1 a 1\nk.conf:6:1 b\nk.conf:8:1 x a 2\nk.conf:8:3 b\n",
		},
		{
			name: "include",
			files: fstest.MapFS{
				"etc/k.conf":        {Data: []byte("a\ninclude conf.d/*.conf\ninclude missing.conf\nb\n")},
				"etc/conf.d/1.conf": {Data: []byte("one { x }\n")},
				"etc/conf.d/2.conf": {Data: []byte("two\n")},
			},
			want: "etc/k.conf:1:1 a\netc/conf.d/1.conf:1:1 one\netc/conf.d/1.conf:1:5 {\netc/conf.d/1.conf:1:7 x\netc/conf.d/1.conf:1:9 }\netc/conf.d/2.conf:1:1 two\netc/k.conf:4:1 b\n--- diagnostics\netc/k.conf:3:9: warning: Config files missing 'missing.conf'.\n",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var name string
			for n := range tt.files {
				if strings.HasSuffix(n, "k.conf") {
					name = n
				}
			}
			lines, ds, _ := readFS(t, tt.files, name)
			if diff := cmp.Diff(tt.want, format(lines, ds, nil)); diff != "" {
				t.Errorf("-want +got:\n%s", diff)
			}
		})
	}
}

// TestRunaway checks that self-referencing definitions and huge generators
// stop with a diagnostic instead of running forever.
func TestRunaway(t *testing.T) {
	tests := map[string]string{
		"growing definition":   "$LONG=${LONG}${LONG}abcdefghij\n$LONG\n",
		"self multi-line":      "$M=\\\n x \\\n $M\n$M\n",
		"huge seq":             "~SEQ(i, 1, 1000000000) x$i\n",
		"huge seq empty body":  "~SEQ(i, 1, 9223372036854775807)\n",
		"nested seq":           "~SEQ(a,1,1000) ~SEQ(b,1,1000) ~SEQ(c,1,1000) x\n",
		"overflowing seq":      "~SEQ(i, 9223372036854775806, 9223372036854775807) x$i\n",
		"overflowing seq down": "~SEQ(i, -9223372036854775807, -1, -9223372036854775808) x$i\n",
		"include self":         "include k.conf\n",
		"definition of itself": "$A=$A\n$A\n",
		"generator in residue": "x { ~SEQ(i,1,1000000) y$i\n",
	}
	for name, conf := range tests {
		t.Run(name, func(t *testing.T) {
			opts := testOptions
			opts.MaxLines = 5000
			lines, ds := ReadFS(fstest.MapFS{"k.conf": {Data: []byte(conf)}}, "k.conf", opts)
			if len(lines) > opts.MaxLines {
				t.Errorf("%d lines, want at most %d", len(lines), opts.MaxLines)
			}
			if strings.Contains(name, "overflowing") {
				if len(lines) != 2 || len(ds) != 0 {
					t.Errorf("got %d lines and %v, want 2 lines and no diagnostics", len(lines), ds)
				}
				return
			}
			if !ds.HasErrors() {
				t.Errorf("no error for a runaway config; %d lines", len(lines))
			}
		})
	}
}
