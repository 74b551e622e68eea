package dump

import (
	"bytes"
	"encoding/json"
	"io"
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/keepwatch/keepwatch/engine/config"
	"github.com/keepwatch/keepwatch/engine/event"
	"github.com/keepwatch/keepwatch/engine/vrrp"
	"github.com/keepwatch/keepwatch/engine/vrrp/router"
)

// The counters count what keepalived counts: one advert per send however
// many unicast peers, priority 0 both ways, drops by reason, transitions to
// and from master; nothing for an unknown VRID; Clear zeroes them.
func TestCounters(t *testing.T) {
	c := NewCounters()
	t0 := time.Unix(100, 0)
	send := func(at time.Time, prio int, peers int) {
		for i := 0; i < peers; i++ {
			c.Emit(event.Event{Kind: event.KindAdvertSent, Instance: "VI_1", Time: at, Priority: prio})
		}
	}
	send(t0, 100, 3)
	send(t0.Add(time.Second), 100, 3)
	send(t0.Add(2*time.Second), 0, 3)
	for _, e := range []event.Event{
		{Kind: event.KindAdvertReceived, Priority: 90},
		{Kind: event.KindAdvertReceived, Priority: 0},
		{Kind: event.KindAdvertDropped, Reason: event.DropLength},
		{Kind: event.KindAdvertDropped, Reason: event.DropTTL},
		{Kind: event.KindAdvertDropped, Reason: event.DropType},
		{Kind: event.KindAdvertDropped, Reason: event.DropAddressList},
		{Kind: event.KindAdvertDropped, Reason: event.DropAuthType},
		{Kind: event.KindAdvertDropped, Reason: event.DropAuthType, Value: int64(vrrp.AuthAH)}, // AH to a PASS instance
		{Kind: event.KindAdvertDropped, Reason: event.DropAuthType, Value: 3},                  // invalid_authtype
		{Kind: event.KindAdvertDropped, Reason: event.DropAuth},
		{Kind: event.KindAdvertDropped, Reason: event.DropAuth},
		{Kind: event.KindAdvertDropped, Reason: event.DropInterval}, // keepalived counts none
		{Kind: event.KindTransition, From: vrrp.StateBackup, To: vrrp.StateMaster},
		{Kind: event.KindTransition, From: vrrp.StateMaster, To: vrrp.StateFault},
		{Kind: event.KindTransition, From: vrrp.StateMaster, To: vrrp.StateStop},
	} {
		e.Instance = "VI_1"
		c.Emit(e)
	}
	c.Emit(event.Event{Kind: event.KindAdvertDropped, Reason: event.DropVRIDUnknown})
	want := Stats{AdvertRcvd: 2, AdvertSent: 3, BecomeMaster: 1, ReleaseMaster: 1, PacketLenErr: 1, IPTTLErr: 1,
		InvalidTypeRcvd: 1, AddrListErr: 1, InvalidAuthType: 1, AuthTypeMismatch: 2, AuthFailure: 2, PriZeroRcvd: 1, PriZeroSent: 1}
	if diff := cmp.Diff(want, c.Get("VI_1")); diff != "" {
		t.Errorf("stats (-want +got):\n%s", diff)
	}
	c.Clear()
	if got := c.Get("VI_1"); got != (Stats{}) {
		t.Errorf("after Clear: %+v", got)
	}
}

func TestFormatAddress(t *testing.T) {
	lft := int64(300)
	for _, tc := range []struct {
		a    config.Address
		set  bool
		want string
	}{
		{config.Address{Prefix: netip.MustParsePrefix("192.0.2.100/24"), Dev: "eth0", Label: "eth0:0"}, true, "192.0.2.100/24 dev eth0 scope global label eth0:0 set"},
		{config.Address{Prefix: netip.MustParsePrefix("198.51.100.7/32")}, true, "198.51.100.7 dev IF scope global set"},
		{config.Address{Prefix: netip.MustParsePrefix("192.0.2.5/24"), Broadcast: "+", Scope: "link"}, false, "192.0.2.5/24 brd 192.0.2.255 dev IF scope link"},
		{config.Address{Prefix: netip.MustParsePrefix("2001:db8::1/64")}, false, "2001:db8::1/64 dev IF scope global preferred_lft forever"},
		{config.Address{Prefix: netip.MustParsePrefix("2001:db8::2/128")}, false, "2001:db8::2 dev IF scope global deprecated"},
		{config.Address{Prefix: netip.MustParsePrefix("2001:db8::3/64"), PreferredLft: &lft, NoDAD: true}, false, "2001:db8::3/64 dev IF scope global -nodad preferred_lft 300"},
	} {
		if got := FormatAddress(tc.a, "IF", tc.set); got != tc.want {
			t.Errorf("FormatAddress(%v) = %q, want %q", tc.a.Prefix, got, tc.want)
		}
	}
}

func testConfig() *config.Config {
	pass := config.Auth{Type: "PASS", Pass: "secret12"}
	return &config.Config{
		Global:  config.Global{RouterID: "lb1"},
		Scripts: []config.Script{{Name: "chk", Command: "/nonexistent/check arg", Args: []string{"/nonexistent/check", "arg"}, Weight: -10}},
		Instances: []config.Instance{{Name: "VI_1", Interface: "eth0", VRID: 51, Priority: 150, AdvertInterval: time.Second,
			Auth: &pass, NoPreempt: true, TrackScripts: []config.TrackRef{{Name: "chk"}}, TrackInterfaces: []config.TrackRef{{Name: "eth0"}, {Name: "eth1"}},
			VIPs: []config.Address{{Prefix: netip.MustParsePrefix("192.0.2.10/24")}}}},
	}
}

