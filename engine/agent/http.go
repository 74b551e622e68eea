package agent

import (
	"encoding/json"
	"net/http"
	"time"

	"github.com/keepwatch/keepwatch/engine/config"
	"github.com/keepwatch/keepwatch/engine/lb"
)

// StatusDoc is the body of /api/v1/status.
type StatusDoc struct {
	RouterID  string           `json:"router_id"`
	Config    string           `json:"config"`
	Ready     bool             `json:"ready"`
	Instances []InstanceReport `json:"vrrp_instances"`
	// VirtualServers are the load balancer's virtual servers: quorum, real
	// servers with address, port, weight and state, their checkers.
	VirtualServers []lb.VirtualServerStatus `json:"virtual_servers"`
	// Diagnostics are the running config's, each with what was done
	// about it (keepwatch check prints the same).
	Diagnostics []config.DiagnosticReport `json:"diagnostics"`
}

// InstanceReport is one instance in /api/v1/status: keepalived's JSON dump
// fields (iname, vrid, state, priority, ...) and what keepwatch adds.
type InstanceReport struct {
	Name              string          `json:"iname"`
	VRID              uint8           `json:"vrid"`
	Interface         string          `json:"ifp_ifname"`
	Family            string          `json:"family"`
	State             string          `json:"state"`
	BasePriority      int             `json:"base_priority"`
	EffectivePriority int             `json:"effective_priority"`
	MasterAddress     string          `json:"master_saddr,omitempty"`
	MasterPriority    int             `json:"master_priority,omitempty"`
	VIPs              []string        `json:"vips"`
	VIPsHeld          bool            `json:"vips_held"`
	LastTransition    *time.Time      `json:"last_transition,omitempty"`
	LastReason        string          `json:"last_transition_reason,omitempty"`
	AdvertInterval    float64         `json:"adver_int"`
	MasterDownSeconds float64         `json:"master_down_interval"`
	Trackers          []TrackerStatus `json:"trackers,omitempty"`
}

// StatusHandler serves /api/v1/status.
func (a *Agent) StatusHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		doc := StatusDoc{Config: a.opts.Path, Ready: a.Ready(), Instances: []InstanceReport{}}
		doc.Diagnostics = []config.DiagnosticReport{}
		if c := a.Config(); c != nil {
			doc.RouterID = c.Global.RouterID
			doc.Diagnostics = c.Diagnostics.Reports()
		}
		for _, s := range a.Status() {
			ir := InstanceReport{Name: s.Name, VRID: s.VRID, Interface: s.Interface, Family: s.Family.String(),
				State: s.State.String(), BasePriority: s.BasePriority, EffectivePriority: s.Priority,
				VIPs: s.VIPs, VIPsHeld: s.VIPsHeld, LastReason: string(s.LastReason),
				AdvertInterval: s.AdvertInterval.Seconds(), MasterDownSeconds: s.MasterDown.Seconds(), Trackers: s.Trackers}
			if s.Master.IsValid() {
				ir.MasterAddress, ir.MasterPriority = s.Master.String(), s.MasterPriority
			}
			if !s.LastTransition.IsZero() {
				t := s.LastTransition
				ir.LastTransition = &t
			}
			out := ir
			doc.Instances = append(doc.Instances, out)
		}
		doc.VirtualServers = a.VirtualServers()
		w.Header().Set("Content-Type", "application/json")
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		_ = enc.Encode(doc)
	})
}

// ReadyHandler answers 200 once the config is loaded and sockets are open.
func (a *Agent) ReadyHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !a.Ready() {
			http.Error(w, "not ready", http.StatusServiceUnavailable)
			return
		}
		_, _ = w.Write([]byte("ready\n"))
	})
}
