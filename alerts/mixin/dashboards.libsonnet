// The dashboards: the JSON dashboards/*.go generates with
// grafana-foundation-sdk, embedded as it is. Their queries select by the
// $job and $instance variables; what the _config changes is the cluster
// label the fleet panels group and join by.
{
  grafanaDashboards+:: {
    local c = $._config,
    local withCluster(s) = std.strReplace(std.strReplace(s, 'on (cluster, ', 'on (%s, ' % c.clusterLabel), 'by (cluster, ', 'by (%s, ' % c.clusterLabel),
    local load(s) = std.parseJson(withCluster(s)),
    'keepwatch-fleet.json': load(importstr '../../dashboards/fleet.json'),
    'keepwatch-instance.json': load(importstr '../../dashboards/instance.json'),
    'keepwatch-loadbalancer.json': load(importstr '../../dashboards/loadbalancer.json'),
  },
}
