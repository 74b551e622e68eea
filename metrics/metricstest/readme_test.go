package metricstest

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
)

func TestReadmeFamilies(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "README.md")
	os.WriteFile(p, []byte("| name | type | labels | meaning |\n|---|---|---|---|\n"+
		"| `keepwatch_a_total` | counter | *id*, `reason` | a |\n| `keepwatch_b` | gauge |  | b |\n"), 0o644)
	got, err := ReadmeFamilies(p)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"family", "interface", "reason", "vrid", "vrrp_instance"}
	if a := got["keepwatch_a_total"]; a.Type != "counter" || !slices.Equal(a.Labels, want) {
		t.Errorf("a = %+v, want counter %v", a, want)
	}
	if b, ok := got["keepwatch_b"]; !ok || b.Type != "gauge" || len(b.Labels) != 0 || len(got) != 2 {
		t.Errorf("families = %+v", got)
	}
	os.WriteFile(p, []byte("| `keepwatch_b` | gauge |  | b |\n| `keepwatch_b` | gauge |  | b |\n"), 0o644)
	if _, err := ReadmeFamilies(p); err == nil {
		t.Error("a family listed twice must be an error")
	}
}
