package kaconf

import (
	"net/netip"
	"strings"
	"time"

	"github.com/keepwatch/keepwatch/engine/config"
)

// Bounds shared by several keywords, in keepalived's units.
const (
	maxU32        = 1<<32 - 1
	maxI32        = 1<<31 - 1
	maxTimerUS    = maxU32 // 4294.967295 s: keepalived's TIMER_MAXIMUM
	minTimerUS    = 1      // 0.000001 s
	maxGarpSecs   = 4294   // vrrp_garp_*_delay: seconds held in a 32-bit µs timer
	maxLVSTimeout = 86400 * 31
)

// rootKeywords are the keywords of the top level (install_keyword_root,
// reference §1.1).
var rootKeywords table

func init() {
	rootExtra := func(p *parser) *[]config.Setting { return &p.cfg.Extra }
	rootKeywords = table{
		"global_defs": {open: func(p *parser, l *Line) table {
			p.cfg.Global.Pos = p.pos(l, 0)
			return globalKeywords
		}},
		"vrrp_instance":      {open: openInstance, close: closeInstance},
		"vrrp_sync_group":    {open: openSyncGroup},
		"vrrp_script":        {min: 1, open: openScript, close: closeScript},
		"track_file":         {min: 1, open: openTrackFile, close: closeTrackFile},
		"vrrp_track_file":    {min: 1, open: openTrackFile, close: closeTrackFile},
		"vrrp_track_process": {min: 1, open: openTrackProcess},
		"garp_group":         {open: openGarpGroup},
		"static_ipaddress": {entry: func(p *parser, l *Line) {
			if a, ok := p.address(l, true); ok {
				p.cfg.StaticAddrs = append(p.cfg.StaticAddrs, a)
			}
		}},
		"static_routes": {entry: func(p *parser, l *Line) {
			if r, ok := p.route(l, true); ok {
				p.cfg.StaticRoutes = append(p.cfg.StaticRoutes, r)
			}
		}},
		"static_rules": {entry: func(p *parser, l *Line) {
			if r, ok := p.rule(l, true); ok {
				p.cfg.StaticRules = append(p.cfg.StaticRules, r)
			}
		}},
		"virtual_server_group": {min: 1, start: openVSGroup, entry: vsGroupEntry},
		"virtual_server":       {min: 1, open: openVirtualServer},
		"SSL":                  {open: openSSL},
	}
	// Root keywords in keepalived too (global_parser.c install_keyword_root).
	rootKeywords["net_namespace"] = strKW(func(p *parser, s string) { p.cfg.Global.NetNamespace = s })
	rootKeywords["net_namespace_ipvs"] = &keyword{fn: func(p *parser, l *Line) {
		name := ""
		if len(l.Words) > 1 {
			name = l.Words[1].Text
		}
		p.cfg.Global.NetNamespaceIPVS = &name
	}}
	ignore(rootKeywords, rootExtra, "namespace_with_ipsets",
		"use_pid_dir", "instance", "child_wait_time", "linkbeat_use_polling")
	ignoreBlocks(rootKeywords, rootExtra, "linkbeat_interfaces", "interface_up_down_delays",
		"track_group", "bfd_instance")
}

// newGlobal is global_defs with keepalived's defaults (global_data.c).
func newGlobal() config.Global {
	return config.Global{
		VRRPVersion:        config.DefaultVRRPVersion,
		SMTPPort:           config.DefaultSMTPPort,
		SMTPConnectTimeout: config.DefaultSMTPTimeout,
	}
}

// globalKeywords is global_defs (global_parser.c init_global_keywords,
// reference §1.2).
var globalKeywords table

