// The mixin's settings. Override any of them:
//   (import 'mixin.libsonnet') + { _config+:: { selector: 'job="vrrp"' } }
{
  _config+:: {
    // Selects keepwatch's scrape targets in every expression.
    selector: 'job="keepwatch"',
    // The target label that names a cluster (set by relabelling or as an
    // external label). Virtual routers are identified by (cluster, segment,
    // vrid, family); where the label is unset it is empty, and harmless.
    clusterLabel: 'cluster',
    // Where each alert's runbook_url points: base + '#' + lower-case name.
    runbookBase: 'https://github.com/keepwatch/keepwatch/blob/main/alerts/runbook.md',
    // Alertmanager example: where the page and ticket webhooks go.
    pageWebhook: 'http://127.0.0.1:9095/page',
    ticketWebhook: 'http://127.0.0.1:9095/tickets',
    // How long the page route waits to batch a group's first alerts. A VIP
    // move is over when it fires, and agents started with
    // --alertmanager.url push it at the transition: waiting only delays
    // the page (the rule-made alert of the same labels joins the group).
    pageGroupWait: '0s',

    // Windows, `for:` durations and thresholds.
    vipMovedWindow: '5m',
    splitBrainFor: '30s',
    multipleMastersFor: '30s',
    noMasterFor: '30s',
    instanceFaultFor: '1m',
    priorityDegradedFor: '2m',
    advertGapWindow: '5m',
    // A gap of this share of Master_Down_Interval is a near miss.
    advertsLateRatio: 0.75,
    advertLatenessWindow: '5m',
    // An advert sent this share of the advert interval late is starvation.
    agentStarvedRatio: 0.5,
    advertMismatchFor: '1m',
    authFailuresFor: '1m',
    realServerDownFor: '1m',
    noHealthyRealServersFor: '1m',
    quorumLostFor: '1m',
    reloadFailedWindow: '5m',
    agentDownFor: '1m',
    configDiagnosticsFor: '5m',
  },
}
