// Helpers shared by the rule files.
{
  // join puts the virtual router's segment (keepwatch_vrrp_instance_info,
  // always 1) on a per-instance VRRP expression: the identity fleet rules
  // group by, without asking peers to name their interfaces alike.
  join(c):: '* on (%(clusterLabel)s, job, instance, vrrp_instance) group_left (segment) keepwatch_vrrp_instance_info{%(selector)s}' % c,

  // clusterSuffix names the cluster in a description, when there is one.
  clusterSuffix(c, sep):: '{{ with $labels.%s }}%s{{ . }}{{ end }}' % [c.clusterLabel, sep],

  // withRunbook adds the runbook_url annotation to every alert.
  withRunbook(c, groups):: [
    g {
      rules: [
        if std.objectHas(r, 'alert') then r { annotations+: { runbook_url: c.runbookBase + '#' + std.asciiLower(r.alert) } } else r
        for r in g.rules
      ],
    }
    for g in groups
  ],
}