func init() {
	g := func(p *parser) *config.Global { return &p.cfg.Global }
	globalKeywords = table{
		"router_id": strKW(func(p *parser, s string) { g(p).RouterID = s }),
		"notification_email": {fn: func(p *parser, l *Line) {
			p.closing = nil
			ws := p.words()
			if len(ws) == 0 {
				// keepalived reports it where the block ends.
				at := l
				if p.closing != nil {
					at = p.closing
				}
				p.warnf(at, 0, "notification_email", "empty notification_email block")
				p.last(config.Noted)
			}
			for _, w := range ws {
				g(p).NotificationEmail = append(g(p).NotificationEmail, w.Text)
			}
		}},
		"notification_email_from": strKW(func(p *parser, s string) { g(p).NotificationEmailFrom = s }),
		"smtp_server":             {min: 1, fn: smtpServer},
		"smtp_helo_name":          strKW(func(p *parser, s string) { g(p).SMTPHeloName = s }),
		"smtp_connect_timeout": timerKW(1e6, maxTimerUS, func(p *parser, d time.Duration) {
			g(p).SMTPConnectTimeout = d
		}),
		"smtp_alert":             boolPtrKW(func(p *parser, b *bool) { g(p).SMTPAlert = b }),
		"smtp_alert_vrrp":        boolPtrKW(func(p *parser, b *bool) { g(p).SMTPAlertVRRP = b }),
		"smtp_alert_checker":     boolPtrKW(func(p *parser, b *bool) { g(p).SMTPAlertChecker = b }),
		"no_email_faults":        flagKW(func(p *parser) { g(p).NoEmailFaults = true }),
		"no_checker_emails":      flagKW(func(p *parser) { g(p).NoCheckerEmails = true }),
		"script_user":            {min: 1, fn: func(p *parser, l *Line) { g(p).ScriptUser, g(p).ScriptGroup = userGroup(l.Words[1:]) }},
		"enable_script_security": flagKW(func(p *parser) { g(p).EnableScriptSecurity = true }),
		"startup_script":         scriptKW(func(p *parser, s *config.Script) { g(p).StartupScript = s }),
		"shutdown_script":        scriptKW(func(p *parser, s *config.Script) { g(p).ShutdownScript = s }),
		// keepalived reads both timeouts as whole seconds in [1, 1000].
		"startup_script_timeout":  secondsKW(1, 1000, func(p *parser, d time.Duration) { g(p).StartupScriptTimeout = d }),
		"shutdown_script_timeout": secondsKW(1, 1000, func(p *parser, d time.Duration) { g(p).ShutdownScriptTimeout = d }),
		"notify_fifo":             fifoKW(func(p *parser) **config.FIFO { return &g(p).NotifyFIFO }),
		"notify_fifo_script":      fifoScriptKW(func(p *parser) **config.FIFO { return &g(p).NotifyFIFO }),
		"vrrp_notify_fifo":        fifoKW(func(p *parser) **config.FIFO { return &g(p).VRRPNotifyFIFO }),
		"vrrp_notify_fifo_script": fifoScriptKW(func(p *parser) **config.FIFO {
			return &g(p).VRRPNotifyFIFO
		}),
		"lvs_notify_fifo":        fifoKW(func(p *parser) **config.FIFO { return &g(p).LVSNotifyFIFO }),
		"lvs_notify_fifo_script": fifoScriptKW(func(p *parser) **config.FIFO { return &g(p).LVSNotifyFIFO }),

		"vrrp_version": intKW(2, 3, func(p *parser, v int) { g(p).VRRPVersion = v }),
		"vrrp_mcast_group4": {min: 1, fn: func(p *parser, l *Line) {
			if a, ok := p.multicast(l, true); ok {
				g(p).MulticastGroup4 = a
			}
		}},
		"vrrp_mcast_group6": {min: 1, fn: func(p *parser, l *Line) {
			if a, ok := p.multicast(l, false); ok {
				g(p).MulticastGroup6 = a
			}
		}},
		"vrrp_garp_master_delay": secondsKW(0, maxGarpSecs, func(p *parser, d time.Duration) { g(p).GarpMasterDelay = d }),
		"vrrp_garp_master_repeat": intKW(1, maxI32, func(p *parser, v int) {
			g(p).GarpMasterRepeat = v
		}),
		"vrrp_garp_master_refresh": secondsKW(0, maxU32, func(p *parser, d time.Duration) { g(p).GarpMasterRefresh = d }),
		"vrrp_garp_master_refresh_repeat": intKW(1, maxI32, func(p *parser, v int) {
			g(p).GarpMasterRefreshRep = v
		}),
		"vrrp_garp_lower_prio_delay": secondsKW(0, maxGarpSecs, func(p *parser, d time.Duration) {
			g(p).GarpLowerPrioDelay = &d
		}),
		"vrrp_garp_lower_prio_repeat": intPtrKW(0, maxI32, func(p *parser, v *int) { g(p).GarpLowerPrioRepeat = v }),
		"vrrp_garp_interval":          timerKW(minTimerUS, maxTimerUS, func(p *parser, d time.Duration) { g(p).GarpInterval = d }),
		"vrrp_gna_interval":           timerKW(minTimerUS, maxTimerUS, func(p *parser, d time.Duration) { g(p).GnaInterval = d }),
		"vrrp_min_garp":               boolKW(func(p *parser, b bool) { g(p).MinGarp = b }),
		// keepalived 2.2.7 takes anything after it as true.
		"vrrp_skip_check_adv_addr": {fn: func(p *parser, l *Line) {
			g(p).SkipCheckAdvAddr = !isFalse(arg(l, 1))
		}},
		"vrrp_strict":               flagKW(func(p *parser) { g(p).Strict = true }),
		"vrrp_check_unicast_src":    flagKW(func(p *parser) { g(p).CheckUnicastSrc = true }),
		"vrrp_startup_delay":        timerKW(1000, maxTimerUS, func(p *parser, d time.Duration) { g(p).StartupDelay = d }),
		"vrrp_down_timer_adverts":   intKW(1, 100, func(p *parser, v int) { g(p).DownTimerAdverts = v }),
		"vrrp_lower_prio_no_advert": boolKW(func(p *parser, b bool) { g(p).LowerPrioNoAdvert = b }),
		"vrrp_higher_prio_send_advert": boolKW(func(p *parser, b bool) {
			g(p).HigherPrioSendAdvert = b
		}),
		"v3_checksum_as_v2":            boolKW(func(p *parser, b bool) { g(p).V3ChecksumAsV2 = b }),
		"vrrp_owner_ignore_adverts":    boolKW(func(p *parser, b bool) { g(p).OwnerIgnoreAdverts = b }),
		"vrrp_notify_priority_changes": boolKW(func(p *parser, b bool) { g(p).NotifyPriorityChanges = b }),
		"max_auto_priority": {fn: func(p *parser, l *Line) {
			if len(l.Words) < 2 {
				g(p).MaxAutoPriority = 99
				return
			}
			if v, ok := p.integer(l, 1, -1, 99); ok {
				g(p).MaxAutoPriority = int(v)
			}
		}},
		"dynamic_interfaces": flagKW(func(p *parser) { g(p).DynamicInterfaces = true }),
		"default_interface":  strKW(func(p *parser, s string) { g(p).DefaultInterface = s }),
		"vmac_prefix":        strKW(func(p *parser, s string) { g(p).VMACPrefix = s }),
		"log_unknown_vrids":  flagKW(func(p *parser) { g(p).LogUnknownVRIDs = true }),

		"lvs_flush":                flagKW(func(p *parser) { g(p).LVSFlush = true }),
		"lvs_flush_on_stop":        {fn: lvsFlushOnStop},
		"lvs_flush_onstop":         {fn: lvsFlushOnStop},
		"lvs_timeouts":             {min: 1, fn: lvsTimeouts},
		"lvs_sync_daemon":          {min: 1, fn: lvsSyncDaemon},
		"checker_log_all_failures": boolKW(func(p *parser, b bool) { g(p).CheckerLogAllFailures = b }),
		"rs_init_notifies":         flagKW(func(p *parser) { g(p).RSInitNotifies = true }),
	}
	ignore(globalKeywords, func(p *parser) *[]config.Setting { return &g(p).Extra },
		// Process handling: keepwatch is one process.
		"process_names", "process_name", "vrrp_process_name", "checker_process_name",
		"lvs_process_name", "bfd_process_name", "use_symlink_paths", "set_supplementary_groups",
		"vrrp_priority", "checker_priority", "bfd_priority", "vrrp_rt_priority",
		"checker_rt_priority", "bfd_rt_priority", "vrrp_no_swap", "checker_no_swap",
		"bfd_no_swap", "vrrp_cpu_affinity", "checker_cpu_affinity", "bfd_cpu_affinity",
		"vrrp_rlimit_rttime", "checker_rlimit_rttime", "bfd_rlimit_rttime",
		"vrrp_rlimit_rtime", "checker_rlimit_rtime", "bfd_rlimit_rtime", "umask",
		"random_seed", "min_auto_priority_delay",
		// VRRP tuning keepwatch does not implement.
		"vrrp_garp_extra_if", "vrrp_vmac_garp_intvl", "fifo_write_vrrp_states_on_reload",
		"vmac_addr_prefix", "disable_local_igmp", "vrrp_delay_after_boot",
		// Firewall.
		"vrrp_iptables", "vrrp_ipsets", "nftables", "nftables_priority", "nftables_counters",
		"nftables_ifindex", "nftables_ipvs", "nftables_ipvs_priority", "nftables_ipvs_start_fwmark",
		// Netlink and socket buffers.
		"vrrp_netlink_cmd_rcv_bufs", "vrrp_netlink_cmd_rcv_bufs_force",
		"vrrp_netlink_monitor_rcv_bufs", "vrrp_netlink_monitor_rcv_bufs_force",
		"lvs_netlink_cmd_rcv_bufs", "lvs_netlink_cmd_rcv_bufs_force",
		"lvs_netlink_monitor_rcv_bufs", "lvs_netlink_monitor_rcv_bufs_force",
		"process_monitor_rcv_bufs", "process_monitor_rcv_bufs_force",
		"vrrp_rx_bufs_policy", "vrrp_rx_bufs_multiplier",
		// SNMP and DBus: keepwatch exports metrics instead.
		"enable_snmp_vrrp", "enable_snmp_keepalived", "enable_snmp_checker", "enable_snmp_rfc",
		"enable_snmp_rfcv2", "enable_snmp_rfcv3", "enable_traps", "snmp_socket",
		"snmp_vs_stats_update_interval", "snmp_rs_stats_update_interval",
		"enable_dbus", "dbus_service_name", "dbus_no_interface_name",
		// Reload and dump files.
		"reload_check_config", "reload_time_file", "reload_repeat", "reload_file",
		"include_check", "config_save_dir", "tmp_config_directory", "data_use_instance",
		"json_version", "state_dump_file", "stats_dump_file", "json_dump_file",
		"iproute_usr_dir", "iproute_etc_dir",
	)
}

