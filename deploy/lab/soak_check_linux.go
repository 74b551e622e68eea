package lab

import (
	"bufio"
	"context"
	"fmt"
	"maps"
	"net/netip"
	"os"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
)

// The tolerances of the resource check, first third against last third of
// an agent's life. Each compares the median of the last third (robust to a
// scrape that lands on a GARP burst or a reload) with the maximum of the
// first third (which holds start-up and the first faults, so it is the
// level a healthy agent works at):
//   - goroutines: +5. Short-lived ones (a GARP burst, a scrape's handler,
//     a reload's work) come and go; a leak of one per fault adds one per
//     fault, dozens over a minute, and shows.
//   - open files: +2. The scraper's keep-alive connection and a reload's
//     socket may be open at a sample; a leaked socket per fault adds dozens.
//   - RSS: ×1.25. Go's heap target is twice the live heap (GOGC=100) and the
//     runtime returns memory lazily, so RSS wanders within that band
//     without any leak; a leak grows without bound and leaves it.
const (
	soakGoroutineSlack = 5
	soakFDSlack        = 2
	soakRSSFactor      = 1.25
)

// scrape reads every running keepwatch node's /metrics once a second: its
// counters must never go backwards within one process, and its goroutines,
// open files and RSS are recorded for checkResources.
func (s *soak) scrape(ctx context.Context) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		for _, n := range s.c.Nodes {
			if n.Impl != Keepwatch {
				continue
			}
			s.mu.Lock()
			var l *lifetime
			for _, x := range s.lifes {
				if x.node == n.Index && x.end == 0 {
					l = x
				}
			}
			stopped := s.stopped[n.Index]
			s.mu.Unlock()
			if l == nil || stopped || n.Pid() != l.pid {
				continue
			}
			fctx, cancel := context.WithTimeout(ctx, time.Second)
			at := s.now()
			b, err := n.Fetch(fctx, "/metrics")
			cancel()
			if err != nil || n.Pid() != l.pid {
				continue
			}
			fds, rss := procResources(l.pid)
			s.mu.Lock()
			if l.end == 0 {
				s.checkMonotonic(n, l, at, string(b))
				gor, _ := SumMetric(string(b), "go_goroutines")
				l.res = append(l.res, resSample{at: at, goroutines: gor, fds: fds, rss: rss})
			}
			s.mu.Unlock()
		}
	}
}

// checkMonotonic compares every counter series (and histogram and summary
// _count and _bucket) with its last value in this process. Called with s.mu.
func (s *soak) checkMonotonic(n *Node, l *lifetime, at time.Duration, text string) {
	l.scrapes++
	kinds := map[string]string{}
	sc := bufio.NewScanner(strings.NewReader(text))
	sc.Buffer(make([]byte, 0, 64*1024), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "# TYPE ") {
			f := strings.Fields(line)
			if len(f) == 4 {
				kinds[f[2]] = f[3]
			}
			continue
		}
		if line == "" || line[0] == '#' {
			continue
		}
		sp := strings.LastIndexByte(line, ' ')
		if sp < 0 {
			continue
		}
		key, val := line[:sp], line[sp+1:]
		name := key
		if i := strings.IndexByte(key, '{'); i >= 0 {
			name = key[:i]
		}
		monotonic := kinds[name] == "counter"
		for _, suf := range []string{"_count", "_bucket"} {
			if base, ok := strings.CutSuffix(name, suf); ok && (kinds[base] == "histogram" || kinds[base] == "summary") {
				monotonic = true
			}
		}
		if !monotonic {
			continue
		}
		v, err := strconv.ParseFloat(val, 64)
		if err != nil {
			continue
		}
		l.series++
		if prev, ok := l.counters[key]; ok && v < prev {
			s.counterV = append(s.counterV, SoakViolation{Check: "counter went backwards", From: at, To: at,
				Detail: fmt.Sprintf("node %d (pid %d): %s from %v to %v", n.Index, l.pid, key, prev, v)})
		}
		l.counters[key] = v
	}
}

// procResources is a process's open descriptors and resident set (bytes).
func procResources(pid int) (fds, rss float64) {
	if ents, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid)); err == nil {
		fds = float64(len(ents))
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return fds, 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			f := strings.Fields(rest)
			if len(f) > 0 {
				kb, _ := strconv.ParseFloat(f[0], 64)
				rss = kb * 1024
			}
		}
	}
	return fds, rss
}

// window is a span of soak time.
type window struct{ from, to time.Duration }

func (w window) has(t time.Duration) bool { return t >= w.from && t <= w.to }

