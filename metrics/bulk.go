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

// write appends the families of s in the text format, or OpenMetrics.
func (b *bulk) write(buf []byte, s *snapshot, om bool) []byte {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.pair == nil {
		b.pair, b.single = map[serverKey]string{}, map[string]string{}
	}
	sample := func(buf []byte, f *bulkFamily, labels string, v float64) []byte {
		buf = append(buf, f.name...)
		buf = append(buf, labels...)
		buf = append(buf, ' ')
		return appendFloat(buf, v, om)
	}
	if len(s.servers) > 0 {
		for _, f := range []*bulkFamily{&famRSUp, &famRSWeight} {
			buf = header(buf, f, om)
			for i, k := range s.servers {
				v := s.vals[i].up.Get()
				if f == &famRSWeight {
					v = s.vals[i].weight.Get()
				}
				buf = sample(buf, f, b.pairLabels(k.service, k.server), v)
			}
		}
	}
	if !s.ipvs {
		return buf
	}
	buf = header(buf, &famIPVSUp, om)
	buf = sample(buf, &famIPVSUp, "", b2f(s.ipvsOK))
	if !s.ipvsOK || len(s.services) == 0 {
		return buf
	}
	order := sortedServices(s.services)
	for i := range famVS {
		f := &famVS[i]
		buf = header(buf, f, om)
		for _, si := range order {
			svc := &s.services[si]
			buf = sample(buf, f, b.singleLabels(svc.Name), vsValue(&svc.Stats, i))
		}
	}
	dests := sortedDestinations(s.services, order)
	if len(dests) == 0 {
		return buf
	}
	for i := range famRS {
		f := &famRS[i]
		buf = header(buf, f, om)
		for _, d := range dests {
			svc := &s.services[d[0]]
			dst := &svc.Destinations[d[1]]
			buf = sample(buf, f, b.pairLabels(svc.Name, dst.Name), rsValue(dst, i))
		}
	}
	return buf
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

// header writes a family's HELP and TYPE lines; OpenMetrics names a
// counter family without its _total suffix.
func header(buf []byte, f *bulkFamily, om bool) []byte {
	name, typ := f.name, "gauge"
	if f.counter {
		typ = "counter"
		if om {
			name = strings.TrimSuffix(name, "_total")
		}
	}
	buf = append(buf, "# HELP "...)
	buf = append(buf, name...)
	buf = append(buf, ' ')
	buf = append(buf, f.help...)
	buf = append(buf, "\n# TYPE "...)
	buf = append(buf, name...)
	buf = append(buf, ' ')
	buf = append(buf, typ...)
	return append(buf, '\n')
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
	return prometheus.Gatherers{g, prometheus.GathererFunc(func() ([]*dto.MetricFamily, error) {
		s := m.bulk.take()
		return m.bulk.families(&s), nil
	})}
}

// Handler serves /metrics: g's families (the registry New was given, and
// whatever else the caller registered there) through expfmt, then the
// per-real-server families written directly. The text format and
// OpenMetrics (negotiated, for exemplars) take that path, gzipped when
// asked; other formats (protobuf) go through promhttp and Gatherer.
func (m *Metrics) Handler(g prometheus.Gatherer) http.Handler {
	slow := promhttp.HandlerFor(m.Gatherer(g), promhttp.HandlerOpts{EnableOpenMetrics: true})
	// Buffers and gzip writers are reused: a 10,000-real-server body is
	// about 13 MB.
	var bufs, zips sync.Pool
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		format := expfmt.NegotiateAccept(r.Header, expfmt.DefaultOpenMetricsAcceptedFormats()...)
		om := format.FormatType() == expfmt.TypeOpenMetrics
		if !om && format.FormatType() != expfmt.TypeTextPlain {
			slow.ServeHTTP(w, r)
			return
		}
		mfs, err := g.Gather()
		if err != nil {
			http.Error(w, "gathering metrics: "+err.Error(), http.StatusInternalServerError)
			return
		}
		s := m.bulk.take()
		sb, _ := bufs.Get().(*scrapeBuf)
		if sb == nil {
			sb = &scrapeBuf{}
		}
		defer bufs.Put(sb)
		sb.text.Reset()
		enc := expfmt.NewEncoder(&sb.text, format)
		for _, mf := range mfs {
			if err := enc.Encode(mf); err != nil {
				http.Error(w, "encoding metrics: "+err.Error(), http.StatusInternalServerError)
				return
			}
		}
		sb.bulk = m.bulk.write(sb.bulk[:0], &s, om)
		if c, ok := enc.(expfmt.Closer); ok {
			// OpenMetrics ends with "# EOF", after every family: move it
			// from the registry's part to the end.
			_ = c.Close()
			if text := sb.text.Bytes(); bytes.HasSuffix(text, eof) {
				sb.text.Truncate(len(text) - len(eof))
				sb.bulk = append(sb.bulk, eof...)
			}
		}
		w.Header().Set("Content-Type", string(format))
		var out io.Writer = w
		if acceptsGzip(r) {
			w.Header().Set("Content-Encoding", "gzip")
			zw, _ := zips.Get().(*gzip.Writer)
			if zw == nil {
				zw, _ = gzip.NewWriterLevel(w, gzip.BestSpeed)
			} else {
				zw.Reset(w)
			}
			defer func() {
				_ = zw.Close()
				zips.Put(zw)
			}()
			out = zw
		} else {
			w.Header().Set("Content-Length", strconv.Itoa(sb.text.Len()+len(sb.bulk)))
		}
		if _, err := out.Write(sb.text.Bytes()); err == nil {
			_, _ = out.Write(sb.bulk)
		}
	})
}

var eof = []byte("# EOF\n")

// scrapeBuf is one scrape's body: the registry's families, then the bulk.
type scrapeBuf struct {
	text bytes.Buffer
	bulk []byte
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
