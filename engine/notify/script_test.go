package notify

import (
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/keepwatch/keepwatch/engine/config"
	"github.com/keepwatch/keepwatch/engine/event"
	"github.com/keepwatch/keepwatch/engine/vrrp"
)

func transition(inst string, to vrrp.State, prio int) event.Event {
	return event.Event{Kind: event.KindTransition, ID: event.NewID(), Instance: inst, From: vrrp.StateBackup,
		To: to, Priority: prio, Reason: event.ReasonMasterDown}
}

// TestInstanceScripts runs real scripts and checks the exact argv of each:
// notify_<state> gets its configured arguments only, notify gets them plus
// INSTANCE, the name, the state and the priority (vrrp_notify.c).
func TestInstanceScripts(t *testing.T) {
	dir := t.TempDir()
	state := recorder(t, dir, "state.sh")
	generic := recorder(t, dir, "generic.sh")
	c := &config.Config{Global: config.Global{ScriptUser: me(t)}}
	c.Instances = []config.Instance{{Name: "VI_1", Notify: config.Notify{
		Master: cmd(state, "to-master", "two words"),
		Backup: cmd(state, "to-backup"),
		Fault:  cmd(state, "to-fault"),
		Stop:   cmd(state, "to-stop"),
		Any:    cmd(generic, "--flag"),
	}}}
	n, rec, _ := start(t, c, Options{})

	n.Emit(transition("VI_1", vrrp.StateMaster, 150))
	n.Emit(transition("VI_1", vrrp.StateBackup, 100))
	n.Emit(transition("VI_1", vrrp.StateFault, 0))
	n.Emit(transition("VI_1", vrrp.StateStop, 100))
	n.Emit(transition("VI_1", vrrp.StateInit, 100)) // not notified
	n.Emit(transition("VI_9", vrrp.StateMaster, 1)) // not configured
	got := waitRuns(t, rec, 8)

	wantState := []string{"[to-master][two words]", "[to-backup]", "[to-fault]", "[to-stop]"}
	if d := cmp.Diff(wantState, runs(t, state)); d != "" {
		t.Errorf("notify_<state> argv (-want +got):\n%s", d)
	}
	wantGeneric := []string{
		"[--flag][INSTANCE][VI_1][MASTER][150]",
		"[--flag][INSTANCE][VI_1][BACKUP][100]",
		"[--flag][INSTANCE][VI_1][FAULT][0]",
		"[--flag][INSTANCE][VI_1][STOP][100]",
	}
	if d := cmp.Diff(wantGeneric, runs(t, generic)); d != "" {
		t.Errorf("notify argv (-want +got):\n%s", d)
	}
	for _, e := range got {
		if !e.OK || e.ExitCode != 0 || e.Instance != "VI_1" || e.Cause == 0 || e.Duration <= 0 {
			t.Errorf("notify run event %+v", e)
		}
	}
	// Order within the instance: notify_master, then notify, then the next state's.
	if got[0].Name != state || got[1].Name != generic || got[2].Name != state {
		t.Errorf("run order %q %q %q", got[0].Name, got[1].Name, got[2].Name)
	}
}

// TestGroupScripts checks a sync group's scripts: GROUP and priority 0.
func TestGroupScripts(t *testing.T) {
	dir := t.TempDir()
	state := recorder(t, dir, "state.sh")
	generic := recorder(t, dir, "generic.sh")
	c := &config.Config{Global: config.Global{ScriptUser: me(t)}}
	c.SyncGroups = []config.SyncGroup{{Name: "G1", Members: []string{"VI_1"}, Notify: config.Notify{
		Master: cmd(state, "g-master"), Any: cmd(generic)}}}
	n, rec, _ := start(t, c, Options{})
	n.GroupChanged(GroupTransition{Group: "G1", From: vrrp.StateBackup, To: vrrp.StateMaster})
	n.GroupChanged(GroupTransition{Group: "G1", From: vrrp.StateMaster, To: vrrp.StateBackup})
	got := waitRuns(t, rec, 3)
	if d := cmp.Diff([]string{"[g-master]"}, runs(t, state)); d != "" {
		t.Errorf("group notify_master (-want +got):\n%s", d)
	}
	want := []string{"[GROUP][G1][MASTER][0]", "[GROUP][G1][BACKUP][0]"}
	if d := cmp.Diff(want, runs(t, generic)); d != "" {
		t.Errorf("group notify (-want +got):\n%s", d)
	}
	if got[0].Instance != "G1" {
		t.Errorf("event names %q, want the group", got[0].Instance)
	}
}