// checkHolders evaluates the VIP invariants on a 10 ms grid over the run,
// up to until:
//   - at most one holder: two or more nodes hold a VIP only within a fault
//     or one Master_Down_Interval (plus slack) after it ends (RFC 9568
//     §6.4.2: that long a backup waits before it declares the master dead);
//   - some holder: a configured VIP is on some node whenever a node has
//     been free of faults for that long, except within that long of a
//     fault starting or ending (a master that fails, resigns or comes back
//     hands over in that time);
//   - removed VIPs go: a VIP removed from the config that long ago is on no
//     node, unless that node is in a fault (a crashed node's VIPs stay until
//     it restarts).
func (s *soak) checkHolders(rep *SoakReport, until time.Duration) {
	s.mu.Lock()
	samples := slices.Clone(s.samples)
	faults := slices.Clone(s.faults)
	epochs := slices.Clone(s.epochs)
	s.mu.Unlock()
	g := s.grace
	var anyFault, edges []window
	perNode := map[int][]window{}
	for _, f := range faults {
		end := f.End
		if end < 0 {
			end = until
		}
		anyFault = append(anyFault, window{f.Start, end + g})
		edges = append(edges, window{f.Start, f.Start + g}, window{end, end + g})
		for _, n := range f.Nodes {
			perNode[n] = append(perNode[n], window{f.Start, end + g})
		}
	}
	in := func(ws []window, t time.Duration) bool {
		for _, w := range ws {
			if w.has(t) {
				return true
			}
		}
		return false
	}
	epochAt := func(t time.Duration) []netip.Addr {
		var cur []netip.Addr
		for _, e := range epochs {
			if e.at <= t {
				cur = e.vips
			}
		}
		return cur
	}
	// configured reports whether v was in the config throughout [t-g, t]
	// (1), out of it throughout (-1), or changed in between (0).
	configured := func(v netip.Addr, t time.Duration) int {
		in, out := false, false
		mark := func(vs []netip.Addr) {
			if slices.Contains(vs, v) {
				in = true
			} else {
				out = true
			}
		}
		mark(epochAt(t - g))
		for _, e := range epochs {
			if e.at > t-g && e.at <= t {
				mark(e.vips)
			}
		}
		switch {
		case in && !out:
			return 1
		case out && !in:
			return -1
		}
		return 0
	}
	healthy := func(t time.Duration) bool {
		for _, n := range s.c.Nodes {
			ok := true
			for _, w := range perNode[n.Index] {
				// A fault on n that overlaps [t-g, t]: its window already
				// extends g past the fault's end.
				if w.from <= t && w.to >= t {
					ok = false
					break
				}
			}
			if ok {
				return true
			}
		}
		return false
	}

	type key struct {
		check string
		vip   netip.Addr
	}
	open := map[key]*SoakViolation{}
	var out []SoakViolation
	flush := func(k key, t time.Duration) {
		if v := open[k]; v != nil {
			v.To = t
			out = append(out, *v)
			delete(open, k)
		}
	}
	var strictA, checkedB, checkedC, pointsA int
	uni := s.universe()
	idx := 0
	const step = 10 * time.Millisecond
	for t := time.Duration(0); t <= until; t += step {
		for idx+1 < len(samples) && samples[idx+1].at <= t {
			idx++
		}
		if len(samples) == 0 || samples[idx].at > t {
			continue
		}
		h := samples[idx].holders
		excusedA := in(anyFault, t)
		edge := in(edges, t)
		isHealthy := healthy(t)
		for _, v := range uni {
			hs := h[v]
			viol := map[string]string{}
			pointsA++
			if !excusedA {
				strictA++
				if len(hs) > 1 {
					viol["at most one holder"] = "held by " + nodesString(hs)
				}
			}
			switch configured(v, t) {
			case 1:
				if isHealthy && !edge {
					checkedB++
					if len(hs) == 0 {
						viol["some holder"] = "held by none while a node was healthy"
					}
				}
			case -1:
				checkedC++
				for _, n := range hs {
					if !in(perNode[n], t) {
						viol["removed VIP gone"] = "removed from the config, still on " + nodesString(hs)
						break
					}
				}
			}
			for _, c := range []string{"at most one holder", "some holder", "removed VIP gone"} {
				k := key{c, v}
				if d, bad := viol[c]; bad {
					if open[k] == nil {
						open[k] = &SoakViolation{Check: c, VIP: v, From: t, Detail: d}
					}
				} else {
					flush(k, t)
				}
			}
		}
	}
	for k := range open {
		flush(k, until)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].From < out[j].From })
	for i := range out {
		out[i].Timeline = s.excerpt(samples, faults, out[i].From-2*time.Second, out[i].To+500*time.Millisecond)
	}
	rep.Violations = append(rep.Violations, out...)
	// Which faults had an effect the network saw: the holders of VIP4 (or
	// VIP6) changed between the fault's start and one grace after its end.
	// A fault kind that never moves a VIP is one the agents do not see.
	moved := map[string][2]int{}
	for _, f := range faults {
		if f.Kind == "start" {
			continue
		}
		before, changed := (map[netip.Addr][]int)(nil), false
		for _, smp := range samples {
			if smp.at <= f.Start {
				before = smp.holders
				continue
			}
			if smp.at > f.End+g {
				break
			}
			for _, v := range []netip.Addr{VIP4.Addr(), VIP6.Addr()} {
				changed = changed || !slices.Equal(smp.holders[v], before[v])
			}
		}
		m := moved[f.Kind]
		m[1]++
		if changed {
			m[0]++
		}
		moved[f.Kind] = m
	}
	var mv []string
	for _, k := range faultKinds {
		if m := moved[k]; m[1] > 0 {
			mv = append(mv, fmt.Sprintf("%s %d/%d", k, m[0], m[1]))
		}
	}
	rep.Checks = append(rep.Checks, "faults that moved a VIP (holders changed before one grace after the end): "+strings.Join(mv, ", "))
	rep.Checks = append(rep.Checks,
		fmt.Sprintf("VIP holders sampled every 10 ms (%d changes), evaluated every 10 ms for %d VIPs", len(samples), len(uni)),
		fmt.Sprintf("  at most one holder: %d of %d VIP-instants outside fault windows (%s)", strictA, pointsA, (time.Duration(strictA/len(uni))*step).Round(100*time.Millisecond)),
		fmt.Sprintf("  some holder while a node is healthy: %d VIP-instants (%s)", checkedB, (time.Duration(checkedB)*step).Round(100*time.Millisecond)),
		fmt.Sprintf("  removed VIPs gone: %d VIP-instants (%s)", checkedC, (time.Duration(checkedC)*step).Round(100*time.Millisecond)))
}

