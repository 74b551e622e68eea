package metrics

import (
	"compress/gzip"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	dto "github.com/prometheus/client_model/go"

	"github.com/keepwatch/keepwatch/engine/event"
	"github.com/keepwatch/keepwatch/engine/vrrp"
)

// vrrpMetrics has the bulk families of bulkMetrics and instances whose
// series cover what the streaming writer formats: every state, all drop
// reasons and one it does not know, transitions with and without
// exemplars, VIPs of both families, both histograms with observations in
// and above their buckets, names that need escaping, and VRIDs whose text
// order differs from their numeric order.
func vrrpMetrics(t *testing.T, instances int) (*Metrics, *prometheus.Registry) {
	t.Helper()
	m, reg := bulkMetrics(t)
	m.traces = fakeTraces{}
	d := Declaration{VirtualServers: []VirtualServer{
		{Name: "192.0.2.10:80/tcp", RealServers: []RealServer{{Name: "198.51.100.1:80", Weight: 5, Up: true}}},
	}}
	names := []string{"VI_1", "VI_10", "VI_9", "vi_\"odd\\\nname", "a"}
	for i := range instances {
		name := fmt.Sprintf("VI_x%d", i)
		if i < len(names) {
			name = names[i]
		}
		in := Instance{Name: name, VRID: uint8(9 + i*7), Interface: []string{"eth0", "eth1", "bond0.20"}[i%3], Version: 2 + i%2,
			Priority: 100 + i, Interval: time.Duration(1+i%3) * 50 * time.Millisecond, Segment: fmt.Sprintf("192.0.2.0/24 \"%d\"", i%2),
			VIPs: []netip.Addr{netip.AddrFrom4([4]byte{192, 0, 2, byte(i)})}}
		if i%4 == 3 {
			in.Family = vrrp.IPv6
			in.VIPs = append(in.VIPs, netip.MustParseAddr(fmt.Sprintf("2001:db8::%x", i)))
		}
		d.Instances = append(d.Instances, in)
	}
	m.Declare(d)
	for i, in := range d.Instances {
		ev := func(k event.Kind, at time.Duration, f func(*event.Event)) {
			e := event.Event{Kind: k, Instance: in.Name, VRID: in.VRID, Interface: in.Interface, Family: in.Family, Time: t0.Add(at)}
			if f != nil {
				f(&e)
			}
			m.Emit(e)
		}
		ev(event.KindTransition, 0, func(e *event.Event) { e.From, e.To, e.Reason = vrrp.StateInit, vrrp.StateBackup, event.ReasonStartup })
		for k := range 3 + i%4 {
			ev(event.KindAdvertReceived, time.Duration(k)*time.Duration(1+i)*37*time.Millisecond, func(e *event.Event) { e.Priority, e.Interval = 150, in.Interval })
		}
		if i%3 == 0 {
			continue // stays BACKUP: no exemplar-less master transition
		}
		ev(event.KindTransition, 10*time.Second, func(e *event.Event) {
			e.From, e.To, e.Reason = vrrp.StateBackup, vrrp.StateMaster, event.ReasonPriorityZero
		})
		for k := range 2 + i {
			ev(event.KindAdvertSent, 10*time.Second, func(e *event.Event) { e.Duration = time.Duration(k*k) * 300 * time.Microsecond })
		}
		ev(event.KindAdvertSent, 11*time.Second, func(e *event.Event) { e.Priority, e.Duration = 0, 7*time.Second })
		for j, r := range event.DropReasons {
			for range j % (i + 2) {
				ev(event.KindAdvertDropped, 11*time.Second, func(e *event.Event) { e.Reason = r })
			}
		}
		ev(event.KindAdvertDropped, 11*time.Second, func(e *event.Event) { e.Reason = "brand_new" })
		ev(event.KindVIPAdded, 11*time.Second, func(e *event.Event) { e.Addr = in.VIPs[0] })
		ev(event.KindGratuitousSent, 11*time.Second, func(e *event.Event) { e.Addr = in.VIPs[0] })
		ev(event.KindPriorityChanged, 12*time.Second, func(e *event.Event) { e.BasePriority, e.Priority = in.Priority, 1 })
		ev(event.KindPeerMaster, 12*time.Second, func(e *event.Event) { e.Priority = 254 })
		if i%2 == 0 {
			ev(event.KindTransition, 13*time.Second, func(e *event.Event) { e.From, e.To, e.Reason = vrrp.StateMaster, vrrp.StateFault, "interface" })
		}
	}
	// A transition without an exemplar: no trace id for it.
	m.traces = nil
	m.Emit(event.Event{Kind: event.KindTransition, Instance: d.Instances[0].Name, From: vrrp.StateBackup, To: vrrp.StateInit, Reason: "shutdown", Time: t0.Add(time.Minute)})
	m.traces = fakeTraces{}
	return m, reg
}

