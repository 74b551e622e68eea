package config

import (
	"net/netip"
	"time"
)

// Instance is a vrrp_instance block (reference §1.3).
type Instance struct {
	Pos  Pos    `json:"-" yaml:"-"`
	Name string `json:"name" yaml:"name"`

	// InitialState is "MASTER" or "BACKUP" (default BACKUP); only at priority
	// 255 does MASTER take effect at once (reference §2.4).
	InitialState     string        `json:"state,omitempty" yaml:"state,omitempty"`
	Interface        string        `json:"interface" yaml:"interface"`
	VRID             int           `json:"virtual_router_id" yaml:"virtual_router_id"`
	Priority         int           `json:"priority" yaml:"priority"`                   // default 100
	AdvertInterval   time.Duration `json:"advert_int" yaml:"advert_int"`               // default 1s
	Version          int           `json:"version,omitempty" yaml:"version,omitempty"` // 0: global vrrp_version (IPv6: 3)
	NoPreempt        bool          `json:"nopreempt,omitempty" yaml:"nopreempt,omitempty"`
	PreemptDelay     time.Duration `json:"preempt_delay,omitempty" yaml:"preempt_delay,omitempty"`
	Accept           *bool         `json:"accept,omitempty" yaml:"accept,omitempty"` // nil: default (strict rules)
	DontTrackPrimary bool          `json:"dont_track_primary,omitempty" yaml:"dont_track_primary,omitempty"`
	Strict           *bool         `json:"strict_mode,omitempty" yaml:"strict_mode,omitempty"`
	SkipCheckAdvAddr *bool         `json:"skip_check_adv_addr,omitempty" yaml:"skip_check_adv_addr,omitempty"`

	Auth *Auth `json:"authentication,omitempty" yaml:"authentication,omitempty"`

	VIPs         []Address `json:"virtual_ipaddress,omitempty" yaml:"virtual_ipaddress,omitempty"`
	ExcludedVIPs []Address `json:"virtual_ipaddress_excluded,omitempty" yaml:"virtual_ipaddress_excluded,omitempty"`
	Routes       []Route   `json:"virtual_routes,omitempty" yaml:"virtual_routes,omitempty"`
	Rules        []Rule    `json:"virtual_rules,omitempty" yaml:"virtual_rules,omitempty"`

	// Addressing.
	MulticastSrc       netip.Addr    `json:"mcast_src_ip,omitempty" yaml:"mcast_src_ip,omitempty"`
	MulticastDst       netip.Addr    `json:"mcast_dst_ip,omitempty" yaml:"mcast_dst_ip,omitempty"`
	UnicastSrc         netip.Addr    `json:"unicast_src_ip,omitempty" yaml:"unicast_src_ip,omitempty"`
	UnicastPeers       []UnicastPeer `json:"unicast_peer,omitempty" yaml:"unicast_peer,omitempty"`
	UnicastTTL         int           `json:"unicast_ttl,omitempty" yaml:"unicast_ttl,omitempty"` // 0: not set
	CheckUnicastSrc    bool          `json:"check_unicast_src,omitempty" yaml:"check_unicast_src,omitempty"`
	UnicastFaultNoPeer bool          `json:"unicast_fault_no_peer,omitempty" yaml:"unicast_fault_no_peer,omitempty"`
	V3ChecksumAsV2     *bool         `json:"v3_checksum_as_v2,omitempty" yaml:"v3_checksum_as_v2,omitempty"`
	VMAC               *VMAC         `json:"use_vmac,omitempty" yaml:"use_vmac,omitempty"`
	VMACXmitBase       bool          `json:"vmac_xmit_base,omitempty" yaml:"vmac_xmit_base,omitempty"`

	// Gratuitous ARP / NA schedule (reference §2.6); nil: the global value.
	GarpMasterDelay      *time.Duration `json:"garp_master_delay,omitempty" yaml:"garp_master_delay,omitempty"`
	GarpMasterRepeat     *int           `json:"garp_master_repeat,omitempty" yaml:"garp_master_repeat,omitempty"`
	GarpMasterRefresh    *time.Duration `json:"garp_master_refresh,omitempty" yaml:"garp_master_refresh,omitempty"`
	GarpMasterRefreshRep *int           `json:"garp_master_refresh_repeat,omitempty" yaml:"garp_master_refresh_repeat,omitempty"`
	GarpLowerPrioDelay   *time.Duration `json:"garp_lower_prio_delay,omitempty" yaml:"garp_lower_prio_delay,omitempty"`
	GarpLowerPrioRepeat  *int           `json:"garp_lower_prio_repeat,omitempty" yaml:"garp_lower_prio_repeat,omitempty"`

	DownTimerAdverts     int   `json:"down_timer_adverts,omitempty" yaml:"down_timer_adverts,omitempty"` // 0: global (3)
	LowerPrioNoAdvert    *bool `json:"lower_prio_no_advert,omitempty" yaml:"lower_prio_no_advert,omitempty"`
	HigherPrioSendAdvert *bool `json:"higher_prio_send_advert,omitempty" yaml:"higher_prio_send_advert,omitempty"`
	PromoteSecondaries   bool  `json:"promote_secondaries,omitempty" yaml:"promote_secondaries,omitempty"`

	// Tracking.
	TrackScripts    []TrackRef `json:"track_script,omitempty" yaml:"track_script,omitempty"`
	TrackInterfaces []TrackRef `json:"track_interface,omitempty" yaml:"track_interface,omitempty"`
	TrackFiles      []TrackRef `json:"track_file,omitempty" yaml:"track_file,omitempty"`
	TrackProcesses  []TrackRef `json:"track_process,omitempty" yaml:"track_process,omitempty"`

	Notify Notify `json:"notify,omitempty" yaml:"notify,omitempty"`

	Extra []Setting `json:"extra,omitempty" yaml:"extra,omitempty"`
}