func lvsConfig(up, down, qup, qdown *config.Script) *config.Config {
	c := &config.Config{}
	c.VirtualServers = []config.VirtualServer{{
		Addr: netip.MustParseAddr("192.0.2.1"), Port: 80, Protocol: "TCP", Quorum: 2, Hysteresis: 0,
		QuorumUp: qup, QuorumDown: qdown, SorryServer: nil,
		RealServers: []config.RealServer{
			{Addr: netip.MustParseAddr("198.51.100.1"), Port: 8080, Weight: 1, NotifyUp: up, NotifyDown: down},
			{Addr: netip.MustParseAddr("198.51.100.2"), Weight: 1, NotifyUp: up, NotifyDown: down},
		},
	}}
	return c
}

// TestLVSScripts checks notify_up/notify_down and quorum_up/quorum_down,
// only on changes of state (a weight change re-emits the same state), and
// the startup state only with rs_init_notifies.
func TestLVSScripts(t *testing.T) {
	dir := t.TempDir()
	rs := recorder(t, dir, "rs.sh")
	q := recorder(t, dir, "q.sh")
	c := lvsConfig(cmd(rs, "up"), cmd(rs, "down"), cmd(q, "quorum", "up"), cmd(q, "quorum", "down"))
	c.Global.ScriptUser = me(t)
	n, rec, _ := start(t, c, Options{})
	svc := "192.0.2.1:80/tcp"
	rsEv := func(target string, ok bool, reason event.Reason) event.Event {
		return event.Event{Kind: event.KindRealServer, ID: event.NewID(), Service: svc, Target: target, OK: ok, Value: 1, Reason: reason}
	}
	n.Emit(rsEv("198.51.100.1:8080", true, event.ReasonStartup)) // no rs_init_notifies: silent
	n.Emit(rsEv("198.51.100.2:80", true, event.ReasonStartup))
	n.Emit(event.Event{Kind: event.KindQuorum, Service: svc, OK: true, Value: 2, Reason: event.ReasonStartup})
	n.Emit(rsEv("198.51.100.1:8080", true, ""))  // weight change only: silent
	n.Emit(rsEv("198.51.100.1:8080", false, "")) // down
	n.Emit(event.Event{Kind: event.KindQuorum, Service: svc, OK: false, Value: 1})
	n.Emit(rsEv("198.51.100.1:8080", true, "")) // up
	n.Emit(event.Event{Kind: event.KindQuorum, Service: svc, OK: true, Value: 2})
	n.Emit(rsEv("198.51.100.9:80", false, "")) // unknown real server
	got := waitRuns(t, rec, 4)
	time.Sleep(50 * time.Millisecond)
	if d := cmp.Diff([]string{"[down]", "[up]"}, runs(t, rs)); d != "" {
		t.Errorf("real server scripts (-want +got):\n%s", d)
	}
	if d := cmp.Diff([]string{"[quorum][down]", "[quorum][up]"}, runs(t, q)); d != "" {
		t.Errorf("quorum scripts (-want +got):\n%s", d)
	}
	if got[0].Service != svc || got[0].Target != "198.51.100.1:8080" {
		t.Errorf("event %+v", got[0])
	}
	if n := len(rec.Of(event.KindNotifyRun)); n != 4 {
		t.Errorf("%d runs, want 4", n)
	}
}

func TestRSInitNotifies(t *testing.T) {
	dir := t.TempDir()
	rs := recorder(t, dir, "rs.sh")
	c := lvsConfig(cmd(rs, "up"), cmd(rs, "down"), nil, nil)
	c.Global.ScriptUser, c.Global.RSInitNotifies = me(t), true
	n, rec, _ := start(t, c, Options{})
	n.Emit(event.Event{Kind: event.KindRealServer, Service: "192.0.2.1:80/tcp", Target: "198.51.100.1:8080", OK: true, Reason: event.ReasonStartup})
	n.Emit(event.Event{Kind: event.KindRealServer, Service: "192.0.2.1:80/tcp", Target: "198.51.100.2:80", OK: false, Reason: event.ReasonStartup})
	waitRuns(t, rec, 1)
	time.Sleep(50 * time.Millisecond)
	if d := cmp.Diff([]string{"[up]"}, runs(t, rs)); d != "" {
		t.Errorf("rs_init_notifies: only the up server (-want +got):\n%s", d)
	}
}

