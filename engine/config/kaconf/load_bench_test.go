package kaconf

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sync"
	"testing"
	"testing/fstest"
	"time"
)

// BenchmarkLoad10k loads 10,000 VRRP instances across 40 interfaces,
// generated with ~SEQ (genConfig, shared with the reader's benchmark):
// read + parse into the model. Besides ns/op and B/op it reports the peak
// heap of one load (MB-peak), sampled every millisecond.
func BenchmarkLoad10k(b *testing.B) {
	fsys := fstest.MapFS{"k.conf": {Data: genConfig(10000, 40)}}
	opts := LoadOptions{Read: ReadOptions{ConfigID: "kw1", RandomSeed: 1}}
	b.ReportAllocs()
	for b.Loop() {
		c, ds := LoadFS(fsys, "k.conf", opts)
		if c == nil || ds.HasErrors() || len(c.Instances) != 10000 {
			b.Fatalf("load failed: %d instances\n%s", len(c.Instances), ds)
		}
	}
	b.StopTimer()
	b.ReportMetric(peakHeapMB(func() { LoadFS(fsys, "k.conf", opts) }), "MB-peak")
}

// peakHeapMB runs f and returns the highest heap in use while it ran,
// above what was in use before, in MB.
func peakHeapMB(f func()) float64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	base := ms.HeapAlloc
	peak := base
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		var s runtime.MemStats
		t := time.NewTicker(time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				runtime.ReadMemStats(&s)
				peak = max(peak, s.HeapAlloc)
			}
		}
	}()
	f()
	runtime.ReadMemStats(&ms)
	close(done)
	wg.Wait()
	peak = max(peak, ms.HeapAlloc)
	return float64(peak-base) / 1e6
}

// BenchmarkKeepalivedCheck10k times `keepalived -t` on the same generated
// file, for the ratio with BenchmarkLoad10k (make bench runs both).
func BenchmarkKeepalivedCheck10k(b *testing.B) {
	bin, err := exec.LookPath("keepalived")
	if err != nil {
		if inCI() {
			b.Fatalf("keepalived not installed: %v", err)
		}
		b.Skipf("keepalived not installed: %v", err)
	}
	path := filepath.Join(b.TempDir(), "k.conf")
	if err := os.WriteFile(path, genConfig(10000, 40), 0o644); err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		// Exit code 5 is expected: the interfaces do not exist here.
		out, err := exec.CommandContext(ctx, bin, "-t", "-l", "-f", path).CombinedOutput()
		timedOut := ctx.Err() == context.DeadlineExceeded
		cancel()
		if timedOut {
			b.Fatalf("keepalived -t timed out: %v\n%.500s", err, out)
		}
	}
}
