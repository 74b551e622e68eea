package netif

import (
	"errors"
	"testing"

	"github.com/vishvananda/netlink"
)

// TestRedump: an interrupted dump is taken again; another error or a
// clean dump ends it; one that never settles gives up with the error.
func TestRedump(t *testing.T) {
	calls := 0
	out, err := redump(func() ([]int, error) {
		calls++
		if calls < 3 {
			return []int{calls}, netlink.ErrDumpInterrupted
		}
		return []int{1, 2, 3}, nil
	})
	if err != nil || len(out) != 3 || calls != 3 {
		t.Fatalf("got %v, %v after %d calls; want the third, clean dump", out, err, calls)
	}
	boom := errors.New("boom")
	calls = 0
	if _, err := redump(func() ([]int, error) { calls++; return nil, boom }); !errors.Is(err, boom) || calls != 1 {
		t.Fatalf("other error: %v after %d calls, want boom after 1", err, calls)
	}
	calls = 0
	if _, err := redump(func() ([]int, error) { calls++; return nil, netlink.ErrDumpInterrupted }); !errors.Is(err, netlink.ErrDumpInterrupted) || calls != dumpRetries {
		t.Fatalf("never settles: %v after %d calls, want ErrDumpInterrupted after %d", err, calls, dumpRetries)
	}
}