// The JSON dump has keepalived's fields in its order, numeric states, the
// password masked, and "/" escaped as keepalived's writer does.
func TestWriteJSON(t *testing.T) {
	c := testConfig()
	snap := router.Snapshot{Name: "VI_1", State: vrrp.StateMaster, Priority: 140, VIPsHeld: true, LastTransition: time.Unix(1700000000, 123456000)}
	var b bytes.Buffer
	if err := WriteJSON(&b, []Entry{{Data: NewData(c, &c.Instances[0], snap), Stats: Stats{AdvertSent: 7}}}); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, want := range []string{
		`[{"data":{"iname":"VI_1","dont_track_primary":0,`, `"last_transition":1700000000.123456,`,
		`"vrid":51,"base_priority":150,"effective_priority":140,"vipset":true,`, `"nopreempt":true,`,
		`"state":2,"wantstate":2,"version":2,`, `"vips":["192.0.2.10\/24 dev eth0 scope global set"]`,
		`"track_ifp":["eth1"]`, `"track_script":["'\/nonexistent\/check' 'arg'"]`,
		`"auth_type":1,"auth_data":"********"}`, `"stats":{"advert_rcvd":0,"advert_sent":7,`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("JSON lacks %s:\n%s", want, out)
		}
	}
	if strings.Contains(out, "secret12") {
		t.Errorf("JSON dump leaks the password:\n%s", out)
	}
	var doc []map[string]map[string]any
	if err := json.Unmarshal(b.Bytes(), &doc); err != nil {
		t.Fatalf("not JSON: %v", err)
	}
}

func TestWriteDataAndStats(t *testing.T) {
	c := testConfig()
	es := []Entry{{Data: NewData(c, &c.Instances[0], router.Snapshot{State: vrrp.StateBackup, Priority: 150}), Stats: Stats{AdvertRcvd: 12, AuthFailure: 1}}}
	var b bytes.Buffer
	host := Host{Hostname: "h1", IDs: func(string, string) string { return "0:0" }, Interface: func(name string) (int, []netip.Addr, bool) {
		return 4, []netip.Addr{netip.MustParseAddr("fe80::1"), netip.MustParseAddr("192.0.2.1")}, name == "eth0"
	}}
	if err := WriteDataHost(&b, c, es, host); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"------< Global definitions >------\n Network namespace = (default)\n Network namespace ipvs = (main namespace)\n Router ID = lb1\n",
		// RFC 3768 §6.1: 3 × 1 s + (256 − 150)/256 s, as keepalived prints it.
		"   Master down timer = 3414062 usecs\n   Interface = eth0\n   Using src_ip = 192.0.2.1\n   Multicast address 224.0.0.18\n", "------< VRRP Topology >------\n VRRP Instance = VI_1\n",
		"   State = BACKUP\n", "   Preempt = disabled\n", "   Password = ********\n", "   Tracked scripts :\n     chk weight -10\n", "   Tracked interfaces :\n     eth1 weight 0\n",
		"------< VRRP Scripts >------\n VRRP Script = chk\n   Command = '/nonexistent/check' 'arg'\n",
		"   Virtual IP (1):\n     192.0.2.10/24 dev eth0 scope global\n"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("data dump lacks %q:\n%s", want, b.String())
		}
	}
	if strings.Contains(b.String(), "secret12") {
		t.Errorf("data dump leaks the password")
	}
	b.Reset()
	if err := WriteStats(&b, es); err != nil {
		t.Fatal(err)
	}
	want := "VRRP Instance: VI_1\n  Advertisements:\n    Received: 12\n    Sent: 0\n  Became master: 0\n  Released master: 0\n" +
		"  Packet Errors:\n    Length: 0\n    TTL: 0\n    Invalid Type: 0\n    Advertisement Interval: 0\n    Address List: 0\n" +
		"  Authentication Errors:\n    Invalid Type: 0\n    Type Mismatch: 0\n    Failure: 1\n  Priority Zero:\n    Received: 0\n    Sent: 0\n"
	if diff := cmp.Diff(want, b.String()); diff != "" {
		t.Errorf("stats (-want +got):\n%s", diff)
	}
}

func TestWriteFile(t *testing.T) {
	dir := t.TempDir()
	path, err := WriteFile(dir, StatsFile, func(w io.Writer) error { _, err := w.Write([]byte("x\n")); return err })
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("%s: %v, mode %v; want 0600", path, err, fi.Mode())
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 1 {
		t.Errorf("temporary files left: %v", ents)
	}
	t.Setenv("TMPDIR", dir)
	if TmpDir() != dir {
		t.Errorf("TmpDir() = %q with TMPDIR=%s", TmpDir(), dir)
	}
	t.Setenv("TMPDIR", "relative")
	if TmpDir() != "/tmp" {
		t.Errorf("TmpDir() = %q with a relative TMPDIR, want /tmp", TmpDir())
	}
}
