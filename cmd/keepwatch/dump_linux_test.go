package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/keepwatch/keepwatch/engine/dump"
	"github.com/keepwatch/keepwatch/engine/netif/nskit/nskittest"
)

// The config both keepalived 2.2.7 and the drop-in dump: VRRPv2 multicast
// with PASS, tracked script, file and interface, virtual routes and rules
// and a notify script; VRRPv3 unicast and VRRPv3 IPv6, both in a sync group.
// %[1]s is the node's link, %[2]s the test's directory.
const dumpConf = `global_defs {
    router_id dumpcmp
    notification_email {
        root@example.com
    }
    notification_email_from ka@example.com
    smtp_server 127.0.0.1
    smtp_connect_timeout 20
    vrrp_garp_master_delay 2
    enable_script_security
    script_user root
}
vrrp_script chk {
    script "/bin/true"
    interval 1
    weight -10
}
track_file tf {
    file %[2]s/tf
    weight 5
}
vrrp_sync_group SG {
    group {
        VI_2
        VI_3
    }
}
vrrp_instance VI_1 {
    state BACKUP
    interface %[1]s
    virtual_router_id 27
    priority 80
    advert_int 1
    authentication {
        auth_type PASS
        auth_pass secret12
    }
    track_script {
        chk
    }
    track_file {
        tf
    }
    track_interface {
        lo
    }
    virtual_ipaddress {
        192.0.2.100/24 dev %[1]s label %[1]s:0
    }
    virtual_ipaddress_excluded {
        198.51.100.7/32
    }
    virtual_routes {
        203.0.113.0/24 via 192.0.2.254 dev %[1]s
    }
    virtual_rules {
        from 192.0.2.100 table 100
    }
    notify_master "/bin/true master"
}
vrrp_instance VI_2 {
    state BACKUP
    interface %[1]s
    virtual_router_id 28
    priority 100
    version 3
    advert_int 0.5
    unicast_src_ip 192.0.2.1
    unicast_peer {
        192.0.2.3
    }
    virtual_ipaddress {
        192.0.2.101/24
    }
}
vrrp_instance VI_3 {
    state MASTER
    interface %[1]s
    virtual_router_id 29
    priority 255
    virtual_ipaddress {
        2001:db8::10/64
    }
    notify "/bin/true any"
}
`

