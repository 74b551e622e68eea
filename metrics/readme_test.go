package metrics

import (
	"bufio"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

type familyDoc struct {
	Type   string
	Labels []string
}

// readmeFamilies parses the families table of README.md.
func readmeFamilies(t *testing.T) map[string]familyDoc {
	t.Helper()
	f, err := os.Open("README.md")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	out := map[string]familyDoc{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, "| `keepwatch_") {
			continue
		}
		cells := strings.Split(line, "|")
		if len(cells) < 5 {
			t.Fatalf("README.md: short table row %q", line)
		}
		name := strings.Trim(strings.TrimSpace(cells[1]), "`")
		var labels []string
		for _, l := range strings.Split(cells[3], ",") {
			l = strings.Trim(strings.TrimSpace(l), "`")
			switch l {
			case "":
			case "*id*":
				labels = append(labels, identity...)
			default:
				labels = append(labels, l)
			}
		}
		slices.Sort(labels)
		if _, dup := out[name]; dup {
			t.Errorf("README.md lists %s twice", name)
		}
		out[name] = familyDoc{Type: strings.TrimSpace(cells[2]), Labels: labels}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestREADME keeps README.md's table equal to what the registry exports,
// every family exercised by the scripted scenario.
func TestREADME(t *testing.T) {
	m, reg := newTestMetrics(t)
	for _, e := range scenario() {
		m.Emit(e)
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]familyDoc{}
	for _, mf := range mfs {
		var labels []string
		if len(mf.GetMetric()) > 0 {
			for _, lp := range mf.GetMetric()[0].GetLabel() {
				labels = append(labels, lp.GetName())
			}
		}
		slices.Sort(labels)
		got[mf.GetName()] = familyDoc{Type: strings.ToLower(mf.GetType().String()), Labels: labels}
	}
	want := readmeFamilies(t)
	if len(want) < 40 {
		t.Fatalf("README.md: parsed only %d families", len(want))
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("README.md table differs from the registry (-readme +registry):\n%s", diff)
	}
}
