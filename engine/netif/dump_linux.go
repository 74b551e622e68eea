package netif

import (
	"errors"

	"github.com/vishvananda/netlink"
)

// dumpRetries bounds how often a netlink dump is taken again when the
// kernel says it was interrupted.
const dumpRetries = 10

// redump runs a netlink dump until it is consistent. The kernel marks a
// dump NLM_F_DUMP_INTR when the table changed while it was read (many VIPs
// added at once, as 1,000 instances becoming master do), and the library
// then returns ErrDumpInterrupted with a partial result: reading on from
// that would miss or double an entry, so the dump is taken again.
func redump[T any](dump func() ([]T, error)) ([]T, error) {
	var (
		out []T
		err error
	)
	for range dumpRetries {
		if out, err = dump(); !errors.Is(err, netlink.ErrDumpInterrupted) {
			return out, err
		}
	}
	return out, err
}
