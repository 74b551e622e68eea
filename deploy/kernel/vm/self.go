package vm

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// Self describes a run of the calling package's own test binary inside a
// VM (the kernel tier, DESIGN.md §8.3): the same test function is both
// sides, booting the VM on the host and doing the work in the guest, told
// apart by KEEPWATCH_VM.
type Self struct {
	// Name is the test binary's file name, at the root of the image.
	Name string
	// Mode is the guest's KEEPWATCH_VM.
	Mode string
	// Flags are the guest test binary's flags (-test.run=… and so on).
	Flags string
	// Setup is shell run before the test binary (network set-up).
	Setup string
	// Modules, Binaries and Files go into the Image; the test binary is
	// added to Files.
	Modules  []string
	Binaries []string
	Files    map[string][]byte
	// Timeout bounds the boot and the guest's run.
	Timeout time.Duration
	// QEMUArgs are further qemu arguments (such as Deterministic).
	QEMUArgs []string
}

// selfMemMB is the guest's memory: a static Go test binary in an
// initramfs (which lives in RAM) needs well over qemu's default 128 MB.
const selfMemMB = 1024

// RunSelf builds the test binary of the package in the current directory
// (static: the guest has no libc), boots it in a VM as s describes, and
// returns the guest's console output from the test binary and whether it
// exited 0. Anything missing on the host (kernel, qemu, tools) fails the
// test loudly, in CI and out.
func RunSelf(tb testing.TB, s Self) (string, bool) {
	tb.Helper()
	version, vmlinuz, err := FindKernel()
	if err != nil {
		tb.Fatal(err)
	}
	tools := append([]string{"qemu-system-x86_64", "modprobe", "ldd"}, s.Binaries...)
	for _, tool := range append(tools, Busybox) {
		if _, err := exec.LookPath(tool); err != nil {
			tb.Fatalf("kernel tier needs %s (make deps installs it): %v", tool, err)
		}
	}
	dir := tb.TempDir()
	bin := filepath.Join(dir, s.Name)
	build := exec.Command("go", "test", "-c", "-o", bin, ".")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		tb.Fatalf("building the static test binary: %v\n%s", err, out)
	}
	testBin, err := os.ReadFile(bin)
	if err != nil {
		tb.Fatal(err)
	}
	files := map[string][]byte{s.Name: testBin}
	for name, b := range s.Files {
		files[name] = b
	}
	img := Image{Version: version, Modules: s.Modules, Binaries: s.Binaries, Files: files, Script: s.script()}
	initrd := filepath.Join(dir, "initrd.cpio")
	if err := Build(img, initrd); err != nil {
		tb.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), s.Timeout)
	defer cancel()
	start := time.Now()
	out, err := Boot(ctx, vmlinuz, initrd, selfMemMB, s.QEMUArgs...)
	tb.Logf("guest ran %v", time.Since(start).Round(time.Millisecond))
	if err != nil {
		tb.Fatalf("%v\nconsole:\n%s", err, out)
	}
	body, ok, err := Verdict(out)
	if err != nil {
		tb.Fatalf("%v; console:\n%s", err, out)
	}
	return body, ok
}

// Markers around the guest test binary's output on the console, which
// also carries the kernel's and /init's messages.
const (
	beginMarker = "KWVM-BEGIN"
	exitMarker  = "KWVM-EXIT"
)

// script is the guest shell: Setup, then the test binary between the
// markers, the closing one with its exit status.
func (s Self) script() string {
	return s.Setup + fmt.Sprintf("echo %s\nKEEPWATCH_VM=%s /%s %s\necho %s $?\n",
		beginMarker, s.Mode, s.Name, s.Flags, exitMarker)
}

var exitRE = regexp.MustCompile(exitMarker + ` (\d+)`)

// Verdict reads a RunSelf guest's console: the test binary's output and
// whether it exited 0. It is an error if the binary never started or never
// finished (a crash or kernel panic).
func Verdict(console string) (string, bool, error) {
	_, body, found := strings.Cut(console, beginMarker)
	if !found {
		return "", false, errors.New("guest never started the tests")
	}
	m := exitRE.FindStringSubmatch(body)
	if m == nil {
		return "", false, errors.New("guest test binary did not finish (crash or kernel panic)")
	}
	body, _, _ = strings.Cut(body, exitMarker)
	return body, m[1] == "0", nil
}
