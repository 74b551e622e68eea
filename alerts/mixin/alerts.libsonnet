// Alert rules. Conventions (monitoring-mixins guide, mixtool lint):
// CamelCase names prefixed Keepwatch; severity critical (pages), warning
// (ticket) or info; a static summary, a templated description, and a
// runbook_url into alerts/runbook.md (added by lib.withRunbook). Metric
// families are those of metrics/README.md.
local lib = import 'lib.libsonnet';

{
  prometheusAlerts+:: {
    local c = $._config,
    local j = lib.join(c),
    // The instance an alert is about, in descriptions.
    local inst = '{{ $labels.vrrp_instance }} (VRID {{ $labels.vrid }} {{ $labels.family }} on {{ $labels.interface }})',
    groups+: lib.withRunbook(c, [
      {
        name: 'keepwatch.vrrp',
        rules: [
          // A transition to MASTER moves the virtual addresses: the
          // network's ARP/ND caches follow only the gratuitous ARPs and
          // unsolicited NAs (RFC 9568 §6.4.2), and connections through the
          // VIP may break. The counter exists from startup
          // (metrics/README.md), so the first move after a scrape is seen;
          // the window keeps a burst of moves in one alert rather than one
          // per flap.
          {
            alert: 'KeepwatchVIPMoved',
            expr: 'increase(keepwatch_vrrp_master_transitions_total{%(selector)s}[%(vipMovedWindow)s]) ' % c + j + ' > 0',
            labels: { severity: 'critical' },
            annotations: {
              summary: 'A VRRP instance became master and took over its virtual addresses.',
              description: inst + ' became MASTER on {{ $labels.instance }} {{ printf "%.0f" $value }} time(s) in the last ' + c.vipMovedWindow + ' (segment {{ $labels.segment }}' + lib.clusterSuffix(c, ', cluster ') + ').',
            },
          },
          {
            alert: 'KeepwatchVIPSplitBrain',
            expr: 'address:keepwatch_vrrp_vip_holders:sum > 1',
            'for': c.splitBrainFor,
            labels: { severity: 'critical' },
            annotations: {
              summary: 'The same virtual address is present on more than one host.',
              description: '{{ $labels.address }} (VRID {{ $labels.vrid }} {{ $labels.family }}, segment {{ $labels.segment }}' + lib.clusterSuffix(c, ', cluster ') + ') is present on {{ $value }} hosts: ARP/ND answers flip between them.',
            },
          },
          {
            alert: 'KeepwatchMultipleMasters',
            expr: 'segment:keepwatch_vrrp_masters:sum > 1',
            'for': c.multipleMastersFor,
            labels: { severity: 'critical' },
            annotations: {
              summary: 'More than one host is MASTER for the same virtual router.',
              description: 'VRID {{ $labels.vrid }} {{ $labels.family }} on segment {{ $labels.segment }}' + lib.clusterSuffix(c, ' in cluster ') + " has {{ $value }} masters: the peers do not hear each other's adverts.",
            },
          },
          // Only scraped agents count: a master whose agent is unreachable
          // from Prometheus looks like no master (KeepwatchAgentDown fires
          // beside it).
          {
            alert: 'KeepwatchNoMaster',
            expr: 'segment:keepwatch_vrrp_masters:sum == 0',
            'for': c.noMasterFor,
            labels: { severity: 'critical' },
            annotations: {
              summary: 'No host is MASTER for a virtual router.',
              description: 'VRID {{ $labels.vrid }} {{ $labels.family }} on segment {{ $labels.segment }}' + lib.clusterSuffix(c, ' in cluster ') + ' has had no master for ' + c.noMasterFor + ': its virtual addresses are unreachable.',
            },
          },
          {
            alert: 'KeepwatchInstanceFault',
            expr: 'keepwatch_vrrp_state{%(selector)s,state="fault"} ' % c + j + ' == 1',
            'for': c.instanceFaultFor,
            labels: { severity: 'warning' },
            annotations: {
              summary: 'A VRRP instance is in FAULT and cannot take over.',
              description: inst + ' on {{ $labels.instance }} has been in FAULT for ' + c.instanceFaultFor + '.',
            },
          },
          // Tracked scripts, interfaces and files lower the priority adverts
          // carry (keepalived reference: track_script weight); a lowered
          // master may be preempted, a lowered backup may not take over.
          {
            alert: 'KeepwatchPriorityDegraded',
            expr: '(keepwatch_vrrp_effective_priority{%(selector)s} < keepwatch_vrrp_priority{%(selector)s}) ' % c + j,
            'for': c.priorityDegradedFor,
            labels: { severity: 'warning' },
            annotations: {
              summary: 'A VRRP instance advertises less than its configured priority.',
              description: inst + ' on {{ $labels.instance }} runs at effective priority {{ $value }}, below its configured priority.',
            },
          },
          // A backup takes over when no advert arrives for
          // Master_Down_Interval (RFC 9568 §6.4.2): a gap of three quarters
          // of it is two adverts lost in a row, one more and the VIP would
          // have moved.
          {
            alert: 'KeepwatchAdvertsLate',
            expr: '(instance:keepwatch_vrrp_advert_gap_seconds:max%(advertGapWindow)s > %(advertsLateRatio)g * keepwatch_vrrp_master_down_interval_seconds{%(selector)s}) ' % c + j,
            labels: { severity: 'warning' },
            annotations: {
              summary: "A backup heard the master's adverts late, close to taking over.",
              description: inst + ' on {{ $labels.instance }} heard an advert gap of up to {{ $value }}s in the last ' + c.advertGapWindow + ', near its master down interval.',
            },
          },
          // The signal keepalived cannot give: the master is alive but its
          // adverts are late. Its own Adver_Timer (RFC 9568 §6.4.3) fired
          // late by half an interval or more: CPU starvation, a GC pause or
          // a stopped process. A few more and its backups' Master_Down_Interval
          // runs out and the VIP moves away from a healthy host.
          {
            alert: 'KeepwatchAgentStarved',
            expr: '(instance:keepwatch_vrrp_advert_lateness_seconds:max%(advertLatenessWindow)s > %(agentStarvedRatio)g * keepwatch_vrrp_advert_interval_seconds{%(selector)s}) ' % c + j,
            labels: { severity: 'warning' },
            annotations: {
              summary: 'An agent sent its VRRP adverts late: it is starved of CPU or stopped.',
              description: inst + ' on {{ $labels.instance }} sent an advert up to {{ $value }}s late in the last ' + c.advertLatenessWindow + ', over half its advert interval: its backups may take over from a live master.',
            },
          },
          // address_list: accepted but the peer lists other VIPs
          // (keepalived 2.3.3+ semantics; 2.2.x peers drop it, the classic
          // split brain); interval: a VRRPv2 peer with another advert_int
          // (RFC 3768 §7.1).
          {
            alert: 'KeepwatchAdvertMismatch',
            expr: 'rate(keepwatch_vrrp_adverts_dropped_total{%(selector)s,reason=~"address_list|interval"}[5m]) ' % c + j + ' > 0',
            'for': c.advertMismatchFor,
            labels: { severity: 'warning' },
            annotations: {
              summary: 'Peers of a virtual router are configured differently.',
              description: inst + ' on {{ $labels.instance }} receives adverts that disagree on {{ $labels.reason }}.',
            },
          },
          {
            alert: 'KeepwatchAuthFailures',
            expr: 'rate(keepwatch_vrrp_adverts_dropped_total{%(selector)s,reason=~"auth|auth_type|hmac"}[5m]) ' % c + j + ' > 0',
            'for': c.authFailuresFor,
            labels: { severity: 'warning' },
            annotations: {
              summary: 'A VRRP instance drops adverts that fail authentication.',
              description: inst + ' on {{ $labels.instance }} drops adverts failing the {{ $labels.reason }} check.',
            },
          },
        ],
      },
      {
        name: 'keepwatch.lb',
        rules: [
          {
            alert: 'KeepwatchRealServerDown',
            expr: 'keepwatch_real_server_up{%(selector)s} == 0' % c,
            'for': c.realServerDownFor,
            labels: { severity: 'warning' },
            annotations: {
              summary: 'A real server fails its health checks.',
              description: 'Real server {{ $labels.real_server }} of {{ $labels.virtual_server }} has failed its checks on {{ $labels.instance }} for ' + c.realServerDownFor + '.',
            },
          },
          {
            alert: 'KeepwatchNoHealthyRealServers',
            expr: 'max by (%(clusterLabel)s, instance, job, virtual_server) (keepwatch_real_server_up{%(selector)s}) == 0' % c,
            'for': c.noHealthyRealServersFor,
            labels: { severity: 'critical' },
            annotations: {
              summary: 'A virtual server has no healthy real server.',
              description: 'Every real server of {{ $labels.virtual_server }} fails its checks on {{ $labels.instance }}: only a sorry server, if any, answers.',
            },
          },
          {
            alert: 'KeepwatchQuorumLost',
            expr: 'keepwatch_virtual_server_quorum_up{%(selector)s} == 0' % c,
            'for': c.quorumLostFor,
            labels: { severity: 'critical' },
            annotations: {
              summary: 'A virtual server has fewer healthy real servers than its quorum.',
              description: '{{ $labels.virtual_server }} on {{ $labels.instance }} has been below its quorum for ' + c.quorumLostFor + ' (quorum_down ran).',
            },
          },
        ],
      },
      {
        name: 'keepwatch.agent',
        rules: [
          // max_over_time: a failed scrape must not hide a failed reload
          // (as the prometheus-mixin does for PrometheusBadConfig).
          {
            alert: 'KeepwatchReloadFailed',
            expr: 'max_over_time(keepwatch_config_last_reload_successful{%(selector)s}[%(reloadFailedWindow)s]) == 0' % c,
            labels: { severity: 'warning' },
            annotations: {
              summary: 'The agent rejected a configuration reload and runs the previous one.',
              description: 'keepwatch on {{ $labels.instance }} has rejected its configuration for ' + c.reloadFailedWindow + '; the previous configuration keeps running.',
            },
          },
          // keepalived's recovery semantics (DESIGN.md §4): a bad line or
          // item is ignored with a diagnostic and the agent keeps running,
          // so an error in the running config is silent unless watched.
          // keepwatch_config_diagnostics counts them by severity.
          {
            alert: 'KeepwatchConfigDiagnostics',
            expr: 'keepwatch_config_diagnostics{%(selector)s,severity="error"} > 0' % c,
            'for': c.configDiagnosticsFor,
            labels: { severity: 'warning' },
            annotations: {
              summary: 'The running configuration has errors the agent recovered from.',
              description: 'keepwatch on {{ $labels.instance }} has run for ' + c.configDiagnosticsFor + ' with {{ $value }} configuration error(s) it ignored, as keepalived does: part of the configuration is not in force.',
            },
          },
          // absent(): no keepwatch target at all (every agent gone from
          // service discovery) would otherwise silence every other alert.
          {
            alert: 'KeepwatchAgentDown',
            expr: 'up{%(selector)s} == 0 or absent(up{%(selector)s})' % c,
            'for': c.agentDownFor,
            labels: { severity: 'warning' },
            annotations: {
              summary: 'A keepwatch agent cannot be scraped.',
              description: '{{ if $labels.instance }}keepwatch on {{ $labels.instance }} has not answered scrapes for ' + c.agentDownFor + ': its host cannot be watched and may not take over.{{ else }}No keepwatch target has been scraped for ' + c.agentDownFor + ' (' + c.selector + ' is absent).{{ end }}',
            },
          },
        ],
      },
    ]),
  },
}
