package metrics

import (
	"bytes"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
)

// The per-instance VRRP families are most of a VRRP agent's exposition (71
// series per instance). Gathered through the registry they became ~18,000
// dto.Metric objects and their values at 250 instances, built whole before
// expfmt encoded them: 6 MB of garbage per scrape, and the agent's RSS
// went from ~31 to ~46 MiB after three scrapes (deploy/bench.d/
// FOOTPRINT.md). Handler instead writes them from the instances' atomics
// straight to the response, family by family, in the registry's order and
// with expfmt's bytes: gauges, counters and histograms are formatted here
// (as bulk.go does for real servers), counters with exemplars in
// OpenMetrics through expfmt, one series at a time, from one reused
// dto.Metric. TestHandlerStreamsVRRP holds the bytes to promhttp's.

// vrrpOrder is the per-instance families sorted by name, the order the
// registry gathers them in.
var vrrpOrder = func() []int {
	c := newVRRPCollector()
	out := make([]int, nVRRPFams)
	for i := range out {
		out[i] = i
	}
	slices.SortFunc(out, func(a, b int) int { return strings.Compare(c.names[a], c.names[b]) })
	return out
}()

// streamOut is the response being written: a buffer handed to w each time
// it passes flushAt bytes, so a scrape holds one chunk of the exposition,
// not all of it. It is an io.Writer (and the string/byte writer expfmt
// looks for) for expfmt's encoders.
type streamOut struct {
	buf     []byte
	w       io.Writer
	err     error
	spilled bool // some of the body has gone to w
}

const flushAt = 32 << 10

func (o *streamOut) reset(w io.Writer) {
	o.buf, o.w, o.err, o.spilled = o.buf[:0], w, nil, false
}

// spill writes the buffer to w once it is over flushAt.
func (o *streamOut) spill() {
	if len(o.buf) >= flushAt {
		o.flush()
	}
}

// flush writes the buffer to w.
func (o *streamOut) flush() {
	if len(o.buf) == 0 {
		return
	}
	if o.err == nil {
		_, o.err = o.w.Write(o.buf)
		o.spilled = true
	}
	o.buf = o.buf[:0]
}

func (o *streamOut) Write(p []byte) (int, error) {
	o.buf = append(o.buf, p...)
	o.spill()
	return len(p), o.err
}

func (o *streamOut) WriteString(s string) (int, error) {
	o.buf = append(o.buf, s...)
	o.spill()
	return len(s), o.err
}

func (o *streamOut) WriteByte(c byte) error {
	o.buf = append(o.buf, c)
	return o.err
}

func (o *streamOut) WriteRune(r rune) (int, error) {
	n := len(o.buf)
	o.buf = utf8.AppendRune(o.buf, r)
	return len(o.buf) - n, o.err
}

// vrrpScratch is what writing the per-instance families reuses from one
// scrape to the next.
type vrrpScratch struct {
	ins     []*instance
	entries []series
	tmp     bytes.Buffer // one series through expfmt
	mf      dto.MetricFamily
	m       dto.Metric
	metrics [1]*dto.Metric
	counter dto.Counter
	// A series' merged label pairs (series.pairs), and two for the sort.
	lab, la, lb []*dto.LabelPair
}

var typeCounter = dto.MetricType_COUNTER

// instancesFor lists the instances of one scrape.
func (c *vrrpCollector) instancesFor(sc *vrrpScratch) []*instance {
	sc.ins = sc.ins[:0]
	if c.m == nil {
		return sc.ins
	}
	for _, in := range c.m.instances.snapshot() {
		sc.ins = append(sc.ins, in)
	}
	return sc.ins
}

// writeFamily writes family f of every instance in ins to o, as the text
// format or OpenMetrics; nothing if it has no series, as the registry.
func (c *vrrpCollector) writeFamily(o *streamOut, sc *vrrpScratch, f int, ins []*instance, om bool) {
	sc.entries = sc.entries[:0]
	for _, in := range ins {
		sc.entries = in.appendSeries(c, sc.entries, f)
	}
	if len(sc.entries) == 0 {
		return
	}
	// The registry's order within a family: by label values, the labels
	// being in name order (client_golang internal.NormalizeMetricFamilies).
	slices.SortFunc(sc.entries, func(a, b series) int {
		return compareLabels(a.pairs(&sc.la), b.pairs(&sc.lb))
	})
	fam := &vrrpFams[f]
	typ := "gauge"
	switch fam.kind {
	case seriesCounter:
		typ = "counter"
	case seriesHistogram:
		typ = "histogram"
	}
	o.buf = familyHeader(o.buf, c.names[f], fam.help, typ, om)
	for i := range sc.entries {
		s := &sc.entries[i]
		switch {
		case s.kind == seriesHistogram:
			o.buf = appendHistogram(o.buf, c.names[f], s.labels, s.hist, om)
		case om && s.ex != nil:
			c.writeExemplar(o, sc, f, s)
		default:
			o.buf = append(o.buf, c.names[f]...)
			o.buf = appendLabelPairs(o.buf, s.pairs(&sc.lab))
			o.buf = append(o.buf, ' ')
			o.buf = appendFloat(o.buf, s.v, om)
		}
		// Cleared, so the reused scratch keeps no removed instance alive.
		sc.entries[i] = series{}
		o.spill()
	}
}

