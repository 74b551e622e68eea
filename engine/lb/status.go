package lb

import (
	"github.com/keepwatch/keepwatch/engine/ipvs"
)

// VirtualServerStatus is one virtual server in the status API: what
// keepalived's checker knows of it (service, quorum, real servers with
// address, port, weight and state) and what keepwatch adds.
type VirtualServerStatus struct {
	Service string `json:"service"`
	// Services are the kernel services it stands for (several for a group).
	Services    []string `json:"ipvs_services"`
	Quorum      string   `json:"quorum"` // "up" or "down"
	QuorumUp    bool     `json:"quorum_up"`
	QuorumMin   int      `json:"quorum_weight"`
	Hysteresis  int      `json:"hysteresis,omitempty"`
	LiveWeight  int      `json:"live_weight"`
	SorryServer string   `json:"sorry_server,omitempty"`
	SorryActive bool     `json:"sorry_server_active"`
	// InKernel is false while IPVS is unavailable.
	InKernel    bool               `json:"in_kernel"`
	RealServers []RealServerStatus `json:"real_servers"`
}

// RealServerStatus is one real server of a virtual server.
type RealServerStatus struct {
	Address string `json:"address"`
	Port    uint16 `json:"port"`
	// Weight is the effective weight (misc_dynamic and FILE_CHECK included);
	// TableWeight what the kernel was given (0 with inhibit_on_failure while
	// down), -1 when it is not in the table.
	Weight      int             `json:"weight"`
	TableWeight int             `json:"table_weight"`
	Up          bool            `json:"up"`
	Checked     bool            `json:"checked"`
	Inhibit     bool            `json:"inhibit_on_failure,omitempty"`
	Checkers    []CheckerStatus `json:"checkers,omitempty"`
}

// CheckerStatus is one checker of a real server.
type CheckerStatus struct {
	Type   string `json:"type"`
	Target string `json:"target"`
	Up     bool   `json:"up"`
	HasRun bool   `json:"has_run"`
	Reason string `json:"last_error,omitempty"`
}

// Status returns every virtual server, in config order; nil when not running.
func (b *Balancer) Status() []VirtualServerStatus {
	b.life.Lock()
	sched := b.sched
	running := b.running
	b.life.Unlock()
	if !running {
		return nil
	}
	checkers := map[serverKey][]CheckerStatus{}
	for _, s := range sched.Status() {
		var cs []CheckerStatus
		for _, c := range s.Checkers {
			cs = append(cs, CheckerStatus{Type: string(c.Type), Target: c.Addr, Up: c.Up, HasRun: c.HasRun, Reason: string(c.Reason)})
		}
		checkers[serverKey{s.Service, s.Target}] = cs
	}
	b.kmu.Lock()
	inKernel := b.rec != nil
	b.kmu.Unlock()

	b.mu.Lock()
	defer b.mu.Unlock()
	targets := map[*vsState]map[int]serverKey{}
	for k, ref := range b.index {
		for _, r := range ref.refs {
			if targets[r.vs] == nil {
				targets[r.vs] = map[int]serverKey{}
			}
			targets[r.vs][r.rs] = k
		}
	}
	out := make([]VirtualServerStatus, 0, len(b.vss))
	for _, vs := range b.vss {
		q := vs.v.Pool.Quorum
		if q <= 0 {
			q = 1
		}
		st := VirtualServerStatus{Service: vs.name, Quorum: vs.quorum.String(), QuorumUp: vs.quorum == ipvs.QuorumUp,
			QuorumMin: q, Hysteresis: vs.v.Pool.Hysteresis, LiveWeight: vs.last.LiveWeight,
			SorryActive: vs.last.SorryActive, InKernel: inKernel, RealServers: []RealServerStatus{}}
		for _, k := range vs.keys {
			st.Services = append(st.Services, k.String())
		}
		if s := vs.v.Pool.Sorry; s != nil {
			st.SorryServer = s.AddrPort().String()
		}
		for i, rs := range vs.v.Servers {
			r := RealServerStatus{Address: rs.Addr.String(), Port: rs.Port, Weight: rs.Weight, TableWeight: -1,
				Up: rs.Checked && rs.Up || !rs.Checked && !vs.v.Pool.Alpha, Checked: rs.Checked, Inhibit: rs.Inhibit,
				Checkers: checkers[targets[vs][i]]}
			for _, d := range vs.last.Destinations {
				if d.AddrPort() == rs.AddrPort() {
					r.TableWeight = d.Weight
				}
			}
			st.RealServers = append(st.RealServers, r)
		}
		out = append(out, st)
	}
	return out
}

// Counters reads the kernel's counters of the balancer's services with
// their destinations, sorted by key (metrics reads it at each scrape). It
// fails with an error wrapping ipvs.ErrUnavailable when the kernel has no
// IPVS, and with ErrNotRunning before Run.
func (b *Balancer) Counters() ([]ipvs.Service, error) {
	b.kmu.Lock()
	rec, kerr := b.rec, b.kerr
	b.kmu.Unlock()
	if rec == nil {
		if kerr != nil {
			return nil, kerr
		}
		return nil, ErrNotRunning
	}
	return rec.Counters()
}
