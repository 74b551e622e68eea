package agent

import (
	"testing"
	"unsafe"
)

// TestPlanSize: a plan fits the 576-byte size class (issue 12). It is kept
// for the instance's life (its router config is the member's); one field
// more and every instance holds 640 bytes for it, as it did with a copy of
// its multicast group and a key of full-width ints.
func TestPlanSize(t *testing.T) {
	if n := unsafe.Sizeof(plan{}); n > 576 {
		t.Errorf("a plan is %d bytes, over the 576-byte size class", n)
	}
}
