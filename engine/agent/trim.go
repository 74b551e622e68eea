package agent

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"runtime/debug"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// ErrMemoryLocked is TrimExecutablePages's answer when the process has
// locked memory (mlock/mlockall, keepalived's *_no_swap): locked pages are
// meant to stay mapped, and madvise(MADV_DONTNEED) refuses them anyway.
var ErrMemoryLocked = errors.New("memory is locked")

// Trimmed says what TrimExecutablePages did.
type Trimmed struct {
	Mappings int    // read-only mappings of the executable advised
	Bytes    uint64 // their size
	Skipped  int    // read-only mappings left alone: they hold private (copied-on-write) pages
}

// TrimExecutablePages unmaps, from this process's page tables, the pages of
// its own executable's read-only mappings (text, rodata, pclntab) that it
// has touched so far, with madvise(MADV_DONTNEED).
//
// Why: the agent is one static Go binary of ~36 MB. Start-up (package init,
// config parsing, building every instance, the first scrape) touches most
// of it, and the kernel's fault-around maps the page-cache pages around
// each fault, so ~19 MiB of the binary stays in RssFile for the process's
// life although the steady state (the advert loop, the timers) runs a small
// part of it (issue 12: keepalived, which links libc, has ~10 MiB). The
// pages are shared page cache backed by the file, not the process's own:
// dropping the mappings frees no page, does not write anything, and loses
// nothing — the next access to a page takes a minor fault that maps the
// same page-cache page again (with fault-around). Code the agent rarely
// runs, such as the takeover path, pays those minor faults when it next
// runs; the kernel only reads the file again if the page left the page cache
// under memory pressure, as it would for any process's text.
//
// Only mappings without write permission are advised: on a writable
// private mapping (.data, .bss, and the heap) MADV_DONTNEED discards what
// the process wrote. A read-only mapping can still hold private pages if
// something wrote it before making it read-only — a position-independent
// build's RELRO segment, relocated by the loader and then mprotected — so
// any mapping whose smaps shows Anonymous pages is left alone too.
func TrimExecutablePages() (Trimmed, error) {
	var t Trimmed
	if locked, err := lockedKiB(); err != nil {
		return t, err
	} else if locked > 0 {
		return t, ErrMemoryLocked
	}
	exe, err := os.Readlink("/proc/self/exe")
	if err != nil {
		return t, err
	}
	smaps, err := os.ReadFile("/proc/self/smaps")
	if err != nil {
		return t, err
	}
	maps, err := exeMappings(smaps, exe)
	if err != nil {
		return t, err
	}
	for _, m := range maps {
		if m.writable || m.anonKiB > 0 {
			if !m.writable {
				t.Skipped++
			}
			continue
		}
		// A raw syscall on the range: the mapping is not Go memory, and
		// building a []byte over it for unix.Madvise would be an unsafe
		// pointer conversion go vet flags.
		if _, _, e := unix.Syscall(unix.SYS_MADVISE, m.start, m.end-m.start, unix.MADV_DONTNEED); e != 0 {
			return t, fmt.Errorf("madvise %#x-%#x: %w", m.start, m.end, e)
		}
		t.Mappings++
		t.Bytes += uint64(m.end - m.start)
	}
	return t, nil
}

// exeMapping is one mapping of the executable from /proc/self/smaps.
type exeMapping struct {
	start, end uintptr
	writable   bool
	anonKiB    uint64
}

// exeMappings reads the mappings of the file exe from smaps (proc(5)): a
// header line "start-end perms offset dev inode path" followed by "Key: value"
// lines, among them Anonymous.
func exeMappings(smaps []byte, exe string) ([]exeMapping, error) {
	var out []exeMapping
	cur := -1 // index in out of the mapping whose fields follow, or -1
	sc := bufio.NewScanner(bytes.NewReader(smaps))
	for sc.Scan() {
		line := sc.Text()
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		if strings.HasSuffix(f[0], ":") {
			// A field of the current mapping.
			if cur >= 0 && f[0] == "Anonymous:" && len(f) >= 2 {
				kb, err := strconv.ParseUint(f[1], 10, 64)
				if err != nil {
					return nil, fmt.Errorf("smaps: %q: %w", line, err)
				}
				out[cur].anonKiB = kb
			}
			continue
		}
		cur = -1
		// A header. The path is everything after the fifth field; it
		// may hold spaces, and ends in " (deleted)" once the file is
		// replaced on disk (an upgrade), as readlink of /proc/self/exe
		// then does too.
		if len(f) < 6 {
			continue
		}
		path := strings.Join(f[5:], " ")
		if path != exe {
			continue
		}
		lo, hi, ok := strings.Cut(f[0], "-")
		if !ok || len(f[1]) < 2 {
			return nil, fmt.Errorf("smaps: malformed mapping %q", line)
		}
		start, err1 := strconv.ParseUint(lo, 16, 64)
		end, err2 := strconv.ParseUint(hi, 16, 64)
		if err1 != nil || err2 != nil || end <= start {
			return nil, fmt.Errorf("smaps: malformed range in %q", line)
		}
		out = append(out, exeMapping{start: uintptr(start), end: uintptr(end), writable: f[1][1] == 'w'})
		cur = len(out) - 1
	}
	return out, sc.Err()
}

// lockedKiB is VmLck of /proc/self/status: memory locked by mlock or
// mlockall.
func lockedKiB() (uint64, error) {
	v, err := statusKiB("VmLck:")
	if err != nil {
		return 0, err
	}
	return v, nil
}

// RssFileKiB is this process's resident file-backed memory (RssFile of
// /proc/self/status), mostly its executable's pages.
func RssFileKiB() (uint64, error) {
	return statusKiB("RssFile:")
}

// statusKiB reads one "Key: N kB" line of /proc/self/status.
func statusKiB(key string) (uint64, error) {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0, err
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		rest, ok := strings.CutPrefix(line, key)
		if !ok {
			continue
		}
		f := strings.Fields(rest)
		if len(f) == 0 {
			break
		}
		return strconv.ParseUint(f[0], 10, 64)
	}
	return 0, fmt.Errorf("/proc/self/status: no %s", strings.TrimSuffix(key, ":"))
}

// ReleaseMemory returns the heap's free pages to the kernel
// (debug.FreeOSMemory) and trims the executable's pages from the page
// tables (TrimExecutablePages), after start-up and after a reload: the two
// moments that leave garbage and touch cold code. A trim that cannot be done
// (memory locked, /proc unreadable) is only said at debug level: the agent
// runs the same, with more resident file pages.
func ReleaseMemory(log *slog.Logger, why string) {
	debug.FreeOSMemory()
	before, _ := RssFileKiB()
	t, err := TrimExecutablePages()
	if err != nil {
		log.Debug("executable pages not trimmed", "after", why, "err", err)
		return
	}
	after, _ := RssFileKiB()
	log.Debug("executable pages trimmed", "after", why, "mappings", t.Mappings, "bytes", t.Bytes,
		"skipped", t.Skipped, "rss_file_kib_before", before, "rss_file_kib_after", after)
}
