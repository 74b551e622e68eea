package alerts

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-jsonnet"
	"gopkg.in/yaml.v3"
)

var update = flag.Bool("update", false, "rewrite keepwatch.rules.yml and alertmanager.yml from the mixin")

// rendered is the mixin rendered with one _config.
type rendered struct {
	RuleFile     map[string]any         `json:"ruleFile"`
	Rules        struct{ Groups []any } `json:"rules"`
	Alerts       struct{ Groups []any } `json:"alerts"`
	Dashboards   map[string]any         `json:"dashboards"`
	Alertmanager map[string]any         `json:"alertmanager"`
}

// renderMixin evaluates mixin/mixin.libsonnet with go-jsonnet, with
// override (a jsonnet object, such as `{ _config+:: {...} }`) mixed in.
func renderMixin(t *testing.T, override string) rendered {
	t.Helper()
	vm := jsonnet.MakeVM()
	vm.Importer(&jsonnet.FileImporter{JPaths: []string{"mixin"}})
	snippet := `local m = (import 'mixin.libsonnet') + ` + override + `;
{ ruleFile: m.ruleFile, rules: m.prometheusRules, alerts: m.prometheusAlerts, dashboards: m.grafanaDashboards, alertmanager: m.alertmanagerConfig }`
	// The snippet's imports resolve beside it, in mixin/.
	out, err := vm.EvaluateAnonymousSnippet(filepath.Join("mixin", "render.jsonnet"), snippet)
	if err != nil {
		t.Fatalf("rendering the mixin: %v", err)
	}
	var r rendered
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatal(err)
	}
	return r
}

const rulesHeader = `# keepwatch's alert and recording rules (Prometheus rule file), rendered
# from the monitoring mixin alerts/mixin with its default _config: edit the
# mixin, then run  go test ./alerts -run TestMixin -update  (the comments
# there say why each rule is as it is; runbook.md says what to do).
`

const alertmanagerHeader = `# Alertmanager routing for keepwatch's alerts, rendered from the monitoring
# mixin alerts/mixin (alertmanagerConfig) with its default _config: edit the
# mixin, then run  go test ./alerts -run TestMixin -update.
# Replace the webhook URLs with your paging and ticketing endpoints.
`

// keyOrder is the order keys are written in (others follow,
// alphabetically): as Prometheus and Alertmanager document them.
var keyOrder = []string{
	"name", "record", "alert", "expr", "for", "labels", "annotations", "summary", "description", "runbook_url",
	"route", "receiver", "group_by", "group_wait", "group_interval", "repeat_interval", "matchers", "routes",
	"inhibit_rules", "source_matchers", "target_matchers", "equal", "receivers", "webhook_configs", "url",
}

// node converts a JSON value to a YAML node, keys in keyOrder, lists of
// scalars in flow style.
func node(v any) *yaml.Node {
	switch x := v.(type) {
	case map[string]any:
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		rank := func(k string) int {
			if i := slices.Index(keyOrder, k); i >= 0 {
				return i
			}
			return len(keyOrder)
		}
		slices.SortFunc(keys, func(a, b string) int {
			if ra, rb := rank(a), rank(b); ra != rb {
				return ra - rb
			}
			return strings.Compare(a, b)
		})
		n := &yaml.Node{Kind: yaml.MappingNode}
		for _, k := range keys {
			n.Content = append(n.Content, &yaml.Node{Kind: yaml.ScalarNode, Value: k}, node(x[k]))
		}
		return n
	case []any:
		n := &yaml.Node{Kind: yaml.SequenceNode, Style: yaml.FlowStyle}
		for _, e := range x {
			c := node(e)
			if c.Kind != yaml.ScalarNode {
				n.Style = 0
			}
			n.Content = append(n.Content, c)
		}
		return n
	default:
		var n yaml.Node
		if err := n.Encode(x); err != nil {
			panic(err)
		}
		return &n
	}
}