// dumps starts impl (the real keepalived or the drop-in) on a one-node lab
// of its own, waits for it to become master (its VIP appears), sends the
// DATA, STATS and JSON signals keepalived --signum names, and returns the
// three files, with the node's link name replaced by "IF".
func dumps(t *testing.T, name, bin, confText string, extraArgs ...string) map[string]string {
	t.Helper()
	lab := nskittest.New(t, name, 1, "keepalived")
	n := lab.Node(1)
	dir := t.TempDir()
	tmp := filepath.Join(dir, "tmp")
	if err := os.Mkdir(tmp, 0o700); err != nil {
		t.Fatal(err)
	}
	conf := filepath.Join(dir, "keepalived.conf")
	if err := os.WriteFile(conf, []byte(fmt.Sprintf(confText, n.Link, dir)), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "tf"), []byte("0\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	args := append([]string{"-n", "-l", "-P", "-f", conf, "-p", filepath.Join(dir, "k.pid"), "-r", filepath.Join(dir, "v.pid"), "-c", filepath.Join(dir, "c.pid")}, extraArgs...)
	cmd := n.Command(bin, args...)
	// Both write their dumps to $TMPDIR (keepalived's make_tmp_filename()),
	// so neither touches the host's /tmp/keepalived.*.
	cmd.Env = append(os.Environ(), "TMPDIR="+tmp, "KEEPWATCH_AGENT_LISTEN_ADDRESS=127.0.0.1:0")
	var out nskittest.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	p, err := n.Start(cmd)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = p.Stop()
		if t.Failed() || testing.Verbose() {
			t.Logf("%s output:\n%s", name, out.String())
		}
	})
	waitFor(t, name+" master with its VIP", 20*time.Second, func() bool {
		a := addrs(t, n)
		return strings.Contains(a, "192.0.2.100/24") && strings.Contains(a, "192.0.2.101/24")
	})
	time.Sleep(1500 * time.Millisecond) // a few adverts sent
	files := map[string]string{}
	for _, s := range []struct {
		sig  syscall.Signal
		file string
	}{{sigData, "keepalived.data"}, {sigStats, "keepalived.stats"}, {sigJSON, "keepalived.json"}} {
		if err := p.Signal(s.sig); err != nil {
			t.Fatalf("%s: signal %d: %v", name, s.sig, err)
		}
		path := filepath.Join(tmp, s.file)
		waitFor(t, name+" "+s.file, 10*time.Second, func() bool {
			b, err := os.ReadFile(path)
			return err == nil && len(b) > 0 && (s.file != "keepalived.json" || json.Valid(b))
		})
		b, _ := os.ReadFile(path)
		files[s.file] = strings.NewReplacer(n.Link, "IF", dir, "DIR", n.LinkLocal.String(), "LINKLOCAL").Replace(string(b))
	}
	// STATS_CLEAR writes the stats and zeroes them: the next STATS dump
	// starts again from 0.
	stats := filepath.Join(tmp, "keepalived.stats")
	if err := p.Signal(sigStatsClear); err != nil {
		t.Fatal(err)
	}
	time.Sleep(500 * time.Millisecond)
	if err := os.Remove(stats); err != nil {
		t.Fatalf("%s: STATS_CLEAR wrote no stats: %v", name, err)
	}
	if err := p.Signal(sigStats); err != nil {
		t.Fatal(err)
	}
	waitFor(t, name+" stats after STATS_CLEAR", 10*time.Second, func() bool { b, err := os.ReadFile(stats); return err == nil && len(b) > 0 })
	b, _ := os.ReadFile(stats)
	files["cleared.stats"] = string(b)
	files["log"] = strings.NewReplacer(n.Link, "IF", dir, "DIR").Replace(out.String())
	return files
}

// Each dump signal, compared field by field with keepalived 2.2.7's own
// dump of the same config, both run in network namespaces. The fields that
// differ, and why, are listed in knownDiff; anything else that differs
// fails the test.
func TestDumpsMatchKeepalived(t *testing.T) {
	nskittest.Require(t, "keepalived")
	bin := dropinBinary(t)
	ka := dumps(t, "dumpka", "keepalived", dumpConf, "-D") // -D: keepalived's detail lines, such as the advert timeout
	kw := dumps(t, "dumpkw", bin, dumpConf, "-G")

	compareJSON(t, ka["keepalived.json"], kw["keepalived.json"])
	if !strings.Contains(kw["keepalived.json"], `"auth_data":"********"`) || strings.Contains(kw["keepalived.json"], "secret12") {
		t.Errorf("keepwatch's JSON dump does not mask auth_data:\n%s", kw["keepalived.json"])
	}

	// keepalived.stats: the same text once the numbers are out.
	digits := regexp.MustCompile(`[0-9]+`)
	if a, b := digits.ReplaceAllString(ka["keepalived.stats"], "N"), digits.ReplaceAllString(kw["keepalived.stats"], "N"); a != b {
		t.Errorf("keepalived.stats layout differs:\n--- keepalived\n%s\n--- keepwatch\n%s", ka["keepalived.stats"], kw["keepalived.stats"])
	}

	for impl, f := range map[string]string{"keepalived": ka["cleared.stats"], "keepwatch": kw["cleared.stats"]} {
		if !strings.Contains(f, "  Became master: 0\n") {
			t.Errorf("%s: stats after STATS_CLEAR not zeroed:\n%s", impl, f)
		}
	}

	// keepalived.data: keepalived's lines, in its order, but for the gaps
	// dump.KnownGaps lists (keepalived's process internals), the masked
	// password and the transition times; any other missing, extra or
	// reordered line fails.
	kaData, kwData := dataLines(ka["keepalived.data"]), dataLines(kw["keepalived.data"])
	if diff := cmp.Diff(kaData, kwData); diff != "" {
		t.Errorf("keepalived.data differs from keepalived's (-keepalived +keepwatch):\n%s", diff)
	}
	if strings.Contains(kw["keepalived.data"], "secret12") || !strings.Contains(kw["keepalived.data"], "   Password = ********\n") {
		t.Errorf("keepwatch's keepalived.data does not mask the password")
	}
	t.Logf("keepalived.data: %d of keepalived's lines compared", len(kaData))

	// The console log (-l): keepalived's layout, "Wed Dec  2 13:37:24 2026:
	// " then the line, and keepalived's words for the same events.
	layout := regexp.MustCompile(`^[A-Z][a-z]{2} [A-Z][a-z]{2} [ 0-9][0-9] [0-9]{2}:[0-9]{2}:[0-9]{2} [0-9]{4}: `)
	for _, l := range strings.Split(strings.TrimSpace(kw["log"]), "\n") {
		if !layout.MatchString(l) {
			t.Errorf("keepwatch log line not in keepalived's layout: %q", l)
		}
	}
	for _, want := range []string{"(VI_1) Entering BACKUP STATE (init)", "(VI_1) Receive advertisement timeout",
		"(VI_1) Entering MASTER STATE", "(VI_2) Entering MASTER STATE", "(VI_3) Entering MASTER STATE",
		"VRRP_Script(chk) succeeded", "(DIR/keepalived.conf: Line 57) ", "Printing VRRP data for process(",
		"Printing VRRP stats for process(", "Printing VRRP as json for process(", "Printing and clearing VRRP stats for process("} {
		for impl, log := range map[string]string{"keepalived": ka["log"], "keepwatch": kw["log"]} {
			if !strings.Contains(log, ": "+want) {
				t.Errorf("%s's log lacks %q", impl, want)
			}
		}
	}
}

