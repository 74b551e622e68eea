package dashboards

import (
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/keepwatch/keepwatch/metrics/metricstest"
)

// family is one row of metrics/README.md's table.
type family = metricstest.Family

// targetLabels are the labels Prometheus adds at scrape time.
// cluster is optional (set by relabelling, or external labels in a
// federation): the fleet panels group and join by it, as the alert rules
// do, and it is simply empty where unset.
var targetLabels = []string{"job", "instance", "cluster"}

// readmeFamilies parses the families table of metrics/README.md, the
// reference of every metric keepwatch exports (a test in package metrics
// keeps it equal to what the agent gathers).
func readmeFamilies(t *testing.T) map[string]family {
	t.Helper()
	out, err := metricstest.ReadmeFamilies("../metrics/README.md")
	if err != nil {
		t.Fatal(err)
	}
	if len(out) < 40 {
		t.Fatalf("parsed %d families from metrics/README.md: has its table changed shape?", len(out))
	}
	return out
}

// selector is one metric selector in an expression.
type selector struct {
	name   string
	labels []string // label names its matchers use
	text   string   // the selector as written, matchers included
	ranged bool     // followed by a range [d]
}

// exprRefs is what a lexical pass finds in a PromQL expression.
type exprRefs struct {
	selectors []selector
	grouping  []string // label names in by/without/on/ignoring/group_x clauses
}

// promqlWords are identifiers that are not metric names: keywords and
// aggregation operators (the latter may be followed by a clause, not "(").
var promqlWords = map[string]bool{
	"by": true, "without": true, "on": true, "ignoring": true, "group_left": true, "group_right": true,
	"bool": true, "and": true, "or": true, "unless": true, "offset": true, "atan2": true,
	"sum": true, "min": true, "max": true, "avg": true, "count": true, "stddev": true, "stdvar": true,
	"topk": true, "bottomk": true, "quantile": true, "count_values": true, "group": true,
	"inf": true, "nan": true,
}

var groupingWords = map[string]bool{"by": true, "without": true, "on": true, "ignoring": true, "group_left": true, "group_right": true}

func isIdentStart(c byte) bool {
	return c == '_' || c == ':' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
}

func isIdent(c byte) bool { return isIdentStart(c) || (c >= '0' && c <= '9') }

// scanPromQL finds the metric selectors and grouping labels of expr. It is
// a lexer, not a parser (the parse is promtool's, in TestPromQLParses): it
// skips strings, durations and numbers, treats an identifier followed by
// "(" as a function, and reads label names out of {…} and clause (…).
func scanPromQL(expr string) (exprRefs, error) {
	var r exprRefs
	i := 0
	skipSpace := func() {
		for i < len(expr) && strings.ContainsRune(" \t\n\r", rune(expr[i])) {
			i++
		}
	}
	skipString := func() error {
		q := expr[i]
		i++
		for i < len(expr) && expr[i] != q {
			if expr[i] == '\\' && q != '`' {
				i++
			}
			i++
		}
		if i >= len(expr) {
			return fmt.Errorf("unterminated string")
		}
		i++
		return nil
	}
	ident := func() string {
		s := i
		for i < len(expr) && isIdent(expr[i]) {
			i++
		}
		return expr[s:i]
	}
	// labelList reads "(a, b)" after a grouping keyword.
	labelList := func() ([]string, error) {
		skipSpace()
		if i >= len(expr) || expr[i] != '(' {
			return nil, nil // "bool", "group_left" without labels
		}
		end := strings.IndexByte(expr[i:], ')')
		if end < 0 {
			return nil, fmt.Errorf("unclosed label list at %d", i)
		}
		var ls []string
		for _, l := range strings.Split(expr[i+1:i+end], ",") {
			if l = strings.TrimSpace(l); l != "" {
				ls = append(ls, l)
			}
		}
		i += end + 1
		return ls, nil
	}
	// matchers reads "{a="x", b=~"y"}" and returns the label names.
	matchers := func() ([]string, error) {
		i++ // {
		var ls []string
		for {
			skipSpace()
			if i >= len(expr) {
				return nil, fmt.Errorf("unclosed {")
			}
			switch c := expr[i]; {
			case c == '}':
				i++
				return ls, nil
			case c == ',':
				i++
			case c == '"' || c == '\'' || c == '`':
				if err := skipString(); err != nil {
					return nil, err
				}
			case isIdentStart(c):
				ls = append(ls, ident())
			case strings.IndexByte("=!~", c) >= 0:
				i++
			default:
				return nil, fmt.Errorf("unexpected %q in matchers", c)
			}
		}
	}
	for i < len(expr) {
		c := expr[i]
		switch {
		case c == '"' || c == '\'' || c == '`':
			if err := skipString(); err != nil {
				return r, err
			}
		case c == '[':
			end := strings.IndexByte(expr[i:], ']')
			if end < 0 {
				return r, fmt.Errorf("unclosed [ at %d", i)
			}
			i += end + 1
		case c >= '0' && c <= '9' || c == '.':
			for i < len(expr) && (isIdent(expr[i]) || expr[i] == '.' || ((expr[i] == '-' || expr[i] == '+') && (expr[i-1] == 'e' || expr[i-1] == 'E'))) {
				i++
			}
		case c == '{':
			return r, fmt.Errorf("selector without a metric name at %d", i)
		case isIdentStart(c):
			start := i
			word := ident()
			skipSpace()
			switch {
			case groupingWords[word]:
				ls, err := labelList()
				if err != nil {
					return r, err
				}
				r.grouping = append(r.grouping, ls...)
			case promqlWords[strings.ToLower(word)]:
			case i < len(expr) && expr[i] == '(':
				// a function call
			default:
				sel := selector{name: word}
				if i < len(expr) && expr[i] == '{' {
					ls, err := matchers()
					if err != nil {
						return r, err
					}
					sel.labels = ls
				}
				sel.text = strings.TrimSpace(expr[start:i])
				skipSpace()
				sel.ranged = i < len(expr) && expr[i] == '['
				r.selectors = append(r.selectors, sel)
			}
		default:
			i++
		}
	}
	return r, nil
}

