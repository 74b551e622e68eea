package check

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/keepwatch/keepwatch/engine/config"
)

// hostileFiles makes what another process can leave where a FILE_CHECK
// file should be: a FIFO with no writer, a directory, a 1 GB sparse file
// starting with a value, and a symbolic link to a file holding one.
func hostileFiles(t *testing.T) (dir, fifo, big, link string) {
	t.Helper()
	dir = t.TempDir()
	fifo = filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o644); err != nil {
		t.Fatal(err)
	}
	big = filepath.Join(dir, "big")
	f, err := os.Create(big)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString("3\n")
	if err := f.Truncate(1 << 30); err != nil {
		t.Fatal(err)
	}
	f.Close()
	target := filepath.Join(dir, "target")
	os.WriteFile(target, []byte("1\n"), 0o644)
	link = filepath.Join(dir, "link")
	os.Symlink(target, link)
	return dir, fifo, big, link
}

// TestFileHostile: FILE_CHECK on a FIFO or a directory fails at once (it
// would block forever, or make no sense); a 1 GB file is read for its
// first bytes only; a symbolic link is read through.
func TestFileHostile(t *testing.T) {
	dir, fifo, big, link := hostileFiles(t)
	for _, tc := range []struct {
		name, path string
		ok         bool
		weight     int
		errHas     string
	}{
		{"fifo", fifo, false, 0, "not a regular file"},
		{"directory", dir, false, 0, "not a regular file"},
		{"1 GB sparse", big, true, 6, ""},
		{"symlink", link, true, 2, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tg := &Target{Type: config.FileCheck, TrackFile: tc.path, File: &config.FileSpec{Weight: 2}}
			done := make(chan Result, 1)
			go func() { done <- ProbeFile(context.Background(), tg) }()
			var r Result
			select {
			case r = <-done:
			case <-time.After(5 * time.Second):
				t.Fatalf("FILE_CHECK on %s blocked", tc.name)
			}
			if r.OK != tc.ok || (tc.ok && r.Weight != tc.weight) {
				t.Errorf("result %+v, want ok=%v weight %d", r, tc.ok, tc.weight)
			}
			if !tc.ok && (r.Reason != ReasonFile || r.Err == nil || !strings.Contains(r.Err.Error(), tc.errHas)) {
				t.Errorf("result %+v, want reason file and %q", r, tc.errHas)
			}
		})
	}
}

// TestSchedulerFileFIFO: a scheduler whose FILE_CHECK file is a FIFO starts,
// answers Status at once and throughout, and reports the real server down;
// its track_file's init_file is not written through a symbolic link.
func TestSchedulerFileFIFO(t *testing.T) {
	dir, fifo, _, link := hostileFiles(t)
	init := 9
	srv := []RealServer{
		{Service: "vs", Target: "192.0.2.1:80", Weight: 1, Checkers: []Checker{{
			Target:    Target{Type: config.FileCheck, TrackFile: fifo, File: &config.FileSpec{}},
			DelayLoop: 20 * time.Millisecond, DelayBeforeRetry: 20 * time.Millisecond}}},
		{Service: "vs", Target: "192.0.2.2:80", Weight: 1, Checkers: []Checker{{
			Target: Target{Type: config.FileCheck, TrackFile: link, File: &config.FileSpec{Weight: 1},
				TrackInit: &init, TrackInitOverwrite: true},
			DelayLoop: 20 * time.Millisecond, DelayBeforeRetry: 20 * time.Millisecond}}},
	}
	s := New(srv, Options{})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	defer func() { cancel(); <-done }()
	deadline := time.Now().Add(2 * time.Second)
	for {
		st := make(chan []ServerStatus, 1)
		go func() { st <- s.Status() }()
		var got []ServerStatus
		select {
		case got = <-st:
		case <-time.After(time.Second):
			t.Fatal("Status blocked while a FILE_CHECK file is a FIFO")
		}
		if len(got) == 2 && !got[0].Up && got[0].Checkers[0].HasRun && got[1].Up {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("status = %+v, want the FIFO's server down and the other up", got)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "target")); string(b) != "1\n" {
		t.Errorf("init_file wrote through the link: target = %q", b)
	}
}
