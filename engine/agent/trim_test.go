package agent

import (
	"errors"
	"io"
	"log/slog"
	"net/netip"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/keepwatch/keepwatch/engine/vrrp/fsm"
)

// The trim drops this test binary's resident text and rodata from the page
// tables, and the code keeps running (the pages fault back in).
func TestTrimExecutablePages(t *testing.T) {
	before, err := RssFileKiB()
	if err != nil {
		t.Fatal(err)
	}
	got, err := TrimExecutablePages()
	if err != nil {
		t.Fatal(err)
	}
	after, err := RssFileKiB()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("trimmed %d mappings, %d bytes (%d skipped): RssFile %d → %d KiB", got.Mappings, got.Bytes, got.Skipped, before, after)
	if got.Mappings == 0 || got.Bytes == 0 {
		t.Fatalf("no mapping of the executable trimmed: %+v", got)
	}
	// A Go test binary keeps well over 2 MiB of its text resident; the
	// trim leaves only what ran since (a few pages with fault-around).
	if after+1024 > before {
		t.Errorf("RssFile %d KiB before the trim, %d after: want at least 1 MiB less", before, after)
	}
	// Everything still runs: the code trimmed above runs again (its pages
	// fault back in), and a second trim works the same.
	if _, err := exeMappings([]byte(sampleSmaps), "/usr/sbin/keepwatch"); err != nil {
		t.Fatal(err)
	}
	if again, err := TrimExecutablePages(); err != nil || again.Mappings != got.Mappings {
		t.Fatalf("second trim: %+v, %v", again, err)
	}
}

// With memory locked (mlock, as a *_no_swap would), nothing is trimmed.
func TestTrimSkipsLockedMemory(t *testing.T) {
	buf := make([]byte, 4096)
	if err := unix.Mlock(buf); err != nil {
		t.Fatalf("mlock: %v", err)
	}
	defer func() { _ = unix.Munlock(buf) }()
	if _, err := TrimExecutablePages(); !errors.Is(err, ErrMemoryLocked) {
		t.Fatalf("trim with a locked page: err %v, want ErrMemoryLocked", err)
	}
}

// smaps as proc(5) shows it: the executable's writable mapping and a
// read-only mapping with private pages (a PIE build's RELRO) are not
// trimmed; another file's mapping is not the executable's.
const sampleSmaps = `00400000-00a00000 r-xp 00000000 08:01 1234 /usr/sbin/keepwatch
Size:               6144 kB
Rss:                5000 kB
Anonymous:             0 kB
00a00000-01000000 r--p 00600000 08:01 1234 /usr/sbin/keepwatch
Size:               6144 kB
Anonymous:             8 kB
01000000-01100000 rw-p 00c00000 08:01 1234 /usr/sbin/keepwatch
Anonymous:           100 kB
01100000-01200000 rw-p 00000000 00:00 0 
Anonymous:          1024 kB
7f0000000000-7f0000100000 r-xp 00000000 08:01 99 /usr/lib/x86_64-linux-gnu/libc.so.6
Anonymous:             0 kB
7f0000200000-7f0000300000 r--p 00000000 08:01 77 /opt/my dir/keepwatch (deleted)
Anonymous:             0 kB
`

func TestExeMappings(t *testing.T) {
	m, err := exeMappings([]byte(sampleSmaps), "/usr/sbin/keepwatch")
	if err != nil {
		t.Fatal(err)
	}
	want := []exeMapping{
		{start: 0x400000, end: 0xa00000},
		{start: 0xa00000, end: 0x1000000, anonKiB: 8},
		{start: 0x1000000, end: 0x1100000, writable: true, anonKiB: 100},
	}
	if len(m) != len(want) {
		t.Fatalf("got %+v, want %+v", m, want)
	}
	for i := range want {
		if m[i] != want[i] {
			t.Errorf("mapping %d: got %+v, want %+v", i, m[i], want[i])
		}
	}
	// A replaced binary: the path with spaces and " (deleted)".
	m, err = exeMappings([]byte(sampleSmaps), "/opt/my dir/keepwatch (deleted)")
	if err != nil || len(m) != 1 || m[0].start != 0x7f0000200000 {
		t.Errorf("deleted executable: got %+v, %v", m, err)
	}
	if _, err := exeMappings([]byte("zz-00 r-xp 0 0:0 1 /usr/sbin/keepwatch\n"), "/usr/sbin/keepwatch"); err == nil {
		t.Error("malformed range accepted")
	}
}

// BenchmarkTrim: what the trim costs, and what it costs cold code that runs
// next — a takeover (the instance's state machine from BACKUP to MASTER, its
// events logged as JSON), with and without a trim just before. minflt/op is
// the minor page faults the process took per operation.
func BenchmarkTrim(b *testing.B) {
	log := slog.New(slog.NewJSONHandler(io.Discard, nil))
	takeover := func() {
		cfg := fsm.DefaultConfig()
		cfg.Name, cfg.VRID, cfg.Interface = "VI_1", 51, "eth0"
		cfg.Addr = netip.MustParseAddr("192.0.2.1")
		cfg.Priority = 150
		m, err := fsm.New(cfg)
		if err != nil {
			b.Fatal(err)
		}
		m.Step(0, fsm.Input{Kind: fsm.InputStart})
		at, _ := m.NextDeadline()
		for _, a := range m.Step(at, fsm.Input{}) {
			if a.Kind == fsm.ActionNotify {
				log.Info("transition", "instance", a.Event.Name, "to", a.State.String(), "reason", string(a.Event.Reason))
			}
		}
	}
	minflt := func() int64 {
		var ru unix.Rusage
		_ = unix.Getrusage(unix.RUSAGE_SELF, &ru)
		return ru.Minflt
	}
	run := func(b *testing.B, trimFirst, measureTrim bool) {
		takeover()
		var faults int64
		for b.Loop() {
			if trimFirst && !measureTrim {
				b.StopTimer()
				if _, err := TrimExecutablePages(); err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
			}
			f := minflt()
			if measureTrim {
				if _, err := TrimExecutablePages(); err != nil {
					b.Fatal(err)
				}
			} else {
				takeover()
			}
			faults += minflt() - f
		}
		b.ReportMetric(float64(faults)/float64(b.N), "minflt/op")
	}
	b.Run("trim", func(b *testing.B) { run(b, false, true) })
	b.Run("takeover", func(b *testing.B) { run(b, false, false) })
	b.Run("takeover-after-trim", func(b *testing.B) { run(b, true, false) })
}
