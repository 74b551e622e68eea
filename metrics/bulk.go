package metrics

import (
	"bytes"
	gzip "github.com/klauspost/compress/gzip"
	"io"
	"math"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"google.golang.org/protobuf/proto"
)

// The per-real-server families (the real servers' state and the kernel's
// IPVS counters) are most of a big agent's series: 10 per real server,
// 100,000 at 10,000 real servers. Through client_golang's registry and
// expfmt a scrape of them took 200-400 ms on the 2-core test machines, over
// the 100 ms budget (DESIGN.md §9), so they bypass the registry: Handler
// writes them straight from the real-server map and the IPVS snapshot, with
// each server's label text rendered once and cached; Gatherer gives the
// same families as dto for everything else (tests, protobuf scrapes).

// bulkFamily is one family the bulk writer produces.
type bulkFamily struct {
	name, help string
	counter    bool
	labels     int // 0: none, 1: virtual_server, 2: virtual_server + real_server
}

var (
	famRSUp     = bulkFamily{"keepwatch_real_server_up", "1 if the real server passes its health checks and is in the IPVS table, else 0.", false, 2}
	famRSWeight = bulkFamily{"keepwatch_real_server_weight", "Weight the agent gives the real server in IPVS (0 while it is down and inhibit_on_failure is set).", false, 2}
	famIPVSUp   = bulkFamily{"keepwatch_ipvs_scrape_success", "1 if the kernel's IPVS table could be read at this scrape, else 0.", false, 0}

	famVS = [...]bulkFamily{
		{"keepwatch_ipvs_virtual_server_connections_total", "Connections the kernel scheduled for the virtual server.", true, 1},
		{"keepwatch_ipvs_virtual_server_incoming_packets_total", "Packets in from clients to the virtual server.", true, 1},
		{"keepwatch_ipvs_virtual_server_outgoing_packets_total", "Packets out from the virtual server to clients.", true, 1},
		{"keepwatch_ipvs_virtual_server_incoming_bytes_total", "Bytes in from clients to the virtual server.", true, 1},
		{"keepwatch_ipvs_virtual_server_outgoing_bytes_total", "Bytes out from the virtual server to clients.", true, 1},
	}
	famRS = [...]bulkFamily{
		{"keepwatch_ipvs_real_server_connections_total", "Connections the kernel scheduled to the real server.", true, 2},
		{"keepwatch_ipvs_real_server_incoming_packets_total", "Packets in from clients forwarded to the real server.", true, 2},
		{"keepwatch_ipvs_real_server_outgoing_packets_total", "Packets out from the real server to clients.", true, 2},
		{"keepwatch_ipvs_real_server_incoming_bytes_total", "Bytes in from clients forwarded to the real server.", true, 2},
		{"keepwatch_ipvs_real_server_outgoing_bytes_total", "Bytes out from the real server to clients.", true, 2},
		{"keepwatch_ipvs_real_server_active_connections", "Active (established) connections to the real server.", false, 2},
		{"keepwatch_ipvs_real_server_inactive_connections", "Inactive connections (not established: FIN_WAIT, TIME_WAIT, ...) to the real server.", false, 2},
		{"keepwatch_ipvs_real_server_weight", "Weight of the real server in the kernel's table.", false, 2},
	}
)

func vsValue(s *IPVSStats, i int) float64 {
	return float64([...]uint64{s.Connections, s.PacketsIn, s.PacketsOut, s.BytesIn, s.BytesOut}[i])
}

func rsValue(d *IPVSDestination, i int) float64 {
	switch i {
	case 5:
		return float64(d.ActiveConns)
	case 6:
		return float64(d.InactiveConns)
	case 7:
		return float64(d.Weight)
	}
	return vsValue(&d.Stats, i)
}

// value is a float64 gauge set without allocating: a real server's up and
// weight, read by the bulk writer.
type value struct{ bits atomic.Uint64 }

// Set stores v.
func (g *value) Set(v float64) { g.bits.Store(math.Float64bits(v)) }

// Get returns the value.
func (g *value) Get() float64 { return math.Float64frombits(g.bits.Load()) }