func toYAML(t *testing.T, header string, v any) []byte {
	t.Helper()
	var buf bytes.Buffer
	buf.WriteString(header)
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(node(v)); err != nil {
		t.Fatal(err)
	}
	if err := enc.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// ruleFileOf is the rule file of a rendering (the mixin's ruleFile), after
// checking that it holds every rule of prometheusRules and prometheusAlerts.
func ruleFileOf(t *testing.T, r rendered) []byte {
	t.Helper()
	count := func(groups []any) int {
		n := 0
		for _, g := range groups {
			n += len(g.(map[string]any)["rules"].([]any))
		}
		return n
	}
	if got, want := count(r.RuleFile["groups"].([]any)), count(r.Rules.Groups)+count(r.Alerts.Groups); got != want || count(r.Rules.Groups) == 0 {
		t.Errorf("ruleFile has %d rules, want %d (recording and alert rules)", got, want)
	}
	return toYAML(t, rulesHeader, r.RuleFile)
}

// TestMixin: with its default _config the mixin is what is committed:
// keepwatch.rules.yml and alertmanager.yml byte for byte (-update rewrites
// them; deploy/packaging's TestPrometheusRule -update then follows), and
// the dashboards equal dashboards/*.json.
func TestMixin(t *testing.T) {
	r := renderMixin(t, `{}`)
	for _, f := range []struct {
		path string
		want []byte
	}{
		{rulesFile, ruleFileOf(t, r)},
		{alertmanagerFile, toYAML(t, alertmanagerHeader, r.Alertmanager)},
	} {
		if *update {
			if err := os.WriteFile(f.path, f.want, 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		got, err := os.ReadFile(f.path)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, f.want) {
			t.Errorf("%s differs from the mixin's rendering; run go test ./alerts -run TestMixin -update", f.path)
		}
	}
	for name, file := range map[string]string{
		"keepwatch-fleet.json": "fleet.json", "keepwatch-instance.json": "instance.json", "keepwatch-loadbalancer.json": "loadbalancer.json",
	} {
		b, err := os.ReadFile(filepath.Join("..", "dashboards", file))
		if err != nil {
			t.Fatal(err)
		}
		var want any
		if err := json.Unmarshal(b, &want); err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(r.Dashboards[name], want) {
			t.Errorf("grafanaDashboards[%s] differs from dashboards/%s", name, file)
		}
	}
	if len(r.Dashboards) != 3 {
		t.Errorf("%d dashboards, want 3", len(r.Dashboards))
	}
}

// TestMixinCustomConfig renders the mixin with another selector, cluster
// label and runbook base, and holds that rendering to promtool: check
// rules, and the promtool tests of tests/ rewritten for that config.
func TestMixinCustomConfig(t *testing.T) {
	const (
		sel     = `job="vrrp-agents"`
		cluster = "k8s_cluster"
		runbook = "https://runbooks.example/keepwatch"
	)
	r := renderMixin(t, `{ _config+:: { selector: '`+sel+`', clusterLabel: '`+cluster+`', runbookBase: '`+runbook+`' } }`)
	rules := ruleFileOf(t, r)
	for _, bad := range []string{`job="keepwatch"`, "on (cluster,", "by (cluster,", "$labels.cluster ", runbookBase} {
		if bytes.Contains(rules, []byte(bad)) {
			t.Errorf("custom rendering still contains %q", bad)
		}
	}
	for name, d := range r.Dashboards {
		b, _ := json.Marshal(d)
		if bytes.Contains(b, []byte("on (cluster,")) || bytes.Contains(b, []byte("by (cluster,")) {
			t.Errorf("dashboard %s still joins or groups by cluster", name)
		}
	}
	if gb := r.Alertmanager["route"].(map[string]any)["group_by"]; !slices.Contains(gb.([]any), any(cluster)) {
		t.Errorf("alertmanager group_by %v lacks %s", gb, cluster)
	}

	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, rulesFile), rules, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(dir, "tests"), 0o755); err != nil {
		t.Fatal(err)
	}
	rewrite := strings.NewReplacer(
		`job="keepwatch"`, sel,
		`job: keepwatch`, `job: vrrp-agents`,
		`cluster="`, cluster+`="`,
		runbookBase, runbook,
	)
	var tests []string
	for _, f := range testFiles(t) {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		out := filepath.Join(dir, f)
		if err := os.WriteFile(out, []byte(rewrite.Replace(string(b))), 0o644); err != nil {
			t.Fatal(err)
		}
		tests = append(tests, out)
	}
	if out := run(t, "promtool", "check", "rules", filepath.Join(dir, rulesFile)); !strings.Contains(out, "SUCCESS") {
		t.Errorf("promtool check rules (custom _config):\n%s", out)
	}
	if out := run(t, "promtool", append([]string{"test", "rules"}, tests...)...); strings.Contains(out, "FAILED") {
		t.Errorf("promtool test rules (custom _config):\n%s", out)
	}
	// The rewritten tests must still test something of the custom config.
	if !strings.Contains(rewrite.Replace(`cluster="east"`), cluster) {
		t.Fatal("rewrite does not rename the cluster label")
	}
}
