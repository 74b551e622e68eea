package lab

import (
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	gocmp "cmp"
	"github.com/google/go-cmp/cmp"

	"github.com/keepwatch/keepwatch/engine/config/loader"
)

func TestParseScript(t *testing.T) {
	got, err := ParseScript("4s restore 1; 2s cut 1;\n 6s stop 2; 3.5s loss 3 30%; 7s start 2", 3)
	if err != nil {
		t.Fatal(err)
	}
	want := []Step{
		{At: 2 * time.Second, Op: OpCut, Node: 1},
		{At: 3500 * time.Millisecond, Op: OpLoss, Node: 3, Arg: 30},
		{At: 4 * time.Second, Op: OpRestore, Node: 1},
		{At: 6 * time.Second, Op: OpStop, Node: 2},
		{At: 7 * time.Second, Op: OpStart, Node: 2},
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("-want +got:\n%s", d)
	}
	for _, bad := range []string{
		"2s cut",            // no node
		"2s cut 4",          // no such node
		"2x cut 1",          // bad time
		"-1s cut 1",         // negative time
		"2s explode 1",      // unknown op
		"2s loss 1",         // no percentage
		"2s loss 1 130",     // percentage out of range
		"2s cut 1 extra",    // trailing words
		"2s restore one",    // node not a number
		"2s cut 1; 3s ? 2",  // second step bad
		"2s loss 1 30 more", // trailing words after loss
	} {
		if _, err := ParseScript(bad, 3); err == nil {
			t.Errorf("ParseScript(%q) succeeded, want an error", bad)
		}
	}
	if s, err := ParseScript("  ;\n ", 3); err != nil || len(s) != 0 {
		t.Errorf("empty script: %v, %v", s, err)
	}
}

func TestTimeline(t *testing.T) {
	ms := func(n int) time.Duration { return time.Duration(n) * time.Millisecond }
	v4, v6 := VIP4.Addr(), VIP6.Addr()
	tl := Timeline{VIPs: []netip.Addr{v4, v6}, End: ms(1000), Records: []Record{
		{At: 0, Holders: [][]int{nil, nil}},
		{At: ms(100), Holders: [][]int{{1, 3}, nil}}, // before convergence: not split brain
		{At: ms(150), Holders: [][]int{{1}, {1}}},    // converged
		{At: ms(300), Event: "cut 1", Holders: [][]int{{1}, {1}}},
		{At: ms(310), Holders: [][]int{nil, nil}},
		{At: ms(600), Holders: [][]int{{2}, {2}}},
		{At: ms(700), Holders: [][]int{{1, 2}, {1, 2}}}, // preemption overlap
		{At: ms(720), Holders: [][]int{{1}, {1, 2}}},
		{At: ms(900), Holders: [][]int{{1}, {1, 2, 3}}}, // open until End
	}}
	at, ok := tl.Converged()
	if !ok || at != ms(150) {
		t.Errorf("Converged = %v, %v; want 150ms, true", at, ok)
	}
	want := []Overlap{
		{VIP: v4, From: ms(700), To: ms(720), Nodes: []int{1, 2}},
		{VIP: v6, From: ms(700), To: ms(1000), Nodes: []int{1, 2, 3}},
	}
	if d := cmp.Diff(want, tl.Overlaps(), cmp.Comparer(func(a, b netip.Addr) bool { return a == b })); d != "" {
		t.Errorf("Overlaps -want +got:\n%s", d)
	}
	if l := tl.Longest(); l.VIP != v6 || l.Duration() != ms(300) {
		t.Errorf("Longest = %v", l)
	}
	// v4: n1 → none → n2 → n1+n2 → n1 after convergence.
	if m := tl.Moves(0); m != 4 {
		t.Errorf("Moves(v4) = %d, want 4", m)
	}
	if f := tl.Format(); !strings.Contains(f, "cut 1") || !strings.Contains(f, "192.0.2.100=n1+n2") {
		t.Errorf("Format:\n%s", f)
	}
	never := Timeline{VIPs: []netip.Addr{v4}, Records: []Record{{Holders: [][]int{{1, 2}}}}}
	if _, ok := never.Converged(); ok || len(never.Overlaps()) != 0 {
		t.Errorf("a timeline that never converged: converged %v, overlaps %v", ok, never.Overlaps())
	}
}

