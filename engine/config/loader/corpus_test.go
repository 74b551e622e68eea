package loader

import (
	"bufio"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/keepwatch/keepwatch/engine/config"
)

// TestCorpusRunsWhatKeepalivedRuns: every real-world config keepalived
// 2.2.7 keeps running, keepwatch run starts too (the loader and
// config.Admit; no network). The corpus lives outside the repository and
// is read from KEEPWATCH_CORPUS (.ci/run sets it when the corpus sits
// beside the clone); its MANIFEST.tsv holds keepalived -t's exit code for each file
// run with the interfaces it names present.
//
// keepalived -t exits 0, 5 or 6 for a config it would run, and 2 where it
// stops reading. One kind of file it exits 5 for still stops the daemon:
// an instance without a valid virtual_router_id ("the virtual router id
// must be set", permanent error CONFIG) [verified 2.2.7 by running every
// corpus file in a namespace]; keepwatch must refuse those, and only those.
func TestCorpusRunsWhatKeepalivedRuns(t *testing.T) {
	dir := os.Getenv("KEEPWATCH_CORPUS")
	if dir == "" {
		t.Log("corpus not configured: not run (set KEEPWATCH_CORPUS to a corpus directory with MANIFEST.tsv)")
		return
	}
	f, err := os.Open(filepath.Join(dir, "MANIFEST.tsv"))
	if err != nil {
		t.Fatalf("KEEPWATCH_CORPUS=%s: %v", dir, err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	var cols map[string]int
	kaRuns, kwRuns, both := 0, 0, 0
	for sc.Scan() {
		rec := strings.Split(sc.Text(), "\t")
		if cols == nil {
			cols = map[string]int{}
			for i, c := range rec {
				cols[c] = i
			}
			for _, need := range []string{"file", "folder", "exit_code_with_interfaces_present"} {
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
		// templated/ holds unfilled templates, not configs anyone runs.
		if folder := get("folder"); folder != "valid" && folder != "rejected" {
			continue
		}
		switch get("exit_code_with_interfaces_present") {
		case "0", "5", "6":
		default:
			continue
		}
		file := get("file")
		c, ds := Load(filepath.Join(dir, file), Options{})
		err := config.Admit(c, ds, nil, false)
		if stopsKeepalived(ds) {
			if err == nil {
				t.Errorf("%s: keepalived stops on an instance without a valid VRID; keepwatch runs it", file)
			}
			continue
		}
		kaRuns++
		if err != nil {
			t.Errorf("%s: keepalived runs it; keepwatch refuses it: %v", file, err)
			continue
		}
		kwRuns++
		if c != nil && len(c.Instances)+len(c.VirtualServers) > 0 {
			both++
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if kaRuns == 0 {
		t.Fatalf("no runnable config in %s/MANIFEST.tsv", dir)
	}
	t.Logf("configs keepalived 2.2.7 runs: %d; keepwatch runs: %d (%d with instances or virtual servers)", kaRuns, kwRuns, both)
}

// stopsKeepalived reports a config keepalived -t passes with exit 5 but
// whose daemon stops: an instance whose virtual_router_id is missing or
// out of range.
func stopsKeepalived(ds config.Diagnostics) bool {
	for _, d := range ds {
		if d.Keyword == "virtual_router_id" && d.Outcome() == config.Stops && strings.Contains(d.Message, "virtual_router_id") {
			return true
		}
	}
	return false
}
