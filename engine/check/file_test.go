package check

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/keepwatch/keepwatch/engine/config"
)

func TestFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "weight")
	for _, tc := range []struct {
		name    string
		content string // "-" for no file
		spec    config.FileSpec
		ok      bool
		weight  int
		setW    bool
	}{
		{"no weight, 0 is up", "0\n", config.FileSpec{}, true, 0, false},
		{"no weight, 1 is down", "1\n", config.FileSpec{}, false, 0, false},
		{"no weight reverse, 0 is down", "0", config.FileSpec{Reverse: true}, false, 0, false},
		{"no weight reverse, 3 is up", "3", config.FileSpec{Reverse: true}, true, 0, false},
		{"missing file is 0", "-", config.FileSpec{}, true, 0, false},
		{"garbage is 0", "abc", config.FileSpec{}, true, 0, false},
		{"weight 5 × 3", "3 trailing", config.FileSpec{Weight: 5}, true, 15, true},
		{"weight 5 × -2", "-2", config.FileSpec{Weight: 5}, true, -10, true},
		{"reverse weight", "4", config.FileSpec{Weight: 2, Reverse: true}, true, -8, true},
		{"fault", "-70000", config.FileSpec{Weight: 1}, false, -70000, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			os.Remove(path)
			if tc.content != "-" {
				if err := os.WriteFile(path, []byte(tc.content), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			spec := tc.spec
			tg := &Target{Type: config.FileCheck, TrackFile: path, File: &spec}
			reason := ""
			if !tc.ok {
				reason = "file"
			}
			r := probe(t, ProbeFile, tg, tc.ok, reason)
			if r.Weight != tc.weight || r.SetWeight != tc.setW {
				t.Errorf("weight %d set %v, want %d %v", r.Weight, r.SetWeight, tc.weight, tc.setW)
			}
		})
	}
}
