package ipvs

import "net/netip"

// This file holds the pure rules that turn real-server health into the
// destinations a virtual server should have, as keepalived's checker does
// (keepalived/check/ipwrapper.c: update_quorum_state, perform_quorum_state,
// perform_svr_state, init_service_rs).

// Pool is the health policy of one virtual server.
type Pool struct {
	// Quorum is the minimum total weight of live real servers for the
	// service to be considered up; keepalived's default is 1 (used when 0).
	Quorum int
	// Hysteresis widens the quorum: it is gained at Quorum+Hysteresis and
	// lost below Quorum-Hysteresis (or when no live weight is left).
	Hysteresis int
	// Sorry is the sorry_server, used instead of the real servers while the
	// quorum is down; nil if none.
	Sorry *Destination
	// SorryInhibit (sorry_server_inhibit) keeps the sorry server in the
	// table with weight 0 while it is not in use, instead of removing it.
	SorryInhibit bool
	// Alpha starts real servers that have not been checked yet as down.
	Alpha bool
	// Omega runs the down notifications (real servers, quorum) when the
	// virtual server is stopped; Evaluate reports them through Result.
	Omega bool
}

// RealServer is one real server's configuration and current health.
type RealServer struct {
	Destination // Weight is the effective weight (misc_dynamic may change it)
	// Checked is false until the server's checkers have reported; Up is then
	// taken from Pool.Alpha.
	Checked bool
	Up      bool
	// Inhibit is inhibit_on_failure (the real server's, else the virtual
	// server's): a down server stays in the table with weight 0.
	Inhibit bool
}

// up reports whether rs counts as alive.
func (rs *RealServer) up(p *Pool) bool {
	if !rs.Checked {
		return !p.Alpha
	}
	return rs.Up
}

// QuorumState is the quorum state carried from one evaluation to the next,
// so hysteresis can apply.
type QuorumState uint8

// Quorum states.
const (
	QuorumUnknown QuorumState = iota // first evaluation
	QuorumDown
	QuorumUp
)

func (q QuorumState) String() string {
	switch q {
	case QuorumDown:
		return "down"
	case QuorumUp:
		return "up"
	}
	return "unknown"
}

// Result is what one virtual server's table should be.
type Result struct {
	Destinations []Destination
	Quorum       QuorumState // never QuorumUnknown
	SorryActive  bool        // the sorry server is serving
	LiveWeight   int         // sum of the effective weights of live real servers

	// Set only by Stop: the real servers (and the quorum) whose down
	// notifications run because the virtual server stops with Omega.
	NotifyDown       []netip.AddrPort
	NotifyQuorumDown bool
}

// Evaluate computes the destinations of one virtual server from its real
// servers' health and the previous quorum state. It does not allocate beyond
// the returned slice and never reads the clock.
//
// The rules are keepalived's:
//   - A live real server is in the table with its weight. A down one is
//     removed, or kept with weight 0 if Inhibit.
//   - The quorum is up when the live weight reaches Quorum+Hysteresis and
//     goes down when it falls below Quorum-Hysteresis or to 0; on the first
//     evaluation it is up iff the live weight is at least Quorum+Hysteresis.
//   - While the quorum is down and there is a sorry server, the sorry server
//     is the only serving destination: live real servers are taken out (kept
//     at weight 0 if Inhibit), as perform_quorum_state(vs, false) does.
//     Without a sorry server, a lost quorum changes nothing in the table.
//   - A sorry server not in use is removed, or kept at weight 0 with
//     SorryInhibit. If the sorry server is also a real server, the real
//     server's entry wins while the quorum is up.
func Evaluate(p Pool, servers []RealServer, prev QuorumState) Result {
	quorum := p.Quorum
	if quorum <= 0 {
		quorum = 1
	}
	live := 0
	for i := range servers {
		if servers[i].up(&p) && servers[i].Weight > 0 {
			live += servers[i].Weight
		}
	}
	var q QuorumState
	switch prev {
	case QuorumUp:
		q = QuorumUp
		if live == 0 || live < quorum-p.Hysteresis {
			q = QuorumDown
		}
	case QuorumDown:
		q = QuorumDown
		if live >= quorum+p.Hysteresis {
			q = QuorumUp
		}
	default:
		q = QuorumDown
		if live >= quorum+p.Hysteresis {
			q = QuorumUp
		}
	}
	sorry := q == QuorumDown && p.Sorry != nil

	res := Result{Quorum: q, SorryActive: sorry, LiveWeight: live,
		Destinations: make([]Destination, 0, len(servers)+1)}
	for i := range servers {
		rs := &servers[i]
		d := rs.Destination
		d.Stats = Counters{}
		if !rs.up(&p) || sorry {
			if !rs.Inhibit {
				continue
			}
			d.Weight = 0
		}
		if p.Sorry != nil && d.AddrPort() == p.Sorry.AddrPort() {
			if sorry {
				continue // the sorry entry below stands for this address
			}
		}
		res.Destinations = append(res.Destinations, d)
	}
	if p.Sorry != nil {
		s := *p.Sorry
		s.Stats = Counters{}
		switch {
		case sorry:
			res.Destinations = append(res.Destinations, s)
		case p.SorryInhibit && !hasAddrPort(res.Destinations, s):
			s.Weight = 0
			res.Destinations = append(res.Destinations, s)
		}
	}
	return res
}

func hasAddrPort(ds []Destination, d Destination) bool {
	for i := range ds {
		if ds[i].AddrPort() == d.AddrPort() {
			return true
		}
	}
	return false
}

// Stop is Evaluate for a virtual server being stopped (agent shutdown or the
// virtual server removed by a reload): it has no destinations left, and with
// Omega the real servers that were live, and the quorum if it was up, get
// their down notifications (keepalived's update_vs_notifies on stop).
func Stop(p Pool, servers []RealServer, prev QuorumState) Result {
	cur := Evaluate(p, servers, prev)
	res := Result{Quorum: QuorumDown, LiveWeight: 0}
	if !p.Omega {
		return res
	}
	for i := range servers {
		if servers[i].up(&p) {
			res.NotifyDown = append(res.NotifyDown, servers[i].AddrPort())
		}
	}
	res.NotifyQuorumDown = cur.Quorum == QuorumUp
	return res
}