// labelValues matches a query variable's label_values(selector, label).
var labelValues = regexp.MustCompile(`^label_values\((.*),\s*([a-zA-Z_][a-zA-Z0-9_]*)\)$`)

// exprs walks a rendered dashboard and returns every PromQL expression in
// it (panel targets, including panels inside rows, and annotations) and
// every query variable's query, each with where it came from.
func exprs(t *testing.T, raw []byte) (targets, variables map[string]string) {
	t.Helper()
	var db struct {
		Panels []struct {
			panelJSON
			Panels []panelJSON `json:"panels"`
		} `json:"panels"`
		Templating struct {
			List []struct {
				Name  string `json:"name"`
				Type  string `json:"type"`
				Query any    `json:"query"`
			} `json:"list"`
		} `json:"templating"`
		Annotations struct {
			List []struct {
				Name string `json:"name"`
				Expr string `json:"expr"`
			} `json:"list"`
		} `json:"annotations"`
	}
	if err := json.Unmarshal(raw, &db); err != nil {
		t.Fatal(err)
	}
	targets, variables = map[string]string{}, map[string]string{}
	add := func(p panelJSON) {
		for _, tg := range p.Targets {
			targets[fmt.Sprintf("panel %q target %s", p.Title, tg.RefID)] = tg.Expr
		}
	}
	for _, p := range db.Panels {
		add(p.panelJSON)
		for _, c := range p.Panels {
			add(c)
		}
	}
	for _, a := range db.Annotations.List {
		if a.Expr != "" {
			targets[fmt.Sprintf("annotation %q", a.Name)] = a.Expr
		}
	}
	for _, v := range db.Templating.List {
		if v.Type != "query" {
			continue
		}
		q, ok := v.Query.(string)
		if !ok {
			t.Fatalf("variable %s: query %v is not a string", v.Name, v.Query)
		}
		variables["variable "+v.Name] = q
	}
	return targets, variables
}

type panelJSON struct {
	Title   string `json:"title"`
	Type    string `json:"type"`
	Targets []struct {
		RefID      string `json:"refId"`
		Expr       string `json:"expr"`
		Datasource struct {
			UID string `json:"uid"`
		} `json:"datasource"`
	} `json:"targets"`
}

// checkSelectors reports metric names not in the README, label names a
// family does not have, and grouping labels no selected family has.
func checkSelectors(fams map[string]family, refs exprRefs, needHost bool) []string {
	var errs []string
	known := slices.Clone(targetLabels)
	for _, s := range refs.selectors {
		base, fam, ok := s.name, family{}, false
		if fam, ok = fams[base]; !ok {
			for _, suffix := range []string{"_bucket", "_sum", "_count"} {
				if b, found := strings.CutSuffix(s.name, suffix); found {
					if f, isFam := fams[b]; isFam && f.Type == "histogram" {
						base, fam, ok = b, f, true
						if suffix == "_bucket" {
							fam.Labels = append(slices.Clone(fam.Labels), "le")
						}
					}
				}
			}
		}
		if !ok {
			errs = append(errs, fmt.Sprintf("metric %s is not in metrics/README.md", s.name))
			continue
		}
		allowed := append(slices.Clone(fam.Labels), targetLabels...)
		known = append(known, allowed...)
		for _, l := range s.labels {
			if !slices.Contains(allowed, l) {
				errs = append(errs, fmt.Sprintf("metric %s has no label %s (README: %v)", base, l, fam.Labels))
			}
		}
		// grafana/dashboard-linter's target-counter-agg: a counter's raw
		// value means nothing; rate or increase it.
		if needHost && (fam.Type == "counter" || fam.Type == "histogram") && !s.ranged {
			errs = append(errs, fmt.Sprintf("%s %s is not under rate() or increase()", fam.Type, s.name))
		}
		if needHost && !(slices.Contains(s.labels, "job") && slices.Contains(s.labels, "instance")) {
			errs = append(errs, fmt.Sprintf("metric %s is not filtered by the job and host variables", s.name))
		}
	}
	for _, l := range refs.grouping {
		if !slices.Contains(known, l) {
			errs = append(errs, fmt.Sprintf("grouping label %s is on none of the selected metrics", l))
		}
	}
	return errs
}

