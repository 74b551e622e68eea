package agent

import (
	"testing"
	"unsafe"
)

// TestPlanSize: a plan fits the 576-byte size class (issue 12), with the
// 8-byte header the runtime puts before an object of pointers over 512
// bytes. It is kept for the instance's life (its router config is the
// member's); one field more and every instance holds 640 bytes for it, as
// it did with a copy of its multicast group, the promote_secondaries
// interface's name and a key of full-width ints.
func TestPlanSize(t *testing.T) {
	if n := unsafe.Sizeof(plan{}); n+8 > 576 {
		t.Errorf("a plan is %d bytes, over the 576-byte size class with its 8-byte header", n)
	}
}