// TestHangingScriptIsolated: a script that hangs for one instance must not
// delay another instance's script.
func TestHangingScriptIsolated(t *testing.T) {
	dir := t.TempDir()
	hang := writeScript(t, dir, "hang.sh", `touch "$0.started"; exec sleep 30`)
	fast := recorder(t, dir, "fast.sh")
	c := &config.Config{Global: config.Global{ScriptUser: me(t)}}
	c.Instances = []config.Instance{
		{Name: "VI_A", Notify: config.Notify{Master: cmd(hang)}},
		{Name: "VI_B", Notify: config.Notify{Master: cmd(fast, "b")}},
	}
	n, rec, stop := start(t, c, Options{DrainTimeout: 100 * time.Millisecond})
	n.Emit(transition("VI_A", vrrp.StateMaster, 100))
	waitFile(t, hang+".started")
	t0 := time.Now()
	n.Emit(transition("VI_B", vrrp.StateMaster, 100))
	e, ok := rec.Wait(5*time.Second, func(e event.Event) bool { return e.Kind == event.KindNotifyRun && e.Instance == "VI_B" })
	if !ok {
		t.Fatal("VI_B's script never ran")
	}
	if d := time.Since(t0); d > 2*time.Second {
		t.Errorf("VI_B's script took %v behind VI_A's hanging one", d)
	}
	if !e.OK || len(runs(t, fast)) != 1 {
		t.Errorf("VI_B run %+v, log %q", e, runs(t, fast))
	}
	if len(rec.Of(event.KindNotifyRun)) != 1 {
		t.Errorf("VI_A's script finished early: %+v", rec.Of(event.KindNotifyRun))
	}
	// Shutdown kills the hanging script after the drain timeout and reports it.
	stop()
	var a []event.Event
	for _, e := range rec.Of(event.KindNotifyRun) {
		if e.Instance == "VI_A" {
			a = append(a, e)
		}
	}
	if len(a) != 1 || a[0].OK {
		t.Errorf("VI_A after shutdown: %+v", a)
	}
}

func waitFile(t *testing.T, p string) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		if _, err := os.Stat(p); err == nil {
			return
		}
	}
	t.Fatalf("%s never appeared", p)
}

// TestStopTimeout: a STOP script gets keepalived's one-second limit (here
// shortened), others the general one.
func TestStopTimeout(t *testing.T) {
	dir := t.TempDir()
	slow := writeScript(t, dir, "slow.sh", `exec sleep 5`)
	c := &config.Config{Global: config.Global{ScriptUser: me(t)}}
	c.Instances = []config.Instance{{Name: "VI_1", Notify: config.Notify{Stop: cmd(slow)}}}
	n, rec, _ := start(t, c, Options{StopTimeout: 100 * time.Millisecond})
	n.Emit(transition("VI_1", vrrp.StateStop, 100))
	got := waitRuns(t, rec, 1)
	if got[0].OK || got[0].Reason != "timeout" || got[0].Duration > 3*time.Second {
		t.Errorf("stop script: %+v", got[0])
	}
}

// TestShutdownRunsStop: STOP transitions emitted just before the cancel
// still run their scripts.
func TestShutdownRunsStop(t *testing.T) {
	dir := t.TempDir()
	stopScript := recorder(t, dir, "stop.sh")
	c := &config.Config{Global: config.Global{ScriptUser: me(t)}}
	c.Instances = []config.Instance{{Name: "VI_1", Notify: config.Notify{Stop: cmd(stopScript, "bye")}}}
	n, _, stop := start(t, c, Options{})
	n.Emit(transition("VI_1", vrrp.StateStop, 100))
	stop()
	if d := cmp.Diff([]string{"[bye]"}, runs(t, stopScript)); d != "" {
		t.Errorf("notify_stop at shutdown (-want +got):\n%s", d)
	}
}