// excerpt formats the holder changes and fault events between from and to.
func (s *soak) excerpt(samples []holderSample, faults []SoakFault, from, to time.Duration) string {
	type line struct {
		at   time.Duration
		text string
	}
	var lines []line
	uni := s.universe()
	for _, smp := range samples {
		if smp.at < from || smp.at > to {
			continue
		}
		var parts []string
		for _, v := range uni {
			if hs := smp.holders[v]; len(hs) > 0 {
				parts = append(parts, v.String()+"="+nodesString(hs))
			}
		}
		lines = append(lines, line{smp.at, "holders " + strings.Join(parts, " ")})
	}
	for _, f := range faults {
		if f.Start >= from && f.Start <= to {
			lines = append(lines, line{f.Start, fmt.Sprintf("fault %s %s begins: %s", f.Kind, nodesString(f.Nodes), f.Detail)})
		}
		if f.End >= from && f.End <= to {
			lines = append(lines, line{f.End, fmt.Sprintf("fault %s %s ends", f.Kind, nodesString(f.Nodes))})
		}
	}
	sort.SliceStable(lines, func(i, j int) bool { return lines[i].at < lines[j].at })
	var b strings.Builder
	for _, l := range lines {
		fmt.Fprintf(&b, "    %8s  %s\n", fmtDur(l.at), l.text)
	}
	return b.String()
}

func (s *soak) checkCounters(rep *SoakReport) {
	s.mu.Lock()
	defer s.mu.Unlock()
	scrapes, series := 0, 0
	for _, l := range s.lifes {
		scrapes += l.scrapes
		series += l.series
	}
	rep.Violations = append(rep.Violations, s.counterV...)
	rep.Checks = append(rep.Checks, fmt.Sprintf("counters never go backwards: %d scrapes of %d agent processes, %d counter samples compared",
		scrapes, len(s.lifes), series))
}