// block is one family's lines in a body.
type block struct{ name, text string }

// familyBlocks splits a body into its families, in order; "# EOF" is its own.
func familyBlocks(body string) []block {
	var out []block
	from := 0
	for at := 0; at < len(body); {
		l := body[at:]
		if i := strings.IndexByte(l, '\n'); i >= 0 {
			l = l[:i+1]
		}
		name := ""
		switch {
		case l == "# EOF\n":
			name = "EOF"
		case strings.HasPrefix(l, "# HELP "):
			name = strings.Fields(l)[2]
		}
		if name != "" {
			if len(out) > 0 {
				out[len(out)-1].text = body[from:at]
			}
			out = append(out, block{name: name})
			from = at
		}
		at += len(l)
	}
	if len(out) > 0 {
		out[len(out)-1].text = body[from:]
	}
	return out
}

// bulkNames are the families Handler writes after the registry's.
func bulkNames(om bool) map[string]bool {
	out := map[string]bool{}
	for _, f := range append([]bulkFamily{famRSUp, famRSWeight, famIPVSUp}, append(famVS[:], famRS[:]...)...) {
		name := f.name
		if om && f.counter {
			name = strings.TrimSuffix(name, "_total")
		}
		out[name] = true
	}
	return out
}

// scrape serves one request.
func scrape(t *testing.T, h http.Handler, accept, encoding string) (string, string) {
	t.Helper()
	req := httptest.NewRequest(http.MethodGet, "/metrics", nil)
	req.Header.Set("Accept", accept)
	if encoding != "" {
		req.Header.Set("Accept-Encoding", encoding)
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, req)
	if w.Code != http.StatusOK {
		t.Fatalf("%q: status %d: %s", accept, w.Code, w.Body)
	}
	body := w.Body.Bytes()
	if w.Header().Get("Content-Encoding") == "gzip" {
		zr, err := gzip.NewReader(w.Body)
		if err != nil {
			t.Fatal(err)
		}
		if body, err = io.ReadAll(zr); err != nil {
			t.Fatal(err)
		}
	}
	return w.Header().Get("Content-Type"), string(body)
}

// sameExposition: the handler's body is promhttp's for the same state:
// the registry's families and the streamed VRRP ones in promhttp's order
// and bytes, then the bulk families (compared family by family, as
// promhttp sorts them in), then OpenMetrics' # EOF.
func sameExposition(t *testing.T, fast, slow http.Handler) {
	t.Helper()
	for _, accept := range []string{"text/plain;version=0.0.4", "application/openmetrics-text;version=1.0.0",
		"application/openmetrics-text;version=0.0.1", ""} {
		for _, enc := range []string{"", "gzip"} {
			ctFast, bodyFast := scrape(t, fast, accept, enc)
			ctSlow, bodySlow := scrape(t, slow, accept, enc)
			if ctFast != ctSlow {
				t.Errorf("%q: Content-Type %q, promhttp %q", accept, ctFast, ctSlow)
			}
			om := strings.HasPrefix(ctFast, "application/openmetrics-text")
			bulk := bulkNames(om)
			var head, tail []block
			bulkOf := map[string]string{}
			for _, b := range familyBlocks(bodyFast) {
				switch {
				case bulk[b.name]:
					bulkOf[b.name] = b.text
					if len(tail) > 0 {
						t.Errorf("%q: bulk family %s not after the registry's", accept, b.name)
					}
				default:
					if len(bulkOf) > 0 && b.name != "EOF" {
						tail = append(tail, b)
					} else {
						head = append(head, b)
					}
				}
			}
			var wantHead []block
			wantBulk := map[string]string{}
			for _, b := range familyBlocks(bodySlow) {
				if bulk[b.name] {
					wantBulk[b.name] = b.text
				} else {
					wantHead = append(wantHead, b)
				}
			}
			if d := cmp.Diff(wantHead, head, cmp.AllowUnexported(block{})); d != "" {
				t.Errorf("%q %q (-promhttp +handler):\n%s", accept, enc, d)
			}
			if d := cmp.Diff(wantBulk, bulkOf); d != "" {
				t.Errorf("%q %q bulk (-promhttp +handler):\n%s", accept, enc, d)
			}
			if len(tail) > 0 {
				t.Errorf("%q: families after the bulk ones: %v", accept, tail)
			}
			if om != strings.HasSuffix(bodyFast, "# EOF\n") {
				t.Errorf("%q: # EOF at the end: %v, want %v", accept, !om, om)
			}
		}
	}
}

