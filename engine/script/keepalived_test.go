package script_test

import (
	"context"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/keepwatch/keepwatch/engine/config"
	"github.com/keepwatch/keepwatch/engine/config/loader"
	"github.com/keepwatch/keepwatch/engine/script"
)

// TestCheckMatchesKeepalived builds script layouts on disk and asks both
// keepalived 2.2.7 (`keepalived -t`) and keepwatch's config validation what
// they make of a vrrp_script there, with and without
// enable_script_security: the same scripts are disabled, the same configs
// draw the SECURITY VIOLATION (exit 6), and with it "There are insecure
// scripts".
func TestCheckMatchesKeepalived(t *testing.T) {
	if os.Geteuid() != 0 {
		if os.Getenv("CI") != "" {
			t.Fatal("needs root in CI")
		}
		t.Skip("needs root (root-owned script paths)")
	}
	bin, err := exec.LookPath("keepalived")
	if err != nil {
		t.Fatalf("keepalived not installed (it is the oracle): %v", err)
	}
	base := t.TempDir()
	mk := func(name string, dirMode, fileMode os.FileMode, gid int) string {
		d := filepath.Join(base, name)
		if err := os.Mkdir(d, dirMode); err != nil {
			t.Fatal(err)
		}
		os.Chmod(d, dirMode)
		p := filepath.Join(d, "chk.sh")
		if err := os.WriteFile(p, []byte("#!/bin/sh\nexit 0\n"), fileMode); err != nil {
			t.Fatal(err)
		}
		os.Chmod(p, fileMode)
		os.Chown(p, 0, gid)
		return p
	}
	layouts := map[string]string{
		"safe":                   mk("safe", 0o755, 0o755, 0),
		"world-writable script":  mk("ww", 0o755, 0o757, 0),
		"group-writable, root":   mk("gwroot", 0o755, 0o775, 0),
		"group-writable, other":  mk("gwother", 0o755, 0o775, 65534),
		"world-writable dir":     mk("wwdir", 0o777, 0o755, 0),
		"sticky world-writable":  mk("sticky", os.ModeSticky|0o777, 0o755, 0),
		"link to unsafe":         "",
		"link in unsafe to safe": "",
	}
	layouts["link to unsafe"] = filepath.Join(base, "safe", "link.sh")
	os.Symlink(layouts["world-writable dir"], layouts["link to unsafe"])
	layouts["link in unsafe to safe"] = filepath.Join(base, "wwdir", "link.sh")
	os.Symlink(layouts["safe"], layouts["link in unsafe to safe"])

	type verdict struct{ disabled, violation, insecure bool }
	for name, path := range layouts {
		for _, globals := range []string{"script_user root", "script_user root\n  enable_script_security", "enable_script_security"} {
			if globals == "enable_script_security" {
				if _, err := user.Lookup(script.DefaultUser); err == nil {
					continue // the default user exists here: nothing to compare
				}
			}
			t.Run(name+"/"+strings.ReplaceAll(globals, "\n  ", "+"), func(t *testing.T) {
				conf := filepath.Join(t.TempDir(), "keepalived.conf")
				body := "global_defs {\n  " + globals + "\n}\nvrrp_script chk {\n  script \"" + path + "\"\n}\n" +
					"vrrp_instance VI_1 {\n  interface lo\n  virtual_router_id 51\n  priority 100\n" +
					"  virtual_ipaddress { 192.0.2.1/32 }\n  track_script { chk }\n}\n"
				if err := os.WriteFile(conf, []byte(body), 0o644); err != nil {
					t.Fatal(err)
				}
				ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
				defer cancel()
				out, _ := exec.CommandContext(ctx, bin, "-t", "-l", "-f", conf).CombinedOutput()
				ka := verdict{
					disabled: strings.Contains(string(out), "Disabling track script chk") ||
						strings.Contains(string(out), "Unable to set default user for vrrp script chk"),
					violation: strings.Contains(string(out), "SECURITY VIOLATION"),
					insecure:  strings.Contains(string(out), "There are insecure scripts"),
				}
				_, ds := loader.Load(conf, loader.Options{ConfigID: "kwtest"})
				var kw verdict
				for _, d := range ds {
					switch {
					case d.Keyword == "vrrp_script" && strings.Contains(d.Message, "will not run"):
						kw.disabled = true
					case d.Severity == config.Security && strings.Contains(d.Message, "SECURITY VIOLATION"):
						kw.violation = true
						kw.insecure = strings.Contains(d.Message, "There are insecure scripts")
					}
				}
				if kw != ka {
					t.Errorf("keepwatch %+v, keepalived %+v\nkeepwatch:\n%s\nkeepalived:\n%s", kw, ka, ds, out)
				}
			})
		}
	}
}
