// Recording rules, named level:metric:operations. The group has the name of
// the alert group that reads them: ruleFile (mixin.libsonnet) merges the
// two, recording rules first, because rules in one group run in order at
// one timestamp and an alert then sees this evaluation's value. Installed
// as separate prometheusRules and prometheusAlerts files, the alerts see
// the previous evaluation's, one interval later.
local lib = import 'lib.libsonnet';

{
  prometheusRules+:: {
    local c = $._config,
    groups+: [
      {
        name: 'keepwatch.vrrp',
        rules: [
          // How many hosts are MASTER for each virtual router, identified
          // by (cluster, segment, vrid, family): 1 is healthy, 0 is no
          // master, 2 or more is split brain. A VRID is unique only within
          // one L2 segment (RFC 9568 §7.3); IPv4 and IPv6 virtual routers
          // are independent even with one VRID (RFC 9568 §1).
          {
            record: 'segment:keepwatch_vrrp_masters:sum',
            expr: 'sum by (%(clusterLabel)s, segment, vrid, family) (keepwatch_vrrp_state{%(selector)s,state="master"} ' % c + lib.join(c) + ')',
          },
          // How many hosts of a segment hold each virtual address.
          {
            record: 'address:keepwatch_vrrp_vip_holders:sum',
            expr: 'sum by (%(clusterLabel)s, segment, vrid, family, address) (keepwatch_vrrp_vip_present{%(selector)s} ' % c + lib.join(c) + ')',
          },
          // The longest advert gap a backup heard in the window, as the
          // upper bound of its histogram bucket (histogram_quantile at 1
          // returns the upper bound of the highest non-empty bucket; NaN
          // when no gap was observed, as on a master).
          {
            record: 'instance:keepwatch_vrrp_advert_gap_seconds:max%(advertGapWindow)s' % c,
            expr: 'histogram_quantile(1, rate(keepwatch_vrrp_advert_gap_seconds_bucket{%(selector)s}[%(advertGapWindow)s]))' % c,
          },
          // The latest advert this agent sent in the window, against its
          // schedule, as a bucket's upper bound (as for the gap above).
          {
            record: 'instance:keepwatch_vrrp_advert_lateness_seconds:max%(advertLatenessWindow)s' % c,
            expr: 'histogram_quantile(1, rate(keepwatch_vrrp_advert_lateness_seconds_bucket{%(selector)s}[%(advertLatenessWindow)s]))' % c,
          },
        ],
      },
    ],
  },
}
