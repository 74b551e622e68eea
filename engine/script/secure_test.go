package script

import (
	"context"
	"errors"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"testing"
)

// TestCheck applies keepalived's check_security rules (lib/notify.c) to
// scripts run as root, each layout built for real; the verdicts for the
// same layouts from keepalived 2.2.7 -t are in TestCheckMatchesKeepalived
// (engine/config).
func TestCheck(t *testing.T) {
	needRoot(t)
	nobody, err := user.Lookup("nobody")
	if err != nil {
		t.Fatal(err)
	}
	nuid, _ := strconv.Atoi(nobody.Uid)
	ngid, _ := strconv.Atoi(nobody.Gid)
	root := Identity{User: "root"}
	base := openDir(t, 0o755)
	mk := func(t *testing.T, rel string, dirMode, fileMode os.FileMode) string {
		t.Helper()
		d := filepath.Join(base, t.Name())
		if err := os.MkdirAll(filepath.Dir(d), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Mkdir(d, dirMode); err != nil {
			t.Fatal(err)
		}
		os.Chmod(d, dirMode) // past the umask
		p := filepath.Join(d, rel)
		if err := os.WriteFile(p, []byte("#!/bin/sh\nexit 0\n"), fileMode); err != nil {
			t.Fatal(err)
		}
		os.Chmod(p, fileMode)
		return p
	}
	for _, tc := range []struct {
		name    string
		setup   func(t *testing.T) string
		id      Identity
		want    error
		runPath func(p string) string // nil: the path itself
	}{
		{"safe", func(t *testing.T) string { return mk(t, "s.sh", 0o755, 0o755) }, root, nil, nil},
		{"world-writable script", func(t *testing.T) string { return mk(t, "s.sh", 0o755, 0o757) }, root, ErrInsecure, nil},
		{"group-writable script, group root", func(t *testing.T) string { return mk(t, "s.sh", 0o755, 0o775) }, root, nil, nil},
		{"group-writable script, other group", func(t *testing.T) string {
			p := mk(t, "s.sh", 0o755, 0o775)
			os.Chown(p, 0, ngid)
			return p
		}, root, ErrInsecure, nil},
		{"script owned by another user", func(t *testing.T) string {
			p := mk(t, "s.sh", 0o755, 0o755)
			os.Chown(p, nuid, 0)
			return p
		}, root, ErrInsecure, nil},
		{"world-writable directory", func(t *testing.T) string { return mk(t, "s.sh", 0o777, 0o755) }, root, ErrInsecure, nil},
		{"group-writable directory, other group", func(t *testing.T) string {
			p := mk(t, "s.sh", 0o775, 0o755)
			os.Chown(filepath.Dir(p), 0, ngid)
			return p
		}, root, ErrInsecure, nil},
		{"sticky world-writable directory", func(t *testing.T) string { return mk(t, "s.sh", os.ModeSticky|0o777, 0o755) }, root, nil, nil},
		{"directory owned by another user", func(t *testing.T) string {
			p := mk(t, "s.sh", 0o755, 0o755)
			os.Chown(filepath.Dir(p), nuid, 0)
			return p
		}, root, ErrInsecure, nil},
		{"safe link to a script in a writable directory", func(t *testing.T) string {
			target := mk(t, "s.sh", 0o777, 0o755)
			l := filepath.Join(base, "link-"+filepath.Base(filepath.Dir(target)))
			os.Symlink(target, l)
			return l
		}, root, ErrInsecure, nil},
		{"link in a writable directory to a safe script runs the target", func(t *testing.T) string {
			target := mk(t, "s.sh", 0o755, 0o755)
			wd := filepath.Join(base, "wd-"+filepath.Base(filepath.Dir(target)))
			os.Mkdir(wd, 0o777)
			os.Chmod(wd, 0o777)
			l := filepath.Join(wd, "other.sh")
			os.Symlink(target, l)
			return l
		}, root, nil, func(p string) string { r, _ := filepath.EvalSymlinks(p); return r }},
		{"missing", func(t *testing.T) string { return filepath.Join(base, "nope.sh") }, root, ErrNotFound, nil},
		{"not executable", func(t *testing.T) string { return mk(t, "s.sh", 0o755, 0o644) }, root, ErrNotExecutable, nil},
		{"non-root user, unsafe script: no protection needed", func(t *testing.T) string { return mk(t, "s.sh", 0o777, 0o757) },
			Identity{User: "nobody", UID: uint32(nuid), GID: uint32(ngid)}, nil, nil},
		{"non-root user, set-uid root script in a writable directory", func(t *testing.T) string {
			p := mk(t, "s.sh", 0o777, 0o755)
			os.Chmod(p, os.ModeSetuid|0o755)
			return p
		}, Identity{User: "nobody", UID: uint32(nuid), GID: uint32(ngid)}, ErrInsecure, nil},
		{"bare name from PATH", func(t *testing.T) string { return "sh" }, root, nil,
			func(string) string {
				p, _ := filepath.EvalSymlinks("/bin/sh")
				r, _ := filepath.EvalSymlinks(p)
				return r
			}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := tc.setup(t)
			got, err := Check(p, tc.id)
			if !errors.Is(err, tc.want) || (tc.want == nil && err != nil) {
				t.Fatalf("Check(%s) = %q, %v; want %v", p, got, err, tc.want)
			}
			if err == nil {
				want := p
				if tc.runPath != nil {
					want = tc.runPath(p)
				}
				if tc.name == "bare name from PATH" {
					// sh is found in PATH; keepalived then runs that file.
					if r, _ := filepath.EvalSymlinks(got); r != want {
						t.Errorf("runs %q (%q), want %q", got, r, want)
					}
					return
				}
				if got != want {
					t.Errorf("runs %q, want %q", got, want)
				}
			}
		})
	}
}

