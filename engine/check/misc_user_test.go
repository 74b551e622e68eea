package check

import (
	"os"
	"os/user"
	"path/filepath"
	"strings"
	"testing"
	"time"

	runner "github.com/keepwatch/keepwatch/engine/script"
)

// TestMiscScriptUser: misc_path runs as global_defs' script_user (it used
// to ignore it), with that user's group only; under enable_script_security
// a misc_path in a directory anyone can write is refused, not run.
func TestMiscScriptUser(t *testing.T) {
	if os.Geteuid() != 0 {
		if os.Getenv("CI") != "" {
			t.Fatal("needs root in CI")
		}
		t.Skip("needs root")
	}
	nobody, err := user.Lookup("nobody")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	for d := dir; d != os.TempDir() && d != "/"; d = filepath.Dir(d) {
		os.Chmod(d, 0o755)
	}
	out := filepath.Join(dir, "out")
	os.Mkdir(out, 0o777)
	os.Chmod(out, 0o777)
	id := script(t, dir, "id.sh", `echo "$(id -u) $(id -G)" > `+filepath.Join(out, "id"))
	tg := miscTarget(id, nil, false, 5*time.Second)
	tg.Scripts = runner.Policy{User: "nobody", Security: true}
	probe(t, ProbeMisc, tg, true, "")
	if b, _ := os.ReadFile(filepath.Join(out, "id")); strings.TrimSpace(string(b)) != nobody.Uid+" "+nobody.Gid {
		t.Errorf("misc_path ran as %q, want %q", b, nobody.Uid+" "+nobody.Gid)
	}

	marker := filepath.Join(out, "ran")
	unsafe := script(t, out, "unsafe.sh", "touch "+marker)
	tg = miscTarget(unsafe, nil, false, 5*time.Second)
	tg.Scripts = runner.Policy{User: "root", Security: true}
	probe(t, ProbeMisc, tg, false, string(ReasonInsecure))
	if _, err := os.Stat(marker); err == nil {
		t.Error("the unsafe misc_path ran")
	}
}
