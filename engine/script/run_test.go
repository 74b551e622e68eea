package script

import (
	"context"
	"os"
	"os/user"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

// needRoot stops a test that must switch users; in CI it must run.
func needRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		if os.Getenv("CI") != "" {
			t.Fatal("needs root in CI")
		}
		t.Skip("needs root")
	}
}

// openDir returns a fresh directory every user can enter (t.TempDir's
// parents are 0700), for scripts run as another user.
func openDir(t *testing.T, mode os.FileMode) string {
	t.Helper()
	d := t.TempDir()
	for p := d; p != os.TempDir() && p != "/"; p = filepath.Dir(p) {
		if err := os.Chmod(p, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Chmod(d, mode); err != nil {
		t.Fatal(err)
	}
	return d
}

func TestEnviron(t *testing.T) {
	in := []string{"PATH=/bin", "KEEPWATCH_LISTEN=:9", "KEEPWATCH_=x", "OTEL_EXPORTER_OTLP_HEADERS=a=b",
		"OTEL_EXPORTER_OTLP_TRACES_HEADERS=c=d", "OTEL_EXPORTER_OTLP_ENDPOINT=http://x", "OTEL_SERVICE_NAME=k",
		"MY_KEEPWATCH_NOTE=1", "LANG=C"}
	want := []string{"PATH=/bin", "OTEL_EXPORTER_OTLP_ENDPOINT=http://x", "OTEL_SERVICE_NAME=k", "MY_KEEPWATCH_NOTE=1", "LANG=C"}
	if got := Environ(in); !slices.Equal(got, want) {
		t.Errorf("Environ = %q, want %q", got, want)
	}
}

// TestRunAsUser: a script run as a non-root user has that user's uid and
// primary group and no other group (not root's), the environment less
// keepwatch's settings and OTLP headers, and none of this process's
// descriptors. Both ways of naming the user are tried: the script's own
// user and script_user.
func TestRunAsUser(t *testing.T) {
	needRoot(t)
	const secret = "authorization=Bearer s3cret-token"
	t.Setenv("OTEL_EXPORTER_OTLP_HEADERS", secret)
	t.Setenv("OTEL_EXPORTER_OTLP_METRICS_HEADERS", secret)
	t.Setenv("KEEPWATCH_WEB_LISTEN_ADDRESS", "127.0.0.1:1")
	t.Setenv("SCRIPT_VISIBLE", "yes")

	// A descriptor this process holds without close-on-exec, as one
	// inherited from a service manager would be.
	f, err := os.Open(os.DevNull)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	const leakFD = 57
	if err := unix.Dup2(int(f.Fd()), leakFD); err != nil {
		t.Fatal(err)
	}
	defer unix.Close(leakFD)

	u, err := user.Lookup("nobody")
	if err != nil {
		t.Fatalf("user nobody: %v", err)
	}
	// Make this process hold a supplementary group nobody is not in, so a
	// child that kept this process's groups would show it (syscall's
	// Setgroups changes every thread, unlike x/sys/unix's).
	groups, _ := syscall.Getgroups()
	if err := syscall.Setgroups(append(slices.Clone(groups), 4242)); err != nil {
		t.Fatal(err)
	}
	defer syscall.Setgroups(groups)

	dir := openDir(t, 0o777)
	out := filepath.Join(dir, "out")
	sh := filepath.Join(dir, "id.sh")
	body := "#!/bin/sh\n{ echo uid=$(id -u); echo groups=$(id -G); [ -e /proc/$$/fd/57 ] && echo leaked=57; env; } > " + out + "\n"
	if err := os.WriteFile(sh, []byte(body), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		spec Spec
	}{
		{"own user", Spec{Argv: []string{sh}, User: "nobody"}},
		{"script_user", Spec{Argv: []string{sh}, Policy: Policy{User: "nobody", Security: true}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			os.Remove(out)
			if r := Run(context.Background(), tc.spec); !r.OK() {
				t.Fatalf("run: %+v", r)
			}
			b, err := os.ReadFile(out)
			if err != nil {
				t.Fatal(err)
			}
			got := string(b)
			for _, want := range []string{"uid=" + u.Uid + "\n", "groups=" + u.Gid + "\n", "SCRIPT_VISIBLE=yes\n", "PATH="} {
				if !strings.Contains(got, want) {
					t.Errorf("script output lacks %q:\n%s", want, got)
				}
			}
			for _, bad := range []string{secret, "KEEPWATCH_", "OTEL_EXPORTER_OTLP_HEADERS", "leaked="} {
				if strings.Contains(got, bad) {
					t.Errorf("script output has %q:\n%s", bad, got)
				}
			}
		})
	}
}

// TestRunAsRootDropsGroups: keepalived's setgroups(1, &gid) applies to a
// root script too, so it does not keep this process's other groups.
func TestRunAsRootDropsGroups(t *testing.T) {
	needRoot(t)
	groups, _ := syscall.Getgroups()
	if err := syscall.Setgroups(append(slices.Clone(groups), 4242)); err != nil {
		t.Fatal(err)
	}
	defer syscall.Setgroups(groups)
	out := filepath.Join(t.TempDir(), "out")
	sh := writeScript(t, "id -G > "+out)
	if r := Run(context.Background(), Spec{Argv: []string{sh}, User: "root"}); !r.OK() {
		t.Fatalf("run: %+v", r)
	}
	if b, _ := os.ReadFile(out); strings.TrimSpace(string(b)) != "0" {
		t.Errorf("root script groups = %q, want only 0", b)
	}
}
