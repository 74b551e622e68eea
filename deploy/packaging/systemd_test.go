package packaging

import (
	"bufio"
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

const unitBinary = "/usr/local/bin/keepwatch"

// unitKeys parses a systemd unit into section.Key -> values (in order).
func unitKeys(t *testing.T, b []byte) map[string][]string {
	t.Helper()
	keys := map[string][]string{}
	section := ""
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		switch {
		case line == "" || line[0] == '#' || line[0] == ';':
		case line[0] == '[':
			section = strings.Trim(line, "[]")
		default:
			k, v, ok := strings.Cut(line, "=")
			if !ok {
				t.Fatalf("unit line %q: no '='", line)
			}
			keys[section+"."+k] = append(keys[section+"."+k], v)
		}
	}
	return keys
}

func one(t *testing.T, keys map[string][]string, key string) string {
	t.Helper()
	v := keys[key]
	if len(v) != 1 {
		t.Fatalf("%s: %d values %q, want one", key, len(v), v)
	}
	return v[0]
}

// TestSystemdUnit checks what the unit promises: keepwatch run in the
// foreground on keepalived's config, HUP to reload, restart on failure, the
// capabilities VRRP needs, and socket families netlink and raw sockets use.
func TestSystemdUnit(t *testing.T) {
	keys := unitKeys(t, readFile(t, filepath.Join(deployDir(t), "systemd", "keepwatch.service")))
	start := strings.Fields(one(t, keys, "Service.ExecStart"))
	if start[0] != unitBinary {
		t.Errorf("ExecStart runs %s, want %s", start[0], unitBinary)
	}
	var args []string
	for _, a := range start[1:] {
		if a != "$KEEPWATCH_ARGS" {
			args = append(args, a)
		}
	}
	checkRunArgs(t, "ExecStart", args, "/etc/keepalived/keepalived.conf")
	for key, want := range map[string]string{
		"Service.Type":       "exec",
		"Service.ExecReload": "/bin/kill -HUP $MAINPID",
		"Service.Restart":    "on-failure",
		"Install.WantedBy":   "multi-user.target",
	} {
		if got := one(t, keys, key); got != want {
			t.Errorf("%s=%s, want %s", key, got, want)
		}
	}
	caps := strings.Fields(one(t, keys, "Service.CapabilityBoundingSet"))
	for _, c := range []string{"CAP_NET_ADMIN", "CAP_NET_RAW", "CAP_SETUID", "CAP_SETGID"} {
		if !contains(caps, c) {
			t.Errorf("CapabilityBoundingSet lacks %s", c)
		}
	}
	for _, c := range []string{"CAP_SYS_ADMIN", "CAP_SYS_MODULE"} {
		if contains(caps, c) {
			t.Errorf("CapabilityBoundingSet grants %s", c)
		}
	}
	fams := strings.Fields(one(t, keys, "Service.RestrictAddressFamilies"))
	for _, f := range []string{"AF_NETLINK", "AF_PACKET", "AF_INET", "AF_INET6", "AF_UNIX"} {
		if !contains(fams, f) {
			t.Errorf("RestrictAddressFamilies lacks %s (netlink, ARP/NA or VRRP sockets would fail)", f)
		}
	}
	// /proc/sys must stay writable for use_vmac's sysctls; a private network
	// would hide the host's interfaces.
	for _, k := range []string{"Service.ProtectKernelTunables", "Service.PrivateNetwork", "Service.DynamicUser"} {
		if v := keys[k]; len(v) > 0 && v[len(v)-1] != "no" {
			t.Errorf("%s=%s breaks the agent", k, v[len(v)-1])
		}
	}
	alias := unitKeys(t, readFile(t, filepath.Join(deployDir(t), "systemd", "keepalived-alias.conf")))
	if got := one(t, alias, "Install.Alias"); got != "keepalived.service" {
		t.Errorf("keepalived-alias.conf: Alias=%s, want keepalived.service", got)
	}
}

func contains(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

// TestSystemdVerify runs systemd-analyze verify on the unit with its
// keepalived alias drop-in, the binary path pointing at a fresh build; any
// message (unknown key, bad value, missing command) fails. A broken unit
// must make it speak, or the check proves nothing.
func TestSystemdVerify(t *testing.T) {
	sa := need(t, "systemd-analyze")
	bin := keepwatchBinary(t)
	if strings.ContainsAny(bin, " \t") {
		t.Fatalf("binary path %q has white space", bin)
	}
	verify := func(unit []byte, dropin []byte) string {
		dir := t.TempDir()
		d := filepath.Join(dir, "keepwatch.service.d")
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
		unit = bytes.ReplaceAll(unit, []byte(unitBinary), []byte(bin))
		if err := os.WriteFile(filepath.Join(dir, "keepwatch.service"), unit, 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(d, "keepalived-alias.conf"), dropin, 0o644); err != nil {
			t.Fatal(err)
		}
		out, err := exec.Command(sa, "verify", "--man=no", filepath.Join(dir, "keepwatch.service")).CombinedOutput()
		if err != nil {
			return strings.TrimSpace(string(out)) + " (" + err.Error() + ")"
		}
		return strings.TrimSpace(string(out))
	}
	unit := readFile(t, filepath.Join(deployDir(t), "systemd", "keepwatch.service"))
	dropin := readFile(t, filepath.Join(deployDir(t), "systemd", "keepalived-alias.conf"))
	if out := verify(unit, dropin); out != "" {
		t.Errorf("systemd-analyze verify:\n%s", out)
	}
	if out := verify(unit, append(dropin, "[Service]\nNoSuchKey=1\n"...)); !strings.Contains(out, "NoSuchKey") {
		t.Errorf("systemd-analyze verify did not report a bogus key in the drop-in: %q", out)
	}
}
