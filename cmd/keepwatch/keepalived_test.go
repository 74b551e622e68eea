package main

import (
	"bytes"
	"os/exec"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/keepwatch/keepwatch/engine/config"
	"github.com/keepwatch/keepwatch/engine/netif/nskit/nskittest"
)

// kaRun runs the drop-in's command line and returns its exit code, stdout
// and stderr.
func kaRun(args ...string) (int, string, string) {
	cmd := keepalivedCommand()
	var out, errb bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetErr(&errb)
	cmd.SetArgs(kaArgs(args))
	err := cmd.Execute()
	code := 0
	if e, ok := err.(exitError); ok {
		code = e.code
	} else if err != nil {
		code = 1
	}
	return code, out.String(), errb.String()
}

// A mistyped option is never a silent exit 1: keepalived's message, then
// the usage.
func TestKeepalivedBadOptions(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--bogus"}, "Unknown option --bogus\n"},
		{[]string{"-Z"}, "Unknown option -Z\n"},
		{[]string{"-nZ"}, "Unknown option -Z\n"},
		{[]string{"-f"}, "Missing parameter for option -f\n"},
		{[]string{"--use-file"}, "Missing parameter for option --use-file\n"},
		{[]string{"-n", "extra"}, "Unexpected argument(s): extra\n"},
		{[]string{"-S", "local9", "-n"}, "invalid log facility \"local9\""},
		{[]string{"-u", "0999", "-n"}, "Invalid umask"},
	} {
		code, _, stderr := kaRun(tc.args...)
		if code != 1 || !strings.HasPrefix(stderr, tc.want) || !strings.Contains(stderr, "Usage: keepalived [OPTION...]") {
			t.Errorf("keepalived %q: exit %d, stderr:\n%s\nwant exit 1, %q and the usage", tc.args, code, stderr, tc.want)
		}
	}
}

// -h prints the usage on stderr and exits 0, as keepalived does.
func TestKeepalivedHelp(t *testing.T) {
	for _, arg := range []string{"-h", "--help"} {
		code, out, stderr := kaRun(arg)
		if code != 0 || out != "" || !strings.HasPrefix(stderr, "Usage: keepalived [OPTION...]\n") || !strings.Contains(stderr, "--vrrp_pid") {
			t.Errorf("keepalived %s: exit %d, stdout %q, stderr:\n%s", arg, code, out, stderr)
		}
	}
}

// --signum prints what keepalived 2.2.7 prints; compared with the installed
// keepalived itself.
func TestKeepalivedSignum(t *testing.T) {
	nskittest.Require(t, "keepalived")
	for _, name := range []string{"STOP", "RELOAD", "DATA", "STATS", "STATS_CLEAR", "JSON", "TDATA", "stop"} {
		want, _ := exec.Command("keepalived", "--signum="+name).CombinedOutput()
		code, out, stderr := kaRun("--signum=" + name)
		if got := out + stderr; got != string(want) {
			t.Errorf("--signum=%s: %q (exit %d), keepalived says %q", name, got, code, want)
		}
	}
}

// getopt's attached optional arguments (-tFILE, -gFILE, -MPAT), also at the
// end of a cluster.
func TestKaArgs(t *testing.T) {
	for _, tc := range []struct{ in, want []string }{
		{[]string{"-t"}, []string{"-t"}},
		{[]string{"-t/tmp/x"}, []string{"--config-test=/tmp/x"}},
		{[]string{"-g/var/log/ka.log", "-D"}, []string{"--log-file=/var/log/ka.log", "-D"}},
		{[]string{"-nDgfile"}, []string{"-nD", "--log-file=file"}},
		{[]string{"-Mcore.%p"}, []string{"--core-dump-pattern=core.%p"}},
		{[]string{"-f", "-gx"}, []string{"-f", "--log-file=x"}},
		{[]string{"-fk.conf", "-pfile"}, []string{"-fk.conf", "-pfile"}},
		{[]string{"--", "-gx"}, []string{"--", "-gx"}},
	} {
		if diff := cmp.Diff(tc.want, kaArgs(tc.in)); diff != "" {
			t.Errorf("kaArgs(%q) (-want +got):\n%s", tc.in, diff)
		}
	}
}

// -P keeps the VRRP side of a config, -C the checkers' side.
func TestKeepalivedSides(t *testing.T) {
	full := func() *config.Config {
		return &config.Config{Instances: []config.Instance{{Name: "VI_1"}}, SyncGroups: []config.SyncGroup{{Name: "G"}},
			StaticAddrs: []config.Address{{}}, VirtualServers: []config.VirtualServer{{}}, VSGroups: []config.VSGroup{{}}}
	}
	c := full()
	vrrpOnly(c)
	if len(c.Instances) != 1 || len(c.SyncGroups) != 1 || len(c.StaticAddrs) != 1 || c.VirtualServers != nil || c.VSGroups != nil {
		t.Errorf("-P kept %+v", c)
	}
	c = full()
	checkersOnly(c)
	if c.Instances != nil || c.SyncGroups != nil || c.StaticAddrs != nil || len(c.VirtualServers) != 1 || len(c.VSGroups) != 1 {
		t.Errorf("-C kept %+v", c)
	}
}

// -t checks like keepalived -t: same exit code, the report on stderr or, with
// -tFILE, in FILE.
func TestKeepalivedConfigTest(t *testing.T) {
	p := write(t, "k.conf", "vrrp_instance VI_1 {\n  interface lo\n  virtual_router_id 51\n  priorty 100\n  virtual_ipaddress {\n    192.0.2.10/24\n  }\n}\n")
	code, _, stderr := kaRun("-t", "-f", p)
	if code != 5 || !strings.Contains(stderr, ":4:3: warning:") {
		t.Errorf("-t: exit %d, stderr %q", code, stderr)
	}
	log := write(t, "t.log", "")
	code, _, stderr = kaRun("-t"+log, "-f", p)
	if code != 5 || stderr != "" {
		t.Errorf("-tFILE: exit %d, stderr %q", code, stderr)
	}
}
