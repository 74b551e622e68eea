// keepwatch's monitoring mixin (monitoring-mixins conventions): alert and
// recording rules, dashboards, an Alertmanager example, and the _config
// they are rendered with. alerts/keepwatch.rules.yml, alerts/alertmanager.yml,
// deploy/kubernetes/prometheusrule.yaml are this mixin rendered with the
// default _config (go test ./alerts -run TestMixin -update regenerates
// them); dashboards/*.json, generated from the Go code on
// grafana-foundation-sdk, are embedded as they are.
(import 'config.libsonnet') +
(import 'rules.libsonnet') +
(import 'alerts.libsonnet') +
(import 'dashboards.libsonnet') +
(import 'alertmanager.libsonnet') +
{
  // ruleFile is alerts/keepwatch.rules.yml: the recording rules and the
  // alerts in one file, a recording group merged into the alert group of
  // the same name (recording rules first; see rules.libsonnet).
  ruleFile:: {
    local rules = $.prometheusRules.groups,
    local alerts = $.prometheusAlerts.groups,
    local alertNames = [g.name for g in alerts],
    local recordingFor(name) = std.flattenArrays([g.rules for g in rules if g.name == name]),
    groups: [g for g in rules if !std.member(alertNames, g.name)] +
            [g { rules: recordingFor(g.name) + super.rules } for g in alerts],
  },
}
