package alerts

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/keepwatch/keepwatch/metrics/metricstest"
)

const (
	rulesFile        = "keepwatch.rules.yml"
	alertmanagerFile = "alertmanager.yml"
	runbookFile      = "runbook.md"
	metricsREADME    = "../metrics/README.md"
	// runbookBase is where every alert's runbook_url points, followed by
	// "#" and the alert's name in lower case (GitHub's heading anchor).
	runbookBase = "https://github.com/keepwatch/keepwatch/blob/main/alerts/runbook.md"
)

// requireTool returns the path of a tool the test needs. Without it the
// test fails, except outside CI under -short, where it skips.
func requireTool(t *testing.T, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err == nil {
		return p
	}
	if os.Getenv("CI") == "" && testing.Short() {
		t.Skipf("needs %s in PATH (deploy/test-deps.sh installs it)", name)
	}
	t.Fatalf("needs %s in PATH (deploy/test-deps.sh installs it): %v", name, err)
	return ""
}

// run runs a tool and fails the test, with its output, if it exits non-zero.
func run(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(requireTool(t, name), args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

func testFiles(t *testing.T) []string {
	t.Helper()
	files, err := filepath.Glob("tests/*.yml")
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatal("no promtool test files in tests/")
	}
	return files
}

func TestPromtoolCheckRules(t *testing.T) {
	out := run(t, "promtool", "check", "rules", rulesFile)
	if !strings.Contains(out, "SUCCESS") {
		t.Errorf("promtool check rules:\n%s", out)
	}
}

func TestPromtoolTestRules(t *testing.T) {
	out := run(t, "promtool", append([]string{"test", "rules"}, testFiles(t)...)...)
	if strings.Contains(out, "FAILED") {
		t.Errorf("promtool test rules:\n%s", out)
	}
}

func TestAmtoolCheckConfig(t *testing.T) {
	out := run(t, "amtool", "check-config", alertmanagerFile)
	if !strings.Contains(out, "SUCCESS") {
		t.Errorf("amtool check-config:\n%s", out)
	}
}

// TestAlertmanagerRoutes asks amtool where alerts go: critical ones page,
// the rest become tickets.
func TestAlertmanagerRoutes(t *testing.T) {
	for _, tc := range []struct {
		labels []string
		want   string
	}{
		{[]string{"alertname=KeepwatchVIPMoved", "severity=critical", "vrid=51"}, "page"},
		{[]string{"alertname=KeepwatchQuorumLost", "severity=critical"}, "page"},
		{[]string{"alertname=KeepwatchInstanceFault", "severity=warning", "vrid=51"}, "tickets"},
		{[]string{"alertname=KeepwatchAgentDown", "severity=warning"}, "tickets"},
		{[]string{"alertname=Other", "severity=info"}, "tickets"},
	} {
		args := append([]string{"config", "routes", "test", "--config.file=" + alertmanagerFile}, tc.labels...)
		got := strings.TrimSpace(run(t, "amtool", args...))
		// amtool prints warnings on stderr, the receivers on the last line.
		if i := strings.LastIndexByte(got, '\n'); i >= 0 {
			got = got[i+1:]
		}
		if got != tc.want {
			t.Errorf("%v routes to %q, want %q", tc.labels, got, tc.want)
		}
	}
}

// TestAlertmanagerGrouping: notifications group by alert name and the
// virtual router's identity (cluster, segment, vrid, family), never by
// VRID alone, which merges unrelated clusters that reuse a VRID.
func TestAlertmanagerGrouping(t *testing.T) {
	b, err := os.ReadFile(alertmanagerFile)
	if err != nil {
		t.Fatal(err)
	}
	var c struct {
		Route struct {
			GroupBy []string `yaml:"group_by"`
			Routes  []struct {
				GroupBy []string `yaml:"group_by"`
			} `yaml:"routes"`
		} `yaml:"route"`
	}
	if err := yaml.Unmarshal(b, &c); err != nil {
		t.Fatalf("%s: %v", alertmanagerFile, err)
	}
	want := []string{"alertname", "cluster", "segment", "vrid", "family"}
	if !slices.Equal(c.Route.GroupBy, want) {
		t.Errorf("route group_by %v, want %v", c.Route.GroupBy, want)
	}
	for i, r := range c.Route.Routes {
		if r.GroupBy != nil && !slices.Equal(r.GroupBy, want) {
			t.Errorf("route %d: group_by %v, want %v (or inherited)", i, r.GroupBy, want)
		}
	}
}

// ruleFile is the part of a Prometheus rule file the tests read.
type ruleFile struct {
	Groups []struct {
		Name  string `yaml:"name"`
		Rules []rule `yaml:"rules"`
	} `yaml:"groups"`
}

type rule struct {
	Record      string            `yaml:"record"`
	Alert       string            `yaml:"alert"`
	Expr        string            `yaml:"expr"`
	For         string            `yaml:"for"`
	Labels      map[string]string `yaml:"labels"`
	Annotations map[string]string `yaml:"annotations"`
}

func readRules(t *testing.T) ruleFile {
	t.Helper()
	b, err := os.ReadFile(rulesFile)
	if err != nil {
		t.Fatal(err)
	}
	var rf ruleFile
	if err := yaml.Unmarshal(b, &rf); err != nil {
		t.Fatalf("%s: %v", rulesFile, err)
	}
	return rf
}

func alerts(rf ruleFile) []rule {
	var out []rule
	for _, g := range rf.Groups {
		for _, r := range g.Rules {
			if r.Alert != "" {
				out = append(out, r)
			}
		}
	}
	return out
}

// The alerts DESIGN.md §7 asks for, at least.
var requiredAlerts = []string{
	"KeepwatchVIPMoved", "KeepwatchVIPSplitBrain", "KeepwatchMultipleMasters", "KeepwatchNoMaster",
	"KeepwatchInstanceFault", "KeepwatchPriorityDegraded", "KeepwatchAdvertsLate",
	"KeepwatchAdvertMismatch", "KeepwatchAuthFailures", "KeepwatchRealServerDown",
	"KeepwatchNoHealthyRealServers", "KeepwatchQuorumLost", "KeepwatchReloadFailed",
	"KeepwatchAgentDown", "KeepwatchConfigDiagnostics",
}

var camelCase = regexp.MustCompile(`^Keepwatch[A-Z][A-Za-z0-9]*$`)

// TestConventions checks the monitoring-mixin rules (as mixtool lint
// enforces them) and that each alert has a runbook section.
func TestConventions(t *testing.T) {
	rf := readRules(t)
	runbook, err := os.ReadFile(runbookFile)
	if err != nil {
		t.Fatal(err)
	}
	var headings []string
	sc := bufio.NewScanner(strings.NewReader(string(runbook)))
	for sc.Scan() {
		if h, ok := strings.CutPrefix(sc.Text(), "## "); ok {
			headings = append(headings, strings.TrimSpace(h))
		}
	}
	for _, g := range rf.Groups {
		if len(g.Name) > 40 {
			t.Errorf("group %s: name longer than 40", g.Name)
		}
		if len(g.Rules) > 20 {
			t.Errorf("group %s: %d rules, want at most 20", g.Name, len(g.Rules))
		}
	}
	var names []string
	for _, a := range alerts(rf) {
		names = append(names, a.Alert)
		if !camelCase.MatchString(a.Alert) || len(a.Alert) > 40 {
			t.Errorf("%s: want a CamelCase name prefixed Keepwatch (at most 40 characters)", a.Alert)
		}
		if s := a.Labels["severity"]; s != "critical" && s != "warning" && s != "info" {
			t.Errorf("%s: severity %q, want critical, warning or info", a.Alert, s)
		}
		sum := a.Annotations["summary"]
		if sum == "" || strings.Contains(sum, "{{") || !strings.HasSuffix(sum, ".") || strings.ToUpper(sum[:1]) != sum[:1] {
			t.Errorf("%s: summary %q: want a static sentence, capitalised, ending with a period", a.Alert, sum)
		}
		if d := a.Annotations["description"]; !strings.Contains(d, "{{") {
			t.Errorf("%s: description %q is not templated", a.Alert, d)
		}
		if got, want := a.Annotations["runbook_url"], runbookBase+"#"+strings.ToLower(a.Alert); got != want {
			t.Errorf("%s: runbook_url %q, want %q", a.Alert, got, want)
		}
		if !slices.Contains(headings, a.Alert) {
			t.Errorf("%s: no section \"## %s\" in %s", a.Alert, a.Alert, runbookFile)
		}
	}
	for _, want := range requiredAlerts {
		if !slices.Contains(names, want) {
			t.Errorf("no alert %s", want)
		}
	}
	for _, h := range headings {
		if camelCase.MatchString(h) && !slices.Contains(names, h) {
			t.Errorf("%s: runbook section for an alert that does not exist", h)
		}
	}
}

// testFile is the part of a promtool test file the tests read.
type testFile struct {
	RuleFiles []string `yaml:"rule_files"`
	Tests     []struct {
		InputSeries []struct {
			Series string `yaml:"series"`
		} `yaml:"input_series"`
		AlertRuleTest []struct {
			Alertname string `yaml:"alertname"`
			ExpAlerts []struct {
				ExpLabels      map[string]string `yaml:"exp_labels"`
				ExpAnnotations map[string]string `yaml:"exp_annotations"`
			} `yaml:"exp_alerts"`
		} `yaml:"alert_rule_test"`
	} `yaml:"tests"`
}

func readTests(t *testing.T) map[string]testFile {
	t.Helper()
	out := map[string]testFile{}
	for _, f := range testFiles(t) {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var tf testFile
		if err := yaml.Unmarshal(b, &tf); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		out[f] = tf
	}
	return out
}

// TestEveryAlertTested checks that promtool tests each alert both firing,
// with every annotation asserted, and staying silent.
func TestEveryAlertTested(t *testing.T) {
	fires, silent := map[string]bool{}, map[string]bool{}
	for f, tf := range readTests(t) {
		if !slices.Equal(tf.RuleFiles, []string{"../" + rulesFile}) {
			t.Errorf("%s: rule_files %v, want [../%s]", f, tf.RuleFiles, rulesFile)
		}
		for _, tc := range tf.Tests {
			for _, at := range tc.AlertRuleTest {
				if len(at.ExpAlerts) == 0 {
					silent[at.Alertname] = true
				}
				for _, ea := range at.ExpAlerts {
					if ea.ExpLabels["severity"] == "" || ea.ExpAnnotations["summary"] == "" ||
						ea.ExpAnnotations["description"] == "" || ea.ExpAnnotations["runbook_url"] == "" {
						t.Errorf("%s: %s: expected alert without its severity, summary, description and runbook_url", f, at.Alertname)
						continue
					}
					fires[at.Alertname] = true
				}
			}
		}
	}
	for _, a := range alerts(readRules(t)) {
		if !fires[a.Alert] {
			t.Errorf("%s: no promtool case where it fires", a.Alert)
		}
		if !silent[a.Alert] {
			t.Errorf("%s: no promtool case where it stays silent", a.Alert)
		}
	}
}

// metricName matches PromQL identifiers; recording rules' names contain a
// colon (level:metric:operations) and are not exported by the agent.
var metricName = regexp.MustCompile(`[a-zA-Z_:][a-zA-Z0-9_:]*`)

// exported returns the metric families metrics/README.md lists.
func exported(t *testing.T) map[string]bool {
	t.Helper()
	fams, err := metricstest.ReadmeFamilies(metricsREADME)
	if err != nil {
		t.Fatal(err)
	}
	if len(fams) < 20 {
		t.Fatalf("%s: only %d families in its table", metricsREADME, len(fams))
	}
	out := map[string]bool{}
	for name := range fams {
		out[name] = true
	}
	return out
}

// family is the metric family a sample's name belongs to (histogram series
// carry a suffix).
func family(name string, known map[string]bool) string {
	for _, suf := range []string{"_bucket", "_sum", "_count"} {
		if base, ok := strings.CutSuffix(name, suf); ok && known[base] {
			return base
		}
	}
	return name
}

// TestMetricsExist checks that every keepwatch metric the rules and their
// tests use is one metrics/README.md lists (and so, by metrics' own test,
// one the agent exports): a renamed metric must not leave an alert that
// can never fire.
func TestMetricsExist(t *testing.T) {
	known := exported(t)
	used := map[string]string{}
	rf := readRules(t)
	var recorded []string
	for _, g := range rf.Groups {
		for _, r := range g.Rules {
			if r.Record != "" {
				recorded = append(recorded, r.Record)
			}
			for _, id := range metricName.FindAllString(r.Expr, -1) {
				if strings.HasPrefix(id, "keepwatch_") {
					used[id] = rulesFile
				}
			}
		}
	}
	if len(used) < 10 {
		t.Fatalf("found only %d keepwatch metrics in the rules: %v", len(used), used)
	}
	for f, tf := range readTests(t) {
		for _, tc := range tf.Tests {
			for _, s := range tc.InputSeries {
				name, _, _ := strings.Cut(s.Series, "{")
				if strings.HasPrefix(name, "keepwatch_") {
					used[name] = f
				} else if name != "up" {
					t.Errorf("%s: input series %q is neither a keepwatch metric nor up", f, name)
				}
			}
		}
	}
	for name, where := range used {
		if !known[family(name, known)] {
			t.Errorf("%s: %s is not in %s", where, name, metricsREADME)
		}
	}
	// Recording rules' names stay in the level:metric:operations form, so
	// they can never collide with an exported family.
	for _, r := range recorded {
		if strings.Count(r, ":") != 2 {
			t.Errorf("recording rule %s: want level:metric:operations", r)
		}
	}
}