// secondsKW is a whole number of seconds in [lo, hi] (keepalived reads the
// GARP delays with read_unsigned_strvec).
func secondsKW(lo, hi int64, set func(p *parser, d time.Duration)) *keyword {
	return intKW(lo, hi, func(p *parser, v int) { set(p, time.Duration(v)*time.Second) })
}

// smtpServer reads `smtp_server HOST|IP [PORT]`.
func smtpServer(p *parser, l *Line) {
	g := &p.cfg.Global
	port := config.DefaultSMTPPort
	if len(l.Words) > 2 {
		v, ok := p.integer(l, 2, 1, 65535)
		if !ok {
			return
		}
		port = int(v)
	}
	host := l.Words[1].Text
	if _, err := netip.ParseAddr(host); err != nil && !hostName(host) {
		p.errorf(l, 1, "smtp_server", "invalid smtp server %s %d", host, port)
		return
	}
	g.SMTPServer, g.SMTPPort = host, port
}

// hostName reports whether s is a syntactically valid DNS host name
// (RFC 1123 §2.1). keepalived also resolves it; keepwatch leaves that to
// run time, as the resolver may not be reachable when a config is checked.
func hostName(s string) bool {
	s = strings.TrimSuffix(s, ".")
	if s == "" || len(s) > 253 {
		return false
	}
	for _, label := range strings.Split(s, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for i := 0; i < len(label); i++ {
			c := label[i]
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
				return false
			}
		}
	}
	return true
}