func TestSumMetric(t *testing.T) {
	text := `# HELP keepwatch_vrrp_adverts_dropped_total x
# TYPE keepwatch_vrrp_adverts_dropped_total counter
keepwatch_vrrp_adverts_dropped_total{reason="auth",vrrp_instance="VI_4"} 3
keepwatch_vrrp_adverts_dropped_total{reason="auth_type",vrrp_instance="VI_4"} 5
keepwatch_vrrp_adverts_dropped_total{reason="auth",vrrp_instance="VI_40"} 7
keepwatch_vrrp_adverts_dropped_total_extra{reason="auth",vrrp_instance="VI_4"} 11
keepwatch_config_last_reload_successful 1
keepwatch_vrrp_state{state="master",vrrp_instance="VI_4"} 1 1700000000000
`
	for _, c := range []struct {
		name   string
		labels []string
		want   float64
	}{
		{"keepwatch_vrrp_adverts_dropped_total", []string{"reason", "auth", "vrrp_instance", "VI_4"}, 3},
		{"keepwatch_vrrp_adverts_dropped_total", []string{"vrrp_instance", "VI_4"}, 8},
		{"keepwatch_vrrp_adverts_dropped_total", nil, 15},
		{"keepwatch_config_last_reload_successful", nil, 1},
		{"keepwatch_vrrp_state", []string{"state", "master"}, 1},
		{"keepwatch_missing", nil, 0},
	} {
		got, err := SumMetric(text, c.name, c.labels...)
		if err != nil || got != c.want {
			t.Errorf("SumMetric(%s, %v) = %v, %v; want %v", c.name, c.labels, got, err, c.want)
		}
	}
	if _, err := SumMetric(text, "x", "odd"); err == nil {
		t.Error("odd label list accepted")
	}
}

func TestKeepalivedStateLog(t *testing.T) {
	l := newLogBuffer(1, nil, filepath.Join(t.TempDir(), "log"))
	defer l.close()
	_, _ = l.Write([]byte("Sat Nov 28 05:58:41 2026: (VI_4) Entering BACKUP STATE (init)\nSat Nov 28 05:58:42 2026: (VI_6) Entering MAS"))
	_, _ = l.Write([]byte("TER STATE\n(VI_4) Entering FAULT STATE\n"))
	if d := cmp.Diff(map[string]string{"VI_4": "fault", "VI_6": "master"}, l.kaStates()); d != "" {
		t.Errorf("-want +got:\n%s", d)
	}
	l.stopped()
	if s := l.kaStates()["VI_6"]; s != "stop" {
		t.Errorf("after stop: %q", s)
	}
}

// Every combination the tests and the lab use renders to a config that
// keepwatch loads without errors and, when keepalived is installed, that
// keepalived -t accepts (exit 0).
func TestTemplates(t *testing.T) {
	tmpl, err := ParseTemplate(DefaultTemplate, "")
	if err != nil {
		t.Fatal(err)
	}
	v4 := []netip.Addr{netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("192.0.2.2")}
	v6 := []netip.Addr{netip.MustParseAddr("2001:db8::1"), netip.MustParseAddr("2001:db8::2")}
	dir := t.TempDir()
	// keepalived -t fails on an unknown interface: render with one this
	// host has, and one that does multicast.
	link := ""
	if ifs, err := net.Interfaces(); err == nil {
		for _, ifi := range ifs {
			if ifi.Flags&net.FlagLoopback == 0 && ifi.Flags&net.FlagMulticast != 0 {
				link = ifi.Name
				break
			}
		}
	}
	for name, p := range map[string]Params{
		"default":  {},
		"v2pass":   {Version: 2, Interval: time.Second, Pass: "secret12", Family: 4},
		"unicast":  {Unicast: true},
		"nopre":    {NoPreempt: true, Family: 4},
		"pdelay":   {PreemptDelay: time.Second, Family: 6},
		"sync":     {SyncGroup: true, FaultFile: true},
		"script":   {Family: 4, TrackScript: "/usr/bin/test ! -e /nonexistent", ScriptWeight: -60},
		"scale250": {Instances: 250, Interval: 50 * time.Millisecond},
		"soak":     {TrackInterface: "lo", Extra: SoakExtra},
	} {
		p = p.withDefaults()
		b, err := tmpl.Render(TemplateData{Index: 1, Link: gocmp.Or(link, "eth0"), IPv4: v4[0], IPv6: v6[0], Priority: 150, Dir: dir, P: p,
			Instances: instances(p, 1, v4, v6)})
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		path := filepath.Join(dir, name+".conf")
		if err := os.WriteFile(path, b, 0o644); err != nil {
			t.Fatal(err)
		}
		c, ds := loader.Load(path, loader.Options{})
		if c == nil || ds.HasErrors() {
			t.Errorf("%s: keepwatch rejects the config: %v\n%s", name, ds, b)
			continue
		}
		want := 2
		switch {
		case p.Instances > 0:
			want = p.Instances
		case p.Family != 0:
			want = 1
		}
		if len(c.Instances) != want {
			t.Errorf("%s: %d instances, want %d", name, len(c.Instances), want)
		}
		if p.SyncGroup && len(c.SyncGroups) != 1 {
			t.Errorf("%s: %d sync groups, want 1", name, len(c.SyncGroups))
		}
		if _, err := exec.LookPath("keepalived"); err != nil || link == "" {
			if os.Getenv("CI") != "" {
				t.Fatalf("keepalived -t cannot run (keepalived installed: %v; a non-loopback interface: %q)", err == nil, link)
			}
			continue
		}
		// keepalived -t exits 0 only for a clean config: no error, no warning.
		if out, err := exec.Command("keepalived", "-t", "-l", "-f", path).CombinedOutput(); err != nil {
			t.Errorf("%s: keepalived -t: %v\n%s\n%s", name, err, out, b)
		}
	}
}
