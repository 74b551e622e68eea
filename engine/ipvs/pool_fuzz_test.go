package ipvs

import (
	"net/netip"
	"testing"
)

// FuzzEvaluate drives Evaluate with arbitrary pools and health and checks
// the invariants the kernel and the operator rely on.
func FuzzEvaluate(f *testing.F) {
	f.Add([]byte{1, 0, 3, 1, 1, 2, 0, 0}, uint8(0), uint8(2), true, true)
	f.Add([]byte{0, 0, 0, 0}, uint8(1), uint8(0), false, false)
	f.Add([]byte{5, 1, 5, 1, 5, 1, 2, 1}, uint8(12), uint8(3), true, false)
	f.Fuzz(func(t *testing.T, spec []byte, quorum, hyst uint8, withSorry, sorryInhibit bool) {
		var servers []RealServer
		for i := 0; i+1 < len(spec) && len(servers) < 16; i += 2 {
			servers = append(servers, RealServer{
				Destination: Destination{Addr: netip.AddrFrom4([4]byte{198, 51, 100, byte(len(servers) % 4)}), Port: uint16(len(servers)), Weight: int(spec[i] % 8)},
				Checked:     spec[i+1]&1 != 0, Up: spec[i+1]&2 != 0, Inhibit: spec[i+1]&4 != 0,
			})
		}
		p := Pool{Quorum: int(quorum % 20), Hysteresis: int(hyst % 5), SorryInhibit: sorryInhibit, Alpha: quorum&0x80 != 0}
		if withSorry {
			p.Sorry = &Destination{Addr: netip.MustParseAddr("203.0.113.1"), Port: 1, Weight: 1}
		}
		for _, prev := range []QuorumState{QuorumUnknown, QuorumDown, QuorumUp} {
			r := Evaluate(p, servers, prev)
			if r.Quorum == QuorumUnknown {
				t.Fatal("Evaluate returned an unknown quorum")
			}
			s := Service{Key: AddrKey(netip.MustParseAddr("192.0.2.1"), 80, TCP), Scheduler: RoundRobin, Destinations: r.Destinations}
			if err := s.Validate(); err != nil {
				t.Fatalf("invalid table: %v", err)
			}
			serving := 0
			for _, d := range r.Destinations {
				if d.Weight > 0 {
					serving++
				}
			}
			if r.SorryActive && serving != 1 {
				t.Fatalf("sorry server active but %d destinations serve: %v", serving, r.Destinations)
			}
			if r.SorryActive != (p.Sorry != nil && r.Quorum == QuorumDown) {
				t.Fatalf("sorry %v with quorum %v", r.SorryActive, r.Quorum)
			}
		}
	})
}
