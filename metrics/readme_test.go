package metrics

import (
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/keepwatch/keepwatch/metrics/metricstest"
)

type familyDoc = metricstest.Family

// readmeFamilies parses the families table of README.md.
func readmeFamilies(t *testing.T) map[string]familyDoc {
	t.Helper()
	out, err := metricstest.ReadmeFamilies("README.md")
	if err != nil {
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

// TestIdentityMatchesReader: what metricstest expands *id* to is the label
// set the collectors use.
func TestIdentityMatchesReader(t *testing.T) {
	if !slices.Equal(metricstest.Identity, identity) {
		t.Errorf("metricstest.Identity = %v, collectors use %v", metricstest.Identity, identity)
	}
}
