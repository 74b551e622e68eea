package vm

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestArchiveCpio checks the newc writer against busybox's cpio (the
// busybox-static the kernel tier packs anyway): it must list and extract
// what was put in, with parents created before children.
func TestArchiveCpio(t *testing.T) {
	if _, err := os.Stat(Busybox); err != nil {
		t.Fatalf("busybox-static not installed (make deps): %v", err)
	}
	a := NewArchive()
	a.File("bin/busybox", []byte("#!fake\n"), 0o755)
	a.Symlink("bin/sh", "busybox")
	a.File("mods/00-ip_vs.ko", []byte("odd length"), 0o644)
	a.Dir("proc")
	var buf bytes.Buffer
	if _, err := a.WriteTo(&buf); err != nil {
		t.Fatal(err)
	}
	if buf.Len()%4 != 0 {
		t.Errorf("archive length %d not 4-aligned", buf.Len())
	}
	dir := t.TempDir()
	cmd := exec.Command(Busybox, "cpio", "-idm")
	cmd.Dir = dir
	cmd.Stdin = bytes.NewReader(buf.Bytes())
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("cpio -i: %v: %s", err, out)
	}
	list := exec.Command(Busybox, "cpio", "-it")
	list.Stdin = bytes.NewReader(buf.Bytes())
	out, err := list.Output()
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"bin", "bin/busybox", "bin/sh", "mods", "mods/00-ip_vs.ko", "proc"}
	if diff := cmp.Diff(want, strings.Fields(string(out))); diff != "" {
		t.Errorf("cpio -t (-want +got):\n%s", diff)
	}
	if b, err := os.ReadFile(filepath.Join(dir, "mods/00-ip_vs.ko")); err != nil || string(b) != "odd length" {
		t.Errorf("extracted module %q, %v", b, err)
	}
	if l, err := os.Readlink(filepath.Join(dir, "bin/sh")); err != nil || l != "busybox" {
		t.Errorf("symlink bin/sh → %q, %v", l, err)
	}
	if st, err := os.Stat(filepath.Join(dir, "bin/busybox")); err != nil || st.Mode().Perm() != 0o755 {
		t.Errorf("busybox mode %v, %v", st.Mode(), err)
	}
}
