package ipvs

import (
	"net/netip"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/keepwatch/keepwatch/engine/vrrp"
)

func web(dests ...Destination) Service {
	return Service{Key: AddrKey(netip.MustParseAddr("192.0.2.10"), 80, TCP), Scheduler: WeightedRoundRobin, Destinations: dests}
}

func rs(addr string, w int) Destination {
	return Destination{Addr: netip.MustParseAddr(addr), Port: 8080, Weight: w, Forward: NAT}
}

func opStrings(ops []Op) []string {
	out := make([]string, len(ops))
	for i, o := range ops {
		out[i] = o.String()
	}
	return out
}

func TestDiff(t *testing.T) {
	mark := Service{Key: MarkKey(7, vrrp.IPv6), Scheduler: RoundRobin,
		Destinations: []Destination{{Addr: netip.MustParseAddr("2001:db8::5"), Weight: 1, Forward: DR}}}
	persistent := web(rs("198.51.100.1", 1))
	persistent.Timeout = 300 * time.Second
	persistent.Granularity = 24
	tests := []struct {
		name            string
		desired, actual []Service
		want            []string
	}{
		{name: "empty", want: []string{}},
		{name: "from empty", desired: []Service{web(rs("198.51.100.1", 1), rs("198.51.100.2", 2)), mark},
			want: []string{
				"add-service 192.0.2.10:80/tcp wrr",
				"add-destination 192.0.2.10:80/tcp 198.51.100.1:8080 w=1 nat",
				"add-destination 192.0.2.10:80/tcp 198.51.100.2:8080 w=2 nat",
				"add-service fwmark:7/ipv6 rr",
				"add-destination fwmark:7/ipv6 [2001:db8::5]:0 w=1 dr",
			}},
		{name: "equal", desired: []Service{web(rs("198.51.100.1", 1))}, actual: []Service{web(rs("198.51.100.1", 1))}, want: []string{}},
		{name: "one weight", desired: []Service{web(rs("198.51.100.1", 1), rs("198.51.100.2", 5))},
			actual: []Service{web(rs("198.51.100.1", 1), rs("198.51.100.2", 2))},
			want:   []string{"update-destination 192.0.2.10:80/tcp 198.51.100.2:8080 w=5 nat"}},
		{name: "forwarding method", desired: []Service{web(Destination{Addr: netip.MustParseAddr("198.51.100.1"), Port: 8080, Weight: 1, Forward: Tunnel})},
			actual: []Service{web(rs("198.51.100.1", 1))},
			want:   []string{"update-destination 192.0.2.10:80/tcp 198.51.100.1:8080 w=1 tun"}},
		{name: "destination swapped", desired: []Service{web(rs("198.51.100.3", 1))}, actual: []Service{web(rs("198.51.100.1", 1))},
			want: []string{
				"del-destination 192.0.2.10:80/tcp 198.51.100.1:8080 w=1 nat",
				"add-destination 192.0.2.10:80/tcp 198.51.100.3:8080 w=1 nat",
			}},
		{name: "service gone", actual: []Service{mark, web()},
			want: []string{"del-service 192.0.2.10:80/tcp wrr", "del-service fwmark:7/ipv6 rr"}},
		{name: "scheduler and persistence", desired: []Service{persistent}, actual: []Service{web(rs("198.51.100.1", 1))},
			want: []string{"update-service 192.0.2.10:80/tcp wrr"}},
		{name: "granularity ignored without persistence",
			desired: []Service{{Key: web().Key, Scheduler: WeightedRoundRobin, Granularity: 24}}, actual: []Service{web()}, want: []string{}},
		{name: "kernel flags ignored",
			desired: []Service{{Key: web().Key, Scheduler: WeightedRoundRobin, Flags: FlagOnePacket}},
			actual:  []Service{{Key: web().Key, Scheduler: WeightedRoundRobin, Flags: FlagOnePacket | flagHashed}}, want: []string{}},
		{name: "ops flag", desired: []Service{{Key: web().Key, Scheduler: WeightedRoundRobin, Flags: FlagOnePacket}},
			actual: []Service{web()}, want: []string{"update-service 192.0.2.10:80/tcp wrr"}},
		{name: "counters ignored", desired: []Service{web(rs("198.51.100.1", 1))},
			actual: []Service{{Key: web().Key, Scheduler: WeightedRoundRobin, Stats: Counters{Connections: 4},
				Destinations: []Destination{{Addr: netip.MustParseAddr("198.51.100.1"), Port: 8080, Weight: 1, Stats: Counters{BytesIn: 9}}}}},
			want: []string{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := opStrings(Diff(tt.desired, tt.actual))
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Diff (-want +got):\n%s", diff)
			}
		})
	}
}

func TestCounts(t *testing.T) {
	ops := Diff([]Service{web(rs("198.51.100.1", 3), rs("198.51.100.2", 1))},
		[]Service{web(rs("198.51.100.1", 1), rs("198.51.100.9", 1)), {Key: MarkKey(1, vrrp.IPv4), Scheduler: RoundRobin}})
	a, c, r := Counts(ops)
	if a != 1 || c != 1 || r != 2 {
		t.Errorf("Counts = added %d changed %d removed %d, want 1 1 2 (ops %v)", a, c, r, opStrings(ops))
	}
}

func TestValidate(t *testing.T) {
	ok := web(rs("198.51.100.1", 1))
	if err := ok.Validate(); err != nil {
		t.Fatalf("valid service: %v", err)
	}
	bad := map[string]Service{
		"no address":     {Scheduler: RoundRobin},
		"protocol":       {Key: AddrKey(netip.MustParseAddr("192.0.2.1"), 1, 1), Scheduler: RoundRobin},
		"scheduler":      {Key: web().Key, Scheduler: "bogus"},
		"flags":          {Key: web().Key, Scheduler: RoundRobin, Flags: flagHashed},
		"weight":         web(rs("198.51.100.1", 70000)),
		"duplicate dest": web(rs("198.51.100.1", 1), rs("198.51.100.1", 2)),
		"fwmark family":  {Key: Key{FWMark: 3}, Scheduler: RoundRobin},
	}
	for name, s := range bad {
		if err := s.Validate(); err == nil {
			t.Errorf("%s: Validate accepted %+v", name, s)
		}
	}
}
