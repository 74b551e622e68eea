package metrics

import (
	"fmt"
	"testing"
	"time"
	"unsafe"

	"github.com/keepwatch/keepwatch/engine/vrrp"
)

// TestInstanceHotLines: what a sent advert writes is one cache line, and
// what a received one writes (up to a 75 ms gap) another, in every
// instance as allocated: at 250 instances × 0.05 s each line is a cache
// miss per advert (instance; issue 12).
func TestInstanceHotLines(t *testing.T) {
	const line = 64
	m, _ := newTestMetrics(t)
	for i := range 50 {
		in := m.newInstance(Instance{Name: fmt.Sprintf("VI_%d", i), VRID: uint8(i), Interface: "eth0", Family: vrrp.IPv4, Interval: 50 * time.Millisecond}, nil)
		lineOf := func(p unsafe.Pointer, size uintptr) [2]uintptr {
			return [2]uintptr{uintptr(p) / line, (uintptr(p) + size - 1) / line}
		}
		check := func(what string, want uintptr, fields map[string][2]uintptr) {
			t.Helper()
			for name, l := range fields {
				if l[0] != want || l[1] != want {
					t.Fatalf("instance %d: %s's %s is on lines %v, want %d (instance at %#x, size %d)", i, what, name, l, want, uintptr(unsafe.Pointer(in)), unsafe.Sizeof(*in))
				}
			}
		}
		if uintptr(unsafe.Pointer(in))%line != 8 {
			t.Fatalf("instance %d at %#x (size %d): want 8 bytes into a 64-byte aligned slot (malloc header); instance's layout counts on it", i, uintptr(unsafe.Pointer(in)), unsafe.Sizeof(*in))
		}
		sent := uintptr(unsafe.Pointer(&in.sent)) / line
		check("sent advert", sent, map[string][2]uintptr{
			"sent":             lineOf(unsafe.Pointer(&in.sent), 8),
			"lateness sum":     lineOf(unsafe.Pointer(&in.lateness.sum), 8),
			"lateness le 0.01": lineOf(unsafe.Pointer(&in.lateness.counts[0]), 5*8),
		})
		recv := uintptr(unsafe.Pointer(&in.received)) / line
		check("received advert", recv, map[string][2]uintptr{
			"received":     lineOf(unsafe.Pointer(&in.received), 8),
			"lastRecv":     lineOf(unsafe.Pointer(&in.lastRecv), 8),
			"cur":          lineOf(unsafe.Pointer(&in.cur), 4),
			"intervalUs":   lineOf(unsafe.Pointer(&in.intervalUs), 4),
			"gap sum":      lineOf(unsafe.Pointer(&in.gap.sum), 8),
			"gap le 0.075": lineOf(unsafe.Pointer(&in.gap.counts[0]), 4*8),
		})
		if gapBuckets[3] != .075 || latenessBuckets[4] != .01 {
			t.Fatal("buckets changed: update the lines above and instance's layout")
		}
	}
}
