package kaconf

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/keepwatch/keepwatch/engine/config"
)

// The oracle: testdata/oracle/*.conf hold only unknown top-level keywords,
// so keepalived -t names the first word of every line it reads ("Unknown
// keyword 'w1'", "Unexpected '{'"). record.sh stored what keepalived 2.2.7
// said in *.out. The first line of each .conf says how to compare:
// "# oracle: lines" (words and line numbers), "# oracle: words" (words only:
// keepalived miscounts lines after a NUL or a long line), "# oracle: none"
// (known differences, documented in testdata/oracle/README.md).

var (
	reKeyword    = regexp.MustCompile(`^\((?:[^)]*: )?Line (\d+)\) (?:Unknown keyword '(.*)'|(Unexpected '\{') - ignoring)$`)
	reReaderDiag = regexp.MustCompile(`^\((?:[^)]*: )?Line (\d+)\) ((?:Unterminated quote|Unmatched quote|Invalid ~|~SEQ|Config files missing|Some config files missing|No config files matched|Configuration file|Extra '\}').*)$`)
)

// firstPass returns keepalived's output for the parent's reading of the
// files. Only the parent names lines of the top file "(Line N)" (the later
// passes read its copy and name it), so the first pass runs to the last such
// line, plus the unprefixed lines after it ("There are 1 missing '}'s").
// Every oracle config therefore ends with a line of its own.
func firstPass(out []string) []string {
	last := -1
	for i, l := range out {
		if strings.HasPrefix(l, "(Line ") {
			last = i
		}
	}
	end := last + 1
	for end < len(out) && !strings.HasPrefix(out[end], "(") {
		end++
	}
	return out[:end]
}

func readOut(t *testing.T, name string) (mode string, pass []string) {
	t.Helper()
	conf, err := os.ReadFile(filepath.Join("testdata/oracle", name))
	if err != nil {
		t.Fatal(err)
	}
	first, _, _ := strings.Cut(string(conf), "\n")
	mode = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(first), "# oracle:"))
	b, err := os.ReadFile(filepath.Join("testdata/oracle", strings.TrimSuffix(name, ".conf")+".out"))
	if err != nil {
		t.Fatalf("%v (run testdata/oracle/record.sh)", err)
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) < 2 || !strings.HasPrefix(lines[1], "exit ") {
		t.Fatalf("%s.out: no exit line", name)
	}
	return mode, firstPass(lines[2:])
}

// TestReaderOracle compares the reader with what keepalived 2.2.7 read.
func TestReaderOracle(t *testing.T) {
	confs, err := filepath.Glob("testdata/oracle/*.conf")
	if err != nil || len(confs) == 0 {
		t.Fatalf("no oracle configs: %v", err)
	}
	for _, c := range confs {
		name := filepath.Base(c)
		t.Run(strings.TrimSuffix(name, ".conf"), func(t *testing.T) {
			mode, pass := readOut(t, name)
			var logs []config.Diagnostic
			opts := testOptions
			opts.Log = func(d config.Diagnostic) { logs = append(logs, d) }
			lines, ds := ReadFS(os.DirFS("testdata/oracle"), name, opts)
			if mode == "none" {
				return
			}
			var want, got []string
			var wantDiags []string
			for _, l := range pass {
				if m := reKeyword.FindStringSubmatch(l); m != nil {
					w := m[2]
					if m[3] != "" {
						w = "{"
					}
					want = append(want, entry(mode, m[1], w))
				} else if m := reReaderDiag.FindStringSubmatch(l); m != nil {
					wantDiags = append(wantDiags, m[1]+": "+strings.ToLower(m[2]))
				}
			}
			for _, l := range lines {
				got = append(got, entry(mode, strconv.Itoa(l.Pos.Line), l.Keyword()))
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("first words (-keepalived +keepwatch):\n%s", diff)
			}
			have := map[string]bool{}
			for _, d := range append(ds, logs...) {
				have[strconv.Itoa(d.Pos.Line)+": "+strings.ToLower(d.Message)] = true
			}
			for _, w := range wantDiags {
				if !have[w] {
					t.Errorf("keepalived said (line %s, not in diagnostics or log)\nhave: %v", w, have)
				}
			}
		})
	}
}

func entry(mode, line, word string) string {
	if mode == "words" {
		return word
	}
	return line + " " + word
}

// TestReaderOracleCurrent runs the installed keepalived on the oracle configs and
// checks the recorded first passes still match (keepalived 2.2.7, the
// version Debian 12 ships; make deps installs it).
func TestReaderOracleCurrent(t *testing.T) {
	ka, err := exec.LookPath("keepalived")
	if err != nil {
		for _, p := range []string{"/usr/sbin/keepalived", "/sbin/keepalived"} {
			if _, err2 := os.Stat(p); err2 == nil {
				ka, err = p, nil
			}
		}
	}
	if err != nil {
		if os.Getenv("CI") == "" && testing.Short() {
			t.Skip("keepalived not installed")
		}
		t.Fatalf("keepalived not installed: %v", err)
	}
	v, _ := exec.Command(ka, "-v").CombinedOutput()
	if !strings.Contains(string(v), "v2.2.7") {
		t.Fatalf("oracle recorded with keepalived v2.2.7, found %q", firstLine(string(v)))
	}
	confs, _ := filepath.Glob("testdata/oracle/*.conf")
	for _, c := range confs {
		name := filepath.Base(c)
		t.Run(strings.TrimSuffix(name, ".conf"), func(t *testing.T) {
			_, want := readOut(t, name)
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			cmd := exec.CommandContext(ctx, ka, "-t", "-l", "-D", "-i", "kw1", "-f", name)
			cmd.Dir = "testdata/oracle"
			out, _ := cmd.CombinedOutput()
			var lines []string
			sc := bufio.NewScanner(strings.NewReader(string(out)))
			sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
			for sc.Scan() {
				lines = append(lines, sc.Text())
			}
			got := firstPass(lines)
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("keepalived's output changed; rerun record.sh (-recorded +now):\n%s", diff)
			}
		})
	}
}

func firstLine(s string) string {
	l, _, _ := strings.Cut(s, "\n")
	return fmt.Sprint(l)
}
