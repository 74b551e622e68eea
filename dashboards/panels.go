package dashboards

// The v1 dashboard schema is deprecated in the SDK for dashboardv2, which
// only Grafana 12+ with the v2 API imports; v1 JSON imports everywhere.
//lint:file-ignore SA1019 v1 dashboards on purpose (see above)

import (
	"maps"
	"slices"
	"strings"

	"github.com/grafana/grafana-foundation-sdk/go/cog"
	"github.com/grafana/grafana-foundation-sdk/go/cog/variants"
	"github.com/grafana/grafana-foundation-sdk/go/common"
	"github.com/grafana/grafana-foundation-sdk/go/dashboard"
	"github.com/grafana/grafana-foundation-sdk/go/heatmap"
	"github.com/grafana/grafana-foundation-sdk/go/prometheus"
	"github.com/grafana/grafana-foundation-sdk/go/stat"
	"github.com/grafana/grafana-foundation-sdk/go/statetimeline"
	"github.com/grafana/grafana-foundation-sdk/go/timeseries"
)

// datasource is the reference every panel and variable uses: the
// dashboard's own datasource variable, so one JSON serves any Prometheus.
var datasource = common.DataSourceRef{Type: cog.ToPtr("prometheus"), Uid: cog.ToPtr("${datasource}")}

// query is one PromQL target. Expressions are written with $sel where the
// dashboard's selector goes (scope.expr replaces it).
type query struct {
	expr    string
	legend  string
	instant bool // a table or stat of the current value
	format  prometheus.PromQueryFormat
}

// ts is a range query drawn as a time series.
func ts(expr, legend string) query { return query{expr: expr, legend: legend} }

// now is an instant query rendered as a table (one row per series).
func now(expr string) query {
	return query{expr: expr, instant: true, format: prometheus.PromQueryFormatTable}
}

// buckets is a histogram's per-bucket increase, for a heat map.
func buckets(expr string) query {
	return query{expr: expr, legend: "{{le}}", format: prometheus.PromQueryFormatHeatmap}
}

// scope is what one dashboard filters on: its label selector, spliced into
// every expression in place of $sel.
type scope struct{ sel string }

// expr returns e with the dashboard's selector in place of $sel.
func (s scope) expr(e string) string { return strings.ReplaceAll(e, "$sel", s.sel) }

// targets builds the panel targets with refIds A, B, C...
func (s scope) targets(qs ...query) []cog.Builder[variants.Dataquery] {
	out := make([]cog.Builder[variants.Dataquery], 0, len(qs))
	for i, q := range qs {
		b := prometheus.NewDataqueryBuilder().
			Datasource(datasource).
			RefId(string(rune('A' + i))).
			Expr(s.expr(q.expr))
		if q.legend != "" {
			b.LegendFormat(q.legend)
		}
		if q.instant {
			b.Instant()
		} else {
			b.Range()
		}
		if q.format != "" {
			b.Format(q.format)
		}
		out = append(out, b)
	}
	return out
}

// Variables. instance is Prometheus's target label: it picks hosts here;
// keepwatch itself never uses it (the VRRP instance is vrrp_instance).

func datasourceVar() *dashboard.DatasourceVariableBuilder {
	return dashboard.NewDatasourceVariableBuilder("datasource").
		Label("Data source").
		Type("prometheus")
}

// labelVar is a multi-value query variable over label_values(selector, label)
// whose "All" is .+ rather than a list of every value (what
// grafana/dashboard-linter's template rules ask of job and instance).
func labelVar(name, label, selector string) *dashboard.QueryVariableBuilder {
	q := "label_values(" + selector + ", " + name + ")"
	return dashboard.NewQueryVariableBuilder(name).
		Label(label).
		Datasource(datasource).
		Query(dashboard.StringOrMap{String: cog.ToPtr(q)}).
		Definition(q).
		Refresh(dashboard.VariableRefreshOnTimeRangeChanged).
		Sort(dashboard.VariableSortAlphabeticalAsc).
		Multi(true).
		IncludeAll(true).
		AllValue(".+").
		Current(dashboard.VariableOption{
			Selected: cog.ToPtr(true),
			Text:     dashboard.StringOrArrayOfString{ArrayOfString: []string{"All"}},
			Value:    dashboard.StringOrArrayOfString{ArrayOfString: []string{"$__all"}},
		})
}

