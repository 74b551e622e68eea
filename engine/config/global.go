package config

import (
	"net/netip"
	"time"
)

// Global is the global_defs block (reference §1.2). keepalived's defaults are
// in DefaultGlobal.
type Global struct {
	Pos      Pos    `json:"-" yaml:"-"`
	RouterID string `json:"router_id,omitempty" yaml:"router_id,omitempty"` // default: the host name

	// NetNamespace is keepalived's root keyword net_namespace: the network
	// namespace (/var/run/netns/NAME) the VRRP side (sockets, addresses,
	// routes, link watch) and IPVS run in. It cannot change on reload
	// (reference §4.1, keepalived core/main.c reload_config).
	NetNamespace string `json:"net_namespace,omitempty" yaml:"net_namespace,omitempty"`
	// NetNamespaceIPVS is net_namespace_ipvs [NAME]: IPVS's namespace when
	// it is not NetNamespace's. Nil follows NetNamespace; "" (the keyword
	// without a name) is the namespace keepwatch was started in
	// (keepalived.conf(5)).
	NetNamespaceIPVS *string `json:"net_namespace_ipvs,omitempty" yaml:"net_namespace_ipvs,omitempty"`

	// Mail (SMTP) alerts.
	NotificationEmail     []string      `json:"notification_email,omitempty" yaml:"notification_email,omitempty"`
	NotificationEmailFrom string        `json:"notification_email_from,omitempty" yaml:"notification_email_from,omitempty"`
	SMTPServer            string        `json:"smtp_server,omitempty" yaml:"smtp_server,omitempty"` // host or IP
	SMTPPort              int           `json:"smtp_port,omitempty" yaml:"smtp_port,omitempty"`     // default 25
	SMTPHeloName          string        `json:"smtp_helo_name,omitempty" yaml:"smtp_helo_name,omitempty"`
	SMTPConnectTimeout    time.Duration `json:"smtp_connect_timeout,omitempty" yaml:"smtp_connect_timeout,omitempty"` // default 30s
	SMTPAlert             *bool         `json:"smtp_alert,omitempty" yaml:"smtp_alert,omitempty"`
	SMTPAlertVRRP         *bool         `json:"smtp_alert_vrrp,omitempty" yaml:"smtp_alert_vrrp,omitempty"`
	SMTPAlertChecker      *bool         `json:"smtp_alert_checker,omitempty" yaml:"smtp_alert_checker,omitempty"`
	NoEmailFaults         bool          `json:"no_email_faults,omitempty" yaml:"no_email_faults,omitempty"`
	NoCheckerEmails       bool          `json:"no_checker_emails,omitempty" yaml:"no_checker_emails,omitempty"`

	// Scripts.
	ScriptUser           string  `json:"script_user,omitempty" yaml:"script_user,omitempty"`
	ScriptGroup          string  `json:"script_group,omitempty" yaml:"script_group,omitempty"`
	EnableScriptSecurity bool    `json:"enable_script_security,omitempty" yaml:"enable_script_security,omitempty"`
	StartupScript        *Script `json:"startup_script,omitempty" yaml:"startup_script,omitempty"`
	ShutdownScript       *Script `json:"shutdown_script,omitempty" yaml:"shutdown_script,omitempty"`
	// How long startup_script and shutdown_script may run before they are
	// killed; 0 means DefaultLifeScriptTimeout.
	StartupScriptTimeout  time.Duration `json:"startup_script_timeout,omitempty" yaml:"startup_script_timeout,omitempty"`
	ShutdownScriptTimeout time.Duration `json:"shutdown_script_timeout,omitempty" yaml:"shutdown_script_timeout,omitempty"`

	// Notify FIFOs.
	NotifyFIFO     *FIFO `json:"notify_fifo,omitempty" yaml:"notify_fifo,omitempty"`
	VRRPNotifyFIFO *FIFO `json:"vrrp_notify_fifo,omitempty" yaml:"vrrp_notify_fifo,omitempty"`
	LVSNotifyFIFO  *FIFO `json:"lvs_notify_fifo,omitempty" yaml:"lvs_notify_fifo,omitempty"`

	// VRRP defaults for every instance.
	VRRPVersion           int            `json:"vrrp_version,omitempty" yaml:"vrrp_version,omitempty"` // default 2
	MulticastGroup4       netip.Addr     `json:"vrrp_mcast_group4,omitempty" yaml:"vrrp_mcast_group4,omitempty"`
	MulticastGroup6       netip.Addr     `json:"vrrp_mcast_group6,omitempty" yaml:"vrrp_mcast_group6,omitempty"`
	GarpMasterDelay       time.Duration  `json:"vrrp_garp_master_delay,omitempty" yaml:"vrrp_garp_master_delay,omitempty"`
	GarpMasterRepeat      int            `json:"vrrp_garp_master_repeat,omitempty" yaml:"vrrp_garp_master_repeat,omitempty"`
	GarpMasterRefresh     time.Duration  `json:"vrrp_garp_master_refresh,omitempty" yaml:"vrrp_garp_master_refresh,omitempty"`
	GarpMasterRefreshRep  int            `json:"vrrp_garp_master_refresh_repeat,omitempty" yaml:"vrrp_garp_master_refresh_repeat,omitempty"`
	GarpLowerPrioDelay    *time.Duration `json:"vrrp_garp_lower_prio_delay,omitempty" yaml:"vrrp_garp_lower_prio_delay,omitempty"`
	GarpLowerPrioRepeat   *int           `json:"vrrp_garp_lower_prio_repeat,omitempty" yaml:"vrrp_garp_lower_prio_repeat,omitempty"`
	GarpInterval          time.Duration  `json:"vrrp_garp_interval,omitempty" yaml:"vrrp_garp_interval,omitempty"`
	GnaInterval           time.Duration  `json:"vrrp_gna_interval,omitempty" yaml:"vrrp_gna_interval,omitempty"`
	MinGarp               bool           `json:"vrrp_min_garp,omitempty" yaml:"vrrp_min_garp,omitempty"`
	SkipCheckAdvAddr      bool           `json:"vrrp_skip_check_adv_addr,omitempty" yaml:"vrrp_skip_check_adv_addr,omitempty"`
	Strict                bool           `json:"vrrp_strict,omitempty" yaml:"vrrp_strict,omitempty"`
	CheckUnicastSrc       bool           `json:"vrrp_check_unicast_src,omitempty" yaml:"vrrp_check_unicast_src,omitempty"`
	StartupDelay          time.Duration  `json:"vrrp_startup_delay,omitempty" yaml:"vrrp_startup_delay,omitempty"`
	DownTimerAdverts      int            `json:"vrrp_down_timer_adverts,omitempty" yaml:"vrrp_down_timer_adverts,omitempty"`
	LowerPrioNoAdvert     bool           `json:"vrrp_lower_prio_no_advert,omitempty" yaml:"vrrp_lower_prio_no_advert,omitempty"`
	HigherPrioSendAdvert  bool           `json:"vrrp_higher_prio_send_advert,omitempty" yaml:"vrrp_higher_prio_send_advert,omitempty"`
	V3ChecksumAsV2        bool           `json:"v3_checksum_as_v2,omitempty" yaml:"v3_checksum_as_v2,omitempty"`
	OwnerIgnoreAdverts    bool           `json:"vrrp_owner_ignore_adverts,omitempty" yaml:"vrrp_owner_ignore_adverts,omitempty"`
	NotifyPriorityChanges bool           `json:"vrrp_notify_priority_changes,omitempty" yaml:"vrrp_notify_priority_changes,omitempty"`
	MaxAutoPriority       int            `json:"max_auto_priority,omitempty" yaml:"max_auto_priority,omitempty"`
	DynamicInterfaces     bool           `json:"dynamic_interfaces,omitempty" yaml:"dynamic_interfaces,omitempty"`
	DefaultInterface      string         `json:"default_interface,omitempty" yaml:"default_interface,omitempty"`
	VMACPrefix            string         `json:"vmac_prefix,omitempty" yaml:"vmac_prefix,omitempty"`
	LogUnknownVRIDs       bool           `json:"log_unknown_vrids,omitempty" yaml:"log_unknown_vrids,omitempty"`

	// LVS.
	LVSFlush              bool           `json:"lvs_flush,omitempty" yaml:"lvs_flush,omitempty"`
	LVSFlushOnStop        string         `json:"lvs_flush_on_stop,omitempty" yaml:"lvs_flush_on_stop,omitempty"` // "", "all" or "VS"
	LVSTimeoutTCP         time.Duration  `json:"lvs_timeout_tcp,omitempty" yaml:"lvs_timeout_tcp,omitempty"`
	LVSTimeoutFin         time.Duration  `json:"lvs_timeout_tcpfin,omitempty" yaml:"lvs_timeout_tcpfin,omitempty"`
	LVSTimeoutUDP         time.Duration  `json:"lvs_timeout_udp,omitempty" yaml:"lvs_timeout_udp,omitempty"`
	LVSSyncDaemon         *LVSSyncDaemon `json:"lvs_sync_daemon,omitempty" yaml:"lvs_sync_daemon,omitempty"`
	CheckerLogAllFailures bool           `json:"checker_log_all_failures,omitempty" yaml:"checker_log_all_failures,omitempty"`
	RSInitNotifies        bool           `json:"rs_init_notifies,omitempty" yaml:"rs_init_notifies,omitempty"`

	// Process and SNMP/DBus settings keepwatch accepts and ignores (it has no
	// child processes and exports metrics instead); kept for convert.
	Extra []Setting `json:"extra,omitempty" yaml:"extra,omitempty"`
}

