package packaging

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"sort"
	"sync"
	"testing"
)

// deployDir is deploy/, the parent of this package's directory.
func deployDir(t *testing.T) string {
	t.Helper()
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		t.Fatal("no caller information")
	}
	return filepath.Dir(filepath.Dir(file))
}

func repoRoot(t *testing.T) string { return filepath.Dir(deployDir(t)) }

func readFile(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// need finds a tool: under CI it must be there; elsewhere the test is
// skipped in -short mode only.
func need(t *testing.T, tool string) string {
	t.Helper()
	p, err := exec.LookPath(tool)
	if err == nil {
		return p
	}
	if os.Getenv("CI") == "" && testing.Short() {
		t.Skipf("%s not installed", tool)
	}
	t.Fatalf("%s not installed: %v", tool, err)
	return ""
}

func needRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() == 0 {
		return
	}
	if os.Getenv("CI") == "" && testing.Short() {
		t.Skip("needs root")
	}
	t.Fatal("needs root")
}

var (
	buildOnce sync.Once
	buildBin  string
	buildErr  error
	buildOut  []byte
)

// keepwatchBinary builds cmd/keepwatch once for the package's tests.
func keepwatchBinary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "kwpkg")
		if err != nil {
			buildErr = err
			return
		}
		buildBin = filepath.Join(dir, "keepwatch")
		cmd := exec.Command("go", "build", "-o", buildBin, "./cmd/keepwatch")
		cmd.Dir = repoRoot(t)
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		buildOut, buildErr = cmd.CombinedOutput()
	})
	if buildErr != nil {
		t.Fatalf("go build ./cmd/keepwatch: %v\n%s", buildErr, buildOut)
	}
	return buildBin
}

var flagRE = regexp.MustCompile(`--[a-z][a-z0-9.-]*`)

// runFlags lists the long flags `keepwatch run` accepts, from its help.
func runFlags(t *testing.T) map[string]bool {
	t.Helper()
	out, err := exec.Command(keepwatchBinary(t), "run", "--help").CombinedOutput()
	if err != nil {
		t.Fatalf("keepwatch run --help: %v\n%s", err, out)
	}
	flags := map[string]bool{}
	for _, f := range flagRE.FindAllString(string(out), -1) {
		flags[f] = true
	}
	return flags
}

// checkRunArgs fails unless args is `run` followed by flags that
// `keepwatch run` accepts, with the config file at want.
func checkRunArgs(t *testing.T, where string, args []string, want string) {
	t.Helper()
	if len(args) == 0 || args[0] != "run" {
		t.Fatalf("%s: args %q do not start with run", where, args)
	}
	known := runFlags(t)
	file := ""
	for i := 1; i < len(args); i++ {
		a := args[i]
		switch {
		case a == "-f" && i+1 < len(args):
			file = args[i+1]
			i++
		case flagRE.MatchString(a):
			name := flagRE.FindString(a)
			if !known[name] {
				var names []string
				for k := range known {
					names = append(names, k)
				}
				sort.Strings(names)
				t.Errorf("%s: keepwatch run has no flag %s (has %v)", where, name, names)
			}
		default:
			t.Errorf("%s: unexpected argument %q", where, a)
		}
	}
	if file != want {
		t.Errorf("%s: config file %q, want %q", where, file, want)
	}
}

// TestMain removes the binary keepwatchBinary built.
func TestMain(m *testing.M) {
	code := m.Run()
	if buildBin != "" {
		_ = os.RemoveAll(filepath.Dir(buildBin))
	}
	os.Exit(code)
}