// multicast reads a multicast group address of the given family.
func (p *parser) multicast(l *Line, v4 bool) (netip.Addr, bool) {
	a, ok := p.addr(l, 1)
	if !ok {
		return a, false
	}
	if !a.IsMulticast() || a.Is4() != v4 {
		kw := arg(l, 0)
		p.errorf(l, 1, kw, "%s: [%s] is not a multicast address of the right family - skipping", kw, a)
		return netip.Addr{}, false
	}
	return a, true
}

func fifoKW(dst func(p *parser) **config.FIFO) *keyword {
	return &keyword{min: 1, fn: func(p *parser, l *Line) {
		f := *dst(p)
		if f == nil {
			f = &config.FIFO{}
			*dst(p) = f
		}
		f.Path = l.Words[1].Text
		f.User, f.Group = userGroup(l.Words[2:])
	}}
}

func fifoScriptKW(dst func(p *parser) **config.FIFO) *keyword {
	return &keyword{min: 1, fn: func(p *parser, l *Line) {
		f := *dst(p)
		if f == nil {
			f = &config.FIFO{}
			*dst(p) = f
		}
		f.Script = p.script(l, 1)
	}}
}

// lvsFlushOnStop reads `lvs_flush_on_stop [VS]`: bare means all.
func lvsFlushOnStop(p *parser, l *Line) {
	switch arg(l, 1) {
	case "", "all", "ALL":
		p.cfg.Global.LVSFlushOnStop = "all"
	case "VS", "vs":
		p.cfg.Global.LVSFlushOnStop = "VS"
	default:
		p.errorf(l, 1, "lvs_flush_on_stop", "lvs_flush_on_stop: invalid parameter '%s' (all|VS)", arg(l, 1))
	}
}

