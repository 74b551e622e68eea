package ipvs

import (
	"net/netip"
	"strconv"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func up(addr string, w int) RealServer {
	return RealServer{Destination: rs(addr, w), Checked: true, Up: true}
}

func down(addr string, w int) RealServer {
	return RealServer{Destination: rs(addr, w), Checked: true, Up: false}
}

func inhibit(r RealServer) RealServer { r.Inhibit = true; return r }

func unchecked(addr string, w int) RealServer { return RealServer{Destination: rs(addr, w)} }

func summary(ds []Destination) []string {
	out := make([]string, len(ds))
	for i, d := range ds {
		out[i] = d.AddrPort().String() + "=" + strconv.Itoa(d.Weight)
	}
	return out
}

func TestEvaluate(t *testing.T) {
	sorry := rs("203.0.113.99", 1)
	tests := []struct {
		name    string
		pool    Pool
		servers []RealServer
		prev    QuorumState
		want    []string
		quorum  QuorumState
		sorry   bool
	}{
		{name: "all up", servers: []RealServer{up("198.51.100.1", 1), up("198.51.100.2", 3)},
			want: []string{"198.51.100.1:8080=1", "198.51.100.2:8080=3"}, quorum: QuorumUp},
		{name: "down removed", servers: []RealServer{up("198.51.100.1", 1), down("198.51.100.2", 3)},
			want: []string{"198.51.100.1:8080=1"}, quorum: QuorumUp},
		{name: "inhibit_on_failure keeps weight 0", servers: []RealServer{up("198.51.100.1", 1), inhibit(down("198.51.100.2", 3))},
			want: []string{"198.51.100.1:8080=1", "198.51.100.2:8080=0"}, quorum: QuorumUp},
		{name: "unchecked without alpha start up", servers: []RealServer{unchecked("198.51.100.1", 2)},
			want: []string{"198.51.100.1:8080=2"}, quorum: QuorumUp},
		{name: "alpha starts down", pool: Pool{Alpha: true}, servers: []RealServer{unchecked("198.51.100.1", 2), up("198.51.100.2", 1)},
			want: []string{"198.51.100.2:8080=1"}, quorum: QuorumUp},
		{name: "alpha with inhibit", pool: Pool{Alpha: true}, servers: []RealServer{inhibit(unchecked("198.51.100.1", 2))},
			want: []string{"198.51.100.1:8080=0"}, quorum: QuorumDown},
		{name: "quorum lost no sorry server keeps live", pool: Pool{Quorum: 5}, servers: []RealServer{up("198.51.100.1", 2)}, prev: QuorumUp,
			want: []string{"198.51.100.1:8080=2"}, quorum: QuorumDown},
		{name: "sorry server replaces live servers", pool: Pool{Quorum: 5, Sorry: &sorry},
			servers: []RealServer{up("198.51.100.1", 2), down("198.51.100.2", 3)}, prev: QuorumUp,
			want: []string{"203.0.113.99:8080=1"}, quorum: QuorumDown, sorry: true},
		{name: "sorry server with inhibit real servers", pool: Pool{Quorum: 5, Sorry: &sorry},
			servers: []RealServer{inhibit(up("198.51.100.1", 2))}, prev: QuorumUp,
			want: []string{"198.51.100.1:8080=0", "203.0.113.99:8080=1"}, quorum: QuorumDown, sorry: true},
		{name: "sorry server unused removed", pool: Pool{Sorry: &sorry}, servers: []RealServer{up("198.51.100.1", 1)},
			want: []string{"198.51.100.1:8080=1"}, quorum: QuorumUp},
		{name: "sorry_server_inhibit keeps it at 0", pool: Pool{Sorry: &sorry, SorryInhibit: true}, servers: []RealServer{up("198.51.100.1", 1)},
			want: []string{"198.51.100.1:8080=1", "203.0.113.99:8080=0"}, quorum: QuorumUp},
		{name: "all down gives sorry", pool: Pool{Sorry: &sorry}, servers: []RealServer{down("198.51.100.1", 1)}, prev: QuorumUp,
			want: []string{"203.0.113.99:8080=1"}, quorum: QuorumDown, sorry: true},
		// Hysteresis: quorum 4 ± 1. Up needs ≥5; once up, it holds down to 3.
		{name: "hysteresis holds up at 3", pool: Pool{Quorum: 4, Hysteresis: 1, Sorry: &sorry},
			servers: []RealServer{up("198.51.100.1", 3)}, prev: QuorumUp,
			want: []string{"198.51.100.1:8080=3"}, quorum: QuorumUp},
		{name: "hysteresis drops below 3", pool: Pool{Quorum: 4, Hysteresis: 1, Sorry: &sorry},
			servers: []RealServer{up("198.51.100.1", 2)}, prev: QuorumUp,
			want: []string{"203.0.113.99:8080=1"}, quorum: QuorumDown, sorry: true},
		{name: "hysteresis not regained at 4", pool: Pool{Quorum: 4, Hysteresis: 1, Sorry: &sorry},
			servers: []RealServer{up("198.51.100.1", 4)}, prev: QuorumDown,
			want: []string{"203.0.113.99:8080=1"}, quorum: QuorumDown, sorry: true},
		{name: "hysteresis regained at 5", pool: Pool{Quorum: 4, Hysteresis: 1, Sorry: &sorry},
			servers: []RealServer{up("198.51.100.1", 5)}, prev: QuorumDown,
			want: []string{"198.51.100.1:8080=5"}, quorum: QuorumUp},
		{name: "first evaluation needs quorum plus hysteresis", pool: Pool{Quorum: 4, Hysteresis: 1, Sorry: &sorry},
			servers: []RealServer{up("198.51.100.1", 4)},
			want:    []string{"203.0.113.99:8080=1"}, quorum: QuorumDown, sorry: true},
		{name: "zero live weight loses quorum 0", pool: Pool{Quorum: 1, Hysteresis: 5},
			servers: []RealServer{up("198.51.100.1", 0)}, prev: QuorumUp,
			want: []string{"198.51.100.1:8080=0"}, quorum: QuorumDown},
		{name: "sorry server duplicating a real server", pool: Pool{Sorry: &Destination{Addr: netip.MustParseAddr("198.51.100.1"), Port: 8080, Weight: 1}, SorryInhibit: true},
			servers: []RealServer{up("198.51.100.1", 4)},
			want:    []string{"198.51.100.1:8080=4"}, quorum: QuorumUp},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Evaluate(tt.pool, tt.servers, tt.prev)
			if diff := cmp.Diff(tt.want, summary(got.Destinations)); diff != "" {
				t.Errorf("destinations (-want +got):\n%s", diff)
			}
			if got.Quorum != tt.quorum || got.SorryActive != tt.sorry {
				t.Errorf("quorum %v sorry %v, want %v %v", got.Quorum, got.SorryActive, tt.quorum, tt.sorry)
			}
			// Whatever Evaluate returns must be a table the kernel accepts.
			s := web(got.Destinations...)
			if err := s.Validate(); err != nil {
				t.Errorf("result invalid: %v", err)
			}
		})
	}
}

func TestStopOmega(t *testing.T) {
	servers := []RealServer{up("198.51.100.1", 1), down("198.51.100.2", 1)}
	if r := Stop(Pool{}, servers, QuorumUp); len(r.NotifyDown) != 0 || r.NotifyQuorumDown || len(r.Destinations) != 0 {
		t.Errorf("Stop without omega = %+v, want nothing", r)
	}
	r := Stop(Pool{Omega: true}, servers, QuorumUp)
	if diff := cmp.Diff([]netip.AddrPort{netip.MustParseAddrPort("198.51.100.1:8080")}, r.NotifyDown, cmp.Comparer(func(a, b netip.AddrPort) bool { return a == b })); diff != "" || !r.NotifyQuorumDown || len(r.Destinations) != 0 {
		t.Errorf("Stop with omega = %+v (%s)", r, diff)
	}
}