// FIFO is a notify FIFO and its optional reader script.
type FIFO struct {
	Path   string  `json:"path" yaml:"path"`
	User   string  `json:"user,omitempty" yaml:"user,omitempty"`
	Group  string  `json:"group,omitempty" yaml:"group,omitempty"`
	Script *Script `json:"script,omitempty" yaml:"script,omitempty"`
}

// LVSSyncDaemon is global_defs' lvs_sync_daemon.
type LVSSyncDaemon struct {
	Interface string `json:"interface" yaml:"interface"`
	Instance  string `json:"vrrp_instance" yaml:"vrrp_instance"`
	ID        int    `json:"id,omitempty" yaml:"id,omitempty"`
	MaxLen    int    `json:"maxlen,omitempty" yaml:"maxlen,omitempty"`
	Port      int    `json:"port,omitempty" yaml:"port,omitempty"`
	TTL       int    `json:"ttl,omitempty" yaml:"ttl,omitempty"`
	Group     string `json:"group,omitempty" yaml:"group,omitempty"`
}

// IPVSNamespace is the network namespace IPVS is programmed in:
// net_namespace_ipvs if set, else net_namespace; "" is keepwatch's own.
func (g *Global) IPVSNamespace() string {
	if g.NetNamespaceIPVS != nil {
		return *g.NetNamespaceIPVS
	}
	return g.NetNamespace
}
