package track

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/keepwatch/keepwatch/engine/script"
)

// TestReadRegularHostile: what another process can put where a tracked
// file should be. A FIFO (with no writer: opening or reading it the usual
// way blocks forever), a directory and a device are errors returned at
// once; a 1 GB sparse file costs one MaxFileRead read.
func TestReadRegularHostile(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o644); err != nil {
		t.Fatal(err)
	}
	big := filepath.Join(dir, "big")
	f, err := os.Create(big)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString("  17 trailing\n"); err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(1 << 30); err != nil {
		t.Fatal(err)
	}
	f.Close()
	for _, tc := range []struct {
		path    string
		notReg  bool
		want    int64
		wantLen int
	}{
		{fifo, true, 0, 0},
		{dir, true, 0, 0},
		{"/dev/zero", true, 0, 0},
		{big, false, 17, MaxFileRead},
	} {
		done := make(chan struct{})
		var b []byte
		var err error
		go func() {
			defer close(done)
			b, err = ReadRegular(tc.path, MaxFileRead)
		}()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			t.Fatalf("ReadRegular(%s) blocked", tc.path)
		}
		if tc.notReg {
			if !errors.Is(err, ErrNotRegular) {
				t.Errorf("ReadRegular(%s) = %v, want ErrNotRegular", tc.path, err)
			}
			if v, err := ReadValue(tc.path); v != 0 || !errors.Is(err, ErrNotRegular) {
				t.Errorf("ReadValue(%s) = %d, %v", tc.path, v, err)
			}
			continue
		}
		if err != nil || len(b) != tc.wantLen {
			t.Errorf("ReadRegular(%s) = %d bytes, %v; want %d", tc.path, len(b), err, tc.wantLen)
		}
		if v, err := ReadValue(tc.path); v != tc.want || err != nil {
			t.Errorf("ReadValue(%s) = %d, %v; want %d", tc.path, v, err, tc.want)
		}
	}
}

// TestWriteInitNoFollow: init_file never writes through a symbolic link or
// into a FIFO, whether the file is new or overwritten.
func TestWriteInitNoFollow(t *testing.T) {
	dir := t.TempDir()
	victim := filepath.Join(dir, "victim")
	os.WriteFile(victim, []byte("precious\n"), 0o644)
	link := filepath.Join(dir, "link")
	os.Symlink(victim, link)
	dangling := filepath.Join(dir, "dangling")
	os.Symlink(filepath.Join(dir, "created-through-link"), dangling)
	fifo := filepath.Join(dir, "fifo")
	syscall.Mkfifo(fifo, 0o644)

	for _, overwrite := range []bool{false, true} {
		for _, p := range []string{link, dangling} {
			wrote, err := WriteInit(p, 5, overwrite)
			if wrote {
				t.Errorf("WriteInit(%s, overwrite=%v) wrote", p, overwrite)
			}
			if overwrite && (err == nil || !strings.Contains(err.Error(), "symbolic link")) {
				t.Errorf("WriteInit(%s, overwrite) = %v, want a symbolic link refusal", p, err)
			}
		}
		// A FIFO with a reader would accept the write; it is refused.
		r, err := os.OpenFile(fifo, os.O_RDONLY|syscall.O_NONBLOCK, 0)
		if err != nil {
			t.Fatal(err)
		}
		wrote, err := WriteInit(fifo, 5, overwrite)
		r.Close()
		if wrote || (overwrite && !errors.Is(err, ErrNotRegular)) {
			t.Errorf("WriteInit(fifo, overwrite=%v) = %v, %v", overwrite, wrote, err)
		}
	}
	if b, _ := os.ReadFile(victim); string(b) != "precious\n" {
		t.Errorf("victim = %q: written through the link", b)
	}
	if _, err := os.Stat(filepath.Join(dir, "created-through-link")); err == nil {
		t.Error("a file was created through the dangling link")
	}
	// The ordinary cases still work.
	p := filepath.Join(dir, "plain")
	if wrote, err := WriteInit(p, 7, false); !wrote || err != nil {
		t.Fatalf("new file: %v, %v", wrote, err)
	}
	if wrote, _ := WriteInit(p, 9, false); wrote {
		t.Error("existing file rewritten without overwrite")
	}
	if wrote, err := WriteInit(p, -3, true); !wrote || err != nil {
		t.Fatalf("overwrite: %v, %v", wrote, err)
	}
	if b, _ := os.ReadFile(p); string(b) != "-3\n" {
		t.Errorf("after overwrite: %q", b)
	}
}

