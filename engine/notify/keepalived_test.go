package notify

import (
	"bufio"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/vishvananda/netns"

	"github.com/keepwatch/keepwatch/engine/config"
	"github.com/keepwatch/keepwatch/engine/event"
	"github.com/keepwatch/keepwatch/engine/notify/smtptest"
	"github.com/keepwatch/keepwatch/engine/vrrp"
)

func runCmd(t *testing.T, args ...string) {
	t.Helper()
	if out, err := exec.Command(args[0], args[1:]...).CombinedOutput(); err != nil {
		t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// listenIn opens a TCP listener inside the named network namespace.
func listenIn(t *testing.T, ns, addr string) net.Listener {
	t.Helper()
	var l net.Listener
	if err := doInNS(t, ns, func() (err error) {
		l, err = net.Listen("tcp", addr)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	return l
}

// doInNS runs fn on this goroutine's OS thread switched into the named
// network namespace, and returns the thread to its own; a socket fn opens
// stays in that namespace.
func doInNS(t *testing.T, ns string, fn func() error) error {
	t.Helper()
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	orig, err := netns.Get()
	if err != nil {
		t.Fatal(err)
	}
	defer orig.Close()
	h, err := netns.GetFromName(ns)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	if err := netns.Set(h); err != nil {
		t.Fatal(err)
	}
	ferr := fn()
	if err := netns.Set(orig); err != nil {
		panic(fmt.Sprintf("cannot return to the original netns: %v", err))
	}
	return ferr
}

func serveMail(t *testing.T, l net.Listener, b *mailServer) { b.Serve(t, l) }

// fifoReader pre-creates a FIFO and reads its lines into a channel.
func fifoReader(t *testing.T, path string) <-chan string {
	t.Helper()
	if err := syscall.Mkfifo(path, 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(path, os.O_RDWR, 0) // RDWR: the open does not wait for a writer
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	lines := make(chan string, 64)
	go func() {
		r := bufio.NewReader(f)
		for {
			l, err := r.ReadString('\n')
			if err != nil {
				return
			}
			lines <- l
		}
	}()
	return lines
}

func nextLine(t *testing.T, lines <-chan string, timeout time.Duration) (string, bool) {
	t.Helper()
	select {
	case l := <-lines:
		return l, true
	case <-time.After(timeout):
		return "", false
	}
}

var fifoLineRe = regexp.MustCompile(`^(INSTANCE|GROUP) "([^"]+)" ([A-Z_]+) (\d+)\n$`)

// TestAgainstKeepalived runs the Debian keepalived 2.2.7 in a network
// namespace with notify scripts, a notify FIFO and SMTP alerts to a real
// SMTP server, then replays the transitions it reported through a
// Notifier with the same settings: FIFO lines, script argv and mail must
// be the same (mail headers but Date and keepwatch's added Message-ID).
func TestAgainstKeepalived(t *testing.T) {
	needRoot(t)
	bin, err := exec.LookPath("keepalived")
	if err != nil {
		if os.Getenv("CI") == "true" || !testing.Short() {
			t.Fatalf("keepalived not installed (deploy/test-deps.sh installs it): %v", err)
		}
		t.Skip("keepalived not installed")
	}
	ns := fmt.Sprintf("kwntf%06x", rand.Uint32()&0xffffff)
	runCmd(t, "ip", "netns", "add", ns)
	t.Cleanup(func() { _ = exec.Command("ip", "netns", "del", ns).Run() })
	ip := func(args ...string) { runCmd(t, append([]string{"ip", "-n", ns}, args...)...) }
	ip("link", "set", "lo", "up")
	ip("link", "add", "kwna", "type", "veth", "peer", "name", "kwnb")
	ip("addr", "add", "192.0.2.1/24", "dev", "kwna")
	ip("link", "set", "kwna", "up")
	ip("link", "set", "kwnb", "up")

	// Two real SMTP servers on the same port: one in the namespace for
	// keepalived, one here for keepwatch.
	kwSrv, kaSrv := &mailServer{}, &mailServer{}
	hl, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := hl.Addr().(*net.TCPAddr).Port
	serveMail(t, hl, kwSrv)
	serveMail(t, listenIn(t, ns, "127.0.0.1:"+strconv.Itoa(port)), kaSrv)

	kaDir, kwDir := t.TempDir(), t.TempDir()
	kaRec, kwRec := recorder(t, kaDir, "rec.sh"), recorder(t, kwDir, "rec.sh")
	kaFIFO, kwFIFO := filepath.Join(kaDir, "notify.fifo"), filepath.Join(kwDir, "notify.fifo")
	kaLines, kwLines := fifoReader(t, kaFIFO), fifoReader(t, kwFIFO)

	conf := fmt.Sprintf(`global_defs {
	router_id lb1
	notification_email {
		ops@example.com
		noc@example.org
	}
	notification_email_from keepwatch@example.net
	smtp_server 127.0.0.1 %d
	smtp_helo_name lb1.example.net
	smtp_connect_timeout 5
	notify_fifo %s
	script_user root
	vrrp_version 3
}
vrrp_instance VI_1 {
	state BACKUP
	interface kwna
	virtual_router_id 51
	priority 100
	advert_int 0.1
	virtual_ipaddress {
		192.0.2.100/24
	}
	notify_master "%s to-master 'two words'"
	notify_backup "%s to-backup"
	notify_stop "%s to-stop"
	notify "%s generic"
	notify_master_rx_lower_pri "%s lower"
	smtp_alert
}
vrrp_instance VI_2 {
	state BACKUP
	interface kwna
	virtual_router_id 52
	priority 100
	advert_int 0.1
	virtual_ipaddress {
		192.0.2.101/24
	}
}
vrrp_sync_group G1 {
	group {
		VI_1
		VI_2
	}
	notify_master "%s group-master"
	notify "%s group-generic"
	smtp_alert
}
`, port, kaFIFO, kaRec, kaRec, kaRec, kaRec, kaRec, kaRec, kaRec)
	confPath := filepath.Join(kaDir, "keepalived.conf")
	if err := os.WriteFile(confPath, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	ka := exec.Command("ip", "netns", "exec", ns, bin, "-n", "-l", "-D", "-P", "-f", confPath,
		"-p", filepath.Join(kaDir, "keepalived.pid"), "-r", filepath.Join(kaDir, "vrrp.pid"))
	var kaOut strings.Builder
	ka.Stdout, ka.Stderr = &kaOut, &kaOut
	if err := ka.Start(); err != nil {
		t.Fatal(err)
	}
	kaDone := make(chan struct{})
	go func() { _ = ka.Wait(); close(kaDone) }()
	t.Cleanup(func() {
		_ = ka.Process.Kill()
		<-kaDone
	})

	// Collect keepalived's FIFO lines until the group is MASTER, stop it,
	// then take what it wrote until it exited.
	var lines []string
	for {
		l, ok := nextLine(t, kaLines, 10*time.Second)
		if !ok {
			t.Fatalf("keepalived never reported the group MASTER; lines %q\n%s", lines, kaOut.String())
		}
		lines = append(lines, l)
		if l == "GROUP \"G1\" MASTER 0\n" {
			break
		}
	}
	// A lower priority heard by the master: notify_master_rx_lower_pri
	// and a MASTER_RX_LOWER_PRI line with its own priority.
	sendLowerAdvert(t, ns, "kwnb", 51, 50, 100*time.Millisecond, netip.MustParseAddr("192.0.2.100"))
	for {
		l, ok := nextLine(t, kaLines, 5*time.Second)
		if !ok {
			t.Fatalf("keepalived wrote no MASTER_RX_LOWER_PRI line; lines %q\n%s", lines, kaOut.String())
		}
		lines = append(lines, l)
		if strings.Contains(l, "MASTER_RX_LOWER_PRI") {
			break
		}
	}
	// Let its mails and scripts finish before stopping it.
	mastered := len(lines)
	settle(func() int { return len(kaSrv.Mails()) + len(runs(t, kaRec)) })
	if err := ka.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-kaDone:
	case <-time.After(10 * time.Second):
		t.Fatalf("keepalived did not stop\n%s", kaOut.String())
	}
	for {
		l, ok := nextLine(t, kaLines, 300*time.Millisecond)
		if !ok {
			break
		}
		lines = append(lines, l)
	}
	if len(lines) == mastered {
		t.Fatalf("keepalived wrote nothing on stopping\n%s", kaOut.String())
	}

	// Replay through keepwatch.
	c := &config.Config{Global: config.Global{RouterID: "lb1",
		NotificationEmail: []string{"ops@example.com", "noc@example.org"}, NotificationEmailFrom: "keepwatch@example.net",
		SMTPServer: "127.0.0.1", SMTPPort: port, SMTPHeloName: "lb1.example.net", SMTPConnectTimeout: 5 * time.Second,
		NotifyFIFO: &config.FIFO{Path: kwFIFO}, ScriptUser: "root"}}
	c.Instances = []config.Instance{{Name: "VI_1", Notify: config.Notify{
		Master: &config.Script{Args: []string{kwRec, "to-master", "two words"}},
		Backup: cmd(kwRec, "to-backup"), Stop: cmd(kwRec, "to-stop"), Any: cmd(kwRec, "generic"),
		MasterRxLowerPri: cmd(kwRec, "lower"),
		SMTPAlert:        ptr(true)}}, {Name: "VI_2"}}
	c.SyncGroups = []config.SyncGroup{{Name: "G1", Members: []string{"VI_1", "VI_2"}, Notify: config.Notify{
		Master: cmd(kwRec, "group-master"), Any: cmd(kwRec, "group-generic"), SMTPAlert: ptr(true)}}}
	n, rec, stop := start(t, c, Options{})
	for _, l := range lines {
		m := fifoLineRe.FindStringSubmatch(l)
		if m == nil {
			t.Fatalf("keepalived FIFO line %q", l)
		}
		to := map[string]vrrp.State{"MASTER": vrrp.StateMaster, "BACKUP": vrrp.StateBackup,
			"FAULT": vrrp.StateFault, "STOP": vrrp.StateStop}[m[3]]
		prio, _ := strconv.Atoi(m[4])
		if m[3] == "MASTER_RX_LOWER_PRI" {
			n.Emit(event.Event{Kind: event.KindMasterRxLowerPri, ID: event.NewID(), Instance: m[2], Priority: prio})
			continue
		}
		if m[1] == "GROUP" {
			n.GroupChanged(GroupTransition{Group: m[2], To: to})
			continue
		}
		n.Emit(event.Event{Kind: event.KindTransition, ID: event.NewID(), Instance: m[2], To: to, Priority: prio})
	}
	var ours []string
	for range lines {
		l, ok := nextLine(t, kwLines, 5*time.Second)
		if !ok {
			break
		}
		ours = append(ours, l)
	}
	waitFor(t, func() bool { return len(rec.Of(event.KindMailSent)) >= len(kaSrv.Mails()) }, "keepwatch's mails")
	stop()

	if d := cmp.Diff(lines, ours); d != "" {
		t.Errorf("FIFO lines, keepalived (-) vs keepwatch (+):\n%s", d)
	}
	// keepalived forks its scripts without waiting, so their order is not
	// fixed (reference §1.8); compare the runs as sets.
	kaRuns, kwRuns := runs(t, kaRec), runs(t, kwRec)
	slices.Sort(kaRuns)
	slices.Sort(kwRuns)
	if d := cmp.Diff(kaRuns, kwRuns); d != "" {
		t.Errorf("script argv, keepalived (-) vs keepwatch (+):\n%s", d)
	}
	strip := regexp.MustCompile(`(?m)^(Date|Message-ID): .*\r\n`)
	type mailOut struct {
		Helo, From string
		To         []string
		Data       string
	}
	// keepalived's Date is strftime("%a, %d %b %Y %H:%M:%S %z"); ours must look the same.
	date := regexp.MustCompile(`(?m)^Date: [A-Z][a-z]{2}, \d{2} [A-Z][a-z]{2} \d{4} \d{2}:\d{2}:\d{2} [+-]\d{4}\r$`)
	norm := func(ms []smtptest.Mail) []mailOut {
		var out []mailOut
		for _, m := range ms {
			if !date.Match(m.Data) {
				t.Errorf("Date header not in keepalived's format:\n%s", m.Data)
			}
			out = append(out, mailOut{m.Helo, m.From, m.To, strip.ReplaceAllString(string(m.Data), "")})
		}
		return out
	}
	kaMail := norm(kaSrv.Mails())
	kwMail := norm(kwSrv.Mails())
	if len(kaMail) == 0 {
		t.Fatal("keepalived sent no mail")
	}
	// keepalived sends each mail on its own connection, concurrently, and
	// may exit before a STOP mail goes out: compare what it sent, as a set.
	byData := func(a, b mailOut) int { return strings.Compare(a.Data, b.Data) }
	slices.SortFunc(kaMail, byData)
	var matched []mailOut
	for _, m := range kwMail {
		if _, found := slices.BinarySearchFunc(kaMail, m, byData); found {
			matched = append(matched, m)
		}
	}
	slices.SortFunc(matched, byData)
	if d := cmp.Diff(kaMail, matched); d != "" {
		t.Errorf("mail, keepalived (-) vs keepwatch (+):\n%s", d)
	}
	t.Logf("keepalived reported %q; %d mails", lines, len(kaMail))
}

func waitFor(t *testing.T, cond func() bool, what string) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if cond() {
			return
		}
	}
	t.Fatalf("timed out waiting for %s", what)
}

// settle waits until count stops changing for half a second: keepalived
// sends its mails and runs its scripts in the background.
func settle(count func() int) {
	last, since := count(), time.Now()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if c := count(); c != last {
			last, since = c, time.Now()
		} else if time.Since(since) > 500*time.Millisecond {
			return
		}
	}
}