// TestHandlerStreamsVRRP: the per-instance VRRP families Handler writes
// straight from the instances are byte for byte what promhttp prints from
// the registry's dto for the same state, in the same place, in the text
// format and OpenMetrics (exemplars), plain and gzipped; and they were
// streamed: the registry's Gather under Handler had none of them.
func TestHandlerStreamsVRRP(t *testing.T) {
	m, reg := vrrpMetrics(t, 9)
	var gathered []string
	g := prometheus.GathererFunc(func() ([]*dto.MetricFamily, error) {
		mfs, err := reg.Gather()
		for _, mf := range mfs {
			gathered = append(gathered, mf.GetName())
		}
		return mfs, err
	})
	fast := m.Handler(g)
	slow := promhttp.HandlerFor(m.Gatherer(reg), promhttp.HandlerOpts{EnableOpenMetrics: true})
	sameExposition(t, fast, slow)
	if slices.Contains(gathered, "keepwatch_vrrp_state") || !slices.Contains(gathered, "keepwatch_vrrp_global_adverts_dropped_total") {
		t.Errorf("families the registry gathered under Handler: %v", gathered)
	}
	_, body := scrape(t, fast, "application/openmetrics-text;version=1.0.0", "")
	for _, want := range []string{
		`keepwatch_vrrp_transitions_total{family="ipv4",from="backup",interface="eth1",reason="priority_zero",to="master",vrid="16",vrrp_instance="VI_10"} 1.0 # {trace_id="4bf92f3577b34da6a3ce929d0e0e4736"} 1.0 `,
		`keepwatch_vrrp_transitions_total{family="ipv4",from="backup",interface="eth0",reason="shutdown",to="init",vrid="9",vrrp_instance="VI_1"} 1.0` + "\n",
		`keepwatch_vrrp_advert_lateness_seconds_bucket{family="ipv4",interface="eth1",vrid="16",vrrp_instance="VI_10",le="+Inf"} 4` + "\n",
		`vrrp_instance="vi_\"odd\\\nname"`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("OpenMetrics body lacks %q", want)
		}
	}
	// The instance's 13 drop reasons (vrid_unknown, the 14th, is global)
	// and the one it did not know.
	n := 0
	for _, l := range strings.Split(body, "\n") {
		if strings.HasPrefix(l, "keepwatch_vrrp_adverts_dropped_total{") && strings.Contains(l, `vrrp_instance="VI_10"}`) {
			n++
		}
	}
	if n != 14 {
		t.Errorf("%d drop series for VI_10, want 14", n)
	}
}

// TestHandlerStreamsVRRPChunks: a body many times the chunk size (300
// instances) is still promhttp's.
func TestHandlerStreamsVRRPChunks(t *testing.T) {
	m, reg := vrrpMetrics(t, 300)
	sameExposition(t, m.Handler(reg), promhttp.HandlerFor(m.Gatherer(reg), promhttp.HandlerOpts{EnableOpenMetrics: true}))
}