// jobVar and hostVar are on every dashboard: which scrape jobs, which hosts.
func jobVar() *dashboard.QueryVariableBuilder {
	return labelVar("job", "Job", "keepwatch_build_info")
}

func hostVar() *dashboard.QueryVariableBuilder {
	return labelVar("instance", "Instance", `keepwatch_build_info{job=~"$job"}`).
		Description("Hosts: Prometheus's target label, not a keepwatch label (the VRRP instance is vrrp_instance).")
}

// hostSel is the selector the job and host variables make.
const hostSel = `job=~"$job", instance=~"$instance"`

// links joins the three dashboards by tag, keeping the time range and the
// variables they share.
func links() []cog.Builder[dashboard.DashboardLink] {
	return []cog.Builder[dashboard.DashboardLink]{
		dashboard.NewDashboardLinkBuilder("keepwatch").
			Type(dashboard.DashboardLinkTypeDashboards).
			Icon("external link").
			Tooltip("The other keepwatch dashboards").
			Tags([]string{tag}).
			AsDropdown(true).
			IncludeVars(true).
			KeepTime(true),
	}
}

const tag = "keepwatch"

// newDashboard is the frame every keepwatch dashboard shares.
func newDashboard(uid, title, description string) *dashboard.DashboardBuilder {
	return dashboard.NewDashboardBuilder(title).
		Uid(uid).
		Description(description).
		Tags([]string{tag}).
		Editable().
		Tooltip(dashboard.DashboardCursorSyncCrosshair).
		Refresh("30s").
		Time("now-6h", "now").
		Timezone(common.TimeZoneBrowser).
		Links(links()).
		WithVariable(datasourceVar()).
		WithVariable(jobVar()).
		WithVariable(hostVar())
}

// Sizes on Grafana's 24-column grid.
const (
	full    = 24
	half    = 12
	third   = 8
	quarter = 6
)

// valueText maps numeric values to text and colour (state codes, 0/1 gauges).
func valueText(m map[string][2]string) []dashboard.ValueMapping {
	opts := make(map[string]dashboard.ValueMappingResult, len(m))
	i := int32(0)
	for _, k := range sortedKeys(m) {
		v := m[k]
		opts[k] = dashboard.ValueMappingResult{Text: cog.ToPtr(v[0]), Color: cog.ToPtr(v[1]), Index: cog.ToPtr(i)}
		i++
	}
	return []dashboard.ValueMapping{{ValueMap: &dashboard.ValueMap{Type: dashboard.MappingTypeValueToText, Options: opts}}}
}

// upDown maps a 0/1 gauge.
func upDown(down, up string) []dashboard.ValueMapping {
	return valueText(map[string][2]string{"0": {down, "red"}, "1": {up, "green"}})
}

// stateCodes is the numeric encoding of keepwatch_vrrp_state that
// stateExpr produces, for state timelines (a state set has one series per
// state; a timeline wants one series per instance).
var stateCodes = map[string][2]string{
	"1": {"INIT", "blue"},
	"2": {"BACKUP", "text"},
	"3": {"MASTER", "green"},
	"4": {"FAULT", "red"},
	"5": {"STOP", "purple"},
}

// stateExpr encodes the state set as one number per instance and host:
// each state's 0/1 series times its code, united with `or` (their state
// labels differ), then max by the identity leaves the code of the one
// state that is 1.
func stateExpr(by string) string {
	return `max by (` + by + `) (
    keepwatch_vrrp_state{state="init", $sel} * 1
  or keepwatch_vrrp_state{state="backup", $sel} * 2
  or keepwatch_vrrp_state{state="master", $sel} * 3
  or keepwatch_vrrp_state{state="fault", $sel} * 4
  or keepwatch_vrrp_state{state="stop", $sel} * 5
)`
}