// lvsTimeouts reads `lvs_timeouts [tcp N] [tcpfin N] [udp N]`.
func lvsTimeouts(p *parser, l *Line) {
	g := &p.cfg.Global
	for i := 1; i < len(l.Words); i += 2 {
		var dst *time.Duration
		switch l.Words[i].Text {
		case "tcp":
			dst = &g.LVSTimeoutTCP
		case "tcpfin":
			dst = &g.LVSTimeoutFin
		case "udp":
			dst = &g.LVSTimeoutUDP
		default:
			p.errorf(l, i, "lvs_timeouts", "lvs_timeouts: unknown option '%s' (tcp|tcpfin|udp)", l.Words[i].Text)
			p.last(config.Ignored)
			return
		}
		if i+1 >= len(l.Words) {
			p.errorf(l, i, "lvs_timeouts", "lvs_timeouts: no value for %s", l.Words[i].Text)
			p.last(config.Ignored)
			return
		}
		if v, ok := p.integer(l, i+1, 0, maxLVSTimeout); ok {
			*dst = time.Duration(v) * time.Second
		}
	}
}

// lvsSyncDaemon reads `lvs_sync_daemon IF INSTANCE [id N] [maxlen N] [port N] [ttl N] [group IP]`.
func lvsSyncDaemon(p *parser, l *Line) {
	d := &config.LVSSyncDaemon{Interface: l.Words[1].Text}
	i := 2
	switch arg(l, 2) {
	case "", "id", "maxlen", "port", "ttl", "group":
	default:
		d.Instance = l.Words[2].Text
		i = 3
	}
	for ; i < len(l.Words); i += 2 {
		opt := l.Words[i].Text
		if i+1 >= len(l.Words) {
			p.errorf(l, i, "lvs_sync_daemon", "lvs_sync_daemon: no value for %s", opt)
			p.last(config.Ignored)
			return
		}
		var ok bool
		var v int64
		switch opt {
		case "id":
			v, ok = p.integer(l, i+1, 0, 255)
			d.ID = int(v)
		case "maxlen":
			v, ok = p.integer(l, i+1, 1, 65535-20-8)
			d.MaxLen = int(v)
		case "port":
			v, ok = p.integer(l, i+1, 1, 65535)
			d.Port = int(v)
		case "ttl":
			v, ok = p.integer(l, i+1, 1, 255)
			d.TTL = int(v)
		case "group":
			_, ok = p.addr(l, i+1)
			d.Group = l.Words[i+1].Text
		default:
			p.errorf(l, i, "lvs_sync_daemon", "lvs_sync_daemon: unknown option '%s'", opt)
			p.last(config.Ignored)
			return
		}
		if !ok {
			return
		}
	}
	p.cfg.Global.LVSSyncDaemon = d
}
