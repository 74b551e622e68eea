package notify

import (
	"os"
	"path/filepath"
	"sort"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/keepwatch/keepwatch/engine/config"
	"github.com/keepwatch/keepwatch/engine/vrrp"
)

// TestDeletedByReload: instances a reload removes are announced as
// keepalived 2.2.7 announced them in a namespace (reload removing VI_1..3,
// keeping VI_4): without notify_deleted, `notify` and the FIFO get FAULT
// and neither notify_fault nor notify_stop runs; with `notify_deleted
// SCRIPT` the script runs with no arguments and they get DELETED; with a
// bare notify_deleted they get DELETED. An instance the reload keeps stops
// as usual (STOP, notify_stop).
func TestDeletedByReload(t *testing.T) {
	dir := t.TempDir()
	gen, flt, stp, del := recorder(t, dir, "gen.sh"), recorder(t, dir, "flt.sh"), recorder(t, dir, "stp.sh"), recorder(t, dir, "del.sh")
	fifo := filepath.Join(dir, "vrrp.fifo")
	conf := func(names ...string) *config.Config {
		all := map[string]config.Notify{
			"VI_1": {Any: cmd(gen), Fault: cmd(flt), Stop: cmd(stp)},
			"VI_2": {Any: cmd(gen), Fault: cmd(flt), Stop: cmd(stp), Deleted: cmd(del)},
			"VI_3": {Any: cmd(gen), Deleted: &config.Script{}},
			"VI_4": {Any: cmd(gen), Stop: cmd(stp)},
		}
		c := &config.Config{Global: config.Global{ScriptUser: me(t), VRRPNotifyFIFO: &config.FIFO{Path: fifo}}}
		for _, n := range names {
			c.Instances = append(c.Instances, config.Instance{Name: n, Notify: all[n]})
		}
		return c
	}
	n, rec, _ := start(t, conf("VI_1", "VI_2", "VI_3", "VI_4"), Options{})
	waitFile(t, fifo)
	f, err := os.Open(fifo)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, in := range []string{"VI_1", "VI_2", "VI_3", "VI_4"} {
		n.Emit(transition(in, vrrp.StateMaster, 100))
	}
	waitRuns(t, rec, 4) // the MASTER runs, before the reload
	// The reload: the agent calls Update, then stops what was removed.
	n.Update(conf("VI_4"))
	for _, in := range []string{"VI_1", "VI_2", "VI_3"} {
		n.Emit(transition(in, vrrp.StateStop, 100))
	}
	// Later, shutdown: VI_4 stops as usual.
	n.Emit(transition("VI_4", vrrp.StateStop, 100))
	waitRuns(t, rec, 4+3+1+2) // gen 4 MASTER, gen 3 deleted, del.sh, gen STOP + stp.sh for VI_4

	want := []string{`INSTANCE "VI_1" MASTER 100` + "\n", `INSTANCE "VI_2" MASTER 100` + "\n", `INSTANCE "VI_3" MASTER 100` + "\n",
		`INSTANCE "VI_4" MASTER 100` + "\n", `INSTANCE "VI_1" FAULT 100` + "\n", `INSTANCE "VI_2" DELETED 100` + "\n",
		`INSTANCE "VI_3" DELETED 100` + "\n", `INSTANCE "VI_4" STOP 100` + "\n"}
	if d := cmp.Diff(want, readLines(t, f, len(want))); d != "" {
		t.Errorf("vrrp_notify_fifo (-want +got):\n%s", d)
	}
	// Each instance has its own lane, so their runs interleave: compare sorted.
	got := runs(t, gen)
	sort.Strings(got)
	wantGen := []string{"[INSTANCE][VI_1][FAULT][100]", "[INSTANCE][VI_1][MASTER][100]", "[INSTANCE][VI_2][DELETED][100]",
		"[INSTANCE][VI_2][MASTER][100]", "[INSTANCE][VI_3][DELETED][100]", "[INSTANCE][VI_3][MASTER][100]",
		"[INSTANCE][VI_4][MASTER][100]", "[INSTANCE][VI_4][STOP][100]"}
	if d := cmp.Diff(wantGen, got); d != "" {
		t.Errorf("notify argv (-want +got):\n%s", d)
	}
	if d := cmp.Diff([]string{""}, runs(t, del)); d != "" {
		t.Errorf("notify_deleted argv (-want +got):\n%s", d)
	}
	if got := runs(t, flt); got != nil {
		t.Errorf("notify_fault ran for a deleted instance: %q", got)
	}
	if d := cmp.Diff([]string{""}, runs(t, stp)); d != "" {
		t.Errorf("notify_stop runs (-want +got): only VI_4's, at shutdown\n%s", d)
	}
}