// Auth is an instance's authentication block (VRRPv2 only, RFC 3768 §5.3.6).
type Auth struct {
	Pos  Pos    `json:"-" yaml:"-"`
	Type string `json:"auth_type" yaml:"auth_type"` // PASS or AH
	// Pass is the password, already truncated to 8 bytes as keepalived does.
	Pass Secret `json:"auth_pass,omitempty" yaml:"auth_pass,omitempty"`
}

// UnicastPeer is one entry of unicast_peer.
type UnicastPeer struct {
	Pos    Pos        `json:"-" yaml:"-"`
	Addr   netip.Addr `json:"address" yaml:"address"`
	MinTTL int        `json:"min_ttl,omitempty" yaml:"min_ttl,omitempty"`
	MaxTTL int        `json:"max_ttl,omitempty" yaml:"max_ttl,omitempty"`
}

// VMAC is use_vmac: a macvlan carrying 00:00:5e:00:01:VRID (reference §2.8).
type VMAC struct {
	Name   string `json:"name,omitempty" yaml:"name,omitempty"` // default vrrp.VRID
	MAC    string `json:"mac,omitempty" yaml:"mac,omitempty"`
	Group  string `json:"group,omitempty" yaml:"group,omitempty"`
	Notify bool   `json:"netlink_notify_msg,omitempty" yaml:"netlink_notify_msg,omitempty"`
}

// Notify holds the notify scripts of an instance or sync group and its SMTP switch.
type Notify struct {
	Master           *Script `json:"notify_master,omitempty" yaml:"notify_master,omitempty"`
	Backup           *Script `json:"notify_backup,omitempty" yaml:"notify_backup,omitempty"`
	Fault            *Script `json:"notify_fault,omitempty" yaml:"notify_fault,omitempty"`
	Stop             *Script `json:"notify_stop,omitempty" yaml:"notify_stop,omitempty"`
	Deleted          *Script `json:"notify_deleted,omitempty" yaml:"notify_deleted,omitempty"`
	Any              *Script `json:"notify,omitempty" yaml:"notify,omitempty"`
	MasterRxLowerPri *Script `json:"notify_master_rx_lower_pri,omitempty" yaml:"notify_master_rx_lower_pri,omitempty"`
	SMTPAlert        *bool   `json:"smtp_alert,omitempty" yaml:"smtp_alert,omitempty"`
	PriorityChanges  *bool   `json:"notify_priority_changes,omitempty" yaml:"notify_priority_changes,omitempty"`
}

// SyncGroup is a vrrp_sync_group block (reference §1.4).
type SyncGroup struct {
	Pos             Pos        `json:"-" yaml:"-"`
	Name            string     `json:"name" yaml:"name"`
	Members         []string   `json:"group" yaml:"group"`
	TrackScripts    []TrackRef `json:"track_script,omitempty" yaml:"track_script,omitempty"`
	TrackInterfaces []TrackRef `json:"track_interface,omitempty" yaml:"track_interface,omitempty"`
	TrackFiles      []TrackRef `json:"track_file,omitempty" yaml:"track_file,omitempty"`
	TrackProcesses  []TrackRef `json:"track_process,omitempty" yaml:"track_process,omitempty"`
	TrackingWeight  bool       `json:"sync_group_tracking_weight,omitempty" yaml:"sync_group_tracking_weight,omitempty"`
	Notify          Notify     `json:"notify,omitempty" yaml:"notify,omitempty"`
	Extra           []Setting  `json:"extra,omitempty" yaml:"extra,omitempty"`
}
