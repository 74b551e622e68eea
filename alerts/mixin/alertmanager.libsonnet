// An Alertmanager configuration for the alerts (not a monitoring-mixins
// standard field): alertmanagerConfig renders alerts/alertmanager.yml.
{
  alertmanagerConfig+:: {
    local c = $._config,
    // severity=critical pages (webhook "page"); everything else becomes a
    // ticket. Alerts group by alert name and virtual router: (cluster,
    // segment, vrid, family), as the rules identify it. A VRID alone is
    // unique only within one L2 segment, so grouping by it would merge
    // unrelated clusters that reuse VRID 51 into one page. An alert that
    // fires on both hosts of a router (a VIP move seen from each side)
    // arrives as one notification; load balancer and agent alerts, without
    // a segment, group by name.
    route: {
      receiver: 'tickets',
      group_by: ['alertname', c.clusterLabel, 'segment', 'vrid', 'family'],
      group_wait: '30s',
      group_interval: '5m',
      repeat_interval: '4h',
      routes: [
        {
          receiver: 'page',
          matchers: ['severity="critical"'],
          group_wait: c.pageGroupWait,
          group_interval: '1m',
          repeat_interval: '1h',
        },
      ],
    },
    // A virtual server with no healthy real server is below any quorum:
    // page once.
    inhibit_rules: [
      {
        source_matchers: ['alertname="KeepwatchNoHealthyRealServers"'],
        target_matchers: ['alertname="KeepwatchQuorumLost"'],
        equal: [c.clusterLabel, 'instance', 'virtual_server'],
      },
    ],
    receivers: [
      { name: 'page', webhook_configs: [{ url: c.pageWebhook, send_resolved: true }] },
      { name: 'tickets', webhook_configs: [{ url: c.ticketWebhook, send_resolved: true }] },
    ],
  },
}