// TestScriptSecurity: with enable_script_security, a root-run script in a
// world-writable directory is refused and reported, never run.
func TestScriptSecurity(t *testing.T) {
	needRoot(t)
	dir := filepath.Join(t.TempDir(), "open")
	if err := os.Mkdir(dir, 0o777); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o777); err != nil { // past the umask
		t.Fatal(err)
	}
	bad := recorder(t, dir, "bad.sh")
	goodDir := t.TempDir()
	good := recorder(t, goodDir, "good.sh")
	c := &config.Config{Global: config.Global{ScriptUser: "root", EnableScriptSecurity: true}}
	c.Instances = []config.Instance{
		{Name: "VI_1", Notify: config.Notify{Master: cmd(bad)}},
		{Name: "VI_2", Notify: config.Notify{Master: cmd(good)}},
	}
	n, rec, _ := start(t, c, Options{})
	n.Emit(transition("VI_1", vrrp.StateMaster, 100))
	n.Emit(transition("VI_2", vrrp.StateMaster, 100))
	waitRuns(t, rec, 2)
	for _, e := range rec.Of(event.KindNotifyRun) {
		switch e.Instance {
		case "VI_1":
			if e.OK || e.Reason != ReasonInsecure || e.Err == nil {
				t.Errorf("insecure script: %+v", e)
			}
		case "VI_2":
			if !e.OK {
				t.Errorf("secure script: %+v", e)
			}
		}
	}
	if r := runs(t, bad); r != nil {
		t.Errorf("insecure script ran: %q", r)
	}
}

// TestScriptUser: scripts run as script_user unless they name their own.
func TestScriptUser(t *testing.T) {
	needRoot(t)
	// t.TempDir's parent is 0700: nobody could not reach a script there.
	dir, err := os.MkdirTemp("", "kwnotify")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	out := filepath.Join(dir, "out")
	if err := os.Mkdir(out, 0o777); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{dir, out} {
		if err := os.Chmod(p, map[string]os.FileMode{dir: 0o755, out: 0o777}[p]); err != nil {
			t.Fatal(err)
		}
	}
	id := writeScript(t, dir, "id.sh", `id -u > "`+out+`/$1"`)
	c := &config.Config{Global: config.Global{ScriptUser: "nobody"}}
	own := cmd(id, "own")
	own.User = "root"
	c.Instances = []config.Instance{{Name: "VI_1", Notify: config.Notify{Master: cmd(id, "global"), Any: own}}}
	n, rec, _ := start(t, c, Options{})
	n.Emit(transition("VI_1", vrrp.StateMaster, 100))
	waitRuns(t, rec, 2)
	for file, want := range map[string]string{"global": "65534", "own": "0"} {
		b, err := os.ReadFile(filepath.Join(out, file))
		if err != nil {
			t.Fatal(err)
		}
		if got := strings.TrimSpace(string(b)); got != want {
			t.Errorf("%s script ran as uid %s, want %s", file, got, want)
		}
	}
}

// TestUpdate: after a reload, events use the new config's scripts.
func TestUpdate(t *testing.T) {
	dir := t.TempDir()
	old := recorder(t, dir, "old.sh")
	neu := recorder(t, dir, "new.sh")
	conf := func(s string) *config.Config {
		c := &config.Config{Global: config.Global{ScriptUser: me(t)}}
		c.Instances = []config.Instance{{Name: "VI_1", Notify: config.Notify{Master: cmd(s)}}}
		return c
	}
	n, rec, _ := start(t, conf(old), Options{})
	n.Emit(transition("VI_1", vrrp.StateMaster, 100))
	waitRuns(t, rec, 1)
	n.Update(conf(neu))
	n.Emit(transition("VI_1", vrrp.StateMaster, 100))
	waitRuns(t, rec, 2)
	if len(runs(t, old)) != 1 || len(runs(t, neu)) != 1 {
		t.Errorf("old ran %d, new ran %d; want 1 and 1", len(runs(t, old)), len(runs(t, neu)))
	}
	if err := n.Run(t.Context()); err == nil {
		t.Error("a second Run did not fail")
	}
}