// thresholds is a thresholds config: base colour then value/colour steps.
func thresholds(base string, steps ...any) *dashboard.ThresholdsConfigBuilder {
	ts := []dashboard.Threshold{{Color: base}}
	for i := 0; i+1 < len(steps); i += 2 {
		ts = append(ts, dashboard.Threshold{Value: cog.ToPtr(steps[i].(float64)), Color: steps[i+1].(string)})
	}
	return dashboard.NewThresholdsConfigBuilder().Mode(dashboard.ThresholdsModeAbsolute).Steps(ts)
}

// badWhenPositive colours a count green at 0 and red above.
func badWhenPositive() *dashboard.ThresholdsConfigBuilder { return thresholds("green", 1.0, "red") }

// lastValue makes a stat show the latest value of each series.
func lastValue() *common.ReduceDataOptionsBuilder {
	return common.NewReduceDataOptionsBuilder().Calcs([]string{"lastNotNull"}).Values(false)
}

// sortedKeys returns m's keys in order.
func sortedKeys[V any](m map[string]V) []string { return slices.Sorted(maps.Keys(m)) }

// The SDK leaves some option enums as "" (tooltip mode and sort, stat
// orientation); these constructors set them, so the JSON says what Grafana
// would otherwise have to guess.

// timeSeries is a time series panel whose tooltip lists every series,
// largest first.
func timeSeries() *timeseries.PanelBuilder {
	return timeseries.NewPanelBuilder().Tooltip(allSeriesTooltip())
}

// timeline is a state timeline panel with the same tooltip.
func timeline() *statetimeline.PanelBuilder {
	return statetimeline.NewPanelBuilder().Tooltip(allSeriesTooltip())
}

// singleStat is a stat panel laid out automatically.
func singleStat() *stat.PanelBuilder {
	return stat.NewPanelBuilder().Orientation(common.VizOrientationAuto)
}

// heatMap is a heat map whose tooltip shows the bucket's histogram.
func heatMap() *heatmap.PanelBuilder {
	return heatmap.NewPanelBuilder().
		Tooltip(heatmap.NewHeatmapTooltipBuilder().Mode(common.TooltipDisplayModeSingle).YHistogram(true))
}

func allSeriesTooltip() *common.VizTooltipOptionsBuilder {
	return common.NewVizTooltipOptionsBuilder().Mode(common.TooltipDisplayModeMulti).Sort(common.SortOrderDescending)
}

// drillDown is a data link from a series carrying vrrp_instance, vrid and
// instance labels to the instance dashboard, keeping the time range and
// datasource.
func drillDown() []cog.Builder[dashboard.DashboardLink] {
	return []cog.Builder[dashboard.DashboardLink]{
		dashboard.NewDashboardLinkBuilder("Drill down: ${__field.labels.vrrp_instance} vrid ${__field.labels.vrid}").
			Type(dashboard.DashboardLinkTypeLink).
			Icon("dashboard").
			Tooltip("Open the VRRP instance dashboard").
			Url("/d/keepwatch-instance?var-vrrp_instance=${__field.labels.vrrp_instance}&var-vrid=${__field.labels.vrid}" +
				"&${job:queryparam}&${datasource:queryparam}&${__url_time_range}"),
	}
}

// vipMoves marks every transition to MASTER on the time axis of every
// panel: when a VIP moved is the first question about any graph.
func vipMoves(s scope) *dashboard.AnnotationQueryBuilder {
	return dashboard.NewAnnotationQueryBuilder().
		Name("VIP moves").
		Datasource(datasource).
		Enable(true).
		IconColor("orange").
		Expr(s.expr(`sum by (vrrp_instance, vrid, instance) (increase(keepwatch_vrrp_master_transitions_total{$sel}[$__rate_interval])) > 0`)).
		Step("10s").
		TitleFormat("{{vrrp_instance}} vrid {{vrid}}: master on {{instance}}").
		TagKeys("vrrp_instance,vrid,instance").
		TextFormat("VIP moved")
}
