package metrics

import (
	"github.com/prometheus/client_golang/prometheus"
)

// Declare creates the series of everything the configuration declares, so
// they exist (at 0, or at their initial value) before the first event. Call
// it at startup and after each successful reload: instances, scripts, and
// virtual and real servers that are no longer declared lose their series;
// those that remain keep their counters, as keepalived keeps its statistics
// across a reload (reference §3.4).
func (m *Metrics) Declare(d Declaration) {
	m.declMu.Lock()
	defer m.declMu.Unlock()
	f := m.f
	f.configDiags.WithLabelValues("error").Set(float64(d.ConfigErrors))
	f.configDiags.WithLabelValues("warning").Set(float64(d.ConfigWarnings))

	// VRRP instances, by name. A changed identity (vrid, interface,
	// family) is a new instance for keepalived too (reference §0.7).
	old := m.instances.snapshot()
	next := make(map[string]*instance, len(d.Instances))
	sp := sharedPairs{}
	for _, di := range d.Instances {
		if in, ok := old[di.Name]; ok && in.decl.sameIdentity(di) {
			in.redeclare(m, di, sp)
			next[di.Name] = in
			continue
		}
		next[di.Name] = m.newInstance(di, sp)
	}
	m.instances.update(func(cur map[string]*instance) {
		clear(cur)
		for k, v := range next {
			cur[k] = v
		}
	})
	// After the map: an event between the two finds a replaced instance
	// by its old entry, as it could by a map read just before the update.
	m.byVRID.Store(indexInstances(next))

	// Tracked scripts.
	oldScripts := m.scripts.snapshot()
	m.scripts.update(func(cur map[string]*script) {
		clear(cur)
		for _, s := range d.Scripts {
			if sc, ok := oldScripts[s.Name]; ok {
				cur[s.Name] = sc
				continue
			}
			cur[s.Name] = m.newScript(s)
		}
	})
	for name := range oldScripts {
		if _, ok := m.scripts.load(name); !ok {
			deleteMatching(prometheus.Labels{lScript: valid(name)}, f.scriptUp, f.scriptRuns, f.scriptDuration)
		}
	}

	// Virtual servers, their checkers and real servers.
	wantVS := make(map[string]bool, len(d.VirtualServers))
	wantRS := make(map[serverKey]bool)
	wantProbe := make(map[probeKey]bool)
	// New real servers are published in one copy of the map, not one copy
	// each: with 10,000 of them, per-insert copies made Declare quadratic.
	curRS := m.servers.snapshot()
	newRS := make(map[serverKey]*realServer)
	for _, vs := range d.VirtualServers {
		wantVS[vs.Name] = true
		_, existed := m.quorum.load(vs.Name)
		q := m.quorumFor(vs.Name)
		if !existed {
			q.Set(1)
		}
		for _, c := range vs.Checkers {
			wantProbe[probeKey{vs.Name, c}] = true
			m.probeFor(vs.Name, c)
		}
		for _, rs := range vs.RealServers {
			k := serverKey{vs.Name, rs.Name}
			wantRS[k] = true
			if _, ok := curRS[k]; ok {
				continue
			}
			s := m.newServer(vs.Name, rs.Name)
			s.up.Set(b2f(rs.Up))
			w := rs.Weight
			if !rs.Up {
				w = 0
			}
			s.weight.Set(float64(w))
			newRS[k] = s
		}
	}
	m.quorum.update(func(cur map[string]prometheus.Gauge) {
		for vs := range cur {
			if !wantVS[vs] {
				delete(cur, vs)
				f.quorumUp.DeleteLabelValues(valid(vs))
			}
		}
	})
	m.servers.update(func(cur map[serverKey]*realServer) {
		for k := range cur {
			if !wantRS[k] {
				delete(cur, k) // its series go with it (bulk.go)
			}
		}
		for k, s := range newRS {
			if _, ok := cur[k]; !ok { // an event may have created it meanwhile
				cur[k] = s
			}
		}
	})
	m.probes.update(func(cur map[probeKey]*probe) {
		for k := range cur {
			if !wantProbe[k] {
				delete(cur, k)
				deleteMatching(prometheus.Labels{lVirtualServer: valid(k.service), lChecker: valid(k.checker)}, f.probes, f.probeDuration, f.probeErrors)
			}
		}
	})
}

// sameIdentity reports whether b declares the instance a was declared as.
func (a declared) sameIdentity(b Instance) bool {
	n := declaredOf(b)
	return a.name == n.name && a.vrid == n.vrid && a.iface == n.iface && a.family == n.family
}

type partialDeleter interface {
	DeletePartialMatch(prometheus.Labels) int
}

func deleteMatching(l prometheus.Labels, vs ...partialDeleter) {
	for _, v := range vs {
		v.DeletePartialMatch(l)
	}
}
