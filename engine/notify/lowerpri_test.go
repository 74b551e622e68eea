package notify

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/keepwatch/keepwatch/engine/config"
	"github.com/keepwatch/keepwatch/engine/event"
	"github.com/keepwatch/keepwatch/engine/vrrp"
)

// TestMasterRxLowerPri: a master hearing a lower priority runs
// notify_master_rx_lower_pri with its own arguments only, not the generic
// notify script, and writes MASTER_RX_LOWER_PRI with its own effective
// priority to notify_fifo. keepalived 2.2.7 in a namespace, master at
// priority 100 sent a priority-50 advert, ran `stamp lower` and wrote
// `INSTANCE "VI_1" MASTER_RX_LOWER_PRI 100` (vrrp_notify.c send_event_notify).
func TestMasterRxLowerPri(t *testing.T) {
	dir := t.TempDir()
	lower := recorder(t, dir, "lower.sh")
	generic := recorder(t, dir, "generic.sh")
	path := filepath.Join(dir, "notify.fifo")
	c := &config.Config{Global: config.Global{ScriptUser: me(t), NotifyFIFO: &config.FIFO{Path: path}}}
	c.Instances = []config.Instance{{Name: "VI_1", Notify: config.Notify{
		MasterRxLowerPri: cmd(lower, "lower"),
		Any:              cmd(generic),
	}}, {Name: "VI_2"}}
	n, rec, _ := start(t, c, Options{})
	waitFile(t, path)
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()

	n.Emit(transition("VI_1", vrrp.StateMaster, 100))
	n.Emit(event.Event{Kind: event.KindMasterRxLowerPri, ID: event.NewID(), Instance: "VI_1", Priority: 100, Value: 50})
	// An instance without the script still gets its FIFO line, as keepalived
	// calls send_event_notify when a FIFO is configured.
	n.Emit(event.Event{Kind: event.KindMasterRxLowerPri, ID: event.NewID(), Instance: "VI_2", Priority: 90, Value: 80})
	want := []string{"INSTANCE \"VI_1\" MASTER 100\n", "INSTANCE \"VI_1\" MASTER_RX_LOWER_PRI 100\n",
		"INSTANCE \"VI_2\" MASTER_RX_LOWER_PRI 90\n"}
	if d := cmp.Diff(want, readLines(t, f, len(want))); d != "" {
		t.Errorf("notify_fifo (-want +got):\n%s", d)
	}
	waitRuns(t, rec, 2)
	if d := cmp.Diff([]string{"[lower]"}, runs(t, lower)); d != "" {
		t.Errorf("notify_master_rx_lower_pri argv (-want +got):\n%s", d)
	}
	if d := cmp.Diff([]string{"[INSTANCE][VI_1][MASTER][100]"}, runs(t, generic)); d != "" {
		t.Errorf("generic notify ran for the lower priority (-want +got):\n%s", d)
	}
}
