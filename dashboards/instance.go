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

// instSel narrows the host selector to the chosen VRRP instances and VRIDs.
const instSel = hostSel + `, vrrp_instance=~"$vrrp_instance", vrid=~"$vrid"`

// legendHost names a per-instance series in the drill-down.
const legendHost = "{{vrrp_instance}} vrid {{vrid}} @ {{instance}}"

// Instance drills into chosen VRRP instances on chosen hosts: state,
// priority and what moved it, advert traffic and drops, how close backups
// came to taking over (the advert gap against Master_Down_Interval), and
// the gratuitous ARPs / unsolicited NAs each takeover sent.
func Instance() *dashboard.DashboardBuilder {
	s := scope{sel: instSel}
	h := scope{sel: hostSel}
	return newDashboard("keepwatch-instance", "keepwatch / VRRP instance",
		"One VRRP instance across its hosts: state, priority and trackers, adverts and drops, advert gaps against Master_Down_Interval, GARP/NA.").
		WithVariable(labelVar("vrrp_instance", "VRRP instance", `keepwatch_vrrp_state{job=~"$job", instance=~"$instance"}`)).
		WithVariable(labelVar("vrid", "VRID", `keepwatch_vrrp_state{job=~"$job", instance=~"$instance", vrrp_instance=~"$vrrp_instance"}`)).
		Annotation(vipMoves(s)).
		WithRow(dashboard.NewRowBuilder("State")).
		WithPanel(timeline().
			Title("State").
			Description("The instance's VRRP state on each host.").
			Targets(s.targets(ts(stateExpr("vrrp_instance, vrid, instance"), legendHost))).
			Mappings(valueText(stateCodes)).
			MergeValues(true).
			Height(8).Span(18)).
		WithPanel(singleStat().
			Title("Since last transition").
			Description("Time since the instance last changed state on each host.").
			Targets(s.targets(query{expr: `time() - keepwatch_vrrp_last_transition_timestamp_seconds{$sel}`, legend: legendHost, instant: true})).
			Unit("s").
			GraphMode(common.BigValueGraphModeNone).
			ReduceOptions(lastValue()).
			Height(8).Span(quarter)).
		WithPanel(timeSeries().
			Title("Transitions").
			Description("State transitions by destination and reason (priority, preempted, master_down, priority_zero, fault, ...).").
			Targets(s.targets(ts(`sum by (instance, from, to, reason) (increase(keepwatch_vrrp_transitions_total{$sel}[$__rate_interval])) > 0`,
				"{{instance}} {{from}} → {{to}} ({{reason}})"))).
			DrawStyle(common.GraphDrawStyleBars).
			FillOpacity(80).
			Unit("short").Min(0).Decimals(0).
			Height(8).Span(half)).
		WithPanel(table.NewPanelBuilder().
			Title("Virtual addresses").
			Description("Whether each host holds each virtual address of the instance.").
			Targets(s.targets(now(`keepwatch_vrrp_vip_present{$sel}`))).
			WithTransformation(dashboard.DataTransformerConfig{Id: "organize", Options: map[string]any{
				"excludeByName": map[string]any{"Time": true, "__name__": true},
				"renameByName":  map[string]any{"Value": "held"},
			}}).
			OverrideByName("held", []dashboard.DynamicConfigValue{{Id: "mappings", Value: upDown("no", "yes")}}).
			Height(8).Span(half)).
		WithRow(dashboard.NewRowBuilder("Priority")).
		WithPanel(timeSeries().
			Title("Base vs effective priority").
			Description("Configured priority, the effective priority after trackers (what adverts carry), and the priority in the adverts of the master this host last heard.").
			Targets(s.targets(
				ts(`keepwatch_vrrp_priority{$sel}`, "base "+legendHost),
				ts(`keepwatch_vrrp_effective_priority{$sel}`, "effective "+legendHost),
				ts(`keepwatch_vrrp_master_priority{$sel}`, "master heard "+legendHost),
			)).
			LineInterpolation(common.LineInterpolationStepAfter).
			Unit("short").Min(0).Max(255).Decimals(0).
			Height(9).Span(half)).
		WithPanel(timeSeries().
			Title("Tracker contribution").
			Description("Effective minus base priority: the sum of what tracked scripts, interfaces and files add or subtract right now (keepalived reference §1.5: effective = base + Σ weights, clamped to 1..254).").
			Targets(s.targets(ts(`keepwatch_vrrp_effective_priority{$sel} - keepwatch_vrrp_priority{$sel}`, legendHost))).
			LineInterpolation(common.LineInterpolationStepAfter).
			Unit("short").Decimals(0).
			Height(9).Span(half)).
		WithPanel(timeline().
			Title("Tracked scripts").
			Description("Whether each vrrp_script's last run succeeded, per host (scripts are shared by the instances that track them).").
			Targets(h.targets(ts(`keepwatch_track_script_up{$sel}`, "{{script}} @ {{instance}}"))).
			Mappings(upDown("down", "up")).
			MergeValues(true).
			Height(8).Span(half)).
		WithPanel(timeline().
			Title("Tracked interfaces").
			Description("Tracked interfaces up or down, per host.").
			Targets(h.targets(ts(`keepwatch_track_interface_up{$sel}`, "{{interface}} @ {{instance}}"))).
			Mappings(upDown("down", "up")).
			MergeValues(true).
			Height(8).Span(half)).
		WithPanel(timeSeries().
			Title("Script runs").
			Description("vrrp_script runs by result.").
			Targets(h.targets(ts(`sum by (script, result) (rate(keepwatch_track_script_runs_total{$sel}[$__rate_interval]))`, "{{script}} {{result}}"))).
			Unit("ops").Min(0).
			Height(8).Span(half)).
		WithPanel(timeSeries().
			Title("Tracked files").
			Description("Last value read from each track_file.").
			Targets(h.targets(ts(`keepwatch_track_file_value{$sel}`, "{{file}} @ {{instance}}"))).
			Unit("short").
			Height(8).Span(half)).
		WithRow(dashboard.NewRowBuilder("Adverts")).
		WithPanel(timeSeries().
			Title("Adverts sent and received").
			Description("Adverts per second: the master sends one per advert interval; backups receive them. Received is drawn below the axis.").
			Targets(s.targets(
				ts(`sum by (instance) (rate(keepwatch_vrrp_adverts_sent_total{$sel}[$__rate_interval]))`, "sent {{instance}}"),
				ts(`sum by (instance) (rate(keepwatch_vrrp_adverts_received_total{$sel}[$__rate_interval]))`, "received {{instance}}"),
			)).
			OverrideByQuery("B", []dashboard.DynamicConfigValue{{Id: "custom.transform", Value: "negative-Y"}}).
			Unit("pps").
			Height(9).Span(half)).
		WithPanel(timeSeries().
			Title("Adverts dropped by reason").
			Description("Adverts that failed a receive check (ttl, auth, interval, address_list, ...). address_list is accepted but counted: against keepalived 2.2 peers it is the classic split brain.").
			Targets(s.targets(ts(`sum by (instance, reason) (rate(keepwatch_vrrp_adverts_dropped_total{$sel}[$__rate_interval])) > 0`, "{{reason}} @ {{instance}}"))).
			Unit("pps").Min(0).
			Height(9).Span(half)).
		WithPanel(timeSeries().
			Title("Priority-0 adverts").
			Description("Priority-0 adverts: a master resigning (RFC 9568 §6.4.3), sent by this host or received from the peer.").
			Targets(s.targets(
				ts(`sum by (instance) (increase(keepwatch_vrrp_priority_zero_sent_total{$sel}[$__rate_interval])) > 0`, "sent {{instance}}"),
				ts(`sum by (instance) (increase(keepwatch_vrrp_priority_zero_received_total{$sel}[$__rate_interval])) > 0`, "received {{instance}}"),
			)).
			DrawStyle(common.GraphDrawStyleBars).
			FillOpacity(80).
			Unit("short").Min(0).Decimals(0).
			Height(8).Span(half)).
		WithPanel(timeSeries().
			Title("Packets dropped before any instance").
			Description("VRRP packets on the hosts' interfaces that matched no instance (vrid_unknown: another cluster on the LAN) or failed checks before matching one.").
			Targets(h.targets(ts(`sum by (instance, interface, reason) (rate(keepwatch_vrrp_global_adverts_dropped_total{$sel}[$__rate_interval])) > 0`, "{{reason}} {{interface}} @ {{instance}}"))).
			Unit("pps").Min(0).
			Height(8).Span(half)).
		WithRow(dashboard.NewRowBuilder("Near misses")).
		WithPanel(heatMap().
			Title("Advert gap").
			Description("Time between consecutive adverts heard while BACKUP. A backup takes over when a gap reaches Master_Down_Interval (RFC 9568 §6.4.2); gaps near it are near misses.").
			Targets(s.targets(buckets(`sum by (le) (increase(keepwatch_vrrp_advert_gap_seconds_bucket{$sel}[$__rate_interval]))`))).
			Calculate(false).
			YAxis(heatmap.NewYAxisConfigBuilder().Unit("s")).
			CellValues(heatmap.NewCellValuesBuilder().Unit("short")).
			Color(heatmap.NewHeatmapColorOptionsBuilder().
				Mode(heatmap.HeatmapColorModeScheme).
				Scheme("Oranges").
				Scale(heatmap.HeatmapColorScaleExponential).
				Exponent(0.5).
				Steps(64).
				Fill("dark-orange")).
			FilterValues(heatmap.NewFilterValueRangeBuilder().Le(1e-9)).
			Height(10).Span(half)).
		WithPanel(timeSeries().
			Title("Advert gap against Master_Down_Interval").
			Description("Longest and typical gaps between adverts against the interval after which the backup takes over; the advert interval for scale.").
			Targets(s.targets(
				ts(`histogram_quantile(0.99, sum by (instance, le) (rate(keepwatch_vrrp_advert_gap_seconds_bucket{$sel}[$__rate_interval])))`, "p99 gap {{instance}}"),
				ts(`histogram_quantile(0.5, sum by (instance, le) (rate(keepwatch_vrrp_advert_gap_seconds_bucket{$sel}[$__rate_interval])))`, "p50 gap {{instance}}"),
				ts(`max by (instance) (keepwatch_vrrp_master_down_interval_seconds{$sel})`, "master down interval {{instance}}"),
				ts(`max by (instance) (keepwatch_vrrp_advert_interval_seconds{$sel})`, "advert interval {{instance}}"),
			)).
			OverrideByQuery("C", []dashboard.DynamicConfigValue{
				{Id: "custom.lineStyle", Value: map[string]any{"fill": "dash", "dash": []int{10, 10}}},
				{Id: "color", Value: map[string]any{"mode": "fixed", "fixedColor": "red"}},
			}).
			OverrideByQuery("D", []dashboard.DynamicConfigValue{
				{Id: "custom.lineStyle", Value: map[string]any{"fill": "dot", "dash": []int{0, 10}}},
			}).
			Unit("s").Min(0).
			Height(10).Span(half)).
		WithPanel(timeSeries().
			Title("Advert lateness (agent starvation)").
			Description("How late this host sent its adverts against their schedule (RFC 9568 Adver_Timer): CPU, GC or a stopped process. Near the advert interval, its backups are close to taking over from a master that is alive; KeepwatchAgentStarved fires at half the interval.").
			Targets(s.targets(
				ts(`histogram_quantile(1, sum by (instance, le) (rate(keepwatch_vrrp_advert_lateness_seconds_bucket{$sel}[$__rate_interval])))`, "max late {{instance}}"),
				ts(`histogram_quantile(0.99, sum by (instance, le) (rate(keepwatch_vrrp_advert_lateness_seconds_bucket{$sel}[$__rate_interval])))`, "p99 late {{instance}}"),
				ts(`max by (instance) (keepwatch_vrrp_advert_interval_seconds{$sel})`, "advert interval {{instance}}"),
			)).
			OverrideByQuery("C", []dashboard.DynamicConfigValue{
				{Id: "custom.lineStyle", Value: map[string]any{"fill": "dash", "dash": []int{10, 10}}},
				{Id: "color", Value: map[string]any{"mode": "fixed", "fixedColor": "red"}},
			}).
			Unit("s").Min(0).
			Height(10).Span(full)).
		WithRow(dashboard.NewRowBuilder("Takeover announcements and notifications")).
		WithPanel(timeSeries().
			Title("Gratuitous ARPs and neighbor adverts sent").
			Description("Gratuitous ARPs (IPv4) and unsolicited neighbor advertisements (IPv6) sent for the instance's VIPs: a burst of garp_master_repeat follows each takeover and again after garp_master_delay, then garp_master_refresh sends more (keepalived reference §2.6).").
			Targets(s.targets(
				ts(`sum by (instance) (increase(keepwatch_vrrp_gratuitous_arps_sent_total{$sel}[$__rate_interval])) > 0`, "GARP {{instance}}"),
				ts(`sum by (instance) (increase(keepwatch_vrrp_neighbor_adverts_sent_total{$sel}[$__rate_interval])) > 0`, "NA {{instance}}"),
			)).
			DrawStyle(common.GraphDrawStyleBars).
			FillOpacity(80).
			Unit("short").Min(0).Decimals(0).
			Height(8).Span(full)).
		WithPanel(timeSeries().
			Title("Events lost by slow sinks").
			Description("Events a slow sink (notify, mail, traces) dropped rather than delay VRRP, and its queue length: a lost notify is a script that did not run.").
			Targets(h.targets(
				ts(`sum by (instance, sink) (increase(keepwatch_sink_events_dropped_total{$sel}[$__rate_interval])) > 0`, "dropped {{sink}} @ {{instance}}"),
				ts(`max by (instance, sink) (keepwatch_sink_queue_length{$sel})`, "queued {{sink}} @ {{instance}}"),
			)).
			Unit("short").Min(0).
			Height(8).Span(half)).
		WithPanel(timeSeries().
			Title("Notify scripts and mail").
			Description("notify scripts and SMTP alerts by result.").
			Targets(h.targets(
				ts(`sum by (instance, script, result) (increase(keepwatch_notify_script_runs_total{$sel}[$__rate_interval])) > 0`, "{{script}} {{result}} @ {{instance}}"),
				ts(`sum by (instance, result) (increase(keepwatch_notify_mails_total{$sel}[$__rate_interval])) > 0`, "mail {{result}} @ {{instance}}"),
			)).
			DrawStyle(common.GraphDrawStyleBars).
			FillOpacity(80).
			Unit("short").Min(0).Decimals(0).
			Height(8).Span(half))
}