// compareJSON compares keepalived.json field by field: the same keys in
// the same order, the same values but for those differing by nature.
func compareJSON(t *testing.T, kaText, kwText string) {
	t.Helper()
	knownDiff := map[string]string{
		"data.last_transition": "the time each became master",
		"data.auth_data":       "masked by keepwatch (keepalived 2.2.7 prints the password; 2.4.0+ masks it too)",
		"stats.advert_sent":    "how many adverts each sent before the signal",
	}
	var kaDoc, kwDoc []map[string]json.RawMessage
	for _, x := range []struct {
		text string
		doc  *[]map[string]json.RawMessage
	}{{kaText, &kaDoc}, {kwText, &kwDoc}} {
		if err := json.Unmarshal([]byte(x.text), x.doc); err != nil || len(*x.doc) != 3 {
			t.Fatalf("keepalived.json: %v, %d entries, want 3:\n%s", err, len(*x.doc), x.text)
		}
	}
	for i := range kaDoc {
		for _, obj := range []string{"data", "stats"} {
			kaKeys, kaVals := orderedKeys(t, kaDoc[i][obj])
			kwKeys, kwVals := orderedKeys(t, kwDoc[i][obj])
			if strings.Join(kaKeys, ",") != strings.Join(kwKeys, ",") {
				t.Errorf("keepalived.json %s keys differ:\nkeepalived: %v\nkeepwatch:  %v", obj, kaKeys, kwKeys)
			}
			for _, k := range kaKeys {
				field := obj + "." + k
				if why, ok := knownDiff[field]; ok {
					t.Logf("%s differs by design: keepalived %s, keepwatch %s (%s)", field, kaVals[k], kwVals[k], why)
					continue
				}
				if string(kaVals[k]) != string(kwVals[k]) {
					t.Errorf("keepalived.json [%d] %s: keepalived %s, keepwatch %s", i, field, kaVals[k], kwVals[k])
				}
			}
		}
	}
}

