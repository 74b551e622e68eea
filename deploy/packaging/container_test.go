package packaging

import (
	"debug/elf"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

type instruction struct {
	op   string
	args string
}

// containerfile reads deploy/container/Containerfile's instructions,
// joining continued lines.
func containerfile(t *testing.T) []instruction {
	t.Helper()
	var out []instruction
	cont := ""
	for _, line := range strings.Split(string(readFile(t, filepath.Join(deployDir(t), "container", "Containerfile"))), "\n") {
		line = strings.TrimSpace(line)
		if cont == "" && (line == "" || line[0] == '#') {
			continue
		}
		if strings.HasSuffix(line, "\\") {
			cont += strings.TrimSuffix(line, "\\") + " "
			continue
		}
		line, cont = cont+line, ""
		op, args, _ := strings.Cut(line, " ")
		out = append(out, instruction{strings.ToUpper(op), strings.TrimSpace(args)})
	}
	return out
}

// TestContainerfile checks the recipe: two stages, the static binary
// copied from bin/keepwatch, the keepalived symlink, port 9759, and a CMD
// keepwatch run accepts.
func TestContainerfile(t *testing.T) {
	var froms []string
	var entry, cmd []string
	copied, linked, exposed := false, false, false
	for _, in := range containerfile(t) {
		switch in.op {
		case "FROM":
			froms = append(froms, in.args)
		case "COPY":
			copied = copied || strings.HasPrefix(in.args, "bin/keepwatch ")
		case "RUN":
			linked = linked || strings.Contains(in.args, "ln -s ../bin/keepwatch /out/usr/sbin/keepalived")
		case "EXPOSE":
			exposed = in.args == "9759"
		case "ENTRYPOINT", "CMD":
			var v []string
			if err := json.Unmarshal([]byte(in.args), &v); err != nil {
				t.Fatalf("%s %s: not the exec (JSON) form: %v", in.op, in.args, err)
			}
			if in.op == "CMD" {
				cmd = v
			} else {
				entry = v
			}
		}
	}
	if len(froms) != 2 || !strings.Contains(froms[1], "distroless/static") {
		t.Errorf("stages %q: want a layout stage, then distroless static", froms)
	}
	if !copied || !linked || !exposed {
		t.Errorf("copies bin/keepwatch %v, links keepalived %v, exposes 9759 %v: want all", copied, linked, exposed)
	}
	if len(entry) != 1 || entry[0] != "/usr/bin/keepwatch" {
		t.Errorf("ENTRYPOINT %q, want [/usr/bin/keepwatch]", entry)
	}
	checkRunArgs(t, "Containerfile CMD", cmd, "/etc/keepalived/keepalived.conf")
}

// TestContainerRoot builds the binary as `make build` does, checks that it
// is static (the distroless base has no libc), lays out the image's root as
// the Containerfile's first stage does, and runs it there under chroot:
// keepalived -t through the symlink, and keepwatch check.
func TestContainerRoot(t *testing.T) {
	bin := keepwatchBinary(t)
	f, err := elf.Open(bin)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			t.Fatal("keepwatch is dynamically linked: it would not start on the distroless static base")
		}
	}
	needRoot(t)
	root := t.TempDir()
	for _, d := range []string{"usr/bin", "usr/sbin", "etc/keepalived"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(root, "usr/bin/keepwatch"), readFile(t, bin), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("../bin/keepwatch", filepath.Join(root, "usr/sbin/keepalived")); err != nil {
		t.Fatal(err)
	}
	conf := readFile(t, filepath.Join(deployDir(t), "examples", "unicast.conf"))
	if err := os.WriteFile(filepath.Join(root, "etc/keepalived/keepalived.conf"), conf, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{
		{"/usr/sbin/keepalived", "--dont-fork", "-t", "-f", "/etc/keepalived/keepalived.conf"},
		{"/usr/bin/keepwatch", "check", "-f", "/etc/keepalived/keepalived.conf"},
	} {
		out, err := exec.Command("chroot", append([]string{root}, args...)...).CombinedOutput()
		if err != nil {
			t.Errorf("chroot %v: %v\n%s", args, err, out)
		}
	}
	// A broken config must fail there too, or the run above proves nothing.
	if err := os.WriteFile(filepath.Join(root, "etc/keepalived/keepalived.conf"), []byte("vrrp_instance X {\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("chroot", root, "/usr/sbin/keepalived", "-t", "-f", "/etc/keepalived/keepalived.conf").CombinedOutput(); err == nil {
		t.Errorf("keepalived -t accepted a broken config:\n%s", out)
	}
}
