package lab

import (
	"context"
	"encoding/json"
	"net/netip"
	"sync"
)

// InstanceState is one VRRP instance on one node, as the lab sees it.
type InstanceState struct {
	Node int
	Impl Impl
	Name string
	// State is "master", "backup", "fault", "init", "stop", or "?" when
	// the node could not be asked.
	State          string
	BasePriority   int
	Priority       int        // effective
	Master         string     // the master a backup hears (keepwatch only)
	MasterPriority int        // its priority
	VIP            netip.Addr // the instance's (first) virtual address
	// VIPHeld is read from the node's link, whatever the daemon says.
	VIPHeld bool
	Reason  string // last transition's reason (keepwatch only)
	// Adverts counters from /metrics (keepwatch only; -1 unknown).
	Sent, Received, Dropped float64
}

// statusDoc is the part of /api/v1/status the lab reads.
type statusDoc struct {
	Ready     bool `json:"ready"`
	Instances []struct {
		Name              string   `json:"iname"`
		State             string   `json:"state"`
		BasePriority      int      `json:"base_priority"`
		EffectivePriority int      `json:"effective_priority"`
		MasterAddress     string   `json:"master_saddr"`
		MasterPriority    int      `json:"master_priority"`
		VIPs              []string `json:"vips"`
		VIPsHeld          bool     `json:"vips_held"`
		LastReason        string   `json:"last_transition_reason"`
	} `json:"vrrp_instances"`
}

// Instances reports the node's instances, in config order. With counters,
// keepwatch nodes' advert counters are read from /metrics too.
func (n *Node) Instances(ctx context.Context, counters bool) []InstanceState {
	var out []InstanceState
	for _, in := range n.instances() {
		st := InstanceState{Node: n.Index, Impl: n.Impl, Name: in.Name, State: "?", BasePriority: n.Priority,
			Priority: n.Priority, VIP: in.VIP.Addr(), Sent: -1, Received: -1, Dropped: -1}
		st.VIPHeld, _ = n.Holds(st.VIP)
		out = append(out, st)
	}
	if !n.Running() {
		for k := range out {
			out[k].State = "stop"
		}
		return out
	}
	if n.Impl == Keepalived {
		states := n.log.kaStates()
		for k := range out {
			if s, ok := states[out[k].Name]; ok {
				out[k].State = s
			} else {
				out[k].State = "init"
			}
		}
		return out
	}
	b, err := n.Fetch(ctx, "/api/v1/status")
	if err != nil {
		return out
	}
	var doc statusDoc
	if json.Unmarshal(b, &doc) != nil {
		return out
	}
	var metrics string
	if counters {
		if m, err := n.Fetch(ctx, "/metrics"); err == nil {
			metrics = string(m)
		}
	}
	for k := range out {
		for _, in := range doc.Instances {
			if in.Name != out[k].Name {
				continue
			}
			s := &out[k]
			s.State, s.BasePriority, s.Priority = in.State, in.BasePriority, in.EffectivePriority
			s.Master, s.MasterPriority, s.Reason = in.MasterAddress, in.MasterPriority, in.LastReason
			if metrics != "" {
				s.Sent, _ = SumMetric(metrics, "keepwatch_vrrp_adverts_sent_total", "vrrp_instance", s.Name)
				s.Received, _ = SumMetric(metrics, "keepwatch_vrrp_adverts_received_total", "vrrp_instance", s.Name)
				s.Dropped, _ = SumMetric(metrics, "keepwatch_vrrp_adverts_dropped_total", "vrrp_instance", s.Name)
			}
		}
	}
	return out
}

// Observe reports every node's instances (nodes asked in parallel).
func (c *Cluster) Observe(ctx context.Context, counters bool) [][]InstanceState {
	out := make([][]InstanceState, len(c.Nodes))
	var wg sync.WaitGroup
	for i, n := range c.Nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			out[i] = n.Instances(ctx, counters)
		}()
	}
	wg.Wait()
	return out
}

// State returns the state of the named instance on the node ("?" if unknown).
func (n *Node) State(ctx context.Context, instance string) string {
	for _, s := range n.Instances(ctx, false) {
		if s.Name == instance {
			return s.State
		}
	}
	return "?"
}