// TestMetricNames checks every expression in every dashboard against
// metrics/README.md: each metric exists (histograms through _bucket, _sum,
// _count), each matcher's label belongs to its family, each grouping label
// to one of the expression's families, and each panel selector carries the
// job and host variables.
func TestMetricNames(t *testing.T) {
	fams := readmeFamilies(t)
	for _, d := range All() {
		t.Run(d.File, func(t *testing.T) {
			raw, err := d.Render()
			if err != nil {
				t.Fatal(err)
			}
			targets, variables := exprs(t, raw)
			if len(targets) < 10 {
				t.Fatalf("only %d targets found: is the walk missing panels?", len(targets))
			}
			for where, e := range targets {
				refs, err := scanPromQL(e)
				if err != nil {
					t.Errorf("%s: %v\n%s", where, err, e)
					continue
				}
				if len(refs.selectors) == 0 {
					t.Errorf("%s: no metric in %s", where, e)
				}
				for _, msg := range checkSelectors(fams, refs, true) {
					t.Errorf("%s: %s\n%s", where, msg, e)
				}
			}
			for where, q := range variables {
				m := labelValues.FindStringSubmatch(q)
				if m == nil {
					t.Errorf("%s: %q is not label_values(selector, label)", where, q)
					continue
				}
				refs, err := scanPromQL(m[1])
				if err != nil || len(refs.selectors) != 1 {
					t.Errorf("%s: selector %q: %v", where, m[1], err)
					continue
				}
				refs.grouping = []string{m[2]} // the label whose values it lists
				for _, msg := range checkSelectors(fams, refs, false) {
					t.Errorf("%s: %s", where, msg)
				}
			}
		})
	}
}

// TestScanPromQL makes sure the lexer finds what it must, so that
// TestMetricNames cannot pass by finding nothing.
func TestScanPromQL(t *testing.T) {
	fams := readmeFamilies(t)
	for _, tc := range []struct {
		expr    string
		wantErr string // substring of one reported problem; "" for none
	}{
		{`sum by (instance) (rate(keepwatch_vrrp_adverts_sent_total{job=~"$job", instance=~"$instance"}[$__rate_interval]))`, ""},
		{`histogram_quantile(0.99, sum by (le) (rate(keepwatch_vrrp_advert_gap_seconds_bucket{job=~"a", instance=~"b"}[5m])))`, ""},
		{`keepwatch_vrrp_adverts_sent{job=~"a", instance=~"b"}`, "keepwatch_vrrp_adverts_sent is not in metrics/README.md"},
		{`keepwatch_vrrp_priority_bucket{job=~"a", instance=~"b"}`, "keepwatch_vrrp_priority_bucket is not in"},
		{`keepwatch_vrrp_adverts_sent_total{state="master", job=~"a", instance=~"b"}`, "has no label state"},
		{`sum by (script) (keepwatch_vrrp_priority{job=~"a", instance=~"b"})`, "grouping label script"},
		{`keepwatch_vrrp_priority{job=~"a"}`, "not filtered by the job and host"},
		{`sum(keepwatch_vrrp_adverts_sent_total{job=~"a", instance=~"b"})`, "counter keepwatch_vrrp_adverts_sent_total is not under rate"},
		{`keepwatch_check_probe_duration_seconds_count{job=~"a", instance=~"b"}`, "histogram keepwatch_check_probe_duration_seconds_count is not under"},
		{`increase(keepwatch_vrrp_adverts_sent_total{job=~"a", instance=~"b"} [5m])`, ""},
		{`up{job=~"a", instance=~"b"} * 1e-3 or vector(0)`, "metric up is not in"},
		{`keepwatch_vrrp_state{state="a}b", job=~"x", instance=~"y"} * 1`, ""},
	} {
		refs, err := scanPromQL(tc.expr)
		if err != nil {
			t.Errorf("%s: %v", tc.expr, err)
			continue
		}
		errs := checkSelectors(fams, refs, true)
		switch {
		case tc.wantErr == "" && len(errs) > 0:
			t.Errorf("%s: unexpected %q", tc.expr, errs)
		case tc.wantErr != "" && !slices.ContainsFunc(errs, func(e string) bool { return strings.Contains(e, tc.wantErr) }):
			t.Errorf("%s: got %q, want one containing %q", tc.expr, errs, tc.wantErr)
		}
	}
}