// bulk produces the per-real-server families.
type bulk struct {
	m   *Metrics
	src IPVSSource // nil: no IPVS families

	mu sync.Mutex
	// Cached label text, keyed by names: `{real_server="…",virtual_server="…"}`
	// and `{virtual_server="…"}`.
	pair   map[serverKey]string
	single map[string]string
	// The real servers sorted, for the map snapshot they were sorted from.
	sortedFrom map[serverKey]*realServer
	sorted     []serverKey
}

// snapshot is what one scrape writes.
type snapshot struct {
	servers  []serverKey
	vals     []*realServer
	ipvs     bool // the IPVS families are wanted
	ipvsOK   bool
	services []IPVSService
}

func (b *bulk) take() snapshot {
	var s snapshot
	cur := b.m.servers.snapshot()
	b.mu.Lock()
	if b.sortedFrom == nil || !sameMap(b.sortedFrom, cur) {
		keys := make([]serverKey, 0, len(cur))
		for k := range cur {
			keys = append(keys, k)
		}
		// The registry's order: by label values in label-name order
		// (real_server, then virtual_server).
		slices.SortFunc(keys, func(a, c serverKey) int {
			if r := strings.Compare(a.server, c.server); r != 0 {
				return r
			}
			return strings.Compare(a.service, c.service)
		})
		b.sortedFrom, b.sorted = cur, keys
	}
	s.servers = b.sorted
	b.mu.Unlock()
	s.vals = make([]*realServer, len(s.servers))
	for i, k := range s.servers {
		s.vals[i] = cur[k]
	}
	if b.src != nil {
		s.ipvs = true
		services, err := b.src.IPVSStats()
		s.ipvsOK, s.services = err == nil, services
	}
	return s
}

// sameMap reports whether a and c are the same map (one cowMap snapshot).
func sameMap(a, c map[serverKey]*realServer) bool {
	if len(a) != len(c) {
		return false
	}
	for k, v := range c {
		if a[k] != v {
			return false
		}
	}
	return true
}

func (b *bulk) pairLabels(service, server string) string {
	k := serverKey{service, server}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.pair == nil {
		b.pair = map[serverKey]string{}
	}
	if l, ok := b.pair[k]; ok {
		return l
	}
	var sb strings.Builder
	sb.WriteString(`{real_server="`)
	escapeLabel(&sb, valid(server))
	sb.WriteString(`",virtual_server="`)
	escapeLabel(&sb, valid(service))
	sb.WriteString(`"}`)
	l := sb.String()
	if len(b.pair) > 4*(len(b.sorted)+1024) {
		clear(b.pair) // names churned: drop the old ones
	}
	b.pair[k] = l
	return l
}

func (b *bulk) singleLabels(service string) string {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.single == nil {
		b.single = map[string]string{}
	}
	if l, ok := b.single[service]; ok {
		return l
	}
	var sb strings.Builder
	sb.WriteString(`{virtual_server="`)
	escapeLabel(&sb, valid(service))
	sb.WriteString(`"}`)
	l := sb.String()
	if len(b.single) > 4096 {
		clear(b.single)
	}
	b.single[service] = l
	return l
}

// escapeLabel escapes a label value as the text formats want.
func escapeLabel(sb *strings.Builder, v string) {
	for i := 0; i < len(v); i++ {
		switch c := v[i]; c {
		case '\\':
			sb.WriteString(`\\`)
		case '"':
			sb.WriteString(`\"`)
		case '\n':
			sb.WriteString(`\n`)
		default:
			sb.WriteByte(c)
		}
	}
}