// checkResources compares, for every keepwatch process that lived the
// whole run (the leak-watch node's at least, never killed), its
// goroutines, open files and RSS between the first and last thirds of the
// run. A process restarted mid-run is left out: some of what an agent
// opens waits for an event (the announcer's sockets for its first time as
// master), so the first third of a short life is not its working level.
func (s *soak) checkResources(rep *SoakReport, end time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	startEnd := time.Duration(0)
	if len(s.faults) > 0 && s.faults[0].Kind == "start" {
		startEnd = s.faults[0].End
	}
	for _, l := range s.lifes {
		if s.c.Node(l.node).Impl != Keepwatch || l.start > startEnd || l.end < end {
			continue
		}
		third := (l.end - l.start) / 3
		var first, last []resSample
		for _, r := range l.res {
			switch {
			case r.at < l.start+third:
				first = append(first, r)
			case r.at >= l.end-third:
				last = append(last, r)
			}
		}
		if len(first) < 3 || len(last) < 3 {
			rep.Checks = append(rep.Checks, fmt.Sprintf("resources n%d pid %d: too few samples (%d, %d)", l.node, l.pid, len(first), len(last)))
			continue
		}
		type metric struct {
			name      string
			get       func(resSample) float64
			limit     func(float64) float64
			fmtValue  func(float64) string
			tolerance string
		}
		num := func(v float64) string { return strconv.FormatFloat(v, 'f', 0, 64) }
		mib := func(v float64) string { return strconv.FormatFloat(v/(1<<20), 'f', 1, 64) + " MiB" }
		ms := []metric{
			{"goroutines", func(r resSample) float64 { return r.goroutines }, func(b float64) float64 { return b + soakGoroutineSlack }, num, "+5"},
			{"open fds", func(r resSample) float64 { return r.fds }, func(b float64) float64 { return b + soakFDSlack }, num, "+2"},
			{"RSS", func(r resSample) float64 { return r.rss }, func(b float64) float64 { return b * soakRSSFactor }, mib, "×1.25"},
		}
		var parts []string
		for _, m := range ms {
			var a, b []float64
			for _, r := range first {
				a = append(a, m.get(r))
			}
			for _, r := range last {
				b = append(b, m.get(r))
			}
			base, med := slices.Max(a), median(b)
			parts = append(parts, fmt.Sprintf("%s %s→%s (limit %s)", m.name, m.fmtValue(base), m.fmtValue(med), m.tolerance))
			if med > m.limit(base) {
				rep.Violations = append(rep.Violations, SoakViolation{Check: "resources grew", From: l.end - third, To: l.end,
					Detail: fmt.Sprintf("node %d pid %d: %s: first third max %s, last third median %s, limit %s",
						l.node, l.pid, m.name, m.fmtValue(base), m.fmtValue(med), m.fmtValue(m.limit(base)))})
			}
		}
		rep.Checks = append(rep.Checks, fmt.Sprintf("resources n%d pid %d over %s (%d+%d samples): %s",
			l.node, l.pid, (l.end-l.start).Round(time.Second), len(first), len(last), strings.Join(parts, ", ")))
	}
}

func median(v []float64) float64 {
	v = slices.Clone(v)
	slices.Sort(v)
	return v[len(v)/2]
}

