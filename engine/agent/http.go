package agent

import (
	"encoding/json"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/keepwatch/keepwatch/engine/config"
	"github.com/keepwatch/keepwatch/engine/dump"
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
	// ScriptSecurity lists the running config's scripts that will not run
	// (disabled) or run unsafely (no enable_script_security), with their
	// file:line, as config validation found them for this config.
	ScriptSecurity []config.ScriptFinding `json:"script_security,omitempty"`
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
	MasterPriority    int             `json:"master_priority"` // always present, as in keepalived's dump
	VIPs              []string        `json:"vips"`
	VIPsHeld          bool            `json:"vips_held"`
	LastTransition    *time.Time      `json:"last_transition,omitempty"`
	LastReason        string          `json:"last_transition_reason,omitempty"`
	AdvertInterval    float64         `json:"adver_int"`
	MasterDownSeconds float64         `json:"master_down_interval"`
	Trackers          []TrackerStatus `json:"trackers,omitempty"`
	// FaultReason says why an instance that could not start (its interface
	// is missing, has no address, ...) is in FAULT.
	FaultReason string `json:"fault_reason,omitempty"`
	// dump.Data adds every other field of keepalived's JSON dump (its
	// "data" object) under the same name; where a field above has the same
	// name it wins (encoding/json: the shallower field), keeping the API's
	// existing types (state as a name, last_transition as a time).
	dump.Data
	Stats dump.Stats `json:"stats"`
}

// StatusHandler serves /api/v1/status.
func (a *Agent) StatusHandler() http.Handler {
	// Script findings stat every script's path: computed once per config.
	var (
		scriptsMu sync.Mutex
		scriptsOf *config.Config
		findings  []config.ScriptFinding
	)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		doc := StatusDoc{Config: a.opts.Path, Ready: a.Ready(), Instances: []InstanceReport{}}
		doc.Diagnostics = []config.DiagnosticReport{}
		if c := a.Config(); c != nil {
			doc.RouterID = c.Global.RouterID
			scriptsMu.Lock()
			if scriptsOf != c {
				scriptsOf = c
				findings, _ = c.ScriptFindings()
			}
			doc.ScriptSecurity = findings
			scriptsMu.Unlock()
			doc.Diagnostics = c.Diagnostics.Reports()
		}
		for _, s := range a.Status() {
			ir := InstanceReport{Name: s.Name, VRID: s.VRID, Interface: s.Interface, Family: s.Family.String(),
				State: s.State.String(), BasePriority: s.BasePriority, EffectivePriority: s.Priority,
				VIPs: s.VIPs, VIPsHeld: s.VIPsHeld, LastReason: string(s.LastReason),
				AdvertInterval: s.AdvertInterval.Seconds(), MasterDownSeconds: s.MasterDown.Seconds(), Trackers: s.Trackers,
				FaultReason: s.FaultReason, Data: s.Data, Stats: s.Stats}
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

// ReadyHandler answers 200 "ready" once the config is loaded and every
// instance runs. Before that it answers 503 "not ready"; while some
// instances could not start, 503 with one line per instance naming it and
// why ("vrrp_instance VI_2: interface eth9 has no IPv4 address"): the agent
// runs the others, but a load balancer or an orchestrator asking whether
// this node does all it is configured to do is told it does not.
func (a *Agent) ReadyHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !a.Ready() {
			http.Error(w, "not ready", http.StatusServiceUnavailable)
			return
		}
		if failed := a.Failed(); len(failed) > 0 {
			w.Header().Set("Content-Type", "text/plain; charset=utf-8")
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = w.Write([]byte("not ready: instances in FAULT, could not start:\n" + strings.Join(failed, "\n") + "\n"))
			return
		}
		_, _ = w.Write([]byte("ready\n"))
	})
}
