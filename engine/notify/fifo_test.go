package notify

import (
	"bufio"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/keepwatch/keepwatch/engine/config"
	"github.com/keepwatch/keepwatch/engine/event"
	"github.com/keepwatch/keepwatch/engine/vrrp"
)

// readLines opens a FIFO for reading and returns the next n lines.
func readLines(t *testing.T, f *os.File, n int) []string {
	t.Helper()
	if err := f.SetReadDeadline(time.Now().Add(5 * time.Second)); err != nil {
		t.Fatal(err)
	}
	r := bufio.NewReader(f)
	var out []string
	for len(out) < n {
		l, err := r.ReadString('\n')
		if err != nil {
			t.Fatalf("after %q: %v", out, err)
		}
		out = append(out, l)
	}
	return out
}

func isFIFO(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.Mode()&os.ModeNamedPipe != 0
}

// TestFIFOs reads the three notify FIFOs for real: notify_fifo gets every
// line, vrrp_notify_fifo the VRRP ones, lvs_notify_fifo the LVS ones, each
// in keepalived's exact format. The VRRP FIFO's reader is its
// vrrp_notify_fifo_script, which gets the FIFO path as its last argument;
// the LVS FIFO has no reader while lines are written, and nothing blocks.
func TestFIFOs(t *testing.T) {
	dir := t.TempDir()
	all, vrrpPath, lvsPath := filepath.Join(dir, "all.fifo"), filepath.Join(dir, "vrrp.fifo"), filepath.Join(dir, "lvs.fifo")
	if err := syscall.Mkfifo(lvsPath, 0o600); err != nil { // pre-existing: must be kept
		t.Fatal(err)
	}
	reader := writeScript(t, dir, "reader.sh", `printf '%s|' "$@" > "$0.argv"; exec cat "$2" > "$0.out"`)
	c := lvsConfig(nil, nil, nil, nil)
	c.Global.ScriptUser = me(t)
	c.Global.NotifyFIFO = &config.FIFO{Path: all}
	c.Global.VRRPNotifyFIFO = &config.FIFO{Path: vrrpPath, Script: cmd(reader, "--from-keepwatch")}
	c.Global.LVSNotifyFIFO = &config.FIFO{Path: lvsPath}
	c.SyncGroups = []config.SyncGroup{{Name: "G1", Members: []string{"VI_1"}}}
	n, _, stop := start(t, c, Options{})

	waitFile(t, all)
	waitFile(t, vrrpPath)
	if !isFIFO(all) || !isFIFO(vrrpPath) {
		t.Fatal("notify FIFOs not created as FIFOs")
	}
	f, err := os.Open(all)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()

	n.Emit(transition("VI_1", vrrp.StateMaster, 100))
	n.GroupChanged(GroupTransition{Group: "G1", To: vrrp.StateBackup})
	n.Emit(event.Event{Kind: event.KindRealServer, Service: "192.0.2.1:80/tcp", Target: "198.51.100.1:8080", OK: false})
	n.Emit(event.Event{Kind: event.KindQuorum, Service: "192.0.2.1:80/tcp", OK: false, Value: 1})
	n.Emit(event.Event{Kind: event.KindRealServer, Service: "192.0.2.1:80/tcp", Target: "198.51.100.2:80", OK: false})
	n.Emit(transition("VI_1", vrrp.StateStop, 100))

	vrrpLines := []string{"INSTANCE \"VI_1\" MASTER 100\n", "GROUP \"G1\" BACKUP 0\n", "INSTANCE \"VI_1\" STOP 100\n"}
	lvsLines := []string{
		"RS [198.51.100.1]:tcp:8080 [192.0.2.1]:tcp:80 DOWN\n",
		"VS [192.0.2.1]:tcp:80 DOWN\n",
		"RS [198.51.100.2]:tcp:80 [192.0.2.1]:tcp:80 DOWN\n",
	}
	want := append(append(append([]string{}, vrrpLines[:2]...), lvsLines...), vrrpLines[2])
	if d := cmp.Diff(want, readLines(t, f, len(want))); d != "" {
		t.Errorf("notify_fifo (-want +got):\n%s", d)
	}

	// The LVS FIFO had no reader: its lines wait in the pipe.
	lf, err := os.Open(lvsPath)
	if err != nil {
		t.Fatal(err)
	}
	defer lf.Close()
	if d := cmp.Diff(lvsLines, readLines(t, lf, len(lvsLines))); d != "" {
		t.Errorf("lvs_notify_fifo (-want +got):\n%s", d)
	}

	// The reader script got the FIFO as its last argument and read the VRRP lines.
	var got string
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		b, _ := os.ReadFile(reader + ".out")
		if got = string(b); len(got) >= len(strings.Join(vrrpLines, "")) {
			break
		}
	}
	if d := cmp.Diff(strings.Join(vrrpLines, ""), got); d != "" {
		t.Errorf("vrrp_notify_fifo via its script (-want +got):\n%s", d)
	}
	if b, _ := os.ReadFile(reader + ".argv"); string(b) != "--from-keepwatch|"+vrrpPath+"|" {
		t.Errorf("fifo script argv %q", b)
	}

	stop()
	if _, err := os.Stat(all); !os.IsNotExist(err) {
		t.Errorf("created FIFO %s not removed at shutdown: %v", all, err)
	}
	if !isFIFO(lvsPath) {
		t.Errorf("pre-existing FIFO %s removed", lvsPath)
	}
}