// compareAdverts reads each keepwatch node's adverts_sent_total per VRID
// and counts the adverts its current process put on the wire (the capture
// on its link, from its own addresses, since the process started). The
// counter is read at one instant between two clock readings; the adverts
// captured before the first and up to the second bracket it, and at 0.1 s
// per instance there is rarely one in between.
func (s *soak) compareAdverts(ctx context.Context, caps []*soakCapture, rep *SoakReport) {
	type reading struct {
		n        *Node
		l        *lifetime
		t1, t2   time.Time
		counters map[int]float64
	}
	var rs []reading
	for _, n := range s.c.Nodes {
		if n.Impl != Keepwatch {
			continue
		}
		s.mu.Lock()
		var l *lifetime
		for _, x := range s.lifes {
			if x.node == n.Index && x.end == 0 {
				l = x
			}
		}
		s.mu.Unlock()
		if l == nil {
			continue
		}
		fctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		t1 := time.Now()
		b, err := n.Fetch(fctx, "/metrics")
		t2 := time.Now()
		cancel()
		if err != nil {
			rep.Violations = append(rep.Violations, SoakViolation{Check: "adverts sent = captured", Detail: fmt.Sprintf("node %d: %v", n.Index, err)})
			continue
		}
		r := reading{n: n, l: l, t1: t1, t2: t2, counters: map[int]float64{}}
		for _, in := range n.instances() {
			v, _ := SumMetric(string(b), "keepwatch_vrrp_adverts_sent_total", "vrid", strconv.Itoa(in.VRID))
			r.counters[in.VRID] = v
		}
		rs = append(rs, r)
	}
	time.Sleep(100 * time.Millisecond) // what the kernel holds reaches the files
	for _, cp := range caps {
		_ = cp.cap.Stop()
	}
	for _, r := range rs {
		var path string
		for _, cp := range caps {
			if cp.node == r.n {
				path = cp.path
			}
		}
		start := s.t0.Add(r.l.start)
		lo, hi, err := countAdverts(path, r.n, start, r.t1.Add(-5*time.Millisecond), r.t2.Add(5*time.Millisecond))
		if err != nil {
			rep.Violations = append(rep.Violations, SoakViolation{Check: "adverts sent = captured", Detail: fmt.Sprintf("node %d: %v", r.n.Index, err)})
			continue
		}
		s.mu.Lock()
		cut := maps.Clone(s.cutAdverts[r.l.pid])
		s.mu.Unlock()
		var parts []string
		for _, vrid := range slices.Sorted(maps.Keys(r.counters)) {
			c := r.counters[vrid]
			eq := "="
			if float64(lo[vrid]) != c || float64(hi[vrid]) != c {
				eq = "≈"
			}
			part := fmt.Sprintf("vrid %d counter %v %s wire %d", vrid, c, eq, lo[vrid])
			if cut[vrid] > 0 {
				part += fmt.Sprintf(" (+ up to %v counted while its link was cut)", cut[vrid])
			}
			parts = append(parts, part)
			// Every advert on the wire was counted; every one counted is on
			// the wire, but for those sent into a cut link.
			if c < float64(lo[vrid]) || c > float64(hi[vrid])+cut[vrid] {
				rep.Violations = append(rep.Violations, SoakViolation{Check: "adverts sent = captured",
					Detail: fmt.Sprintf("node %d pid %d vrid %d: adverts_sent_total %v, captured %d before the read and %d after it, %v counted while its link was cut",
						r.n.Index, r.l.pid, vrid, c, lo[vrid], hi[vrid], cut[vrid])})
			}
		}
		rep.Checks = append(rep.Checks, fmt.Sprintf("adverts sent = captured, n%d pid %d since %s: %s", r.n.Index, r.l.pid, fmtDur(r.l.start), strings.Join(parts, "; ")))
	}
}

// countAdverts counts, per VRID, the VRRP adverts in a capture sent by n
// (its IPv4 address or its link-local IPv6 one) after start: those before
// t1 (lo) and those up to t2 (hi).
func countAdverts(path string, n *Node, start, t1, t2 time.Time) (lo, hi map[int]int, err error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, err
	}
	defer f.Close()
	r, err := newPcapReader(f)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", path, err)
	}
	lo, hi = map[int]int{}, map[int]int{}
	for {
		ts, data, err := r.next()
		if err != nil {
			break // io.EOF, or a truncated tail
		}
		if ts.Before(start) || ts.After(t2) {
			continue
		}
		src, proto, payload, ok := ipPacket(data)
		if !ok || proto != 112 || (src != n.IPv4.Addr() && src != n.LinkLocal) {
			continue
		}
		// RFC 9568 §5.2: version and type in the first byte (type 1 is an
		// advertisement), the VRID in the second.
		if len(payload) < 2 || payload[0]&0x0f != 1 {
			continue
		}
		vrid := int(payload[1])
		hi[vrid]++
		if ts.Before(t1) {
			lo[vrid]++
		}
	}
	return lo, hi, nil
}

// summary is the report's printed form: the faults by kind, the checks
// made and every violation with its timeline.
func (s *soak) summary(rep *SoakReport, end time.Duration) string {
	var b strings.Builder
	byKind := map[string]int{}
	for _, f := range rep.Faults {
		if f.Kind != "start" {
			byKind[f.Kind]++
		}
	}
	var kinds []string
	total := 0
	for _, k := range faultKinds {
		kinds = append(kinds, fmt.Sprintf("%s %d", k, byKind[k]))
		total += byKind[k]
	}
	fmt.Fprintf(&b, "=== soak summary: %s run, seed %d, grace %s (Master_Down_Interval %s + slack %s)\n", end.Round(time.Second), s.o.Seed, s.grace, s.mdi, s.o.Slack)
	fmt.Fprintf(&b, "faults injected: %d (%s)\n", total, strings.Join(kinds, ", "))
	fmt.Fprintf(&b, "checks:\n")
	for _, c := range rep.Checks {
		fmt.Fprintf(&b, "  %s\n", c)
	}
	fmt.Fprintf(&b, "violations: %d\n", len(rep.Violations))
	for _, v := range rep.Violations {
		fmt.Fprintf(&b, "  %s\n", v)
		if v.Timeline != "" {
			b.WriteString(v.Timeline)
		}
	}
	return b.String()
}