// write writes the families of s to o in the text format, or OpenMetrics.
// The label cache is locked per lookup, not across the write: o may wait
// on a slow client.
func (b *bulk) write(o *streamOut, s *snapshot, om bool) {
	sample := func(f *bulkFamily, labels string, v float64) {
		o.buf = append(o.buf, f.name...)
		o.buf = append(o.buf, labels...)
		o.buf = append(o.buf, ' ')
		o.buf = appendFloat(o.buf, v, om)
		o.spill()
	}
	if len(s.servers) > 0 {
		for _, f := range []*bulkFamily{&famRSUp, &famRSWeight} {
			o.buf = header(o.buf, f, om)
			for i, k := range s.servers {
				v := s.vals[i].up.Get()
				if f == &famRSWeight {
					v = s.vals[i].weight.Get()
				}
				sample(f, b.pairLabels(k.service, k.server), v)
			}
		}
	}
	if !s.ipvs {
		return
	}
	o.buf = header(o.buf, &famIPVSUp, om)
	sample(&famIPVSUp, "", b2f(s.ipvsOK))
	if !s.ipvsOK || len(s.services) == 0 {
		return
	}
	order := sortedServices(s.services)
	for i := range famVS {
		f := &famVS[i]
		o.buf = header(o.buf, f, om)
		for _, si := range order {
			svc := &s.services[si]
			sample(f, b.singleLabels(svc.Name), vsValue(&svc.Stats, i))
		}
	}
	dests := sortedDestinations(s.services, order)
	if len(dests) == 0 {
		return
	}
	for i := range famRS {
		f := &famRS[i]
		o.buf = header(o.buf, f, om)
		for _, d := range dests {
			svc := &s.services[d[0]]
			dst := &svc.Destinations[d[1]]
			sample(f, b.pairLabels(svc.Name, dst.Name), rsValue(dst, i))
		}
	}
}

func sortedServices(services []IPVSService) []int {
	order := make([]int, len(services))
	for i := range order {
		order[i] = i
	}
	slices.SortStableFunc(order, func(a, c int) int { return strings.Compare(services[a].Name, services[c].Name) })
	return order
}

// sortedDestinations lists (service, destination) indexes in the
// registry's order: by real server, then virtual server.
func sortedDestinations(services []IPVSService, order []int) [][2]int {
	var out [][2]int
	for _, si := range order {
		for di := range services[si].Destinations {
			out = append(out, [2]int{si, di})
		}
	}
	slices.SortStableFunc(out, func(a, c [2]int) int {
		return strings.Compare(services[a[0]].Destinations[a[1]].Name, services[c[0]].Destinations[c[1]].Name)
	})
	return out
}

// familyHeader writes a family's HELP and TYPE lines as expfmt does;
// OpenMetrics names a counter family without its _total suffix and also
// escapes quotes in the help text.
func familyHeader(buf []byte, name, help, typ string, om bool) []byte {
	if om && typ == "counter" {
		name = strings.TrimSuffix(name, "_total")
	}
	buf = append(buf, "# HELP "...)
	buf = append(buf, name...)
	buf = append(buf, ' ')
	for i := 0; i < len(help); i++ {
		switch c := help[i]; {
		case c == '\\':
			buf = append(buf, `\\`...)
		case c == '\n':
			buf = append(buf, `\n`...)
		case c == '"' && om:
			buf = append(buf, `\"`...)
		default:
			buf = append(buf, c)
		}
	}
	buf = append(buf, "\n# TYPE "...)
	buf = append(buf, name...)
	buf = append(buf, ' ')
	buf = append(buf, typ...)
	return append(buf, '\n')
}

func header(buf []byte, f *bulkFamily, om bool) []byte {
	typ := "gauge"
	if f.counter {
		typ = "counter"
	}
	return familyHeader(buf, f.name, f.help, typ, om)
}

// appendFloat formats v as expfmt does for each format.
func appendFloat(buf []byte, v float64, om bool) []byte {
	start := len(buf)
	switch {
	case v == 1 || v == 0 || v == -1:
		buf = strconv.AppendInt(buf, int64(v), 10)
		if om {
			buf = append(buf, ".0"...)
		}
	case math.IsNaN(v):
		buf = append(buf, "NaN"...)
	case math.IsInf(v, 1):
		buf = append(buf, "+Inf"...)
	case math.IsInf(v, -1):
		buf = append(buf, "-Inf"...)
	default:
		buf = strconv.AppendFloat(buf, v, 'g', -1, 64)
		if om && !bytes.ContainsAny(buf[start:], "e.") {
			buf = append(buf, ".0"...)
		}
	}
	return append(buf, '\n')
}

