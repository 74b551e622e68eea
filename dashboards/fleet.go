package dashboards

// The v1 dashboard schema is deprecated in the SDK for dashboardv2, which
// only Grafana 12+ with the v2 API imports; v1 JSON imports everywhere.
//lint:file-ignore SA1019 v1 dashboards on purpose (see above)

import (
	"github.com/grafana/grafana-foundation-sdk/go/common"
	"github.com/grafana/grafana-foundation-sdk/go/dashboard"
	"github.com/grafana/grafana-foundation-sdk/go/stat"
	"github.com/grafana/grafana-foundation-sdk/go/table"
)

// Fleet is the cluster view every published keepalived dashboard lacks
// (they are all per host, reference landscape.md §1.5): for every VRID,
// which host is master, when the VIP moved, and whether any VRID has two
// masters or none.
//
// A virtual router is identified by (cluster, segment, vrid, family): a
// VRID is unique only within one L2 segment (RFC 9568 §7.3) and IPv4 and
// IPv6 virtual routers are separate domains (RFC 9568 §1). segment comes
// from keepwatch_vrrp_instance_info, joined on by withSegment, as the
// alert rules do, so two pairs that both use VRID 51 stay two routers.
func Fleet() *dashboard.DashboardBuilder {
	s := scope{sel: hostSel}
	return newDashboard("keepwatch-fleet", "keepwatch / Fleet",
		"Every VRRP instance across the fleet: who is master, VIP moves, split brain, no master, FAULT, reload failures.").
		Annotation(vipMoves(s)).
		WithRow(dashboard.NewRowBuilder("Now")).
		WithPanel(countStat(s, "Split-brain VIPs",
			"Virtual addresses held by more than one host right now: both answer ARP/ND for the VIP and traffic splits between them.",
			`count(count by (cluster, segment, address) ((keepwatch_vrrp_vip_present{$sel} == 1) `+withSegment+`) > 1) or vector(0)`)).
		WithPanel(countStat(s, "VRIDs with no master",
			"Virtual routers (cluster, segment, VRID, family) where no host is MASTER: the VIPs are unreachable.",
			`count(max by (cluster, segment, vrid, family) (keepwatch_vrrp_state{state="master", $sel} `+withSegment+`) == 0) or vector(0)`)).
		WithPanel(countStat(s, "VRIDs with several masters",
			"Virtual routers (cluster, segment, VRID, family) where more than one host is MASTER: adverts are not getting through, or the peers disagree on the VRID's config.",
			`count(sum by (cluster, segment, vrid, family) (keepwatch_vrrp_state{state="master", $sel} `+withSegment+`) > 1) or vector(0)`)).
		WithPanel(countStat(s, "Instances in FAULT",
			"VRRP instances in FAULT: a tracked interface is down or a tracked script failed with weight 0.",
			`count(keepwatch_vrrp_state{state="fault", $sel} == 1) or vector(0)`)).
		WithPanel(countStat(s, "Degraded priority",
			"Instances whose trackers hold the effective priority below the configured one: a failing check that may already have moved, or may soon move, a VIP.",
			`count(keepwatch_vrrp_effective_priority{$sel} < keepwatch_vrrp_priority{$sel}) or vector(0)`).
			Thresholds(thresholds("green", 1.0, "orange"))).
		WithPanel(countStat(s, "Failed reloads",
			"Agents whose last reload was rejected: they keep running the previous configuration.",
			`count(keepwatch_config_last_reload_successful{$sel} == 0) or vector(0)`)).
		WithPanel(singleStat().
			Title("VIP moves").
			Description("Transitions to MASTER across the fleet in the selected time range.").
			Targets(s.targets(query{expr: `sum(increase(keepwatch_vrrp_master_transitions_total{$sel}[$__range])) or vector(0)`, instant: true})).
			Unit("short").Decimals(0).
			Thresholds(thresholds("green", 1.0, "orange")).
			ColorMode(common.BigValueColorModeBackground).
			GraphMode(common.BigValueGraphModeNone).
			ReduceOptions(lastValue()).
			Height(4).Span(3)).
		WithPanel(countStat(s, "Agents reporting",
			"keepwatch agents Prometheus scrapes (an agent that is down disappears from this count).",
			`count(keepwatch_build_info{$sel}) or vector(0)`).
			Thresholds(thresholds("red", 1.0, "blue"))).
		WithRow(dashboard.NewRowBuilder("Who is master")).
		WithPanel(timeline().
			Title("Master by virtual router and host").
			Description("keepwatch_vrrp_state{state=\"master\"} per instance and host, labelled with the virtual router's segment: a VIP move is a green bar ending on one host and starting on another; two green bars at once in one segment is split brain.").
			Targets(s.targets(ts(`max by (segment, vrrp_instance, vrid, family, instance) (keepwatch_vrrp_state{state="master", $sel} `+withSegment+`)`,
				"{{segment}} vrid {{vrid}} {{family}} {{vrrp_instance}} @ {{instance}}"))).
			Mappings(valueText(map[string][2]string{"0": {"not master", "transparent"}, "1": {"MASTER", "green"}})).
			DataLinks(drillDown()).
			ShowValue(common.VisibilityModeNever).
			MergeValues(true).
			RowHeight(0.8).
			Height(12).Span(full)).
		WithPanel(timeline().
			Title("State of every instance").
			Description("The VRRP state of every instance on every host.").
			Targets(s.targets(ts(stateExpr("vrrp_instance, vrid, family, instance"),
				"{{vrrp_instance}} vrid {{vrid}} {{family}} @ {{instance}}"))).
			Mappings(valueText(stateCodes)).
			DataLinks(drillDown()).
			ShowValue(common.VisibilityModeAuto).
			MergeValues(true).
			Height(12).Span(full)).
		WithPanel(timeSeries().
			Title("VIP moves").
			Description("Transitions to MASTER (RFC 8347 master-transitions) per VRID and host: each bar is a VIP arriving on that host.").
			Targets(s.targets(ts(`sum by (vrrp_instance, vrid, instance) (increase(keepwatch_vrrp_master_transitions_total{$sel}[$__rate_interval])) > 0`,
				"{{vrrp_instance}} vrid {{vrid}} → {{instance}}"))).
			DrawStyle(common.GraphDrawStyleBars).
			FillOpacity(80).
			Unit("short").Min(0).Decimals(0).
			Height(9).Span(half)).
		WithPanel(timeSeries().
			Title("Transitions by reason").
			Description("Every state transition by destination state and reason (priority, preempted, master_down, priority_zero, fault, ...).").
			Targets(s.targets(ts(`sum by (to, reason) (increase(keepwatch_vrrp_transitions_total{$sel}[$__rate_interval])) > 0`,
				"→ {{to}} ({{reason}})"))).
			DrawStyle(common.GraphDrawStyleBars).
			FillOpacity(80).
			Stacking(common.NewStackingConfigBuilder().Mode(common.StackingModeNormal)).
			Unit("short").Min(0).Decimals(0).
			Height(9).Span(half)).
		WithRow(dashboard.NewRowBuilder("Problems")).
		WithPanel(table.NewPanelBuilder().
			Title("Split-brain VIPs").
			Description("Virtual addresses present on more than one host of one segment, with the number of hosts.").
			Targets(s.targets(now(`count by (cluster, segment, address) ((keepwatch_vrrp_vip_present{$sel} == 1) ` + withSegment + `) > 1`))).
			NoValue("none").
			Height(8).Span(third)).
		WithPanel(table.NewPanelBuilder().
			Title("VRIDs with no master").
			Description("Virtual routers (cluster, segment, VRID, family) where every host is out of MASTER.").
			Targets(s.targets(now(`max by (cluster, segment, vrid, family) (keepwatch_vrrp_state{state="master", $sel} ` + withSegment + `) == 0`))).
			NoValue("none").
			Height(8).Span(third)).
		WithPanel(table.NewPanelBuilder().
			Title("Instances in FAULT").
			Description("Instances in FAULT and the host they are on.").
			Targets(s.targets(now(`keepwatch_vrrp_state{state="fault", $sel} == 1`))).
			NoValue("none").
			Height(8).Span(third)).
		WithPanel(timeSeries().
			Title("Hosts holding each VIP").
			Description("How many hosts of its segment hold each virtual address: 1 is healthy, 0 is an outage, 2 or more is split brain.").
			Targets(s.targets(ts(`sum by (cluster, segment, address) (keepwatch_vrrp_vip_present{$sel} `+withSegment+`)`, "{{address}} ({{segment}})"))).
			Thresholds(thresholds("red", 1.0, "green", 2.0, "red")).
			ThresholdsStyle(common.NewGraphThresholdsStyleConfigBuilder().Mode(common.GraphThresholdsStyleModeDashed)).
			Unit("short").Min(0).Decimals(0).
			Height(9).Span(half)).
		WithPanel(timeSeries().
			Title("Config loads").
			Description("Configuration loads and reloads by result per host; a failed reload leaves the old configuration running.").
			Targets(s.targets(
				ts(`sum by (instance, result) (increase(keepwatch_config_loads_total{$sel}[$__rate_interval])) > 0`, "{{instance}} {{result}}"),
			)).
			DrawStyle(common.GraphDrawStyleBars).
			FillOpacity(80).
			Unit("short").Min(0).Decimals(0).
			OverrideByRegexp(".*failure", []dashboard.DynamicConfigValue{{Id: "color", Value: map[string]any{"mode": "fixed", "fixedColor": "red"}}}).
			Height(9).Span(half)).
		WithRow(dashboard.NewRowBuilder("Agents")).
		WithPanel(table.NewPanelBuilder().
			Title("Agents").
			Description("Every keepwatch agent: version, and whether its last config load succeeded.").
			Targets(s.targets(
				now(`keepwatch_build_info{$sel}`),
				now(`keepwatch_config_last_reload_successful{$sel}`),
				now(`time() - keepwatch_config_last_reload_success_timestamp_seconds{$sel}`),
			)).
			WithTransformation(dashboard.DataTransformerConfig{Id: "merge", Options: map[string]any{}}).
			WithTransformation(dashboard.DataTransformerConfig{Id: "organize", Options: map[string]any{
				"excludeByName": map[string]any{"Time": true, "Value #A": true, "__name__": true},
				"renameByName": map[string]any{
					"Value #B": "last load ok",
					"Value #C": "since last good load",
				},
			}}).
			OverrideByName("since last good load", []dashboard.DynamicConfigValue{{Id: "unit", Value: "s"}}).
			OverrideByName("last load ok", []dashboard.DynamicConfigValue{{Id: "mappings", Value: upDown("no", "yes")}}).
			Height(8).Span(full))
}

// withSegment joins the virtual router's segment onto a per-instance VRRP
// series (keepwatch_vrrp_instance_info is 1, so values are unchanged): the
// identity the fleet panels group by, as alerts/keepwatch.rules.yml does.
const withSegment = `* on (cluster, job, instance, vrrp_instance) group_left (segment) keepwatch_vrrp_instance_info{$sel}`

// countStat is a small stat of one number, green at 0 and red otherwise.
func countStat(s scope, title, description, expr string) *stat.PanelBuilder {
	return singleStat().
		Title(title).
		Description(description).
		Targets(s.targets(query{expr: expr, instant: true})).
		Unit("short").Decimals(0).
		Thresholds(badWhenPositive()).
		ColorMode(common.BigValueColorModeBackground).
		GraphMode(common.BigValueGraphModeNone).
		ReduceOptions(lastValue()).
		Height(4).Span(3)
}