// TestHandlerTicketTaken: a Gather of the registry that runs inside
// Handler's (here, before it, in g) takes the VRRP ticket; Handler then
// encodes the VRRP families its own Gather returned, once.
func TestHandlerTicketTaken(t *testing.T) {
	m, reg := vrrpMetrics(t, 4)
	var other []*dto.MetricFamily
	g := prometheus.GathererFunc(func() ([]*dto.MetricFamily, error) {
		other, _ = reg.Gather() // takes the ticket
		return reg.Gather()
	})
	sameExposition(t, m.Handler(g), promhttp.HandlerFor(m.Gatherer(reg), promhttp.HandlerOpts{EnableOpenMetrics: true}))
	for _, mf := range other {
		if mf.GetName() == "keepwatch_vrrp_state" {
			t.Error("the ticket was not taken by the first Gather")
		}
	}
	// And no ticket is left over for the next Gather.
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	if !slices.ContainsFunc(mfs, func(mf *dto.MetricFamily) bool { return mf.GetName() == "keepwatch_vrrp_state" }) {
		t.Error("a Gather after Handler's has no VRRP families")
	}
}

// TestHandlerWithoutVRRPCollector: a gatherer without the VRRP collector
// gets no VRRP families from Handler either.
func TestHandlerWithoutVRRPCollector(t *testing.T) {
	m, _ := vrrpMetrics(t, 2)
	other := prometheus.NewRegistry()
	other.MustRegister(prometheus.NewGauge(prometheus.GaugeOpts{Name: "other_gauge", Help: "A gauge."}))
	_, body := scrape(t, m.Handler(other), "text/plain;version=0.0.4", "")
	if strings.Contains(body, "keepwatch_vrrp_") || !strings.Contains(body, "other_gauge 0\n") {
		t.Errorf("body:\n%s", body)
	}
	if !strings.Contains(body, "keepwatch_real_server_up") {
		t.Error("no bulk families")
	}
}

// TestHandlerConcurrentScrapes: scrapes through Handler in every format at
// once, while Gatherer gathers and events arrive: each Handler body has
// the VRRP families once, each Gatherer result has them (the ticket never
// goes to Gatherer); run with -race.
func TestHandlerConcurrentScrapes(t *testing.T) {
	m, reg := vrrpMetrics(t, 5)
	h, g := m.Handler(reg), m.Gatherer(reg)
	done := make(chan struct{})
	errs := make(chan string, 100)
	var wg sync.WaitGroup
	for _, c := range []struct{ accept, enc string }{
		{"text/plain;version=0.0.4", ""}, {"application/openmetrics-text;version=1.0.0", "gzip"}, {"application/openmetrics-text;version=1.0.0", ""},
	} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 20 {
				req := httptest.NewRequest(http.MethodGet, "/metrics", nil)
				req.Header.Set("Accept", c.accept)
				req.Header.Set("Accept-Encoding", c.enc)
				w := httptest.NewRecorder()
				h.ServeHTTP(w, req)
				var body io.Reader = w.Body
				if c.enc == "gzip" {
					zr, err := gzip.NewReader(w.Body)
					if err != nil {
						errs <- err.Error()
						return
					}
					body = zr
				}
				b, err := io.ReadAll(body)
				if err != nil {
					errs <- err.Error()
					return
				}
				if n := strings.Count(string(b), "# HELP keepwatch_vrrp_state "); n != 1 {
					errs <- fmt.Sprintf("%s %s: %d keepwatch_vrrp_state families", c.accept, c.enc, n)
				}
			}
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		for range 20 {
			mfs, err := g.Gather()
			if err != nil || !slices.ContainsFunc(mfs, func(mf *dto.MetricFamily) bool { return mf.GetName() == "keepwatch_vrrp_state" }) {
				errs <- fmt.Sprintf("Gatherer: no keepwatch_vrrp_state (err %v)", err)
			}
		}
	}()
	go func() {
		defer close(done)
		for i := range 2000 {
			m.Emit(event.Event{Kind: event.KindAdvertSent, Instance: "VI_1", Duration: time.Duration(i) * time.Microsecond})
			m.Emit(event.Event{Kind: event.KindTransition, Instance: fmt.Sprintf("VI_new%d", i%50), From: vrrp.StateInit, To: vrrp.StateBackup})
		}
	}()
	wg.Wait()
	<-done
	close(errs)
	for e := range errs {
		t.Error(e)
	}
}