// families returns s as dto families, for Gatherer.
func (b *bulk) families(s *snapshot) []*dto.MetricFamily {
	var out []*dto.MetricFamily
	add := func(f *bulkFamily, n int, at func(i int) (service, server string, v float64)) {
		if n == 0 {
			return
		}
		typ := dto.MetricType_GAUGE
		if f.counter {
			typ = dto.MetricType_COUNTER
		}
		mf := &dto.MetricFamily{Name: proto.String(f.name), Help: proto.String(f.help), Type: &typ}
		for i := 0; i < n; i++ {
			service, server, v := at(i)
			m := &dto.Metric{}
			switch f.labels {
			case 1:
				m.Label = []*dto.LabelPair{{Name: proto.String(lVirtualServer), Value: proto.String(valid(service))}}
			case 2:
				m.Label = []*dto.LabelPair{{Name: proto.String(lRealServer), Value: proto.String(valid(server))},
					{Name: proto.String(lVirtualServer), Value: proto.String(valid(service))}}
			}
			if f.counter {
				m.Counter = &dto.Counter{Value: proto.Float64(v)}
			} else {
				m.Gauge = &dto.Gauge{Value: proto.Float64(v)}
			}
			mf.Metric = append(mf.Metric, m)
		}
		out = append(out, mf)
	}
	add(&famRSUp, len(s.servers), func(i int) (string, string, float64) {
		return s.servers[i].service, s.servers[i].server, s.vals[i].up.Get()
	})
	add(&famRSWeight, len(s.servers), func(i int) (string, string, float64) {
		return s.servers[i].service, s.servers[i].server, s.vals[i].weight.Get()
	})
	if !s.ipvs {
		return out
	}
	add(&famIPVSUp, 1, func(int) (string, string, float64) { return "", "", b2f(s.ipvsOK) })
	if !s.ipvsOK {
		return out
	}
	for fi := range famVS {
		add(&famVS[fi], len(s.services), func(i int) (string, string, float64) {
			return s.services[i].Name, "", vsValue(&s.services[i].Stats, fi)
		})
	}
	var dests [][2]int
	for si := range s.services {
		for di := range s.services[si].Destinations {
			dests = append(dests, [2]int{si, di})
		}
	}
	for fi := range famRS {
		add(&famRS[fi], len(dests), func(i int) (string, string, float64) {
			svc := &s.services[dests[i][0]]
			d := &svc.Destinations[dests[i][1]]
			return svc.Name, d.Name, rsValue(d, fi)
		})
	}
	return out
}

// Gatherer returns g's families and the per-real-server families: what
// /metrics serves, for tests and for callers that want dto families.
func (m *Metrics) Gatherer(g prometheus.Gatherer) prometheus.Gatherer {
	return &gatherer{m: m, g: g, all: prometheus.Gatherers{g, prometheus.GathererFunc(func() ([]*dto.MetricFamily, error) {
		s := m.bulk.take()
		return m.bulk.families(&s), nil
	})}}
}

// gatherer is what Gatherer returns.
type gatherer struct {
	m   *Metrics
	g   prometheus.Gatherer // the caller's
	all prometheus.Gatherers
}

// Gather implements prometheus.Gatherer.
func (g *gatherer) Gather() ([]*dto.MetricFamily, error) {
	// Not while Handler holds the VRRP collector's ticket.
	g.m.gatherMu.Lock()
	defer g.m.gatherMu.Unlock()
	return g.all.Gather()
}

