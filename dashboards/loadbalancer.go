package dashboards

// The v1 dashboard schema is deprecated in the SDK for dashboardv2, which
// only Grafana 12+ with the v2 API imports; v1 JSON imports everywhere.
//lint:file-ignore SA1019 v1 dashboards on purpose (see above)

import (
	"github.com/grafana/grafana-foundation-sdk/go/common"
	"github.com/grafana/grafana-foundation-sdk/go/dashboard"
	"github.com/grafana/grafana-foundation-sdk/go/heatmap"
	"github.com/grafana/grafana-foundation-sdk/go/table"
)

// lbSel narrows the host selector to the chosen virtual servers.
const lbSel = hostSel + `, virtual_server=~"$virtual_server"`

// LoadBalancer shows the IPVS side: virtual servers and their quorum, real
// servers' health and weights, the health checkers' probes, and the
// kernel's traffic counters.
func LoadBalancer() *dashboard.DashboardBuilder {
	s := scope{sel: lbSel}
	h := scope{sel: hostSel}
	return newDashboard("keepwatch-lb", "keepwatch / Load balancer",
		"Virtual servers and quorum, real servers up and weights, health-check probes and latency, IPVS connections, packets and bytes.").
		WithVariable(labelVar("virtual_server", "Virtual server", `keepwatch_virtual_server_quorum_up{job=~"$job", instance=~"$instance"}`)).
		WithRow(dashboard.NewRowBuilder("Virtual servers")).
		WithPanel(countStat(s, "Virtual servers without quorum",
			"Virtual servers whose healthy real servers are below quorum: traffic goes to the sorry server, or nowhere.",
			`count(keepwatch_virtual_server_quorum_up{$sel} == 0) or vector(0)`)).
		WithPanel(countStat(s, "Real servers down",
			"Real servers failing their health checks.",
			`count(keepwatch_real_server_up{$sel} == 0) or vector(0)`)).
		WithPanel(countStat(s, "Real servers up",
			"Real servers passing their health checks.",
			`sum(keepwatch_real_server_up{$sel}) or vector(0)`).
			Thresholds(thresholds("blue"))).
		WithPanel(singleStat().
			Title("Kernel IPVS").
			Description("Whether the agent could program the kernel's IPVS at the last attempt and read it back at the last scrape, per host.").
			Targets(h.targets(
				query{expr: `min by (instance) (keepwatch_ipvs_available{$sel})`, legend: "programmed {{instance}}", instant: true},
				query{expr: `min by (instance) (keepwatch_ipvs_scrape_success{$sel})`, legend: "read {{instance}}", instant: true},
			)).
			Mappings(upDown("failing", "ok")).
			Unit("none").
			Thresholds(thresholds("red", 1.0, "green")).
			ColorMode(common.BigValueColorModeBackground).
			GraphMode(common.BigValueGraphModeNone).
			ReduceOptions(lastValue()).
			Height(4).Span(15)).
		WithPanel(table.NewPanelBuilder().
			Title("Virtual servers").
			Description("Each virtual server: quorum, and how many of its real servers are healthy.").
			Targets(s.targets(
				now(`max by (instance, virtual_server) (keepwatch_virtual_server_quorum_up{$sel})`),
				now(`sum by (instance, virtual_server) (keepwatch_real_server_up{$sel})`),
				now(`count by (instance, virtual_server) (keepwatch_real_server_up{$sel})`),
			)).
			WithTransformation(dashboard.DataTransformerConfig{Id: "merge", Options: map[string]any{}}).
			WithTransformation(dashboard.DataTransformerConfig{Id: "organize", Options: map[string]any{
				"excludeByName": map[string]any{"Time": true},
				"renameByName": map[string]any{
					"Value #A": "quorum",
					"Value #B": "real servers up",
					"Value #C": "real servers",
				},
			}}).
			OverrideByName("quorum", []dashboard.DynamicConfigValue{{Id: "mappings", Value: upDown("lost", "ok")}}).
			Height(8).Span(full)).
		WithPanel(timeline().
			Title("Quorum").
			Description("Whether each virtual server has its quorum of healthy real servers.").
			Targets(s.targets(ts(`keepwatch_virtual_server_quorum_up{$sel}`, "{{virtual_server}} @ {{instance}}"))).
			Mappings(upDown("lost", "ok")).
			MergeValues(true).
			Height(8).Span(full)).
		WithRow(dashboard.NewRowBuilder("Real servers")).
		WithPanel(timeline().
			Title("Real servers up").
			Description("Whether each real server passes its health checks.").
			Targets(s.targets(ts(`keepwatch_real_server_up{$sel}`, "{{virtual_server}} → {{real_server}} @ {{instance}}"))).
			Mappings(upDown("down", "up")).
			MergeValues(true).
			Height(10).Span(full)).
		WithPanel(timeSeries().
			Title("Real server weights").
			Description("The weight the agent gives each real server (0 while down with inhibit_on_failure), and the weight in the kernel's table: they differ only while a reconcile is pending or failing.").
			Targets(s.targets(
				ts(`keepwatch_real_server_weight{$sel}`, "agent {{virtual_server}} → {{real_server}} @ {{instance}}"),
				ts(`keepwatch_ipvs_real_server_weight{$sel}`, "kernel {{virtual_server}} → {{real_server}} @ {{instance}}"),
			)).
			LineInterpolation(common.LineInterpolationStepAfter).
			Unit("short").Min(0).Decimals(0).
			Height(9).Span(half)).
		WithPanel(timeSeries().
			Title("Connections per real server").
			Description("Established (active) and other (inactive) connections the kernel holds for each real server.").
			Targets(s.targets(
				ts(`keepwatch_ipvs_real_server_active_connections{$sel}`, "active {{real_server}} @ {{instance}}"),
				ts(`keepwatch_ipvs_real_server_inactive_connections{$sel}`, "inactive {{real_server}} @ {{instance}}"),
			)).
			Unit("short").Min(0).
			Height(9).Span(half)).
		WithRow(dashboard.NewRowBuilder("Health checks")).
		WithPanel(timeSeries().
			Title("Probe latency by checker").
			Description("Health-check probe durations (p50 and p99) per checker.").
			Targets(s.targets(
				ts(`histogram_quantile(0.99, sum by (virtual_server, checker, le) (rate(keepwatch_check_probe_duration_seconds_bucket{$sel}[$__rate_interval])))`, "p99 {{checker}} {{virtual_server}}"),
				ts(`histogram_quantile(0.5, sum by (virtual_server, checker, le) (rate(keepwatch_check_probe_duration_seconds_bucket{$sel}[$__rate_interval])))`, "p50 {{checker}} {{virtual_server}}"),
			)).
			Unit("s").Min(0).
			Height(9).Span(half)).
		WithPanel(timeSeries().
			Title("Probe start lateness").
			Description("How late probes started against their schedule, a wait for a probe slot included (p99 and max per host): a starved agent or too many real servers for the probe concurrency.").
			Targets(h.targets(
				ts(`histogram_quantile(0.99, sum by (instance, le) (rate(keepwatch_check_probe_lateness_seconds_bucket{$sel}[$__rate_interval])))`, "p99 {{instance}}"),
				ts(`histogram_quantile(1, sum by (instance, le) (rate(keepwatch_check_probe_lateness_seconds_bucket{$sel}[$__rate_interval])))`, "max {{instance}}"),
			)).
			Unit("s").Min(0).
			Height(9).Span(half)).
		WithPanel(heatMap().
			Title("Probe latency").
			Description("Distribution of probe durations over all chosen checkers.").
			Targets(s.targets(buckets(`sum by (le) (increase(keepwatch_check_probe_duration_seconds_bucket{$sel}[$__rate_interval]))`))).
			Calculate(false).
			YAxis(heatmap.NewYAxisConfigBuilder().Unit("s")).
			CellValues(heatmap.NewCellValuesBuilder().Unit("short")).
			Color(heatmap.NewHeatmapColorOptionsBuilder().
				Mode(heatmap.HeatmapColorModeScheme).
				Scheme("Blues").
				Scale(heatmap.HeatmapColorScaleExponential).
				Exponent(0.5).
				Steps(64).
				Fill("dark-blue")).
			FilterValues(heatmap.NewFilterValueRangeBuilder().Le(1e-9)).
			Height(9).Span(half)).
		WithPanel(timeSeries().
			Title("Probe results").
			Description("Probes per second by checker and result.").
			Targets(s.targets(ts(`sum by (virtual_server, checker, result) (rate(keepwatch_check_probes_total{$sel}[$__rate_interval]))`, "{{checker}} {{virtual_server}} {{result}}"))).
			OverrideByRegexp(".*failure", []dashboard.DynamicConfigValue{{Id: "color", Value: map[string]any{"mode": "fixed", "fixedColor": "red"}}}).
			Unit("ops").Min(0).
			Height(9).Span(half)).
		WithPanel(timeSeries().
			Title("Probe errors by reason").
			Description("Failed probes by error class (timeout, refused, status, ...).").
			Targets(s.targets(ts(`sum by (virtual_server, checker, reason) (rate(keepwatch_check_probe_errors_total{$sel}[$__rate_interval])) > 0`, "{{checker}} {{virtual_server}} {{reason}}"))).
			Unit("ops").Min(0).
			Height(9).Span(half)).
		WithRow(dashboard.NewRowBuilder("IPVS traffic")).
		WithPanel(timeSeries().
			Title("New connections").
			Description("Connections the kernel scheduled per second, per virtual server.").
			Targets(s.targets(ts(`sum by (instance, virtual_server) (rate(keepwatch_ipvs_virtual_server_connections_total{$sel}[$__rate_interval]))`, "{{virtual_server}} @ {{instance}}"))).
			Unit("cps").Min(0).
			Height(8).Span(third)).
		WithPanel(timeSeries().
			Title("Packets").
			Description("Packets in and out per second, per virtual server (out is below the axis; with DR and TUN forwarding replies bypass the director and out stays 0).").
			Targets(s.targets(
				ts(`sum by (instance, virtual_server) (rate(keepwatch_ipvs_virtual_server_incoming_packets_total{$sel}[$__rate_interval]))`, "in {{virtual_server}} @ {{instance}}"),
				ts(`sum by (instance, virtual_server) (rate(keepwatch_ipvs_virtual_server_outgoing_packets_total{$sel}[$__rate_interval]))`, "out {{virtual_server}} @ {{instance}}"),
			)).
			OverrideByQuery("B", []dashboard.DynamicConfigValue{{Id: "custom.transform", Value: "negative-Y"}}).
			Unit("pps").
			Height(8).Span(third)).
		WithPanel(timeSeries().
			Title("Bytes").
			Description("Bytes in and out per second, per virtual server (out is below the axis).").
			Targets(s.targets(
				ts(`sum by (instance, virtual_server) (rate(keepwatch_ipvs_virtual_server_incoming_bytes_total{$sel}[$__rate_interval]))`, "in {{virtual_server}} @ {{instance}}"),
				ts(`sum by (instance, virtual_server) (rate(keepwatch_ipvs_virtual_server_outgoing_bytes_total{$sel}[$__rate_interval]))`, "out {{virtual_server}} @ {{instance}}"),
			)).
			OverrideByQuery("B", []dashboard.DynamicConfigValue{{Id: "custom.transform", Value: "negative-Y"}}).
			Unit("Bps").
			Height(8).Span(third)).
		WithPanel(timeSeries().
			Title("New connections per real server").
			Description("Connections the kernel scheduled per second to each real server: how the scheduler spreads the load.").
			Targets(s.targets(ts(`sum by (instance, virtual_server, real_server) (rate(keepwatch_ipvs_real_server_connections_total{$sel}[$__rate_interval]))`, "{{virtual_server}} → {{real_server}} @ {{instance}}"))).
			Unit("cps").Min(0).
			Height(8).Span(third)).
		WithPanel(timeSeries().
			Title("Packets per real server").
			Description("Packets in and out per second, per real server (out is below the axis).").
			Targets(s.targets(
				ts(`sum by (instance, virtual_server, real_server) (rate(keepwatch_ipvs_real_server_incoming_packets_total{$sel}[$__rate_interval]))`, "in {{real_server}} @ {{instance}}"),
				ts(`sum by (instance, virtual_server, real_server) (rate(keepwatch_ipvs_real_server_outgoing_packets_total{$sel}[$__rate_interval]))`, "out {{real_server}} @ {{instance}}"),
			)).
			OverrideByQuery("B", []dashboard.DynamicConfigValue{{Id: "custom.transform", Value: "negative-Y"}}).
			Unit("pps").
			Height(8).Span(third)).
		WithPanel(timeSeries().
			Title("Bytes per real server").
			Description("Bytes in and out per second, per real server (out is below the axis).").
			Targets(s.targets(
				ts(`sum by (instance, virtual_server, real_server) (rate(keepwatch_ipvs_real_server_incoming_bytes_total{$sel}[$__rate_interval]))`, "in {{real_server}} @ {{instance}}"),
				ts(`sum by (instance, virtual_server, real_server) (rate(keepwatch_ipvs_real_server_outgoing_bytes_total{$sel}[$__rate_interval]))`, "out {{real_server}} @ {{instance}}"),
			)).
			OverrideByQuery("B", []dashboard.DynamicConfigValue{{Id: "custom.transform", Value: "negative-Y"}}).
			Unit("Bps").
			Height(8).Span(third)).
		WithRow(dashboard.NewRowBuilder("Reconciliation")).
		WithPanel(timeSeries().
			Title("IPVS reconciles").
			Description("Reconciliations of the desired IPVS table with the kernel by result, and the services and destinations they changed.").
			Targets(h.targets(
				ts(`sum by (instance, result) (increase(keepwatch_ipvs_reconciles_total{$sel}[$__rate_interval])) > 0`, "{{result}} @ {{instance}}"),
				ts(`sum by (instance, op) (increase(keepwatch_ipvs_reconcile_changes_total{$sel}[$__rate_interval])) > 0`, "{{op}} @ {{instance}}"),
			)).
			DrawStyle(common.GraphDrawStyleBars).
			FillOpacity(80).
			Unit("short").Min(0).Decimals(0).
			Height(8).Span(half)).
		WithPanel(timeSeries().
			Title("IPVS reconcile duration").
			Description("p99 and p50 time to bring the kernel's table to the desired one.").
			Targets(h.targets(
				ts(`histogram_quantile(0.99, sum by (instance, le) (rate(keepwatch_ipvs_reconcile_duration_seconds_bucket{$sel}[$__rate_interval])))`, "p99 {{instance}}"),
				ts(`histogram_quantile(0.5, sum by (instance, le) (rate(keepwatch_ipvs_reconcile_duration_seconds_bucket{$sel}[$__rate_interval])))`, "p50 {{instance}}"),
			)).
			Unit("s").Min(0).
			Height(8).Span(half))
}
