package metrics

import (
	"sync"
	"testing"

	dto "github.com/prometheus/client_model/go"
)

// TestHistogramLazyCounts: a histogram holds no counts until observed and
// is written with zero buckets meanwhile; observations racing the first
// one are all counted (run under -race on the unit tier).
func TestHistogramLazyCounts(t *testing.T) {
	h := newAtomicHistogram(gapBuckets)
	var d dto.Metric
	h.write(&d)
	if got := d.GetHistogram(); h.counts.Load() != nil || got.GetSampleCount() != 0 || len(got.GetBucket()) != len(gapBuckets) {
		t.Fatalf("unobserved: counts made %v, %d samples, %d buckets; want none, 0, %d", h.counts.Load() != nil, got.GetSampleCount(), len(got.GetBucket()), len(gapBuckets))
	}
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 100 {
				h.observe(0.05)
			}
		})
	}
	wg.Wait()
	h.write(&d)
	if got := d.GetHistogram().GetSampleCount(); got != 800 {
		t.Errorf("%d samples after 800 concurrent observations, want 800", got)
	}
	if got := d.GetHistogram().GetBucket()[2].GetCumulativeCount(); got != 800 {
		t.Errorf("le=0.05 bucket %d, want 800", got)
	}
	if newAtomicHistogram(latenessBuckets).bounds == nil {
		t.Error("lateness histogram has no bounds")
	}
}