// Handler serves /metrics: g's families (the registry New was given, and
// whatever else the caller registered there) through expfmt, with the
// per-instance VRRP families (vrrpstream.go) and the per-real-server
// families (above) written directly, in the text format or OpenMetrics
// (negotiated, for exemplars), gzipped when asked. The body goes out in
// chunks of about flushAt bytes as it is written. Other formats (protobuf)
// go through promhttp and Gatherer.
//
// Handler gathers g with the VRRP collector told to send nothing (a
// one-shot ticket, under gatherMu); a Gather of the same registry made at
// that moment by someone else than Handler or Gatherer may take the ticket
// and miss the VRRP families (the agent gathers only through Handler), and
// Handler then encodes the ones it gathered. g must not gather through
// this Metrics' Gatherer other than as g itself.
func (m *Metrics) Handler(g prometheus.Gatherer) http.Handler {
	if mg, ok := g.(*gatherer); ok && mg.m == m {
		// Handler adds the bulk families itself, and gathering through
		// Gatherer under gatherMu would wait for ever.
		g = mg.g
	}
	slow := promhttp.HandlerFor(m.Gatherer(g), promhttp.HandlerOpts{EnableOpenMetrics: true})
	// What a scrape writes with is kept for the next one, outside
	// sync.Pool (emptied by every other GC, that is before each scrape at
	// a 15 s interval): the chunk buffer, the VRRP scratch and the gzip
	// writer (about 800 KB of compressor state; see BenchmarkGzipWriter).
	free := make(chan *scrapeState, scrapeStates)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		format := expfmt.NegotiateAccept(r.Header, expfmt.DefaultOpenMetricsAcceptedFormats()...)
		om := format.FormatType() == expfmt.TypeOpenMetrics
		if !om && format.FormatType() != expfmt.TypeTextPlain {
			slow.ServeHTTP(w, r)
			return
		}
		c := m.f.vrrp
		m.gatherMu.Lock()
		c.skip.Store(true)
		mfs, err := g.Gather()
		// The ticket taken: the collector is in g and sent nothing.
		stream := !c.skip.Swap(false)
		m.gatherMu.Unlock()
		if err != nil {
			http.Error(w, "gathering metrics: "+err.Error(), http.StatusInternalServerError)
			return
		}
		for _, mf := range mfs {
			if stream && strings.HasPrefix(mf.GetName(), "keepwatch_vrrp_") && slices.Contains(c.names[:], mf.GetName()) {
				stream = false // someone else's Gather took the ticket
			}
		}
		s := m.bulk.take()

		var st *scrapeState
		select {
		case st = <-free:
		default:
			st = &scrapeState{}
		}
		defer func() {
			select {
			case free <- st:
			default:
			}
		}()
		w.Header().Set("Content-Type", string(format))
		var zw *gzip.Writer
		o := &st.out
		o.reset(w)
		if acceptsGzip(r) {
			w.Header().Set("Content-Encoding", "gzip")
			if st.zip == nil {
				st.zip, _ = gzip.NewWriterLevel(w, gzip.BestSpeed)
			} else {
				st.zip.Reset(w)
			}
			zw = st.zip
			o.reset(zw)
		}
		enc := expfmt.NewEncoder(o, format)
		var ins []*instance
		if stream {
			ins = c.instancesFor(&st.vrrp)
		}
		// The families in the registry's order: by name.
		next := 0
		streamUpTo := func(name string) {
			for ; stream && next < len(vrrpOrder) && (name == "" || c.names[vrrpOrder[next]] < name); next++ {
				c.writeFamily(o, &st.vrrp, vrrpOrder[next], ins, om)
			}
		}
		for _, mf := range mfs {
			streamUpTo(mf.GetName())
			if err := enc.Encode(mf); err != nil && o.err == nil {
				o.err = err
			}
		}
		streamUpTo("")
		clear(st.vrrp.ins)
		m.bulk.write(o, &s, om)
		if cl, ok := enc.(expfmt.Closer); ok {
			_ = cl.Close() // OpenMetrics' "# EOF"
		}
		if zw == nil && !o.spilled {
			w.Header().Set("Content-Length", strconv.Itoa(len(o.buf)))
		}
		o.flush()
		if zw != nil {
			_ = zw.Close()
			zw.Reset(io.Discard) // not keep the ResponseWriter
		}
		o.reset(nil)
		if cap(o.buf) > 4*flushAt {
			o.buf = nil // one long label or help text grew it
		}
	})
}

// scrapeStates is how many scrapes' buffers are kept: httpguard lets two
// scrapes run at once.
const scrapeStates = 2

// scrapeState is what one scrape writes with.
type scrapeState struct {
	out  streamOut
	vrrp vrrpScratch
	zip  *gzip.Writer
}

// acceptsGzip reports whether the client takes gzip (Prometheus does).
func acceptsGzip(r *http.Request) bool {
	for _, part := range strings.Split(r.Header.Get("Accept-Encoding"), ",") {
		enc, params, _ := strings.Cut(strings.TrimSpace(part), ";")
		if strings.TrimSpace(enc) != "gzip" {
			continue
		}
		q := 1.0
		if k, v, ok := strings.Cut(strings.TrimSpace(params), "="); ok && strings.TrimSpace(k) == "q" {
			if f, err := strconv.ParseFloat(strings.TrimSpace(v), 64); err == nil {
				q = f
			}
		}
		return q > 0
	}
	return false
}