// TestRunSecurity: with enable_script_security an unsafe root script is
// refused (not run) at every run, so a script made unsafe after load is
// caught; without it the same script runs.
func TestRunSecurity(t *testing.T) {
	needRoot(t)
	dir := openDir(t, 0o755)
	marker := filepath.Join(dir, "ran")
	sh := filepath.Join(dir, "s.sh")
	os.WriteFile(sh, []byte("#!/bin/sh\ntouch "+marker+"\n"), 0o755)
	secure := Spec{Argv: []string{sh}, Policy: Policy{User: "root", Security: true}}
	if r := Run(context.Background(), secure); !r.OK() {
		t.Fatalf("safe script: %+v", r)
	}
	os.Remove(marker)
	os.Chmod(dir, 0o777) // now anyone can replace s.sh
	r := Run(context.Background(), secure)
	if !r.Refused || r.Class() != ReasonInsecure || !errors.Is(r.Err, ErrInsecure) {
		t.Fatalf("unsafe script with security: %+v, want refused as insecure", r)
	}
	if _, err := os.Stat(marker); err == nil {
		t.Fatal("the refused script ran")
	}
	lax := secure
	lax.Policy.Security = false
	if r := Run(context.Background(), lax); !r.OK() {
		t.Fatalf("unsafe script without security: %+v, want it run", r)
	}
	if _, err := os.Stat(marker); err != nil {
		t.Fatal("the script did not run without security")
	}
}

func TestResolve(t *testing.T) {
	nobody, err := user.Lookup("nobody")
	if err != nil {
		t.Fatal(err)
	}
	id, err := Policy{User: "nobody"}.Resolve("", "")
	if err != nil || strconv.Itoa(int(id.UID)) != nobody.Uid || strconv.Itoa(int(id.GID)) != nobody.Gid {
		t.Errorf("script_user nobody = %+v, %v", id, err)
	}
	if id, err := (Policy{User: "nobody"}).Resolve("root", ""); err != nil || id.UID != 0 || !id.Root() {
		t.Errorf("own user root over script_user = %+v, %v", id, err)
	}
	if id, err := (Policy{User: "root", Group: "nogroup"}).Resolve("", ""); err != nil || id.GID == 0 || !id.Root() {
		t.Errorf("script_user root nogroup = %+v, %v", id, err)
	}
	if _, err := (Policy{User: "keepwatch-no-such-user"}).Resolve("", ""); err == nil {
		t.Error("missing script_user resolved")
	}
	if _, err := user.Lookup(DefaultUser); err == nil {
		return // the default user exists here: the fallback cannot be seen
	}
	if id, err := (Policy{}).Resolve("", ""); err != nil || id.UID != uint32(os.Geteuid()) {
		t.Errorf("no keepalived_script, no security = %+v, %v; want this process's user", id, err)
	}
	if _, err := (Policy{Security: true}).Resolve("", ""); !errors.Is(err, ErrNoDefaultUser) {
		t.Errorf("no keepalived_script, security: %v, want ErrNoDefaultUser", err)
	}
}