// TestFileTrackerFIFO: a track_file replaced by a FIFO puts the tracker in
// an error state (which faults its instances) without blocking, and it
// recovers when a regular file is back; a symlinked init_file is left alone
// and the tracker runs on.
func TestFileTrackerFIFO(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "prio")
	victim := filepath.Join(dir, "victim")
	os.WriteFile(victim, []byte("3\n"), 0o644)
	os.Symlink(victim, p)
	init := 7
	st := newStates()
	f := &File{Name: "f", Path: p, Init: &init, InitOverwrite: true, OnChange: st.on}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- f.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}()
	// init_file refused the link; the value read through it is 3.
	if got := st.next(t, 2*time.Second); got.Value != 3 || got.Err != "" {
		t.Fatalf("initial = %+v, want 3 read through the link", got)
	}
	if b, _ := os.ReadFile(victim); string(b) != "3\n" {
		t.Fatalf("init_file wrote through the link: %q", b)
	}
	os.Remove(p)
	if got := st.next(t, 2*time.Second); got.Value != 0 || got.Err != "" {
		t.Fatalf("removed = %+v", got)
	}
	tmp := filepath.Join(dir, ".fifo")
	syscall.Mkfifo(tmp, 0o644)
	os.Rename(tmp, p)
	got := st.next(t, 2*time.Second)
	if got.Err == "" || !strings.Contains(got.Err, "not a regular file") {
		t.Fatalf("fifo = %+v, want an error state", got)
	}
	s := NewSet(100, []Ref{{Kind: KindFile, Name: "f", Weight: 5}})
	s.Update(KindFile, "f", got)
	if _, fault := s.Priority(); !fault {
		t.Error("a track_file in error must fault the instance")
	}
	os.WriteFile(tmp, []byte("2\n"), 0o644)
	os.Rename(tmp, p)
	if got := st.next(t, 2*time.Second); got.Value != 2 || got.Err != "" {
		t.Fatalf("back to a file = %+v", got)
	}
}

// TestSetDisabled: a vrrp_script that script security disabled counts for
// nothing, as keepalived removes it from the instances; even a weight-0
// one does not hold the instance in FAULT.
func TestSetDisabled(t *testing.T) {
	s := NewSet(100, []Ref{{Kind: KindScript, Name: "chk", Weight: 0}, {Kind: KindScript, Name: "w", Weight: -20}})
	s.Update(KindScript, "chk", State{Disabled: true, Err: "unsafe permissions"})
	s.Update(KindScript, "w", State{Disabled: true, Err: "unsafe permissions"})
	if p, fault := s.Priority(); p != 100 || fault {
		t.Errorf("disabled scripts: priority %d fault %v, want 100 and no fault", p, fault)
	}
}

// TestScriptDisabled: under enable_script_security a vrrp_script in a
// directory anyone can write is not run and reports Disabled (with why);
// once the directory is fixed it runs again, without a reload.
func TestScriptDisabled(t *testing.T) {
	if os.Geteuid() != 0 {
		if os.Getenv("CI") != "" {
			t.Fatal("needs root in CI")
		}
		t.Skip("needs root (root-owned script paths)")
	}
	dir := t.TempDir()
	os.Chmod(dir, 0o777)
	marker := filepath.Join(dir, "ran")
	sh := filepath.Join(dir, "chk.sh")
	os.WriteFile(sh, []byte("#!/bin/sh\ntouch "+marker+"\n"), 0o755)
	st := newStates()
	s := &Script{Name: "chk", Spec: script.Spec{Argv: []string{sh}, Policy: script.Policy{User: "root", Security: true},
		Timeout: 5 * time.Second}, Interval: 50 * time.Millisecond, OnChange: st.on}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { s.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()
	got := st.next(t, 5*time.Second)
	if !got.Disabled || !strings.Contains(got.Err, "unsafe permissions") {
		t.Fatalf("first state = %+v, want disabled as unsafe", got)
	}
	if _, err := os.Stat(marker); err == nil {
		t.Fatal("the unsafe script ran")
	}
	os.Chmod(dir, 0o755)
	if got := st.next(t, 5*time.Second); got.Disabled || !got.Up {
		t.Fatalf("after the fix = %+v, want up", got)
	}
}
