package tracing

import (
	"os"
	"regexp"
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/keepwatch/keepwatch/engine/event"
)

// TestREADMESpans keeps README.md's span table equal to the span names
// events produce.
func TestREADMESpans(t *testing.T) {
	b, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	var doc []string
	for _, m := range regexp.MustCompile("(?m)^\\| `([a-z_.]+)` \\|").FindAllStringSubmatch(string(b), -1) {
		doc = append(doc, m[1])
	}
	var got []string
	for k := event.KindUnknown + 1; k.String() != "unknown"; k++ {
		n, _ := spanName(&event.Event{Kind: k})
		if !slices.Contains(got, n) {
			got = append(got, n)
		}
	}
	slices.Sort(doc)
	slices.Sort(got)
	if diff := cmp.Diff(doc, got); diff != "" {
		t.Errorf("README.md span table differs from spanName (-readme +code):\n%s", diff)
	}
}