// A second config for keepalived.data: the global and instance settings
// the first leaves at their defaults (garp timers, advert flags, down timer
// adverts, preemption, notify scripts, SMTP alerts, a VMAC, an address owner).
const dumpVariantConf = `global_defs {
    router_id variant
    vrrp_garp_master_repeat 3
    vrrp_garp_master_refresh 60
    vrrp_garp_master_refresh_repeat 2
    vrrp_lower_prio_no_advert
    vrrp_higher_prio_send_advert
    vrrp_down_timer_adverts 4
    vrrp_notify_priority_changes
    dynamic_interfaces
    smtp_alert_vrrp false
}
vrrp_instance VI_1 {
    state BACKUP
    interface %[1]s
    virtual_router_id 37
    priority 90
    nopreempt
    smtp_alert
    virtual_ipaddress {
        192.0.2.100/24
    }
    notify_backup "/bin/true backup"
    notify_fault "/bin/true fault"
    notify_stop "/bin/true stop"
}
vrrp_instance VI_2 {
    state BACKUP
    interface %[1]s
    virtual_router_id 38
    priority 100
    preempt_delay 2
    down_timer_adverts 5
    garp_master_delay 1
    virtual_ipaddress {
        192.0.2.101/24
    }
}
vrrp_instance VI_3 {
    state MASTER
    interface %[1]s
    use_vmac
    virtual_router_id 39
    priority 255
    virtual_ipaddress {
        192.0.2.102/24
    }
}
`

func TestDataDumpVariantMatchesKeepalived(t *testing.T) {
	nskittest.Require(t, "keepalived")
	bin := dropinBinary(t)
	ka := dumps(t, "dumpvka", "keepalived", dumpVariantConf)
	kw := dumps(t, "dumpvkw", bin, dumpVariantConf, "-G")
	kaData, kwData := dataLines(ka["keepalived.data"]), dataLines(kw["keepalived.data"])
	if diff := cmp.Diff(kaData, kwData); diff != "" {
		t.Errorf("keepalived.data differs from keepalived's (-keepalived +keepwatch):\n%s", diff)
	}
	t.Logf("keepalived.data: %d of keepalived's lines compared", len(kaData))
	compareJSON(t, ka["keepalived.json"], kw["keepalived.json"])
}

// dataLines is a keepalived.data with the lines keepwatch cannot know
// (dump.KnownGaps) taken out and the values that differ by nature (times,
// the password keepwatch masks) normalised.
func dataLines(text string) []string {
	var out []string
	skip := false
	for _, l := range strings.Split(strings.TrimRight(text, "\n"), "\n") {
		if strings.HasPrefix(l, "------<") {
			_, skip = dump.KnownGaps[l]
		}
		if skip {
			continue
		}
		gap := false
		for prefix := range dump.KnownGaps {
			if strings.HasPrefix(l, prefix) {
				gap = true
			}
		}
		if gap {
			continue
		}
		switch {
		case strings.HasPrefix(l, "   Last transition = "):
			l = "   Last transition = T"
		case strings.HasPrefix(l, "   Password = "):
			l = "   Password = P"
		}
		out = append(out, l)
	}
	return out
}

// orderedKeys returns an object's keys in document order, and its values.
func orderedKeys(t *testing.T, raw json.RawMessage) ([]string, map[string]json.RawMessage) {
	t.Helper()
	vals := map[string]json.RawMessage{}
	if err := json.Unmarshal(raw, &vals); err != nil {
		t.Fatal(err)
	}
	dec := json.NewDecoder(strings.NewReader(string(raw)))
	var keys []string
	depth := 0
	for {
		tok, err := dec.Token()
		if err != nil {
			break
		}
		switch v := tok.(type) {
		case json.Delim:
			if v == '{' || v == '[' {
				depth++
			} else {
				depth--
			}
		case string:
			if depth == 1 && dec.More() {
				if _, ok := vals[v]; ok && !contains(keys, v) {
					keys = append(keys, v)
					// Skip the value.
					var skip json.RawMessage
					_ = dec.Decode(&skip)
				}
			}
		}
	}
	return keys, vals
}

func contains(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}