// TestFIFOFullNeverBlocks: with no reader, a FIFO fills (64 KiB) and
// further lines fail and are counted, while the notifier carries on.
func TestFIFOFullNeverBlocks(t *testing.T) {
	dir := t.TempDir()
	fast := recorder(t, dir, "fast.sh")
	c := lvsConfig(nil, nil, nil, nil)
	c.Global.ScriptUser = me(t)
	c.Global.LVSNotifyFIFO = &config.FIFO{Path: filepath.Join(dir, "lvs.fifo")}
	c.Instances = []config.Instance{{Name: "VI_1", Notify: config.Notify{Master: cmd(fast)}}}
	const events = 4000 // ~50 bytes a line: well past the pipe's 64 KiB
	n, rec, _ := start(t, c, Options{QueueSize: events + 1})
	for i := range events {
		n.Emit(event.Event{Kind: event.KindRealServer, Service: "192.0.2.1:80/tcp", Target: "198.51.100.1:8080", OK: i%2 == 0})
	}
	n.Emit(transition("VI_1", vrrp.StateMaster, 100))
	waitRuns(t, rec, 1)
	if n.FIFOWriteErrors() == 0 {
		t.Error("no FIFO write errors counted for a full pipe")
	}
	if n.QueueDropped() != 0 {
		t.Errorf("%d events dropped", n.QueueDropped())
	}
}

// TestFIFOSamePath: a vrrp_notify_fifo equal to notify_fifo is ignored, as
// keepalived does, so lines are not written twice.
func TestFIFOSamePath(t *testing.T) {
	c := &config.Config{}
	c.Global.NotifyFIFO = &config.FIFO{Path: "/run/kw.fifo"}
	c.Global.VRRPNotifyFIFO = &config.FIFO{Path: "/run/kw.fifo"}
	c.Global.LVSNotifyFIFO = &config.FIFO{Path: "/run/kw-lvs.fifo"}
	p := compile(c)
	if p.fifos[fifoAll] == nil || p.fifos[fifoVRRP] != nil || p.fifos[fifoLVS] == nil {
		t.Errorf("fifos %v", p.fifos)
	}
}

// TestFIFOPriorityChanges: with notify_priority_changes (the instance's,
// its sync group's or the global vrrp_notify_priority_changes) a change of
// effective priority writes `INSTANCE "VI_1" BACKUP_PRIORITY 105` to the
// VRRP FIFOs, with the state the instance is in — the lines keepalived
// 2.2.7 wrote in a namespace with a track_file moving the priority:
// BACKUP 100, BACKUP_PRIORITY 105, MASTER 105, MASTER_PRIORITY 97, STOP 97.
// An instance without it, a change before the first transition and a
// repeat of the same priority write nothing.
func TestFIFOPriorityChanges(t *testing.T) {
	on, off := true, false
	for _, tc := range []struct {
		name  string
		setup func(c *config.Config)
	}{
		{"instance", func(c *config.Config) { c.Instances[0].Notify.PriorityChanges = &on }},
		{"sync group", func(c *config.Config) {
			c.SyncGroups = []config.SyncGroup{{Name: "G1", Members: []string{"VI_1"}, Notify: config.Notify{PriorityChanges: &on}}}
		}},
		{"global", func(c *config.Config) {
			c.Global.NotifyPriorityChanges = true
			c.Instances[1].Notify.PriorityChanges = &off // the instance's own setting wins
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "vrrp.fifo")
			c := &config.Config{Instances: []config.Instance{{Name: "VI_1"}, {Name: "VI_2"}}}
			c.Global.VRRPNotifyFIFO = &config.FIFO{Path: path}
			tc.setup(c)
			n, _, _ := start(t, c, Options{})
			waitFile(t, path)
			f, err := os.Open(path)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			prio := func(inst string, p int) event.Event {
				return event.Event{Kind: event.KindPriorityChanged, ID: event.NewID(), Instance: inst, Priority: p}
			}
			n.Emit(prio("VI_1", 90)) // before any transition: nothing
			n.Emit(transition("VI_1", vrrp.StateBackup, 100))
			n.Emit(transition("VI_2", vrrp.StateBackup, 100))
			n.Emit(prio("VI_1", 105))
			n.Emit(prio("VI_2", 105)) // VI_2 has it off: nothing
			n.Emit(prio("VI_1", 105)) // the same priority again: nothing
			n.Emit(transition("VI_1", vrrp.StateMaster, 105))
			n.Emit(prio("VI_1", 97))
			n.Emit(transition("VI_1", vrrp.StateStop, 97))
			want := []string{"INSTANCE \"VI_1\" BACKUP 100\n", "INSTANCE \"VI_2\" BACKUP 100\n",
				"INSTANCE \"VI_1\" BACKUP_PRIORITY 105\n", "INSTANCE \"VI_1\" MASTER 105\n",
				"INSTANCE \"VI_1\" MASTER_PRIORITY 97\n", "INSTANCE \"VI_1\" STOP 97\n"}
			if d := cmp.Diff(want, readLines(t, f, len(want))); d != "" {
				t.Errorf("vrrp_notify_fifo (-want +got):\n%s", d)
			}
		})
	}
}