// writeExemplar writes one counter with its exemplar as expfmt's
// OpenMetrics encoder does, without the family's comment lines.
func (c *vrrpCollector) writeExemplar(o *streamOut, sc *vrrpScratch, f int, s *series) {
	m := &sc.m
	sc.counter.Value, sc.counter.Exemplar = &s.v, s.ex
	m.Label, m.Counter = s.pairs(&sc.lab), &sc.counter
	sc.metrics[0] = m
	sc.mf.Name, sc.mf.Help, sc.mf.Type, sc.mf.Metric = &c.names[f], nil, &typeCounter, sc.metrics[:]
	sc.tmp.Reset()
	if _, err := expfmt.MetricFamilyToOpenMetrics(&sc.tmp, &sc.mf); err != nil && o.err == nil {
		o.err = err
	}
	// Drop the TYPE line expfmt writes for every family.
	b := sc.tmp.Bytes()
	for len(b) > 0 && b[0] == '#' {
		i := bytes.IndexByte(b, '\n')
		if i < 0 {
			b = nil
			break
		}
		b = b[i+1:]
	}
	o.buf = append(o.buf, b...)
	sc.counter.Value, sc.counter.Exemplar, m.Label = nil, nil, nil
}

// appendHistogram appends a classic histogram's lines as expfmt writes
// them: the buckets (cumulative, le last among the labels), +Inf, _sum and
// _count. The count is the sum of the buckets read, so the +Inf bucket
// always equals it even while observations race the scrape. OpenMetrics
// writes counts as integers, the text format as floats.
func appendHistogram(buf []byte, name string, labels []*dto.LabelPair, h *atomicHistogram, om bool) []byte {
	count := func(buf []byte, n uint64) []byte {
		if om {
			return append(strconv.AppendUint(buf, n, 10), '\n')
		}
		return appendFloat(buf, float64(n), false)
	}
	bucket := func(buf []byte, le float64, n uint64) []byte {
		buf = append(buf, name...)
		buf = append(buf, "_bucket"...)
		if len(labels) == 0 {
			buf = append(buf, `{le="`...)
		} else {
			buf = appendLabelPairs(buf, labels)
			buf = append(buf[:len(buf)-1], `,le="`...) // reopen the braces
		}
		buf = appendFloat(buf, le, om)
		buf = append(buf[:len(buf)-1], `"} `...) // appendFloat's newline
		return count(buf, n)
	}
	var n uint64
	for i, le := range h.bounds.s {
		n += h.counts[i].Load()
		buf = bucket(buf, le, n)
	}
	n += h.counts[len(h.bounds.s)].Load()
	buf = bucket(buf, math.Inf(1), n)
	buf = append(buf, name...)
	buf = append(buf, "_sum"...)
	buf = appendLabelPairs(buf, labels)
	buf = append(buf, ' ')
	buf = appendFloat(buf, h.sumSeconds(), om)
	buf = append(buf, name...)
	buf = append(buf, "_count"...)
	buf = appendLabelPairs(buf, labels)
	buf = append(buf, ' ')
	return count(buf, n)
}

// compareLabels orders two label sets with the same names by their values.
func compareLabels(a, b []*dto.LabelPair) int {
	if len(a) != len(b) {
		return len(a) - len(b)
	}
	for i := range a {
		if r := strings.Compare(a[i].GetValue(), b[i].GetValue()); r != 0 {
			return r
		}
	}
	return 0
}

// appendLabelPairs appends {name="value",...} as both text formats write it.
func appendLabelPairs(buf []byte, pairs []*dto.LabelPair) []byte {
	if len(pairs) == 0 {
		return buf
	}
	for i, p := range pairs {
		if i == 0 {
			buf = append(buf, '{')
		} else {
			buf = append(buf, ',')
		}
		buf = append(buf, p.GetName()...)
		buf = append(buf, `="`...)
		buf = appendEscaped(buf, p.GetValue())
		buf = append(buf, '"')
	}
	return append(buf, '}')
}

// appendEscaped escapes a label value as the text formats want.
func appendEscaped(buf []byte, v string) []byte {
	for i := 0; i < len(v); i++ {
		switch c := v[i]; c {
		case '\\':
			buf = append(buf, `\\`...)
		case '"':
			buf = append(buf, `\"`...)
		case '\n':
			buf = append(buf, `\n`...)
		default:
			buf = append(buf, c)
		}
	}
	return buf
}
